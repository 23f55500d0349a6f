from bot.text import has_words, normalize_text


def test_traditional_to_simplified():
    assert normalize_text("帳戶被凍結了怎麼辦") == "账户被冻结了怎么办"


def test_full_width_and_case():
    assert normalize_text("ＡＰＰ打不开１２３") == "app打不开123"


def test_typos_mapped_to_training_spelling():
    assert normalize_text("登陆不了帐户") == "登录不了账户"


def test_emoji_meaning_kept_and_noise_dropped():
    assert normalize_text("👍") == "好的"
    assert normalize_text("退款😭😭到哪了") == "退款 到哪了"
    assert normalize_text("😀😀🎉") == ""


def test_control_zero_width_and_whitespace():
    assert normalize_text("退\u200b款\x00\x07  \n\t进度") == "退款 进度"


def test_non_string_and_length_cap():
    assert normalize_text(None) == ""
    assert normalize_text(123) == ""
    assert len(normalize_text("退款" * 5000)) == 300


def test_has_words():
    assert has_words("退款")
    assert has_words("ok")
    assert not has_words("？？？!!!")
    assert not has_words("")
