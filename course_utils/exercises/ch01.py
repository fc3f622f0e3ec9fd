"""Chapter 1 (P4): dir() and help()."""

from course_utils.exercises import Exercise, expect


def _check_q1(answer):
    expect(isinstance(answer, list), f"`answer` should be a list of names, got {type(answer)}.")
    expect("is_available" in answer, "`is_available` is missing — did you look inside torch.cuda?")
    expect(all(isinstance(n, str) for n in answer), "every item should be a name (a str).")
    expect(not any(n.startswith("__") for n in answer),
           "drop the dunder names (those that start with '__').")


q1 = Exercise(
    "1.1",
    "Make `answer` the list of names in `torch.cuda` that do not start with '__'.",
    _check_q1,
    hint_text="dir(torch.cuda) lists every name; keep those where not name.startswith('__').",
    solution_code="""
        import torch
        answer = [name for name in dir(torch.cuda) if not name.startswith("__")]
    """,
    wrong=[["__doc__", "is_available"], ["device_count"], "is_available"],
)
