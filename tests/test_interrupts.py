"""course_utils.interrupts in this process (the real signals are in tests/test_chaos.py)."""

from __future__ import annotations

import ast
import signal
import sys
import types
from pathlib import Path

import pytest
from tqdm import tqdm

from course_utils import cli, interrupts


def test_exit_codes():
    assert interrupts.exit_code(KeyboardInterrupt()) == 130  # a notebook's plain Ctrl+C
    assert interrupts.exit_code(interrupts.Interrupted(signal.SIGINT)) == 130
    assert interrupts.exit_code(interrupts.Interrupted(signal.SIGTERM)) == 143
    assert isinstance(interrupts.Interrupted(signal.SIGTERM), KeyboardInterrupt)


def test_report_clears_progress_bars_and_prints_one_line(capsys):
    bar = tqdm(range(10), desc="epoch 1/3", leave=False)
    next(iter(bar))
    capsys.readouterr()
    assert interrupts.report(interrupts.Interrupted(signal.SIGTERM), "nothing was written.") == 143
    err = capsys.readouterr().err
    assert err.endswith("interrupted; nothing was written.\n")
    assert "interrupted" not in err[:-len("interrupted; nothing was written.\n")]
    assert bar.disable or bar not in tqdm._instances  # closed


def test_never_installed_inside_a_jupyter_kernel(monkeypatch):
    shell = types.ModuleType("IPython")
    shell.get_ipython = lambda: object()  # a running kernel
    monkeypatch.setitem(sys.modules, "IPython", shell)
    monkeypatch.setitem(interrupts._state, "installed", False)
    before = signal.getsignal(signal.SIGTERM)
    interrupts.install()
    assert signal.getsignal(signal.SIGTERM) is before and not interrupts._state["installed"]


def test_interrupts_is_a_leaf_module():
    """It imports nothing of the course, so the command line can import it (no cycle)."""
    tree = ast.parse(Path(interrupts.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [name for name in imported if name.startswith("course_utils")], imported


@pytest.fixture
def program(monkeypatch):
    """course_utils.__main__ with the signal handlers left alone and a fresh state."""
    from course_utils import __main__ as program

    monkeypatch.setattr(interrupts, "install", lambda: None)
    for key, value in {"raised": None, "extra": 0, "held": None, "done": False}.items():
        monkeypatch.setitem(interrupts._state, key, value)
    return program


def test_the_program_returns_the_commands_exit_code(program, monkeypatch, capsys):
    assert program.main(["--version"]) == 0  # argparse's SystemExit, as a code
    assert program.main(["train", "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    monkeypatch.setattr(cli, "main", lambda argv: 1)
    assert program.main([]) == 1 and capsys.readouterr().err == ""


def test_the_program_reports_an_interrupt_in_one_line(program, monkeypatch, capsys):
    def interrupted(argv):
        raise interrupts.Interrupted(signal.SIGTERM)

    monkeypatch.setattr(cli, "main", interrupted)  # e.g. during the imports
    assert program.main([]) == 143
    err = capsys.readouterr().err
    assert err.startswith("interrupted; ") and err.count("\n") == 1 and "nothing" in err


def test_a_signal_held_back_during_the_last_write_is_reported(program, monkeypatch, capsys):
    def finishes_while_a_signal_waits(argv):
        interrupts._state["held"] = signal.SIGINT  # came during the last checkpoint write
        return 0

    monkeypatch.setattr(cli, "main", finishes_while_a_signal_waits)
    assert program.main([]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted; ") and "saved" in err and err.count("\n") == 1
    assert interrupts.finish() is None  # reported once; later signals are ignored
    assert interrupts._state["done"]
