"""The exercises' messages in the learner's language (gettext PO files read with polib).

The checkers stay plain English f-strings. Each message's *template* — the f-string as written,
e.g. ``"give a number, got {type(answer).__name__}."`` — is a ``msgid`` of
``course_utils/locale/<lang>/exercises.po`` (``python tools/translate.py --update``
extracts them). A formatted English message is matched against the templates, and the values
found in the placeholders are put into the translation's identical placeholders::

    >>> say("zh", "give a number, got str.")   # template "give a number, got {type(...)...}."
    '请给出一个数，得到的是 str。'

A value in a placeholder that is itself a message or a fragment (marked with ``N_``) is
translated too. A message with no translation is shown in English and recorded in ``MISSED``
(the tests require it to stay empty for every exercise).
"""

from __future__ import annotations

import functools
import io
import tokenize
from pathlib import Path

from course_utils.catalogues import (  # noqa: F401  (re-exported: the exercises' names)
    LANGUAGES,
    Template,
    _compile,
    check_lang,
    placeholders,
    read_catalogue,
    render,
    split_template,
)

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
#: English messages shown because no translation matched (read by the tests)
MISSED: list[str] = []

@functools.cache
def catalog(lang: str) -> tuple[dict[str, str], list[Template]]:
    """(exact messages, templates with placeholders) of ``lang``'s translated entries."""
    folder = LANGUAGES.get(lang)
    return read_catalogue(LOCALE_DIR / folder / "exercises.po") if folder else ({}, [])


def say(lang: str, message: str, *, part: bool = False) -> str:
    """``message`` (English, already formatted) in ``lang``; English when none matches.

    The values in a template's placeholders are translated the same way (``part=True``: a
    value that is no message, such as a number, stays as it is and is not recorded).
    """
    if lang == "en":
        return message
    found = render(message, *catalog(lang), lambda value: say(lang, value, part=True))
    if found is not None:
        return found
    if not part:
        MISSED.append(message)
    return message


def code_comments(code: str) -> list[tuple[int, int, str]]:
    """(line, column, text) of every comment in Python ``code`` (line counted from 0)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    return [(t.start[0] - 1, t.start[1], t.string) for t in tokens if t.type == tokenize.COMMENT]


def say_code(lang: str, code: str) -> str:
    """``code`` with each comment that has a translation in ``lang`` translated."""
    if lang == "en":
        return code
    exact, _ = catalog(lang)
    lines = code.split("\n")
    for row, col, text in code_comments(code):
        if text in exact:
            lines[row] = lines[row][:col] + exact[text] + lines[row][col + len(text):]
    return "\n".join(lines)


def N_(fragment: str) -> str:
    """Mark an English ``fragment`` that a message shows in a placeholder, e.g.
    ``_count(answer, N_("the number of features"))`` for ``f"give {what} as a whole number"``:
    it becomes a msgid of its own, and ``say`` translates it inside the message."""
    return fragment
