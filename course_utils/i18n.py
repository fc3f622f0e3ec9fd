"""One language for everything ``course_utils`` tells the learner at run time.

English is the default. ``chapter(N, lang="zh")`` (what the Chinese notebooks call) or the
environment setting ``COURSE_LANG=zh`` (read when nothing has been chosen in this process, so it
also reaches the command line) switches the printed lines and the error messages of the course's
modules to 简体中文, through the same gettext machinery as the exercises
(``course_utils/exercises/i18n.py``)::

    raise ValueError(tr(f"padding must be 0 or more, got {padding}."))

The message stays an English f-string; its *template* (the f-string as written) is a ``msgid``
of ``course_utils/locale/<lang>/messages.po``, extracted by ``python tools/translate.py
--update`` from every ``tr(...)`` and ``N_(...)`` call of :data:`MODULES` and checked by
``--check``. ``tr`` matches the formatted English against the templates and puts the values of
the placeholders into the translation; a placeholder's value that is itself a marked fragment
(``N_("...")``) is translated too. A message with no translation is shown in English and
recorded in :data:`MISSED`.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from pathlib import Path

from course_utils.catalogues import LANGUAGES, check_lang, read_catalogue, render

PACKAGE = Path(__file__).resolve().parent
LOCALE_DIR = PACKAGE / "locale"
#: the environment setting read when no language has been chosen in this process
ENV = "COURSE_LANG"
#: the modules whose tr()/N_() messages are extracted into messages.po
MODULES = ["tb.py", "_tb_server.py", "image_check.py", "layers.py", "viz.py", "predict.py",
           "data.py", "download.py", "engine.py", "checkpoints.py", "devices.py", "training.py",
           "recipes.py", "loaders.py", "files.py", "runs.py", "cli.py", "ants_bees.py",
           "sources.py", "conv_sizes.py", "images.py", "pretrained.py", "archives.py",
           "caches.py", "cifar_batches.py", "distributed.py", "models.py", "settings.py"]
#: the calls whose argument (at this position) is a message: sources.py's ``_say(verbose, message)``
#: prints its message through ``tr``
MARKERS = {"tr": 0, "N_": 0, "_say": 1}
#: English messages shown because no translation matched (read by the tests)
MISSED: list[str] = []
_CHOSEN: list[str] = []  # the language set by set_language() (empty: follow COURSE_LANG)
_ENV_BEFORE: list[str | None] = []  # COURSE_LANG before set_language() set it (None: unset)
_CJK = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_ALIASES = {"zh_cn": "zh", "zh-cn": "zh", "zh_hans": "zh", "zh-hans": "zh", "cn": "zh",
            "chinese": "zh", "中文": "zh", "": "en", "c": "en", "english": "en"}


def language() -> str:
    """The language chosen for this process: ``set_language``'s, else :func:`env_language`."""
    return _CHOSEN[-1] if _CHOSEN else env_language()


def env_language() -> str:
    """``COURSE_LANG``'s language (``zh``, ``zh_CN``, ``zh_CN.UTF-8``, … or ``en``; unset or
    anything else means English). The setting as the process found it: the value that
    :func:`set_language` put there for the commands it starts does not count."""
    value = os.environ.get(ENV, "")
    if _ENV_BEFORE and _CHOSEN and value == _CHOSEN[-1]:
        value = _ENV_BEFORE[-1] or ""
    value = value.strip().lower()
    value = _ALIASES.get(value, value.split(".")[0])  # zh_CN.UTF-8
    value = _ALIASES.get(value, value)
    return value if value in LANGUAGES else "en"


def set_language(lang: str | None) -> str:
    """Make ``lang`` (``"en"``, ``"zh"``) the language of every course message in this process
    and of the commands it starts (``COURSE_LANG`` is set for them: a notebook that runs
    ``python -m course_utils train`` gets its lines in the notebook's language); None goes
    back to following ``COURSE_LANG`` as it was before. Returns the language now in force."""
    ours = bool(_CHOSEN) and os.environ.get(ENV) == _CHOSEN[-1]  # still the value we set
    if lang is not None and not ours:
        _ENV_BEFORE[:] = [os.environ.get(ENV)]
    _CHOSEN.clear()
    if lang is not None:
        _CHOSEN.append(check_lang(lang))
        os.environ[ENV] = _CHOSEN[-1]
    elif _ENV_BEFORE:
        before = _ENV_BEFORE.pop()
        if ours and before is None:
            os.environ.pop(ENV, None)
        elif ours:
            os.environ[ENV] = before
    return language()


@functools.cache
def catalog(lang: str) -> tuple[dict[str, str], list]:
    """(exact messages, templates with placeholders) of ``lang``'s messages.po."""
    folder = LANGUAGES.get(lang)
    return read_catalogue(LOCALE_DIR / folder / "messages.po") if folder else ({}, [])


def _say(lang: str, message: str, part: bool) -> str:
    found = render(message, *catalog(lang), lambda value: _say(lang, value, True))
    if found is not None:
        return found
    if not part and not _CJK.search(message):
        MISSED.append(message)
    return message


def tr(message: str, lang: str | None = None, *, record: bool = True) -> str:
    """``message`` (English, formatted) in the course's language (or ``lang``); with
    ``record=False`` an unknown message is not recorded in MISSED (text that may be no message)."""
    lang = lang or language()
    return message if lang == "en" else _say(lang, message, not record)


def tr_output(text: str, lang: str) -> str:
    """Printed ``text`` with each line that is a course message (``[course_utils] …`` lines
    too) translated; other lines unchanged. The website uses it for the Chinese pages, which
    show the outputs of their English notebooks."""
    def line(one: str) -> str:
        prefix = "[course_utils] " if one.startswith("[course_utils] ") else ""
        return prefix + tr(one[len(prefix):], lang, record=False)
    return "\n".join(line(one) for one in text.split("\n"))


def N_(fragment: str) -> str:
    """Mark an English ``fragment`` that a message shows in a placeholder: it becomes a msgid
    of its own, and ``tr`` translates it inside the message. Returns it unchanged."""
    return fragment


# ----------------------------------------------------------------------------- extraction
def runtime_messages() -> dict[str, list[tuple[str, str]]]:
    """template -> occurrences, for every message of :data:`MODULES` (:data:`MARKERS`)."""
    from course_utils.exercises.messages import _template

    found: dict[str, list[tuple[str, str]]] = {}
    for name in MODULES:
        path = PACKAGE / name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [(n, MARKERS[name]) for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and (name := getattr(n.func, "id", getattr(n.func, "attr", ""))) in MARKERS
                 and len(n.args) > MARKERS[name]]
        for call, arg in sorted(calls, key=lambda c: (c[0].lineno, c[0].col_offset)):
            text = _template(call.args[arg])
            if text and re.search("[A-Za-z]", text):
                where = (path.relative_to(PACKAGE.parent).as_posix(), str(call.lineno))
                if where not in found.setdefault(text, []):
                    found[text].append(where)
    return found
