"""Save and load training state safely.

* :func:`save_checkpoint` writes atomically (a temporary file in the same folder, then a
  rename), so a run killed while saving never leaves a broken ``last.pt``.
* :func:`load_checkpoint` always uses ``torch.load(weights_only=True)``: it reads tensors and
  plain Python values only and cannot run code hidden in a pickle.
* :func:`load_whole_model` (the course's "method 1") needs ``trust=True`` and says why.
* :func:`new_run_dir` gives every run a fresh folder so nothing earlier is overwritten.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import tempfile
from pathlib import Path

import torch
from torch import nn

FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message names the file and the fix."""


def new_run_dir(base: str | os.PathLike = "runs", name: str | None = None) -> Path:
    """Create and return a new folder ``base/<date>_<time>[_name]`` (``-2``, ``-3`` … if taken)."""
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


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``."""
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
    return path


def save_checkpoint(path, model: nn.Module, optimizer=None, scheduler=None, *,
                    model_name: str | None = None, **extra) -> Path:
    """Save model/optimizer/scheduler state plus ``extra`` (epoch, global_step, history …)."""
    state = {
        "format": FORMAT,
        "model_name": model_name or type(model).__name__,
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "torch_version": torch.__version__,
        **extra,
    }
    return atomic_save(state, path)


def load_checkpoint(path, model: nn.Module | None = None, optimizer=None, scheduler=None, *,
                    map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` and restore what is given.

    Accepts the dict written by :func:`save_checkpoint` or a bare ``state_dict`` (the course's
    "method 2"). ``map_location="cpu"`` (the default) loads GPU-saved files on any machine.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint, a pickled whole model, or another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} is not a plain weights file: it holds pickled Python objects "
            f"({str(exc).splitlines()[0]}). If it is a whole model saved with torch.save(model) "
            "and you trust its source, use load_whole_model(path, trust=True)."
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({exc}).") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict.")
    if "model_state" not in state:  # a bare state_dict
        state = {"format": 0, "model_state": state}
    if model is not None:
        restore_model(model, state["model_state"], source=path)
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scheduler is not None and state.get("scheduler_state") is not None:
        scheduler.load_state_dict(state["scheduler_state"])
    return state


def restore_model(model: nn.Module, state_dict: dict, source="checkpoint") -> None:
    """``model.load_state_dict`` with an error that says which layers do not fit."""
    own = model.state_dict()
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
            f"{source} was saved from a different architecture than {type(model).__name__} "
            f"({details}). Build the model the checkpoint was trained with (see its "
            "'model_name') or train a new one."
        )
    model.load_state_dict(state_dict)


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
    except AttributeError as exc:
        raise CheckpointError(
            f"{path} was pickled with a class that this session does not define ({exc}). "
            "Import or define that class first (a class written in a notebook lives in "
            "'__main__'), or switch to state_dict checkpoints."
        ) from None
