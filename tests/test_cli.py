"""``python -m course_utils train|predict``: help, bad values (exit 2, no traceback), real runs."""

from __future__ import annotations

import argparse
import os
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
    interrupts,
    loaders,
    models,
    predict,
    recipes,
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
BAD_OPTIONS = [
    (["train", "--epochs", "0"], "--epochs: 0 must be at least 1"),
    (["train", "--epochs", "three"], "'three' is not a whole number"),
    (["train", "--batch-size", "-4"], "--batch-size"),
    (["train", "--lr", "-1"], "--lr: -1 must be a positive number"),
    (["train", "--lr", "nan"], "not a finite number"),
    (["train", "--lr", "fast"], "'fast' is not a number"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--device", "gpu"], "'gpu' is not a device"),
    (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
    (["train", "--recipe", "best"], "invalid choice: 'best'"),
    (["train", "--data-dir", "/no/such/folder"], "folder '/no/such/folder' does not exist"),
    (["train", "--resume", "/no/such/run"], "does not exist"),
    (["train", "--run-name", "a/b"], "cannot be part of a folder name"),
    (["train", "--limit", "0"], "--limit"),
    (["predict"], "the following arguments are required: IMAGE"),
    (["predict", "no_such_photo.jpg"], "file 'no_such_photo.jpg' does not exist"),
    (["predict", DOG, "--topk", "11"], "more than the 10 classes"),
    (["predict", DOG, "--topk", "0"], "--topk"),
    (["predict", DOG, "--checkpoint", "missing.pt"], "file 'missing.pt' does not exist"),
    ([], "required"),
    (["fly"], "invalid choice: 'fly'"),
]


@pytest.mark.parametrize("args, message", BAD_OPTIONS, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else None)
def test_bad_options_exit_2_with_a_message(capsys, args, message, run_cli):
    code, out, err = run_cli(*args)
    assert code == 2
    assert message in err and "usage:" in err
    assert "Traceback" not in err + out


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
    assert state["normalize"] == (loaders.CIFAR10_MEAN, loaders.CIFAR10_STD)
    assert state["scheduler_state"] is not None
    _, info = predict.load_trained(folder / "checkpoints" / "last.pt")
    assert info["normalize"] == (loaders.CIFAR10_MEAN, loaders.CIFAR10_STD)
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
    assert err.startswith("interrupted; the last finished epoch's checkpoint is kept")
    assert f"--resume {run}" in err and "Traceback" not in err
    state = checkpoints.load_checkpoint(run / "checkpoints" / "epoch_001.pt")
    assert state["epoch"] == 1 and state["global_step"] == 4


@pytest.mark.parametrize("error, code, message", [
    (KeyboardInterrupt(), 130, "interrupted; no epoch had finished"),
    (FloatingPointError("training diverged: nan"), 1, "error: training diverged: nan"),
    (OSError(28, "No space left on device"), 1, "No space left on device"),
    (ValueError("bad --thing"), 2, "error: bad --thing"),
    (FileNotFoundError("no such data"), 2, "error: no such data"),
])
def test_each_failure_has_its_exit_code(monkeypatch, offline, run_cli, error, code, message):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(recipes, "train", fail)
    got, out, err = run_cli("train", "--limit", "64", "--no-progress")
    assert got == code and message in err and "Traceback" not in err + out
    assert err.count("\n") == 1  # one line, no usage text


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


def test_every_option_its_type_default_and_help_in_full():
    assert _per_recipe("batch_size").startswith("original 64, improved 256")
    assert cli._per_recipe("batch_size") == _per_recipe("batch_size")
    parser = cli.build_parser()
    assert (parser.prog, parser.description) == (
        "python -m course_utils", "Train the course's CIFAR-10 network or classify photos "
        "with it.")
    fmt = parser.formatter_class
    assert fmt.func is argparse.RawDescriptionHelpFormatter
    assert fmt.keywords == {"max_help_position": 30, "width": 100}
    version, sub = (a for a in parser._actions if not isinstance(a, argparse._HelpAction))
    assert (version.option_strings, version.version) == (["--version"],
                                                         f"course_utils {__version__}")
    assert (sub.dest, sub.required, sub.metavar, list(sub.choices)) == \
        ("command", True, "{train,predict}", ["train", "predict"])
    assert [a.help for a in sub._choices_actions] == [
        "train a CIFAR-10 network (progress bar, TensorBoard logs, checkpoints)",
        "classify photos with a trained checkpoint"]
    train, predict_ = sub.choices["train"], sub.choices["predict"]
    assert train.formatter_class is fmt and predict_.formatter_class is fmt
    assert train.description == (
        "Train on CIFAR-10: the full set when present or downloadable, else the bundled "
        "sample.\nTensorBoard logs go to LOGDIR/<new run folder>/, checkpoints to its "
        "checkpoints/ folder;\nnothing earlier is overwritten.")
    assert train.epilog == (
        "examples:\n"
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
    assert _actions(train) == {
        "--recipe": ("recipe", None, None, None, sorted(recipes.RECIPES), None,
                     "'improved' (default, 0.83 on CIFAR-10 in 10 epochs) or 'original' "
                     "(P27 exactly); every setting: course_utils/recipes.py"),
        "--model": ("model", None, None, None, sorted(MODELS), None,
                    "network (default: the recipe's)"),
        "--epochs": ("epochs", cli.positive_int, None, "N", None, None,
                     "passes over the training set, in all (default 10; 1 in fast mode)"),
        "--batch-size": ("batch_size", cli.positive_int, None, "N", None, None,
                         "images per step and process (default: the recipe's, "
                         f"{_per_recipe('batch_size')})"),
        "--lr": ("lr", cli.positive_number, None, None, None, None,
                 f"learning rate (default: the recipe's, {_per_recipe('lr')})"),
        "--momentum": ("momentum", cli.momentum, None, "M", None, None,
                       f"SGD momentum, 0 ≤ M < 1 (default: {_per_recipe('momentum')})"),
        "--device": ("device", cli.device, "auto", None, None, None,
                     "auto (default: cuda → mps → cpu), cpu, cuda, cuda:N or mps"),
        "--data-dir": ("data_dir", cli.folder, None, "DIR", None, None,
                       "folder with cifar10-jpg/ or its .tar.gz (default: $COURSE_DATA_DIR)"),
        "--limit": ("limit", cli.positive_int, None, "N", None, None,
                    "use at most N training images (quick experiments)"),
        "--logdir": ("logdir", cli.new_or_folder, Path("runs"), "DIR", None, None,
                     "parent folder of the run folders (default: runs)"),
        "--run-name": ("run_name", cli.run_name, None, "NAME", None, None,
                       "suffix of the new run folder's name (default: the recipe)"),
        "--resume": ("resume", cli.folder, None, "RUN_DIR", None, None,
                     "continue the run in RUN_DIR from its newest checkpoint, with its "
                     "settings; --epochs may raise the total"),
        "--seed": ("seed", int, None, None, None, None, "random seed (default 0)"),
        "--no-progress": ("no_progress", None, False, None, None, 0,
                          "no progress bars (still one line per epoch)"),
    }
    assert predict_.description == (
        "Print the top-k CIFAR-10 classes of each image.\nAny size and mode: RGBA and "
        "grayscale photos are converted to RGB, then resized to 32×32.")
    assert predict_.epilog == ("example:\n  python -m course_utils predict my_cat.jpg "
                               "--checkpoint runs/<run>/checkpoints/last.pt --topk 5")
    assert _actions(predict_) == {
        "images": ("images", cli.file, None, "IMAGE", None, "+", "image files"),
        "--checkpoint": ("checkpoint", cli.file, None, "FILE", None, None,
                         "checkpoint to load (default: the weights shipped with the course)"),
        "--topk": ("topk", cli.topk, 3, "K", None, None,
                   "classes to show per image, 1–10 (default 3)"),
        "--device": ("device", cli.device, "cpu", None, None, None,
                     "cpu (default), auto, cuda, cuda:N or mps"),
    }
    lines = train.format_help().splitlines()  # help text starts in column 30, ≤ 100 wide
    assert max(map(len, lines)) <= 100
    assert any(line.startswith("  --epochs N") and line[30:].startswith("passes over")
               for line in lines)


def test_version_and_signal_handlers_only_for_the_real_program(monkeypatch, capsys):
    installed = []
    monkeypatch.setattr(interrupts, "install", lambda: installed.append(True))
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"course_utils {__version__}\n"
    assert installed == []  # called from Python (a notebook, a test): handlers untouched
    monkeypatch.setattr(sys, "argv", ["python -m course_utils", "--version"])
    with pytest.raises(SystemExit):
        cli.main()
    assert installed == [True] and capsys.readouterr().out == f"course_utils {__version__}\n"


def test_each_value_check_accepts_and_rejects_in_full(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # "~" is tmp_path
    (tmp_path / "data").mkdir()
    (tmp_path / "photo.png").write_bytes(b"")
    accepted = [(cli.positive_int, "1", 1), (cli.number, "-2.5", -2.5),
                (cli.number, "1e-3", 0.001), (cli.positive_number, "1e-3", 0.001),
                (cli.momentum, "0", 0.0), (cli.momentum, "0.99", 0.99), (cli.topk, "10", 10),
                (cli.device, "cpu", torch.device("cpu")),
                (cli.folder, "~/data", tmp_path / "data"),
                (cli.new_or_folder, "~/data", tmp_path / "data"),
                (cli.new_or_folder, "~/new", tmp_path / "new"),
                (cli.file, "~/photo.png", tmp_path / "photo.png"),
                (cli.run_name, "Xmas-run_2", "Xmas-run_2")]
    for check, text, value in accepted:
        assert check(text) == value, (check.__name__, text)
    assert capsys.readouterr().out == ""  # the device is checked quietly
    with pytest.raises(ValueError) as info:
        devices.pick_device("gpu", verbose=False)
    name_rule = "cannot be part of a folder name (no slashes or :*?\"<>|)"
    rejected = [(cli.positive_int, "three", "'three' is not a whole number"),
                (cli.positive_int, "0", "0 must be at least 1"),
                (cli.number, "fast", "'fast' is not a number"),
                (cli.number, "inf", "'inf' is not a finite number"),
                (cli.positive_number, "0", "0 must be a positive number"),
                (cli.momentum, "1", "1 must be at least 0 and below 1 (e.g. 0.9)"),
                (cli.momentum, "1.5", "1.5 must be at least 0 and below 1 (e.g. 0.9)"),
                (cli.momentum, "-0.1", "-0.1 must be at least 0 and below 1 (e.g. 0.9)"),
                (cli.topk, "11", "11 is more than the 10 classes there are"),
                (cli.device, "gpu", str(info.value)),
                (cli.folder, "~/none", "folder '~/none' does not exist"),
                (cli.new_or_folder, "~/photo.png", "'~/photo.png' exists and is not a folder"),
                (cli.file, "~/data", "file '~/data' is a folder, not a file"),
                (cli.file, "~/none.png", "file '~/none.png' does not exist")]
    rejected += [(cli.run_name, name, f"{name!r} {name_rule}")
                 for name in ("", ".", "..", *(f"a{c}b" for c in '/\\:*?"<>|'))]
    for check, text, message in rejected:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            check(text)
        assert str(info.value) == message, (check.__name__, text)


def _fake_train(monkeypatch, history):
    """recipes.train replaced: records (settings, start), returns a run folder and
    ``history``."""
    calls = []

    def train(settings, start):
        calls.append((settings, start))
        return settings.resume or settings.logdir / "20260101-000000_x", history

    monkeypatch.setattr(recipes, "train", train)
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
    assert out == (f"done: test accuracy 0.1235 after epoch 3; checkpoint "
                   f"{run_dir / 'checkpoints' / 'last.pt'}; TensorBoard: tensorboard "
                   f"--logdir {tmp_path / 'logs'}\n")
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
    code, out, err = run_cli("train", "--resume", tmp_path / "run", "--epochs", "3",
                             "--device", "cpu")
    assert (code, err) == (0, "")
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
    now = 1_000_000.0  # the command's start, fixed
    monkeypatch.setattr(cli, "time", types.SimpleNamespace(time=lambda: now))
    logs = tmp_path / "runs"

    def run(name, mtime, saved=True):
        folder = logs / name
        (folder / "checkpoints").mkdir(parents=True)
        if saved:
            (folder / "checkpoints" / "epoch_001.pt").write_bytes(b"")
        os.utime(folder, (mtime, mtime))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def ask(*args):
        code, out, err = run_cli(*args)
        assert (code, out) == (130, "")
        return err

    monkeypatch.setattr(recipes, "train", interrupted)
    train = ("train", "--logdir", logs, "--device", "cpu")
    nothing = "interrupted; no epoch had finished, so no checkpoint is kept: start again.\n"
    resume = ("interrupted; the last finished epoch's checkpoint is kept: continue with "
              "python -m course_utils train --resume {}\n")
    assert ask(*train) == nothing  # no run folder at all
    run("c-old", now - 1.5)  # from before this command
    assert ask(*train) == nothing
    run("b-start", now - 1)  # made within the second before the start: this command's
    assert ask(*train) == resume.format(logs / "b-start")
    run("a-new", now + 5)
    run("d-mid", now + 3)
    run("e-unsaved", now + 9, saved=False)
    assert ask(*train) == resume.format(logs / "a-new")  # the newest with a checkpoint
    monkeypatch.setattr(recipes, "read_run", interrupted)
    assert ask(*train, "--resume", logs / "c-old") == resume.format(logs / "c-old")
    monkeypatch.setattr(cli, "load_trained", interrupted)
    assert ask("predict", DOG) == "interrupted; nothing was written.\n"
    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert ask("train") == "interrupted; nothing was written.\n"


def test_sigterm_exits_143(monkeypatch, tmp_path, run_cli):
    def stopped(*args, **kwargs):
        raise interrupts.Interrupted(signal.SIGTERM)

    monkeypatch.setattr(recipes, "train", stopped)
    code, _, err = run_cli("train", "--logdir", tmp_path, "--device", "cpu")
    assert code == 143 and err.startswith("interrupted; no epoch had finished")
