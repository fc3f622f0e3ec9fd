"""The training engine on the bundled CIFAR-10 sample: learning, metrics, logs, resume."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torchvision
from _helpers import time_training
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.tensorboard import SummaryWriter

from course_utils import checkpoints, data, engine, files, loaders, models
from course_utils.tb import read_scalars

TO_TENSOR = torchvision.transforms.ToTensor()


@pytest.fixture(scope="module")
def sample():
    """128 training and 60 test images of the real bundled sample, as ToTensor datasets."""
    train = data.spread_subset(data.cifar10(True, TO_TENSOR, verbose=False), 128)
    test = data.spread_subset(data.cifar10(False, TO_TENSOR, verbose=False), 60)
    return train, test


def _run(sample, epochs, run_dir=None, resume=False, seed=0, **kw):
    """The original recipe's pieces (Tudui, shuffled DataLoader, SGD) with momentum;
    ``resume=True`` continues from the newest checkpoint in ``run_dir`` (if any)."""
    torch.manual_seed(seed)
    model = models.Tudui()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train = DataLoader(sample[0], batch_size=32, shuffle=True)
    test = DataLoader(sample[1], batch_size=25)
    found = checkpoints.load_latest(run_dir) if resume else None
    history = engine.fit(model, train, test, epochs=epochs, optimizer=optimizer,
                         loss_fn=nn.CrossEntropyLoss(), device="cpu", run_dir=run_dir,
                         checkpoint=found[1] if found else None, progress=False, log_every=1, **kw)
    return model, history


def test_training_fits_one_fixed_batch():
    """Overfit one batch of 32 real images: what any working training loop must manage.

    Ten steps an epoch on the same batch, five epochs. BatchNorm's running statistics then
    match that batch, so ``evaluate`` (eval mode) sees what training saw."""
    xs, ys = data.as_tensors(data.cifar10(train=True, verbose=False))
    keep = data.spread_indices(len(ys), 32)
    norm = (data.CIFAR10_MEAN, data.CIFAR10_STD)
    batch = next(iter(loaders.TensorLoader(xs[keep], ys[keep], batch_size=32, normalize=norm)))
    torch.manual_seed(0)
    model = models.TuduiBN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = engine.evaluate(model, [batch], device="cpu")
    losses = [engine.train_one_epoch(model, [batch] * 10, nn.CrossEntropyLoss(), optimizer,
                                     "cpu", progress=False)[0] for _ in range(5)]
    after = engine.evaluate(model, [batch], device="cpu")
    assert losses[-1] < 0.25 * losses[0], losses
    assert after["loss"] < 0.25 * before["loss"], (before, after)
    assert after["accuracy"] >= 0.9, after  # 32 images memorised; chance is 0.1


def test_evaluate_computes_loss_and_accuracy_exactly():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(53, 10, generator=g)
    labels = torch.randint(0, 10, (53,), generator=g)
    labels[:20] = logits[:20].argmax(1)  # at least 20 right
    model = nn.Linear(10, 10)
    with torch.no_grad():
        model.weight.copy_(torch.eye(10))
        model.bias.zero_()
    model.train()
    loader = DataLoader(TensorDataset(logits, labels), batch_size=7)  # uneven last batch
    result = engine.evaluate(model, loader, nn.CrossEntropyLoss())

    z = logits.detach().double().numpy()
    log_probs = z - z.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    expected_loss = -log_probs[np.arange(53), labels.numpy()].mean()
    expected_acc = float((z.argmax(1) == labels.numpy()).mean())
    assert type(result["accuracy"]) is float and type(result["loss"]) is float
    assert result["accuracy"] == pytest.approx(expected_acc, abs=1e-12)
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["images"] == 53
    assert model.training, "evaluate must put the model back into train mode"


class ModeProbe(nn.Module):
    """A linear layer that records, at every forward, whether it ran in training mode and
    whether autograd was recording (``evaluate`` must use eval mode and no gradients)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.linear(x)


@pytest.mark.parametrize("train_before", [True, False])
def test_evaluate_runs_in_eval_mode_without_gradients(train_before):
    torch.manual_seed(0)
    probe = ModeProbe().train(train_before)
    loader = DataLoader(TensorDataset(torch.randn(10, 4), torch.randint(0, 3, (10,))),
                        batch_size=4)
    engine.evaluate(probe, loader, nn.CrossEntropyLoss(), "cpu")
    assert probe.calls == [(False, False)] * 3  # 3 batches, every one in eval mode, no grad
    assert probe.training is train_before  # the mode it had before
    assert torch.is_grad_enabled()
    probe.calls.clear()
    engine.train_one_epoch(probe, loader, nn.CrossEntropyLoss(),
                           torch.optim.SGD(probe.parameters(), lr=0.1), "cpu", progress=False)
    assert probe.calls == [(True, True)] * 3  # training: train mode, gradients recorded


def _cross_entropy(logits, labels) -> np.ndarray:
    """Per-image cross-entropy, by hand in float64."""
    z = logits.detach().double().numpy()
    z = z - z.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels.numpy()]


def test_train_one_epoch_returns_the_mean_loss_per_image():
    """lr = 0 keeps the weights fixed, so the epoch's loss is the mean of the per-image losses
    of one fixed model; batches of 7 with a last batch of 4 make a mean of batch means, or a
    sum, come out different."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(25, 6, generator=g), torch.randint(0, 5, (25,), generator=g)
    torch.manual_seed(0)
    model = nn.Linear(6, 5)
    with torch.no_grad():
        expected = _cross_entropy(model(x), y).mean()
    loader = DataLoader(TensorDataset(x, y), batch_size=7)
    mean, step = engine.train_one_epoch(model, loader, nn.CrossEntropyLoss(),
                                        torch.optim.SGD(model.parameters(), lr=0.0), "cpu",
                                        step=5, progress=False)
    assert type(mean) is float and mean == pytest.approx(expected, rel=1e-6)
    assert step == 5 + 4  # 4 batches after step 5
    batch_means = np.mean([_cross_entropy(model(a), b).mean() for a, b in loader])
    assert abs(batch_means - expected) > 1e-3  # the test can tell the two apart


def _one_cycle(step, max_lr, total, pct=0.3, div=25.0, final_div=1e4):
    """OneCycleLR's learning rate at ``step`` (cosine warm-up to ``max_lr`` over the first
    ``pct`` of the steps, then cosine down to max_lr/div/final_div), written from its
    definition (Smith & Topin 2018; PyTorch's two-phase form)."""
    start, low = max_lr / div, max_lr / div / final_div
    peak = pct * total - 1
    if step <= peak:
        a, b, t = start, max_lr, step / peak
    else:
        a, b, t = max_lr, low, (step - peak) / (total - 1 - peak)
    return b + (a - b) / 2 * (1 + math.cos(math.pi * t))


def test_the_scheduler_sets_the_learning_rate_of_every_step():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    used = []

    def loss_fn(outputs, labels):  # called once per batch, before optimizer.step()
        used.append(optimizer.param_groups[0]["lr"])
        return nn.functional.cross_entropy(outputs, labels)

    loader = DataLoader(TensorDataset(torch.randn(40, 4), torch.randint(0, 3, (40,))),
                        batch_size=4)
    _, step = engine.train_one_epoch(model, loader, loss_fn, optimizer, "cpu",
                                     scheduler=scheduler, progress=False)
    assert step == 10
    _, step = engine.train_one_epoch(model, loader, loss_fn, optimizer, "cpu",
                                     scheduler=scheduler, step=step, progress=False)
    expected = [_one_cycle(t, 0.1, 20) for t in range(20)]
    assert used == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert used[5] == pytest.approx(0.1) and used[-1] == pytest.approx(0.1 / 25 / 1e4)


def test_fit_logs_scalars_and_writes_checkpoints(sample, tmp_path):
    _, history = _run(sample, 2, run_dir=tmp_path)
    assert [h["epoch"] for h in history] == [1, 2]
    assert [h["step"] for h in history] == [4, 8]  # 128 images / 32 per batch
    for h in history:
        assert all(type(h[k]) is float for k in ("train_loss", "test_loss", "test_accuracy"))
        assert 0 <= h["test_accuracy"] <= 1 and math.isfinite(h["test_loss"])
    scalars = read_scalars(tmp_path)
    assert [s for s, _ in scalars["train_loss"]] == list(range(1, 9))
    assert [s for s, _ in scalars["test_accuracy"]] == [4, 8]
    assert [v for _, v in scalars["test_accuracy"]] == pytest.approx(
        [h["test_accuracy"] for h in history])
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["epoch_001.pt", "epoch_002.pt", "last.pt"]
    last = checkpoints.load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["epoch"] == 2 and last["global_step"] == 8 and last["history"] == history


def test_resume_gives_exactly_the_uninterrupted_run(sample, tmp_path):
    whole, history_whole = _run(sample, 3, run_dir=tmp_path / "whole")
    _run(sample, 2, run_dir=tmp_path / "split")
    # a new session: different seed and fresh weights, everything must come from the checkpoint
    resumed, history = _run(sample, 3, run_dir=tmp_path / "split", resume=True, seed=99)

    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), f"{name} differs after resume"
    keys = ("epoch", "step", "train_loss", "test_loss", "test_accuracy", "lr")
    assert [{k: h[k] for k in keys} for h in history] == \
        [{k: h[k] for k in keys} for h in history_whole]
    scalars = read_scalars(tmp_path / "split")
    assert [s for s, _ in scalars["train_loss"]] == list(range(1, 13))
    assert [s for s, _ in scalars["test_loss"]] == [4, 8, 12]


def test_resume_hides_what_an_interrupted_session_logged(sample, tmp_path):
    _run(sample, 1, run_dir=tmp_path)
    # the killed session got 2 steps into epoch 2 and was in the middle of saving
    with SummaryWriter(str(tmp_path)) as w:
        for step in (5, 6):
            w.add_scalar("train_loss", 99.0, step)
    stale = tmp_path / "checkpoints" / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")

    _, history = _run(sample, 2, run_dir=tmp_path, resume=True)
    assert [h["epoch"] for h in history] == [1, 2]
    scalars = read_scalars(tmp_path)
    assert 99.0 not in [v for _, v in scalars["train_loss"]]
    assert [s for s, _ in scalars["train_loss"]] == list(range(1, 9))
    assert [s for s, _ in scalars["test_accuracy"]] == [4, 8]
    assert not stale.exists()


def test_resume_skips_an_unreadable_last_checkpoint(sample, tmp_path, capsys):
    _run(sample, 2, run_dir=tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    blob = last.read_bytes()
    last.unlink()  # last.pt is a hard link of epoch_002.pt: do not truncate both
    last.write_bytes(blob[: len(blob) // 2])
    (tmp_path / "checkpoints" / "epoch_002.pt").write_bytes(b"")
    path, state = checkpoints.load_latest(tmp_path)
    out = capsys.readouterr().out
    assert "skipping" in out and "last.pt" in out and "epoch_002.pt" in out
    assert path.name == "epoch_001.pt" and state["epoch"] == 1
    _, history = _run(sample, 3, run_dir=tmp_path, resume=True)
    said = [line for line in capsys.readouterr().out.splitlines() if "resumed" in line]
    assert len(said) == 1 and said[0].startswith("[course_utils] "), said  # the course's line
    assert "epoch 1" in said[0] and "step 4" in said[0], said
    assert [h["step"] for h in history] == [4, 8, 12]


def test_resume_prefers_an_epoch_file_newer_than_last(sample, tmp_path):
    _run(sample, 2, run_dir=tmp_path)
    folder = tmp_path / "checkpoints"
    files.atomic_copy(folder / "epoch_001.pt", folder / "last.pt")  # killed before update
    path, state = checkpoints.load_latest(tmp_path)
    assert path.name == "epoch_002.pt" and state["epoch"] == 2


def test_resume_with_nothing_to_resume_starts_fresh(sample, tmp_path, capsys):
    assert checkpoints.load_latest(tmp_path) is None
    _, history = _run(sample, 1, run_dir=tmp_path, resume=True)
    assert "resumed" not in capsys.readouterr().out
    assert [h["epoch"] for h in history] == [1]


def test_resume_of_a_finished_run_trains_no_more(sample, tmp_path, capsys):
    _, first = _run(sample, 1, run_dir=tmp_path)
    _, again = _run(sample, 1, run_dir=tmp_path, resume=True)
    assert again == first
    assert "nothing to do" in capsys.readouterr().out


def test_fit_stores_metadata_in_every_checkpoint(sample, tmp_path):
    norm = (data.CIFAR10_MEAN, data.CIFAR10_STD)
    _run(sample, 1, run_dir=tmp_path, model_name="tudui", metadata={"normalize": norm})
    state = checkpoints.load_checkpoint(tmp_path / "checkpoints" / "epoch_001.pt")
    assert state["normalize"] == norm and state["model_name"] == "tudui"
    with pytest.raises(ValueError, match="reserved"):
        _run(sample, 1, metadata={"epoch": 3})


def test_divergence_between_logged_steps_is_caught_at_the_epoch_end(sample):
    """log_every larger than the epoch: the epoch's mean loss is checked too."""
    torch.manual_seed(0)
    model = models.Tudui()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(FloatingPointError, match=r"^training diverged: the loss became "
                       r"(nan|inf) by step 4\. Lower"):
        engine.train_one_epoch(model, DataLoader(sample[0], batch_size=32),
                               nn.CrossEntropyLoss(), optimizer, "cpu", log_every=1000,
                               progress=False)


def test_divergence_stops_with_a_clear_error(sample):
    torch.manual_seed(0)
    model = models.Tudui()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(FloatingPointError, match=r"^training diverged: the loss became "
                       r"(nan|inf) by step \d+\. Lower the learning rate \(e\.g\. lr 0\.01\) "
                       r"or add BatchNorm \(model tudui-bn\), then start again\.$"):
        engine.fit(model, DataLoader(sample[0], batch_size=32), DataLoader(sample[1]),
                   epochs=1, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
                   device="cpu", progress=False, log_every=1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "epochs"),
    (dict(epochs=1.5), "epochs"),
    (dict(epochs=1, metadata={"model_state": 1}), "reserved"),
])
def test_fit_rejects_bad_arguments(sample, kwargs, message):
    torch.manual_seed(0)
    model = models.Tudui()
    with pytest.raises(ValueError, match=message):
        engine.fit(model, [], [], optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                   loss_fn=nn.CrossEntropyLoss(), device="cpu", **kwargs)


def test_fit_owns_no_settings(sample):
    """The loss and the device are the caller's choice: leaving one out is an error."""
    torch.manual_seed(0)
    model = models.Tudui()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="loss_fn"):
        engine.fit(model, [], [], epochs=1, optimizer=optimizer, device="cpu")
    with pytest.raises(TypeError, match="device"):
        engine.fit(model, [], [], epochs=1, optimizer=optimizer, loss_fn=nn.CrossEntropyLoss())


def test_empty_loader_is_reported():
    torch.manual_seed(0)
    model = models.Tudui()
    with pytest.raises(ValueError) as err:
        engine.evaluate(model, [], device="cpu")
    assert str(err.value) == "the evaluation loader produced no batches (empty data set?)."
    with pytest.raises(ValueError) as err:
        engine.train_one_epoch(model, [], nn.CrossEntropyLoss(),
                               torch.optim.SGD(model.parameters(), lr=0.1), "cpu")
    assert str(err.value) == "the training loader produced no batches (empty data set?)."


def test_train_one_epoch_defaults_bar_and_logging(capsys, tmp_path):
    """Defaults: counts steps from 0, logs every 10th step, shows a progress bar named
    "train" counting batches, and removes it when the epoch ends."""
    g = torch.Generator().manual_seed(5)
    ds = TensorDataset(torch.randn(84, 4, generator=g), torch.randint(0, 3, (84,), generator=g))
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    with SummaryWriter(str(tmp_path)) as writer:
        _, step = engine.train_one_epoch(model, DataLoader(ds, batch_size=4),
                                         nn.CrossEntropyLoss(),
                                         torch.optim.SGD(model.parameters(), lr=0.1), "cpu",
                                         writer=writer)
    assert step == 21
    assert [s for s, _ in read_scalars(tmp_path)["train_loss"]] == [10, 20]
    err = capsys.readouterr().err
    assert "train: " in err and "batch/s" in err and "/21 [" in err  # of 21 batches
    assert re.search(r"loss=\d+\.\d{3}\]", err)  # the logged loss beside the bar
    assert err.endswith("\r")  # leave=False: the finished bar is wiped from the line


# ----------------------------------------------------------------------------- devices
@pytest.mark.parametrize("gpus, mps, auto, names", [
    (0, False, "cpu", ["cpu"]),
    (0, True, "mps", ["mps", "cpu"]),
    (2, False, "cuda", ["cuda:0", "cuda:1", "cpu"]),
    (1, True, "cuda", ["cuda:0", "mps", "cpu"]),
])
def test_pick_device_and_available_devices(monkeypatch, gpus, mps, auto, names):
    """Each kind of machine simulated (CUDA GPUs, Apple MPS, CPU only): auto picks
    cuda → mps → cpu, and asking for a device that is not there names what is."""
    from course_utils import devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(devices, "_mps_available", lambda: mps)
    assert devices.available_devices() == names
    assert devices.pick_device("auto", verbose=False) == torch.device(auto)
    assert devices.pick_device(None, verbose=False) == torch.device(auto)
    assert devices.pick_device(" cpu ", verbose=False) == torch.device("cpu")
    assert devices.pick_device(torch.device("cpu"), verbose=False) == torch.device("cpu")
    for bad in ("gpu", "meta", f"cuda:{gpus}"):
        with pytest.raises(ValueError, match="available|not a device|not supported") as err:
            devices.pick_device(bad, verbose=False)
        assert ", ".join(names) in str(err.value) or "not a device" in str(err.value)
    if gpus:
        assert devices.pick_device("cuda:1" if gpus > 1 else "cuda", verbose=False) == \
            torch.device("cuda:1" if gpus > 1 else "cuda")
        with pytest.raises(ValueError, match=f"this machine has {gpus} GPU"):
            devices.pick_device(f"cuda:{gpus}", verbose=False)
    else:
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            devices.pick_device("cuda", verbose=False)
    if mps:
        assert devices.pick_device("mps", verbose=False) == torch.device("mps")
    else:
        with pytest.raises(ValueError, match="MPS is not available"):
            devices.pick_device("mps", verbose=False)


def test_pick_device_says_what_it_picked(monkeypatch, capsys):
    from course_utils import devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    devices.pick_device("auto")
    assert capsys.readouterr().out == "[course_utils] training on cpu (cpu)\n"
    devices.pick_device("cpu", verbose=False)
    assert capsys.readouterr().out == ""


def test_time_training_measures_real_steps():
    torch.manual_seed(0)

    model = models.Tudui()
    before = [p.detach().clone() for p in model.parameters()]
    speed = time_training(model, "cpu", batch_size=8, steps=2, warmup=1)
    assert speed > 0 and math.isfinite(speed)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


# ------------------------------------------------------------------ fit's reporting
def _tiny_fit(capsys, **kwargs):
    """fit on 24 random 4-feature points (3 batches of 8), 2 epochs; returns (history,
    stdout, stderr)."""
    ds = TensorDataset(*_tiny_data())
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    capsys.readouterr()
    history = engine.fit(model, DataLoader(ds, batch_size=8), DataLoader(ds, batch_size=10),
                         epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                         loss_fn=nn.CrossEntropyLoss(label_smoothing=0.2), device="cpu",
                         **kwargs)
    out, err = capsys.readouterr()
    return model, history, out, err


def test_fit_history_and_epoch_lines(capsys):
    model, history, out, err = _tiny_fit(capsys, progress=False, verbose=True)
    assert err == ""  # no progress bars
    assert [sorted(h) for h in history] == [sorted(
        ["epoch", "step", "train_loss", "test_loss", "test_accuracy", "lr", "seconds",
         "images_per_second"])] * 2
    lines = out.splitlines()
    assert len(lines) == 2
    for h, line in zip(history, lines, strict=True):
        assert line == (f"epoch {h['epoch']}/2: train loss {h['train_loss']:.4f}, test loss "
                        f"{h['test_loss']:.4f}, test accuracy {h['test_accuracy']:.4f} "
                        f"({h['seconds']:.1f} s)")
        assert 0 < h["seconds"] < 60 and h["lr"] == 0.1
        assert h["images_per_second"] == pytest.approx(24 / h["seconds"])
    # the test loss is measured with the caller's loss function (label smoothing here)
    loader = DataLoader(TensorDataset(*_tiny_data()), batch_size=10)
    final = engine.evaluate(model, loader, nn.CrossEntropyLoss(label_smoothing=0.2), "cpu")
    assert history[-1]["test_loss"] == pytest.approx(final["loss"], rel=1e-6)
    assert history[-1]["test_accuracy"] == final["accuracy"]


def _tiny_data():
    g = torch.Generator().manual_seed(5)
    return torch.randn(24, 4, generator=g), torch.randint(0, 3, (24,), generator=g)


@pytest.mark.parametrize("progress, verbose, bars, lines", [
    (False, None, False, False), (True, None, True, True),
    (True, False, True, False), (False, True, False, True),
])
def test_fit_progress_bars_and_epoch_lines_follow_the_flags(capsys, progress, verbose, bars,
                                                            lines):
    _, _, out, err = _tiny_fit(capsys, progress=progress, verbose=verbose)
    assert ("epoch 1/2" in err and "epoch 2/2" in err) is bars, err
    assert out.count("epoch ") == (2 if lines else 0), out
    assert "nothing to do" not in out


def test_fit_defaults_show_bars_and_log_every_10_steps(capsys, tmp_path):
    g = torch.Generator().manual_seed(5)
    ds = TensorDataset(torch.randn(96, 4, generator=g), torch.randint(0, 3, (96,), generator=g))
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    engine.fit(model, DataLoader(ds, batch_size=4), DataLoader(ds, batch_size=32), epochs=1,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
               loss_fn=nn.CrossEntropyLoss(), device="cpu", run_dir=tmp_path)
    out, err = capsys.readouterr()
    assert "epoch 1/1" in err and out.startswith("epoch 1/1: train loss")
    assert [s for s, _ in read_scalars(tmp_path)["train_loss"]] == [10, 20]  # 24 steps


def test_a_finished_run_says_so_in_one_line(sample, tmp_path, capsys):
    _run(sample, 1, run_dir=tmp_path)
    capsys.readouterr()
    _run(sample, 1, run_dir=tmp_path, resume=True)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "[course_utils] already trained for 1 epoch(s) ≥ epochs=1; nothing to do (ask for "
        "more epochs to continue).")


def test_fit_steps_saves_and_resumes_the_scheduler(tmp_path):
    """OneCycleLR through fit: the rate of every epoch's end follows the schedule, the
    checkpoint holds the scheduler's position, and a resumed run continues it exactly."""
    x, y = _tiny_data()

    def run(run_dir, epochs, resume=False):
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
        found = checkpoints.load_latest(run_dir, verbose=False) if resume else None
        history = engine.fit(model, DataLoader(TensorDataset(x, y), batch_size=8),
                             DataLoader(TensorDataset(x, y), batch_size=24), epochs=epochs,
                             optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(),
                             device="cpu", scheduler=scheduler, run_dir=run_dir,
                             checkpoint=found[1] if found else None, progress=False)
        return model, history

    whole, history = run(tmp_path / "whole", 3)
    assert [h["lr"] for h in history] == pytest.approx([_one_cycle(t, 0.1, 10)
                                                        for t in (3, 6, 9)])
    state = checkpoints.load_checkpoint(tmp_path / "whole" / "checkpoints" / "epoch_002.pt")
    assert state["scheduler_state"]["last_epoch"] == 6
    assert set(state["rng_state"]) == ({"cpu", "cuda"} if torch.cuda.is_available() else
                                       {"cpu"})  # one process: no per-rank states
    run(tmp_path / "split", 2)
    resumed, again = run(tmp_path / "split", 3, resume=True)
    assert [h["lr"] for h in again] == [h["lr"] for h in history]
    assert torch.equal(whole.weight, resumed.weight)


def test_a_checkpoint_without_epoch_or_step_counts_from_zero(tmp_path, capsys):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    state = {"model_state": model.state_dict(), "epoch": None, "global_step": None}
    x, y = _tiny_data()
    history = engine.fit(model, DataLoader(TensorDataset(x, y), batch_size=8),
                         DataLoader(TensorDataset(x, y), batch_size=24), epochs=2,
                         optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                         loss_fn=nn.CrossEntropyLoss(), device="cpu", checkpoint=state,
                         progress=False)
    assert [(h["epoch"], h["step"]) for h in history] == [(1, 3), (2, 6)]
    assert "resumed at epoch 0, step 0" in capsys.readouterr().out


class _Batches:
    """A loader without a dataset: only ``len`` and (optionally) ``batch_size``."""

    def __init__(self, n, batch_size=None):
        self.n, self.batch_size = n, batch_size

    def __len__(self):
        return self.n


class _WithDataset(_Batches):
    """A loader with a dataset but no ``drop_last`` attribute (counts the whole dataset)."""

    def __init__(self, dataset, n, batch_size=None):
        super().__init__(n, batch_size)
        self.dataset = dataset


def test_images_per_epoch_for_each_kind_of_loader():
    ds = TensorDataset(torch.zeros(25, 1), torch.zeros(25))
    cases = [(DataLoader(ds, batch_size=7), 25), (DataLoader(ds, batch_size=7, drop_last=True), 21),
             (loaders.TensorLoader(torch.zeros(25, 1, 2, 2, dtype=torch.uint8), torch.zeros(25),
                                   batch_size=7, drop_last=True), 21),
             (_Batches(4, batch_size=7), 28), (_Batches(4), 4), ([(0, 0)] * 3, 3),
             (_WithDataset(ds, 4, batch_size=7), 25)]
    for loader, images in cases:
        count = engine._count(loader)
        assert type(count) is int and count == images, (loader, count)


def test_rng_state_carries_every_cuda_generator(monkeypatch):
    """The CUDA part, simulated: saved when CUDA is there, restored only onto the same number
    of GPUs (a checkpoint from a 2-GPU machine resumes on a 1-GPU machine)."""
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all",
                        lambda: [torch.tensor([1], dtype=torch.uint8),
                                 torch.tensor([2], dtype=torch.uint8)])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = engine.get_rng_state()
    assert set(state) == {"cpu", "cuda"} and [s.item() for s in state["cuda"]] == [1, 2]
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    saved = engine.get_rng_state()
    torch.rand(5)
    engine.set_rng_state(saved)
    assert torch.equal(torch.rand(3), expected)
    assert [[s.item() for s in r] for r in restored] == [[1, 2]]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    engine.set_rng_state(saved)  # 2 saved GPU states, 1 GPU here: CPU state only
    engine.set_rng_state({"cpu": saved["cpu"]})  # saved without CUDA
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    engine.set_rng_state(saved)  # saved with CUDA, no CUDA here
    assert len(restored) == 1
    engine.set_rng_state(None)  # a checkpoint without random-number state: nothing happens
    engine.set_rng_state({})


class _EpochLoader(DataLoader):
    """A loader that records ``set_epoch`` calls (as DistributedSampler/sharded loaders get)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epochs = []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


def test_fit_tells_the_loader_each_epoch(tmp_path):
    x, y = _tiny_data()
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = _EpochLoader(TensorDataset(x, y), batch_size=8)
    kwargs = dict(optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), device="cpu",
                  run_dir=tmp_path, progress=False)
    engine.fit(model, loader, DataLoader(TensorDataset(x, y), batch_size=24), epochs=2,
               **kwargs)
    assert loader.epochs == [0, 1]
    loader.epochs.clear()
    start = checkpoints.load_latest(tmp_path, verbose=False)[1]
    engine.fit(model, loader, DataLoader(TensorDataset(x, y), batch_size=24), epochs=3,
               checkpoint=start, **kwargs)
    assert loader.epochs == [2]


def test_each_torchrun_process_resumes_its_own_random_numbers(monkeypatch):
    """Under torchrun the checkpoint holds every process's random-number state under "ranks"
    (rank 0's at the top, for a one-process resume); each process takes back its own, so its
    augmentation goes on with its own sequence."""
    from course_utils import distributed

    torch.manual_seed(1)
    one = engine.get_rng_state()
    torch.manual_seed(2)
    two = engine.get_rng_state()
    monkeypatch.setattr(distributed, "gather", lambda value: [one, two])  # two processes
    saved = engine._rng_states()
    assert set(saved) == set(one) | {"ranks"} and saved["ranks"] == [one, two]
    assert torch.equal(saved["cpu"], one["cpu"])  # rank 0's at the top
    model = nn.Linear(2, 2)
    checkpoint = {"model_state": model.state_dict(), "epoch": 1, "global_step": 4,
                  "rng_state": saved}
    expected = {}
    for rank, seed in ((0, 1), (1, 2)):
        torch.manual_seed(seed)
        expected[rank] = torch.rand(3)
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        monkeypatch.setattr(distributed, "world_size", lambda: 2)
        torch.manual_seed(99)
        engine._restore(checkpoint, model, None, None)
        assert torch.equal(torch.rand(3), expected[rank]), rank
    # a two-process checkpoint resumed in one process: rank 0's state, the one at the top
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    monkeypatch.setattr(distributed, "world_size", lambda: 1)
    torch.manual_seed(99)
    engine._restore(checkpoint, model, None, None)
    assert torch.equal(torch.rand(3), expected[0])
