"""Chapter 12 (P33): argparse — required options, defaults, types, switches, argv lists,
and options that build the DataLoader and the optimizer (exit codes are appendix B's,
course_utils/exercises/ch14.py)."""

import argparse
import contextlib
import io

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset

from course_utils.exercises import Exercise, _short, call, expect
from course_utils.exercises.i18n import N_


def _parse(parser, argv):
    """``parser.parse_args(argv)`` → (Namespace or None, exit code or None); stderr swallowed."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return call(f"parse_args({argv})", parser.parse_args, argv), None
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
    expect(any(a == "--device" or a.startswith("--device=") for a in argv),
           "say --device cpu: without it the command takes the default 'auto', which picks a "
           "GPU on a machine that has one.")
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
           "train --recipe improved",
           ["train", "--recipe", "improved", "--epochs", "5", "--batch-size", "128",
            "--logdir", "runs/exp"]],
)


# ----------------------------------------------------------------------------- 12.3
#: (argv, batch_size, shuffled, lr, momentum) the checker tries
_OPTION_CASES = [
    ([], 64, True, 0.01, 0.9),
    (["--batch-size", "16", "--lr", "0.1"], 16, True, 0.1, 0.9),
    (["--no-shuffle", "--momentum", "0", "--batch-size", "5"], 5, False, 0.01, 0.0),
    (["--lr", "3e-4", "--momentum", "0.5", "--no-shuffle"], 64, False, 3e-4, 0.5),
]


def _check_q3(fn):
    expect(callable(fn) and not isinstance(fn, type),
           f"`answer` should be your function build_from_options (no parentheses), got "
           f"{_short(fn)}.")
    dataset = TensorDataset(torch.randn(40, 3), torch.randint(0, 2, (40,)))
    for argv, batch_size, shuffled, lr, momentum in _OPTION_CASES:
        model = nn.Linear(3, 2)
        what = f"build_from_options({argv}, dataset, model)"
        with contextlib.redirect_stderr(io.StringIO()):
            result = call(what, fn, list(argv), dataset, model)
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"{what} returned {_short(result)}; return the pair (loader, optimizer).")
        loader, optimizer = result
        expect(isinstance(loader, DataLoader), f"{what}: the first item should be a "
               f"DataLoader, got {type(loader).__name__}.")
        expect(loader.dataset is dataset, f"{what}: the DataLoader should read the data set "
               "it was given.")
        expect(loader.batch_size == batch_size, f"{what}: batch_size is "
               f"{loader.batch_size!r}, should be {batch_size} — --batch-size is an int "
               "(type=int) that defaults to 64.")
        kind = RandomSampler if shuffled else SequentialSampler
        order = N_("shuffle") if shuffled else N_("keep the order")
        expect(isinstance(loader.sampler, kind), f"{what}: the loader should {order} — "
               "shuffle=not args.no_shuffle (--no-shuffle is a switch, action='store_true').")
        expect(isinstance(optimizer, torch.optim.SGD), f"{what}: the second item should be "
               f"a torch.optim.SGD, got {type(optimizer).__name__}.")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        expect({id(p) for p in params} == {id(p) for p in model.parameters()},
               f"{what}: the optimizer should update the model's parameters "
               "(model.parameters()).")
        group = optimizer.param_groups[0]
        expect(isinstance(group["lr"], float) and abs(group["lr"] - lr) <= 1e-12,
               f"{what}: the learning rate is {group['lr']!r}, should be {lr} — --lr is a "
               "float (type=float) that defaults to 0.01.")
        expect(abs(group["momentum"] - momentum) <= 1e-12,
               f"{what}: momentum is {group['momentum']!r}, should be {momentum} — "
               "--momentum is a float that defaults to 0.9.")


def _builder(*, shuffle_switch=True, lr_default=0.01, momentum=True, adam=False):
    """Variants of the reference for the known-wrong answers."""
    def build_from_options(argv, dataset, model):
        p = argparse.ArgumentParser()
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--lr", type=float, default=lr_default)
        p.add_argument("--momentum", type=float, default=0.9)
        p.add_argument("--no-shuffle", action="store_true")
        args = p.parse_args(argv)
        loader = DataLoader(dataset, batch_size=args.batch_size,
                            shuffle=not args.no_shuffle if shuffle_switch else True)
        if adam:
            return loader, torch.optim.Adam(model.parameters(), lr=args.lr)
        return loader, torch.optim.SGD(model.parameters(), lr=args.lr,
                                       momentum=args.momentum if momentum else 0.0)
    return build_from_options


q3 = Exercise(
    "12.3",
    "Options that build the training: write `build_from_options(argv, dataset, model)`. It "
    "parses the list `argv` with an ArgumentParser of your own — --batch-size (int, default "
    "64), --lr (float, default 0.01), --momentum (float, default 0.9), --no-shuffle (a "
    "switch) — and returns the pair (DataLoader(dataset, batch_size=..., shuffle=...), "
    "torch.optim.SGD(model.parameters(), lr=..., momentum=...)), shuffled unless --no-shuffle "
    "is given. The checker calls it with argument lists, a data set and a model of its own. "
    "Assign the function to `answer`.",
    _check_q3,
    hint_text="args = parser.parse_args(argv); loader = DataLoader(dataset, "
    "batch_size=args.batch_size, shuffle=not args.no_shuffle); optimizer = "
    "torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum).",
    solution_code="""
        import argparse
        import torch
        from torch.utils.data import DataLoader

        def build_from_options(argv, dataset, model):
            parser = argparse.ArgumentParser(description="train a model")
            parser.add_argument("--batch-size", type=int, default=64, help="images per step")
            parser.add_argument("--lr", type=float, default=0.01, help="learning rate")
            parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
            parser.add_argument("--no-shuffle", action="store_true", help="keep the order")
            args = parser.parse_args(argv)
            loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=not args.no_shuffle)
            optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
            return loader, optimizer

        answer = build_from_options
    """,
    wrong=[_builder(shuffle_switch=False), _builder(lr_default=0.1), _builder(momentum=False),
           _builder(adam=True), "build_from_options"],
)
