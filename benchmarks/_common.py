"""Shared helpers of the benchmark scripts: data, timers, machine facts, result files.

Every script is plain Python run from the course folder, e.g.::

    COURSE_DATA_DIR=../shared/data python benchmarks/throughput.py

Timers are ``time.perf_counter`` (wall) and ``resource.getrusage`` (CPU time of this
process, peak resident memory). ``os.getloadavg()`` is recorded before and after every
measurement so that a figure taken on a busy machine can be recognised as such.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

#: Variables set here by default (not by the user); benchmarks.notebooks drops them again so
#: that the notebook suite runs with exactly the environment CI gives it.
DEFAULTED = {k: v for k, v in (("COURSE_OFFLINE", "1"), ("OMP_WAIT_POLICY", "PASSIVE"))
             if k not in os.environ}
# Benchmarks never touch the network: the full set comes from COURSE_DATA_DIR.
os.environ.setdefault("COURSE_OFFLINE", "1")
# On a machine shared with other jobs, OpenMP threads that spin while waiting for each other
# lose most of their time; passive waiting costs little when the machine is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from course_utils import data  # noqa: E402

BANNER = "!" * 78


def set_threads(n: int) -> int:
    """Use ``n`` intra-op threads (the targets are stated for 2 CPU cores)."""
    torch.set_num_threads(n)
    return torch.get_num_threads()


def cifar10_split(train: bool, *, allow_sample: bool = True):
    """``(dataset, split folder)`` of the full CIFAR-10 image-folder copy.

    The folder comes from ``COURSE_DATA_DIR`` (``cifar10-jpg/`` or ``cifar10-jpg.tar.gz``, the
    archive unpacked once into the ignored course cache). Without it the bundled sample
    (1,000 train / 200 test images) is used after a loud warning, or ``SystemExit`` when
    ``allow_sample`` is False.
    """
    ds = data.cifar10(train=train)
    if ds.source == "sample":
        message = (
            f"{BANNER}\n!! WARNING: the FULL CIFAR-10 set was not found, so this benchmark runs on "
            f"the bundled\n!! sample ({len(ds):,} images). Its figures are NOT comparable with "
            "BENCHMARKS.md.\n!! Set COURSE_DATA_DIR to the folder holding cifar10-jpg/ or "
            f"cifar10-jpg.tar.gz.\n{BANNER}"
        )
        print(message, file=sys.stderr, flush=True)
        if not allow_sample:
            raise SystemExit("full CIFAR-10 required (--require-full); set COURSE_DATA_DIR.")
    folder = Path(ds.root) if ds.source in ("image-folder", "sample") else None
    return ds, folder


def cifar10_tensors(*, require_full: bool, limit: int | None = None):
    """``(xs, ys, xt, yt, source)``: train and test sets as uint8 ``(N, 3, 32, 32)`` images and
    int64 labels (the training set cut to ``limit`` images spread over the classes when
    given), and where they came from (``"image-folder"``, ``"sample"``, …)."""
    train_ds, _ = cifar10_split(True, allow_sample=not require_full)
    test_ds, _ = cifar10_split(False, allow_sample=not require_full)
    return (*data.as_tensors(train_ds, limit), *data.as_tensors(test_ds), train_ds.source)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


@contextmanager
def measure(record: dict, device: str | torch.device = "cpu"):
    """Fill ``record`` with ``seconds`` (wall), ``cpu_seconds`` and load averages.

    >>> r = {}
    >>> with measure(r):
    ...     _ = sum(range(1000))
    >>> sorted(r)
    ['cpu_seconds', 'load_after', 'load_before', 'seconds']
    """
    record["load_before"] = round(os.getloadavg()[0], 2)
    _sync(device)
    t0, c0 = time.perf_counter(), cpu_seconds()
    yield record
    _sync(device)
    record["seconds"] = time.perf_counter() - t0
    record["cpu_seconds"] = cpu_seconds() - c0
    record["load_after"] = round(os.getloadavg()[0], 2)


def _sync(device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values):
    """Median of a non-empty list of numbers."""
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def machine() -> dict:
    """Facts about this machine and software, stored with every result."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["commit"] = _commit()
    return info


def _commit() -> str | None:
    """The checked-out commit, with ``+changes`` when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "course_utils",
                                "benchmarks"], cwd=REPO_ROOT, check=False).returncode
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def save_result(name: str, result: dict, out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``result`` plus :func:`machine` facts as JSON to
    ``out_dir/<name>-<date-time>.json`` (default ``runs/benchmarks``, which git ignores)."""
    out = Path(out_dir) if out_dir is not None else REPO_ROOT / "runs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2))
    print(f"results written to {path}")
    return path
