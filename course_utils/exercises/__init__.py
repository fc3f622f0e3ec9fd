"""Exercises with ``check()`` / ``hint()`` / ``solution()``, one module per chapter.

In a notebook::

    from course_utils.exercises import chapter
    ex = chapter(6)           # chapter(6, lang="zh"): everything it prints in 简体中文
    ex.q1.question()          # what to do
    answer = ...              # your code here
    ex.q1.check(answer)       # ✓ or a message saying what is off
    ex.q1.hint()
    ex.q1.solution()          # shows the reference code

Every exercise carries its reference solution as code and a few known-wrong answers; the
test suite runs each solution through its checker and each wrong answer too, so a broken
exercise cannot hide.

Writing one (in ``course_utils/exercises/chNN.py``)::

    def _check_q1(answer):
        expect(answer == 6, f"you gave {answer!r}; ...")

    q1 = Exercise("6.1", "Compute ... and assign it to `answer`.", _check_q1,
                  hint_text="...", solution_code="answer = 6", wrong=[5, "6"])
"""

from __future__ import annotations

import importlib
import pkgutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from course_utils.exercises.i18n import check_lang, say, say_code


def expect(condition: bool, message: str) -> None:
    """Fail the check with ``message`` (shown to the learner) unless ``condition``."""
    if not condition:
        raise AssertionError(message)


class Checked:
    """What ``check()`` returns: truthy when the answer is right.

    It shows nothing in a notebook (the message is already printed), so a check cell does
    not end with a bare ``True``/``False`` under the message.
    """

    def __init__(self, ok: bool):
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return bool(other) == self.ok if isinstance(other, (bool, Checked)) else NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"Checked({self.ok})"

    def _ipython_display_(self) -> None:
        pass


@dataclass
class Exercise:
    """One exercise: a question, a checker, a hint and a reference solution.

    ``checker(answer)`` raises ``AssertionError`` with a helpful message when ``answer`` is
    wrong. ``solution`` is Python source that assigns ``answer``.
    """

    key: str
    prompt: str
    checker: Callable[[Any], None]
    hint_text: str = ""
    solution_code: str = ""
    wrong: list = field(default_factory=list)
    lang: str = "en"  # the language of what it prints (see i18n.py)

    def _say(self, message: str) -> None:
        print(say(self.lang, message))

    def question(self) -> None:
        prompt = say(self.lang, self.prompt)
        self._say(f"Exercise {self.key}: {prompt}")

    def check(self, answer: Any = Ellipsis) -> Checked:
        """Print ✓ or what is wrong; returns a truthy result when the answer is right."""
        if answer is Ellipsis:
            self._say(f"Exercise {self.key}: not answered yet — replace `...` with your answer "
                      "(ex.hint() helps, ex.solution() shows one).")
            return Checked(False)
        try:
            self.checker(answer)
        except AssertionError as exc:
            reason = say(self.lang, str(exc))
            self._say(f"✗ Exercise {self.key}: not quite. {reason}")
            return Checked(False)
        except Exception as exc:  # a learner's odd value must not crash the checker
            self._say(f"✗ Exercise {self.key}: could not check {type(answer).__name__} "
                      f"({type(exc).__name__}: {exc}).")
            return Checked(False)
        self._say(f"✓ Exercise {self.key}: correct!")
        return Checked(True)

    def hint(self) -> None:
        hint = say(self.lang, self.hint_text)
        self._say(f"Hint {self.key}: {hint}")

    def solution(self) -> None:
        self._say(f"Solution {self.key}:")
        print(say_code(self.lang, textwrap.dedent(self.solution_code).strip()))

    def solve(self) -> Any:
        """Run the reference solution and return its ``answer`` (used by the tests)."""
        namespace: dict[str, Any] = {}
        exec(textwrap.dedent(self.solution_code), namespace)  # trusted course code
        return namespace["answer"]


def chapter(number: int | str, lang: str = "en") -> SimpleNamespace:
    """The exercises of chapter ``number`` as ``ex.q1``, ``ex.q2`` …

    ``lang="zh"`` prints questions, hints and every checker message in 简体中文 (the Chinese
    notebooks in notebooks/zh/ call it so); English is the default.
    """
    check_lang(lang)
    module = importlib.import_module(f"course_utils.exercises.ch{int(number):02d}")
    found = {k: v if lang == "en" else replace(v, lang=lang)
             for k, v in vars(module).items() if isinstance(v, Exercise)}
    if not found:
        raise LookupError(f"chapter {number} defines no exercises.")
    return SimpleNamespace(**found)


def all_exercises() -> list[Exercise]:
    """Every exercise of every chapter module (for the tests)."""
    result = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("ch"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            result += [v for v in vars(module).values() if isinstance(v, Exercise)]
    return result
