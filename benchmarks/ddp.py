"""One process against several (``torchrun``, DistributedDataParallel): training throughput
and test accuracy of the same run, the same global batch, the same number of steps.

Every configuration runs the real command line, ``python -m course_utils train`` (one
process) or ``torchrun --standalone --nproc_per_node=N -m course_utils train`` with
``--batch-size`` = global batch / N, so that each step sees the same number of images.
The CPU threads are split between the processes (``OMP_NUM_THREADS`` = threads / N), the
way torchrun would share one machine's cores. Figures come from the run's last checkpoint
(``history``: training seconds and images/second of each epoch, test accuracy); the wall
time includes starting Python, loading the data and evaluating.

    python benchmarks/ddp.py                                     # bundled sample, quick
    COURSE_DATA_DIR=../shared/data python benchmarks/ddp.py --limit 10000 --epochs 2
    # a machine with several GPUs (NCCL, one process per GPU):
    COURSE_DATA_DIR=/data python benchmarks/ddp.py --device cuda --nproc 1 2 4 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

from course_utils import checkpoints
from course_utils.recipes import RECIPES


def command(n: int, args, per_process_batch: int, logdir: Path) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={n}"] if n > 1 or args.torchrun_one else [sys.executable]
    extra = ["--limit", str(args.limit)] if args.limit else []
    return [*launcher, "-m", "course_utils", "train", "--recipe", args.recipe, "--epochs",
            str(args.epochs), "--batch-size", str(per_process_batch), "--device", args.device,
            "--seed", str(args.seed), "--no-progress", "--logdir", str(logdir), *extra]


def run(n: int, args, out: Path) -> dict:
    """Train once with ``n`` processes; the figures of the run."""
    batch = args.batch_size or RECIPES[args.recipe].batch_size
    if batch % n:
        raise SystemExit(f"the global batch {batch} does not split into {n} processes")
    logdir = out / f"n{n}"
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // n)),
           "PYTHONPATH": str(_common.REPO_ROOT)}
    record = {"processes": n, "batch_per_process": batch // n, "global_batch": batch,
              "threads_per_process": max(1, args.threads // n)}
    cmd = command(n, args, batch // n, logdir)
    print("$", " ".join("python" if part == sys.executable else part for part in cmd),
          flush=True)
    with _common.measure(record):
        done = subprocess.run(cmd, env=env, cwd=_common.REPO_ROOT, capture_output=True,
                              text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"{n} process(es) failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (run_dir,) = logdir.iterdir()
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    last = state["history"][-1]
    record.update(wall_seconds=record.pop("seconds"), steps=last["step"],
                  train_seconds=[round(h["seconds"], 2) for h in state["history"]],
                  images_per_second=[round(h["images_per_second"]) for h in state["history"]],
                  test_accuracy=last["test_accuracy"], test_loss=last["test_loss"])
    del record["cpu_seconds"]  # of this parent process only: meaningless here
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="improved", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, help="training images (default: all there are)")
    parser.add_argument("--batch-size", type=int, help="global batch (default: the recipe's)")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="CPU threads in all, split between the processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torchrun-one", action="store_true",
                        help="run the 1-process case under torchrun too (DDP with 1 process)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    data = "full" if os.environ.get("COURSE_DATA_DIR") else "bundled sample (no COURSE_DATA_DIR)"
    print(f"data: {data}; {args.recipe} recipe, {args.epochs} epoch(s); load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(n, args, Path(tmp)) for n in args.nproc]
    print(f"\n{'processes':>9} {'batch':>11} {'wall s':>7} {'train s/epoch':>22} "
          f"{'images/s':>18} {'accuracy':>8} {'load':>11}")
    for r in results:
        print(f"{r['processes']:>9} {r['batch_per_process']:>4} × {r['processes']} = "
              f"{r['global_batch']:<3} {r['wall_seconds']:>6.1f} {str(r['train_seconds']):>22} "
              f"{str(r['images_per_second']):>18} {r['test_accuracy']:>8.4f} "
              f"{r['load_before']:>5}→{r['load_after']:<5}")
    _common.save_result("ddp", {"data": data, "recipe": args.recipe, "epochs": args.epochs,
                                "limit": args.limit, "device": args.device,
                                "results": results})


if __name__ == "__main__":
    main()
