"""Helpers only the tests use (the package ships what the course uses)."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import torch

from course_utils import data, devices, exercises, layers


def jpg_copy(dest: Path, per_class: int) -> Path:
    """``dest/cifar10-jpg/{train,test}/<class>/``: the first ``per_class`` photos of each class
    of the bundled sample, laid out like the full set's image folder; returns ``dest``."""
    for split in ("train", "test"):
        for name in data.CIFAR10_CLASSES:
            target = dest / "cifar10-jpg" / split / name
            target.mkdir(parents=True)
            for src in sorted((data.CIFAR10_SAMPLE / split / name).glob("*.jpg"))[:per_class]:
                shutil.copy(src, target)
    return dest


def snapshot(folder: Path) -> dict:
    """Every file below ``folder``: the sha256 of its bytes and its modification time (equal
    before and after a failed run: nothing of the learner's was changed, added or lost)."""
    return {p.relative_to(folder).as_posix():
            (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def all_exercises() -> list[exercises.Exercise]:
    """Every exercise of every chapter module."""
    result = []
    for info in sorted(pkgutil.iter_modules(exercises.__path__), key=lambda m: m.name):
        if info.name.startswith("ch"):
            module = importlib.import_module(f"{exercises.__name__}.{info.name}")
            result += [v for v in vars(module).values() if isinstance(v, exercises.Exercise)]
    return result


def solve(ex: exercises.Exercise) -> Any:
    """Run the exercise's reference solution and return its ``answer``."""
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(ex.solution_code), namespace)  # trusted course code
    return namespace["answer"]


def layer_shapes(model: torch.nn.Module, input_size) -> list[tuple[str, tuple[int, ...]]]:
    """``[(layer type, output shape), …]`` for every leaf layer, in the order they run.

    >>> from course_utils.models import Tudui
    >>> layer_shapes(Tudui(), (1, 3, 32, 32))[-1]
    ('Linear', (1, 10))
    """
    stats = layers.layer_table(model, input_size, depth=10)
    return [(info.class_name, tuple(info.output_size))
            for info in stats.summary_list if info.is_leaf_layer]


def time_training(model: torch.nn.Module, device, batch_size: int = 64, steps: int = 20,
                  warmup: int = 3, image_shape=(3, 32, 32), classes: int = 10) -> float:
    """Images per second for SGD training steps of ``model`` on ``device`` (random data).

    Runs ``warmup`` untimed steps first (CUDA starts lazily), synchronises before reading
    the clock, and leaves ``model`` on ``device``.

    >>> # time_training(Tudui(), "cpu")   # e.g. 2500.0
    """
    device = torch.device(device)
    model = model.to(device).train()
    x = torch.randn(batch_size, *image_shape, device=device)
    y = torch.randint(0, classes, (batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    devices.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    devices.synchronize(device)
    return steps * batch_size / (time.perf_counter() - t0)
