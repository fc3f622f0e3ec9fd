"""Training a recipe: a :class:`Run` prepared from the command line's choices
(:func:`prepare`: the resumed run's checkpoint read once, the settings resolved by
:func:`course_utils.recipes.make_settings`), its parts built (:func:`build_parts`: model,
optimizer, scheduler, loss, loaders) and trained (:func:`train`, with
:func:`course_utils.engine.fit`).

"Run" means one training run throughout: its folder (``run.folder``, made by
:func:`course_utils.runs.new_run_dir`) holds its TensorBoard logs and ``checkpoints/``.

Under ``torchrun`` (process group set up, :mod:`course_utils.distributed`) every process
builds the same run on its shard of the training set: ``batch_size`` is per process, so the
global batch is ``batch_size × WORLD_SIZE`` (see :func:`train`).

>>> # run_dir, history = train(prepare("original", epochs=1, limit=200, device="cpu"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader, Subset

from course_utils import checkpoints, data, distributed, engine, models
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD
from course_utils.devices import PRECISIONS, precision_choice
from course_utils.errors import NamesSettings
from course_utils.i18n import N_, tr
from course_utils.loaders import ShardedTensorLoader, TensorLoader
from course_utils.recipes import Recipe, TrainSettings, make_settings
from course_utils.runs import new_run_dir


class ResumeError(NamesSettings, checkpoints.CheckpointError):
    """A run folder that cannot be resumed (no checkpoint in it)."""


def checkpoint_to_resume(run_dir) -> dict:
    """The newest checkpoint of a run made by :func:`train` — read once, to resume it."""
    found = checkpoints.load_latest(run_dir)
    if found is None:
        raise ResumeError(tr(
            f"{run_dir} has no readable checkpoint (checkpoints/last.pt or epoch_NNN.pt) to "
            "resume from; pick a run folder that has one, or leave out {resume}."))
    path, state = found
    if not isinstance(state.get("config"), dict):
        raise checkpoints.CheckpointError(tr(
            f"{path} was not written by 'python -m course_utils train' (it has no "
            "'config'), so the CLI cannot resume it; use engine.fit(..., checkpoint=...)."))
    print("[course_utils] " + tr(f"continuing from {path}"))
    return state


# ------------------------------------------------------------------------ the builders
def build_network(recipe: Recipe) -> nn.Module:
    """The recipe's network, in its memory layout."""
    model = models.build_model(recipe.model)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)


def build_scheduler(recipe: Recipe, optimizer, steps_per_epoch: int):
    """``OneCycleLR`` stepped after every batch, or None for a constant learning rate."""
    if recipe.schedule == "none":
        return None
    if recipe.schedule == "onecycle":
        # OneCycleLR divides by (warm-up steps − 1): a warm-up of exactly one step (e.g. 4
        # steps in all) is 0/0, so such a short run warms up for two steps instead
        total = recipe.epochs * steps_per_epoch
        pct_start = recipe.pct_start if recipe.pct_start * total != 1 else 2 / total
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, epochs=recipe.epochs,
            steps_per_epoch=steps_per_epoch, pct_start=pct_start)
    raise ValueError(tr(f"unknown schedule {recipe.schedule!r}; use 'none' or 'onecycle'."))


def build_loss(recipe: Recipe) -> nn.CrossEntropyLoss:
    return nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


def build_loaders(recipe: Recipe, *, limit: int | None = None, device="cpu", data_dir=None,
                  seed: int = 0):
    """``(train loader, test loader, normalize)``; ``normalize`` is ``(mean, std)`` or None.

    Batches are ``(images float (B, 3, 32, 32), labels (B,))`` on ``device``. Under torchrun
    each process gets its shard: of every training epoch (shuffled with ``seed + epoch``, the
    same on every process) and of the test set.
    """
    normalize = (CIFAR10_MEAN, CIFAR10_STD) if recipe.normalize else None
    verbose, many = distributed.is_main(), distributed.active()
    if recipe.pipeline == "tensors":  # decoded once into uint8 tensors, batches on device
        xs, ys = data.as_tensors(data.cifar10(train=True, data_dir=data_dir, verbose=verbose),
                                 limit)
        drop_last = recipe.drop_last and _shard(len(ys)) > recipe.batch_size  # ≥ 1 batch
        options = dict(normalize=normalize, augment=recipe.augment, drop_last=drop_last,
                       device=device)
        train = (ShardedTensorLoader(xs, ys, recipe.batch_size, seed=seed, **options)
                 if many else TensorLoader(xs, ys, recipe.batch_size, shuffle=True, **options))
        test_x, test_y = data.as_tensors(data.cifar10(train=False, data_dir=data_dir,
                                                      verbose=verbose))
        part = slice(distributed.rank(), None, distributed.world_size())
        test = TensorLoader(test_x[part], test_y[part], batch_size=recipe.eval_batch_size,
                            normalize=normalize, device=device)
        return train, test, normalize
    if recipe.pipeline != "pil":
        raise ValueError(tr(f"unknown pipeline {recipe.pipeline!r}; use 'pil' or 'tensors'."))
    # the course's pipeline: PIL image → (flip, shift) → ToTensor → (Normalize), every item
    steps = [T.ToTensor()] + ([T.Normalize(*normalize)] if normalize else [])
    augment = [T.RandomHorizontalFlip(), T.RandomCrop(32, 4, padding_mode="reflect")]
    train_set = data.cifar10(train=True, data_dir=data_dir, verbose=verbose,
                             transform=T.Compose((augment if recipe.augment else []) + steps))
    if limit:
        train_set = data.spread_subset(train_set, limit)
    test_set = data.cifar10(train=False, data_dir=data_dir, transform=T.Compose(steps),
                            verbose=verbose)
    drop_last = recipe.drop_last and _shard(len(train_set)) > recipe.batch_size
    if many:  # DistributedSampler: this process's shard, reshuffled by fit every epoch
        train = DataLoader(train_set, batch_size=recipe.batch_size, drop_last=drop_last,
                           sampler=distributed.train_sampler(train_set, seed))
        test_set = Subset(test_set, distributed.eval_indices(len(test_set)))
    else:
        train = DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True,
                           drop_last=drop_last)
    return train, DataLoader(test_set, batch_size=recipe.eval_batch_size), normalize


def _shard(n: int) -> int:
    """Training images per process (all ``n`` without torchrun)."""
    return -(-n // distributed.world_size())


@dataclass
class Parts:
    """Everything :func:`course_utils.engine.fit` needs, built from a :class:`TrainSettings`."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss_fn: nn.Module
    train_loader: object
    test_loader: object
    normalize: tuple | None


def build_parts(settings: TrainSettings) -> Parts:
    """Seed, then build loaders, model, optimizer, scheduler and loss for ``settings``."""
    torch.manual_seed(settings.seed)
    recipe = settings.recipe
    with distributed.main_first():  # under torchrun: one process downloads, not all at once
        train_loader, test_loader, normalize = build_loaders(
            recipe, limit=settings.limit, device=settings.device, data_dir=settings.data_dir,
            seed=settings.seed)
    model = build_network(recipe)  # the same on every process (DDP copies rank 0's anyway)
    if distributed.active():  # each process its own augmentation
        torch.manual_seed(settings.seed + distributed.rank())
    optimizer = build_optimizer(recipe, model)
    scheduler = build_scheduler(recipe, optimizer, len(train_loader))
    return Parts(model, optimizer, scheduler, build_loss(recipe), train_loader, test_loader,
                 normalize)


@dataclass
class Run:
    """One training run: its settings, the checkpoint it continues (None: a new run) and its
    folder — the resumed run's own, or the new one :func:`train` makes (None until then)."""

    settings: TrainSettings
    checkpoint: dict | None = None
    folder: Path | None = None


def prepare(recipe: str | None = None, *, resume=None, **choices) -> Run:
    """The run to train: the newest checkpoint of the run to ``resume`` read once (under
    torchrun rank 0 reads it, every process gets the same copy), then :func:`make_settings`
    with ``choices`` (its keywords). A resumed run's folder is known from here on."""
    checkpoint = None
    if resume is not None:
        checkpoint = distributed.share(call=lambda: checkpoint_to_resume(resume))
    settings = make_settings(recipe, checkpoint=checkpoint, resume=resume, **choices)
    return Run(settings, checkpoint, settings.resume)


def train(run: Run) -> tuple[Path, list[dict]]:
    """Build the run's parts and train them with :func:`course_utils.engine.fit`; returns
    ``(run folder, history)``. A new run's folder is made under ``settings.logdir`` and
    stored in ``run.folder`` at once (the command line names it after Ctrl+C).

    Under torchrun (N processes): rank 0 makes the folder, prints and saves; every process
    trains on batches of ``recipe.batch_size``, so one step sees N × batch_size images (the
    global batch) at the same learning rate — see the scaling rule in the README.
    """
    settings = run.settings
    if (run.checkpoint is None) != (settings.resume is None):
        raise ValueError(tr("a resumed run needs both settings.resume (its folder) and its "
                            "checkpoint (prepare() reads it); a new run neither."))
    recipe, n = settings.recipe, distributed.world_size()
    main = distributed.is_main()
    precision, why = precision_choice(recipe.precision, settings.device.type)
    if main:  # the run's first line
        print("[course_utils] " + tr(f"precision: {precision} ({why})"), flush=True)
    parts = build_parts(settings)
    run.folder = settings.resume or distributed.share(
        call=lambda: new_run_dir(settings.logdir, settings.run_name or recipe.name))
    batch = N_(f"batch {recipe.batch_size}") if n == 1 else \
        N_(f"batch {recipe.batch_size} per process × {n} processes = {recipe.batch_size * n}")
    if main:
        params = models.count_parameters(parts.model)
        images = len(parts.train_loader.dataset)
        extra = ", " + precision if precision != "float32" else ""
        print("[course_utils] " + tr(
            f"model {recipe.model} ({params:,} parameters), {images:,} training images, "
            f"{recipe.epochs} epoch(s), lr {recipe.lr}, {batch}, device {settings.device}"
            f"{extra}, run folder {run.folder}"))
    history = engine.fit(
        parts.model, parts.train_loader, parts.test_loader, epochs=recipe.epochs,
        optimizer=parts.optimizer, loss_fn=parts.loss_fn, scheduler=parts.scheduler,
        device=settings.device, run_dir=run.folder, checkpoint=run.checkpoint,
        model_name=recipe.model, progress=settings.progress, verbose=True,
        metadata={"config": settings.config, "normalize": parts.normalize,
                  "precision": precision}, amp_dtype=PRECISIONS[precision])
    return run.folder, history
