"""The training engine of P27–P31: ``train_one_epoch``, ``evaluate`` and ``fit``.

``fit`` adds what the original script left out: a progress bar, TensorBoard scalars with
the original tags (``train_loss`` per logged step, ``test_loss`` and ``test_accuracy`` per
epoch), an atomic checkpoint after every epoch, and ``checkpoint=`` (a loaded one) that
continues an interrupted run: same step counter, same curves, same random numbers (so a
resumed run on the CPU ends with exactly the weights an uninterrupted one would have).
Under ``torchrun`` (a process group set up by :mod:`course_utils.distributed`) ``fit`` wraps
the model in ``DistributedDataParallel``, shuffles each process's shard anew every epoch,
combines losses and accuracy over the processes, and only rank 0 shows progress, prints,
logs and saves; checkpoints hold the plain model's weights (no ``module.`` prefix).
``fit`` owns no settings: the caller builds the model, loaders, optimizer, loss and device
(:mod:`course_utils.training` does it for the CLI).

>>> # history = fit(model, train_loader, test_loader, epochs=10, optimizer=opt,
>>> #               loss_fn=nn.CrossEntropyLoss(), device="cpu",
>>> #               run_dir=new_run_dir("runs", "original"))
>>> # history[-1]
>>> # {'epoch': 10, 'step': 7820, 'train_loss': 1.1, 'test_loss': 1.2, 'test_accuracy': 0.57, ...}
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from course_utils import checkpoints, distributed
from course_utils.devices import synchronize
from course_utils.errors import DivergedError
from course_utils.files import atomic_copy, remove_stale_temporaries
from course_utils.i18n import tr


def train_one_epoch(model, loader, loss_fn, optimizer, device, *, scheduler=None,
                    writer=None, step: int = 0, log_every: int = 10, progress: bool = True,
                    desc: str = "train", amp_dtype: torch.dtype | None = None
                    ) -> tuple[float, int]:
    """One pass over ``loader`` (batches ``(images (B, C, H, W), labels (B,))``).

    Steps ``scheduler`` (if any) after every batch. ``amp_dtype`` (e.g. ``torch.bfloat16``)
    runs the forward pass under ``torch.autocast`` (mixed precision); the loss is computed
    from the outputs in float32. Logs ``train_loss`` to ``writer`` every
    ``log_every`` steps. Returns ``(mean loss per image, step after the epoch)``.

    Raises ``FloatingPointError`` as soon as a logged loss is NaN/inf (the learning rate is
    too high for this model), and ``ValueError`` if the loader yields no batches.
    """
    model.train()
    device = torch.device(device)
    total = torch.zeros((), device=device)
    seen = 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for images, labels in bar:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            outputs = model(images)
        loss = loss_fn(outputs.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1
        total += loss.detach() * len(labels)
        seen += len(labels)
        if step % log_every == 0:
            value = _global_mean(loss.detach())
            _check_finite(value, step)
            if writer is not None:
                writer.add_scalar("train_loss", value, step)
            bar.set_postfix(loss=f"{value:.3f}")
    if seen == 0:
        raise ValueError(tr("the training loader produced no batches (empty data set?)."))
    sums = distributed.all_reduce_sum(torch.stack([total, total.new_tensor(seen)]))
    mean = (sums[0] / sums[1]).item()  # over every process's images
    _check_finite(mean, step)
    return mean, step


def _global_mean(loss: torch.Tensor) -> float:
    """``loss.item()``, averaged over the processes under torchrun (equal batch sizes)."""
    return (distributed.all_reduce_sum(loss.clone()) / distributed.world_size()).item()


def _check_finite(value: float, step: int) -> None:
    if not math.isfinite(value):
        raise DivergedError(tr(
            f"training diverged: the loss became {value} by step {step}. Lower the learning "
            "rate (e.g. {lr} 0.01) or add BatchNorm ({model} tudui-bn), then start again."))


def evaluate(model, loader, loss_fn=None, device=None,
             amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean loss and accuracy over ``loader``, as Python floats (``amp_dtype``: forward
    passes under ``torch.autocast``, as in :func:`train_one_epoch`).

    Runs under ``model.eval()`` and ``torch.inference_mode()`` (no gradients, like the
    course's ``torch.no_grad()``), then puts the model back in the mode it was in. Under
    torchrun each process measures its part of the set and the sums are added up, so every
    process returns the figures of the whole set.

    >>> # evaluate(model, test_loader, nn.CrossEntropyLoss(), "cpu")
    >>> # {'loss': 1.53, 'accuracy': 0.45, 'images': 10000}
    """
    model = distributed.unwrap(model)  # no DDP forward: the processes' shards may differ
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    with torch.inference_mode():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = model(images).float()
            total_loss += loss_fn(outputs, labels) * len(labels)
            correct += (outputs.argmax(1) == labels).sum()
            seen += len(labels)
    model.train(was_training)
    sums = distributed.all_reduce_sum(torch.stack(
        [total_loss.double(), correct.double(), total_loss.new_tensor(seen, dtype=torch.double)]))
    total, right, seen = sums.tolist()
    if seen == 0:
        raise ValueError(tr("the evaluation loader produced no batches (empty data set?)."))
    return {"loss": total / seen, "accuracy": right / seen, "images": int(seen)}


def fit(model, train_loader, test_loader, *, epochs: int, optimizer, loss_fn, device,
        scheduler=None, run_dir=None, checkpoint: dict | None = None,
        model_name: str | None = None,
        metadata: dict | None = None, progress: bool = True, log_every: int = 10,
        verbose: bool | None = None, amp_dtype: torch.dtype | None = None) -> list[dict]:
    """Train for ``epochs`` epochs in all, evaluating, logging and checkpointing after each.

    Everything is built by the caller: model, loaders, optimizer, ``loss_fn`` (e.g.
    ``nn.CrossEntropyLoss()``), ``scheduler`` (stepped after every batch) and ``device``.

    Args:
        run_dir: folder for TensorBoard events and ``checkpoints/`` (``epoch_NNN.pt`` and
            ``last.pt``); None = no logs and no checkpoints.
        checkpoint: a checkpoint dict already loaded (``checkpoints.load_latest(run_dir)[1]``) to
            continue from: model, optimizer, scheduler, random-number state, step counter and
            history are restored, and TensorBoard hides events an interrupted run wrote after
            that checkpoint. ``epochs`` is the total, so ``epochs=10`` after 4 finished epochs
            trains 6 more.
        model_name: stored in every checkpoint (``course_utils.models`` name, e.g. ``"tudui"``).
        metadata: more plain values stored in every checkpoint, e.g.
            ``{"normalize": (mean, std)}`` so that inference preprocesses the same way.
        progress: show a progress bar per epoch.
        verbose: print one line per epoch (default: the same as ``progress``).
        amp_dtype: None (float32 throughout) or the ``torch.autocast`` dtype of the forward
            passes, e.g. ``torch.bfloat16`` (mixed precision; see appendix A).

    Returns the history: one dict per epoch with ``epoch``, ``step``, ``train_loss``,
    ``test_loss``, ``test_accuracy`` (floats), ``lr``, ``seconds`` and ``images_per_second``.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(tr(f"epochs must be a whole number ≥ 1, got {epochs!r}."))
    checkpoints.check_metadata(metadata)
    device = torch.device(device)
    model.to(device)
    start_epoch, step, history = 0, 0, []
    if checkpoint is not None:
        start_epoch, step, history = _restore(checkpoint, model, optimizer, scheduler)
    model = distributed.wrap(model, device)  # DDP under torchrun (after the restore)
    main = distributed.is_main()
    progress, verbose = progress and main, (progress if verbose is None else verbose) and main
    writer = None
    if run_dir is not None:
        run_dir = Path(run_dir)
    if run_dir is not None and main:
        remove_stale_temporaries(run_dir / "checkpoints")  # left by a run killed mid-save
        # purge_step hides events logged at steps >= step + 1 by an interrupted session
        writer = SummaryWriter(str(run_dir), purge_step=step + 1 if step else None)
    if start_epoch >= epochs and main:
        print("[course_utils] " + tr(
            f"already trained for {start_epoch} epoch(s) ≥ epochs={epochs}; "
            "nothing to do (ask for more epochs to continue)."))
    loop = _Loop(loss_fn=loss_fn, device=device, epochs=epochs, log_every=log_every,
                 progress=progress, verbose=verbose, amp_dtype=amp_dtype)
    try:
        for epoch in range(start_epoch, epochs):
            distributed.set_epoch(train_loader, epoch)
            record, step = _train_and_measure(
                loop, model, train_loader, test_loader, optimizer, scheduler, writer=writer,
                step=step, epoch=epoch)
            history.append(record)
            if run_dir is not None:
                rng_state = _rng_states()  # every process takes part
            if writer is not None:
                writer.add_scalar("test_loss", record["test_loss"], step)
                writer.add_scalar("test_accuracy", record["test_accuracy"], step)
                writer.flush()
                _save_epoch(run_dir, model, optimizer, scheduler, epoch + 1, step, history,
                            model_name, metadata, rng_state)
    finally:
        if writer is not None:
            writer.close()
    return history


@dataclass(frozen=True)
class _Loop:
    """What stays the same in every epoch of one :func:`fit`."""

    loss_fn: nn.Module
    device: torch.device
    epochs: int
    log_every: int
    progress: bool
    verbose: bool
    amp_dtype: torch.dtype | None


def _train_and_measure(loop: _Loop, model, train_loader, test_loader, optimizer, scheduler, *,
                       writer, step: int, epoch: int) -> tuple[dict, int]:
    """One epoch of :func:`fit`: train, then evaluate; returns ``(history record, step)``."""
    loss_fn, device, epochs, amp_dtype = loop.loss_fn, loop.device, loop.epochs, loop.amp_dtype
    t0 = time.perf_counter()
    train_loss, step = train_one_epoch(
        model, train_loader, loss_fn, optimizer, device, scheduler=scheduler, writer=writer,
        step=step, log_every=loop.log_every, progress=loop.progress,
        desc=tr(f"epoch {epoch + 1}/{epochs}"),
        amp_dtype=amp_dtype)
    synchronize(device)
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, test_loader, loss_fn, device, amp_dtype)
    record = {
        "epoch": epoch + 1, "step": step, "train_loss": train_loss,
        "test_loss": metrics["loss"], "test_accuracy": metrics["accuracy"],
        "lr": float(optimizer.param_groups[0]["lr"]), "seconds": seconds,
        "images_per_second": _count(train_loader) / seconds,
    }
    if loop.verbose:
        print(tr(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, test loss "
                 f"{metrics['loss']:.4f}, test accuracy {metrics['accuracy']:.4f} "
                 f"({seconds:.1f} s)"))
    return record, step


def _restore(checkpoint: dict, model, optimizer, scheduler) -> tuple[int, int, list]:
    """Put a loaded checkpoint into model/optimizer/scheduler and the random-number
    generators; returns ``(epoch, step, history)``."""
    checkpoints.restore(checkpoint, model, optimizer, scheduler)
    epoch, step = int(checkpoint.get("epoch") or 0), int(checkpoint.get("global_step") or 0)
    state = checkpoint.get("rng_state") or {}
    ranks = state.get("ranks") or []  # one state per process, from a torchrun run
    set_rng_state(ranks[distributed.rank()] if len(ranks) == distributed.world_size()
                  else state)
    if distributed.is_main():
        print("[course_utils] " + tr(f"resumed at epoch {epoch}, step {step}"))
    return epoch, step, list(checkpoint.get("history") or [])


def _rng_states() -> dict:
    """This process's random-number state; under torchrun rank 0's, with every process's
    under ``"ranks"`` (each rank's augmentation continues its own sequence on resume)."""
    states = distributed.gather(get_rng_state())
    return states[0] if len(states) == 1 else {**states[0], "ranks": states}


def _save_epoch(run_dir: Path, model, optimizer, scheduler, epoch: int, step: int,
                history: list, model_name, metadata, rng_state: dict) -> None:
    folder = run_dir / "checkpoints"
    path = checkpoints.save_checkpoint(
        folder / f"epoch_{epoch:03d}.pt", model, optimizer, scheduler,
        model_name=model_name, epoch=epoch, global_step=step, history=list(history),
        rng_state=rng_state, **(metadata or {}))
    atomic_copy(path, folder / "last.pt")


def get_rng_state() -> dict:
    """PyTorch's random-number state (CPU and every CUDA GPU) as plain tensors."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict | None) -> None:
    """Undo :func:`get_rng_state` (CUDA states only when the same GPUs are present)."""
    if not state:
        return
    torch.set_rng_state(state["cpu"].cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _count(loader) -> int:
    """Training images per epoch, over all processes."""
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and not getattr(loader, "drop_last", False):
        return len(dataset)
    return len(loader) * (getattr(loader, "batch_size", None) or 1) * distributed.world_size()
