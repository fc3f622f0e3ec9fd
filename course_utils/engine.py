"""The training engine of P27–P31: ``train_one_epoch``, ``evaluate`` and ``fit``.

``fit`` adds what the original script left out: a progress bar, TensorBoard scalars with
the original tags (``train_loss`` per step, ``test_loss`` and ``test_accuracy`` per epoch),
an atomic checkpoint after every epoch, and ``resume=True`` that continues the step counter
and the curves of an interrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from course_utils import checkpoints
from course_utils.devices import pick_device, synchronize


def train_one_epoch(model, loader, loss_fn, optimizer, device, *, scheduler=None,
                    writer=None, step: int = 0, log_every: int = 10, progress: bool = True,
                    desc: str = "train") -> tuple[float, int]:
    """One pass over ``loader`` (batches ``(images (B, C, H, W), labels (B,))``).

    Steps ``scheduler`` (if any) after every batch. Logs ``train_loss`` to ``writer`` every
    ``log_every`` steps. Returns ``(mean loss per image, step after the epoch)``.
    """
    model.train()
    total = torch.zeros((), device=device)
    seen = 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for images, labels in bar:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1
        total += loss.detach() * len(labels)
        seen += len(labels)
        if step % log_every == 0:
            value = loss.item()
            if writer is not None:
                writer.add_scalar("train_loss", value, step)
            bar.set_postfix(loss=f"{value:.3f}")
    if seen == 0:
        raise ValueError("the training loader produced no batches (empty data set?).")
    return total.item() / seen, step


def evaluate(model, loader, loss_fn=None, device=None) -> dict[str, float]:
    """Mean loss and accuracy over ``loader``, as Python floats.

    Runs under ``model.eval()`` and ``torch.inference_mode()``.

    >>> # evaluate(model, test_loader, nn.CrossEntropyLoss(), "cpu")
    >>> # {'loss': 1.53, 'accuracy': 0.45, 'images': 10000}
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    with torch.inference_mode():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            total_loss += loss_fn(outputs, labels) * len(labels)
            correct += (outputs.argmax(1) == labels).sum()
            seen += len(labels)
    if seen == 0:
        raise ValueError("the evaluation loader produced no batches (empty data set?).")
    return {"loss": total_loss.item() / seen, "accuracy": correct.item() / seen, "images": seen}


def fit(model, train_loader, test_loader, *, epochs: int, optimizer, loss_fn=None,
        scheduler=None, device=None, run_dir=None, resume: bool = False,
        model_name: str | None = None, progress: bool = True, log_every: int = 10) -> list[dict]:
    """Train for ``epochs`` epochs, evaluating, logging and checkpointing after each.

    Args:
        run_dir: folder for TensorBoard events and ``checkpoints/``; None = no logs/checkpoints.
        resume: continue from ``run_dir/checkpoints/last.pt`` when it exists (same step
            counter, same curves; TensorBoard events past that step are purged).

    Returns the history: one dict per epoch with ``epoch``, ``train_loss``, ``test_loss``,
    ``test_accuracy``, ``seconds`` and ``images_per_second``.
    """
    device = pick_device(device, verbose=False) if not isinstance(device, torch.device) else device
    model.to(device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history: list[dict] = []
    start_epoch, step = 0, 0
    writer = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        last = run_dir / "checkpoints" / "last.pt"
        if resume and last.exists():
            state = checkpoints.load_checkpoint(last, model, optimizer, scheduler,
                                                map_location=device)
            start_epoch, step = state["epoch"], state["global_step"]
            history = list(state.get("history", []))
            print(f"[course_utils] resumed {last} at epoch {start_epoch}, step {step}")
        elif resume:
            print(f"[course_utils] nothing to resume in {run_dir}; starting fresh")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir), purge_step=step if step else None)
    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            train_loss, step = train_one_epoch(
                model, train_loader, loss_fn, optimizer, device, scheduler=scheduler,
                writer=writer, step=step, log_every=log_every, progress=progress,
                desc=f"epoch {epoch + 1}/{epochs}")
            synchronize(device)
            seconds = time.perf_counter() - t0
            metrics = evaluate(model, test_loader, loss_fn, device)
            record = {
                "epoch": epoch + 1, "step": step, "train_loss": train_loss,
                "test_loss": metrics["loss"], "test_accuracy": metrics["accuracy"],
                "seconds": seconds, "images_per_second": _count(train_loader) / seconds,
            }
            history.append(record)
            if progress:
                print(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, test loss "
                      f"{metrics['loss']:.4f}, test accuracy {metrics['accuracy']:.4f} "
                      f"({seconds:.1f} s)")
            if writer is not None:
                writer.add_scalar("test_loss", metrics["loss"], step)
                writer.add_scalar("test_accuracy", metrics["accuracy"], step)
                writer.flush()
                ckpt_dir = run_dir / "checkpoints"
                extra = dict(epoch=epoch + 1, global_step=step, history=history,
                             model_name=model_name)
                checkpoints.save_checkpoint(ckpt_dir / f"epoch_{epoch + 1:03d}.pt", model,
                                            optimizer, scheduler, **extra)
                checkpoints.save_checkpoint(ckpt_dir / "last.pt", model, optimizer,
                                            scheduler, **extra)
    finally:
        if writer is not None:
            writer.close()
    return history


def _count(loader) -> int:
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and not getattr(loader, "drop_last", False):
        return len(dataset)
    return len(loader) * (getattr(loader, "batch_size", None) or 1)
