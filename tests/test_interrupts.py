"""course_utils.interrupts in this process (the real signals are in tests/test_chaos.py)."""

from __future__ import annotations

import ast
import os
import signal
import sys
import threading
import time
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
    other = KeyboardInterrupt()
    other.signum = signal.SIGHUP  # a signal the course does not handle: Ctrl+C's code
    assert interrupts.exit_code(other) == 130


def test_report_clears_progress_bars_and_prints_one_line(capsys):
    bar = tqdm(total=10, desc="epoch 1/3", leave=False)
    bar.update(1)  # open and drawn (iterating a temporary iter(bar) would close it on its own)
    assert not bar.disable and bar in tqdm._instances
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


# ------------------------------------------------ the handler itself, called as Python calls it
@pytest.fixture
def fresh(monkeypatch):
    """A fresh handler state; ``leave`` and the retry timer recorded instead of acting."""
    for key, value in {"raised": None, "extra": 0, "held": None, "done": False}.items():
        monkeypatch.setitem(interrupts._state, key, value)
    calls = {"leave": [], "retry": []}
    monkeypatch.setattr(interrupts, "leave", lambda code, force=False:
                        calls["leave"].append((code, force)))
    monkeypatch.setattr(interrupts, "_retry_later", calls["retry"].append)
    return calls


def _frame_in(filename: str, name: str = "work"):
    """A real frame of a function compiled as if it lived in ``filename``."""
    space = {"sys": sys}
    exec(compile(f"def {name}():\n    return sys._getframe()\n", filename, "exec"), space)
    return space[name]()


def test_the_first_signal_raises_in_the_main_thread_and_the_third_leaves_at_once(fresh):
    with pytest.raises(interrupts.Interrupted) as info:
        interrupts._handler(signal.SIGTERM, None)
    assert info.value.signum == signal.SIGTERM and str(info.value) == "SIGTERM"
    assert interrupts._state["raised"] == signal.SIGTERM
    assert not _raises(signal.SIGINT, None)  # the second: ignored while cleaning up
    assert fresh["leave"] == [] and interrupts._state["extra"] == 1
    assert not _raises(signal.SIGINT, None)  # the third: out now, with the first's code
    assert fresh["leave"] == [(143, True)]


def _raises(signum, frame) -> bool:
    """Whether the handler raised (as an assertion's value: a KeyboardInterrupt escaping
    into pytest would stop the whole run instead of failing this test)."""
    try:
        interrupts._handler(signum, frame)
    except interrupts.Interrupted:
        return True
    return False


def test_a_signal_during_a_write_is_held_back_once_and_none_after_the_work_is_done(fresh):
    writing = _frame_in(os.path.join("x", "course_utils", "files.py"))
    assert not _raises(signal.SIGINT, writing)  # no raise inside the write
    assert interrupts._state["held"] == signal.SIGINT and fresh["retry"] == [signal.SIGINT]
    assert not _raises(signal.SIGTERM, writing)  # one held signal is enough
    assert interrupts._state["held"] == signal.SIGINT and fresh["retry"] == [signal.SIGINT]
    assert interrupts._state["raised"] is None
    interrupts._state["done"] = True
    assert not _raises(signal.SIGINT, None) and interrupts._state["raised"] is None


@pytest.mark.parametrize("where, held", [
    (os.path.join("site-packages", "torch", "utils", "tensorboard", "writer.py"), True),
    (os.path.join("site-packages", "tensorboard", "summary", "writer", "event.py"), True),
    (os.path.join("course_utils", "caches.py"), True),
    (os.path.join("course_utils", "engine.py"), False),
])
def test_which_code_holds_a_signal_back(where, held):
    assert interrupts._critical(_frame_in(where)) is held
    assert interrupts._critical(_frame_in("anything.py", "__del__")) is True
    assert interrupts._critical(None) is False
    inner = _frame_in("anything.py")  # called from a critical frame further out: held too
    assert interrupts._critical(types.SimpleNamespace(
        f_code=inner.f_code, f_back=_frame_in(where))) is held


def test_a_held_signal_is_sent_again_to_the_main_thread(monkeypatch):
    sent, raised = [], []
    monkeypatch.setattr(signal, "pthread_kill", lambda ident, signum: sent.append((ident, signum)))
    monkeypatch.setattr(signal, "raise_signal", raised.append)  # Windows' way: not on POSIX
    monkeypatch.setattr(interrupts, "_RETRY_S", 60.0)
    before = set(threading.enumerate())
    interrupts._retry_later(signal.SIGINT)
    timers = [t for t in set(threading.enumerate()) - before if isinstance(t, threading.Timer)]
    assert len(timers) == 1 and timers[0].daemon  # a pending retry never keeps a process alive
    timers[0].cancel()
    monkeypatch.setattr(interrupts, "_RETRY_S", 0.001)
    for key, value in {"raised": None, "held": signal.SIGTERM, "done": False}.items():
        monkeypatch.setitem(interrupts._state, key, value)
    interrupts._retry_later(signal.SIGTERM)
    for _ in range(500):
        if sent:
            break
        time.sleep(0.01)
    assert sent == [(threading.main_thread().ident, signal.SIGTERM)] and raised == []
    assert interrupts._state["held"] is None
    monkeypatch.setitem(interrupts._state, "held", signal.SIGINT)  # finished meanwhile:
    monkeypatch.setitem(interrupts._state, "done", True)  # nothing is sent
    interrupts._retry_later(signal.SIGINT)
    time.sleep(0.2)
    assert sent == [(threading.main_thread().ident, signal.SIGTERM)]
    assert interrupts._state["held"] == signal.SIGINT


def test_leave_waits_for_nothing_after_an_interrupt(monkeypatch):
    ended = []

    def exit_now(code):
        ended.append(code)
        raise SystemExit(f"os._exit({code})")

    monkeypatch.setattr(os, "_exit", exit_now)
    monkeypatch.setitem(interrupts._state, "raised", None)
    with pytest.raises(SystemExit) as info:
        interrupts.leave(0)  # a normal end: sys.exit, threads are waited for
    assert info.value.code == 0 and ended == []
    with pytest.raises(SystemExit):
        interrupts.leave(143, force=True)
    monkeypatch.setitem(interrupts._state, "raised", signal.SIGINT)
    with pytest.raises(SystemExit):
        interrupts.leave(130)
    assert ended == [143, 130]


def test_install_handles_both_signals_once_and_leaves_an_ignored_one_ignored(monkeypatch):
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setitem(interrupts._state, "installed", False)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # e.g. started with nohup
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        done = []
        worker = threading.Thread(target=lambda: done.append(interrupts.install()))
        worker.start()
        worker.join()
        assert done == [None] and not interrupts._state["installed"]  # not from a thread
        interrupts.install()
        assert interrupts._state["installed"] is True
        assert signal.getsignal(signal.SIGTERM) is interrupts._handler
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        interrupts.install()  # a second call changes nothing
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_outside_a_kernel_importing_ipython_is_not_a_kernel(monkeypatch):
    shell = types.ModuleType("IPython")
    shell.get_ipython = lambda: None  # imported, no shell running
    monkeypatch.setitem(sys.modules, "IPython", shell)
    assert interrupts._in_ipython() is False
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))  # an old one
    assert interrupts._in_ipython() is False
    monkeypatch.delitem(sys.modules, "IPython")
    assert interrupts._in_ipython() is False


@pytest.mark.parametrize("raised, code", [(None, 0), (3, 3), ("a message of its own", 2)])
def test_a_command_that_exits_by_itself_keeps_its_code(program, monkeypatch, raised, code):
    """``sys.exit()`` → 0, ``sys.exit(3)`` → 3, ``sys.exit("…")`` → 2 (as Python's own)."""
    def exits(argv):
        raise SystemExit(raised)

    monkeypatch.setattr(cli, "main", exits)
    assert program.main([]) == code


def test_an_interrupt_just_after_the_command_says_everything_is_saved(program, monkeypatch,
                                                                       capsys):
    real_finish = interrupts.finish
    calls = []

    def interrupted_at_the_end():
        calls.append(1)
        if len(calls) == 1:  # the signal lands between the command's return and finish()
            raise interrupts.Interrupted(signal.SIGTERM)
        return real_finish()

    monkeypatch.setattr(cli, "main", lambda argv: 0)
    monkeypatch.setattr(interrupts, "finish", interrupted_at_the_end)
    try:
        code = program.main([])
    except KeyboardInterrupt:  # escaping into pytest would stop the run, not fail the test
        pytest.fail("the interrupt escaped main() with a traceback")
    assert code == 143
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "finished" in err and "saved" in err, err
    assert "nothing" not in err


def test_a_held_sigterm_keeps_its_own_exit_code(program, monkeypatch, capsys):
    def finishes_while_sigterm_waits(argv):
        interrupts._state["held"] = signal.SIGTERM
        return 0

    monkeypatch.setattr(cli, "main", finishes_while_sigterm_waits)
    assert program.main([]) == 143
    assert "saved" in capsys.readouterr().err


def test_run_ends_the_process_with_the_programs_code(program, monkeypatch):
    ended = []
    monkeypatch.setattr(interrupts, "leave", ended.append)
    monkeypatch.setattr(cli, "main", lambda argv: 1)
    monkeypatch.setattr(sys, "argv", ["course-utils"])
    program.run()
    assert ended == [1]
