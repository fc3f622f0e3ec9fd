"""Data-parallel training (appendix C): one process per device, started by ``torchrun``.

Every process holds the whole model and trains on its own shard of each epoch's data;
``DistributedDataParallel`` averages the gradients across the processes after every backward
pass, so the copies stay equal. torchrun tells each process its place in the job through the
environment:

* ``RANK`` – 0 … WORLD_SIZE−1, unique in the whole job (rank 0 writes logs and checkpoints)
* ``LOCAL_RANK`` – 0 … on this machine: which GPU the process uses
* ``WORLD_SIZE`` – processes in all (machines × processes per machine)
* ``MASTER_ADDR`` / ``MASTER_PORT`` – where rank 0 waits for the others to connect

Without torchrun every function here is a no-op, so the same code trains in one process:

>>> with process_group("cpu") as device:   # gloo on CPUs, NCCL on GPUs (one per LOCAL_RANK)
...     rank(), world_size(), is_main()
(0, 1, True)
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from course_utils.i18n import tr


# --------------------------------------------------------------------- the process group
def launched() -> bool:
    """True in a process that torchrun started (its environment names RANK and WORLD_SIZE)."""
    return all(key in os.environ for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def active() -> bool:
    """True once the process group is set up (:func:`setup`)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the one process that prints, logs to TensorBoard and saves checkpoints."""
    return rank() == 0


def local_device(device) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for CUDA, the CPU as it is.

    ``ValueError`` for Apple's MPS (no backend for it) and for fewer GPUs than processes.
    """
    device, local = torch.device(device), int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ValueError(tr(f"process LOCAL_RANK={local} needs GPU {local}, but this "
                                f"machine has {torch.cuda.device_count()}; start at most that "
                                "many processes per machine (--nproc_per_node)."))
        return torch.device("cuda", local)
    if device.type != "cpu":
        raise ValueError(tr(f"torchrun training runs on CUDA GPUs (NCCL) or CPUs (gloo), not "
                            f"on {device.type!r}; add --device cpu."))
    return device


def setup(device) -> torch.device:
    """Join the job torchrun started (``env://``: RANK, WORLD_SIZE, MASTER_ADDR/PORT);
    returns this process's device. NCCL on CUDA, gloo on the CPU."""
    device = local_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return device


def cleanup() -> None:
    """Leave the process group (safe to call twice, or when there is none)."""
    if active():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device):
    """``with process_group(device) as device:`` — under torchrun: join the job and always
    leave it at the end (done, error, Ctrl+C; torchrun stops the other processes with SIGTERM
    when one fails, which :mod:`course_utils.interrupts` turns into ``KeyboardInterrupt`` in
    the command line); without torchrun: yields ``torch.device(device)`` and does nothing else.

    A failed collective (another process died) comes out as ``ConnectionError``."""
    if not launched():
        yield torch.device(device)
        return
    try:
        yield setup(device)
    except dist.DistError as exc:
        raise ConnectionError(tr(f"process {os.environ['RANK']} lost the other processes of "
                                 f"the job ({str(exc).splitlines()[0]}).")) from None
    finally:
        cleanup()


@contextlib.contextmanager
def main_first():
    """``with main_first():`` rank 0 runs the block first (downloads or decodes the data into
    the cache), the other processes after it has finished (then from the cache)."""
    if active() and not is_main():
        dist.barrier()
    yield
    if active() and is_main():
        dist.barrier()


# ------------------------------------------------------------------------ collectives
def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the processes, in place (unchanged in a single process).

    >>> all_reduce_sum(torch.tensor([2.0, 1.0]))   # in 2 processes: e.g. tensor([5., 2.])
    tensor([2., 1.])
    """
    if active():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def share(value=None, *, call=None):
    """Rank 0's ``value`` (or the result of ``call()`` made on rank 0 only) on every process.

    An exception raised by ``call`` on rank 0 is raised on every process, so that all of them
    stop with the same message instead of waiting for one another.
    """
    if not active():
        return call() if call is not None else value
    box = [None, None]
    if is_main():
        try:
            box[0] = call() if call is not None else value
        except Exception as exc:  # raised again below, on every process
            box[1] = exc
    dist.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise box[1]
    return box[0]


def gather(value) -> list:
    """``[value of rank 0, value of rank 1, …]`` on every process (``[value]`` alone)."""
    if not active():
        return [value]
    values = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` in a process group, else ``model`` itself.

    DDP copies rank 0's weights to every process, then averages the gradients of every
    ``backward()`` across the processes (all_reduce, overlapped with the backward pass)."""
    if not active() or isinstance(model, DistributedDataParallel):
        return model
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a ``DistributedDataParallel`` wrapper (else ``model``)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


# --------------------------------------------------------------------------- sharding
def set_epoch(loader, epoch: int) -> None:
    """Tell a sharded loader (or its ``DistributedSampler``) which epoch starts, so each
    epoch is shuffled differently — but the same way on every process."""
    for target in (loader, getattr(loader, "sampler", None)):
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)
            return


def train_sampler(dataset, seed: int = 0) -> DistributedSampler:
    """This process's shard of a shuffled epoch: DistributedSampler permutes the indices with
    ``seed + epoch`` (the same on every process) and hands rank r every WORLD_SIZE-th one,
    starting at r (padded with the first indices so that every shard has the same length)."""
    return DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=True,
                              seed=seed)


def eval_indices(n: int) -> range:
    """This process's part of an evaluation set of ``n`` items (no padding: every item once)."""
    return range(rank(), n, world_size())
