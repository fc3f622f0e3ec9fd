"""Chaos test of training: a real ``train`` process is killed at 20 random moments (SIGKILL,
SIGINT and SIGTERM mixed, some inside a checkpoint save), resumed after each kill, and the end
result is compared with an uninterrupted run. Plus: a signal at named moments (a training
step, evaluation, TensorBoard's flush, a checkpoint save, the writer's close, the imports)
always ends with the one "interrupted; …" line, exit 130/143 and nothing half written.

Every ``train`` here is its own OS process running ``course_utils.__main__.main`` — what
``python -m course_utils`` and ``course-utils`` run — and gets real signals. To keep 20 kills
affordable they are forked from one "zygote" process that imported torch once (like a fork
server); the imports themselves are covered by ``test_a_signal_during_the_imports_is_clean``,
which starts ``python -m course_utils`` for real. Test-only slow-downs live in the zygote (each
loss computation sleeps STEP_S, each torch.save writes half the file, sleeps SAVE_S, writes
the rest) so that random moments land inside epochs, evaluations and saves; the package
has no test hooks.

Reproduce a failure: the seed and every kill (signal, moment) are printed; run again with
``CHAOS_SEED=<seed>``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from _course_env import course_env

from course_utils import checkpoints
from course_utils.tb import read_scalars

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs os.fork")]

EPOCHS, LIMIT, BATCH = 14, 60, 10  # 6 steps an epoch; train_loss logged every 10 steps
STEP_S, SAVE_S = 0.02, 0.08
KILLS = 20
TAGS = ("train_loss", "test_loss", "test_accuracy")

ZYGOTE = textwrap.dedent("""
    import io, json, os, signal, sys, time
    import torch
    from torch import nn
    import course_utils.cli  # the slow imports, once: every child starts with them done
    from course_utils import __main__ as course_main
    from course_utils import interrupts
    from tensorboard.summary.writer import event_file_writer as efw

    STEP_S, SAVE_S = float(sys.argv[1]), float(sys.argv[2])
    real_loss, real_save = nn.CrossEntropyLoss.forward, torch.save
    real_flush, real_close = efw._AsyncWriter.flush, efw._AsyncWriter.close
    trigger = {}

    def fire(at):
        if trigger.get("at") == at:
            trigger["count"] -= 1
            if trigger["count"] == 0:
                os.kill(os.getpid(), trigger["signal"])

    def slow_loss(self, *args):  # training steps and evaluation batches
        time.sleep(STEP_S)
        fire("evaluate" if torch.is_inference_mode_enabled() else "step")
        return real_loss(self, *args)

    def slow_save(obj, f, *args, **kwargs):  # half the file on disk, a pause, the rest
        if isinstance(f, (str, os.PathLike)):
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        f.write(data[:len(data) // 2])
        f.flush()
        fire("save")
        time.sleep(SAVE_S)
        f.write(data[len(data) // 2:])

    def flush(self):
        fire("flush")
        return real_flush(self)

    def close(self):
        fire("close")
        return real_close(self)

    nn.CrossEntropyLoss.forward, torch.save = slow_loss, slow_save
    efw._AsyncWriter.flush, efw._AsyncWriter.close = flush, close
    print("ready", flush=True)
    SIGNALS = {signal.SIGINT, signal.SIGTERM}
    for line in sys.stdin:
        job = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # held until the child is ready
        pid = os.fork()
        if pid == 0:  # the child: a train process, as python -m course_utils runs it
            code = 70
            try:
                interrupts.install()
                os.setpgid(0, 0)
                trigger.update(job.get("trigger") or {})
                for fd, name in ((1, job["out"]), (2, job["err"])):
                    target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(target, fd)
                    os.close(target)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
                code = course_main.main(job["argv"])
                interrupts.leave(code)
            except KeyboardInterrupt as exc:  # came before course_main.main began
                code = interrupts.report(exc, "nothing was started or written.")
            except SystemExit as exc:
                code = exc.code
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 70)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}), flush=True)
""")


class Zygote:
    """One pre-imported Python process that forks a ``train`` process per :meth:`start`."""

    def __init__(self, env: dict, folder: Path):
        self.folder, self.n = folder, 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, str(STEP_S), str(SAVE_S)], cwd=folder, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def start(self, argv: list[str], trigger: dict | None = None) -> tuple[int, Path, Path]:
        self.n += 1
        out, err = self.folder / f"{self.n:02d}.out", self.folder / f"{self.n:02d}.err"
        job = {"argv": argv, "out": str(out), "err": str(err), "trigger": trigger}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["pid"], out, err

    def wait(self, pid: int) -> int:
        answer = json.loads(self.proc.stdout.readline())
        assert answer["pid"] == pid
        return answer["code"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    """One zygote for the module (its imports are the slow part); its own course cache."""
    folder = tmp_path_factory.mktemp("zygote")
    z = Zygote(course_env(folder / "cache"), folder)
    yield z
    z.close()


def _train(logdir: Path, *more: str) -> list[str]:
    return ["train", "--recipe", "original", "--epochs", str(EPOCHS), "--limit", str(LIMIT),
            "--batch-size", str(BATCH), "--device", "cpu", "--seed", "1", "--logdir",
            str(logdir), "--no-progress", *more]


def _clean_end(code: int, err: Path, sig: int) -> None:
    """The one line, the right code, no traceback from any thread."""
    text = err.read_text("utf-8", "replace")
    if code == 0:  # the run had finished when the signal came
        assert "interrupted" not in text, text
        return
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], text
    assert "Traceback" not in text and "Exception ignored" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert [line for line in lines if "interrupted" in line] == lines[-1:], text
    assert lines[-1].startswith("interrupted; "), text


def _temporaries(run_dir: Path | None) -> set[str]:
    if run_dir is None:
        return set()
    return {p.name for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".part"))}


def _no_temporaries(run_dir: Path, before: set[str] = frozenset()) -> None:
    """No half-written file left — none but those a SIGKILL left ``before`` (the next run's
    fit removes them when it gets that far)."""
    left = _temporaries(run_dir) - set(before)
    assert not left, f"half-written files left behind: {sorted(left)}"


def _printed_epochs(out: Path) -> int:
    text = out.read_text("utf-8") if out.exists() else ""  # killed before it opened the file
    found = re.findall(r"^epoch (\d+)/\d+: train loss", text, re.M)
    return max(map(int, found), default=0)


def _wait_for_save(folder: Path, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(folder.glob(".*.tmp")):
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.003)
    return False


def _same_as(run_dir: Path, whole: Path) -> None:
    """Same steps, same TensorBoard curves (no step twice, none missing), same weights."""
    got = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    want = checkpoints.load_checkpoint(whole / "checkpoints" / "last.pt")
    assert (got["epoch"], got["global_step"]) == (want["epoch"], want["global_step"])
    assert [h["step"] for h in got["history"]] == [h["step"] for h in want["history"]]
    curves, reference = read_scalars(run_dir), read_scalars(whole)
    for tag in TAGS:
        steps = [s for s, _ in curves[tag]]
        assert steps == sorted(set(steps)), f"{tag}: duplicated steps {steps}"
        assert steps == [s for s, _ in reference[tag]], f"{tag}: missing steps"
        assert [v for _, v in curves[tag]] == pytest.approx(
            [v for _, v in reference[tag]], rel=1e-5), tag
    for name, tensor in want["model_state"].items():
        torch.testing.assert_close(got["model_state"][name], tensor, msg=name)


def test_twenty_kills_and_resumes_end_exactly_like_an_uninterrupted_run(zygote, tmp_path):
    """Kill, resume, kill … 20 times. A run that reaches its last epoch in between is compared
    with the uninterrupted one and a new run takes the remaining kills."""
    seed = int(os.environ.get("CHAOS_SEED", "20261129"))
    rng = random.Random(seed)
    print(f"chaos seed {seed} (rerun with CHAOS_SEED={seed})")

    t0 = time.monotonic()
    pid, out, err = zygote.start(_train(tmp_path / "whole"))
    assert zygote.wait(pid) == 0, err.read_text()
    whole_s = time.monotonic() - t0
    (whole,) = (tmp_path / "whole").iterdir()

    rounds = 1
    logdir, run_dir, saved, kills, compared = tmp_path / "killed1", None, 0, [], 0
    landed = 0  # signals that reached a running process (a finished one exits 0)
    while landed < KILLS:
        argv = _train(logdir) if run_dir is None else \
            ["train", "--resume", str(run_dir), "--no-progress"]
        sig = rng.choice([signal.SIGKILL] * 4 + [signal.SIGINT] * 4 + [signal.SIGTERM] * 2)
        in_save = run_dir is not None and rng.random() < 0.3
        delay = rng.uniform(0.0, whole_s * 2.5 / EPOCHS)  # up to ~2.5 epochs
        before = _temporaries(run_dir)
        pid, out, err = zygote.start(argv)
        if in_save:
            hit = _wait_for_save(run_dir / "checkpoints", pid, 10)
            moment = "inside a checkpoint save" if hit else "after the run ended"
        else:
            time.sleep(delay)
            moment = f"{delay:.3f} s after the start"
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        code = zygote.wait(pid)
        landed += code != 0
        kills.append(f"{len(kills) + 1}: {signal.Signals(sig).name} {moment} -> exit {code}")
        if sig != signal.SIGKILL:
            _clean_end(code, err, sig)
        else:
            assert code in (-signal.SIGKILL, 0), kills
        if run_dir is None:
            made = list(logdir.iterdir()) if logdir.is_dir() else []
            run_dir = made[0] if made and checkpoints.load_latest(made[0], verbose=False) \
                else None
            if run_dir is None:
                for d in made:  # killed before its first checkpoint: start afresh
                    shutil.rmtree(d)
                print(kills[-1] + ", no checkpoint yet")
                continue
        found = checkpoints.load_latest(run_dir, verbose=False)
        now = found[1]["epoch"] if found else 0
        # never more than the current epoch lost, never a step back
        assert now >= max(saved, _printed_epochs(out) - 1), kills
        if sig != signal.SIGKILL:
            _no_temporaries(run_dir, before)
        saved = now
        kills[-1] += f", epoch {saved}/{EPOCHS} saved (run {rounds})"
        print(kills[-1])
        if saved == EPOCHS:  # finished between the kills: check it, start another run
            _same_as(run_dir, whole)
            compared, rounds = compared + 1, rounds + 1
            logdir, run_dir, saved = tmp_path / f"killed{rounds}", None, 0

    if run_dir is not None:  # the last run, resumed once more without a kill, to the end
        pid, out, err = zygote.start(["train", "--resume", str(run_dir), "--no-progress"])
        assert zygote.wait(pid) == 0, err.read_text()
        _no_temporaries(run_dir)
        _same_as(run_dir, whole)
        compared += 1
    print(f"{landed} kills ({len(kills)} signals sent); {compared} interrupted run(s) equal to "
          "the uninterrupted one")
    assert compared >= 1


@pytest.mark.parametrize(("at", "count", "sig"), [
    ("step", 9, signal.SIGINT),        # inside an epoch (the second one)
    ("evaluate", 1, signal.SIGTERM),   # during the first evaluation
    ("flush", 3, signal.SIGINT),       # while TensorBoard's writer flushes
    ("save", 2, signal.SIGTERM),       # halfway through writing a checkpoint
    ("close", 1, signal.SIGINT),       # while the writer closes at the end
])
def test_a_signal_at_a_named_moment_is_clean(zygote, tmp_path, at, count, sig):
    logdir = tmp_path / "runs"
    argv = ["train", "--recipe", "original", "--epochs", "3", "--limit", "40", "--batch-size",
            "10", "--device", "cpu", "--logdir", str(logdir)]  # with progress bars (tqdm)
    pid, out, err = zygote.start(argv, {"at": at, "count": count, "signal": int(sig)})
    code = zygote.wait(pid)
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err.read_text()
    _clean_end(code, err, sig)
    (run_dir,) = logdir.iterdir()
    _no_temporaries(run_dir)
    found = checkpoints.load_latest(run_dir, verbose=False)
    text = err.read_text("utf-8")
    if found is None:
        assert "no epoch had finished" in text
    else:  # the close at the very end: the run had finished and saved everything
        assert f"--resume {run_dir}" in text or "everything is saved" in text, text
        assert found[1]["global_step"] == 4 * found[1]["epoch"]
    steps = [s for s, _ in read_scalars(run_dir).get("test_accuracy", [])]
    assert steps == [4 * (i + 1) for i in range(len(steps))]  # every event file readable


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_imports_is_clean(tmp_path, cache_dir, sig):
    """``python -m course_utils`` for real: the signal comes while torch is being imported."""
    env = course_env(cache_dir)
    err = tmp_path / "err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_utils", "train", "--logdir", str(tmp_path / "runs")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the handlers are in place (SigCgt has SIGTERM)
        caught = re.search(r"^SigCgt:\s*([0-9a-f]+)", status.read_text(), re.M)
        if caught and int(caught.group(1), 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.002)
    proc.send_signal(sig)
    code = proc.wait(120)
    _clean_end(code, err, sig)
    assert code != 0
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
