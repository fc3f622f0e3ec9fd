"""The course's checkpoint format (P26, and the checkpoints of P27–P29).

A checkpoint is a plain dict of tensors and Python values, so it loads with
``torch.load(weights_only=True)``; :data:`KEYS` lists what the course writes, anything else
is the caller's metadata (e.g. ``normalize``).

* :func:`save_checkpoint` writes atomically (:func:`course_utils.files.atomic_save`), so a
  run killed while saving never leaves a broken ``last.pt``.
* :func:`load_checkpoint` always uses ``weights_only=True``: it reads tensors and plain values
  only and cannot run code hidden in a pickle. ``map_location="cpu"`` by default, so files
  saved on a GPU load on any machine.
* :func:`load_latest` finds the newest readable checkpoint of a run (``last.pt``, else the
  newest ``epoch_NNN.pt``) — what a resumed run continues from.
* :func:`load_whole_model` (the course's "method 1") needs ``trust=True`` and says why.
* :func:`save_with_device_tag` writes a file as a GPU machine would (P32's ``map_location``
  case, shown on a CPU).

>>> import torch, tempfile
>>> net = torch.nn.Linear(4, 2)
>>> path = save_checkpoint(tempfile.mkdtemp() + "/last.pt", net, epoch=1)
>>> load_checkpoint(path, torch.nn.Linear(4, 2))["epoch"]
1
"""

from __future__ import annotations

import contextvars
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from course_utils.files import atomic_save
from course_utils.i18n import tr

FORMAT = 1
#: Every key :func:`save_checkpoint` writes; metadata may not reuse them.
KEYS = ("format", "model_name", "model_state", "optimizer_state", "scheduler_state",
        "torch_version", "epoch", "global_step", "history", "rng_state")
#: Prefixes that wrappers add to every key of a state_dict (DataParallel, torch.compile).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message names the file and the fix."""


# ------------------------------------------------------------------------------ saving
def save_checkpoint(path, model: nn.Module, optimizer=None, scheduler=None, *,
                    model_name: str | None = None, epoch: int | None = None,
                    global_step: int | None = None, history: list | None = None,
                    rng_state: dict | None = None, **metadata) -> Path:
    """Save model/optimizer/scheduler state, the training position and ``metadata``.

    The file is a plain dict (loadable with ``weights_only=True``)::

        {"format": 1, "model_name": "tudui", "model_state": {...}, "optimizer_state": {...},
         "scheduler_state": None, "torch_version": "2.x", "epoch": 3, "global_step": 2346,
         "history": [...], "rng_state": {...}, **metadata}
    """
    check_metadata(metadata)
    state = {
        "format": FORMAT,
        "model_name": model_name or type(model).__name__,
        "model_state": _unwrap(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "torch_version": str(torch.__version__),  # TorchVersion is not weights_only-safe
        "epoch": epoch, "global_step": global_step, "history": history, "rng_state": rng_state,
        **metadata,
    }
    return atomic_save(state, path)


def check_metadata(metadata: dict | None) -> None:
    """``ValueError`` when ``metadata`` reuses a key of :data:`KEYS`."""
    clash = sorted(set(metadata or {}) & set(KEYS))
    if clash:
        raise ValueError(tr(f"metadata keys {clash} are reserved for the checkpoint itself."))


#: Modules that wrap the learner's model: ``.module`` of (Distributed)DataParallel.
_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside ``torch.compile`` / ``DataParallel`` / DDP wrappers.

    Only the wrappers themselves are opened: a model of the learner's own with a submodule
    that happens to be called ``module`` is kept whole.
    """
    while True:
        if isinstance(model, _WRAPPERS):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and isinstance(
                getattr(model, "_orig_mod", None), nn.Module):  # torch.compile(model)
            model = model._orig_mod
        else:
            return model


# ----------------------------------------------------------------------------- loading
#: What torch.load says when a file's tensors were saved on a device this machine lacks
#: (a CUDA GPU, Apple's MPS, an Intel Gaudi HPU, …).
_DEVICE_MISSING = ("deserialize object on", "CUDA device", "Storage device not recognized",
                   "device module is not registered")


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
        raise FileNotFoundError(tr(f"checkpoint {path} does not exist."))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _weights_only_detail(str(exc))
        if "Unsupported global" in detail:
            raise CheckpointError(tr(
                f"{path} is not a plain weights file: it holds pickled Python objects "
                f"({detail}). If it is a whole model saved with torch.save(model) and you "
                "trust its source, use load_whole_model(path, trust=True)."
            )) from None
        raise CheckpointError(tr(
            f"{path} is not a readable PyTorch checkpoint ({detail}); it may be damaged or "
            "another kind of file. Delete it or pick another checkpoint."
        )) from None
    except RuntimeError as exc:
        text = str(exc)
        first = text.splitlines()[0]
        if any(sign in text for sign in _DEVICE_MISSING):
            raise CheckpointError(tr(
                f"{path} was saved on a device this machine does not have ({first}). "
                "Load it with map_location='cpu' (or torch.device('cpu'))."
            )) from None
        raise CheckpointError(tr(
            f"{path} is not a readable PyTorch checkpoint ({first}); it may be "
            "truncated or another kind of file. Delete it or pick another checkpoint."
        )) from None
    except Exception as exc:  # EOFError, IndexError, … from files that are not checkpoints
        raise CheckpointError(tr(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); it "
            "may be empty, truncated or another kind of file. Delete it or pick another "
            "checkpoint."
        )) from None
    if not isinstance(state, dict):
        raise CheckpointError(tr(f"{path} holds a {type(state).__name__}, not a checkpoint dict."))
    if "model_state" not in state:  # a bare state_dict
        if not state or not any(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(tr(
                f"{path} holds a dict that is neither a course checkpoint (no 'model_state') "
                f"nor a state_dict (keys {list(state)[:5]})."
            ))
        state = {"format": 0, "model_state": state}
    restore(state, model, optimizer, scheduler, source=path)
    return state


def restore(state: dict, model=None, optimizer=None, scheduler=None,
            source="checkpoint") -> None:
    """Put a loaded checkpoint's states into whichever of model/optimizer/scheduler is given."""
    if model is not None:
        restore_model(model, state["model_state"], source=source)
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
    restore(state, model, optimizer, scheduler, source=path)
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
                print("[course_utils] " + tr(f"skipping {path}: {exc}"))
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
        raise CheckpointError(tr(
            f"{source} was saved from a different architecture than {type(target).__name__} "
            f"({details}). Build the model the checkpoint was trained with (see its "
            "'model_name') or train a new one."
        ))
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
        raise FileNotFoundError(tr(f"model file {path} does not exist."))
    if not trust:
        raise CheckpointError(tr(
            f"refusing to unpickle {path}: loading a whole pickled model can execute any code "
            "inside the file. If you made it yourself or trust its source, call "
            "load_whole_model(path, trust=True); better, save and load a state_dict."
        ))
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (AttributeError, ModuleNotFoundError) as exc:
        raise CheckpointError(tr(
            f"{path} was pickled with a class that this session does not define ({exc}). "
            "Import or define that class first (a class written in a notebook lives in "
            "'__main__'), or switch to state_dict checkpoints."
        )) from None


# ------------------------------------------------------------------ "saved on a GPU" files
_TAG: contextvars.ContextVar[str | None] = contextvars.ContextVar("course_tag", default=None)
_TAGGER_REGISTERED = False


def save_with_device_tag(obj, path, location: str = "cuda:0"):
    """``torch.save(obj, path)`` with every storage tagged as saved on ``location``.

    A file written by ``torch.save`` on a GPU records ``'cuda:0'`` beside each tensor, and
    ``torch.load`` without ``map_location`` tries to put it back there. This writes exactly
    such a file from CPU tensors, so the "checkpoint from a GPU machine" case (P32) can be
    shown and tested on a CPU-only machine. Uses ``torch.serialization.register_package``.
    Returns the path written.
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
