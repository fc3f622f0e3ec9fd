"""Clean interrupts of the command line: Ctrl+C (SIGINT) or SIGTERM at any moment of
``python -m course_utils`` ends it with ONE line ``interrupted; …`` and exit code 130
(143 for SIGTERM) — no traceback from any thread, nothing half written.

How:

* :func:`install` makes both signals raise :class:`Interrupted` (a ``KeyboardInterrupt``) in
  the main thread, so the ``finally`` blocks on the way out run: the engine closes its
  TensorBoard writer (flushing every event), :func:`course_utils.files.atomic_save` removes
  its temporary file. Only the first signal raises; a second one is ignored while the
  program cleans up, a third ends it at once (the atomic writes leave no half file even then).
* A signal that arrives while TensorBoard's writer is writing or closing, while
  ``course_utils.files``/``course_utils.caches`` write a file, or inside a ``__del__``
  (where Python would print "Exception ignored" and carry on) is held back and raised a
  moment later, when that code has finished.
* :func:`course_utils.__main__.main` (what ``python -m course_utils`` and the
  ``course-utils`` script run) installs them before the slow imports, calls :func:`finish`
  when the command is done, and :func:`leave` ends an interrupted process without waiting
  for background threads.

A leaf module: it imports nothing of the course (the command line imports it).

A notebook never installs these handlers: there Ctrl+C/"Interrupt kernel" raises Python's
own ``KeyboardInterrupt`` and ``cli.main`` still answers with exit code 130.

>>> exit_code(Interrupted(signal.SIGTERM))
143
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["Interrupted", "install", "exit_code", "report", "finish", "leave"]

#: The signals handled, and their exit codes (128 + signal number, as shells report them).
SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: Code during which a signal is held back: TensorBoard's event writer, the course's atomic
#: file writes (they are safe to interrupt, but finishing them keeps the work).
CRITICAL = (
    os.path.join("tensorboard", "summary", "writer"),
    os.path.join("torch", "utils", "tensorboard"),
    os.path.join("course_utils", "files.py"),
    os.path.join("course_utils", "caches.py"),
)
_RETRY_S = 0.02  # how soon a held-back signal is tried again

_state = {"installed": False, "raised": None, "extra": 0, "held": None, "done": False}


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM once :func:`install` ran."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl+C (a plain ``KeyboardInterrupt`` too), 143 for SIGTERM."""
    return SIGNALS.get(getattr(exc, "signum", signal.SIGINT), 130)


def install() -> None:
    """Handle SIGINT and SIGTERM as described above, for the rest of the process (main
    thread only; calling it again does nothing). Never inside IPython/Jupyter: there the
    kernel's own Ctrl+C ("Interrupt kernel") must keep working as usual."""
    if (_state["installed"] or threading.current_thread() is not threading.main_thread()
            or _in_ipython()):
        return
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. SIGINT under nohup stays off
            signal.signal(signum, _handler)
    _state["installed"] = True


def _in_ipython() -> bool:
    """True inside a running IPython shell or Jupyter kernel (importing IPython is not)."""
    ipython = sys.modules.get("IPython")
    return getattr(ipython, "get_ipython", lambda: None)() is not None


def _handler(signum, frame) -> None:
    if _state["done"]:
        return  # the work is finished: exit with its own code
    if _state["raised"] is not None:  # already on the way out
        _state["extra"] += 1
        if _state["extra"] >= 2:  # the third signal: leave at once
            leave(SIGNALS[_state["raised"]], force=True)
        return
    if _critical(frame):
        if _state["held"] is None:
            _state["held"] = signum
            _retry_later(signum)
        return
    _state["raised"], _state["held"] = signum, None
    raise Interrupted(signum)


def _critical(frame) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or any(part in code.co_filename for part in CRITICAL):
            return True
        frame = frame.f_back
    return False


def _retry_later(signum: int) -> None:
    def again():
        if _state["held"] == signum and not _state["done"] and _state["raised"] is None:
            _state["held"] = None
            if hasattr(signal, "pthread_kill"):  # POSIX: to the main thread itself
                signal.pthread_kill(threading.main_thread().ident, signum)
            else:  # Windows: Python runs the handler in the main thread anyway
                signal.raise_signal(signum)

    timer = threading.Timer(_RETRY_S, again)
    timer.daemon = True
    timer.start()


def report(exc: BaseException, what_next: str) -> int:
    """Print ``interrupted; <what_next>`` as the one line on stderr (after clearing any
    progress bar) and return the exit code for ``exc``."""
    try:
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
    except Exception:  # noqa: BLE001 – a bar that cannot close must not hide the message
        pass
    print(f"interrupted; {what_next}", file=sys.stderr, flush=True)
    return exit_code(exc)


def finish() -> int | None:
    """The command is done: from now on a signal is ignored (the program ends with the
    command's own code). Returns, once, a signal held back during the command's last writes
    and not yet raised; else None."""
    _state["done"] = True
    held = _state["held"]
    if held is None or _state["raised"] is not None:
        return None
    _state["raised"] = held
    return held


def leave(code: int, force: bool = False) -> None:
    """End the process with ``code``. After an interrupt (or ``force``) it leaves without
    waiting for background threads (TensorBoard's writer was closed on the way out, so
    nothing is lost, and none of them can print a traceback during shutdown)."""
    if force or _state["raised"] is not None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)
    sys.exit(code)
