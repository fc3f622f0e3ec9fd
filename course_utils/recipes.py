"""Training recipes: every setting of a CIFAR-10 run in one table, and the functions that turn
a recipe into a run (model, optimizer, scheduler, loss, loaders) and train it.

The three layers of ``python -m course_utils train``, settings flowing down only:

1. :mod:`course_utils.cli` parses the options (the device resolved once, there) and hands
   them to :func:`prepare`;
2. this module prepares the :class:`Run` — reads the checkpoint of a run to resume (once),
   resolves the :class:`TrainSettings` (:func:`make_settings`) — builds its parts
   (:func:`build_parts`), makes its folder and trains it (:func:`train`);
3. :func:`course_utils.engine.fit` runs the loop on the objects it is given.

"Run" means one training run throughout: its folder (``run.folder``, made by
:func:`course_utils.runs.new_run_dir`) holds its TensorBoard logs and ``checkpoints/``.
Errors name settings as :func:`make_settings` takes them (``lr``); the command line spells
them as its options (``--lr``, :class:`course_utils.engine.SettingError`).

Under ``torchrun`` (process group set up, :mod:`course_utils.distributed`) every process
builds the same run on its shard of the training set: ``batch_size`` is per process, so the
global batch is ``batch_size × WORLD_SIZE`` (see :func:`train`).

>>> settings = make_settings("original", epochs=1, limit=200, device="cpu")
>>> settings.recipe.lr, settings.recipe.batch_size
(0.01, 64)
>>> # run_dir, history = train(Run(settings))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader, Subset

from course_utils import checkpoints, data, distributed, engine, models
from course_utils.devices import PRECISION_CHOICES, PRECISIONS, pick_device, precision_choice
from course_utils.engine import NamesSettings, SettingError
from course_utils.loaders import CIFAR10_MEAN, CIFAR10_STD, TensorLoader
from course_utils.runs import new_run_dir
from course_utils.settings import scaled


@dataclass(frozen=True)
class Recipe:
    """Every setting of a training run that decides what is learned (see :data:`RECIPES`)."""

    name: str
    model: str
    epochs: int
    batch_size: int
    eval_batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    pct_start: float
    label_smoothing: float
    pipeline: str
    augment: bool
    normalize: bool
    drop_last: bool
    channels_last: bool
    precision: str             # auto, float32 or bfloat16 (devices.precision_choice)


RECIPES = {
    # P27 exactly: 小土堆's script, unchanged
    "original": Recipe(
        name="original",
        model="tudui",            # Tudui: three 5×5 conv + max-pool stages, no ReLU
        epochs=10,                # passes over the training set (1 in fast mode)
        batch_size=64,            # images per training step
        eval_batch_size=256,      # images per step when measuring the test set
        lr=0.01,                  # SGD learning rate, constant
        momentum=0.0,             # plain SGD
        nesterov=False,           # (needs momentum)
        weight_decay=0.0,         # no L2 penalty
        schedule="none",          # the learning rate never changes
        pct_start=0.0,            # (only for schedule "onecycle")
        label_smoothing=0.0,      # plain cross-entropy
        pipeline="pil",           # DataLoader over PIL images, ToTensor per image
        augment=False,            # no flips or shifts
        normalize=False,          # ToTensor only: pixels in [0, 1]
        drop_last=False,          # the last, smaller batch is trained on too
        channels_last=False,      # PyTorch's default NCHW memory layout
        precision="float32",      # every number in float32
    ),
    # 0.83 test accuracy in 10 epochs on 2 CPU cores (BENCHMARKS.md)
    "improved": Recipe(
        name="improved",
        model="fast-cnn",         # FastCNN: 3×3 convs, early pooling, BatchNorm, ReLU
        epochs=10,                # passes over the training set (1 in fast mode)
        batch_size=256,           # images per training step
        eval_batch_size=512,      # images per step when measuring the test set
        lr=0.2,                   # peak learning rate of the one-cycle schedule
        momentum=0.9,             # SGD momentum
        nesterov=True,            # Nesterov's variant of momentum
        weight_decay=5e-4,        # L2 penalty on the weights
        schedule="onecycle",      # OneCycleLR: warm up, then cosine down to ~0, every batch
        pct_start=0.25,           # the first 25 % of the steps warm up
        label_smoothing=0.1,      # targets 0.91 / 0.01 instead of 1 / 0
        pipeline="tensors",       # decoded once into uint8 tensors, TensorLoader batches
        augment=True,             # random horizontal flips and 4-pixel shifts
        normalize=True,           # subtract the CIFAR-10 mean, divide by its std
        drop_last=True,           # skip the last, smaller batch (steady BatchNorm statistics)
        channels_last=True,       # NHWC memory layout: faster convolutions on a CPU
        precision="float32",      # every number in float32
    ),
    # the most accuracy in 10 minutes on 2 CPU cores (benchmarks/time_to_accuracy.py)
    "deep": Recipe(
        name="deep",
        model="deep-cnn",         # DeepCNN: seven convs, widths 32/128/128, BatchNorm, ReLU
        epochs=16,                # about what fits in 10 minutes on 2 CPU cores (1 in fast mode)
        batch_size=256,           # images per training step
        eval_batch_size=1000,     # images per step when measuring the test set
        lr=0.2,                   # peak learning rate of the one-cycle schedule
        momentum=0.9,             # SGD momentum
        nesterov=True,            # Nesterov's variant of momentum
        weight_decay=5e-4,        # L2 penalty on the weights
        schedule="onecycle",      # OneCycleLR: warm up, then cosine down to ~0, every batch
        pct_start=0.25,           # the first 25 % of the steps warm up
        label_smoothing=0.2,      # targets 0.82 / 0.02 instead of 1 / 0
        pipeline="tensors",       # decoded once into uint8 tensors, TensorLoader batches
        augment=True,             # random horizontal flips and 4-pixel shifts
        normalize=True,           # subtract the CIFAR-10 mean, divide by its std
        drop_last=True,           # skip the last, smaller batch (steady BatchNorm statistics)
        channels_last=True,       # NHWC memory layout: faster convolutions on a CPU
        precision="auto",         # bfloat16 forward passes (torch.autocast) where the hardware
    ),                            # has BF16 instructions (≈1.8× faster there), else float32
}
#: Settings a resumed run keeps (changing them mid-run would not continue the same run).
FIXED_ON_RESUME = ("recipe", "model", "lr", "momentum", "batch_size", "limit", "seed")


@dataclass(frozen=True)
class TrainSettings:
    """One training run, resolved once by :func:`make_settings` and passed down."""

    recipe: Recipe             # the recipe's values with the run's choices applied
    limit: int | None          # train on at most this many images (None: all)
    seed: int                  # torch.manual_seed before anything random
    device: torch.device       # where the model and the batches live
    data_dir: Path | None      # folder with cifar10-jpg/ (None: the data layer's default)
    logdir: Path               # parent of the new run folder
    run_name: str | None       # suffix of the new run folder (None: the recipe's name)
    resume: Path | None        # the folder of the run to continue (None: a new run)
    progress: bool             # progress bars

    @property
    def config(self) -> dict:
        """The plain values stored in every checkpoint as ``"config"``."""
        values = dataclasses.asdict(self.recipe)
        return {"recipe": values.pop("name"), **values, "limit": self.limit, "seed": self.seed}


def make_settings(recipe: str | None = None, *, checkpoint: dict | None = None,
                  model: str | None = None, epochs: int | None = None,
                  batch_size: int | None = None, lr: float | None = None,
                  momentum: float | None = None, limit: int | None = None,
                  seed: int | None = None, precision: str | None = None, device="auto",
                  data_dir=None, logdir="runs",
                  run_name: str | None = None, resume=None,
                  progress: bool = True) -> TrainSettings:
    """The settings of a run: what is chosen here, else (when ``checkpoint``, the newest
    checkpoint of the run to ``resume``, is given) the run's stored settings, else the
    recipe's ("improved" unless named; epochs: the recipe's, 1 in fast mode; seed 0).

    ``device``: a ``torch.device`` is used as it is (the command line resolved it); a name
    (``"auto"``, ``"cuda:1"`` …) is resolved here by :func:`~course_utils.devices.pick_device`.

    ``precision`` (``auto``, ``float32``, ``bfloat16``) is what is asked for; the run decides
    on its device (:func:`course_utils.devices.precision_choice`), also when resumed.

    Raises ``ValueError`` for an unknown recipe, model, precision or device, and
    :class:`~course_utils.engine.SettingError` (a ``ValueError`` naming the setting) for a
    choice that contradicts a resumed run or the recipe.
    """
    chosen = dict(recipe=recipe, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                  momentum=momentum, limit=limit, seed=seed, precision=precision)
    stored = checkpoint["config"] if checkpoint is not None else {}
    for key in FIXED_ON_RESUME:
        if chosen[key] is not None and key in stored and chosen[key] != stored[key]:
            raise SettingError(
                f"{resume} was trained with {{{key}}} {stored[key]}; a resumed run keeps its "
                f"settings. Leave out {{{key}}}, or start a new run without {{resume}}.")
    values = {"recipe": "improved", "limit": None, "seed": 0, **stored,
              **{k: v for k, v in chosen.items() if v is not None}}
    if values["recipe"] not in RECIPES:
        raise ValueError(f"unknown recipe {values['recipe']!r}; choose one of {sorted(RECIPES)}.")
    base = RECIPES[values["recipe"]]
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"name"}
    changes = {k: v for k, v in values.items() if k in fields}
    changes.setdefault("epochs", scaled(base.epochs, 1))
    changes["model"] = models.model_key(changes.get("model", base.model))
    chosen_recipe = dataclasses.replace(base, **changes)
    _check(chosen_recipe, stored, resume)
    return TrainSettings(
        recipe=chosen_recipe, limit=values["limit"], seed=values["seed"],
        device=device if isinstance(device, torch.device) else pick_device(device,
                                                                             verbose=False),
        data_dir=Path(data_dir) if data_dir is not None else None, logdir=Path(logdir),
        run_name=run_name, resume=Path(resume) if resume is not None else None,
        progress=progress)


def _check(recipe: Recipe, stored: dict, resume) -> None:
    if stored and recipe.schedule != "none" and recipe.epochs != stored.get("epochs"):
        raise SettingError(
            f"{resume} uses a {recipe.schedule} learning-rate schedule planned for "
            f"{stored.get('epochs')} epochs, so {{epochs}} cannot change on resume.")
    if recipe.precision not in PRECISION_CHOICES:
        raise ValueError(f"unknown precision {recipe.precision!r}; use one of "
                         f"{', '.join(PRECISION_CHOICES)}.")
    if recipe.nesterov and recipe.momentum == 0:
        raise SettingError(f"the {recipe.name} recipe uses Nesterov momentum, which needs a "
                           "momentum above 0 (e.g. {momentum} 0.9).")


class ResumeError(NamesSettings, checkpoints.CheckpointError):
    """A run folder that cannot be resumed (no checkpoint in it)."""


def checkpoint_to_resume(run_dir) -> dict:
    """The newest checkpoint of a run made by :func:`train` — read once, to resume it."""
    found = checkpoints.load_latest(run_dir)
    if found is None:
        raise ResumeError(
            f"{run_dir} has no readable checkpoint (checkpoints/last.pt or epoch_NNN.pt) to "
            "resume from; pick a run folder that has one, or leave out {resume}.")
    path, state = found
    if not isinstance(state.get("config"), dict):
        raise checkpoints.CheckpointError(
            f"{path} was not written by 'python -m course_utils train' (it has no "
            "'config'), so the CLI cannot resume it; use engine.fit(..., start=checkpoint).")
    print(f"[course_utils] continuing from {path}")
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
    raise ValueError(f"unknown schedule {recipe.schedule!r}; use 'none' or 'onecycle'.")


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
        train = (distributed.ShardedTensorLoader(xs, ys, recipe.batch_size, seed=seed, **options)
                 if many else TensorLoader(xs, ys, recipe.batch_size, shuffle=True, **options))
        test_x, test_y = data.as_tensors(data.cifar10(train=False, data_dir=data_dir,
                                                      verbose=verbose))
        part = slice(distributed.rank(), None, distributed.world_size())
        test = TensorLoader(test_x[part], test_y[part], batch_size=recipe.eval_batch_size,
                            normalize=normalize, device=device)
        return train, test, normalize
    if recipe.pipeline != "pil":
        raise ValueError(f"unknown pipeline {recipe.pipeline!r}; use 'pil' or 'tensors'.")
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
        raise ValueError("a resumed run needs both settings.resume (its folder) and its "
                         "checkpoint (prepare() reads it); a new run neither.")
    recipe, n = settings.recipe, distributed.world_size()
    main = distributed.is_main()
    precision, why = precision_choice(recipe.precision, settings.device.type)
    if main:  # the run's first line
        print(f"[course_utils] precision: {precision} ({why})", flush=True)
    parts = build_parts(settings)
    run.folder = settings.resume or distributed.share(
        call=lambda: new_run_dir(settings.logdir, settings.run_name or recipe.name))
    batch = f"batch {recipe.batch_size}" + (
        f" per process × {n} processes = {recipe.batch_size * n}" if n > 1 else "")
    if main:
        print(f"[course_utils] model {recipe.model} ({models.count_parameters(parts.model):,} "
              f"parameters), {len(parts.train_loader.dataset):,} training images, "
              f"{recipe.epochs} epoch(s), lr {recipe.lr}, {batch}, device {settings.device}"
              f"{', ' + precision if precision != 'float32' else ''}, "
              f"run folder {run.folder}")
    history = engine.fit(
        parts.model, parts.train_loader, parts.test_loader, epochs=recipe.epochs,
        optimizer=parts.optimizer, loss_fn=parts.loss_fn, scheduler=parts.scheduler,
        device=settings.device, run_dir=run.folder, start=run.checkpoint,
        model_name=recipe.model, progress=settings.progress, verbose=True,
        metadata={"config": settings.config, "normalize": parts.normalize,
                  "precision": precision}, amp_dtype=PRECISIONS[precision])
    return run.folder, history
