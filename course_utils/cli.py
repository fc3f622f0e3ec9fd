"""The course's command line, ``python -m course_utils`` (taught in chapter 12, P33).

    python -m course_utils train --epochs 10 --batch-size 64 --lr 0.01
    python -m course_utils train --resume runs/20250101-120000_original
    python -m course_utils predict data/demo-images/dog.png --topk 3

Options are parsed and checked at the edge (here): a bad value ends with a one-line message
and exit code 2, never a traceback. The work is done by plain functions in
:mod:`course_utils.engine`, :mod:`course_utils.data` and :mod:`course_utils.predict`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from course_utils import settings

RECIPES = {
    # the original course: Tudui, SGD lr 0.01, batch 64, ToTensor only
    "original": dict(model="tudui", lr=0.01, momentum=0.0, augment=False, normalize=False,
                     schedule="none"),
    # TuduiImproved (3x3 conv, BatchNorm, ReLU, global pool), Nesterov momentum, one-cycle
    # learning rate, label smoothing, flips and shifts; 10 epochs (see BENCHMARKS.md)
    "improved": dict(model="tudui-improved", lr=0.2, momentum=0.9, augment=True,
                     normalize=True, schedule="onecycle", batch_size=256, weight_decay=5e-4,
                     label_smoothing=0.1, pct_start=0.25, drop_last=True, channels_last=True),
}
#: Defaults of options that a resumed run takes from its checkpoint instead.
DEFAULTS = dict(recipe="improved", seed=0, limit=None)
#: Options whose default comes from the recipe (``batch_size``: 64 when a recipe has none).
FROM_RECIPE = ("model", "lr", "momentum", "batch_size")
#: Settings a resumed run must keep (changing them mid-run would not continue the same run).
FIXED_ON_RESUME = ("recipe", "model", "lr", "momentum", "batch_size", "limit", "seed")


# ------------------------------------------------------------------- value checkers
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def _momentum(text: str) -> float:
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0 and below 1 (e.g. 0.9)")
    return value


def _topk(text: str) -> int:
    from course_utils.data import CIFAR10_CLASSES

    value = _positive_int(text)
    if value > len(CIFAR10_CLASSES):
        raise argparse.ArgumentTypeError(
            f"{value} is more than the {len(CIFAR10_CLASSES)} classes there are")
    return value


def _device(text: str) -> str:
    import torch

    if text.strip() == "auto":
        return "auto"
    try:
        device = torch.device(text.strip())
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: use auto, cpu, cuda, cuda:N or mps")
    return str(device)


def _existing_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"folder {text!r} does not exist")
    return path


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return path


def _output_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a folder")
    return path


def _run_name(text: str) -> str:
    if not text or any(c in text for c in '/\\:*?"<>|') or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"{text!r} cannot be part of a folder name (no slashes or :*?\"<>|)")
    return text


# ---------------------------------------------------------------------------- parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30, width=min(100, _terminal_width()))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _per_recipe(key: str) -> str:
    """``"original 64, improved 256"`` — a setting's default in every recipe."""
    return ", ".join(f"{name} {_recipe_value(recipe, key)}" for name, recipe in RECIPES.items())


def _recipe_value(recipe: dict, key: str):
    """A setting's default in ``recipe`` (``batch_size`` is 64 where a recipe names none)."""
    return recipe.get(key, 64 if key == "batch_size" else None)


def _fill_from_recipe(config: dict, recipe: dict) -> None:
    """Give every :data:`FROM_RECIPE` setting left unset in ``config`` the recipe's value."""
    for key in FROM_RECIPE:
        if config.get(key) is None:
            config[key] = _recipe_value(recipe, key)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_utils`` parser with its ``train`` and ``predict`` commands."""
    from course_utils import __version__
    from course_utils.models import MODELS

    parser = argparse.ArgumentParser(
        prog="python -m course_utils", formatter_class=_Formatter,
        description="Train the course's CIFAR-10 network or classify photos with it.",
        epilog="Run 'python -m course_utils train --help' or '... predict --help' for the "
               "options of each command.")
    parser.add_argument("--version", action="version", version=f"course_utils {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict}")

    t = sub.add_parser(
        "train", formatter_class=_Formatter,
        help="train a CIFAR-10 network (progress bar, TensorBoard logs, checkpoints)",
        description="Train on CIFAR-10: the full set when present or downloadable, else the "
                    "bundled sample.\nTensorBoard logs go to LOGDIR/<new run folder>/, "
                    "checkpoints to its checkpoints/ folder;\nnothing earlier is overwritten.",
        epilog="examples:\n"
               "  python -m course_utils train                       # the improved recipe\n"
               "  python -m course_utils train --recipe original     # exactly as in P27\n"
               "  python -m course_utils train --epochs 1 --limit 500 --device cpu\n"
               "  python -m course_utils train --resume runs/<run folder> --epochs 20")
    t.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="'improved' (default): BatchNorm+ReLU network, momentum, one-cycle "
                        "LR, flips and shifts (0.83 on CIFAR-10 in 10 epochs); 'original': "
                        "Tudui, SGD lr 0.01, ToTensor only, exactly as in P27")
    t.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="network (default: the recipe's)")
    t.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                   help="passes over the training set, in all (default 10; 1 in fast mode)")
    t.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help=f"images per step (default: the recipe's, {_per_recipe('batch_size')})")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help=f"learning rate (default: the recipe's, {_per_recipe('lr')})")
    t.add_argument("--momentum", type=_momentum, default=None, metavar="M",
                   help=f"SGD momentum, 0 ≤ M < 1 (default: {_per_recipe('momentum')})")
    t.add_argument("--device", type=_device, default="auto",
                   help="auto (default: cuda → mps → cpu), cpu, cuda, cuda:N or mps")
    t.add_argument("--data-dir", type=_existing_dir, default=None, metavar="DIR",
                   help="folder with cifar10-jpg/ or its .tar.gz (sets COURSE_DATA_DIR)")
    t.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use at most N training images (quick experiments)")
    t.add_argument("--logdir", type=_output_dir, default=Path("runs"), metavar="DIR",
                   help="parent folder of the run folders (default: runs)")
    t.add_argument("--run-name", type=_run_name, default=None, metavar="NAME",
                   help="suffix of the new run folder's name (default: the recipe)")
    t.add_argument("--resume", type=_existing_dir, default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest checkpoint, with its "
                        "settings; --epochs may raise the total")
    t.add_argument("--seed", type=_int, default=None, help="random seed (default 0)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bars (still one line per epoch)")

    p = sub.add_parser(
        "predict", formatter_class=_Formatter,
        help="classify photos with a trained checkpoint",
        description="Print the top-k CIFAR-10 classes of each image.\nAny size and mode: "
                    "RGBA and grayscale photos are converted to RGB, then resized to 32×32.",
        epilog="examples:\n"
               "  python -m course_utils predict data/demo-images/dog.png\n"
               "  python -m course_utils predict my_cat.jpg --checkpoint "
               "runs/<run>/checkpoints/last.pt --topk 5")
    p.add_argument("images", nargs="+", type=_existing_file, metavar="IMAGE",
                   help="image files")
    p.add_argument("--checkpoint", type=_existing_file, default=None, metavar="FILE",
                   help="checkpoint to load (default: the weights shipped with the course)")
    p.add_argument("--topk", type=_topk, default=3, metavar="K",
                   help="classes to show per image, 1–10 (default 3)")
    p.add_argument("--device", type=_device, default="cpu",
                   help="cpu (default), auto, cuda, cuda:N or mps")
    return parser


# ----------------------------------------------------------------------------- train
def resolve_config(args) -> dict:
    """The run's settings: explicit options, else (on --resume) the run's stored settings,
    else the recipe's and the course's defaults. Raises ``ValueError`` on a conflict."""
    stored = _stored_config(args.resume) if args.resume is not None else {}
    given = {k: getattr(args, k) for k in FIXED_ON_RESUME + ("epochs",)}
    if stored:
        for key in FIXED_ON_RESUME:
            if given[key] is not None and key in stored and given[key] != stored[key]:
                flag = "--" + key.replace("_", "-")
                raise ValueError(
                    f"{args.resume} was trained with {flag} {stored[key]}; a resumed run keeps "
                    f"its settings. Leave out {flag}, or start a new run without --resume.")
    config = {**DEFAULTS, **stored, **{k: v for k, v in given.items() if v is not None}}
    recipe = RECIPES[config["recipe"]]
    _fill_from_recipe(config, recipe)
    config["epochs"] = given["epochs"] or stored.get("epochs") or settings.scaled(10, 1)
    if stored and recipe["schedule"] != "none" and config["epochs"] != stored.get("epochs"):
        raise ValueError(
            f"{args.resume} uses a {recipe['schedule']} learning-rate schedule planned for "
            f"{stored.get('epochs')} epochs, so --epochs cannot change on resume.")
    return config


def _stored_config(run_dir: Path) -> dict:
    from course_utils import checkpoints

    found = checkpoints.load_latest(run_dir)
    if found is None:
        raise checkpoints.CheckpointError(
            f"{run_dir} has no readable checkpoint (checkpoints/last.pt or epoch_NNN.pt) to "
            "resume from; pick a run folder that has one, or leave out --resume.")
    config = found[1].get("config")
    if not isinstance(config, dict):
        raise checkpoints.CheckpointError(
            f"{found[0]} was not written by 'python -m course_utils train' (it has no "
            "'config'), so the CLI cannot resume it; use engine.fit(..., resume=True).")
    return config


def _loaders(config: dict, recipe: dict, device):
    """``(train loader, test loader, normalize)`` for a recipe."""
    import torchvision
    from torch.utils.data import DataLoader

    from course_utils import data, loaders

    normalize = (loaders.CIFAR10_MEAN, loaders.CIFAR10_STD) if recipe["normalize"] else None
    limit, batch = config["limit"], config["batch_size"]
    if recipe["augment"] or normalize:  # decoded once into uint8 tensors, batches on device
        xs, ys = data.as_tensors(data.cifar10(train=True), limit)
        drop_last = recipe.get("drop_last", False) and len(ys) > batch
        train = loaders.TensorLoader(xs, ys, batch, shuffle=True, normalize=normalize,
                                     augment=recipe["augment"], drop_last=drop_last,
                                     device=device)
        test = loaders.TensorLoader(*data.as_tensors(data.cifar10(train=False)),
                                    batch_size=512, normalize=normalize, device=device)
    else:  # the original recipe's pipeline: PIL image → ToTensor for every item
        to_tensor = torchvision.transforms.ToTensor()
        train_set = data.cifar10(train=True, transform=to_tensor)
        if limit:
            train_set = data.spread_subset(train_set, limit)
        train = DataLoader(train_set, batch_size=batch, shuffle=True)
        test = DataLoader(data.cifar10(train=False, transform=to_tensor), batch_size=256)
    return train, test, normalize


def build_training(recipe: dict, config: dict, steps_per_epoch: int):
    """``(model, optimizer, scheduler or None, loss_fn)`` for a recipe of :data:`RECIPES`
    with the run's ``config`` (model, lr, momentum, epochs)."""
    import torch
    from torch import nn

    from course_utils import models

    model = models.build_model(config["model"])
    if recipe.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    momentum = config["momentum"]
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config["lr"], momentum=momentum, nesterov=momentum > 0,
        weight_decay=recipe.get("weight_decay", 5e-4 if momentum else 0))
    scheduler = None
    if recipe["schedule"] == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config["lr"], epochs=config["epochs"],
            steps_per_epoch=steps_per_epoch, pct_start=recipe.get("pct_start", 0.3))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.get("label_smoothing", 0.0))
    return model, optimizer, scheduler, loss_fn


def train_recipe(recipe: str = DEFAULTS["recipe"], *, epochs: int | None = None, device="auto",
                 logdir="runs", run_name: str | None = None, resume_dir=None,
                 progress: bool = True, **options) -> tuple[Path, list[dict]]:
    """Train a recipe of :data:`RECIPES` the way ``python -m course_utils train`` does.

    ``options``: ``model``, ``lr``, ``momentum``, ``batch_size``, ``limit``, ``seed``
    (None or absent = the recipe's/default). A new run folder is made under ``logdir``
    unless ``resume_dir`` names a run to continue. Returns ``(run folder, history)``.

    >>> # run_dir, history = train_recipe("improved", epochs=3, limit=500)
    """
    import torch

    from course_utils import checkpoints, engine, models
    from course_utils.devices import pick_device

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}.")
    unknown = sorted(set(options) - {"model", "lr", "momentum", "batch_size", "limit", "seed"})
    if unknown:
        raise TypeError(f"train_recipe() got unknown options {unknown}.")
    config = {**DEFAULTS, "recipe": recipe, "epochs": epochs or settings.scaled(10, 1),
              **{k: v for k, v in options.items() if v is not None}}
    _fill_from_recipe(config, RECIPES[recipe])
    torch.manual_seed(config["seed"])
    device = pick_device(device)
    train_loader, test_loader, normalize = _loaders(config, RECIPES[recipe], device)
    model, optimizer, scheduler, loss_fn = build_training(RECIPES[recipe], config,
                                                          len(train_loader))
    run_dir = Path(resume_dir) if resume_dir is not None else checkpoints.new_run_dir(
        logdir, run_name or recipe)
    print(f"[course_utils] model {config['model']} ({models.count_parameters(model):,} "
          f"parameters), {len(train_loader.dataset):,} training images, {config['epochs']} "
          f"epoch(s), lr {config['lr']}, batch {config['batch_size']}, run folder {run_dir}")
    history = engine.fit(
        model, train_loader, test_loader, epochs=config["epochs"], optimizer=optimizer,
        loss_fn=loss_fn, scheduler=scheduler, device=device, run_dir=run_dir,
        resume=resume_dir is not None, model_name=config["model"],
        metadata={"config": config, "normalize": normalize}, progress=progress, verbose=True)
    return run_dir, history


def run_train(args) -> int:
    config = resolve_config(args)
    if args.data_dir is not None:
        os.environ["COURSE_DATA_DIR"] = str(args.data_dir)
    options = {k: v for k, v in config.items() if k not in ("recipe", "epochs")}
    run_dir, history = train_recipe(
        config["recipe"], epochs=config["epochs"], device=args.device, logdir=args.logdir,
        run_name=args.run_name, resume_dir=args.resume, progress=not args.no_progress,
        **options)
    if history:
        last = history[-1]
        print(f"done: test accuracy {last['test_accuracy']:.4f} after epoch {last['epoch']}; "
              f"checkpoint {run_dir / 'checkpoints' / 'last.pt'}; "
              f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    return 0


# --------------------------------------------------------------------------- predict
def run_predict(args) -> int:
    from course_utils.predict import load_trained, predict_image

    model = load_trained(args.checkpoint, device=args.device)
    failed = 0
    for image in args.images:
        try:
            ranked = predict_image(model, image, topk=args.topk)
        except ValueError as exc:  # not an image, truncated …: report it, go on
            print(f"{_prog(args)}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{image}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked))
    return 2 if failed else 0


# ------------------------------------------------------------------------------ main
def _prog(args) -> str:
    return f"python -m course_utils {args.command}"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the command; returns the exit code:
    0 done, 1 training failed (diverged, disk error), 2 bad option or input, 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from course_utils.checkpoints import CheckpointError
    from course_utils.download import OfflineError

    try:
        return run_train(args) if args.command == "train" else run_predict(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError,
            CheckpointError, OfflineError) as exc:
        print(f"{_prog(args)}: error: {exc}", file=sys.stderr)
        return 2
    except (FloatingPointError, OSError) as exc:
        print(f"{_prog(args)}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the last finished epoch's checkpoint is kept (continue with "
              "--resume RUN_DIR).", file=sys.stderr)
        return 130
