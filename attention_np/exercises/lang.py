"""The language the exercises speak: English (the default) or Chinese (中文).

Every text the learner reads is written in both languages at the place it is made, English
beside Chinese, and the current language picks one:

    say(f"{name} has shape {got}", f"{name} 的形状是 {got}")

An exercise's own texts (title, task, hints, the meanings of its cache's fields) are
(English, Chinese) pairs, picked with :func:`pick`. There is no catalogue keyed by English
strings: a message and its translation are one expression, so neither can change alone.

The command line sets the language once (``--lang``, else :func:`from_locale`); tests and the
site switch it for a block with :func:`language`. Function names, signatures, code and the
skeleton's docstring formulas are the same in both languages.
"""
from __future__ import annotations

import contextlib
import os

LANGUAGES = {"en": "English", "zh": "中文"}
_state = {"lang": "en"}


class UnknownLanguage(ValueError):
    """A language code not in :data:`LANGUAGES`; the message lists the languages there are."""


def check_language(code) -> str:
    """``code`` when it is one of :data:`LANGUAGES`, else :class:`UnknownLanguage`."""
    if code not in LANGUAGES:
        there = ", ".join(f"{k} ({v})" for k, v in LANGUAGES.items())
        raise UnknownLanguage(f"unknown language {code!r}; the languages are: {there} "
                              f"(未知的语言 {code!r}；可选：{there})")
    return code


def current() -> str:
    """The language in use: "en" or "zh"."""
    return _state["lang"]


def set_language(code) -> None:
    """Use ``code`` ("en" or "zh") from now on."""
    _state["lang"] = check_language(code)


@contextlib.contextmanager
def language(code):
    """Use ``code`` inside a ``with`` block, then the language before it."""
    before = _state["lang"]
    set_language(code)
    try:
        yield
    finally:
        _state["lang"] = before


def from_locale(environ=None) -> str:
    """"zh" when the locale is Chinese, else "en". As POSIX reads the locale, the first of
    LC_ALL, LC_MESSAGES and LANG that is set (and not empty) decides: LC_ALL=C over
    LANG=zh_CN.UTF-8 is English."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return "zh" if environ[name].lower().startswith("zh") else "en"
    return "en"


def say(en: str, zh: str) -> str:
    """``en`` or ``zh``, whichever the current language is."""
    return zh if _state["lang"] == "zh" else en


def pick(pair, lang: str | None = None) -> str:
    """One text of an (English, Chinese) pair, in ``lang`` (default: the current language)."""
    return pair[1] if (lang or _state["lang"]) == "zh" else pair[0]
