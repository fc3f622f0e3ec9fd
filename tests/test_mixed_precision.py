"""Mixed precision (appendix A): a recipe's ``precision``, ``devices.autocast_dtype`` and the
engine's ``amp_dtype`` — forward passes under ``torch.autocast``, losses in float32."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import devices, engine, recipes
from course_utils.loaders import TensorLoader


class Probe(nn.Module):
    """A linear classifier that records, at every forward, the dtype its layer computes in,
    whether the model is training and whether gradients are recorded."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 10)
        self.seen = []

    def forward(self, x):
        out = self.fc(x.flatten(1))
        self.seen.append((out.dtype, self.training, torch.is_grad_enabled()))
        return out


def _loader(n=40, batch_size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return TensorLoader(images, labels, batch_size=batch_size)


def test_autocast_dtype_for_each_precision_and_device(monkeypatch, capsys):
    assert devices.autocast_dtype("float32", "cpu") is None
    assert devices.autocast_dtype("bfloat16", "cpu") is torch.bfloat16
    assert devices.autocast_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match=r"unknown precision 'fp8'.*bfloat16.*float32"):
        devices.autocast_dtype("fp8", "cpu")
    # a GPU without bfloat16 (a T4): float32, with a note naming the GPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    assert devices.autocast_dtype("bfloat16", "cuda", verbose=True) is None
    assert "Tesla T4 has no bfloat16: training in float32" in capsys.readouterr().out
    assert devices.autocast_dtype("bfloat16", "cuda") is None
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.autocast_dtype("bfloat16", "cuda") is torch.bfloat16
    assert devices.autocast_dtype("float32", "cuda") is None
    # Apple's MPS: float32
    assert devices.autocast_dtype("bfloat16", "mps", verbose=True) is None
    assert "MPS" in capsys.readouterr().out


@pytest.mark.parametrize("amp_dtype, computed", [(None, torch.float32),
                                                  (torch.bfloat16, torch.bfloat16)])
def test_train_one_epoch_runs_the_forward_pass_in_the_autocast_dtype(amp_dtype, computed):
    torch.manual_seed(0)
    model = Probe()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights stay put
    loader = _loader()
    mean, step = engine.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, "cpu",
                                        progress=False, amp_dtype=amp_dtype)
    assert step == 3
    assert model.seen == [(computed, True, True)] * 3
    # the mean loss per image: float32 cross-entropy of the logits as autocast computes them
    expected, n = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp_dtype is not None):
                logits = model.fc(x.flatten(1))
            assert logits.dtype == computed
            expected += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            n += len(y)
    assert mean == pytest.approx(expected / n, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("amp_dtype, computed", [(None, torch.float32),
                                                  (torch.bfloat16, torch.bfloat16)])
def test_evaluate_runs_in_the_autocast_dtype(amp_dtype, computed):
    torch.manual_seed(0)
    model = Probe()
    metrics = engine.evaluate(model, _loader(), nn.CrossEntropyLoss(), "cpu", amp_dtype)
    assert model.seen == [(computed, False, False)] * 3
    assert metrics["images"] == 40 and 0.0 <= metrics["accuracy"] <= 1.0
    assert isinstance(metrics["loss"], float)


def test_fit_passes_the_autocast_dtype_to_training_and_testing():
    torch.manual_seed(0)
    model = Probe()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = engine.fit(model, _loader(), _loader(seed=1), epochs=2, optimizer=optimizer,
                         loss_fn=nn.CrossEntropyLoss(), device="cpu", progress=False,
                         amp_dtype=torch.bfloat16)
    assert len(history) == 2
    # per epoch: 3 training forwards (training, with gradients), 3 test forwards (eval, none)
    epoch = [(torch.bfloat16, True, True)] * 3 + [(torch.bfloat16, False, False)] * 3
    assert model.seen == epoch * 2


def test_bfloat16_training_learns_like_float32():
    """The same seeded run in both precisions: the loss falls in both and ends close."""
    results = {}
    for amp_dtype in (None, torch.bfloat16):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
        g = torch.Generator().manual_seed(4)
        images = torch.randint(0, 256, (64, 3, 4, 4), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (64,), generator=g)
        loader = TensorLoader(images, labels, batch_size=64)  # one fixed batch
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        losses = [engine.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer,
                                         "cpu", progress=False, amp_dtype=amp_dtype)[0]
                  for _ in range(60)]
        results[amp_dtype] = losses
    for losses in results.values():
        assert losses[-1] < 0.5 * losses[0]
    assert results[torch.bfloat16][-1] == pytest.approx(results[None][-1], abs=0.25)


def test_every_recipe_names_a_known_precision():
    for name, recipe in recipes.RECIPES.items():
        assert recipe.precision in devices.PRECISIONS, name
    assert recipes.RECIPES["original"].precision == "float32"


def test_the_cli_trains_in_the_recipes_precision(monkeypatch, tmp_path):
    seen = {}

    def fake_fit(model, train_loader, test_loader, **kwargs):
        seen.update(kwargs)
        return [{"epoch": 1, "test_accuracy": 0.1}]

    monkeypatch.setattr(engine, "fit", fake_fit)
    for name, recipe in recipes.RECIPES.items():
        settings = recipes.make_settings(name, epochs=1, limit=20, device="cpu",
                                         logdir=tmp_path, progress=False)
        recipes.train(settings)
        assert seen["amp_dtype"] is devices.PRECISIONS[recipe.precision], name


def test_the_deep_recipe_trains_in_bfloat16_from_the_command_line(offline, run_cli, tmp_path):
    """A real (tiny) run of ``--recipe deep``: it says it trains in bfloat16, its checkpoint
    records the precision, and the weights it saves are float32 (autocast changes the
    arithmetic of the forward pass, not the stored weights)."""
    code, out, err = run_cli("train", "--recipe", "deep", "--epochs", "1", "--limit", "300",
                             "--batch-size", "64", "--device", "cpu", "--logdir",
                             str(tmp_path), "--no-progress")
    assert code == 0, err
    assert "model deep-cnn (498,128 parameters)" in out and "device cpu, bfloat16," in out
    (last,) = tmp_path.glob("*/checkpoints/last.pt")  # one run folder, one last checkpoint
    state = torch.load(last, weights_only=True)
    assert state["model_name"] == "deep-cnn" and state["config"]["precision"] == "bfloat16"
    assert {t.dtype for t in state["model_state"].values()} <= {torch.float32, torch.int64}
    assert 0.0 <= state["history"][-1]["test_accuracy"] <= 1.0
