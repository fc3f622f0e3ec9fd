"""Pick the fastest device available: CUDA → Apple MPS → CPU."""

from __future__ import annotations

import torch


def pick_device(preferred: str | None = None, verbose: bool = True) -> torch.device:
    """``torch.device`` to train on.

    ``preferred`` may be ``"auto"``/None (cuda → mps → cpu), ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or ``"mps"``. Asking for a device that is not there raises ``ValueError``
    that says what is available.

    >>> pick_device("cpu", verbose=False)
    device(type='cpu')
    """
    if preferred in (None, "", "auto"):
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
    else:
        try:
            device = torch.device(preferred)
        except RuntimeError as exc:
            raise ValueError(f"{preferred!r} is not a device name ({exc}).") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {preferred!r} asked for, but no CUDA GPU is available "
                             "here; use 'cpu' or 'auto'.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' asked for, but Apple's MPS is not available here.")
    if verbose:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        print(f"[course_utils] training on {device} ({name})")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (needed before reading a timer on CUDA/MPS)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
