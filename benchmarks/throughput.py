"""Training and evaluation throughput: the original course loop vs. ``course_utils``'s engine.

Three ways to train the same network (``Tudui``, SGD lr 0.01, batch 64) on the same images,
interleaved round by round in one process so that all of them meet the same machine load:

* ``original`` — the course's P27 loop: ``ImageFolder`` over the JPEG files with
  ``ToTensor`` (every image decoded again for every epoch), a default ``DataLoader``;
* ``engine`` — ``course_utils``: the set decoded once into a cached uint8 tensor,
  ``TensorLoader`` converting one batch at a time, ``engine.train_one_epoch``;
* ``ceiling`` — pure compute: the same model and optimizer stepping through float tensors
  prepared before the clock starts (no data pipeline at all).

Engine and ceiling run once with the model in the default NCHW memory layout (the data
pipeline alone differs from the original loop), once in ``channels_last``, and once in
``channels_last`` with the forward passes in bfloat16 under ``torch.autocast`` (``bf16``,
mixed precision; fast on CPUs with AVX-512 BF16 or AMX) — see ``--layouts``.

Evaluation is compared as well: the original loop (``DataLoader`` batch 64, ``no_grad``)
against ``engine.evaluate`` (``TensorLoader`` batch 1000, ``inference_mode``).

    COURSE_DATA_DIR=../shared/data python benchmarks/throughput.py            # 10,000 images
    COURSE_DATA_DIR=../shared/data python benchmarks/throughput.py --images 50000 --rounds 3
"""

from __future__ import annotations

import argparse

import _common
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset

from course_utils import engine, loaders, models
from course_utils.recipes import RECIPES

ORIGINAL = RECIPES["original"]  # Tudui, SGD lr 0.01, batch 64
#: --layouts name → (channels_last, autocast dtype)
LAYOUTS = {"nchw": (False, None), "channels_last": (True, None),
           "bf16": (True, torch.bfloat16)}


def original_epoch(model, loader, optimizer, loss_fn):
    """The course's training loop (P27), including its ``loss.item()`` every 100 steps."""
    model.train()
    step = 0
    for imgs, targets in loader:
        outputs = model(imgs)
        loss = loss_fn(outputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 100 == 0:
            loss.item()


def original_eval(model, loader, loss_fn):
    """The course's test loop (P27): ``no_grad``, batch 64, accuracy summed per batch."""
    model.eval()
    correct, total_loss = 0, 0.0
    with torch.no_grad():
        for imgs, targets in loader:
            outputs = model(imgs)
            total_loss += loss_fn(outputs, targets).item()
            correct += (outputs.argmax(1) == targets).sum().item()
    return correct


def ceiling_epoch(model, batches, optimizer, loss_fn, amp_dtype=None):
    """The same steps on ready-made float batches: no decoding, no conversion, no shuffling."""
    model.train()
    for imgs, targets in batches:
        with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
            outputs = model(imgs)
        loss = loss_fn(outputs.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def fresh(channels_last: bool):
    torch.manual_seed(0)
    model = models.build_model(ORIGINAL.model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.SGD(model.parameters(), lr=ORIGINAL.lr)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000,
                        help="training images per epoch (spread over all classes; max 50000)")
    parser.add_argument("--test-images", type=int, default=10_000, help="evaluation images")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--batch-size", type=int, default=ORIGINAL.batch_size)
    parser.add_argument("--eval-batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layouts", default="nchw,channels_last,bf16",
                        help="memory layouts tried for the engine and the ceiling (bf16: "
                             "channels_last + bfloat16 autocast)")
    parser.add_argument("--require-full", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the JSON result")
    args = parser.parse_args(argv)
    threads = _common.set_threads(args.threads)
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    if not set(layouts) <= set(LAYOUTS):
        parser.error(f"--layouts takes some of {', '.join(LAYOUTS)}, not {args.layouts!r}")

    train_ds, train_dir = _common.cifar10_split(True, allow_sample=not args.require_full)
    test_ds, test_dir = _common.cifar10_split(False, allow_sample=not args.require_full)
    keep = _common.data.spread_indices(len(train_ds), args.images)
    keep_test = _common.data.spread_indices(len(test_ds), args.test_images)
    n, n_test = len(keep), len(keep_test)

    # original: JPEG files → PIL → ToTensor for every item, default DataLoader
    to_tensor = torchvision.transforms.ToTensor()
    folder_train = Subset(torchvision.datasets.ImageFolder(str(train_dir), to_tensor), keep)
    folder_test = Subset(torchvision.datasets.ImageFolder(str(test_dir), to_tensor), keep_test)
    orig_train = DataLoader(folder_train, batch_size=args.batch_size, shuffle=True)
    orig_test = DataLoader(folder_test, batch_size=64)
    # engine: uint8 tensors decoded once (cached by course_utils.data)
    xs, ys = _common.data.as_tensors(train_ds)
    xs, ys = xs[keep], ys[keep]
    xt, yt = _common.data.as_tensors(test_ds)
    xt, yt = xt[keep_test], yt[keep_test]
    eng_train = loaders.TensorLoader(xs, ys, args.batch_size, shuffle=True)
    eng_test = loaders.TensorLoader(xt, yt, args.eval_batch_size)
    # ceiling: float batches ready in memory before timing
    ceiling = {"nchw": [(x, y) for x, y in
                        loaders.TensorLoader(xs, ys, args.batch_size, shuffle=True)]}
    ceiling["channels_last"] = [(x.contiguous(memory_format=torch.channels_last), y)
                                for x, y in ceiling["nchw"]]
    ceiling["bf16"] = ceiling["channels_last"]

    loss_fn = nn.CrossEntropyLoss()
    names = ["original"] + [f"{kind}_{lay}" for lay in layouts for kind in ("engine", "ceiling")]
    runs = {k: [] for k in names + ["original_eval"] + [f"eval_{lay}" for lay in layouts]}
    print(f"{n:,} training / {n_test:,} test images, batch {args.batch_size}, {threads} threads, "
          f"{args.rounds} rounds, layouts {layouts}")
    for r in range(args.rounds):
        for name in names:
            layout = name.split("_", 1)[1] if name != "original" else "nchw"
            channels_last, amp_dtype = LAYOUTS[layout]
            model, opt = fresh(channels_last)
            rec = {}
            with _common.measure(rec):
                if name == "original":
                    original_epoch(model, orig_train, opt, loss_fn)
                elif name.startswith("engine"):
                    engine.train_one_epoch(model, eng_train, loss_fn, opt, "cpu", progress=False,
                                           amp_dtype=amp_dtype)
                else:
                    ceiling_epoch(model, ceiling[layout], opt, loss_fn, amp_dtype)
            rec["images_per_second"] = n / rec["seconds"]
            runs[name].append(rec)
            if name == "original" or name.startswith("engine"):
                ev = {}
                with _common.measure(ev):
                    if name == "original":
                        original_eval(model, orig_test, loss_fn)
                    else:
                        engine.evaluate(model, eng_test, loss_fn, "cpu", amp_dtype)
                ev["images_per_second"] = n_test / ev["seconds"]
                runs["original_eval" if name == "original" else f"eval_{layout}"].append(ev)
        print(f"round {r + 1}: " + ", ".join(
            f"{k} {v[-1]['images_per_second']:.0f}" for k, v in runs.items()) + " img/s",
            flush=True)

    def ips(key, i):
        return runs[key][i]["images_per_second"]

    med = {k: _common.median([x["images_per_second"] for x in v]) for k, v in runs.items()}
    ratios = {}
    for lay in layouts:
        ratios[f"engine_{lay}_vs_original"] = [ips(f"engine_{lay}", i) / ips("original", i)
                                               for i in range(args.rounds)]
        ratios[f"engine_{lay}_vs_ceiling_{lay}"] = [
            ips(f"engine_{lay}", i) / ips(f"ceiling_{lay}", i) for i in range(args.rounds)]
        ratios[f"eval_{lay}_vs_original"] = [ips(f"eval_{lay}", i) / ips("original_eval", i)
                                             for i in range(args.rounds)]
    summary = {"median_images_per_second": med,
               "median_ratios": {k: _common.median(v) for k, v in ratios.items()}}
    print("\nmedian images/second: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
    print("median of per-round ratios (targets: engine/original >= 1.35x, "
          "engine/ceiling >= 95%):")
    for k, v in ratios.items():
        print(f"  {k:36s} {_common.median(v):6.2f}  (rounds: "
              + ", ".join(f"{x:.2f}" for x in v) + ")")
    result = {"args": vars(args), "data": train_ds.source, "images": n, "test_images": n_test,
              "runs": runs, "ratios": ratios, **summary}
    _common.save_result("throughput", result, args.out)
    return result


if __name__ == "__main__":
    main()
