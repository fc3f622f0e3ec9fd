"""Training recipes: every setting of a CIFAR-10 run in one table (:data:`RECIPES`), and the
settings of one run resolved from a recipe and the caller's choices (:func:`make_settings`).
:mod:`course_utils.training` turns them into a run (model, optimizer, scheduler, loss,
loaders) and trains it.

The three layers of ``python -m course_utils train``, settings flowing down only:

1. :mod:`course_utils.cli` parses the options (the device resolved once, there) and hands
   them to :func:`course_utils.training.prepare`;
2. :mod:`course_utils.training` prepares the :class:`~course_utils.training.Run` — reads the
   checkpoint of a run to resume (once), resolves its :class:`TrainSettings` here
   (:func:`make_settings`) — builds its parts, makes its folder and trains it;
3. :func:`course_utils.engine.fit` runs the loop on the objects it is given.

Errors name settings as :func:`make_settings` takes them (``lr``); the command line spells
them as its options (``--lr``, :class:`course_utils.errors.SettingError`).

>>> settings = make_settings("original", epochs=1, limit=200, device="cpu")
>>> settings.recipe.lr, settings.recipe.batch_size
(0.01, 64)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from course_utils import models
from course_utils.devices import PRECISION_CHOICES, pick_device
from course_utils.errors import SettingError
from course_utils.i18n import tr
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
        epochs=20,                # what fits in 10 minutes on 2 cores in bfloat16 (1 in fast mode)
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
    :class:`~course_utils.errors.SettingError` (a ``ValueError`` naming the setting) for a
    choice that contradicts a resumed run or the recipe.
    """
    chosen = dict(recipe=recipe, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                  momentum=momentum, limit=limit, seed=seed, precision=precision)
    stored = checkpoint["config"] if checkpoint is not None else {}
    for key in FIXED_ON_RESUME:
        if chosen[key] is not None and key in stored and chosen[key] != stored[key]:
            raise SettingError(tr(
                f"{resume} was trained with {{{key}}} {stored[key]}; a resumed run keeps its "
                f"settings. Leave out {{{key}}}, or start a new run without {{resume}}."))
    values = {"recipe": "improved", "limit": None, "seed": 0, **stored,
              **{k: v for k, v in chosen.items() if v is not None}}
    if values["recipe"] not in RECIPES:
        raise ValueError(tr(f"unknown recipe {values['recipe']!r}; choose one of "
                            f"{sorted(RECIPES)}."))
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
        raise SettingError(tr(
            f"{resume} uses a {recipe.schedule} learning-rate schedule planned for "
            f"{stored.get('epochs')} epochs, so {{epochs}} cannot change on resume."))
    if recipe.precision not in PRECISION_CHOICES:
        raise ValueError(tr(f"unknown precision {recipe.precision!r}; use one of "
                            f"{', '.join(PRECISION_CHOICES)}."))
    if recipe.nesterov and recipe.momentum == 0:
        raise SettingError(tr(f"the {recipe.name} recipe uses Nesterov momentum, which "
                              "needs a momentum above 0 (e.g. {momentum} 0.9)."))
