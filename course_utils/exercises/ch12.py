"""Chapter 12 (P33): argparse — required options, defaults, types, switches, argv lists
(exit codes are appendix B's, course_utils/exercises/ch14.py)."""

import argparse
import contextlib
import io

from course_utils.exercises import Exercise, expect


def _parse(parser, argv):
    """``parser.parse_args(argv)`` → (Namespace or None, exit code or None); stderr swallowed."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(argv), None
        except SystemExit as exc:
            return None, exc.code


def _check_q1(parser):
    expect(isinstance(parser, argparse.ArgumentParser),
           f"`answer` should be an argparse.ArgumentParser, got {type(parser).__name__}.")
    args, code = _parse(parser, [])
    expect(code == 2, "with no options at all it should stop with an error: --dataroot is "
           "required (required=True).")
    args, code = _parse(parser, ["--dataroot", "./datasets/maps"])
    expect(code is None, "`--dataroot ./datasets/maps` alone should be enough.")
    expect(getattr(args, "dataroot", None) == "./datasets/maps", "args.dataroot is not set.")
    expect(getattr(args, "name", None) == "experiment_name",
           f"args.name should default to 'experiment_name', got {getattr(args, 'name', None)!r}.")
    expect(getattr(args, "epochs", None) == 10 and isinstance(args.epochs, int),
           f"args.epochs should default to the int 10, got {getattr(args, 'epochs', None)!r}.")
    expect(getattr(args, "batch_size", None) == 1 and isinstance(args.batch_size, int),
           "args.batch_size (from --batch-size) should default to the int 1, got "
           f"{getattr(args, 'batch_size', None)!r}.")
    expect(getattr(args, "no_flip", None) is False,
           "without --no-flip, args.no_flip should be False: action='store_true'.")
    argv = ["--epochs", "3", "--name", "maps", "--dataroot", "d", "--batch-size", "4",
            "--no-flip"]
    args, code = _parse(parser, argv)
    expect(code is None, f"{argv} should parse (options may come in any order; --no-flip "
           "takes no value).")
    expect(args.epochs == 3 and isinstance(args.epochs, int),
           "`--epochs 3` should give the int 3: add type=int.")
    expect(args.batch_size == 4 and isinstance(args.batch_size, int),
           "`--batch-size 4` should give the int 4 in args.batch_size: add type=int.")
    expect(args.name == "maps", "`--name maps` should set args.name.")
    expect(args.no_flip is True, "`--no-flip` should set args.no_flip to True.")
    for bad in (["--dataroot", "d", "--epochs", "three"], ["--dataroot", "d", "--no-flip", "yes"],
                ["--dataroot", "d", "--batch-size", "2.5"]):
        expect(_parse(parser, bad)[1] == 2, f"{bad} should be refused with exit code 2.")


def _parser(required=True, epochs_type=int, flip="store_true", batch_type=int):
    p = argparse.ArgumentParser()
    p.add_argument("--dataroot", required=required)
    p.add_argument("--name", default="experiment_name")
    p.add_argument("--epochs", type=epochs_type, default=10)
    p.add_argument("--batch-size", type=batch_type, default=1)
    if flip == "store_true":
        p.add_argument("--no-flip", action="store_true")
    else:
        p.add_argument("--no-flip", default=False)
    return p


q1 = Exercise(
    "12.1",
    "Build an argparse.ArgumentParser like CycleGAN's options: --dataroot is required; --name "
    "defaults to 'experiment_name'; --epochs is an int that defaults to 10; --batch-size is an "
    "int that defaults to 1 (it arrives as args.batch_size); --no-flip is a switch, False "
    "unless given. Assign the parser to `answer` (do not call parse_args): the checker parses "
    "argument lists of its own with it.",
    _check_q1,
    hint_text="add_argument('--dataroot', required=True); ... default='experiment_name'; "
              "... type=int, default=10; action='store_true' for the switch.",
    solution_code="""
        import argparse
        parser = argparse.ArgumentParser(description="train a model")
        parser.add_argument("--dataroot", required=True, help="path to the images")
        parser.add_argument("--name", default="experiment_name", help="name of the experiment")
        parser.add_argument("--epochs", type=int, default=10, help="number of epochs")
        parser.add_argument("--batch-size", type=int, default=1, help="images per step")
        parser.add_argument("--no-flip", action="store_true", help="no random flips")
        answer = parser
    """,
    wrong=[_parser(required=False), _parser(epochs_type=str), _parser(flip="value"),
           _parser(batch_type=float), "parser"],
)


def _check_q2(argv):
    from course_utils.cli import build_parser

    expect(isinstance(argv, list) and all(isinstance(a, str) for a in argv),
           "`answer` should be a list of strings, like sys.argv[1:].")
    expect(not any(" " in a for a in argv), "each word is its own list item: "
           "['--epochs', '5'], not ['--epochs 5'].")
    expect(argv[:1] == ["train"], "the command comes first: ['train', ...].")
    args, code = _parse(build_parser(), argv)
    expect(code is None, "the course's parser refuses it; try it: "
           "course_utils.cli.main(answer) or build_parser().parse_args(answer).")
    for key, want in (("recipe", "improved"), ("epochs", 5), ("batch_size", 128)):
        expect(getattr(args, key) == want, f"args.{key} is {getattr(args, key)!r}, "
               f"should be {want!r}.")
    expect(str(args.device) == "cpu", f"args.device is {args.device!r}, should be the CPU.")
    expect(str(args.logdir).replace("\\", "/") == "runs/exp",
           f"args.logdir is {str(args.logdir)!r}, should be 'runs/exp'.")


q2 = Exercise(
    "12.2",
    "Write the argument list (as in sys.argv[1:]) for `python -m course_utils` that trains the "
    "improved recipe for 5 epochs with batch size 128 on the CPU, logging under runs/exp. "
    "Assign the list of strings to `answer`.",
    _check_q2,
    hint_text="['train', '--recipe', 'improved', '--epochs', '5', ...] — see "
              "`python -m course_utils train --help` for the option names.",
    solution_code="""
        answer = ["train", "--recipe", "improved", "--epochs", "5", "--batch-size", "128",
                  "--device", "cpu", "--logdir", "runs/exp"]
    """,
    wrong=[["train", "--recipe improved", "--epochs 5"],
           ["--recipe", "improved", "--epochs", "5", "--batch-size", "128", "--device", "cpu",
            "--logdir", "runs/exp"],
           ["train", "--recipe", "improved", "--epochs", "5", "--batch_size", "128",
            "--device", "cpu", "--logdir", "runs/exp"],
           "train --recipe improved"],
)
