"""Chapter 1 (P4): dir() opens the toolbox, help() reads the manual."""

import torch

from course_utils.exercises import Exercise, expect


def _check_q1(answer):
    expect(isinstance(answer, list), f"`answer` should be a list of names, got {type(answer)}.")
    expect("is_available" in answer, "`is_available` is missing — did you look inside torch.cuda?")
    expect(all(isinstance(n, str) for n in answer), "every item should be a name (a str).")
    expect(not any(n.startswith("__") for n in answer),
           "drop the dunder names (those that start with '__').")
    missing = sorted(set(n for n in dir(torch.cuda) if not n.startswith("__")) - set(answer))
    expect(not missing, f"some names of torch.cuda are missing, e.g. {missing[:3]}.")


q1 = Exercise(
    "1.1",
    "Make `answer` the list of names in `torch.cuda` that do not start with '__'.",
    _check_q1,
    hint_text="dir(torch.cuda) lists every name; keep those where not name.startswith('__').",
    solution_code="""
        import torch
        answer = [name for name in dir(torch.cuda) if not name.startswith("__")]
    """,
    wrong=[["__doc__", "is_available"], ["device_count"], "is_available", ["is_available"]],
)


def _check_q2(answer):
    expect(not isinstance(answer, bool),
           f"`answer` is {answer!r}, a bool: you *called* the function. help() wants the "
           "function itself — leave out the ().")
    expect(callable(answer), f"`answer` should be a function, got {type(answer).__name__}.")
    expect(answer is torch.cuda.is_available,
           f"that is {getattr(answer, '__qualname__', answer)!r}, not torch.cuda.is_available.")


q2 = Exercise(
    "1.2",
    "Assign to `answer` exactly what you would pass to help() to read the manual of "
    "torch.cuda.is_available.",
    _check_q2,
    hint_text="help(f) needs the tool f itself. f() is what the tool *returns* (here True/False).",
    solution_code="""
        import torch
        answer = torch.cuda.is_available
    """,
    wrong=[False, True, "is_available", torch.cuda.device_count],
)


def _check_q3(answer):
    expect(isinstance(answer, str), f"give the version as a str, got {type(answer).__name__}.")
    expect(answer == torch.__version__,
           f"{answer!r} is not the version of the torch you run. Which name in dir(torch) "
           "starts and ends with '__' and says 'version'?")


q3 = Exercise(
    "1.3",
    "Use dir(torch) to find the dunder name that holds torch's version string, and assign "
    "its value to `answer`.",
    _check_q3,
    hint_text="[n for n in dir(torch) if 'version' in n] — then read torch.<that name>.",
    solution_code="""
        import torch
        answer = torch.__version__
    """,
    wrong=["__version__", "2.0.0", torch.version],
)
