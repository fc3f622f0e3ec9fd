"""Interrupted training: a real ``python -m course_utils train`` killed with SIGKILL, then
``--resume``d; atomic checkpoint writes under a failing and under a killed save; a full disk,
a read-only file system or a quota (injected, and for real on a small tmpfs) ends in one line
naming the folder, exit code 1 and a run that resumes from its last checkpoint."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _course_env import course_env

from course_utils import caches, checkpoints, cli, download, files, models
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


# what a full disk, a read-only file system and a quota look like to the course's writes
FAILURES = {
    "disk full": (OSError(errno.ENOSPC, "No space left on device"), "no space left"),
    "torch.save on a full disk": (RuntimeError(
        "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"), "no space left"),
    "read-only": (OSError(errno.EROFS, "Read-only file system"), "read-only"),
    "quota": (OSError(getattr(errno, "EDQUOT", errno.ENOSPC), "Disk quota exceeded"),
              "quota" if hasattr(errno, "EDQUOT") else "no space left"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_a_save_that_fails_midway_leaves_the_old_checkpoint(tmp_path, monkeypatch, failure):
    last = _tudui_checkpoint(tmp_path / "last.pt", epoch=1)
    good = last.read_bytes()
    real_save = torch.save
    error, words = FAILURES[failure]

    def disk_full(obj, f, *args, **kwargs):
        real_save({"half": torch.zeros(10)}, f)  # some bytes reach the temporary file
        raise error

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(files.WriteError) as info:
        _tudui_checkpoint(last, epoch=2)
    monkeypatch.undo()
    text = str(info.value)
    assert words in text and str(tmp_path) in text and "\n" not in text
    assert ("free space" in text) == (failure != "read-only")
    assert last.read_bytes() == good
    assert checkpoints.load_checkpoint(last, models.Tudui())["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("error", [RuntimeError("a bug"), OSError(errno.EIO, "I/O error")])
def test_other_write_errors_are_not_disguised_as_a_full_disk(tmp_path, monkeypatch, error):
    def broken(obj, f, *args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(type(error)) as info:
        _tudui_checkpoint(tmp_path / "last.pt", epoch=1)
    assert info.value is error and not isinstance(info.value, files.WriteError)
    assert not list(tmp_path.iterdir())


def test_a_full_cache_names_the_cache_and_keeps_the_archive(tmp_path, monkeypatch, cache_dir):
    """A full disk while unpacking is not a damaged archive: nothing is deleted, not even a
    download of the course's own."""
    src = tmp_path / "src" / "thing"
    src.mkdir(parents=True)
    (src / "a.txt").write_text("a")
    archive = tmp_path / "thing.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="thing")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile, "copyfileobj", full)
    with pytest.raises(files.WriteError) as info:
        download.unpack_folder(archive, "thing", cache_dir, downloaded=True)
    assert str(cache_dir) in str(info.value) and "COURSE_CACHE_DIR" in str(info.value)
    assert archive.is_file() and not (cache_dir / "thing").exists()
    monkeypatch.setattr(np.lib.format, "write_array", full)
    with pytest.raises(files.WriteError, match="COURSE_CACHE_DIR"):
        caches.write_array(cache_dir / "x.npy", np.zeros(3, np.uint8))
    assert sorted(p.name for p in cache_dir.iterdir()) == []


TRAIN_2 = ["train", "--recipe", "original", "--epochs", "2", "--limit", "20", "--batch-size",
           "10", "--device", "cpu", "--no-progress"]


def _failing_after_epoch_1(patch, error: BaseException) -> None:
    """torch.save fails from the second checkpoint on."""
    real_save, saves = torch.save, []

    def save(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) > 1:
            raise error
        return real_save(obj, f, *args, **kwargs)

    patch.setattr(torch, "save", save)


def _line(err: str, *words: str) -> str:
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line


def _resumes(run_dir: Path, run_cli) -> None:
    """The run continues from its epoch-1 checkpoint to the end."""
    assert checkpoints.load_latest(run_dir, verbose=False)[1]["epoch"] == 1
    assert not list(run_dir.rglob("*.tmp")), "a temporary checkpoint file was left behind"
    code, _, err = run_cli("train", "--resume", run_dir, "--epochs", "2", "--no-progress")
    assert code == 0, err
    assert checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 2


@pytest.mark.parametrize("failure", ["torch.save on a full disk", "read-only", "quota"])
def test_cli_a_full_disk_mid_run_is_one_line_exit_1_and_resumable(tmp_path, offline,
                                                                  monkeypatch, run_cli,
                                                                  failure):
    error, words = FAILURES[failure]
    with monkeypatch.context() as patch:
        _failing_after_epoch_1(patch, error)
        code, _, err = run_cli(*TRAIN_2, "--logdir", tmp_path / "runs")
    assert code == 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    _line(err, words, str(run_dir / "checkpoints"), "choose another --logdir")
    _resumes(run_dir, run_cli)


def test_cli_a_full_disk_under_tensorboard_is_one_line_exit_1(tmp_path, offline, monkeypatch,
                                                              run_cli):
    from tensorboard.summary.writer import record_writer

    real_write, logdir = record_writer.RecordWriter.write, tmp_path / "runs"

    def write(self, data):  # the disk fills up once epoch 1 is saved
        if list(logdir.glob("*/checkpoints/epoch_001.pt")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    with monkeypatch.context() as patch:
        patch.setattr(record_writer.RecordWriter, "write", write)
        patch.setattr(threading, "excepthook", threading.excepthook)
        cli._quiet_thread_write_failures()  # as when run as a program
        code, _, err = run_cli(*TRAIN_2, "--logdir", logdir)
    assert code == 1
    (run_dir,) = logdir.iterdir()
    _line(err, "no space left", str(logdir), "free space or choose another --logdir")
    _resumes(run_dir, run_cli)


# ------------------------------------------------------- a real, small file system (tmpfs)
@contextlib.contextmanager
def _tmpfs(path: Path, kib: int, read_only: bool = False):
    """A tmpfs of ``kib`` KiB mounted at ``path`` (Linux, as root); skips the test otherwise."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs Linux and root")
    path.mkdir(parents=True)
    options = f"size={kib}k" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path) -> None:
    """Fill the file system of ``folder`` up to the last byte (the learner's own file)."""
    with open(folder / "my-big-file", "wb", buffering=0) as f:
        try:
            while f.write(b"x" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_real_full_disk_while_saving_ends_in_one_line_and_resumes(tmp_path, offline,
                                                                    run_cli):
    """The second checkpoint does not fit on the disk: torch.save's own failure."""
    probe = checkpoints.save_checkpoint(tmp_path / "probe.pt", models.Tudui(), epoch=1)
    kib = int(1.6 * probe.stat().st_size) // 1024  # room for one checkpoint, not two
    with _tmpfs(tmp_path / "small", kib) as small:
        code, _, err = run_cli(*TRAIN_2, "--logdir", small / "runs")
        assert code == 1
        (run_dir,) = (small / "runs").iterdir()
        _line(err, "no space left on", str(run_dir / "checkpoints"),
              "free space or choose another --logdir")
        assert checkpoints.load_latest(run_dir, verbose=False)[1]["epoch"] == 1
        moved = shutil.copytree(run_dir, tmp_path / "big" / run_dir.name)
    _resumes(moved, run_cli)


def test_a_read_only_logdir_ends_in_one_line(tmp_path, offline, run_cli):
    with _tmpfs(tmp_path / "ro", 64, read_only=True) as ro:
        code, _, err = run_cli(*TRAIN_2, "--logdir", ro / "runs")
    assert code == 1
    line = _line(err, "read-only file system", str(ro / "runs"), "choose another --logdir")
    assert "free space" not in line


@pytest.mark.slow
def test_a_real_full_disk_under_tensorboard_shows_no_thread_traceback(tmp_path, cache_dir):
    """``python -m course_utils`` for real: TensorBoard's writer thread meets the full disk."""
    with _tmpfs(tmp_path / "full", 256) as full:
        _fill(full)
        proc = subprocess.run([sys.executable, "-m", "course_utils", *TRAIN_2, "--logdir",
                               str(full / "runs")], cwd=tmp_path, env=course_env(cache_dir),
                              capture_output=True, text=True, timeout=300)
        mine = (full / "my-big-file").stat().st_size
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception in thread" not in proc.stderr
    _line(proc.stderr.strip().splitlines()[-1], "no space left on", str(full / "runs"),
          "choose another --logdir")
    assert mine > 0  # the learner's own file is still there, whole


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


def test_a_write_error_is_still_the_os_error_it_was(tmp_path):
    """Callers read errno, filename and strerror (exit codes, the folder): kept as OSError's."""
    for code, (cause, _) in files.WRITE_FAILURES.items():
        error = files.WriteError(code, tmp_path)
        assert (error.errno, error.filename, error.strerror) == (code, str(tmp_path), cause)


@pytest.mark.skipif(not hasattr(errno, "EDQUOT"), reason="no disk quotas here")
def test_a_quota_message_speaks_the_course_language(tmp_path):
    from course_utils import i18n

    i18n.set_language("zh")
    text = str(files.WriteError(errno.EDQUOT, tmp_path, "COURSE_CACHE_DIR"))
    assert str(tmp_path) in text and "COURSE_CACHE_DIR" in text and "disk quota" not in text, text


def test_a_full_disk_while_copying_names_the_folder(tmp_path, monkeypatch):
    src = tmp_path / "best.pt"
    src.write_bytes(b"weights")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", full)
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(files.WriteError) as info:
        files.atomic_copy(src, (tmp_path / "runs").mkdir() or tmp_path / "runs" / "copy.pt")
    assert str(tmp_path / "runs") in str(info.value) and "no space left" in str(info.value)


def test_atomic_copy_copies_the_bytes_where_there_are_no_hard_links(tmp_path, monkeypatch):
    src = tmp_path / "best.pt"
    src.write_bytes(os.urandom(3 << 20))  # more than one 1 MiB chunk

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "old").write_bytes(b"old")
    got = files.atomic_copy(src, tmp_path / "old")
    assert got == tmp_path / "old" and got.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "old"]  # no temporary


def test_atomic_write_makes_the_folders_on_the_way(tmp_path):
    path = tmp_path / "runs" / "new" / "last.pt"  # two levels that do not exist yet
    files.atomic_write(path, lambda f: f.write(b"checkpoint"))
    assert path.read_bytes() == b"checkpoint"


def test_the_first_error_is_reported_when_its_temporary_is_already_gone(tmp_path, monkeypatch):
    """Another process cleaned the folder (remove_stale_temporaries) while this one failed:
    the learner still reads the full-disk line, not a FileNotFoundError about a temporary."""
    def full_after_cleanup(f):
        for tmp in tmp_path.glob(".last.pt.*.tmp"):
            tmp.unlink()  # the temporary vanishes …
        raise OSError(errno.ENOSPC, "No space left on device")  # … and the write fails

    with pytest.raises(files.WriteError) as info:
        files.atomic_write(tmp_path / "last.pt", full_after_cleanup)
    assert info.value.errno == errno.ENOSPC and str(tmp_path) in str(info.value)

    src = tmp_path / "best.pt"
    src.write_bytes(b"weights")

    def replace_after_cleanup(tmp, dst):
        os.unlink(tmp)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", replace_after_cleanup)
    with pytest.raises(files.WriteError) as info:
        files.atomic_copy(src, tmp_path / "copy.pt")
    assert info.value.errno == errno.ENOSPC and not (tmp_path / "copy.pt").exists()


def test_two_processes_cleaning_the_same_folder_do_not_fail(tmp_path, monkeypatch):
    for name in (".last.pt.1.tmp", ".best.pt.2.tmp"):
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "last.pt").write_bytes(b"finished")
    is_file = Path.is_file

    def listed_then_removed_by_the_other(self):
        found = is_file(self)
        if found and self.suffix == ".tmp":
            os.unlink(self)  # the other process deletes it right after this one listed it
        return found

    monkeypatch.setattr(Path, "is_file", listed_then_removed_by_the_other)
    removed = files.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".best.pt.2.tmp", ".last.pt.1.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
