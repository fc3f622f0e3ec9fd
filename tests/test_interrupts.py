"""course_utils.interrupts in this process (the real signals are in tests/test_chaos.py)."""

from __future__ import annotations

import signal
import sys
import types

from tqdm import tqdm

from course_utils import interrupts


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
