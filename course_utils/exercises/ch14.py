"""Appendix B (training that survives): an atomic save written by hand, and an exit code
(in the order the notebook asks them)."""

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import torch

from course_utils.exercises import Exercise, _short, as_whole, call, expect
from course_utils.exercises.i18n import N_


def _check_exit_code(answer):
    from course_utils.cli import main

    expect(not isinstance(answer, (bool, str)),
           f"`answer` should be the exit code, an int (result.returncode), got {_short(answer)}.")
    answer = as_whole(answer, N_("the exit code"))
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
    time_limit=30.0,  # it runs the course's command line
)


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError, TypeError):
        return False


def _check_atomic(fn):
    """Watch the checkpoint through the learner's save: every torch.save (into a path or an
    open file — ``os.fdopen(mkstemp()[0])`` included), every os.replace / os.rename /
    os.remove / os.unlink. The old checkpoint must be there, whole, until one rename puts the
    new file (written beside it) in its place."""
    expect(callable(fn), "`answer` should be a function atomic_save(obj, path).")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "checkpoints"
        folder.mkdir()
        target = folder / "last.pt"
        torch.save({"epoch": 1}, target)  # the previous checkpoint, which must survive a crash
        before = os.stat(target)
        saves, moves, gaps = [], [], []
        real = {"save": torch.save, "replace": os.replace, "rename": os.rename,
                "remove": os.remove, "unlink": os.unlink}

        def spy_save(obj, f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)):
                saves.append(_same_file(f, target) or Path(f).resolve() == target.resolve())
            else:  # a file object: is it the checkpoint itself?
                try:
                    mine = os.fstat(f.fileno())
                    old = os.stat(target)
                    saves.append((mine.st_ino, mine.st_dev) == (old.st_ino, old.st_dev))
                except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
                    saves.append(False)
            return real["save"](obj, f, *args, **kwargs)

        def spy_move(kind):
            def move(src, dst, *args, **kwargs):
                if _same_file(src, target):
                    gaps.append(N_("moving the checkpoint away"))
                if Path(os.fspath(dst)).resolve() == target.resolve():
                    moves.append(Path(os.fspath(src)).resolve())
                return real[kind](src, dst, *args, **kwargs)
            return move

        def spy_remove(kind):
            def remove(path, *args, **kwargs):
                if _same_file(path, target):
                    gaps.append(N_("deleting the checkpoint"))
                return real[kind](path, *args, **kwargs)
            return remove

        torch.save = spy_save
        os.replace, os.rename = spy_move("replace"), spy_move("rename")
        os.remove, os.unlink = spy_remove("remove"), spy_remove("unlink")
        try:
            call("atomic_save(obj, path)", fn, {"epoch": 2, "w": torch.arange(3.0)}, str(target))
        finally:
            torch.save, os.replace, os.rename = real["save"], real["replace"], real["rename"]
            os.remove, os.unlink = real["remove"], real["unlink"]
        expect(saves, "nothing was written with torch.save.")
        expect(not any(saves),
               "torch.save wrote straight into the checkpoint's own path: a crash in the middle "
               "leaves a broken file where the good one was. Write a temporary file first.")
        gap = gaps[0] if gaps else ""
        expect(not gaps, f"{gap} before the new file takes its place "
               "leaves a moment with no checkpoint at all (a crash then loses both): "
               "os.replace(tmp, path) puts the new file in the old one's place in one step.")
        expect(target.exists(), "after the call there is no checkpoint at the path: "
               "os.replace the temporary file onto it.")
        loaded = torch.load(target, weights_only=True)
        expect(loaded.get("epoch") == 2 and torch.equal(loaded["w"], torch.arange(3.0)),
               "after the call the checkpoint does not hold the new object: os.replace the "
               "temporary file onto the path.")
        after = os.stat(target)
        expect(moves or (after.st_ino, after.st_dev) != (before.st_ino, before.st_dev),
               "the checkpoint file was rewritten in place (the same file, new bytes): a crash "
               "in the middle leaves it half written. Write a temporary file, then os.replace.")
        expect(not moves or moves[-1].parent == folder.resolve(),
               f"the temporary file is in {moves[-1].parent if moves else ''}, not beside the "
               "checkpoint: os.replace is atomic only within one file system, so use the same "
               "folder.")
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


def _remove_then_rename(obj, path):
    tmp = f"{path}.tmp"
    torch.save(obj, tmp)
    os.remove(path)
    os.rename(tmp, path)


def _into_open_file(obj, path):
    with open(path, "wb") as f:
        torch.save(obj, f)


def _copy_over(obj, path):
    tmp = f"{path}.tmp"
    torch.save(obj, tmp)
    shutil.copyfile(tmp, path)
    os.remove(tmp)


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
    wrong=[_direct, _elsewhere, _no_replace, _remove_then_rename, _into_open_file, _copy_over,
           "os.replace"],
)
