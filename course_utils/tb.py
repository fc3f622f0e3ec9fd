"""TensorBoard from a notebook: launch it, prove it answers, show it, read event files back.

The course (P7–P8) opens TensorBoard from a terminal::

    tensorboard --logdir=logs --port=6007

This module does the same from Python, safely:

* :func:`launch` starts ``python -m tensorboard.main`` as a child process bound to
  ``127.0.0.1`` on a free port, waits (bounded) until its HTTP server answers and returns a
  :class:`TensorBoard` handle (``.url``, ``.stop()``, usable as a context manager). Every server
  still running when Python exits is stopped (``atexit``).
* :func:`show` shows TensorBoard inline in JupyterLab. In fast/CI mode, or outside a notebook
  kernel, it starts the server, checks over HTTP that the logged scalar tags are visible, stops
  it (no process is left behind) and shows a static matplotlib plot of the same scalars.
* :func:`read_scalars` reads the event files back with TensorBoard's own ``EventAccumulator``;
  :func:`plot_scalars` draws them.
* :func:`check_image` explains, before ``add_image``/``add_images`` does something odd, what is
  wrong with an image's shape, dtype or layout.

The HTTP routes used are TensorBoard's own data API (``tensorboard/plugins/core/core_plugin.py``
and ``tensorboard/plugins/scalar/scalars_plugin.py``): ``/data/runs`` (list of run names),
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
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple
from pathlib import Path

import numpy as np

from course_utils import settings

__all__ = [
    "TensorBoard", "TensorBoardError", "launch", "show", "read_scalars", "read_runs",
    "read_tags", "read_images", "plot_scalars", "check_image", "ImageShape", "free_port",
    "stop_all", "check_server",
]  # fmt: skip

#: Servers started by :func:`launch` and not stopped yet (stopped at exit).
_RUNNING: list[TensorBoard] = []
# Direct HTTP to localhost: ignore any http_proxy setting of the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TensorBoardError(RuntimeError):
    """TensorBoard could not be started, did not answer, or showed unexpected data."""


# ------------------------------------------------------------------------------ server
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
    ``process`` (``subprocess.Popen``).

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

    # -- HTTP ---------------------------------------------------------------------------
    def get(self, route: str, timeout: float = 5.0) -> bytes:
        """GET ``route`` (e.g. ``"data/runs"``) from the server and return the body."""
        url = urllib.parse.urljoin(self.url, route.lstrip("/"))
        with _OPENER.open(url, timeout=timeout) as response:
            return response.read()

    def get_json(self, route: str, timeout: float = 5.0):
        """GET ``route`` and decode it as JSON."""
        return json.loads(self.get(route, timeout=timeout).decode("utf-8"))

    def runs(self) -> list[str]:
        """Run names TensorBoard found (``"."`` is the logdir itself)."""
        return self.get_json("data/runs")

    def scalar_tags(self) -> dict[str, list[str]]:
        """``{run: [scalar tag, ...]}`` as TensorBoard's scalars plugin serves them."""
        served = self.get_json("data/plugin/scalars/tags")
        return {run: sorted(tags) for run, tags in served.items()}

    def scalars(self, run: str, tag: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of one scalar tag, as served over HTTP."""
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        points = self.get_json(f"data/plugin/scalars/scalars?{query}")
        return [(int(step), float(value)) for _, step, value in points]

    def wait_for_tags(self, expected: dict[str, list[str]], timeout: float = 30.0) -> dict:
        """Poll until every ``{run: [tags]}`` in ``expected`` is served; return what is served.

        Raises :class:`TensorBoardError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        served: dict = {}
        while True:
            try:
                served = self.scalar_tags()
            except (OSError, ValueError):
                served = {}
            missing = {r: sorted(set(t) - set(served.get(r, []))) for r, t in expected.items()}
            missing = {r: t for r, t in missing.items() if t}
            if not missing:
                return served
            if time.monotonic() > deadline or not self.running:
                raise TensorBoardError(
                    f"TensorBoard at {self.url} did not show the scalar tags {missing} within "
                    f"{timeout:.0f} s (it serves {served}). Is --logdir {self.logdir} right?"
                )
            time.sleep(0.2)

    # -- life cycle ---------------------------------------------------------------------
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


def launch(
    logdir: str | os.PathLike,
    port: int | None = None,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    reload_interval: float = 2.0,
) -> TensorBoard:
    """Start TensorBoard on ``logdir`` and return once it answers HTTP.

    Same as ``tensorboard --logdir LOGDIR --host 127.0.0.1 --port PORT`` in a terminal.
    ``port=None`` picks a free port. ``host`` other than 127.0.0.1 exposes your logs to
    the network — only do that on purpose. Call ``.stop()`` (or use ``with``) when done.

    Raises :class:`TensorBoardError` (with TensorBoard's own output) if it does not answer
    within ``timeout`` seconds, and ``FileNotFoundError`` if ``logdir`` does not exist.

    Example:
        >>> board = launch("runs/p8")          # doctest: +SKIP
        >>> board.url                          # 'http://127.0.0.1:38513/'
        >>> board.stop()
    """
    logdir = Path(logdir).expanduser().resolve()
    if not logdir.is_dir():
        raise FileNotFoundError(
            f"TensorBoard logdir {logdir} does not exist — log something with SummaryWriter "
            "into it first, or fix the path."
        )
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
            hint = " Pick another port (or port=None)." if busy else ""
            raise TensorBoardError(
                f"TensorBoard on {logdir} did not start at http://{host}:{chosen}/ ({exc}).{hint}"
                f" Its output:\n{text.strip()}"
            ) from None
    raise AssertionError("unreachable")


def _start(logdir: Path, host: str, port: int, reload_interval: float) -> TensorBoard:
    cmd = [
        sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
        "--host", host, "--port", str(port), "--load_fast=false",
        "--reload_interval", str(reload_interval),
    ]  # fmt: skip
    log = tempfile.TemporaryFile()
    extra = (
        {"start_new_session": True}
        if os.name == "posix"
        else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    )
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, **extra)
    board = TensorBoard(logdir, host, port, process, log)
    _RUNNING.append(board)
    return board


def _wait_until_ready(board: TensorBoard, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not board.running:
            raise TensorBoardError(f"it exited with code {board.process.returncode}")
        try:
            board.get("data/runs", timeout=2.0)
            return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise TensorBoardError(f"no HTTP answer within {timeout:g} s")


@atexit.register
def stop_all() -> None:
    """Stop every server started by :func:`launch` that is still running."""
    for board in list(_RUNNING):
        board.stop()


# ------------------------------------------------------------------------------ reading
def _event_dirs(logdir: Path) -> list[Path]:
    return sorted({p.parent for p in logdir.rglob("*tfevents*") if p.is_file()})


def _accumulators(logdir: str | os.PathLike, **size_guidance):
    """``(run name, loaded EventAccumulator)`` for every folder below ``logdir`` with events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(f"logdir {logdir} does not exist.")
    for folder in _event_dirs(logdir):
        acc = EventAccumulator(str(folder), size_guidance=size_guidance)
        acc.Reload()
        yield folder.relative_to(logdir).as_posix(), acc


def _prefixed(run: str, tag: str) -> str:
    return tag if run == "." else f"{run}/{tag}"


def read_runs(logdir: str | os.PathLike) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``{run: {tag: [(step, value), ...]}}`` for every folder below ``logdir`` holding event
    files. Runs are named as TensorBoard names them: the path relative to ``logdir``, with
    ``"."`` for ``logdir`` itself. Values are float32 as stored (``0.1`` reads as 0.10000000149).
    """
    return {
        run: {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
        for run, acc in _accumulators(logdir, scalars=0)
    }


def read_tags(logdir: str | os.PathLike) -> dict[str, list[str]]:
    """``{"scalars": [...], "images": [...], ...}``: every tag logged under ``logdir``, by kind
    (run-prefixed like :func:`read_scalars`). Kinds with no tags are left out; ``"graph"``
    lists the runs that hold a model graph (``add_graph``)."""
    result: dict[str, set] = {}
    for run, acc in _accumulators(logdir, scalars=1, images=1, tensors=1, histograms=1):
        for kind, tags in acc.Tags().items():
            if isinstance(tags, list) and tags:
                result.setdefault(kind, set()).update(_prefixed(run, t) for t in tags)
            elif kind == "graph" and tags is True:
                result.setdefault("graph", set()).add(run)
    return {kind: sorted(tags) for kind, tags in sorted(result.items())}


def read_images(logdir: str | os.PathLike) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every image logged under ``logdir`` as ``{tag: [(step, uint8 array (H, W, 3)), ...]}``,
    decoded from the PNGs TensorBoard stores (lossless, so pixels equal what was logged)."""
    import io as _io

    from PIL import Image

    result = {}
    for run, acc in _accumulators(logdir, images=0):
        for tag in acc.Tags()["images"]:
            result[_prefixed(run, tag)] = [
                (e.step, np.asarray(Image.open(_io.BytesIO(e.encoded_image_string)).convert("RGB")))
                for e in acc.Images(tag)
            ]
    return result


def read_scalars(logdir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar logged under ``logdir`` as ``{tag: [(step, value), ...]}``.

    Reads the event files with TensorBoard's ``EventAccumulator``. Tags of sub-folders
    (runs) are prefixed with the run name, e.g. ``"p8/y=x"``; tags of ``logdir`` itself are not.
    Raises ``FileNotFoundError`` for a missing folder; an empty folder gives ``{}``.

    Example:
        >>> w = SummaryWriter(d); [w.add_scalar("y=x", i, i) for i in range(3)]; w.close()
        >>> read_scalars(d)                                # doctest: +SKIP
        {'y=x': [(0, 0.0), (1, 1.0), (2, 2.0)]}
    """
    result = {}
    for run, tags in read_runs(logdir).items():
        for tag, points in tags.items():
            result[_prefixed(run, tag)] = points
    return result


def plot_scalars(logdir: str | os.PathLike, tags: list[str] | None = None, ncols: int = 3):
    """A matplotlib figure with one panel per scalar tag (all tags, or ``tags``).

    Returns a :class:`course_utils.viz.Figure`, shown when it is a cell's last value.
    Raises ``KeyError`` naming the tags that exist when a requested tag is missing.
    """
    from course_utils.viz import new_figure

    scalars = read_scalars(logdir)
    if tags is None:
        tags = sorted(scalars)
    unknown = [t for t in tags if t not in scalars]
    if unknown:
        raise KeyError(f"no scalar tag(s) {unknown} in {logdir}; it has {sorted(scalars)}.")
    n = max(len(tags), 1)
    cols = min(ncols, n)
    rows = -(-n // cols)
    fig = new_figure(4 * cols, 3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, tag in zip(axes, tags, strict=False):
        steps, values = zip(*scalars[tag], strict=True) if scalars[tag] else ((), ())
        ax.plot(steps, values, marker="." if len(steps) < 30 else None)
        ax.set_title(tag)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[len(tags):]:
        ax.axis("off")
    if not tags:
        axes[0].text(0.5, 0.5, f"no scalars in {logdir}", ha="center", va="center")
    return fig


# ------------------------------------------------------------------------------ showing
def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _display(obj) -> None:
    if _in_notebook():
        from IPython.display import display

        display(obj)
    elif hasattr(obj, "savefig"):
        print(f"(static plot with {len(obj.axes)} panel(s); display it in a notebook)")


def check_server(logdir: str | os.PathLike, timeout: float = 60.0) -> dict[str, list[str]]:
    """Start TensorBoard on ``logdir``, wait until it serves every scalar tag found in the
    event files, stop it, and return ``{run: [tags]}`` as served. No process is left behind.
    """
    expected = {run: sorted(tags) for run, tags in read_runs(logdir).items() if tags}
    with launch(logdir, timeout=timeout) as board:
        served = board.wait_for_tags(expected, timeout=timeout)
        url = board.url
    print(f"TensorBoard answered at {url} with runs {sorted(served)} and scalar tags "
          f"{sorted({t for tags in served.values() for t in tags})}; stopped again.")
    return served


_SHOWN: dict[Path, TensorBoard] = {}


def show(logdir: str | os.PathLike, height: int = 600, static: bool | None = None):
    """Show TensorBoard for ``logdir`` inline in JupyterLab (reusing a server already
    started by ``show`` for the same folder).

    ``static=True`` — the default in fast/CI mode and outside a notebook kernel — instead
    starts the server, proves over HTTP that it serves the logged scalar tags, stops it, and
    shows a static plot of the same scalars read back from the event files, and returns None.
    Interactive, it returns the :class:`TensorBoard` handle (``.stop()`` it when done).

    Behind a proxy (e.g. jupyter-server-proxy) set ``TENSORBOARD_PROXY_URL`` like
    ``/proxy/%PORT%/``. On Colab it hands over to TensorBoard's own notebook helper.
    """
    logdir = Path(logdir).expanduser().resolve()
    if static is None:
        static = settings.fast_mode() or not _in_notebook()
    print(f"Terminal equivalent: tensorboard --logdir \"{logdir}\" --port 6007")
    if static:
        check_server(logdir)
        _display(plot_scalars(logdir))
        others = {kind: tags for kind, tags in read_tags(logdir).items() if kind != "scalars"}
        if others:  # the static plot shows scalars only: say what else TensorBoard would show
            print("Also logged (see them in TensorBoard):",
                  "; ".join(f"{'model graph in run' if kind == 'graph' else kind}: "
                            f"{', '.join(tags)}" for kind, tags in others.items()))
        return None
    if "google.colab" in sys.modules:  # Colab proxies ports itself: use TensorBoard's helper
        import shlex

        from tensorboard import notebook

        notebook.start(f"--logdir {shlex.quote(str(logdir))}")
        return None
    board = _SHOWN.get(logdir)
    if board is None or not board.running:
        board = _SHOWN[logdir] = launch(logdir)
    from IPython.display import HTML, display

    src = os.environ.get("TENSORBOARD_PROXY_URL", "").replace("%PORT%", str(board.port))
    src = src or board.url
    display(HTML(f'<p>TensorBoard: <a href="{src}" target="_blank">{src}</a> '
                 f"(stop with <code>.stop()</code> on the returned handle)</p>"
                 f'<iframe src="{src}" width="100%" height="{int(height)}" frameborder="0">'
                 "</iframe>"))
    return board


# ------------------------------------------------------------------------------ images
#: ``n`` is None for a single image. Channels are 1 for ``HW`` data.
ImageShape = namedtuple("ImageShape", "n channels height width")
_FORMATS = ("CHW", "HWC", "HW", "NCHW", "NHWC")


def check_image(img, dataformats: str = "CHW") -> ImageShape:
    """Check an image (or batch) before ``writer.add_image``/``add_images``; return its shape.

    Accepts a ``torch.Tensor`` or ``numpy.ndarray`` laid out as ``dataformats`` (``"CHW"``,
    ``"HWC"``, ``"HW"`` for ``add_image``; ``"NCHW"``, ``"NHWC"`` for ``add_images``), uint8
    in 0–255 or float in [0, 1]. Raises ``TypeError``/``ValueError`` that says what is wrong
    and how to fix it: a PIL image (convert with ``np.array``), wrong number of dimensions,
    channels on the wrong side (HWC passed as CHW), floats in 0–255 or normalised below 0.

    Example:
        >>> check_image(np.zeros((512, 768, 3), np.uint8), "HWC")
        ImageShape(n=None, channels=3, height=512, width=768)
    """
    fmt = str(dataformats).upper()
    if fmt not in _FORMATS:
        raise ValueError(f"dataformats={dataformats!r} is not one of {_FORMATS}.")
    arr = _as_array(img)
    if arr.ndim != len(fmt):
        guess = [f for f in _FORMATS if len(f) == arr.ndim]
        fix = f" Try dataformats={guess[0]!r}" if guess else ""
        if arr.ndim == 3 and len(fmt) == 4:
            fix = " For one image use add_image (CHW/HWC), or add a batch axis: x.unsqueeze(0)."
        raise ValueError(
            f"image has {arr.ndim} dimensions {tuple(arr.shape)} but dataformats={fmt!r} "
            f"needs {len(fmt)}.{fix}"
        )
    dims = dict(zip(fmt, arr.shape, strict=True))
    c = dims.get("C", 1)
    if c not in (1, 3, 4):
        other = {"CHW": "HWC", "HWC": "CHW", "NCHW": "NHWC", "NHWC": "NCHW"}.get(fmt)
        flipped = dict(zip(other, arr.shape, strict=True)) if other else {}
        fix = (f" It looks like {other} data: pass dataformats={other!r}"
               f" (or permute the axes)." if flipped.get("C") in (1, 3, 4) else "")
        raise ValueError(
            f"shape {tuple(arr.shape)} read as {fmt} has {c} channels; an image needs 1, 3 "
            f"or 4.{fix}"
        )
    _check_values(arr)
    return ImageShape(dims.get("N"), c, dims["H"], dims["W"])


def _as_array(img) -> np.ndarray:
    if hasattr(img, "getbands"):  # a PIL image
        raise TypeError(
            "add_image needs a torch.Tensor or numpy array, not a PIL image: use "
            "np.array(img) with dataformats='HWC', or transforms.ToTensor()(img) (CHW)."
        )
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    if not isinstance(img, np.ndarray):
        raise TypeError(f"expected a torch.Tensor or numpy array, got {type(img).__name__}.")
    return img


def _check_values(arr: np.ndarray) -> None:
    if arr.dtype == np.uint8:
        return
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"image dtype {arr.dtype} is not supported; use uint8 or float.")
    if arr.size == 0:
        raise ValueError(f"image of shape {tuple(arr.shape)} is empty.")
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise ValueError(f"integer image values must be 0–255, found {lo:g}…{hi:g}.")
        raise ValueError(f"integer image dtype {arr.dtype}: convert with .astype(np.uint8) "
                         "(or x.to(torch.uint8)) so TensorBoard reads it as 0–255.")
    if hi > 1.0 + 1e-6:
        raise ValueError(
            f"float image values reach {hi:g}, but floats must lie in [0, 1] (TensorBoard "
            "multiplies by 255 and clips, so you would see white). Divide by 255 or use uint8."
        )
    if lo < -1e-6:
        raise ValueError(
            f"float image values go down to {lo:g}: this looks Normalize()d. Undo it "
            "(x * std + mean) before logging, or log the image before Normalize."
        )
