"""Checkpoint round trips: state_dicts, whole models, GPU-saved files, broken files."""

from __future__ import annotations

import io
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
    with pytest.raises(CheckpointError, match="__main__"):
        checkpoints.load_whole_model(path, trust=True)


def test_gpu_saved_checkpoint_loads_on_cpu_through_map_location(tmp_path, monkeypatch):
    """A file saved on a GPU, opened on a machine without CUDA (simulated on every machine,
    GPU or not): the P32 error, the course's clear message, then map_location="cpu" works."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, optimizer, _ = _trained_pair()
    state = {"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
             "model_name": "tudui", "epoch": 1}
    path = devices.save_with_device_tag(state, tmp_path / "gpu.pt", "cuda:0")
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
