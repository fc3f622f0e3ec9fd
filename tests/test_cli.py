"""``python -m course_utils train|predict``: help, bad values (exit 2, no traceback), real runs."""

from __future__ import annotations

import argparse
import errno
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import torch

from course_utils import (
    __version__,
    checkpoints,
    cli,
    data,
    devices,
    download,
    files,
    interrupts,
    models,
    predict,
    recipes,
    training,
)
from course_utils.models import MODELS
from course_utils.settings import REPO_ROOT

DOG, PLANE = str(data.demo_image("dog")), str(data.demo_image("airplane"))
#: tests that start a real ``python -m course_utils`` (seconds each; also the ones using the
#: ``run_dir`` fixture, which trains in one). Not seen by mutmut's per-function test
#: selection, so `tools/mutation.py` (``-m "not slow"``) leaves them out.
REAL_PROCESS = pytest.mark.slow


def _cli(*args, cwd=None, timeout=180):
    """Run the real command in a fresh interpreter (as a learner would)."""
    env = {**os.environ, "COURSE_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "course_utils", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real one-epoch run of the original recipe on 120 images."""
    logdir = tmp_path_factory.mktemp("runs")
    result = _cli("train", "--recipe", "original", "--epochs", "1", "--limit", "120",
                  "--logdir", str(logdir),
                  "--run-name", "tiny", "--no-progress")
    assert result.returncode == 0, result.stderr
    (folder,) = logdir.iterdir()
    return folder


# ------------------------------------------------------------------------------ help
@REAL_PROCESS
def test_help_reads_clearly():
    train = _cli("train", "--help")
    assert train.returncode == 0 and train.stderr == ""
    for option in ("--epochs", "--batch-size", "--lr", "--device", "--data-dir", "--logdir",
                   "--resume", "--model", "--recipe", "--limit", "examples:"):
        assert option in train.stdout, option
    assert "original 64" in train.stdout and "None" not in train.stdout
    assert max(len(line) for line in train.stdout.splitlines()) <= 100
    pred = _cli("predict", "--help")
    assert pred.returncode == 0
    for option in ("IMAGE", "--checkpoint", "--topk", "--device"):
        assert option in pred.stdout, option
    top = _cli("--help")
    assert "train" in top.stdout and "predict" in top.stdout


# ----------------------------------------------------------------------- bad values
BAD_OPTIONS = [  # the option and value named, and a key word of what is wrong
    (["train", "--epochs", "0"], ("--epochs", "0", "at least 1")),
    (["train", "--epochs", "three"], ("--epochs", "three", "whole number")),
    (["train", "--batch-size", "-4"], ("--batch-size", "-4")),
    (["train", "--lr", "-1"], ("--lr", "-1", "positive")),
    (["train", "--lr", "nan"], ("--lr", "nan", "finite")),
    (["train", "--lr", "fast"], ("--lr", "fast", "not a number")),
    (["train", "--momentum", "1.5"], ("--momentum", "1.5")),
    (["train", "--device", "gpu"], ("--device", "gpu")),
    (["train", "--model", "resnet"], ("--model", "resnet", "choice")),
    (["train", "--recipe", "best"], ("--recipe", "best", "choice")),
    (["train", "--data-dir", "/no/such/folder"], ("--data-dir", "/no/such/folder",
                                                  "does not exist")),
    (["train", "--resume", "/no/such/run"], ("--resume", "/no/such/run", "does not exist")),
    (["train", "--run-name", "a/b"], ("--run-name", "a/b", "folder name")),
    (["train", "--limit", "0"], ("--limit", "0")),
    (["predict"], ("IMAGE", "required")),
    (["predict", "no_such_photo.jpg"], ("no_such_photo.jpg", "does not exist")),
    (["predict", DOG, "--topk", "11"], ("--topk", "11", "10 classes")),
    (["predict", DOG, "--topk", "0"], ("--topk", "0")),
    (["predict", DOG, "--checkpoint", "missing.pt"], ("--checkpoint", "missing.pt",
                                                      "does not exist")),
    ([], ("required",)),
    (["fly"], ("fly", "choice")),
]


@pytest.mark.parametrize("args, words", BAD_OPTIONS, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else None)
def test_bad_options_exit_2_with_a_message(capsys, args, words, run_cli):
    code, out, err = run_cli(*args)
    assert code == 2 and out == ""
    assert "usage:" in err and "Traceback" not in err
    message = err.strip().splitlines()[-1]  # after the usage: one line naming the value
    for word in words:
        assert word in message, (word, message)


@REAL_PROCESS
def test_bad_values_end_without_traceback_in_a_real_process():
    result = _cli("train", "--lr", "-0.5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: argument --lr" in result.stderr


def test_device_that_is_not_there(capsys, offline, tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a GPU machine too
    logdir = tmp_path / "runs"
    code, _, err = run_cli("train", "--device", "cuda", "--logdir", str(logdir))
    assert code == 2 and "no CUDA GPU is available" in err and "Traceback" not in err
    assert not logdir.exists()  # no run folder made for a run that cannot start


def test_resume_from_a_folder_without_checkpoints(capsys, offline, tmp_path, run_cli):
    code, _, err = run_cli("train", "--resume", str(tmp_path))
    assert code == 2 and "no readable checkpoint" in err


@REAL_PROCESS
def test_predict_reports_a_file_that_is_not_an_image(capsys, tmp_path, run_dir, run_cli):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a photo")
    ckpt = str(run_dir / "checkpoints" / "last.pt")
    code, out, err = run_cli("predict", DOG, str(fake), "--checkpoint", ckpt)
    assert code == 2
    assert "holiday.jpg" in err and "not a readable image" in err
    assert out.startswith(DOG)  # the good photo is still classified


def test_predict_with_a_broken_checkpoint(capsys, tmp_path, run_cli):
    broken = tmp_path / "last.pt"
    broken.write_bytes(b"\x00" * 100)
    code, _, err = run_cli("predict", DOG, "--checkpoint", str(broken))
    assert code == 2 and "last.pt is not a readable PyTorch checkpoint" in err


def test_predict_without_shipped_weights(capsys, monkeypatch, tmp_path, run_cli):
    monkeypatch.setattr(predict, "SHIPPED_WEIGHTS", tmp_path / "absent.pt")
    code, _, err = run_cli("predict", DOG)
    assert code == 2 and "--checkpoint" in err


# ------------------------------------------------------------------------- real runs
@REAL_PROCESS
def test_train_writes_a_checkpoint_that_predict_uses(run_dir):
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["model_name"] == "tudui" and state["normalize"] is None
    assert state["config"]["limit"] == 120 and state["config"]["lr"] == 0.01
    assert state["global_step"] == 2  # 120 images, batch 64
    result = _cli("predict", DOG, PLANE, "--checkpoint", str(run_dir / "checkpoints" / "last.pt"),
                  "--topk", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [DOG, PLANE]
    assert all(line.count("%") == 2 for line in lines)


@REAL_PROCESS
def test_resume_continues_the_run(capsys, offline, run_dir, run_cli):
    code, out, err = run_cli("train", "--resume", str(run_dir), "--epochs", "2",
                           "--no-progress")
    assert code == 0, err
    assert "resumed" in out and "at epoch 1, step 2" in out
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 2 and state["global_step"] == 4
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    code, _, err = run_cli("train", "--resume", str(run_dir), "--lr", "0.5")
    assert code == 2 and "was trained with --lr 0.01" in err


def test_improved_recipe_records_its_normalisation(capsys, offline, tmp_path, run_cli):
    logdir = tmp_path / "runs"
    code, out, err = run_cli("train", "--recipe", "improved", "--epochs", "1",
                           "--limit", "100", "--logdir", str(logdir), "--no-progress")
    assert code == 0, err
    (folder,) = logdir.iterdir()
    assert folder.name.endswith("_improved")
    state = checkpoints.load_checkpoint(folder / "checkpoints" / "last.pt")
    assert state["model_name"] == recipes.RECIPES["improved"].model == "fast-cnn"
    assert state["normalize"] == (data.CIFAR10_MEAN, data.CIFAR10_STD)
    assert state["scheduler_state"] is not None
    _, info = predict.load_trained(folder / "checkpoints" / "last.pt")
    assert info["normalize"] == (data.CIFAR10_MEAN, data.CIFAR10_STD)
    code, _, err = run_cli("train", "--resume", str(folder), "--epochs", "3")
    assert code == 2 and "cannot change on resume" in err


def test_fast_mode_trains_one_epoch_by_default(capsys, offline, fast, tmp_path, run_cli):
    code, out, err = run_cli("train", "--limit", "64", "--logdir", str(tmp_path),
                           "--no-progress")
    assert code == 0, err
    assert "1 epoch(s)" in out and "after epoch 1" in out
    assert "epoch 1/1: train loss" in out  # one line per epoch even without progress bars


# ------------------------------------------------------------------------ exit codes
@REAL_PROCESS
def test_training_that_diverges_exits_1_in_a_real_process(tmp_path):
    """lr 1e4 blows the loss up to nan within the first 4 steps (any seed): exit code 1 and the
    engine's advice, no traceback."""
    result = _cli("train", "--recipe", "original", "--lr", "1e4", "--limit", "256",
                  "--epochs", "1", "--logdir", str(tmp_path), "--no-progress")
    assert result.returncode == 1, result.stderr
    assert "error: training diverged" in result.stderr and "--lr 0.01" in result.stderr
    assert "Traceback" not in result.stderr


@REAL_PROCESS
def test_ctrl_c_exits_130_and_keeps_the_finished_epoch(tmp_path):
    """SIGINT (Ctrl+C) to a real training process once epoch 1 is saved: exit code 130, a
    one-line note, no traceback, and the checkpoint of epoch 1 loads."""
    env = {**os.environ, "COURSE_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_utils", "train", "--recipe", "original", "--limit",
         "256", "--epochs", "1000", "--logdir", str(tmp_path), "--run-name", "stop",
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        lines = []
        for line in proc.stdout:  # "epoch 1/1000: ..." is printed just before the save
            lines.append(line)
            if line.startswith("epoch 1/1000"):
                break
        run = Path(next(x for x in lines if "run folder " in x).split("run folder ")[1].strip())
        last = run / "checkpoints" / "last.pt"  # written after epoch_001.pt
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None and last.exists(), "".join(lines) + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 130, err
    assert err.startswith("interrupted; ") and err.count("\n") == 1
    assert err.rstrip().endswith(f"--resume {run}") and "Traceback" not in err
    state = checkpoints.load_checkpoint(run / "checkpoints" / "epoch_001.pt")
    assert state["epoch"] == 1 and state["global_step"] == 4


@pytest.mark.parametrize("error, code, words", [
    (KeyboardInterrupt(), 130, ("interrupted;", "no epoch had finished")),
    (FloatingPointError("training diverged: nan"), 1, ("training diverged: nan",)),
    (OSError(errno.ENOSPC, "No space left on device"), 1, ("no space left on", "free space",
                                                           "--logdir")),
    (OSError(errno.EROFS, "Read-only file system", "runs/x/events"), 1,
     ("read-only file system at runs/x", "--logdir")),
    (files.WriteError(errno.ENOSPC, "/cache", download.CACHE_FIX), 1,
     ("no space left on /cache", "COURSE_CACHE_DIR")),
    (OSError(errno.EIO, "Input/output error"), 1, ("Input/output error",)),
    (ValueError("bad --thing"), 2, ("bad --thing",)),
    (FileNotFoundError("no such data"), 2, ("no such data",)),
    (download.DamagedInputError("mine.tar.gz is cut short"), 2, ("mine.tar.gz",)),
    (download.UnsafeArchiveError("mine.tar.gz: '../x'"), 2, ("mine.tar.gz", "'../x'")),
    (download.ChecksumError("cifar.tar.gz: md5"), 2, ("cifar.tar.gz",)),
])
def test_each_failure_has_its_exit_code(monkeypatch, offline, run_cli, error, code, words):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(training, "train", fail)
    got, out, err = run_cli("train", "--limit", "64", "--no-progress", "--logdir", "runs")
    assert got == code and "Traceback" not in err + out
    assert err.count("\n") == 1  # one line, no usage text
    for word in words:
        assert word in err, (word, err)


def test_a_full_cache_names_the_cache_and_its_setting(monkeypatch, offline, cache_dir,
                                                     run_cli):
    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(cache_dir / "x.npy"))

    monkeypatch.setattr(training, "train", fail)
    code, _, err = run_cli("train", "--logdir", "runs")
    assert code == 1 and err.count("\n") == 1
    for word in (f"no space left on {cache_dir}", "free space", "COURSE_CACHE_DIR"):
        assert word in err, (word, err)


# ------------------------------------------------- in process, value by value (TESTING.md §1)
# (written against the survivors of `python tools/mutation.py cli`: mutmut sees only tests
# that call cli.main in this process, not the real-process runs above)
def _per_recipe(key):
    return ", ".join(f"{name} {getattr(r, key)}" for name, r in recipes.RECIPES.items())


def _actions(parser):
    """``{first option string (or name): (dest, type, default, metavar, choices, nargs,
    help)}`` of every option but ``-h``."""
    return {(a.option_strings or [a.dest])[0]: (a.dest, a.type, a.default, a.metavar,
                                                a.choices, a.nargs, a.help)
            for a in parser._actions if not isinstance(a, argparse._HelpAction)}


#: option → (dest, type, default, metavar, choices, nargs): how each one parses
TRAIN_OPTIONS = {
    "--recipe": ("recipe", None, None, None, sorted(recipes.RECIPES), None),
    "--model": ("model", None, None, None, sorted(MODELS), None),
    "--epochs": ("epochs", cli.positive_int, None, "N", None, None),
    "--batch-size": ("batch_size", cli.positive_int, None, "N", None, None),
    "--lr": ("lr", cli.positive_number, None, None, None, None),
    "--momentum": ("momentum", cli.momentum_below_one, None, "M", None, None),
    "--device": ("device", cli.available_device, "auto", None, None, None),
    "--data-dir": ("data_dir", cli.existing_folder, None, "DIR", None, None),
    "--limit": ("limit", cli.positive_int, None, "N", None, None),
    "--logdir": ("logdir", cli.new_or_existing_folder, Path("runs"), "DIR", None, None),
    "--run-name": ("run_name", cli.folder_name_part, None, "NAME", None, None),
    "--resume": ("resume", cli.existing_folder, None, "RUN_DIR", None, None),
    "--seed": ("seed", int, None, None, None, None),
    "--no-progress": ("no_progress", None, False, None, None, 0),
}
PREDICT_OPTIONS = {
    "images": ("images", cli.existing_file, None, "IMAGE", None, "+"),
    "--checkpoint": ("checkpoint", cli.existing_file, None, "FILE", None, None),
    "--topk": ("topk", cli.class_count, 3, "K", None, None),
    "--device": ("device", cli.available_device, "cpu", None, None, None),
}
#: option → what its help must tell (its default, its values): a few key words each
HELP_TELLS = {
    "--recipe": ("improved", "original", "recipes.py"),
    "--epochs": ("10", "fast mode"),
    "--batch-size": (_per_recipe("batch_size"),),
    "--lr": (_per_recipe("lr"),),
    "--momentum": (_per_recipe("momentum"),),
    "--device": ("auto", "cpu", "cuda", "mps"),
    "--data-dir": ("cifar10-jpg", "COURSE_DATA_DIR"),
    "--logdir": ("runs",),
    "--resume": ("RUN_DIR", "--epochs"),
    "--seed": ("0",),
    "--topk": ("3", "10"),
}


def _actions(parser):
    """``{first option string (or name): (action, (dest, type, default, metavar, choices,
    nargs))}`` of every option but ``-h``."""
    return {(a.option_strings or [a.dest])[0]: (a, (a.dest, a.type, a.default, a.metavar,
                                                    a.choices, a.nargs))
            for a in parser._actions if not isinstance(a, argparse._HelpAction)}


def _commands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub


def test_every_option_parses_as_documented_and_its_help_tells_the_default():
    assert cli._per_recipe("batch_size") == _per_recipe("batch_size")
    assert _per_recipe("batch_size").startswith("original 64, improved 256")
    parser, sub = _commands()
    assert parser.prog == "python -m course_utils"
    assert (sub.dest, sub.required, list(sub.choices)) == ("command", True, ["train", "predict"])
    assert all(a.help for a in sub._choices_actions)
    for name, expected in (("train", TRAIN_OPTIONS), ("predict", PREDICT_OPTIONS)):
        found = _actions(sub.choices[name])
        for option, parsing in expected.items():  # nothing lost (others may be added)
            assert option in found and found[option][1] == parsing, (name, option)
        for option, (action, _) in found.items():
            assert action.help and "None" not in action.help, (name, option)
            for word in HELP_TELLS.get(option, ()):
                assert word in action.help, (name, option, word)


def test_every_example_in_the_help_runs_as_written(monkeypatch, tmp_path):
    """The command lines of --help's examples parse (after making the folders they name)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "<run folder>").mkdir(parents=True)
    (tmp_path / "runs" / "<run>" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "<run>" / "checkpoints" / "last.pt").write_bytes(b"")
    (tmp_path / "my_cat.jpg").write_bytes(b"")
    parser, sub = _commands()
    examples = [line.split("#")[0].split("course_utils", 1)[1].split()
                for cmd in sub.choices.values() for line in cmd.epilog.splitlines()
                if "-m course_utils" in line]
    assert len(examples) >= 5
    for argv in examples:
        args = parser.parse_args(_join_placeholders(argv))
        assert args.command in ("train", "predict"), argv


def _join_placeholders(argv: list[str]) -> list[str]:
    """``runs/<run folder>`` was split at its space: join it again."""
    out: list[str] = []
    for word in argv:
        if out and out[-1].count("<") > out[-1].count(">"):
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def test_help_is_laid_out_in_two_columns_within_100_characters():
    _, sub = _commands()
    for cmd in sub.choices.values():
        lines = cmd.format_help().splitlines()
        assert max(map(len, lines)) <= 100
    lines = sub.choices["train"].format_help().splitlines()
    assert any(line.startswith("  --epochs N") and line[30:].startswith("passes over")
               for line in lines)  # help text starts in column 30


def test_version_and_signal_handlers_only_for_the_real_program(monkeypatch, capsys):
    installed, hook = [], threading.excepthook
    monkeypatch.setattr(interrupts, "install", lambda: installed.append(True))
    monkeypatch.setattr(threading, "excepthook", hook)  # put back after the test
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"course_utils {__version__}\n"
    assert installed == [] and threading.excepthook is hook  # a notebook, a test: untouched
    monkeypatch.setattr(sys, "argv", ["python -m course_utils", "--version"])
    with pytest.raises(SystemExit):
        cli.main()
    assert installed == [True] and capsys.readouterr().out == f"course_utils {__version__}\n"
    assert threading.excepthook is not hook  # the program: thread write failures kept quiet


def test_each_value_check_accepts_and_rejects_naming_the_value(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # "~" is tmp_path
    (tmp_path / "data").mkdir()
    (tmp_path / "photo.png").write_bytes(b"")
    accepted = [(cli.positive_int, "1", 1), (cli.finite_number, "-2.5", -2.5),
                (cli.finite_number, "1e-3", 0.001), (cli.positive_number, "1e-3", 0.001),
                (cli.momentum_below_one, "0", 0.0), (cli.momentum_below_one, "0.99", 0.99),
                (cli.class_count, "10", 10),
                (cli.available_device, "cpu", torch.device("cpu")),
                (cli.existing_folder, "~/data", tmp_path / "data"),
                (cli.new_or_existing_folder, "~/data", tmp_path / "data"),
                (cli.new_or_existing_folder, "~/new", tmp_path / "new"),
                (cli.existing_file, "~/photo.png", tmp_path / "photo.png"),
                (cli.folder_name_part, "Xmas-run_2", "Xmas-run_2")]
    for check, text, value in accepted:
        assert check(text) == value, (check.__name__, text)
    assert capsys.readouterr().out == ""  # the device is checked quietly
    with pytest.raises(ValueError) as info:
        devices.pick_device("gpu", verbose=False)
    rejected = [(cli.positive_int, "three", "whole number"),  # value, key word of the rule
                (cli.positive_int, "0", "at least 1"),
                (cli.finite_number, "fast", "not a number"),
                (cli.finite_number, "inf", "finite"),
                (cli.positive_number, "0", "positive"),
                (cli.momentum_below_one, "1", "below 1"),
                (cli.momentum_below_one, "1.5", "below 1"),
                (cli.momentum_below_one, "-0.1", "at least 0"),
                (cli.class_count, "11", "10 classes"),
                (cli.available_device, "gpu", str(info.value)),
                (cli.existing_folder, "~/none", "does not exist"),
                (cli.new_or_existing_folder, "~/photo.png", "not a folder"),
                (cli.existing_file, "~/data", "is a folder"),
                (cli.existing_file, "~/none.png", "does not exist")]
    rejected += [(cli.folder_name_part, name, "folder name")
                 for name in ("", ".", "..", *(f"a{c}b" for c in '/\\:*?"<>|'))]
    for check, text, rule in rejected:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            check(text)
        message = str(info.value)
        assert repr(text) in message or text in message, (check.__name__, text, message)
        assert rule in message and "\n" not in message, (check.__name__, text, message)


def _fake_train(monkeypatch, history):
    """training.train replaced: records (settings, checkpoint) of the run it is given,
    returns a run folder and ``history``."""
    calls = []

    def train(run):
        calls.append((run.settings, run.checkpoint))
        return run.settings.resume or run.settings.logdir / "20260101-000000_x", history

    monkeypatch.setattr(training, "train", train)
    return calls


def test_train_passes_every_option_down_and_reports_the_last_epoch(
        monkeypatch, tmp_path, run_cli):
    history = [{"epoch": e, "test_accuracy": a} for e, a in ((1, 0.1), (2, 0.2), (3, 0.123456))]
    calls = _fake_train(monkeypatch, history)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, simulated:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)     # "auto" is not the CPU
    (tmp_path / "data").mkdir()
    code, out, err = run_cli(
        "train", "--recipe", "original", "--model", "tudui-bn", "--epochs", "3",
        "--batch-size", "8", "--lr", "0.05", "--momentum", "0.5", "--device", "cpu",
        "--data-dir", tmp_path / "data", "--limit", "100", "--logdir", tmp_path / "logs",
        "--run-name", "mine", "--seed", "4", "--no-progress")
    assert (code, err) == (0, "")
    (settings, start), = calls
    assert start is None and settings == recipes.make_settings(
        "original", model="tudui-bn", epochs=3, batch_size=8, lr=0.05, momentum=0.5,
        limit=100, seed=4, device="cpu", data_dir=tmp_path / "data",
        logdir=tmp_path / "logs", run_name="mine", progress=False)
    run_dir = tmp_path / "logs" / "20260101-000000_x"
    assert out.count("\n") == 1  # one summary line: accuracy, epoch, checkpoint, TensorBoard
    for part in ("0.1235", "epoch 3", str(run_dir / "checkpoints" / "last.pt"),
                 f"tensorboard --logdir {tmp_path / 'logs'}"):
        assert part in out, part
    code, out, err = run_cli("train")  # every default
    assert (code, err) == (0, "")
    assert calls[-1] == (recipes.make_settings(device="auto", progress=True), None)
    assert calls[-1][0].device == torch.device("cuda")
    _fake_train(monkeypatch, [])  # nothing trained (e.g. the run was finished): no summary
    assert run_cli("train", "--device", "cpu") == (0, "", "")


def test_train_resume_reads_the_run_once_and_continues_it(monkeypatch, tmp_path, run_cli):
    calls = _fake_train(monkeypatch, [{"epoch": 3, "test_accuracy": 0.5}])
    config = recipes.make_settings("original", limit=100, epochs=2, device="cpu").config
    torch.manual_seed(0)
    path = checkpoints.save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt",
                                       models.build_model("tudui"), epoch=2, config=config)
    reads = []
    read = training.checkpoint_to_resume
    monkeypatch.setattr(training, "checkpoint_to_resume", lambda d: reads.append(d) or read(d))
    code, out, err = run_cli("train", "--resume", tmp_path / "run", "--epochs", "3",
                             "--device", "cpu")
    assert (code, err) == (0, "") and reads == [tmp_path / "run"]  # read once
    (settings, start), = calls
    assert (start["epoch"], start["config"]) == (2, config)
    assert settings.resume == tmp_path / "run" and settings.recipe.epochs == 3
    assert out.splitlines()[0] == f"[course_utils] continuing from {path}"


def test_predict_prints_the_top_k_of_each_photo(monkeypatch, tmp_path, run_cli):
    model, info = predict.load_trained()  # the shipped weights: normalised inputs
    assert info["normalize"] is not None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, simulated:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)     # --device cpu by default
    code, out, err = run_cli("predict", DOG, PLANE, "--topk", "2")
    expected = [f"{image}: " + ", ".join(f"{name} {p:.1%}" for name, p in predict.predict_image(
        model, image, 2, normalize=info["normalize"])) for image in (DOG, PLANE)]
    assert (code, err, out.splitlines()) == (0, "", expected)
    torch.manual_seed(0)  # a checkpoint of one's own: another network, plain ToTensor
    mine = checkpoints.save_checkpoint(tmp_path / "mine.pt", models.build_model("tudui"),
                                       model_name="tudui", normalize=None)
    model, info = predict.load_trained(mine)
    ranked = predict.predict_image(model, DOG, 3, normalize=None)  # --topk 3 by default
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a photo")
    with pytest.raises(ValueError) as bad:
        predict.predict_image(model, fake)
    code, out, err = run_cli("predict", fake, DOG, fake, "--checkpoint", mine)
    assert code == 2  # a bad photo: reported, the others still classified
    assert out == f"{DOG}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked) + "\n"
    assert err == f"python -m course_utils predict: error: {bad.value}\n" * 2


def test_an_interrupted_command_says_what_it_leaves_behind(monkeypatch, tmp_path, run_cli):
    logs = tmp_path / "runs"

    def run(name, saved=True):
        folder = logs / name
        (folder / "checkpoints").mkdir(parents=True)
        if saved:
            (folder / "checkpoints" / "epoch_001.pt").write_bytes(b"")
        return folder

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def interrupted_in(folder):  # training.train made the run's folder, then Ctrl+C
        def train(run):
            run.folder = folder
            raise KeyboardInterrupt
        return train

    def ask(*args):
        code, out, err = run_cli(*args)
        assert (code, out) == (130, "") and err.startswith("interrupted; ")
        assert err.count("\n") == 1, err  # one line
        return err

    monkeypatch.setattr(training, "train", interrupted)
    train = ("train", "--logdir", logs, "--device", "cpu")

    def start_again(err):  # nothing to resume: says so, names no run
        return "no checkpoint" in err and "start again" in err and "--resume" not in err

    def resume(err, run_dir):  # the exact command that continues the run
        return err.rstrip().endswith(f"python -m course_utils train --resume {run_dir}")

    assert start_again(ask(*train))  # no run folder at all
    other = run("b-other")  # saved, newer, but another command's: never guessed
    assert start_again(ask(*train))
    monkeypatch.setattr(training, "train", interrupted_in(run("a-mine", saved=False)))
    assert start_again(ask(*train))  # this command's folder, no epoch finished yet
    monkeypatch.setattr(training, "train", interrupted_in(run("c-mine")))
    assert resume(ask(*train), logs / "c-mine")
    monkeypatch.setattr(training, "checkpoint_to_resume", interrupted)  # while reading it
    assert resume(ask(*train, "--resume", other), other)
    monkeypatch.setattr(cli, "load_trained", interrupted)
    assert "nothing was written" in ask("predict", DOG)
    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert "nothing was written" in ask("train")


def test_sigterm_exits_143(monkeypatch, tmp_path, run_cli):
    def stopped(*args, **kwargs):
        raise interrupts.Interrupted(signal.SIGTERM)

    monkeypatch.setattr(training, "train", stopped)
    code, _, err = run_cli("train", "--logdir", tmp_path, "--device", "cpu")
    assert code == 143 and err.startswith("interrupted; no epoch had finished")


# ------------------------------------------------------------------- one entry point
def _script_target() -> str:
    """What pyproject.toml's ``course-utils`` console script runs (``module:function``)."""
    text = (REPO_ROOT / "pyproject.toml").read_text("utf-8")
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^course-utils\s*=\s*"([^"]+)"', section, re.M).group(1)


def _entry_points() -> dict[str, list[str]]:
    """How a learner starts the program: ``python -m course_utils`` and the ``course-utils``
    script (the installed one when it is current)."""
    module, function = _script_target().split(":")
    installed = Path(sys.executable).with_name("course-utils")
    if installed.is_file() and f"from {module} import {function}" in installed.read_text():
        script = [str(installed)]
    else:  # not installed, or installed before pyproject.toml changed: what pip would write
        script = [sys.executable, "-c", f"import sys; from {module} import {function}; "
                  f"sys.argv[0] = 'course-utils'; sys.exit({function}())"]
    return {"python -m course_utils": [sys.executable, "-m", "course_utils"],
            "course-utils": script}


def test_the_console_script_is_the_programs_own_main():
    """Not cli.main: the program's main installs the signal handlers before the imports."""
    from course_utils import __main__ as program

    module, function = _script_target().split(":")
    assert (module, function) == ("course_utils.__main__", "run")
    assert getattr(program, function) is program.run


def _handlers_ready(pid: int) -> bool:
    """True once the process catches SIGTERM (its handlers are in place)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _signalled(command: list[str], sig: int, cwd: Path, env: dict):
    proc = subprocess.Popen([*command, "train", "--device", "cpu"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _handlers_ready(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(sig)
    return proc


@REAL_PROCESS
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
def test_python_m_and_the_console_script_behave_the_same(tmp_path):
    """--version, a bad option, Ctrl+C and SIGTERM: the same exit code and output from every
    way of starting the program (real processes, started side by side)."""
    env = {**os.environ, "COURSE_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT),
           "OMP_NUM_THREADS": "1"}
    results = {}
    for name, command in _entry_points().items():
        runs = {args: subprocess.Popen([*command, *args], cwd=tmp_path, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for args in (("--version",), ("train", "--epochs", "0"))}
        runs.update({sig: _signalled(command, sig, tmp_path, env)
                     for sig in (signal.SIGINT, signal.SIGTERM)})
        results[name] = {key: (proc.wait(180), *proc.communicate()) for key, proc in runs.items()}
    want = next(iter(results.values()))
    assert want[("--version",)] == (0, f"course_utils {__version__}\n", "")
    code, _, err = want[("train", "--epochs", "0")]
    assert code == 2 and "--epochs" in err and "Traceback" not in err
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        got, _, err = want[sig]
        assert got == code and err.startswith("interrupted; ") and err.count("\n") == 1, err
    for name, got in results.items():
        assert got[("--version",)] == want[("--version",)], name
        assert got[("train", "--epochs", "0")] == want[("train", "--epochs", "0")], name
        for sig in (signal.SIGINT, signal.SIGTERM):
            assert got[sig][0] == want[sig][0] and got[sig][2].startswith("interrupted; "), name


def test_only_write_failures_of_threads_are_kept_quiet(monkeypatch):
    shown = []
    monkeypatch.setattr(threading, "excepthook", shown.append)
    cli._quiet_thread_write_failures()
    for exc in (OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EIO, "I/O"),
                RuntimeError("a bug")):
        threading.excepthook(types.SimpleNamespace(exc_value=exc))
    assert [type(a.exc_value) for a in shown] == [OSError, RuntimeError]
    assert shown[0].exc_value.errno == errno.EIO


def test_a_setting_in_an_error_is_spelled_as_its_option():
    """The recipes name settings as {batch_size}; the command line shows --batch-size."""
    from course_utils.errors import SettingError

    text = cli._spelled(SettingError("keep {batch_size} and {lr}; resume with {resume}"))
    assert text == "keep --batch-size and --lr; resume with --resume"
    assert cli._spelled(ValueError("plain {words} stay")) == "plain {words} stay"


def test_sigterm_while_classifying_photos_exits_143(monkeypatch, run_cli):
    def stopped(*args, **kwargs):
        raise interrupts.Interrupted(signal.SIGTERM)

    monkeypatch.setattr(cli, "load_trained", stopped)
    code, out, err = run_cli("predict", DOG)
    assert (code, out) == (143, "") and err.startswith("interrupted; nothing was written")
