"""The exercise helper, and every chapter's exercises: reference solutions pass, known-wrong
answers fail (so a broken exercise cannot hide)."""

from __future__ import annotations

import pytest
from _helpers import all_exercises, solve

from course_utils.exercises import Exercise, chapter, expect

EXERCISES = all_exercises()


def _positive(answer):
    expect(answer > 0, f"{answer} is not positive.")


def test_check_hint_solution_messages(capsys):
    ex = Exercise("0.1", "Give a positive number.", _positive, hint_text="Try 1.",
                  solution_code="answer = 3", wrong=[-1])
    assert not ex.check()
    assert "not answered yet" in capsys.readouterr().out
    assert not ex.check(-2)
    assert "-2 is not positive" in capsys.readouterr().out
    assert not ex.check("a")  # a TypeError inside the checker is reported, not raised
    assert "could not check str" in capsys.readouterr().out
    result = ex.check(solve(ex))
    assert result and result == True  # noqa: E712  (compares like a bool)
    assert "correct" in capsys.readouterr().out
    result._ipython_display_()  # shows nothing in a notebook: the message is already printed
    assert capsys.readouterr().out == ""
    ex.hint()
    ex.solution()
    out = capsys.readouterr().out
    assert "Try 1." in out and "answer = 3" in out


def test_chapter_lookup():
    ex = chapter(1)
    assert isinstance(ex.q1, Exercise)
    with pytest.raises(ModuleNotFoundError):
        chapter(99)


def test_every_exercise_has_solution_and_wrong_answers():
    assert EXERCISES, "no exercises found"
    keys = [ex.key for ex in EXERCISES]
    assert len(keys) == len(set(keys)), "exercise keys must be unique"
    for ex in EXERCISES:
        assert ex.prompt and ex.hint_text and ex.solution_code, ex.key
        assert ex.wrong, f"exercise {ex.key} needs at least one known-wrong answer"


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.key)
def test_reference_solution_passes(ex, capsys):
    assert ex.check(solve(ex)), capsys.readouterr().out


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.key)
def test_wrong_answers_fail(ex, capsys):
    for answer in ex.wrong:
        assert not ex.check(answer), f"{ex.key} accepted the wrong answer {answer!r}"
