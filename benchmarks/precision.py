"""Training speed in float32 and under bfloat16 autocast, with and without BF16 instructions.

One training step of the ``deep`` recipe's network (``DeepCNN``, ``channels_last``, SGD with
Nesterov momentum, label smoothing 0.2) on a random batch (``--batch-size``, default 128),
timed in float32 and with the forward pass under ``torch.autocast("cpu", dtype=bfloat16)``
exactly as :func:`course_utils.engine.train_one_epoch` runs it. The two precisions alternate
round by round (``--rounds``, median) so that both meet the same machine load; each round
times whole steps for at least ``--seconds``. The fastest single step is kept too: on a
machine shared with other jobs it is the figure they disturb least.

Every CPU setting runs in a fresh process, because PyTorch and oneDNN read their limits once
at start: ``native`` (the CPU as it is) and ``avx2``
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: a CPU with AVX-512 BF16 or AMX made
to run like an AVX2-only one, the laptop case). Each records what ``--precision auto`` would
choose there (:func:`course_utils.devices.precision_choice`).

    python benchmarks/precision.py --out benchmarks/results
    python benchmarks/precision.py --isa avx2 --rounds 5 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import _common
import torch
from torch import nn

from course_utils import devices, models
from course_utils.recipes import RECIPES

#: --isa name → environment that limits what PyTorch and oneDNN use (read at start)
ISAS = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
DEEP = RECIPES["deep"]


def measure_here(args) -> dict:
    """Time both precisions in this process (its environment fixes the CPU setting)."""
    threads = _common.set_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32, generator=g).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,), generator=g)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=DEEP.label_smoothing)
    runs = {}
    for name in ("float32", "bfloat16"):
        torch.manual_seed(0)
        model = models.build_model(DEEP.model).to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=DEEP.momentum,
                                    nesterov=DEEP.nesterov, weight_decay=DEEP.weight_decay)
        runs[name] = {"model": model, "optimizer": optimizer, "rounds": []}

    def step(run, amp_dtype):
        with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
            outputs = run["model"](x)
        loss = loss_fn(outputs.float(), y)
        run["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        run["optimizer"].step()

    for name, run in runs.items():  # warm-up: oneDNN builds its kernels at the first steps
        for _ in range(args.warmup):
            step(run, devices.PRECISIONS[name])
    for _ in range(args.rounds):
        for name, run in runs.items():
            rec, times = {}, []
            with _common.measure(rec):
                while not times or sum(times) < args.seconds:
                    t0 = time.perf_counter()
                    step(run, devices.PRECISIONS[name])
                    times.append(time.perf_counter() - t0)
            rec.update(steps=len(times), step_seconds=times,
                       images_per_second=len(times) * args.batch_size / rec["seconds"])
            run["rounds"].append(rec)
    auto, why = devices.precision_choice("auto", "cpu")
    return {
        "env": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_capability": devices.detect_cpu_capability(),
        "auto": auto, "auto_why": why, "threads": threads,
        "rounds": {name: run["rounds"] for name, run in runs.items()},
        "median_images_per_second": {
            name: _common.median([r["images_per_second"] for r in run["rounds"]])
            for name, run in runs.items()},
        # the fastest single step: the figure least disturbed by other jobs on the machine
        "fastest_step_images_per_second": {
            name: args.batch_size / min(t for r in run["rounds"] for t in r["step_seconds"])
            for name, run in runs.items()},
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isa", default="native,avx2",
                        help=f"CPU settings to measure, some of {', '.join(ISAS)}")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="each round times whole steps for at least this long")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per precision")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="folder for the JSON result")
    args = parser.parse_args(argv)
    if args.worker:  # one CPU setting, in the environment the parent gave this process
        print(json.dumps(measure_here(args)))
        return {}
    isas = [x.strip() for x in args.isa.split(",") if x.strip()]
    if not isas or not set(isas) <= set(ISAS):
        parser.error(f"--isa takes some of {', '.join(ISAS)}, not {args.isa!r}")
    results = {}
    for isa in isas:
        env = {k: v for k, v in os.environ.items()
               if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")} | ISAS[isa]
        command = [sys.executable, __file__, "--worker", *(argv if argv is not None
                                                             else sys.argv[1:])]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{isa}: the measuring process failed:\n{done.stderr}")
        results[isa] = json.loads(done.stdout.strip().splitlines()[-1])
        med = results[isa]["median_images_per_second"]
        fast = results[isa]["fastest_step_images_per_second"]
        print(f"{isa:7s} capability {results[isa]['cpu_capability']:12s} float32 "
              f"{med['float32']:6.1f} img/s, bfloat16 {med['bfloat16']:6.1f} img/s "
              f"(bfloat16/float32 {med['bfloat16'] / med['float32']:.2f}×; fastest step "
              f"{fast['float32']:.0f} / {fast['bfloat16']:.0f} img/s); auto → "
              f"{results[isa]['auto']} ({results[isa]['auto_why']})", flush=True)
    result = {"args": {k: v for k, v in vars(args).items() if k != "worker"},
              "model": DEEP.model, "results": results}
    _common.save_result("precision", result, args.out)
    return result


if __name__ == "__main__":
    main()
