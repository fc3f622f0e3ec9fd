"""Checkpoint round trips: state_dicts, whole models, GPU-saved files, broken files."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch
from torch import nn

from course_utils import checkpoints, devices, files, models, pretrained, runs
from course_utils.checkpoints import CheckpointError


def _trained_pair():
    """A Tudui after one real SGD step (so the optimizer has momentum buffers)."""
    torch.manual_seed(0)
    model = models.Tudui()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([1, 2, 3, 4]))
    loss.backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))


def _storage_locations(path) -> set[str]:
    """The device tags torch.save wrote beside each storage, read from the archive's pickle
    (independently of torch.load)."""
    class Blank(dict):  # stands in for every class: nothing is imported or run
        def __init__(self, *args, **kwargs):
            super().__init__()

        def __setstate__(self, state):
            pass

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            return Blank

        def persistent_load(self, pid):
            found.add(pid[3])  # ('storage', storage_type, key, location, numel)

    found: set[str] = set()
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        Reader(io.BytesIO(zf.read(name))).load()
    return found


def _names(message: str, *parts: str) -> None:
    """``message`` is one line holding each of ``parts`` (the file or value it is about, and
    key words of what is wrong and what to do): behaviour, not wording."""
    assert "\n" not in message, message
    for part in parts:
        assert part in message, (part, message)


def test_round_trip_restores_model_optimizer_scheduler(tmp_path):
    model, optimizer, scheduler = _trained_pair()
    path = checkpoints.save_checkpoint(tmp_path / "c.pt", model, optimizer, scheduler,
                                       model_name="tudui", epoch=3, history=[{"a": 1.5}])
    fresh = models.Tudui()
    opt2 = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    state = checkpoints.load_checkpoint(path, fresh, opt2, sched2)
    assert _same_weights(model, fresh)
    assert state["epoch"] == 3 and state["history"] == [{"a": 1.5}]
    assert state["model_name"] == "tudui"
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)
    assert sched2.last_epoch == 1
    buf1 = optimizer.state[next(iter(model.parameters()))]["momentum_buffer"]
    buf2 = opt2.state[next(iter(fresh.parameters()))]["momentum_buffer"]
    assert torch.equal(buf1, buf2)


def test_method2_bare_state_dict_loads(tmp_path):
    model, _, _ = _trained_pair()
    torch.save(model.state_dict(), tmp_path / "tudui_method2.pth")
    fresh = models.Tudui()
    state = checkpoints.load_checkpoint(tmp_path / "tudui_method2.pth", fresh)
    assert state["format"] == 0 and _same_weights(model, fresh)


def test_method1_whole_model_needs_trust(tmp_path):
    model, _, _ = _trained_pair()
    path = tmp_path / "tudui_method1.pth"
    torch.save(model, path)
    with pytest.raises(CheckpointError, match="load_whole_model"):
        checkpoints.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="trust=True"):
        checkpoints.load_whole_model(path)
    loaded = checkpoints.load_whole_model(path, trust=True)
    assert isinstance(loaded, models.Tudui) and _same_weights(model, loaded)


def test_class_defined_in_main_cannot_be_unpickled_elsewhere(tmp_path):
    path = tmp_path / "net.pth"
    code = (
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.fc = torch.nn.Linear(2, 2)\n"
        f"torch.save(Net(), {str(path)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(CheckpointError) as info:
        checkpoints.load_whole_model(path, trust=True)
    _names(str(info.value), str(path), "'Net'", "define that class", "'__main__'",
           "state_dict")


def test_gpu_saved_checkpoint_loads_on_cpu_through_map_location(tmp_path, monkeypatch):
    """A file saved on a GPU, opened on a machine without CUDA (simulated on every machine,
    GPU or not): the P32 error, the course's clear message, then map_location="cpu" works."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, optimizer, _ = _trained_pair()
    state = {"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
             "model_name": "tudui", "epoch": 1}
    path = checkpoints.save_with_device_tag(state, tmp_path / "gpu.pt", "cuda:0")
    assert _storage_locations(path) == {"cuda:0"}  # exactly what a GPU save records
    assert _storage_locations(files.atomic_save(state, tmp_path / "cpu.pt")) == {"cpu"}

    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)  # the P32 error, without map_location
    with pytest.raises(CheckpointError, match="map_location='cpu'"):
        checkpoints.load_checkpoint(path, map_location=None)
    fresh = models.Tudui()
    loaded = checkpoints.load_checkpoint(path, fresh)  # map_location="cpu" by default
    assert all(t.device.type == "cpu" for t in loaded["model_state"].values())
    assert _same_weights(model, fresh)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(raw["model_state"]["model.0.weight"], model.model[0].weight)


def test_architecture_mismatch_names_the_layers(tmp_path):
    path = checkpoints.save_checkpoint(tmp_path / "t.pt", models.Tudui(), model_name="tudui")
    with pytest.raises(CheckpointError) as info:
        checkpoints.load_checkpoint(path, models.TuduiBN())
    text = str(info.value)
    assert "t.pt" in text and "TuduiBN" in text and "model_name" in text
    assert "missing" in text and "unexpected" in text


def test_wrapped_model_keys_are_accepted(tmp_path):
    model, _, _ = _trained_pair()
    prefixed = {f"module.{k}": v for k, v in model.state_dict().items()}  # DataParallel style
    torch.save(prefixed, tmp_path / "dp.pt")
    fresh = models.Tudui()
    checkpoints.load_checkpoint(tmp_path / "dp.pt", fresh)
    assert _same_weights(model, fresh)


@pytest.mark.parametrize("content, name", [
    (b"", "empty.pt"),
    (b"this is not a checkpoint", "text.pt"),
])
def test_unreadable_files_give_a_clear_error(tmp_path, content, name):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match=name):
        checkpoints.load_checkpoint(tmp_path / name)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = checkpoints.save_checkpoint(tmp_path / "full.pt", models.Tudui())
    blob = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CheckpointError, match="cut.pt"):
        checkpoints.load_checkpoint(tmp_path / "cut.pt")


def test_other_dicts_and_objects_are_rejected(tmp_path):
    torch.save({"lr": 0.1, "epochs": 3}, tmp_path / "settings.pt")
    with pytest.raises(CheckpointError, match="neither"):
        checkpoints.load_checkpoint(tmp_path / "settings.pt")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list"):
        checkpoints.load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        checkpoints.load_checkpoint(tmp_path / "nope.pt")


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = files.atomic_save({"w": torch.ones(3)}, tmp_path / "last.pt")
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 — lambdas cannot be pickled
        files.atomic_save({"w": torch.zeros(3), "f": lambda: 0}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_atomic_copy_and_stale_temporaries(tmp_path):
    src = files.atomic_save({"w": torch.arange(4)}, tmp_path / "epoch_001.pt")
    files.atomic_copy(src, tmp_path / "last.pt")
    assert torch.equal(torch.load(tmp_path / "last.pt")["w"], torch.arange(4))
    files.atomic_save({"w": torch.arange(5)}, src)  # replaces, does not write through
    assert torch.equal(torch.load(tmp_path / "last.pt")["w"], torch.arange(4))
    (tmp_path / ".last.pt.x1.tmp").write_bytes(b"partial")
    removed = files.remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".last.pt.x1.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_001.pt", "last.pt"]


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    first = runs.new_run_dir(tmp_path, "exp")
    second = runs.new_run_dir(tmp_path, "exp")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("_exp")


def test_load_pretrained_offline_and_cached(tmp_path, monkeypatch):
    from torchvision.models import Weights

    from course_utils.download import OfflineError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = Weights(url="https://download.pytorch.org/models/tudui-course.pth",
                      transforms=None, meta={"_file_size": 0.6})

    def builder(weights):
        model = models.Tudui()
        model.load_state_dict(torch.hub.load_state_dict_from_url(weights.url, progress=False))
        return model

    path = pretrained.pretrained_file(weights)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "tudui-course.pth"
    with pytest.raises(OfflineError, match="downloading is off"):
        pretrained.load_pretrained(builder, weights, download=False)
    with pytest.raises(OfflineError, match="download.pytorch.org cannot be reached"):
        pretrained.load_pretrained(builder, weights)  # the test suite blocks the network
    original, _, _ = _trained_pair()
    path.parent.mkdir(parents=True)
    torch.save(original.state_dict(), path)  # as if downloaded earlier
    loaded = pretrained.load_pretrained(builder, weights, download=False)
    assert _same_weights(original, loaded)


# ------------------------------------------------------------------ what the file holds
def test_saved_file_is_the_documented_plain_dict(tmp_path):
    model, optimizer, scheduler = _trained_pair()
    rng = {"torch": torch.get_rng_state()}
    path = checkpoints.save_checkpoint(tmp_path / "c.pt", model, optimizer, scheduler,
                                       model_name="tudui", epoch=2, global_step=40,
                                       history=[{"epoch": 1}], rng_state=rng, normalize=True)
    assert path == tmp_path / "c.pt"
    raw = torch.load(path, weights_only=True)
    assert sorted(raw) == sorted([*checkpoints.KEYS, "normalize"])
    assert raw["format"] == 1 and raw["model_name"] == "tudui" and raw["normalize"] is True
    assert raw["torch_version"] == str(torch.__version__)
    assert (raw["epoch"], raw["global_step"], raw["history"]) == (2, 40, [{"epoch": 1}])
    assert torch.equal(raw["rng_state"]["torch"], rng["torch"])
    assert raw["optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(0.05)
    assert raw["scheduler_state"]["last_epoch"] == 1
    assert list(raw["model_state"]) == list(model.state_dict())
    # only a model: its class name stands in for model_name, the rest is None
    bare = torch.load(checkpoints.save_checkpoint(tmp_path / "bare.pt", model), weights_only=True)
    assert bare["model_name"] == "Tudui"
    assert [bare[k] for k in ("optimizer_state", "scheduler_state", "epoch", "global_step",
                              "history", "rng_state")] == [None] * 6


def test_metadata_may_not_reuse_a_checkpoint_key(tmp_path):
    with pytest.raises(ValueError) as info:
        checkpoints.save_checkpoint(tmp_path / "c.pt", nn.Linear(2, 2), format=2, model_state={})
    _names(str(info.value), "['format', 'model_state']", "reserved")
    assert not (tmp_path / "c.pt").exists()
    checkpoints.check_metadata(None)
    checkpoints.check_metadata({"normalize": True, "classes": ["cat"]})


def _compiled(model: nn.Module) -> nn.Module:
    """torch.compile's wrapper (``OptimizedModule``, the model in ``_orig_mod``); nothing is
    compiled until it is called, and these tests never call it."""
    return torch.compile(model)


def test_wrapped_models_are_saved_and_restored_without_prefixes(tmp_path):
    model, _, _ = _trained_pair()
    for wrap in (nn.DataParallel, _compiled, lambda m: nn.DataParallel(_compiled(m))):
        path = checkpoints.save_checkpoint(tmp_path / "w.pt", wrap(model))
        assert list(torch.load(path)["model_state"]) == list(model.state_dict())
        fresh = models.Tudui()
        checkpoints.load_checkpoint(path, wrap(fresh))  # into a wrapped model as well
        assert _same_weights(model, fresh)
    # a model of one's own with a submodule *named* module is not a wrapper: kept whole
    own = nn.Sequential()
    own.module, own._orig_mod, own.head = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 1)
    path = checkpoints.save_checkpoint(tmp_path / "own.pt", own)
    assert sorted(torch.load(path)["model_state"]) == [
        "_orig_mod.bias", "_orig_mod.weight", "head.bias", "head.weight", "module.bias",
        "module.weight"]
    for prefix in ("_orig_mod.", "module._orig_mod."):  # files saved from wrapped models
        torch.save({prefix + k: v for k, v in model.state_dict().items()}, tmp_path / "p.pt")
        fresh = models.Tudui()
        checkpoints.load_checkpoint(tmp_path / "p.pt", fresh)
        assert _same_weights(model, fresh)


def _layers(**sizes) -> nn.ModuleDict:
    """``nn.Linear(2, n)`` layers named after the keywords (state_dict keys ``a.weight``…)."""
    torch.manual_seed(0)
    return nn.ModuleDict({name: nn.Linear(2, n) for name, n in sizes.items()})


def test_restore_model_names_missing_unexpected_and_misshapen_layers():
    what = ("checkpoint", "different architecture", "ModuleDict", "'model_name'")  # + the fix
    cases = [
        (_layers(a=1, b=1, c=1), _layers(a=1, b=1, c=1, d=1, e=1, f=1),
         "missing ['d.weight', 'd.bias', 'e.weight', 'e.bias']"),
        (_layers(a=1, b=1, c=1, d=1, e=1, f=1), _layers(a=1, b=1, c=1),
         "unexpected ['d.weight', 'd.bias', 'e.weight', 'e.bias']"),
        (_layers(a=1, b=1), _layers(a=2, b=3),
         "shape mismatch ['a.weight: file (1, 2) vs model (2, 2)', "
         "'a.bias: file (1,) vs model (2,)', 'b.weight: file (1, 2) vs model (3, 2)']"),
        (_layers(a=1, x=1), _layers(a=2, b=1),
         "missing ['b.weight', 'b.bias']; unexpected ['x.weight', 'x.bias']; shape mismatch "
         "['a.weight: file (1, 2) vs model (2, 2)', 'a.bias: file (1,) vs model (2,)']"),
    ]
    for saved, target, details in cases:
        before = {k: v.clone() for k, v in target.state_dict().items()}
        with pytest.raises(CheckpointError) as info:
            checkpoints.restore_model(target, saved.state_dict())
        _names(str(info.value), details, *what)
        with pytest.raises(CheckpointError) as info:  # restore() says "checkpoint" too
            checkpoints.restore({"model_state": saved.state_dict()}, target)
        _names(str(info.value), f"({details})", *what)
        assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_restore_skips_what_the_checkpoint_does_not_hold(tmp_path):
    model, optimizer, scheduler = _trained_pair()
    only_model = checkpoints.save_checkpoint(tmp_path / "m.pt", model)
    fresh = models.Tudui()
    opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    checkpoints.load_checkpoint(only_model, fresh, opt, sched)
    assert _same_weights(model, fresh)
    assert opt.param_groups[0]["lr"] == 0.1 and len(opt.state) == 0 and sched.last_epoch == 0
    full = checkpoints.save_checkpoint(tmp_path / "full.pt", model, optimizer, scheduler)
    alone = models.Tudui()
    checkpoints.load_checkpoint(full, alone)  # the model alone: optimizer state left aside
    assert _same_weights(model, alone)
    untouched = models.Tudui()
    weights = [p.clone() for p in untouched.parameters()]
    opt2 = torch.optim.SGD(untouched.parameters(), lr=0.1, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    checkpoints.load_checkpoint(full, None, opt2, sched2)  # optimizer and scheduler only
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05) and sched2.last_epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(weights, untouched.parameters(), strict=True))


# ------------------------------------------------------------------ one message per failure
class _Planted:
    """Unpickling this runs ``os.mkdir(marker)`` — what a hostile file could do with any call."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_load_checkpoint_never_runs_code_from_the_file(tmp_path, monkeypatch):
    # with this variable torch.load unpickles anything unless weights_only=True is passed
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "code-ran"
    torch.save({"model_state": {"w": torch.ones(1)}, "x": _Planted(marker)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt"):
        checkpoints.load_checkpoint(tmp_path / "bad.pt")
    assert not marker.exists()


def _with_pickle(src, dest, pickled: bytes):
    """A copy of the torch zip file ``src`` whose pickle is replaced by ``pickled``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, pickled if name.endswith("/data.pkl") else zin.read(name))
    return dest


def _first_line_of_torch_error(path, exc_type=RuntimeError):
    with pytest.raises(exc_type) as raw:
        torch.load(path, weights_only=True)
    return raw.value


def test_each_unreadable_file_gets_its_own_message(tmp_path):
    def message(path):
        with pytest.raises(CheckpointError) as info:
            checkpoints.load_checkpoint(path)
        return str(info.value)

    fix = ("not a readable PyTorch checkpoint", "pick another checkpoint")
    with pytest.raises(FileNotFoundError) as missing:
        checkpoints.load_checkpoint(tmp_path / "nope.pt")
    _names(str(missing.value), str(tmp_path / "nope.pt"), "does not exist")

    whole = tmp_path / "whole.pth"
    torch.save(models.Tudui(), whole)
    cls = f"{models.Tudui.__module__}.{models.Tudui.__qualname__}"
    _names(message(whole), str(whole), "pickled", f"Unsupported global: GLOBAL {cls}",
           "load_whole_model(path, trust=True)")

    good = checkpoints.save_checkpoint(tmp_path / "good.pt", nn.Linear(2, 2))
    opcode = _with_pickle(good, tmp_path / "opcode.pt", b"\x80\x02S'old string opcode'\n.")
    _names(message(opcode), str(opcode), "(Unsupported operand 83)", "damaged", *fix)

    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    first = str(_first_line_of_torch_error(cut)).splitlines()[0]
    _names(message(cut), str(cut), f"({first})", "truncated", *fix)

    text = tmp_path / "text.pt"
    text.write_bytes(b"this is not a checkpoint")
    exc = _first_line_of_torch_error(text, Exception)
    _names(message(text), str(text), f"({type(exc).__name__}: {exc})", "empty", *fix)

    torch.save([torch.ones(2)], tmp_path / "list.pt")
    listed = tmp_path / "list.pt"
    _names(message(listed), str(listed), "list", "not a checkpoint")
    for content, keys in (({k: 0.1 for k in "abcdef"}, "['a', 'b', 'c', 'd', 'e']"), ({}, "[]")):
        torch.save(content, tmp_path / "d.pt")
        _names(message(tmp_path / "d.pt"), str(tmp_path / "d.pt"), "'model_state'",
               "state_dict", f"(keys {keys})")


@pytest.mark.parametrize("location", ["cuda:0", "xpu:0", "mps:0", "hpu:0"])
def test_a_file_from_a_missing_device_says_map_location(tmp_path, monkeypatch, location):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if location == "mps:0" and devices._mps_available():
        pytest.skip("this machine has Apple's MPS, so an MPS file loads")
    path = checkpoints.save_with_device_tag({"w": torch.ones(2)}, tmp_path / "dev.pt", location)
    first = str(_first_line_of_torch_error(path)).splitlines()[0]
    assert location[:-2] in first.lower()  # torch's own words name the device
    with pytest.raises(CheckpointError) as info:
        checkpoints.load_checkpoint(path, map_location=None)
    _names(str(info.value), str(path), f"({first})", "map_location='cpu'")
    assert torch.equal(checkpoints.load_checkpoint(path)["model_state"]["w"], torch.ones(2))


@pytest.mark.parametrize("message, detail", [
    ("Weights only load failed.\n\tWeightsUnpickler error: Unsupported global: GLOBAL a.B was "
     "not an allowed global by default. Please use ...", "Unsupported global: GLOBAL a.B"),
    ("Weights only load failed. Please file an issue: WeightsUnpickler error: \n\nUnsupported "
     "operand 83\n\nCheck the documentation", "Unsupported operand 83"),
    ("Please file an issue: WeightsUnpickler error: \n\nUnsupported operand 83",
     "Unsupported operand 83"),
    ("Please file an issue: WeightsUnpickler error:", ""),
    ("  \nfirst line\nsecond line", "first line"),
    ("", "unpickling failed"),
])
def test_weights_only_detail_keeps_the_informative_line(message, detail):
    assert checkpoints._weights_only_detail(message) == detail


def test_load_whole_model_messages_and_cpu_default(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as missing:
        checkpoints.load_whole_model(tmp_path / "nope.pth", trust=True)
    _names(str(missing.value), str(tmp_path / "nope.pth"), "does not exist")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, _, _ = _trained_pair()
    path = checkpoints.save_with_device_tag(model, tmp_path / "gpu_whole.pth", "cuda:0")
    with pytest.raises(CheckpointError) as info:
        checkpoints.load_whole_model(path)
    _names(str(info.value), str(path), "refusing", "execute any code", "trust=True",
           "state_dict")
    loaded = checkpoints.load_whole_model(path, trust=True)  # map_location="cpu" by default
    assert _same_weights(model, loaded)
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}


# ------------------------------------------------------------------ load_latest
def _numbered(folder, name, epoch, value, **states):
    """A one-weight checkpoint whose weight is ``value`` (tells the files apart)."""
    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.fill_(value)
    return checkpoints.save_checkpoint(folder / name, net, epoch=epoch, **states)


def test_load_latest_takes_the_newest_readable_checkpoint(tmp_path, capsys):
    run, folder = tmp_path, tmp_path / "checkpoints"

    def latest(**kwargs):
        found = checkpoints.load_latest(run, **kwargs)
        return None if found is None else (found[0].name, found[1]["model_state"]["weight"].item())

    assert latest() is None  # no folder yet
    folder.mkdir()
    (folder / "epoch_best.pt").write_bytes(b"not a numbered epoch: never read")
    assert latest() is None
    _numbered(folder, "epoch_001.pt", 1, 1.0)
    assert latest() == ("epoch_001.pt", 1.0)  # no last.pt
    _numbered(folder, "last.pt", 1, 1.5)
    assert latest() == ("last.pt", 1.5)  # last.pt unless an epoch file is newer
    _numbered(folder, "epoch_002.pt", 2, 2.0)  # killed before last.pt was updated
    assert latest() == ("epoch_002.pt", 2.0)
    assert capsys.readouterr().out == ""
    (folder / "epoch_002.pt").write_bytes(b"broken")
    assert latest() == ("last.pt", 1.5)
    out = capsys.readouterr().out
    assert out.startswith("[course_utils] ") and out.count("\n") == 1
    _names(out.strip(), f"skipping {folder / 'epoch_002.pt'}", "not a readable")
    assert latest(verbose=False) == ("last.pt", 1.5) and capsys.readouterr().out == ""
    for last in (b"broken", None, "no epoch"):  # unreadable, a bare state_dict, epoch=None
        if last == b"broken":
            (folder / "last.pt").write_bytes(last)
        elif last is None:
            torch.save(nn.Linear(1, 1).state_dict(), folder / "last.pt")
        else:
            _numbered(folder, "last.pt", None, 1.5)
        assert latest(verbose=False) == ("epoch_001.pt", 1.0), last


def test_load_latest_restores_and_uses_map_location(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, optimizer, scheduler = _trained_pair()
    state = {"format": 1, "model_state": model.state_dict(), "epoch": 3,
             "optimizer_state": optimizer.state_dict(), "scheduler_state": scheduler.state_dict()}
    checkpoints.save_with_device_tag(state, folder / "last.pt", "cuda:0")  # saved on a GPU
    fresh = models.Tudui()
    opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    path, loaded = checkpoints.load_latest(tmp_path, fresh, opt, sched)
    assert path == folder / "last.pt" and loaded["epoch"] == 3
    assert _same_weights(model, fresh)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05) and sched.last_epoch == 1
    assert checkpoints.load_latest(tmp_path, map_location=None, verbose=False) is None
    with pytest.raises(CheckpointError) as info:  # a wrong model is an error, not a skip
        checkpoints.load_latest(tmp_path, models.TuduiBN())
    assert str(info.value).startswith(f"{folder / 'last.pt'} was saved from a different "
                                      "architecture than TuduiBN (missing [")


def test_a_file_that_holds_no_checkpoint_dict_says_what_it_holds(tmp_path):
    """A file written with torch.save(model.state_dict()) or torch.save([...]) is readable but
    is no checkpoint: the error names the file and what it holds instead."""
    path = tmp_path / "weights.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(checkpoints.CheckpointError) as info:
        checkpoints.load_checkpoint(path, nn.Linear(2, 2))
    assert str(path) in str(info.value) and "holds a list" in str(info.value), str(info.value)
