"""The course's command line, ``python -m course_utils`` (read in chapter 12, P33).

    python -m course_utils train --epochs 10 --batch-size 64 --lr 0.01
    python -m course_utils train --resume runs/20250101-120000_original
    python -m course_utils predict data/demo-images/dog.png --topk 3

Read it top to bottom: value checks, the parser, the commands. A bad value ends here with a
one-line message and exit code 2. The device is resolved once, here (``--device``);
``train`` hands the options to :func:`course_utils.training.prepare`, which reads a resumed
run's checkpoint and returns the :class:`~course_utils.training.Run` (its folder is what an
interrupted run reports); :mod:`course_utils.training` does the rest. Errors from below name
settings as Python does (``lr``); this module spells them as options (``--lr``).
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from functools import partial
from pathlib import Path

from course_utils import __version__, devices, distributed, files, interrupts, recipes, training
from course_utils.checkpoints import CheckpointError
from course_utils.data import CIFAR10_CLASSES
from course_utils.download import CACHE_FIX, ChecksumError, OfflineError
from course_utils.errors import NamesSettings
from course_utils.i18n import N_, tr
from course_utils.models import MODELS
from course_utils.predict import load_trained, predict_image
from course_utils.settings import cache_dir


# ------------------------------------------------------------------------ value checks
# argparse converters, each named after what it accepts: text in, checked value out
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(tr(f"{text!r} is not a whole number")) from None
    if value < 1:
        raise argparse.ArgumentTypeError(tr(f"{value} must be at least 1"))
    return value


def finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(tr(f"{text!r} is not a number")) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(tr(f"{text!r} is not a finite number"))
    return value


def positive_number(text: str) -> float:
    if (value := finite_number(text)) <= 0:
        raise argparse.ArgumentTypeError(tr(f"{text} must be a positive number"))
    return value


def momentum_below_one(text: str) -> float:
    if not 0 <= (value := finite_number(text)) < 1:
        raise argparse.ArgumentTypeError(
            tr(f"{text} must be at least 0 and below 1 (e.g. 0.9)"))
    return value


def class_count(text: str) -> int:
    if (value := positive_int(text)) > len(CIFAR10_CLASSES):
        raise argparse.ArgumentTypeError(
            tr(f"{value} is more than the {len(CIFAR10_CLASSES)} classes there are"))
    return value


def available_device(text: str):
    try:  # devices.pick_device is the course's one device check
        return devices.pick_device(text, verbose=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def existing_folder(text: str) -> Path:
    if not (path := Path(text).expanduser()).is_dir():
        raise argparse.ArgumentTypeError(tr(f"folder {text!r} does not exist"))
    return path


def new_or_existing_folder(text: str) -> Path:
    if (path := Path(text).expanduser()).exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(tr(f"{text!r} exists and is not a folder"))
    return path


def existing_file(text: str) -> Path:
    if not (path := Path(text).expanduser()).is_file():
        what = N_("is a folder, not a file") if path.is_dir() else N_("does not exist")
        raise argparse.ArgumentTypeError(tr(f"file {text!r} {what}"))
    return path


def folder_name_part(text: str) -> str:
    if not text or text in (".", "..") or any(c in text for c in '/\\:*?"<>|'):
        raise argparse.ArgumentTypeError(
            tr(f"{text!r} cannot be part of a folder name (no slashes or :*?\"<>|)"))
    return text


# ------------------------------------------------------------------------------ parser
def _per_recipe(key: str) -> str:  # "original 64, improved 256", for the help text
    return ", ".join(f"{name} {getattr(r, key)}" for name, r in recipes.RECIPES.items())


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_utils`` parser with its ``train`` and ``predict`` commands."""
    fmt = partial(argparse.RawDescriptionHelpFormatter, max_help_position=30, width=100)
    parser = argparse.ArgumentParser(
        prog="python -m course_utils", formatter_class=fmt,
        description="Train the course's CIFAR-10 network or classify photos with it.")
    parser.add_argument("--version", action="version", version=f"course_utils {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict}")

    t = sub.add_parser(
        "train", formatter_class=fmt,
        help="train a CIFAR-10 network (progress bar, TensorBoard logs, checkpoints)",
        description="Train on CIFAR-10: the full set when present or downloadable, else the "
                    "bundled sample.\nTensorBoard logs go to LOGDIR/<new run folder>/, "
                    "checkpoints to its checkpoints/ folder;\nnothing earlier is overwritten.",
        epilog="examples:\n"
               "  python -m course_utils train                       # the improved recipe\n"
               "  python -m course_utils train --recipe original     # exactly as in P27\n"
               "  python -m course_utils train --epochs 1 --limit 500 --device cpu\n"
               "  python -m course_utils train --resume runs/<run folder> --epochs 20\n"
               "\nmany GPUs (or CPU processes), one process per device (appendix C):\n"
               "  torchrun --standalone --nproc_per_node=2 -m course_utils train --epochs 1\n"
               "--batch-size is per process: one step averages the gradients of N processes,\n"
               "so the global batch is N × batch size. Rule: keep the global batch and --lr\n"
               "(divide --batch-size by N), or when the global batch grows k-fold raise --lr\n"
               "k-fold too (linear scaling; warm up first). Rank 0 logs, prints and saves.")
    t.add_argument("--recipe", choices=sorted(recipes.RECIPES),
                   help="'improved' (default, 0.83 on CIFAR-10 in 10 epochs) or 'original' "
                        "(P27 exactly); every setting: course_utils/recipes.py")
    t.add_argument("--model", choices=sorted(MODELS), help="network (default: the recipe's)")
    t.add_argument("--epochs", type=positive_int, metavar="N",
                   help="passes over the training set, in all (default 10; 1 in fast mode)")
    t.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"images per step and process (default: the recipe's, "
                        f"{_per_recipe('batch_size')})")
    t.add_argument("--lr", type=positive_number,
                   help=f"learning rate (default: the recipe's, {_per_recipe('lr')})")
    t.add_argument("--momentum", type=momentum_below_one, metavar="M",
                   help=f"SGD momentum, 0 ≤ M < 1 (default: {_per_recipe('momentum')})")
    t.add_argument("--device", type=available_device, default="auto",
                   help="auto (default: cuda → mps → cpu), cpu, cuda, cuda:N or mps")
    t.add_argument("--precision", choices=devices.PRECISION_CHOICES,
                   help="auto: bfloat16 where the CPU/GPU computes it natively (AMX, AVX-512 "
                        "BF16, Ampere GPUs on), else float32; or float32 / bfloat16 (default: "
                        f"the recipe's, {_per_recipe('precision')})")
    t.add_argument("--data-dir", type=existing_folder, metavar="DIR",
                   help="folder with cifar10-jpg/ or its .tar.gz (default: $COURSE_DATA_DIR)")
    t.add_argument("--limit", type=positive_int, metavar="N",
                   help="use at most N training images (quick experiments)")
    t.add_argument("--logdir", type=new_or_existing_folder, default=Path("runs"), metavar="DIR",
                   help="parent folder of the run folders (default: runs)")
    t.add_argument("--run-name", type=folder_name_part, metavar="NAME",
                   help="suffix of the new run folder's name (default: the recipe)")
    t.add_argument("--resume", type=existing_folder, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest checkpoint, with its "
                        "settings; --epochs may raise the total")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bars (still one line per epoch)")

    p = sub.add_parser(
        "predict", formatter_class=fmt, help="classify photos with a trained checkpoint",
        description="Print the top-k CIFAR-10 classes of each image.\nAny size and mode: "
                    "RGBA and grayscale photos are converted to RGB, then resized to 32×32.",
        epilog="example:\n  python -m course_utils predict my_cat.jpg --checkpoint "
               "runs/<run>/checkpoints/last.pt --topk 5")
    p.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE", help="image files")
    p.add_argument("--checkpoint", type=existing_file, metavar="FILE",
                   help="checkpoint to load (default: the weights shipped with the course)")
    p.add_argument("--topk", type=class_count, default=3, metavar="K",
                   help="classes to show per image, 1–10 (default 3)")
    p.add_argument("--device", type=available_device, default="cpu",
                   help="cpu (default), auto, cuda, cuda:N or mps")
    return parser


# ---------------------------------------------------------------------------- commands
def prepare(args, device) -> training.Run:
    """The run the options ask for (a resumed run's checkpoint read once, by rank 0)."""
    return training.prepare(
        args.recipe, resume=args.resume, model=args.model, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, limit=args.limit,
        seed=args.seed, precision=args.precision, device=device, data_dir=args.data_dir,
        logdir=args.logdir, run_name=args.run_name, progress=not args.no_progress)


def train(args) -> int:
    run = None
    try:
        # under torchrun: join the job (one device per process), leave it however this ends
        with distributed.process_group(args.device) as device:
            run = prepare(args, device)
            run_dir, history = training.train(run)
            if history and distributed.is_main():
                last, last_file = history[-1], run_dir / "checkpoints" / "last.pt"
                print(tr(f"done: test accuracy {last['test_accuracy']:.4f} after epoch "
                         f"{last['epoch']}; checkpoint {last_file}; "
                         f"TensorBoard: tensorboard --logdir {run_dir.parent}"))
    except KeyboardInterrupt as exc:  # Ctrl+C, SIGTERM: name this run's own folder
        return interrupts.report(exc, _after_interrupt(args, run))
    return 0


def predict(args) -> int:
    model, info = load_trained(args.checkpoint, device=args.device)
    failed = 0
    for image in args.images:
        try:
            ranked = predict_image(model, image, args.topk, normalize=info["normalize"])
        except ValueError as exc:  # not an image, truncated …: report it, go on
            print(f"python -m course_utils predict: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{image}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked))
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the command; returns the exit code:
    0 done, 1 training failed (diverged, disk full or read-only), 2 bad option or input, 130
    interrupted (Ctrl+C), 143 stopped by SIGTERM. Run as a program (``argv`` None),
    SIGINT/SIGTERM end it with one "interrupted; …" line (:mod:`course_utils.interrupts`)."""
    if argv is None:
        interrupts.install()
        _quiet_thread_write_failures()
    args = None
    try:
        args = build_parser().parse_args(argv)
        return train(args) if args.command == "train" else predict(args)
    except KeyboardInterrupt as exc:  # Ctrl+C, SIGTERM (train reports its own)
        return interrupts.report(exc, _after_interrupt(args, None))
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError,
            CheckpointError, OfflineError, ChecksumError) as exc:
        message, code = _spelled(exc), 2  # a bad option or input
    except FloatingPointError as exc:
        message, code = _spelled(exc), 1  # training diverged
    except OSError as exc:
        message, code = _write_failure(args, exc), 1  # disk full, read-only, …
    print(f"python -m course_utils {args.command}: error: {message}", file=sys.stderr)
    return code


def _spelled(exc: Exception) -> str:
    """The error's message, the settings it names (``{lr}``) spelled as options (``--lr``)."""
    if isinstance(exc, NamesSettings):
        return exc.worded(lambda name: "--" + name.replace("_", "-"))
    return str(exc)


def _write_failure(args, exc: OSError) -> str:
    """A full disk, read-only file system or quota in one line: the folder, the cause, and
    for the run folders the option to change; any other ``OSError`` as it is."""
    run_folder, fix = _run_folder_fix(args)
    named = Path(exc.filename).parent if isinstance(exc.filename, str) else None
    where = getattr(exc, "folder", None) or named or run_folder or Path.cwd()
    failure = files.write_failure(exc, where)
    if failure is None:
        return str(exc)
    if run_folder is not None and _inside(failure.folder, run_folder):
        failure.fix = fix
    elif _in_cache(failure.folder):
        failure.fix = CACHE_FIX
    return str(failure)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _in_cache(path: Path) -> bool:
    try:
        return _inside(path, cache_dir())
    except OSError:  # the cache folder itself cannot be made
        return True


def _run_folder_fix(args) -> tuple[Path | None, str]:
    """The folder ``train`` writes its runs into, and how to get past a full disk there."""
    if args is None or args.command != "train":
        return None, files.DEFAULT_FIX
    if args.resume:
        return args.resume, tr("copy the run folder to another disk and --resume it there")
    return args.logdir, tr("choose another --logdir")


def _quiet_thread_write_failures() -> None:
    """TensorBoard's writer thread dies of the same full disk that the main thread reports in
    one line: keep that thread's traceback off the screen (other errors still show)."""
    shown = threading.excepthook

    def hook(args):
        if files.write_failure(args.exc_value, ".") is None:
            shown(args)

    threading.excepthook = hook


def _after_interrupt(args, run: training.Run | None) -> str:
    """What an interrupted command leaves behind and how to go on, in words: the run's own
    folder (a resumed one, or the one ``train`` made) — known, never guessed."""
    if args is None or args.command != "train":
        return tr("nothing was written.")
    folder = run.folder if run is not None else args.resume
    if folder is not None and any((folder / "checkpoints").glob("epoch_*.pt")):
        return tr("the last finished epoch's checkpoint is kept: continue with "
                  f"python -m course_utils train --resume {folder}")
    return tr("no epoch had finished, so no checkpoint is kept: start again.")
