"""``python -m course_utils train|predict``: help, bad values (exit 2, no traceback), real runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from course_utils import checkpoints, data, loaders, predict, recipes
from course_utils.settings import REPO_ROOT

DOG, PLANE = str(data.demo_image("dog")), str(data.demo_image("airplane"))


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
def test_training_that_diverges_exits_1_in_a_real_process(tmp_path):
    """lr 1e4 blows the loss up to nan within the first 4 steps (any seed): exit code 1 and the
    engine's advice, no traceback."""
    result = _cli("train", "--recipe", "original", "--lr", "1e4", "--limit", "256",
                  "--epochs", "1", "--logdir", str(tmp_path), "--no-progress")
    assert result.returncode == 1, result.stderr
    assert "error: training diverged" in result.stderr and "--lr 0.01" in result.stderr
    assert "Traceback" not in result.stderr


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
