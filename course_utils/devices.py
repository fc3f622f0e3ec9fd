"""Devices (P30–P32): pick the fastest one (CUDA → Apple MPS → CPU), check a device name
(the one place the course does), time training on a device, and write a "saved on a GPU" file.

>>> device = pick_device()                 # prints e.g. "training on cpu (cpu)"
>>> model = model.to(device)               # the ".to(device)" style of P31
"""

from __future__ import annotations

import contextvars
import time

import torch

from course_utils.files import atomic_save


def available_devices() -> list[str]:
    """Names of the devices this machine can train on, e.g. ``['cuda:0', 'cpu']``."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() \
        else []
    if _mps_available():
        names.append("mps")
    return names + ["cpu"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def pick_device(preferred: str | torch.device | None = None, verbose: bool = True) -> torch.device:
    """``torch.device`` to train on.

    ``preferred`` may be ``"auto"``/None (cuda → mps → cpu), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ``"mps"`` or a ``torch.device``. Asking for a device that is not there
    raises ``ValueError`` that says what is available.

    >>> pick_device("cpu", verbose=False)
    device(type='cpu')
    """
    if preferred is None or (isinstance(preferred, str) and preferred.strip() in ("", "auto")):
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
    else:
        device = _check_available(preferred)
    if verbose:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        print(f"[course_utils] training on {device} ({name})")
    return device


def _check_available(preferred) -> torch.device:
    try:
        device = torch.device(preferred.strip() if isinstance(preferred, str) else preferred)
    except (RuntimeError, TypeError):
        raise ValueError(f"{str(preferred)!r} is not a device; use auto, cpu, cuda, cuda:N "
                         "or mps.") from None
    here = ", ".join(available_devices())
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(preferred)!r} asked for, but no CUDA GPU is available "
                             f"here (available: {here}); use 'cpu' or 'auto'.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(preferred)!r} asked for, but this machine has "
                             f"{torch.cuda.device_count()} GPU(s) (available: {here}).")
    elif device.type == "mps" and not _mps_available():
        raise ValueError(f"device 'mps' asked for, but Apple's MPS is not available here "
                         f"(available: {here}).")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {str(preferred)!r} is not supported by the course; use "
                         f"one of: auto, {here}.")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (needed before reading a timer on CUDA/MPS)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


#: A recipe's ``precision`` → the dtype of ``torch.autocast`` (None: float32 throughout).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


def autocast_dtype(precision: str, device, verbose: bool = False) -> torch.dtype | None:
    """The ``torch.autocast`` dtype for ``precision`` on ``device`` (see appendix A).

    bfloat16 keeps float32's range with fewer digits, so no loss scaling is needed. It runs on
    every CPU — about twice as fast as float32 where the CPU has AVX-512 BF16 or AMX (recent
    AMD EPYC / Ryzen and Intel Xeon), slower elsewhere — and on CUDA GPUs from Ampere on. On a
    GPU without it (e.g. a T4) the run falls back to float32 (with a note if ``verbose``).

    >>> autocast_dtype("bfloat16", "cpu")
    torch.bfloat16
    >>> autocast_dtype("float32", "cpu") is None
    True
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {sorted(PRECISIONS)}.")
    device = torch.device(device)
    dtype = PRECISIONS[precision]
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if verbose:
            print(f"[course_utils] {torch.cuda.get_device_name(device)} has no bfloat16: "
                  "training in float32 instead")
        return None
    if dtype is not None and device.type == "mps":
        if verbose:
            print("[course_utils] mixed precision is not used on Apple's MPS: training in "
                  "float32 instead")
        return None
    return dtype


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
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - t0)


# ------------------------------------------------------------- "saved on a GPU" files
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
