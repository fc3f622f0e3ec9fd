"""Appendix B (training that survives): an atomic save written by hand, and an exit code
(in the order the notebook asks them)."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from course_utils.exercises import Exercise, expect


def _check_exit_code(answer):
    from course_utils.cli import main

    expect(isinstance(answer, int) and not isinstance(answer, bool),
           f"`answer` should be the exit code, an int (result.returncode), got {answer!r}.")
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            code = main(["train", "--epochs", "0"])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    expect(answer != 0, "0 means success; `--epochs 0` is refused.")
    expect(answer == code, f"{answer} is not what the command returned — run it and read "
           "result.returncode.")


q2 = Exercise(
    "B.2",
    "Run `python -m course_utils train --epochs 0` with subprocess.run([sys.executable, '-m', "
    "'course_utils', 'train', '--epochs', '0'], capture_output=True, text=True) and assign its "
    "exit code (returncode) to `answer`. What does the message on stderr say?",
    _check_exit_code,
    hint_text="result = subprocess.run(...); answer = result.returncode; print(result.stderr)",
    solution_code="""
        import subprocess, sys
        result = subprocess.run([sys.executable, "-m", "course_utils", "train", "--epochs", "0"],
                                capture_output=True, text=True)
        answer = result.returncode
    """,
    wrong=[0, 1, "2", True],
)


def _check_atomic(fn):
    expect(callable(fn), "`answer` should be a function atomic_save(obj, path).")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "checkpoints"
        folder.mkdir()
        target = folder / "last.pt"
        torch.save({"epoch": 1}, target)  # the previous checkpoint, which must survive a crash
        written = []
        real_save = torch.save

        def spy(obj, f, *args, **kwargs):
            written.append(Path(f) if isinstance(f, (str, os.PathLike)) else None)
            return real_save(obj, f, *args, **kwargs)

        torch.save = spy
        try:
            fn({"epoch": 2, "w": torch.arange(3.0)}, str(target))
        finally:
            torch.save = real_save
        expect(written, "nothing was written with torch.save.")
        first = written[0]
        expect(first is not None and first.resolve() != target.resolve(),
               "torch.save wrote straight into the checkpoint's own path: a crash in the middle "
               "leaves a broken file where the good one was. Write a temporary file first.")
        expect(first.resolve().parent == folder.resolve(),
               f"the temporary file is in {first.parent}, not beside the checkpoint: "
               "os.replace is atomic only within one file system, so use the same folder.")
        loaded = torch.load(target, weights_only=True)
        expect(loaded.get("epoch") == 2 and torch.equal(loaded["w"], torch.arange(3.0)),
               "after the call the checkpoint does not hold the new object: os.replace the "
               "temporary file onto the path.")
        left = sorted(p.name for p in folder.iterdir() if p.name != "last.pt")
        expect(not left, f"temporary files were left behind: {left}.")


def _direct(obj, path):
    torch.save(obj, path)


def _elsewhere(obj, path):
    with tempfile.NamedTemporaryFile(suffix=".tmp", delete=False) as f:
        tmp = f.name
    torch.save(obj, tmp)
    shutil.move(tmp, path)


def _no_replace(obj, path):
    torch.save(obj, str(path) + ".tmp")


q1 = Exercise(
    "B.1",
    "Write atomic_save(obj, path): save `obj` with torch.save so that the file at `path` is "
    "always either the old complete checkpoint or the new complete one, never half written — "
    "write a temporary file in the same folder, then os.replace it onto `path`. Assign the "
    "function to `answer`. The checker spies on torch.save and looks at the folder afterwards.",
    _check_atomic,
    hint_text="tmp = f'{path}.tmp'; torch.save(obj, tmp); os.replace(tmp, path)",
    solution_code="""
        import os
        import torch

        def atomic_save(obj, path):
            tmp = f"{path}.tmp"
            torch.save(obj, tmp)
            os.replace(tmp, path)  # atomic: readers see the old file or the new one

        answer = atomic_save
    """,
    wrong=[_direct, _elsewhere, _no_replace, "os.replace"],
)
