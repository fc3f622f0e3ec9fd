"""Mixed precision (appendix A): which precision a run trains in
(``devices.precision_choice`` — bfloat16 only where the hardware computes it natively), a
recipe's ``precision`` and ``--precision``, and the engine's ``amp_dtype`` — forward passes under
``torch.autocast``, losses in float32."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils import devices, engine, recipes, training
from course_utils.loaders import TensorLoader

# ------------------------------------------------------------ which precision, and why
# every value torch.backends.cpu.get_cpu_capability() documents, and the two that
# devices.detect_cpu_capability() refines "AVX512" into
NO_BF16 = ["DEFAULT", "NO AVX", "AVX2", "AVX512", "SVE256", "VSX", "Z VECTOR"]
WITH_BF16 = ["AVX512_BF16", "AMX_BF16"]


@pytest.mark.parametrize("capability", NO_BF16 + WITH_BF16)
def test_auto_picks_bfloat16_on_a_cpu_only_with_bf16_instructions(capability):
    native = capability in WITH_BF16
    precision, why = devices.precision_choice("auto", "cpu", cpu_capability=capability)
    assert precision == ("bfloat16" if native else "float32")
    assert devices.choose_precision("auto", "cpu", cpu_capability=capability) == precision
    assert why.startswith("auto: ")
    assert ("no BF16" in why) != native
    if not native:
        assert capability in why  # says what the CPU is
    else:
        assert ("AMX" in why) == (capability == "AMX_BF16")


@pytest.mark.parametrize("capability", NO_BF16 + WITH_BF16)
def test_an_explicit_precision_is_honoured_on_every_cpu(capability):
    assert devices.precision_choice("float32", "cpu", capability) == ("float32", "asked for")
    precision, why = devices.precision_choice("bfloat16", "cpu", capability)
    assert precision == "bfloat16"  # runs everywhere; where it is emulated the note says so
    if capability in WITH_BF16:
        assert why == "asked for"
    else:
        assert why.startswith("asked for") and "slower than float32" in why


def test_cuda_uses_bfloat16_only_where_the_gpu_computes_it(monkeypatch):
    assert devices.choose_precision("auto", "cuda", cuda_bf16=True) == "bfloat16"
    assert devices.choose_precision("bfloat16", "cuda", cuda_bf16=True) == "bfloat16"
    assert devices.choose_precision("float32", "cuda", cuda_bf16=True) == "float32"
    assert devices.precision_choice("auto", "cuda", cuda_bf16=False) == (
        "float32", "auto: this GPU has no native bfloat16")
    precision, why = devices.precision_choice("bfloat16", "cuda", cuda_bf16=False)
    assert precision == "float32" and why.startswith("bfloat16 asked for, but")
    # not given: asks torch, without counting emulated bfloat16 (a T4 emulates it, slowly)
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert devices.choose_precision("auto", "cuda") == "float32"
    assert asked == [False]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.choose_precision("auto", "cuda") == "float32"


@pytest.mark.parametrize("device_type", ["mps", "xpu"])
def test_other_devices_train_in_float32(device_type):
    for requested in ("auto", "bfloat16", "float32"):
        precision, why = devices.precision_choice(requested, device_type)
        assert precision == "float32"
        if requested == "bfloat16":
            assert why.startswith("bfloat16 asked for, but")
    assert "MPS" in devices.precision_choice("auto", "mps")[1]


@pytest.mark.parametrize("bad", ["fp16", "half", "", "Auto", None])
def test_an_unknown_precision_is_refused(bad):
    with pytest.raises(ValueError, match=r"unknown precision.*auto, float32, bfloat16"):
        devices.precision_choice(bad, "cpu", "AMX_BF16")


@pytest.mark.parametrize("torch_says, flags, isa, expected", [
    ("AVX2", {"avx512_bf16", "amx_bf16"}, None, "AVX2"),  # ATEN_CPU_CAPABILITY=avx2 wins
    ("DEFAULT", {"avx512_bf16"}, None, "DEFAULT"),
    ("AVX512", set(), None, "AVX512"),                    # Skylake/Ice Lake: no BF16
    ("AVX512", {"avx512_bf16"}, None, "AVX512_BF16"),     # Cooper Lake, AMD Zen 4/5
    ("AVX512", {"avx512_bf16", "amx_bf16"}, None, "AMX_BF16"),  # Sapphire Rapids on
    ("AVX512", {"avx512_bf16", "amx_bf16"}, "ALL", "AMX_BF16"),
    ("AVX512", {"avx512_bf16", "amx_bf16"}, "avx512_core_bf16", "AVX512_BF16"),
    ("AVX512", {"avx512_bf16", "amx_bf16"}, "AVX512_CORE", "AVX512"),
    ("AVX512", {"avx512_bf16", "amx_bf16"}, "AVX2", "AVX512"),
])
def test_detect_cpu_capability_refines_torchs_answer(monkeypatch, torch_says, flags, isa,
                                                       expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: torch_says)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: set(flags))
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if isa is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert devices.detect_cpu_capability() == expected


def test_the_cpu_flags_agree_with_proc_cpuinfo(monkeypatch):
    """PyTorch's cpuinfo and the /proc/cpuinfo fallback give the same flags on this CPU."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags"))
    expected = set(flags.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"}
    assert devices._cpu_flags() == expected
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert devices._cpu_flags() == expected


def test_aten_cpu_capability_avx2_makes_auto_choose_float32():
    """A CPU with BF16 made to run like an AVX2-only one (the benchmark's stand-in) is one."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    code = ("from course_utils import devices; import torch; "
            "print(torch.backends.cpu.get_cpu_capability(), devices.detect_cpu_capability(), "
            "devices.choose_precision('auto', 'cpu'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] != "AVX2":
        pytest.skip(f"this CPU cannot run AVX2 kernels (PyTorch says {out[0]})")
    assert out == ["AVX2", "AVX2", "float32"]


def test_autocast_dtype_follows_the_choice_and_prints_it(monkeypatch, capsys):
    assert devices.autocast_dtype("float32", "cpu") is None
    assert devices.autocast_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    monkeypatch.setattr(devices, "detect_cpu_capability", lambda: "AVX2")
    assert devices.autocast_dtype("auto", "cpu") is None
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(devices, "detect_cpu_capability", lambda: "AMX_BF16")
    assert devices.autocast_dtype("auto", "cpu", verbose=True) is torch.bfloat16
    assert capsys.readouterr().out.startswith("[course_utils] precision: bfloat16 (auto: ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert devices.autocast_dtype("bfloat16", "cuda", verbose=True) is None
    assert "precision: float32 (bfloat16 asked for, but" in capsys.readouterr().out
    assert devices.autocast_dtype("bfloat16", "mps") is None


# ------------------------------------------------------------------ autocast in the engine
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


# --------------------------------------------------------------- recipes and the command
def test_every_recipe_names_a_known_precision_and_none_forces_bfloat16():
    for name, recipe in recipes.RECIPES.items():
        assert recipe.precision in devices.PRECISION_CHOICES, name
        # the old behaviour is gone: on an AVX2-only CPU no recipe trains in bfloat16
        assert devices.choose_precision(recipe.precision, "cpu", "AVX2") == "float32", name
    assert recipes.RECIPES["original"].precision == "float32"
    assert recipes.RECIPES["deep"].precision == "auto"


def test_make_settings_takes_a_precision_and_checks_it(tmp_path):
    assert recipes.make_settings("deep", device="cpu").recipe.precision == "auto"
    chosen = recipes.make_settings("deep", precision="float32", device="cpu")
    assert chosen.recipe.precision == "float32" and chosen.config["precision"] == "float32"
    assert recipes.make_settings("original", precision="bfloat16",
                                 device="cpu").recipe.precision == "bfloat16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        recipes.make_settings("deep", precision="fp16", device="cpu")
    # a resumed run keeps its stored precision unless another is chosen (it is no FIXED one)
    start = {"config": recipes.make_settings("deep", precision="bfloat16",
                                             device="cpu").config}
    resumed = recipes.make_settings(checkpoint=start, resume=tmp_path, device="cpu")
    assert resumed.recipe.precision == "bfloat16"
    again = recipes.make_settings(checkpoint=start, resume=tmp_path, precision="auto", device="cpu")
    assert again.recipe.precision == "auto"


@pytest.mark.parametrize("capability, deep_dtype", [("AVX2", None),
                                                    ("AMX_BF16", torch.bfloat16)])
def test_train_uses_the_chosen_precision_and_says_so_first(monkeypatch, tmp_path, capsys,
                                                          capability, deep_dtype):
    seen = {}

    def fake_fit(model, train_loader, test_loader, **kwargs):
        seen.update(kwargs)
        return [{"epoch": 1, "test_accuracy": 0.1}]

    monkeypatch.setattr(engine, "fit", fake_fit)
    monkeypatch.setattr(devices, "detect_cpu_capability", lambda: capability)
    for name in recipes.RECIPES:
        settings = recipes.make_settings(name, epochs=1, limit=20, device="cpu",
                                         logdir=tmp_path, progress=False)
        training.train(training.Run(settings))
        expected = deep_dtype if name == "deep" else None
        assert seen["amp_dtype"] is expected, name
        used = "float32" if expected is None else "bfloat16"
        assert seen["metadata"]["precision"] == used
        assert seen["metadata"]["config"]["precision"] == recipes.RECIPES[name].precision
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith(f"[course_utils] precision: {used} ("), first
        if name == "deep":
            assert ("no BF16" in first) == (deep_dtype is None), first


def _train(run_cli, tmp_path, *options):
    code, out, err = run_cli("train", "--recipe", "deep", "--epochs", "1", "--limit", "128",
                             "--batch-size", "64", "--device", "cpu", "--logdir",
                             str(tmp_path), "--no-progress", *options)
    assert code == 0, err
    (last,) = tmp_path.glob("*/checkpoints/last.pt")  # one run folder, one last checkpoint
    return out, torch.load(last, weights_only=True)


def test_the_deep_recipe_trains_in_float32_on_a_cpu_without_bf16(offline, run_cli, tmp_path,
                                                                 monkeypatch):
    """A real (tiny) run of ``--recipe deep`` on a CPU that says it is AVX2-only: float32,
    said in the first line, recorded in the checkpoint."""
    monkeypatch.setattr(devices, "detect_cpu_capability", lambda: "AVX2")
    out, state = _train(run_cli, tmp_path)
    first = out.splitlines()[0]
    assert first.startswith("[course_utils] precision: float32 (auto: ") and "AVX2" in first
    assert "model deep-cnn (498,128 parameters)" in out and "bfloat16" not in out
    assert state["config"]["precision"] == "auto" and state["precision"] == "float32"
    assert 0.0 <= state["history"][-1]["test_accuracy"] <= 1.0


def test_the_precision_option_overrides_the_recipe(offline, run_cli, tmp_path, monkeypatch):
    """``--precision bfloat16`` where it is emulated: it trains in bfloat16, says it is slower
    there, and the weights it saves are float32 (autocast changes the arithmetic of the
    forward pass, not the stored weights)."""
    monkeypatch.setattr(devices, "detect_cpu_capability", lambda: "AVX2")
    out, state = _train(run_cli, tmp_path, "--precision", "bfloat16")
    first = out.splitlines()[0]
    assert first.startswith("[course_utils] precision: bfloat16 (asked for; ")
    assert "slower than float32" in first and "device cpu, bfloat16," in out
    assert state["config"]["precision"] == "bfloat16" and state["precision"] == "bfloat16"
    assert {t.dtype for t in state["model_state"].values()} <= {torch.float32, torch.int64}


def test_the_precision_option_rejects_other_values(run_cli, tmp_path):
    code, out, err = run_cli("train", "--precision", "fp16", "--logdir", str(tmp_path))
    assert code == 2 and "--precision" in err and "auto" in err and out == ""
    assert not any(tmp_path.iterdir())
