"""Save and load training state safely (P26, and the checkpoints of P27–P29).

* :func:`save_checkpoint` writes atomically (a temporary file in the same folder, fsync,
  then a rename), so a run killed while saving never leaves a broken ``last.pt``.
* :func:`load_checkpoint` always uses ``torch.load(weights_only=True)``: it reads tensors and
  plain Python values only and cannot run code hidden in a pickle. ``map_location="cpu"`` by
  default, so files saved on a GPU load on any machine.
* :func:`load_latest` finds the newest readable checkpoint of a run (``last.pt``, else the
  newest ``epoch_NNN.pt``) — what ``fit(resume=True)`` continues from.
* :func:`load_whole_model` (the course's "method 1") needs ``trust=True`` and says why.
* :func:`new_run_dir` gives every run a fresh folder so nothing earlier is overwritten.
* :func:`load_pretrained` builds a torchvision model with downloaded weights (P25), or says
  in one line why it cannot (offline, not cached) instead of a wall of traceback.

>>> import torch, tempfile
>>> net = torch.nn.Linear(4, 2)
>>> path = save_checkpoint(tempfile.mkdtemp() + "/last.pt", net, epoch=1)
>>> load_checkpoint(path, torch.nn.Linear(4, 2))["epoch"]
1
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import os
import pickle
import re
import tempfile
import urllib.parse
from pathlib import Path

import torch
from torch import nn

FORMAT = 1
#: Prefixes that wrappers add to every key of a state_dict (DataParallel, torch.compile).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message names the file and the fix."""


def new_run_dir(base: str | os.PathLike = "runs", name: str | None = None) -> Path:
    """Create and return a new folder ``base/<date>-<time>[_name]`` (``-2``, ``-3`` … if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"{stamp}_{name}" if name else stamp
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise CheckpointError(f"could not create a new run folder under {base}.")


# ------------------------------------------------------------------------------ saving
def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A reader (or a resumed run) sees either the old file or the complete new one, never a
    half-written file — even if the process is killed (SIGKILL, power loss) mid-save.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` a copy of the finished file ``src`` atomically (a hard link when the file
    system allows, else a byte copy), replacing ``dst`` if it exists."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (some network or Windows drives)
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)
    return dst


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX only; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that a killed :func:`atomic_save` left in ``folder``
    (``.<name>.*.tmp``); returns what was removed. Finished checkpoints are never touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def save_checkpoint(path, model: nn.Module, optimizer=None, scheduler=None, *,
                    model_name: str | None = None, **extra) -> Path:
    """Save model/optimizer/scheduler state plus ``extra`` (epoch, global_step, history …).

    The file is a plain dict of tensors and Python values (loadable with
    ``weights_only=True``)::

        {"format": 1, "model_name": "tudui", "model_state": {...}, "optimizer_state": {...},
         "scheduler_state": None, "torch_version": "2.x", **extra}
    """
    state = {
        "format": FORMAT,
        "model_name": model_name or type(model).__name__,
        "model_state": _unwrap(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "torch_version": str(torch.__version__),  # TorchVersion is not weights_only-safe
        **extra,
    }
    return atomic_save(state, path)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside ``torch.compile`` / ``DataParallel`` wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


# ----------------------------------------------------------------------------- loading
def load_checkpoint(path, model: nn.Module | None = None, optimizer=None, scheduler=None, *,
                    map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` and restore what is given.

    Accepts the dict written by :func:`save_checkpoint` or a bare ``state_dict`` (the course's
    "method 2"). ``map_location="cpu"`` (the default) loads GPU-saved files on any machine.

    Returns the checkpoint dict (``model_state`` always present).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint, a pickled whole model, a GPU file loaded with
            ``map_location=None`` on a machine without that GPU, or another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _weights_only_detail(str(exc))
        if "Unsupported global" in detail:
            raise CheckpointError(
                f"{path} is not a plain weights file: it holds pickled Python objects "
                f"({detail}). If it is a whole model saved with torch.save(model) and you "
                "trust its source, use load_whole_model(path, trust=True)."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({detail}); it may be damaged or "
            "another kind of file. Delete it or pick another checkpoint."
        ) from None
    except RuntimeError as exc:
        text = str(exc)
        if "deserialize object on" in text or "CUDA device" in text:
            raise CheckpointError(
                f"{path} was saved on a device this machine does not have ({text.splitlines()[0]}"
                "). Load it with map_location='cpu' (or torch.device('cpu'))."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({text.splitlines()[0]}); it may be "
            "truncated or another kind of file. Delete it or pick another checkpoint."
        ) from None
    except Exception as exc:  # EOFError, IndexError, … from files that are not checkpoints
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); it "
            "may be empty, truncated or another kind of file. Delete it or pick another "
            "checkpoint."
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict.")
    if "model_state" not in state:  # a bare state_dict
        if not state or not any(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(
                f"{path} holds a dict that is neither a course checkpoint (no 'model_state') "
                f"nor a state_dict (keys {list(state)[:5]})."
            )
        state = {"format": 0, "model_state": state}
    _restore(state, path, model, optimizer, scheduler)
    return state


def _restore(state: dict, path, model=None, optimizer=None, scheduler=None) -> None:
    """Put a loaded checkpoint's states into whichever of model/optimizer/scheduler is given."""
    if model is not None:
        restore_model(model, state["model_state"], source=path)
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scheduler is not None and state.get("scheduler_state") is not None:
        scheduler.load_state_dict(state["scheduler_state"])


def _weights_only_detail(message: str) -> str:
    """The one informative line of torch's long ``weights_only`` error."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            rest = rest or (lines[i + 1] if i + 1 < len(lines) else "")
            return rest.split(" was not an allowed global")[0]
    return lines[0] if lines else "unpickling failed"


def load_latest(run_dir, model: nn.Module | None = None, optimizer=None, scheduler=None, *,
                map_location="cpu", verbose: bool = True) -> tuple[Path, dict] | None:
    """Load the newest usable checkpoint of ``run_dir`` and restore what is given.

    Tries ``run_dir/checkpoints/last.pt``, then ``epoch_NNN.pt`` newest first; a file that
    cannot be read is reported and skipped. Returns ``(path, checkpoint dict)`` or ``None``
    when the run has no checkpoint yet. An architecture mismatch is raised, not skipped.
    """
    folder = Path(run_dir) / "checkpoints"
    found = _newest_readable(folder, map_location, verbose)
    if found is None:
        return None
    path, state = found
    _restore(state, path, model, optimizer, scheduler)
    return path, state


def _newest_readable(folder: Path, map_location, verbose: bool) -> tuple[Path, dict] | None:
    """The readable checkpoint with the highest epoch: ``last.pt`` unless an ``epoch_NNN.pt``
    is newer (a run killed between writing it and updating ``last.pt``) or ``last.pt`` is
    unreadable."""

    def attempt(path):
        try:
            return load_checkpoint(path, map_location=map_location)
        except CheckpointError as exc:
            if verbose:
                print(f"[course_utils] skipping {path}: {exc}")
            return None

    numbered = sorted(((int(m.group(1)), p) for p in folder.glob("epoch_*.pt")
                       if (m := re.fullmatch(r"epoch_(\d+)\.pt", p.name))), reverse=True)
    last = folder / "last.pt"
    last_state = attempt(last) if last.is_file() else None
    last_epoch = last_state.get("epoch", -1) if last_state is not None else -1
    last_epoch = last_epoch if isinstance(last_epoch, int) else -1
    for number, path in numbered:
        if number <= last_epoch:
            break
        state = attempt(path)
        if state is not None:
            return path, state
    return (last, last_state) if last_state is not None else None


def restore_model(model: nn.Module, state_dict: dict, source="checkpoint") -> None:
    """``model.load_state_dict`` with an error that says which layers do not fit.

    Keys saved from a ``torch.compile``-d or ``DataParallel`` model (``_orig_mod.`` /
    ``module.`` prefixes) are accepted too.
    """
    target = _unwrap(model)
    own = target.state_dict()
    state_dict = _strip_wrapper_prefix(state_dict, own)
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        details = "; ".join(
            part for part in (
                f"missing {missing[:4]}" if missing else "",
                f"unexpected {unexpected[:4]}" if unexpected else "",
                f"shape mismatch {wrong[:3]}" if wrong else "",
            ) if part
        )
        raise CheckpointError(
            f"{source} was saved from a different architecture than {type(target).__name__} "
            f"({details}). Build the model the checkpoint was trained with (see its "
            "'model_name') or train a new one."
        )
    target.load_state_dict(state_dict)


def _strip_wrapper_prefix(state_dict: dict, own: dict) -> dict:
    for prefix in WRAPPER_PREFIXES:
        keys = list(state_dict)
        if keys and all(k.startswith(prefix) for k in keys) and not any(
                k.startswith(prefix) for k in own):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def load_whole_model(path, *, trust: bool = False, map_location="cpu") -> nn.Module:
    """Load a model saved whole with ``torch.save(model, path)`` (the course's "method 1").

    Unpickling can run arbitrary code, so this refuses unless ``trust=True`` — pass it only
    for files you made yourself or got from a source you trust. The model's class must be
    importable under the name it was saved with (a class defined in a notebook lives in
    ``__main__`` and is found only in a session that defines it again).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist.")
    if not trust:
        raise CheckpointError(
            f"refusing to unpickle {path}: loading a whole pickled model can execute any code "
            "inside the file. If you made it yourself or trust its source, call "
            "load_whole_model(path, trust=True); better, save and load a state_dict."
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (AttributeError, ModuleNotFoundError) as exc:
        raise CheckpointError(
            f"{path} was pickled with a class that this session does not define ({exc}). "
            "Import or define that class first (a class written in a notebook lives in "
            "'__main__'), or switch to state_dict checkpoints."
        ) from None


# ------------------------------------------------------------- "saved on a GPU" files
_TAG: contextvars.ContextVar[str | None] = contextvars.ContextVar("course_tag", default=None)
_TAGGER_REGISTERED = False


def save_with_device_tag(obj, path, location: str = "cuda:0") -> Path:
    """``torch.save(obj, path)`` with every storage tagged as saved on ``location``.

    A file written by ``torch.save`` on a GPU records ``'cuda:0'`` beside each tensor, and
    ``torch.load`` without ``map_location`` tries to put it back there. This writes exactly
    such a file from CPU tensors, so the "checkpoint from a GPU machine" case (P32) can be
    shown and tested on a CPU-only machine. Uses ``torch.serialization.register_package``.
    """
    global _TAGGER_REGISTERED
    if not _TAGGER_REGISTERED:
        torch.serialization.register_package(-100, lambda storage: _TAG.get(),
                                             lambda storage, location: None)
        _TAGGER_REGISTERED = True
    token = _TAG.set(location)
    try:
        return atomic_save(obj, path)
    finally:
        _TAG.reset(token)


# ------------------------------------------------------------------ pretrained weights
def pretrained_file(weights) -> Path:
    """Where torchvision keeps ``weights`` once downloaded:
    ``<torch.hub.get_dir()>/checkpoints/<file name>`` (``$TORCH_HOME/hub/checkpoints``).

    >>> pretrained_file(torchvision.models.VGG16_Weights.DEFAULT).name
    'vgg16-397923af.pth'
    """
    name = Path(urllib.parse.urlsplit(weights.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_pretrained(builder, weights, *, download: bool = True, **kwargs) -> nn.Module:
    """``builder(weights=weights)`` — e.g. ``load_pretrained(torchvision.models.vgg16,
    VGG16_Weights.DEFAULT)`` — offline when the file is cached, else after a download.

    Raises :class:`course_utils.download.OfflineError` with one clear sentence when the
    file is not cached and ``download=False`` or the server cannot be reached.
    """
    from course_utils import download as dl

    path = pretrained_file(weights)
    size = weights.meta.get("_file_size")
    what = f"{weights} ({size:.0f} MB)" if size else str(weights)
    if not path.is_file():
        advice = (f"Run this once online (the file is then kept at {path}), or copy "
                  f"{path.name} there from a machine that has it. Without it, build the "
                  "model with weights=None (same layers, random weights).")
        if not download:
            raise dl.OfflineError(f"{what} is not downloaded yet and downloading is off. {advice}")
        if not dl.host_reachable(weights.url):
            host = urllib.parse.urlsplit(weights.url).hostname
            raise dl.OfflineError(f"{what} is not downloaded yet and {host} cannot be reached "
                                  f"(offline?). {advice}")
        print(f"[course_utils] downloading {what} to {path} (once) …")
    try:
        return builder(weights=weights, **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad hash a RuntimeError
        raise dl.OfflineError(
            f"could not get {what}: {type(exc).__name__}: {str(exc).splitlines()[0]}. "
            f"Delete {path} if it exists and try again online.") from None
