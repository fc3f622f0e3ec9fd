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
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
#: lang code accepted by ``chapter(..., lang=...)`` -> folder under LOCALE_DIR (None: English)
LANGUAGES = {"en": None, "zh": "zh_CN"}
#: English messages shown because no translation matched (read by the tests)
MISSED: list[str] = []

# "{{", "}}" or one placeholder (an f-string expression may hold one level of braces)
_PIECE = re.compile(r"\{\{|\}\}|\{(?:[^{}]|\{[^{}]*\})*\}")


def split_template(template: str) -> list[tuple[bool, str]]:
    """``[(is_placeholder, text), ...]``; literal text has ``{{``/``}}`` undoubled.

    >>> split_template("got {n} {{x}}")
    [(False, 'got '), (True, '{n}'), (False, ' {x}')]
    """
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _PIECE.finditer(template):
        literal = template[pos:m.start()] + (m.group()[0] if m.group() in ("{{", "}}") else "")
        if literal:
            if parts and not parts[-1][0]:
                literal = parts.pop()[1] + literal
            parts.append((False, literal))
        if m.group() not in ("{{", "}}"):
            parts.append((True, m.group()))
        pos = m.end()
    if template[pos:]:
        if parts and not parts[-1][0]:
            parts.append((False, parts.pop()[1] + template[pos:]))
        else:
            parts.append((False, template[pos:]))
    return parts


def placeholders(template: str) -> list[str]:
    """The placeholders of ``template``, sorted (a translation must keep the same ones)."""
    return sorted(text for is_field, text in split_template(template) if is_field)


@dataclass
class _Template:
    pattern: re.Pattern
    names: dict[str, str]  # placeholder text -> regex group name
    translation: list[tuple[bool, str]]
    weight: int  # literal characters: the most specific template wins


def _compile(msgid: str, msgstr: str) -> _Template:
    regex, names = [], {}
    for is_field, text in split_template(msgid):
        if not is_field:
            regex.append(re.escape(text))
        elif text in names:
            regex.append(f"(?P={names[text]})")
        else:
            names[text] = f"p{len(names)}"
            regex.append(f"(?P<{names[text]}>.*?)")
    weight = sum(len(t) for f, t in split_template(msgid) if not f)
    return _Template(re.compile("".join(regex), re.DOTALL), names, split_template(msgstr),
                     weight)


@functools.cache
def catalog(lang: str) -> tuple[dict[str, str], list[_Template]]:
    """(exact messages, templates with placeholders) of ``lang``'s translated entries."""
    import polib

    if LANGUAGES.get(lang) is None:
        return {}, []
    po = polib.pofile(str(LOCALE_DIR / LANGUAGES[lang] / "exercises.po"))
    exact, templates = {}, []
    for entry in po.translated_entries():
        if placeholders(entry.msgid):
            templates.append(_compile(entry.msgid, entry.msgstr))
        else:
            exact["".join(t for _, t in split_template(entry.msgid))] = "".join(
                t for _, t in split_template(entry.msgstr))
    templates.sort(key=lambda t: -t.weight)
    return exact, templates


def say(lang: str, message: str, *, part: bool = False) -> str:
    """``message`` (English, already formatted) in ``lang``; English when none matches.

    The values in a template's placeholders are translated the same way (``part=True``: a
    value that is no message, such as a number, stays as it is and is not recorded).
    """
    if lang == "en":
        return message
    exact, templates = catalog(lang)
    if message in exact:
        return exact[message]
    for template in templates:
        found = template.pattern.fullmatch(message)
        if found:
            values = {text: say(lang, found.group(name), part=True)
                      for text, name in template.names.items()}
            return "".join(values.get(text, text) for _, text in template.translation)
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


def check_lang(lang: str) -> str:
    """``lang`` if the exercises speak it, else a ValueError naming the choices."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang={lang!r} is not available: choose one of "
                         f"{', '.join(repr(k) for k in LANGUAGES)} ('zh' = 简体中文).")
    return lang
