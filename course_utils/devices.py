"""Devices (P30–P32): pick the fastest one (CUDA → Apple MPS → CPU), check a device name
(the one place the course does), wait for a GPU, and choose the training precision.

>>> device = pick_device()                 # prints e.g. "training on cpu (cpu)"
>>> model = model.to(device)               # the ".to(device)" style of P31
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from course_utils.i18n import N_, tr


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
        print("[course_utils] " + tr(f"training on {device} ({name})"))
    return device


def _check_available(preferred) -> torch.device:
    try:
        device = torch.device(preferred.strip() if isinstance(preferred, str) else preferred)
    except (RuntimeError, TypeError):
        raise ValueError(tr(f"{str(preferred)!r} is not a device; use auto, cpu, cuda, "
                            "cuda:N or mps.")) from None
    here = ", ".join(available_devices())
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(tr(f"device {str(preferred)!r} asked for, but no CUDA GPU is "
                                f"available here (available: {here}); use 'cpu' or 'auto'."))
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(tr(f"device {str(preferred)!r} asked for, but this machine has "
                                f"{torch.cuda.device_count()} GPU(s) (available: {here})."))
    elif device.type == "mps" and not _mps_available():
        raise ValueError(tr(f"device 'mps' asked for, but Apple's MPS is not available here "
                            f"(available: {here})."))
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(tr(f"device {str(preferred)!r} is not supported by the course; use "
                            f"one of: auto, {here}."))
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (needed before reading a timer on CUDA/MPS)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


#: What a recipe's ``precision`` or ``--precision`` may ask for (``auto``: see
#: :func:`precision_choice`).
PRECISION_CHOICES = ("auto", "float32", "bfloat16")
#: A precision → the dtype of ``torch.autocast`` (None: float32 throughout).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}
#: :func:`detect_cpu_capability` values of CPUs with native BF16 instructions: ``auto`` picks
#: bfloat16 on these only (elsewhere bfloat16 is emulated and slower than float32).
BF16_CPU_CAPABILITIES = ("AMX_BF16", "AVX512_BF16")


def detect_cpu_capability() -> str:
    """What this CPU can do for PyTorch: ``torch.backends.cpu.get_cpu_capability()``, with
    ``"AVX512"`` refined to ``"AMX_BF16"`` or ``"AVX512_BF16"`` when the CPU has those.

    PyTorch's own answer (``"DEFAULT"``, ``"NO AVX"``, ``"AVX2"``, ``"AVX512"``, ``"SVE256"``,
    ``"VSX"``, ``"Z VECTOR"``) follows ``ATEN_CPU_CAPABILITY`` (e.g. ``avx2``) but does not tell
    CPUs with BF16 instructions apart; the refinement reads the CPU's flags (``amx_bf16``,
    ``avx512_bf16``) and respects a limit set in ``ONEDNN_MAX_CPU_ISA`` (oneDNN runs the
    convolutions: below ``AVX512_CORE_BF16`` it emulates bfloat16).

    >>> detect_cpu_capability()  # doctest: +SKIP
    'AVX2'
    """
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX512":
        return capability
    flags = _cpu_flags()
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
           or "ALL").strip().upper()
    unlimited = isa in ("ALL", "DEFAULT")
    if "amx_bf16" in flags and (unlimited or "AMX" in isa):
        return "AMX_BF16"
    if flags & {"amx_bf16", "avx512_bf16"} and (
            unlimited or any(tag in isa for tag in ("BF16", "FP16", "AMX", "AVX10"))):
        return "AVX512_BF16"
    return capability


def _cpu_flags() -> set[str]:
    """The CPU's BF16 flags: from PyTorch's cpuinfo where it has the (private) helpers,
    else from ``/proc/cpuinfo`` (Linux); empty when neither tells."""
    cpu = torch.cpu
    if hasattr(cpu, "_is_avx512_bf16_supported") and hasattr(cpu, "_is_amx_tile_supported"):
        # every CPU with AMX tiles so far (Intel Sapphire Rapids on) has AMX-BF16 too
        return {name for name, has in (("avx512_bf16", cpu._is_avx512_bf16_supported()),
                                       ("amx_bf16", cpu._is_amx_tile_supported())) if has}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"}
    return set()


def precision_choice(requested: str = "auto", device_type: str = "cpu",
                     cpu_capability: str | None = None,
                     cuda_bf16: bool | None = None) -> tuple[str, str]:
    """``(precision, why)``: the precision a run on ``device_type`` trains in, and why.

    ``auto`` gives ``"bfloat16"`` on a CPU whose ``cpu_capability`` (default: this one's,
    :func:`detect_cpu_capability`) is in :data:`BF16_CPU_CAPABILITIES` — AMX or AVX-512 BF16 — and
    on a CUDA GPU that computes in bfloat16 natively (``cuda_bf16``, default
    ``torch.cuda.is_bf16_supported(including_emulation=False)``: Ampere on); ``"float32"``
    elsewhere (AVX2 or plain AVX-512 CPUs, ARM CPUs, older GPUs, Apple's MPS).

    ``float32`` is always honoured. ``bfloat16`` is honoured on every CPU (on one without BF16
    instructions it runs, emulated and slower than float32, and ``why`` says so); on a GPU
    without native bfloat16 and on MPS it falls back to ``"float32"`` and ``why`` says so.
    Raises ``ValueError`` for anything but :data:`PRECISION_CHOICES`.

    >>> precision_choice("auto", "cpu", cpu_capability="AVX2")
    ('float32', 'auto: this CPU (AVX2) has no BF16 instructions')
    >>> precision_choice("auto", "cpu", cpu_capability="AMX_BF16")[0]
    'bfloat16'
    """
    if requested not in PRECISION_CHOICES:
        raise ValueError(tr(f"unknown precision {requested!r}; use one of "
                            f"{', '.join(PRECISION_CHOICES)}."))
    # the reasons are English values (doctests); N_ marks them so that the printed
    # ``precision: … (why)`` line is translated whole
    if requested == "float32":
        return "float32", N_("asked for")
    if device_type == "cpu":
        capability = cpu_capability if cpu_capability is not None \
            else detect_cpu_capability()
        native = capability in BF16_CPU_CAPABILITIES
        isa = "AMX" if capability == "AMX_BF16" else "AVX-512"
        has = N_(f"this CPU has {isa} BF16 instructions") if native else \
            N_(f"this CPU ({capability}) has no BF16 instructions")
        if requested == "bfloat16":
            return "bfloat16", N_("asked for") if native else \
                N_(f"asked for; {has}, so bfloat16 is emulated and slower than float32")
        return ("bfloat16" if native else "float32"), N_(f"auto: {has}")
    if device_type == "cuda":
        if cuda_bf16 is None:
            cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported(
                including_emulation=False)
        if cuda_bf16:
            return "bfloat16", (N_("asked for") if requested == "bfloat16"
                                else N_("auto: this GPU computes in bfloat16"))
        return "float32", (N_("bfloat16 asked for, but this GPU has no native bfloat16")
                           if requested == "bfloat16"
                           else N_("auto: this GPU has no native bfloat16"))
    where = N_("Apple's MPS") if device_type == "mps" else N_(f"device type {device_type!r}")
    return "float32", (
        N_(f"bfloat16 asked for, but the course does not use mixed precision on {where}")
        if requested == "bfloat16"
        else N_(f"auto: the course does not use mixed precision on {where}"))


def choose_precision(requested: str = "auto", device_type: str = "cpu",
                     cpu_capability: str | None = None,
                     cuda_bf16: bool | None = None) -> str:
    """``"float32"`` or ``"bfloat16"``: the first half of :func:`precision_choice`.

    >>> choose_precision("auto", "cpu", cpu_capability="AVX512_BF16")
    'bfloat16'
    >>> choose_precision("auto", "mps")
    'float32'
    """
    return precision_choice(requested, device_type, cpu_capability, cuda_bf16)[0]


def autocast_dtype(precision: str, device, verbose: bool = False) -> torch.dtype | None:
    """The ``torch.autocast`` dtype for ``precision`` (``auto``, ``float32``, ``bfloat16``) on
    ``device`` (see :func:`precision_choice` and appendix A): ``torch.bfloat16`` or None
    (float32 throughout). bfloat16 keeps float32's range with fewer digits, so no loss
    scaling is needed. With ``verbose`` prints ``precision: … (why)``.

    >>> autocast_dtype("bfloat16", "cpu")
    torch.bfloat16
    >>> autocast_dtype("float32", "cpu") is None
    True
    """
    device = torch.device(device)
    chosen, why = precision_choice(precision, device.type)
    if verbose:
        print("[course_utils] " + tr(f"precision: {chosen} ({why})"))
    return PRECISIONS[chosen]
