"""The TensorBoard server as a child process: start it on a free port, wait until it answers,
ask it what it serves, stop it. Used by :func:`course_utils.tb.launch` and ``tb.show``.

The server is ``python -m tensorboard.main --logdir DIR --host 127.0.0.1 --port PORT``, started
in its own process group so that :meth:`TensorBoard.stop` ends it and every helper it spawned.
Every server still running when Python exits is stopped (``atexit``).

The HTTP routes are TensorBoard's own data API: ``/data/runs`` (run names),
``/data/plugin/scalars/tags`` (``{run: {tag: {...}}}``) and
``/data/plugin/scalars/scalars?run=R&tag=T`` (``[[wall_time, step, value], ...]``).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from course_utils.i18n import N_, tr

#: Servers started by :func:`launch` and not stopped yet (stopped at exit).
_RUNNING: list[TensorBoard] = []
# Direct HTTP to localhost: ignore any http_proxy setting of the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TensorBoardError(RuntimeError):
    """TensorBoard could not be started or did not answer."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now.

    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TensorBoard:
    """A TensorBoard server running as a child process; made by :func:`launch`.

    Attributes: ``logdir`` (Path), ``host``, ``port``, ``url`` (``http://127.0.0.1:PORT/``),
    ``process`` (``subprocess.Popen``). Use it in a ``with`` block or call :meth:`stop`.

    Example:
        >>> with launch("runs") as board:          # doctest: +SKIP
        ...     board.scalar_tags()                # {'.': ['y=x']}
    """

    def __init__(self, logdir: Path, host: str, port: int, process: subprocess.Popen, log):
        self.logdir, self.host, self.port, self.process = logdir, host, port, process
        self._log = log
        self.url = f"http://{host}:{port}/"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<TensorBoard {state} at {self.url} logdir={str(self.logdir)!r}>"

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process.poll() is None

    def get(self, route: str, timeout: float = 5.0) -> bytes:
        """GET ``route`` (e.g. ``"data/runs"``) from the server and return the body."""
        url = urllib.parse.urljoin(self.url, route.lstrip("/"))
        with _OPENER.open(url, timeout=timeout) as response:
            return response.read()

    def _json(self, route: str):
        return json.loads(self.get(route).decode("utf-8"))

    def runs(self) -> list[str]:
        """Run names TensorBoard found (``"."`` is the logdir itself)."""
        return self._json("data/runs")

    def scalar_tags(self) -> dict[str, list[str]]:
        """``{run: [scalar tag, ...]}`` as TensorBoard's scalars plugin serves them."""
        return {run: sorted(tags) for run, tags in self._json("data/plugin/scalars/tags").items()}

    def scalars(self, run: str, tag: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of one scalar tag, as served over HTTP."""
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        points = self._json(f"data/plugin/scalars/scalars?{query}")
        return [(int(step), float(value)) for _, step, value in points]

    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        if self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it (its whole process group on POSIX). Idempotent."""
        if self.running:
            self._signal(signal.SIGTERM if os.name == "posix" else None)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL if os.name == "posix" else "kill")
                self.process.wait(timeout)
        if self in _RUNNING:
            _RUNNING.remove(self)
        if not self._log.closed:
            self._log.close()

    def _signal(self, sig) -> None:
        if os.name == "posix":
            try:  # the child leads its own session: its group id is its pid
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
        elif sig == "kill":
            self.process.kill()
        else:
            self.process.terminate()


def launch(logdir: str | os.PathLike, port: int | None = None, host: str = "127.0.0.1",
           timeout: float = 60.0, reload_interval: float = 2.0) -> TensorBoard:
    """Start TensorBoard on ``logdir`` and return once it answers HTTP.

    Same as ``tensorboard --logdir LOGDIR --host 127.0.0.1 --port PORT`` in a terminal.
    ``port=None`` picks a free port. ``host`` other than 127.0.0.1 exposes your logs to
    the network — only do that on purpose. Call ``.stop()`` (or use ``with``) when done.

    Raises :class:`TensorBoardError` (with TensorBoard's own output) if it does not answer
    within ``timeout`` seconds, and ``FileNotFoundError`` if ``logdir`` does not exist.

    Example:
        >>> with launch("runs/p8") as board:   # doctest: +SKIP
        ...     print(board.url)               # http://127.0.0.1:38513/
    """
    logdir = Path(logdir).expanduser().resolve()
    if not logdir.is_dir():
        raise FileNotFoundError(tr(
            f"TensorBoard logdir {logdir} does not exist — log something with SummaryWriter "
            "into it first, or fix the path."
        ))
    tries = 1 if port is not None else 3  # a free port can be taken in between: retry
    for attempt in range(tries):
        chosen = port if port is not None else free_port(host)
        board = _start(logdir, host, chosen, reload_interval)
        try:
            _wait_until_ready(board, timeout)
            return board
        except TensorBoardError as exc:
            text = board.output()
            board.stop()
            busy = "already in use" in text or "Address in use" in text
            if busy and attempt + 1 < tries:
                continue
            hint = N_(" Pick another port (or port=None).") if busy else ""
            raise TensorBoardError(tr(
                f"TensorBoard on {logdir} did not start at http://{host}:{chosen}/ ({exc}).{hint}"
                f" Its output:\n{text.strip()}"
            )) from None
    raise AssertionError("unreachable")


def _start(logdir: Path, host: str, port: int, reload_interval: float) -> TensorBoard:
    cmd = [
        sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
        "--host", host, "--port", str(port), "--load_fast=false",
        "--reload_interval", str(reload_interval),
    ]  # fmt: skip
    log = tempfile.TemporaryFile()
    own_group = (
        {"start_new_session": True}
        if os.name == "posix"
        else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    )
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, **own_group)
    board = TensorBoard(logdir, host, port, process, log)
    _RUNNING.append(board)
    return board


def _wait_until_ready(board: TensorBoard, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not board.running:
            raise TensorBoardError(tr(f"it exited with code {board.process.returncode}"))
        try:
            board.get("data/runs", timeout=2.0)
            return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise TensorBoardError(tr(f"no HTTP answer within {timeout:g} s"))


@atexit.register
def stop_all() -> None:
    """Stop every server started by :func:`launch` that is still running."""
    for board in list(_RUNNING):
        board.stop()
