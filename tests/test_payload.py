import pytest

from bot.channels.payload import MAX_MESSAGE_CHARS, PayloadError, parse_chat_payload


def test_valid_payload():
    p = parse_chat_payload({"sender": " u1 ", "message": "退款", "metadata": {"a": 1}})
    assert (p.sender, p.message, p.metadata) == ("u1", "退款", {"a": 1})


def test_empty_message_is_accepted_for_a_polite_answer():
    assert parse_chat_payload({"sender": "u1", "message": "   "}).message == "   "


@pytest.mark.parametrize(
    "body,status",
    [
        ([1, 2], 400),
        ("text", 400),
        ({"message": "hi"}, 400),
        ({"sender": 5, "message": "hi"}, 400),
        ({"sender": "", "message": "hi"}, 400),
        ({"sender": "x" * 500, "message": "hi"}, 400),
        ({"sender": "u\n1", "message": "hi"}, 400),
        ({"sender": "u1"}, 400),
        ({"sender": "u1", "message": 42}, 400),
        ({"sender": "u1", "message": {"text": "hi"}}, 400),
        ({"sender": "u1", "message": "hi", "metadata": "x"}, 400),
        ({"sender": "u1", "message": "a" * (MAX_MESSAGE_CHARS + 1)}, 413),
    ],
)
def test_bad_payloads_are_refused_with_a_clear_status(body, status):
    with pytest.raises(PayloadError) as err:
        parse_chat_payload(body)
    assert err.value.status == status
    assert err.value.as_json()["error"]
