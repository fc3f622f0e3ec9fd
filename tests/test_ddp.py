"""Data-parallel training: ``torchrun --standalone --nproc_per_node=2 -m course_utils train``
on the CPU (gloo), against one process over the same global batches; Ctrl+C and --resume
under torchrun; bad options reported by every process; no process left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from _course_env import course_env
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checkpoints, distributed, engine, loaders, models, recipes, training
from course_utils.tb import read_scalars

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds leftover processes through /proc")
MARK = "COURSE_DDP_TEST"


# --------------------------------------------------------------- sharding, in-process
def _as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed, "world_size", lambda: world)


def _global_batches(make, world: int, epoch: int, monkeypatch) -> list[list[int]]:
    """Batch k of every rank, joined: the images one step of the whole job sees."""
    per_rank = []
    for rank in range(world):
        _as_rank(monkeypatch, rank, world)
        loader = make()
        distributed.set_epoch(loader, epoch)
        per_rank.append([labels.tolist() for _, labels in loader])
    assert len({len(batches) for batches in per_rank}) == 1, "ranks take different step counts"
    return [sorted(sum(step, [])) for step in zip(*per_rank, strict=True)]


@pytest.mark.parametrize("pipeline", ["DataLoader", "TensorLoader"])
def test_two_shards_of_batch_b_make_the_one_process_batch_2b(pipeline, monkeypatch):
    images = torch.zeros(48, 3, 8, 8, dtype=torch.uint8)
    labels = torch.randperm(48)  # distinct labels name the images

    def make(batch):
        if pipeline == "TensorLoader":
            return lambda: loaders.ShardedTensorLoader(images, labels, batch, seed=5)
        data = TensorDataset(images, labels)
        return lambda: DataLoader(data, batch, sampler=distributed.train_sampler(data, 5))

    for epoch in (0, 1):
        two = _global_batches(make(4), 2, epoch, monkeypatch)
        one = _global_batches(make(8), 1, epoch, monkeypatch)
        assert two == one and len(one) == 6
        assert sorted(sum(one, [])) == sorted(labels.tolist())  # every image once
    assert one != _global_batches(make(8), 1, 0, monkeypatch), "epochs are not reshuffled"


def test_evaluation_shards_cover_the_set_once(monkeypatch):
    parts = []
    for rank in range(3):
        _as_rank(monkeypatch, rank, 3)
        parts += list(distributed.eval_indices(10))
    assert sorted(parts) == list(range(10))


def test_without_torchrun_nothing_changes(monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    with distributed.process_group("cpu") as device:
        assert device == torch.device("cpu") and not distributed.active()
        assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, 1)
        model = torch.nn.Linear(2, 2)
        assert distributed.wrap(model, device) is model
        assert distributed.share(call=lambda: 7) == 7 and distributed.gather(3) == [3]
    x = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    sharded = loaders.ShardedTensorLoader(x, torch.arange(10), 4, drop_last=True)
    assert len(sharded) == len(loaders.TensorLoader(x, torch.arange(10), 4, drop_last=True))


def test_mps_under_torchrun_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="--device cpu"):
        distributed.local_device("mps")


# --------------------------------------------------------------------- real torchrun
@pytest.fixture
def job(tmp_path, cache_dir):
    """Start ``torchrun … -m course_utils train ARGS``; every process it starts carries a
    marker in its environment, and all of them are gone when the test ends."""
    tag = uuid.uuid4().hex
    env = course_env(cache_dir, **{MARK: tag})

    def start(args, name="job", tee=False) -> subprocess.Popen:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node=2", *(["--tee", "3"] if tee else []),
                   "-m", "course_utils", "train", "--device", "cpu", *args]
        out = tmp_path / f"{name}.out"
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                stdout=out.open("wb"), stderr=out.with_suffix(".err").open("wb"),
                                start_new_session=True)

    start.tag = tag
    yield start
    leftover = _marked(tag)
    for pid in leftover:
        with _gone():
            os.kill(pid, signal.SIGKILL)
    assert not leftover, f"processes left behind: {leftover}"


class _gone:  # a process that ended meanwhile is fine
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is ProcessLookupError


def _marked(tag: str) -> list[int]:
    """Live processes whose environment carries this test's marker."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"{MARK}={tag}".encode() in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


def _finish(proc: subprocess.Popen, timeout: float, tag: str) -> int:
    """Exit code of torchrun; after it, none of its processes may still run."""
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"torchrun still running after {timeout} s (a hang)") from None
    deadline = time.monotonic() + 10
    while _marked(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _marked(tag), "a training process outlived torchrun"
    return code


def _read(tmp_path: Path, name: str) -> tuple[str, str]:
    out = tmp_path / f"{name}.out"
    return out.read_text("utf-8", "replace"), out.with_suffix(".err").read_text("utf-8", "replace")


def _one_process(*, epochs: int, batch_size: int, limit: int, seed: int):
    """The original recipe in this process, one batch of ``batch_size`` per step, drawn in
    the order the two-process job uses (DistributedSampler with one replica)."""
    settings = recipes.make_settings("original", epochs=epochs, batch_size=batch_size,
                                     limit=limit, seed=seed, device="cpu", progress=False)
    run = training.build_parts(settings)
    dataset = run.train_loader.dataset
    train = DataLoader(dataset, batch_size, sampler=distributed.train_sampler(dataset, seed))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like each torchrun process; much faster on a busy machine
    try:
        history = engine.fit(run.model, train, run.test_loader, epochs=epochs,
                             optimizer=run.optimizer, loss_fn=run.loss_fn, device="cpu",
                             progress=False)
    finally:
        torch.set_num_threads(threads)
    return run.model.state_dict(), history


def _same_training(state: dict, reference, reference_history) -> None:
    # Rounding differs (two means of 5 averaged vs one mean of 10): after 192 steps the
    # weights (|w| ≤ 0.13) differed by ≤ 4e-5; the same run over batches in another
    # order differed by 9e-4, and over batches of 5 by 3e-2.
    for name, tensor in reference.items():
        torch.testing.assert_close(state["model_state"][name], tensor, rtol=0, atol=2e-4,
                                   msg=name)
    for got, want in zip(state["history"], reference_history, strict=True):
        assert got["step"] == want["step"]
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4)
        assert got["test_loss"] == pytest.approx(want["test_loss"], rel=1e-4)
        assert abs(got["test_accuracy"] - want["test_accuracy"]) <= 1 / 200  # one image


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_the_global_batch(job, tmp_path,
                                                                    monkeypatch):
    proc = job(["--recipe", "original", "--epochs", "2", "--limit", "128", "--batch-size", "8",
                "--seed", "3", "--no-progress", "--logdir", "runs"])
    code = _finish(proc, 240, job.tag)
    out, err = _read(tmp_path, "job")
    assert code == 0, err
    # rank 0 alone prints, logs and saves
    assert "batch 8 per process × 2 processes = 16" in out
    assert [out.count(f"epoch {e}/2: train loss") for e in (1, 2)] == [1, 1]
    assert out.count("done: test accuracy") == 1 and "Traceback" not in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert len(read_scalars(run_dir)["test_accuracy"]) == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == \
        ["epoch_001.pt", "epoch_002.pt", "last.pt"]
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not any(key.startswith("module.") for key in state["model_state"])
    models.Tudui().load_state_dict(state["model_state"])  # a plain model, strict
    # the same weights as one process taking batches of 16 in the same order
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    _same_training(state, *_one_process(epochs=2, batch_size=16, limit=128, seed=3))


@pytest.mark.slow
def test_ctrl_c_ends_every_process_and_the_run_resumes_under_torchrun(job, tmp_path,
                                                                      monkeypatch):
    # 640 images, 5 per process and step: 64 steps an epoch; rank 0's bar shows the progress
    args = ["--recipe", "original", "--epochs", "3", "--limit", "640", "--batch-size", "5",
            "--logdir", "runs"]
    proc = job(args, "stopped")
    midway = re.compile(r"epoch 2/3: +\d+%\|[^|\r\n]*\| *([1-9]|[1-5]\d)/64 [^\r\n]*$")
    err_file = tmp_path / "stopped.err"
    deadline = time.monotonic() + 180
    while not midway.search(err_file.read_text("utf-8", "replace").rstrip()):
        assert proc.poll() is None and time.monotonic() < deadline, "epoch 2 never began"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in the terminal does
    code = _finish(proc, 60, job.tag)
    out, err = _read(tmp_path, "stopped")
    assert code != 0
    assert err.count("interrupted; the last finished epoch's checkpoint is kept") == 2, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    saved = checkpoints.load_latest(run_dir, verbose=False)[1]
    assert saved["epoch"] in (1, 2) and saved["global_step"] == 64 * saved["epoch"]

    resumed = job(["--resume", str(run_dir.relative_to(tmp_path)), "--no-progress"], "resumed")
    code = _finish(resumed, 240, job.tag)
    out, err = _read(tmp_path, "resumed")
    assert code == 0, err
    assert out.count(f"resumed at epoch {saved['epoch']}, step {64 * saved['epoch']}") == 1
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert [h["step"] for h in state["history"]] == [64, 128, 192]
    # interrupted and resumed, still one process's training over the same global batches
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    _same_training(state, *_one_process(epochs=3, batch_size=10, limit=640, seed=0))


@pytest.mark.slow
def test_bad_input_gives_exit_code_2_from_each_process_that_starts(job, tmp_path):
    """Every process that reaches its command line reports the bad input itself (one line,
    exit code 2); none hangs. torchrun stops the others as soon as one has ended, so a
    process still starting Python on a busy machine can be stopped (SIGTERM) before that —
    with no traceback either way."""
    cases = [
        (["--epochs", "0"], "argument --epochs: 0 must be at least 1"),  # refused by argparse
        (["--resume", "empty"], "has no readable checkpoint"),  # found by rank 0, shared
    ]
    (tmp_path / "empty").mkdir()
    for i, (args, message) in enumerate(cases):
        proc = job(args, f"bad{i}", tee=True)
        _finish(proc, 120, job.tag)
        out, err = _read(tmp_path, f"bad{i}")
        both = out + err
        # torchrun's failure report: every process's rank and exit code
        codes = dict(re.findall(r"rank +: (\d) \(local_rank: \d\)\s+exitcode +: (-?\d+)", both))
        assert sorted(codes) == ["0", "1"] and "2" in codes.values(), both
        for rank, code in codes.items():  # --tee 3 prefixes each process's lines
            assert f"[default{rank}]:Traceback" not in both
            if code == "2":
                line = f"[default{rank}]:python -m course_utils train: error: "
                assert re.search(re.escape(line) + ".*" + re.escape(message), both), both
            else:
                assert code in ("-15", "143"), both  # stopped by torchrun's SIGTERM


@pytest.mark.slow
def test_the_improved_recipe_trains_on_sharded_tensors(job, tmp_path):
    """The default recipe (uint8 tensors, augmentation, BatchNorm, one-cycle) under torchrun:
    --limit 600 → 300 images per process, batch 64 → 4 full batches each (drop_last)."""
    proc = job(["--epochs", "1", "--limit", "600", "--batch-size", "64", "--no-progress",
                "--logdir", "runs"])
    assert _finish(proc, 240, job.tag) == 0, _read(tmp_path, "job")[1]
    out, _ = _read(tmp_path, "job")
    assert "batch 64 per process × 2 processes = 128" in out and out.count("epoch 1/1:") == 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    state = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["global_step"] == 4  # steps per process = steps of the global batch
    assert len(state["rng_state"]["ranks"]) == 2  # each process's augmentation stream
    models.FastCNN().load_state_dict(state["model_state"])
    assert 0 <= state["history"][0]["test_accuracy"] <= 1
