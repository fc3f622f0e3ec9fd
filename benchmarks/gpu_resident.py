"""The original recipe with the whole data set resident on the GPU (no ``DataLoader``).

The 50,000 training and 10,000 test images go to the device once as uint8 (150 MB + 30 MB);
every batch is gathered, converted to float and scaled there (``ToTensor``'s ``/ 255``),
optionally augmented there (random flip + translate), and fed to the course's ``Tudui`` with
SGD lr 0.01, batch 64, for 10 epochs, evaluating on the full test set after every epoch,
as the course's P27–P30 script does. ``--cuda-graph`` records one training step as a CUDA
graph and replays it (the small network is otherwise limited by kernel-launch overhead).

    COURSE_DATA_DIR=../shared/data python benchmarks/gpu_resident.py               # GPU
    COURSE_DATA_DIR=../shared/data python benchmarks/gpu_resident.py --cuda-graph
    python benchmarks/gpu_resident.py --device cpu --limit 2000 --epochs 1         # smoke test

The timed figure runs from the first training step to the last evaluation (data already on
the device; a few warm-up steps on a throw-away copy of the model are not counted).
"""

from __future__ import annotations

import argparse
import copy

import _common
import torch
from torch import nn

from course_utils import loaders, models
from course_utils.recipes import RECIPES

ORIGINAL = RECIPES["original"]  # Tudui, SGD lr 0.01, batch 64, 10 epochs


def batches(images, labels, batch_size, *, shuffle, augment):
    """Float ``(B, 3, 32, 32)`` batches in ``[0, 1]`` (and labels), made on the data's device."""
    n = len(images)
    order = torch.randperm(n, device=images.device) if shuffle else torch.arange(
        n, device=images.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x = images[idx].float().div_(255)
        if augment:
            x = loaders.random_flip_crop(x)
        yield x, labels[idx]


def evaluate(model, images, labels, batch_size=2000):
    """Accuracy on device-resident uint8 images (the result stays on the device)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    with torch.inference_mode():
        for x, y in batches(images, labels, batch_size, shuffle=False, augment=False):
            correct += (model(x).argmax(1) == y).sum()
    model.train()
    return correct


def make_step(model, optimizer, loss_fn):
    """An eager training step ``step(x, y)``."""
    def step(x, y):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
    return step


def make_graph_step(model, optimizer, loss_fn, batch_size, device):
    """A training step for full batches recorded as a CUDA graph; ``step(x, y)`` copies the
    batch into the graph's static inputs and replays it."""
    static_x = torch.zeros(batch_size, 3, 32, 32, device=device)
    static_y = torch.zeros(batch_size, dtype=torch.long, device=device)
    saved = copy.deepcopy(model.state_dict())
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as graph capture requires
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(static_x), static_y).backward()
            optimizer.step()
    torch.cuda.current_stream().wait_stream(side)
    model.load_state_dict(saved)  # undo the warm-up updates (in place: same tensors)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss_fn(model(static_x), static_y).backward()
        optimizer.step()

    def step(x, y):
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
    return step


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=ORIGINAL.epochs)
    parser.add_argument("--batch-size", type=int, default=ORIGINAL.batch_size)
    parser.add_argument("--lr", type=float, default=ORIGINAL.lr)
    parser.add_argument("--limit", type=int, default=None, help="training images (default all)")
    parser.add_argument("--augment", action="store_true", help="flip + translate on the device")
    parser.add_argument("--cuda-graph", action="store_true", help="replay steps as a CUDA graph")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (CPU runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--require-full", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the JSON result")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    _common.set_threads(args.threads)
    if args.cuda_graph and device.type != "cuda":
        parser.error("--cuda-graph needs a CUDA device")
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True

    xs, ys, xt, yt, source = _common.cifar10_tensors(require_full=args.require_full,
                                                     limit=args.limit)
    transfer = {}
    with _common.measure(transfer, device):
        xs, ys, xt, yt = (t.to(device) for t in (xs, ys, xt, yt))

    model = models.build_model(ORIGINAL.model).to(device)
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, **fused)
    loss_fn = nn.CrossEntropyLoss()
    # warm-up (cuDNN algorithm choice, allocator) on a copy, so the timed run starts cold-free
    warm = copy.deepcopy(model)
    warm_opt = torch.optim.SGD(warm.parameters(), lr=args.lr, **fused)
    warm_step = make_step(warm, warm_opt, loss_fn)
    for i, (x, y) in enumerate(batches(xs, ys, args.batch_size, shuffle=True,
                                       augment=args.augment)):
        warm_step(x, y)
        if i == 5:
            break
    evaluate(warm, xt, yt)
    del warm, warm_opt

    eager = make_step(model, optimizer, loss_fn)
    full = (make_graph_step(model, optimizer, loss_fn, args.batch_size, device)
            if args.cuda_graph else eager)
    accuracies = []
    timed = {}
    with _common.measure(timed, device):
        for _ in range(args.epochs):
            model.train()
            for x, y in batches(xs, ys, args.batch_size, shuffle=True, augment=args.augment):
                (full if len(y) == args.batch_size else eager)(x, y)
            accuracies.append(evaluate(model, xt, yt))
    accuracies = [int(c) / len(yt) for c in accuracies]  # one sync, after the clock stopped
    print(f"{device}: {args.epochs} epochs of the original recipe on {len(ys):,} images "
          f"(+ {len(yt):,}-image evaluation each epoch) in {timed['seconds']:.2f} s "
          f"[{len(ys) * args.epochs / timed['seconds']:,.0f} training img/s]; test accuracy "
          f"{accuracies[-1]:.4f}; data upload {transfer['seconds']:.2f} s; load "
          f"{timed['load_before']} → {timed['load_after']}")
    result = {"args": vars(args), "device": str(device), "data": source,
              "train_images": len(ys), "test_images": len(yt), "seconds": timed["seconds"],
              "timed": timed, "upload": transfer, "test_accuracy_per_epoch": accuracies}
    _common.save_result("gpu-resident", result, args.out)
    return result


if __name__ == "__main__":
    main()
