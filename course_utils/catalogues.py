"""Gettext catalogues with placeholders, read with polib: the machinery both translated parts
of the course share — the exercises' messages (:mod:`course_utils.exercises.i18n`,
``exercises.po``) and the run-time messages (:mod:`course_utils.i18n`, ``messages.po``).

A ``msgid`` is an f-string template as written in the code, e.g. ``"got {n} images."``; a
formatted English message is matched against the templates and the values found in the
placeholders are put into the translation's identical placeholders. A leaf module: it imports
nothing from the course.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: language code (``chapter(..., lang=...)``) -> folder under the locale folder (None: English)
LANGUAGES = {"en": None, "zh": "zh_CN"}

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
class Template:
    pattern: re.Pattern
    names: dict[str, str]  # placeholder text -> regex group name
    translation: list[tuple[bool, str]]
    weight: int  # literal characters: the most specific template wins


def _compile(msgid: str, msgstr: str) -> Template:
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
    return Template(re.compile("".join(regex), re.DOTALL), names, split_template(msgstr),
                     weight)


def read_catalogue(path: Path) -> tuple[dict[str, str], list[Template]]:
    """(exact messages, templates with placeholders, most specific first) of the translated
    entries of the PO file at ``path``; ``({}, [])`` when there is no such file."""
    import polib

    if not path.exists():
        return {}, []
    exact, templates = {}, []
    for entry in polib.pofile(str(path)).translated_entries():
        if placeholders(entry.msgid):
            templates.append(_compile(entry.msgid, entry.msgstr))
        else:
            exact["".join(t for _, t in split_template(entry.msgid))] = "".join(
                t for _, t in split_template(entry.msgstr))
    templates.sort(key=lambda t: -t.weight)
    return exact, templates


def render(message: str, exact: dict[str, str], templates: list[Template],
           part: Callable[[str], str]) -> str | None:
    """``message`` translated by the catalogue ``(exact, templates)``, each placeholder's value
    passed through ``part``; None when no entry matches."""
    if message in exact:
        return exact[message]
    for template in templates:
        found = template.pattern.fullmatch(message)
        if found:
            values = {text: part(found.group(name)) for text, name in template.names.items()}
            return "".join(values.get(text, text) for _, text in template.translation)
    return None


def check_lang(lang: str) -> str:
    """``lang`` if the exercises speak it, else a ValueError naming the choices."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang={lang!r} is not available: choose one of "
                         f"{', '.join(repr(k) for k in LANGUAGES)} ('zh' = 简体中文).")
    return lang
