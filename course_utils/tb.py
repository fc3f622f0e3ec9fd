"""TensorBoard from a notebook (P7–P8): start it, show it, read what was logged back.

The course opens TensorBoard from a terminal::

    tensorboard --logdir=logs --port=6007

From Python:

* :func:`launch` starts that server on a free port of 127.0.0.1 and returns a handle
  (``.url``, ``.runs()``, ``.scalar_tags()``, ``.scalars(run, tag)``, ``.stop()``; use it in a
  ``with`` block). The process management lives in :mod:`course_utils._tb_server`.
* :func:`show` embeds TensorBoard in JupyterLab. In fast/CI mode or outside a notebook it starts
  no server and draws what the event files hold: the scalars (:func:`plot_scalars`), or the
  images (:func:`plot_images`) when no scalars were logged.
* :func:`read_scalars`, :func:`read_runs`, :func:`read_tags`, :func:`read_images` read the event
  files with TensorBoard's own ``EventAccumulator``.
* :func:`check_image` (from :mod:`course_utils.image_check`) says what is wrong with an image
  before ``add_image`` does something odd.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard import notebook as tensorboard_notebook
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import SessionLog
from tensorboard.util import tensor_util

from course_utils import settings
from course_utils._tb_server import TensorBoard, TensorBoardError, launch, stop_all
from course_utils.i18n import tr
from course_utils.image_check import ImageShape, check_image
from course_utils.viz import STYLE, Figure, new_figure, show_images, style_axes

__all__ = [
    "TensorBoard", "TensorBoardError", "launch", "stop_all", "show", "read_scalars",
    "read_runs", "read_tags", "read_images", "plot_scalars", "plot_images", "check_image",
    "ImageShape",
]  # fmt: skip


# ------------------------------------------------------------------------------ reading
def _accumulators(logdir: str | os.PathLike, **size_guidance):
    """``(run name, loaded EventAccumulator)`` for every folder below ``logdir`` with events."""
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(tr(f"logdir {logdir} does not exist."))
    for folder in _event_folders(logdir):
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
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(tr(f"logdir {logdir} does not exist."))
    runs = {}
    for folder in _event_folders(logdir):
        runs[folder.relative_to(logdir).as_posix()] = _scalars_of(_events_in_order(folder))
    return runs


def _event_folders(logdir: Path) -> list[Path]:
    return sorted({p.parent for p in logdir.rglob("*tfevents*") if p.is_file()})


def _events_in_order(folder: Path):
    """The events of every event file in ``folder``, file by file in the order the files were
    started (their first event's wall time), not by file name: two writers made in the same
    second get names ``….9`` and ``….10``, and by name the later one would come first."""
    files = [list(EventFileLoader(str(p)).Load())
             for p in sorted(folder.iterdir()) if p.is_file() and "tfevents" in p.name]
    for events in sorted(files, key=lambda events: events[0].wall_time if events else 0.0):
        yield from events


def _scalars_of(events) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` as TensorBoard shows them: a writer that resumes with
    ``purge_step=s`` (a ``SessionLog.START`` at step s) drops every point at step >= s."""
    tags: dict[str, list[tuple[int, float]]] = {}
    for event in events:
        if event.HasField("session_log") and event.session_log.status == SessionLog.START:
            for tag, points in tags.items():
                tags[tag] = [(step, value) for step, value in points if step < event.step]
        for value in event.summary.value if event.HasField("summary") else ():
            if value.HasField("simple_value"):
                tags.setdefault(value.tag, []).append((event.step, value.simple_value))
            elif value.metadata.plugin_data.plugin_name == "scalars":
                number = float(tensor_util.make_ndarray(value.tensor).item())
                tags.setdefault(value.tag, []).append((event.step, number))
    return {tag: points for tag, points in tags.items() if points}


def read_scalars(logdir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar logged under ``logdir`` as ``{tag: [(step, value), ...]}``.

    Tags of sub-folders (runs) are prefixed with the run name, e.g. ``"p8/y=x"``; tags of
    ``logdir`` itself are not. Raises ``FileNotFoundError`` for a missing folder; an empty
    folder gives ``{}``.

    Example:
        >>> w = SummaryWriter(d); [w.add_scalar("y=x", i, i) for i in range(3)]; w.close()
        >>> read_scalars(d)                                # doctest: +SKIP
        {'y=x': [(0, 0.0), (1, 1.0), (2, 2.0)]}
    """
    return {_prefixed(run, tag): points
            for run, tags in read_runs(logdir).items() for tag, points in tags.items()}


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
    return {
        _prefixed(run, tag): [
            (e.step, np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB")))
            for e in acc.Images(tag)
        ]
        for run, acc in _accumulators(logdir, images=0)
        for tag in acc.Tags()["images"]
    }


# ------------------------------------------------------------------------------ plotting
def plot_scalars(logdir: str | os.PathLike, tags: list[str] | None = None,
                 ncols: int = 3) -> Figure:
    """A figure with one panel per scalar tag (all tags, or ``tags``), step on the x axis.

    Returns a :class:`course_utils.viz.Figure`, shown when it is a cell's last value.
    Raises ``KeyError`` naming the tags that exist when a requested tag is missing.
    """
    scalars = read_scalars(logdir)
    tags = sorted(scalars) if tags is None else tags
    unknown = [t for t in tags if t not in scalars]
    if unknown:
        raise KeyError(tr(f"no scalar tag(s) {unknown} in {logdir}; it has {sorted(scalars)}."))
    cols = min(ncols, max(len(tags), 1))
    rows = -(-max(len(tags), 1) // cols)
    fig = new_figure(4 * cols, 3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, tag in zip(axes, tags, strict=False):
        steps = [step for step, _ in scalars[tag]]
        values = [value for _, value in scalars[tag]]
        ax.plot(steps, values, marker="." if len(steps) < STYLE["marker_below"] else None)
        style_axes(ax, title=tag, xlabel="step")
    for ax in axes[len(tags):]:
        ax.axis("off")
    if not tags:
        axes[0].text(0.5, 0.5, tr(f"no scalars in {logdir}"), ha="center", va="center")
    return fig


def plot_images(logdir: str | os.PathLike, ncols: int = 4) -> Figure:
    """The last image logged under every image tag, titled ``tag (step N)``.

    Raises ``ValueError`` when ``logdir`` holds no images.
    """
    images = read_images(logdir)
    if not images:
        raise ValueError(tr(f"no images were logged in {logdir} (add_image / add_images)."))
    last = {tag: points[-1] for tag, points in sorted(images.items())}
    titles = [f"{tag} (step {step})" for tag, (step, _) in last.items()]
    return show_images([img for _, img in last.values()], titles=titles, ncols=ncols, size=3)


# ------------------------------------------------------------------------------ showing
def _in_notebook() -> bool:
    # A notebook kernel has imported IPython already; looking in sys.modules avoids importing
    # it (0.3–0.6 s) in scripts and in the CLI, which never run in a kernel.
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def _display(obj) -> None:
    if _in_notebook():
        from IPython.display import display  # loaded already in a kernel (see _in_notebook)

        display(obj)
    else:
        print(tr(f"(static plot with {len(obj.axes)} panel(s); display it in a notebook)"))


_SHOWN: dict[Path, TensorBoard] = {}


def show(logdir: str | os.PathLike, height: int = 600, static: bool | None = None):
    """Show TensorBoard for ``logdir`` inline in JupyterLab; return the server's handle.

    A second ``show`` of the same folder reuses the server; ``.stop()`` it when done.
    ``static=True`` — the default in fast/CI mode and outside a notebook kernel — starts no
    server: it displays the scalars read back from the event files (or the images when there
    are no scalars), names what else was logged, and returns None.

    Behind a proxy (e.g. jupyter-server-proxy) set ``TENSORBOARD_PROXY_URL`` like
    ``/proxy/%PORT%/``. On Colab it hands over to TensorBoard's own notebook helper.
    """
    logdir = Path(logdir).expanduser().resolve()
    if static is None:
        static = settings.fast_mode() or not _in_notebook()
    print(tr(f"Terminal equivalent: tensorboard --logdir \"{logdir}\" --port 6007"))
    if static:
        _show_static(logdir)
        return None
    if "google.colab" in sys.modules:  # Colab proxies ports itself: use TensorBoard's helper
        tensorboard_notebook.start(f"--logdir {shlex.quote(str(logdir))}")
        return None
    board = _SHOWN.get(logdir)
    if board is None or not board.running:
        board = _SHOWN[logdir] = launch(logdir)
    from IPython.display import HTML, display  # loaded already in a kernel (see _in_notebook)

    src = os.environ.get("TENSORBOARD_PROXY_URL", "").replace("%PORT%", str(board.port))
    src = src or board.url
    display(HTML(f'<p>TensorBoard: <a href="{src}" target="_blank">{src}</a> '
                 + tr("(stop with <code>.stop()</code> on the returned handle)") + "</p>"
                 f'<iframe src="{src}" width="100%" height="{int(height)}" frameborder="0">'
                 "</iframe>"))
    return board


def _show_static(logdir: Path) -> None:
    logged = read_tags(logdir)
    if "scalars" in logged or "images" not in logged:
        shown = "scalars"
        _display(plot_scalars(logdir))
    else:
        shown = "images"
        _display(plot_images(logdir))
    others = {kind: tags for kind, tags in logged.items() if kind != shown}
    if others:  # the static picture shows one kind only: say what else TensorBoard would show
        listing = "; ".join(f"{tr('model graph in run') if kind == 'graph' else kind}: "
                            f"{', '.join(tags)}" for kind, tags in others.items())
        print(tr(f"Also logged (see them in TensorBoard): {listing}"))
