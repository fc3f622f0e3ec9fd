"""The course's command line, ``python -m course_utils`` (taught in chapter 12, P33).

    python -m course_utils train --epochs 10 --batch-size 64 --lr 0.01
    python -m course_utils predict data/demo-images/dog.png --topk 3

Options are parsed at the edge (here); the work is done by plain functions in
:mod:`course_utils.engine`, :mod:`course_utils.data` and :mod:`course_utils.predict`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from course_utils import settings

RECIPES = {
    # the original course: Tudui, SGD lr 0.01, batch 64, ToTensor only
    "original": dict(model="tudui", lr=0.01, momentum=0.0, augment=False, normalize=False,
                     schedule="none"),
    # BatchNorm + ReLU, momentum, one-cycle learning rate, flips and crops
    "improved": dict(model="tudui-bn", lr=0.05, momentum=0.9, augment=True, normalize=True,
                     schedule="onecycle"),
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text) if text.replace(".", "", 1).isdigit() else -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number ≥ 0")
    return value


def _existing_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"folder {text!r} does not exist")
    return path


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return path


def build_parser() -> argparse.ArgumentParser:
    from course_utils.models import MODELS

    parser = argparse.ArgumentParser(
        prog="python -m course_utils",
        description="Train the course's CIFAR-10 network or classify photos with it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict}")

    t = sub.add_parser(
        "train", help="train a CIFAR-10 network (progress bar, TensorBoard logs, checkpoints)",
        description="Train on CIFAR-10: the full set when present or downloadable, else the "
                    "bundled sample. Logs go to LOGDIR/<new run>/, checkpoints to its "
                    "checkpoints/ folder; nothing earlier is overwritten.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--recipe", choices=sorted(RECIPES), default="original",
                   help="'original': Tudui, SGD lr 0.01, ToTensor only (P27); 'improved': "
                        "BatchNorm+ReLU, momentum, one-cycle LR, flips and crops")
    t.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="network (default: the recipe's)")
    t.add_argument("--epochs", type=_positive_int, default=None,
                   help="passes over the training set (default 10; 1 in fast mode)")
    t.add_argument("--batch-size", type=_positive_int, default=64, help="images per step")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: the recipe's)")
    t.add_argument("--momentum", type=_non_negative_float, default=None,
                   help="SGD momentum (default: the recipe's)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    t.add_argument("--data-dir", type=_existing_dir, default=None,
                   help="folder with cifar10-jpg/ or its .tar.gz (sets COURSE_DATA_DIR)")
    t.add_argument("--limit", type=_positive_int, default=None,
                   help="use at most this many training images (quick experiments)")
    t.add_argument("--logdir", default="runs", help="parent folder of run folders")
    t.add_argument("--run-name", default=None, help="suffix for the new run folder's name")
    t.add_argument("--resume", type=_existing_dir, default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "predict", help="classify photos with a trained checkpoint",
        description="Print the top-k CIFAR-10 classes of each image (any size; RGBA and "
                    "grayscale are converted).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="+", type=_existing_file, metavar="IMAGE",
                   help="image files")
    p.add_argument("--checkpoint", type=_existing_file, default=None,
                   help="checkpoint to load (default: the weights shipped with the course)")
    p.add_argument("--topk", type=_positive_int, default=3, help="classes to show per image")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    return parser


def run_train(args) -> int:
    import torch
    import torchvision
    from torch.utils.data import DataLoader

    from course_utils import checkpoints, data, engine, loaders, models
    from course_utils.devices import pick_device

    recipe = dict(RECIPES[args.recipe])
    model_name = args.model or recipe["model"]
    lr = args.lr if args.lr is not None else recipe["lr"]
    momentum = args.momentum if args.momentum is not None else recipe["momentum"]
    epochs = args.epochs or settings.scaled(10, 1)
    if args.data_dir is not None:
        os.environ["COURSE_DATA_DIR"] = str(args.data_dir)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)

    normalize = (loaders.CIFAR10_MEAN, loaders.CIFAR10_STD) if recipe["normalize"] else None
    if recipe["augment"] or normalize:  # decoded once into uint8 tensors, batches built on device
        xs, ys = data.as_tensors(data.cifar10(train=True))
        if args.limit:
            keep = data.spread_indices(len(ys), args.limit)
            xs, ys = xs[keep], ys[keep]
        train_loader = loaders.TensorLoader(xs, ys, args.batch_size, shuffle=True,
                                            normalize=normalize, augment=recipe["augment"],
                                            device=device)
        test_loader = loaders.TensorLoader(*data.as_tensors(data.cifar10(train=False)),
                                           batch_size=512, normalize=normalize, device=device)
    else:  # the original recipe's pipeline: PIL image → ToTensor for every item
        to_tensor = torchvision.transforms.ToTensor()
        train_set = data.cifar10(train=True, transform=to_tensor)
        if args.limit:
            train_set = data.spread_subset(train_set, args.limit)
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
        test_loader = DataLoader(data.cifar10(train=False, transform=to_tensor), batch_size=256)

    model = models.build_model(model_name)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                nesterov=momentum > 0, weight_decay=5e-4 if momentum else 0)
    scheduler = None
    if recipe["schedule"] == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=len(train_loader))

    if args.resume is not None:
        run_dir = args.resume
        if not (run_dir / "checkpoints" / "last.pt").exists():
            raise checkpoints.CheckpointError(
                f"{run_dir} has no checkpoints/last.pt to resume from; pick a run folder "
                f"under {args.logdir}/ that has one, or leave out --resume.")
    else:
        run_dir = checkpoints.new_run_dir(args.logdir, args.run_name or args.recipe)
    print(f"[course_utils] model {model_name} ({models.count_parameters(model):,} parameters), "
          f"{len(train_loader.dataset):,} training images, {epochs} epoch(s), run folder "
          f"{run_dir}")
    history = engine.fit(model, train_loader, test_loader, epochs=epochs, optimizer=optimizer,
                         scheduler=scheduler, device=device, run_dir=run_dir,
                         resume=args.resume is not None, model_name=model_name,
                         progress=not args.no_progress)
    if history:
        last = history[-1]
        print(f"done: test accuracy {last['test_accuracy']:.4f} after epoch {last['epoch']}; "
              f"checkpoint {run_dir / 'checkpoints' / 'last.pt'}; "
              f"TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def run_predict(args) -> int:
    from course_utils.predict import load_trained, predict_image

    model = load_trained(args.checkpoint, device=args.device)
    for image in args.images:
        ranked = predict_image(model, image, topk=args.topk)
        print(f"{image}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from course_utils.checkpoints import CheckpointError
    from course_utils.download import OfflineError

    try:
        return run_train(args) if args.command == "train" else run_predict(args)
    except (ValueError, FileNotFoundError, CheckpointError, OfflineError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last finished epoch's checkpoint is kept (use --resume).",
              file=sys.stderr)
        return 130
