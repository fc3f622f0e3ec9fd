"""Interrupted training: a real ``python -m course_utils train`` killed with SIGKILL, then
``--resume``d; atomic checkpoint writes under a failing and under a killed save."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from _course_env import course_env

from course_utils import checkpoints, cli, files, models
from course_utils.settings import REPO_ROOT
from course_utils.tb import read_scalars

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals (SIGKILL)")

# 200 images of the bundled sample, batch 5 → 40 steps an epoch; train_loss every 10 steps.
TRAIN = ["train", "--recipe", "original", "--epochs", "3", "--limit", "200", "--batch-size", "5",
         "--device", "cpu"]
STEPS_PER_EPOCH = 40


def _start(args: list[str], env: dict, out: Path) -> subprocess.Popen:
    """``python -m course_utils ARGS`` with stdout → ``out`` and stderr → ``out.err``."""
    return subprocess.Popen(
        [sys.executable, "-m", "course_utils", *args], cwd=REPO_ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=out.open("wb"),
        stderr=out.with_suffix(".err").open("wb"))


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def _curve(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    return read_scalars(run_dir)[tag]


def test_sigkill_mid_epoch_then_resume_continues_the_same_run(tmp_path, cache_dir,
                                                             monkeypatch, capsys):
    env = course_env(cache_dir)
    killed_logs, whole_logs = tmp_path / "killed", tmp_path / "whole"
    victim = _start([*TRAIN, "--logdir", str(killed_logs)], env, tmp_path / "killed.out")
    try:
        # tqdm's bar on stderr shows when epoch 2 (or 3) is part-way through
        bar = tmp_path / "killed.err"
        midway = re.compile(r"epoch [23]/3: +\d+%\|[^|\r\n]*\| *([1-9]|[1-3]\d)/40 [^\r\n]*$")
        _wait_for(lambda: midway.search(bar.read_text("utf-8", "replace").rstrip()), 90,
                  "epoch 2 to be under way", victim)
        assert victim.poll() is None, "the run finished before it could be killed"
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    run_dir = next(killed_logs.iterdir())
    printed = (tmp_path / "killed.out").read_text(encoding="utf-8")
    finished = printed.count("/3: train loss")  # "epoch N/3: train loss …" per finished epoch
    saved = checkpoints.load_latest(run_dir, verbose=False)[1]
    # at most the current epoch is lost (it may have been printed but not saved yet)
    assert 1 <= saved["epoch"] <= 2 and finished - 1 <= saved["epoch"] <= finished
    assert saved["global_step"] == saved["epoch"] * STEPS_PER_EPOCH
    finished = saved["epoch"]
    before = _curve(run_dir, "train_loss")

    resumed = _start(["train", "--resume", str(run_dir), "--no-progress"], env,
                     tmp_path / "resumed.out")
    # meanwhile, the same settings uninterrupted, in this process, for comparison
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main([*TRAIN, "--logdir", str(whole_logs), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    assert resumed.wait(120) == 0, (tmp_path / "resumed.err").read_text()
    printed = (tmp_path / "resumed.out").read_text(encoding="utf-8")
    assert f"at epoch {finished}, step {finished * STEPS_PER_EPOCH}" in printed

    # the same step counter: three epochs, history continues, nothing duplicated
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (state["epoch"], state["global_step"]) == (3, 3 * STEPS_PER_EPOCH)
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert [h["step"] for h in state["history"]] == [40, 80, 120]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.pt")) == \
        ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "last.pt"]
    assert not list(tmp_path.rglob("*.tmp")), "a temporary checkpoint file was left behind"

    # the same TensorBoard curve: one point per logged step, equal to the uninterrupted run
    whole_dir = next(whole_logs.iterdir())
    for tag in ("train_loss", "test_loss", "test_accuracy"):
        got, want = _curve(run_dir, tag), _curve(whole_dir, tag)
        assert [s for s, _ in got] == [s for s, _ in want], tag
        assert [s for s, _ in got] == sorted({s for s, _ in got}), f"{tag}: duplicated steps"
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-5), tag
    assert [s for s, _ in _curve(run_dir, "train_loss")] == list(range(10, 121, 10))
    kept = dict(_curve(run_dir, "train_loss"))
    assert all(kept[s] == v for s, v in before if s <= saved["global_step"])
    whole_state = checkpoints.load_checkpoint(whole_dir / "checkpoints" / "last.pt")
    for name, tensor in whole_state["model_state"].items():
        torch.testing.assert_close(state["model_state"][name], tensor, msg=name)


def _tudui_checkpoint(path: Path, epoch: int) -> Path:
    torch.manual_seed(epoch)
    return checkpoints.save_checkpoint(path, models.Tudui(), model_name="tudui", epoch=epoch)


def test_a_save_that_fails_midway_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    last = _tudui_checkpoint(tmp_path / "last.pt", epoch=1)
    good = last.read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        real_save({"half": torch.zeros(10)}, f)  # some bytes reach the temporary file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        _tudui_checkpoint(last, epoch=2)
    monkeypatch.undo()
    assert last.read_bytes() == good
    assert checkpoints.load_checkpoint(last, models.Tudui())["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_process_killed_while_saving_leaves_the_old_checkpoint(tmp_path):
    """SIGKILL in the middle of writing: last.pt is the previous file, complete and loadable;
    the half-written temporary is removed when the run is resumed."""
    last = _tudui_checkpoint(tmp_path / "checkpoints" / "last.pt", epoch=1)
    good = last.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, torch
        from course_utils import checkpoints, models
        real_save = torch.save
        def save_then_die(obj, f, *a, **k):
            real_save(obj, f)
            f.truncate(f.tell() // 2)  # half of the new file is on disk …
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # … when the power goes
        torch.save = save_then_die
        checkpoints.save_checkpoint({str(last)!r}, models.Tudui(), model_name="tudui", epoch=2)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stale = list(last.parent.glob(".last.pt.*.tmp"))
    assert len(stale) == 1 and stale[0].stat().st_size > 0  # the killed write really began
    assert last.read_bytes() == good
    path, state = checkpoints.load_latest(tmp_path, models.Tudui(), verbose=False)
    assert (path, state["epoch"]) == (last, 1)
    assert files.remove_stale_temporaries(last.parent) == stale
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]
