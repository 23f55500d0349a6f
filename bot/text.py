"""Text normalisation for Chinese wallet questions.

Users type traditional characters, full-width letters, emoji, zero-width junk and common typos
(登陆/登录). One function turns all of that into the form the NLU was trained on, so shell,
REST, every channel and `/model/parse` see the same text.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_NLU_CHARS = 300
"""The classifier reads at most this many characters: the start of a message says what it is about."""

# Common typos and variant spellings of wallet words, mapped to the spelling used in training.
TYPO_MAP = {
    "登陆": "登录",
    "帐户": "账户",
    "帐号": "账号",
    "冲值": "充值",
    "密吗": "密码",
    "验正码": "验证码",
    "效验码": "校验码",
    "客fu": "客服",
}

# Emoji that carry a meaning in a support chat; every other emoji is dropped.
EMOJI_WORDS = {
    "👍": " 好的 ",
    "👌": " 好的 ",
    "✅": " 是 ",
    "✔": " 是 ",
    "🙆": " 好的 ",
    "👎": " 不 ",
    "❌": " 不 ",
    "🙅": " 不 ",
    "🙏": " 谢谢 ",
    "👋": " 再见 ",
}

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC  # opencc-python-reimplemented: pure Python, bundled tables

    return OpenCC("t2s")


def _is_emoji_or_symbol(ch: str) -> bool:
    if ch in "\ufe0f\u200d":  # variation selector, zero-width joiner inside emoji sequences
        return True
    cat = unicodedata.category(ch)
    return cat in ("So", "Sk", "Cs", "Co") or 0x1F000 <= ord(ch) <= 0x1FAFF


def strip_control(text: str) -> str:
    """Drop control, format and invisible characters (keep newlines as spaces)."""
    text = _INVISIBLE.sub("", text)
    return "".join(
        " " if ch in "\n\r\t" else ch
        for ch in text
        if ch in "\n\r\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )


def replace_emoji(text: str) -> str:
    """Turn meaningful emoji into words and drop the rest."""
    out = []
    for ch in text:
        if ch in EMOJI_WORDS:
            out.append(EMOJI_WORDS[ch])
        elif _is_emoji_or_symbol(ch):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def normalize_text(text: object, max_chars: int = MAX_NLU_CHARS) -> str:
    """Normalise one user message for the NLU.

    Traditional -> simplified, full-width -> half-width (NFKC), lower case, typo map, emoji,
    control/zero-width characters removed, whitespace collapsed, length capped.
    Anything that is not a string becomes the empty string.
    """
    if not isinstance(text, str):
        return ""
    text = strip_control(text)
    text = unicodedata.normalize("NFKC", text)
    text = replace_emoji(text)
    text = _t2s().convert(text)
    text = text.lower()
    for wrong, right in TYPO_MAP.items():
        if wrong in text:
            text = text.replace(wrong, right)
    text = _SPACES.sub(" ", text).strip()
    return text[:max_chars].strip()


def has_words(text: str) -> bool:
    """True when the text has a letter, digit or CJK character (not only punctuation/emoji)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)
