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

Judging like a teacher (issue 23):

* numbers: ``as_number`` / ``as_whole`` take Python, NumPy and 0-d tensor numbers alike;
  ``close(value, expected, digits)`` compares to the digits the quantity deserves;
  ``as_pair`` takes any sequence of two, ``as_names`` any set type (or list, tuple, classes);
* learner code is run through ``call("evaluate(model, loader)", fn, model, loader)``: if it
  fails, loops or exits, the message names that call;
* every check runs with a time limit (``Exercise.time_limit``, default ``TIME_LIMIT`` seconds;
  see :func:`run_limited` for why a thread) and nothing the learner's code raises —
  ``SystemExit`` and ``KeyboardInterrupt`` included — escapes ``check()``.
"""

from __future__ import annotations

import ctypes
import importlib
import math
import numbers
import textwrap
import threading
from collections.abc import Callable, Set
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from course_utils.exercises.i18n import N_, check_lang, say, say_code

#: the time limit of a check (seconds) unless an exercise sets its own
TIME_LIMIT = 10.0


def expect(condition: bool, message: str) -> None:
    """Fail the check with ``message`` (shown to the learner) unless ``condition``."""
    if not condition:
        raise AssertionError(message)


# ------------------------------------------------------------------ judging helpers
#: thread id -> (what the checker is running, "running" | "returned"): the catch-all names it
_STEPS: dict[int, tuple[str, str]] = {}


class LearnerAssertion(Exception):
    """An ``assert`` in the learner's own code (not a verdict of the checker)."""


def call(what: str, fn: Callable, *args, **kwargs):
    """Run the learner's ``fn(*args, **kwargs)``, described as ``what`` (e.g.
    ``"evaluate(model, loader)"``): if it fails, hangs or exits, the message names that call.
    An ``AssertionError`` raised by the learner's own code is kept apart from the checker's
    verdicts (it becomes :class:`LearnerAssertion`)."""
    ident = threading.get_ident()
    _STEPS[ident] = (what, "running")
    try:
        result = fn(*args, **kwargs)
    except AssertionError as exc:
        raise LearnerAssertion(str(exc)) from exc
    _STEPS[ident] = (what, "returned")
    return result


def as_number(answer: Any, what: str = "") -> float | int:
    """A number from any numeric type: Python int/float, NumPy scalars (``np.int64(4096)``,
    ``np.float32(-0.6)``), 0-d arrays and one-element tensors. Refuses bools and strings with
    a message that says so."""
    what = what or N_("your answer")
    if hasattr(answer, "numel") and hasattr(answer, "item"):  # a tensor
        expect(answer.numel() == 1,
               f"give one number, not a tensor of shape {tuple(answer.shape)}.")
        answer = answer.item()
    elif hasattr(answer, "ndim") and hasattr(answer, "item") and not isinstance(answer, str):
        expect(getattr(answer, "size", 1) == 1,
               f"give one number, not an array of shape {tuple(answer.shape)}.")
        answer = answer.item()  # NumPy scalar or 0-d array -> Python number
    expect(not isinstance(answer, str),
           f"give {what} as a number, not the text {_short(answer)} (leave out the quotes).")
    expect(isinstance(answer, numbers.Real) and not isinstance(answer, bool),
           f"give {what} as a number, got {type(answer).__name__}.")
    return answer


def as_whole(answer: Any, what: str = "") -> int:
    """A whole number from any numeric type (``4096.0`` and ``np.int64(4096)`` are fine)."""
    what = what or N_("your answer")
    value = as_number(answer, what)
    expect(float(value).is_integer(), f"give {what} as a whole number, got {value!r}.")
    return int(value)


def close(value: float, expected: float, digits: int = 6) -> bool:
    """``value`` equals ``expected`` to ``digits`` significant digits (a float32 result or a
    value the learner rounded to that many digits still counts)."""
    return math.isclose(float(value), float(expected), rel_tol=10.0 ** -digits,
                        abs_tol=10.0 ** -(digits + 1))


def as_pair(answer: Any, what: str = "") -> tuple:
    """Two numbers from any sequence of two (tuple, list, array, tensor)."""
    what = what or N_("a pair of numbers")
    if hasattr(answer, "tolist") and not isinstance(answer, (str, bytes)):
        answer = answer.tolist()
    expect(isinstance(answer, (tuple, list)) and len(answer) == 2,
           f"give {what}, e.g. (a, b), got {_short(answer)}.")
    return tuple(as_number(v) for v in answer)


def as_names(answer: Any, what: str = "") -> set[str]:
    """A set of names from any set type, a list or a tuple; classes and objects count by
    their class name (``{nn.Dropout, nn.BatchNorm1d}`` reads as their names)."""
    expect(isinstance(answer, (Set, list, tuple)),
           f"give {what or N_('a set of names')}, e.g. {{'A', 'B'}}, got {_short(answer)}.")
    names = set()
    for item in answer:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, type):
            names.add(item.__name__)
        else:
            names.add(type(item).__name__)
    return names


def _short(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters (never raises)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 — a learner's object may not print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width else text[:width - 1] + "…"


def names_sorted(items) -> list[str]:
    """``items`` as a sorted list of str (mixed types never crash the message)."""
    return sorted(str(i) for i in items)


class _Stop(BaseException):
    """Thrown into a check's thread when its time is up."""


def _throw_into(thread: threading.Thread) -> None:
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                   ctypes.py_object(_Stop))


def run_limited(checker: Callable[[Any], None], answer: Any, seconds: float):
    """Run ``checker(answer)`` with a time limit: ``(exception or None, step, timed_out)``.

    Why a thread: a check runs learner code, and that code may loop for ever (in a
    function, ``__len__``, ``__getitem__``, ``forward``, a ``Lambda`` …). ``signal.alarm``
    interrupts only the main thread and does not exist on Windows; a child process would
    have to pickle the answer (lambdas, local classes and open writers cannot be). A daemon
    thread works the same in a Jupyter kernel on Linux, macOS and Windows: the kernel stops
    waiting after ``seconds`` and says so, then throws an exception into the thread
    (``PyThreadState_SetAsyncExc``), which ends a Python loop at once; a thread stuck inside
    a C call ends when the call returns, and as a daemon it never keeps Python from exiting.
    Everything the learner's code raises — ``SystemExit`` and ``KeyboardInterrupt`` included —
    is caught in the thread and reported, never passed on to the notebook.
    """
    box: dict[str, Any] = {}

    def target():
        try:
            checker(answer)
        except BaseException as exc:  # noqa: BLE001 — everything is reported by check()
            box["exc"] = exc
        finally:
            box["step"] = _STEPS.pop(threading.get_ident(), None)

    thread = threading.Thread(target=target, name="exercise-check", daemon=True)
    thread.start()
    try:
        thread.join(seconds)
    except KeyboardInterrupt:  # the notebook's stop button while the check runs
        _throw_into(thread)
        thread.join(1.0)
        return KeyboardInterrupt(), box.get("step"), False
    if thread.is_alive():
        step = _STEPS.get(thread.ident)
        _throw_into(thread)
        thread.join(1.0)
        return None, step, True
    return box.get("exc"), box.get("step"), False


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
    time_limit: float = TIME_LIMIT  # seconds; exercises that train set more

    def _say(self, message: str) -> None:
        print(say(self.lang, message))

    def question(self) -> None:
        prompt = say(self.lang, self.prompt)
        self._say(f"Exercise {self.key}: {prompt}")

    def check(self, answer: Any = Ellipsis) -> Checked:
        """Print ✓ or what is wrong; returns a truthy result when the answer is right.

        The checker runs with a time limit (``time_limit`` seconds, see :func:`run_limited`);
        nothing the learner's code raises or does escapes this call."""
        if answer is Ellipsis:
            self._say(f"Exercise {self.key}: not answered yet — replace `...` with your answer "
                      "(ex.hint() helps, ex.solution() shows one).")
            return Checked(False)
        exc, step, timed_out = run_limited(self.checker, answer, self.time_limit)
        what, state = step or (None, None)
        kind = "AssertionError" if isinstance(exc, LearnerAssertion) else type(exc).__name__
        if timed_out:
            where = what or N_("the check")
            self._say(f"✗ Exercise {self.key}: your code did not finish within "
                      f"{self.time_limit:g} s — look for a loop that never ends (while "
                      f"running {where}).")
            return Checked(False)
        if exc is None:
            self._say(f"✓ Exercise {self.key}: correct!")
            return Checked(True)
        if isinstance(exc, AssertionError):
            reason = say(self.lang, str(exc))
            self._say(f"✗ Exercise {self.key}: not quite. {reason}")
        elif isinstance(exc, SystemExit):
            self._say(f"✗ Exercise {self.key}: {what or N_('your code')} called sys.exit() "
                      f"(SystemExit {exc.code!r}): that ends a script, not a function — "
                      "return the result (or raise an error) instead.")
        elif isinstance(exc, KeyboardInterrupt):
            self._say(f"✗ Exercise {self.key}: the check was interrupted (KeyboardInterrupt "
                      f"while running {what or N_('the check')}).")
        elif what and state == "running":
            self._say(f"✗ Exercise {self.key}: {what} raised {kind}: {_cut(exc)}")
        elif what:
            self._say(f"✗ Exercise {self.key}: could not check what {what} returned "
                      f"({kind}: {_cut(exc)}).")
        else:  # a learner's odd value must not crash the checker
            self._say(f"✗ Exercise {self.key}: could not check {type(answer).__name__} "
                      f"({kind}: {_cut(exc)}).")
        return Checked(False)

    def hint(self) -> None:
        hint = say(self.lang, self.hint_text)
        self._say(f"Hint {self.key}: {hint}")

    def solution(self) -> None:
        self._say(f"Solution {self.key}:")
        print(say_code(self.lang, textwrap.dedent(self.solution_code).strip()))


def _cut(exc: BaseException, width: int = 160) -> str:
    """The first line of an exception's message, at most ``width`` characters."""
    try:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    except Exception:  # noqa: BLE001
        text = ""
    text = text or type(exc).__name__
    return text if len(text) <= width else text[:width - 1] + "…"


def chapter(number: int | str, lang: str | None = None) -> SimpleNamespace:
    """The exercises of chapter ``number`` as ``ex.q1``, ``ex.q2`` …

    ``lang="zh"`` prints questions, hints and every checker message in 简体中文 (the Chinese
    notebooks in notebooks/zh/ call it so); English is the default (or the ``COURSE_LANG``
    setting). It is also the language of everything else course_utils prints or raises in
    this kernel from then on (``course_utils.i18n.set_language``).
    """
    from course_utils import i18n  # not at the top: course_utils.i18n imports this package

    lang = check_lang(i18n.env_language() if lang is None else lang)
    i18n.set_language(lang)
    module = importlib.import_module(f"course_utils.exercises.ch{int(number):02d}")
    found = {k: v if lang == "en" else replace(v, lang=lang)
             for k, v in vars(module).items() if isinstance(v, Exercise)}
    if not found:
        raise LookupError(f"chapter {number} defines no exercises.")
    return SimpleNamespace(**found)
