"""The recipes table and the settings that flow from the command line down to the engine."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path

import pytest
import torch
import torchvision.transforms as T
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

from course_utils import (
    checkpoints,
    data,
    distributed,
    engine,
    errors,
    loaders,
    models,
    recipes,
    training,
)
from course_utils.data import CIFAR10_MEAN, CIFAR10_STD
from course_utils.loaders import TensorLoader


def test_the_original_recipe_is_p27_exactly():
    r = recipes.RECIPES["original"]
    assert (r.model, r.lr, r.momentum, r.batch_size, r.epochs) == ("tudui", 0.01, 0.0, 64, 10)
    assert (r.weight_decay, r.nesterov, r.schedule, r.label_smoothing) == (0.0, False, "none", 0.0)
    assert not (r.augment or r.normalize or r.drop_last or r.channels_last)
    model = training.build_network(r)
    group = training.build_optimizer(r, model).param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == \
        (0.01, 0.0, 0.0, False)
    assert training.build_scheduler(r, training.build_optimizer(r, model), 10) is None
    assert training.build_loss(r).label_smoothing == 0.0


def test_every_recipe_value_is_written_out():
    """No value may come from a fallback: every field is set in the table itself."""
    for name, r in recipes.RECIPES.items():
        assert r.name == name and r.model in models.MODELS
        assert all(getattr(r, f.name) is not None for f in dataclasses.fields(r))
    improved = recipes.RECIPES["improved"]
    model = training.build_network(improved)
    optimizer = training.build_optimizer(improved, model)
    scheduler = training.build_scheduler(improved, optimizer, steps_per_epoch=5)
    assert isinstance(model, models.FastCNN)
    assert optimizer.param_groups[0]["weight_decay"] == 5e-4
    assert scheduler.total_steps == 5 * improved.epochs
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_settings_choices_defaults_and_fast_mode(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    s = recipes.make_settings(device="cpu")
    assert s.recipe.name == "improved" and s.recipe.epochs == 10 and s.seed == 0
    s = recipes.make_settings("original", lr=0.05, batch_size=8, device="cpu")
    assert (s.recipe.lr, s.recipe.batch_size, s.recipe.momentum) == (0.05, 8, 0.0)
    assert s.device == torch.device("cpu") and s.resume is None
    monkeypatch.setenv("COURSE_FAST", "1")
    assert recipes.make_settings("original", device="cpu").recipe.epochs == 1
    assert recipes.make_settings("original", epochs=4, device="cpu").recipe.epochs == 4
    with pytest.raises(ValueError, match="Nesterov"):
        recipes.make_settings("improved", momentum=0.0, device="cpu")
    with pytest.raises(ValueError, match="unknown recipe 'best'"):
        recipes.make_settings("best", device="cpu")
    with pytest.raises(ValueError, match="not a device"):
        recipes.make_settings("original", device="gpu")


def test_a_resumed_run_keeps_its_stored_settings(tmp_path):
    first = recipes.make_settings("original", lr=0.03, limit=50, epochs=2, device="cpu")
    start = {"config": first.config}
    again = recipes.make_settings(checkpoint=start, resume=tmp_path, epochs=5, device="cpu")
    assert again.recipe == dataclasses.replace(first.recipe, epochs=5)
    assert (again.limit, again.seed, again.resume) == (50, 0, tmp_path)
    with pytest.raises(ValueError, match="was trained with lr 0.03"):
        recipes.make_settings(checkpoint=start, resume=tmp_path, lr=0.1, device="cpu")
    old = {"config": {"recipe": "improved", "model": "tudui-improved", "epochs": 3}}
    assert recipes.make_settings(checkpoint=old, resume=tmp_path, device="cpu").recipe.model == \
        "fast-cnn"  # a checkpoint from before the rename
    with pytest.raises(ValueError, match="cannot change on resume"):
        recipes.make_settings(checkpoint=old, resume=tmp_path, epochs=4, device="cpu")


def test_the_data_folder_is_passed_down_not_set_in_the_environment(
        tmp_path, monkeypatch, offline, capsys, run_cli):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    folder = tmp_path / "my data"
    shutil.copytree(data.CIFAR10_SAMPLE, folder / "cifar10-jpg")
    train, test, normalize = training.build_loaders(recipes.RECIPES["original"], limit=40,
                                                   data_dir=folder)
    assert train.dataset.dataset.source == "image-folder" and normalize is None
    assert len(train.dataset) == 40 and len(test.dataset) == 200
    code, out, err = run_cli("train", "--recipe", "original", "--epochs", "1", "--limit", "40",
                             "--data-dir", folder, "--logdir", tmp_path / "runs",
                             "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert f"image folder {folder / 'cifar10-jpg' / 'train'}" in out
    assert "COURSE_DATA_DIR" not in os.environ


# --------------------------------------------- settings, builders and train, value by value
# (written against the survivors of `python tools/mutation.py recipes`; see TESTING.md §1)
@pytest.fixture
def cpu_only(monkeypatch):
    """A machine without CUDA or MPS: ``device="auto"`` is the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_processes(monkeypatch):
    """This process as rank 1 of 2 under torchrun, without a process group."""
    from course_utils import distributed
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "main_first", contextlib.nullcontext)


def _data_copy(tmp_path):
    """A data folder holding the bundled sample as ``cifar10-jpg/``."""
    folder = tmp_path / "my data"
    shutil.copytree(data.CIFAR10_SAMPLE, folder / "cifar10-jpg")
    return folder


def _ids(params):
    return [id(p) for p in params]


def test_settings_defaults_and_every_choice_are_kept(cpu_only, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    s = recipes.make_settings()  # nothing chosen: the improved recipe, device "auto"
    assert s.recipe == recipes.RECIPES["improved"]
    assert (s.limit, s.seed, s.device, s.data_dir, s.logdir, s.run_name, s.resume, s.progress) \
        == (None, 0, torch.device("cpu"), None, Path("runs"), None, None, True)
    s = recipes.make_settings(
        "original", model="TuduiBN", epochs=3, batch_size=8, lr=0.05, momentum=0.5, limit=120,
        seed=7, device="cpu", data_dir=str(tmp_path), logdir=str(tmp_path / "logs"),
        run_name="try", resume=str(tmp_path), progress=False)
    assert s.recipe == dataclasses.replace(recipes.RECIPES["original"], model="tudui-bn",
                                           epochs=3, batch_size=8, lr=0.05, momentum=0.5)
    assert (s.limit, s.seed, s.device, s.data_dir, s.logdir, s.run_name, s.resume, s.progress) \
        == (120, 7, torch.device("cpu"), tmp_path, tmp_path / "logs", "try", tmp_path, False)
    assert isinstance(s.data_dir, Path) and isinstance(s.resume, Path)
    assert capsys.readouterr().out == ""  # the device is picked quietly
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, simulated
    assert recipes.make_settings().device == torch.device("cuda")
    assert recipes.make_settings(device="cpu").device == torch.device("cpu")  # as chosen


def test_a_resumed_run_refuses_each_changed_setting_by_its_name(tmp_path):
    first = recipes.make_settings("original", model="tudui-bn", lr=0.03, momentum=0.5,
                                  batch_size=32, limit=50, seed=4, epochs=2, device="cpu")
    start = {"config": first.config}
    kept = recipes.make_settings(checkpoint=start, resume=tmp_path, device="cpu")
    assert (kept.recipe, kept.limit, kept.seed) == (first.recipe, 50, 4)
    same = recipes.make_settings("original", checkpoint=start, resume=tmp_path, model="tudui-bn",
                                 lr=0.03, momentum=0.5, batch_size=32, limit=50, seed=4,
                                 device="cpu")  # choosing the stored values is fine
    assert (same.recipe, same.limit, same.seed) == (first.recipe, 50, 4)
    changes = [("recipe", "improved", "--recipe original"), ("model", "tudui", "--model tudui-bn"),
               ("lr", 0.1, "--lr 0.03"), ("momentum", 0.9, "--momentum 0.5"),
               ("batch_size", 16, "--batch-size 32"), ("limit", 60, "--limit 50"),
               ("seed", 5, "--seed 4")]
    assert [c[0] for c in changes] == list(recipes.FIXED_ON_RESUME)
    for key, value, stored in changes:
        with pytest.raises(errors.SettingError) as info:
            recipes.make_settings(checkpoint=start, resume=tmp_path, device="cpu",
                                  **{key: value})
        flag = stored.split()[0]
        assert info.value.worded(lambda name: "--" + name.replace("_", "-")) == (
            f"{tmp_path} was trained with {stored}; a resumed run keeps its settings. "
            f"Leave out {flag}, or start a new run without --resume.")
        assert str(info.value) == (  # in Python's terms: make_settings' keywords
            f"{tmp_path} was trained with {key} {stored.split()[1]}; a resumed run keeps its "
            f"settings. Leave out {key}, or start a new run without resume.")
    # a checkpoint that stored fewer settings: the missing ones may be chosen
    old = {"config": {"recipe": "original", "epochs": 2, "seed": 9, "limit": 30}}
    s = recipes.make_settings(checkpoint=old, resume=tmp_path, lr=0.05, device="cpu")
    assert (s.recipe.lr, s.recipe.epochs, s.seed, s.limit) == (0.05, 2, 9, 30)


def test_the_checks_explain_themselves_in_full(tmp_path):
    stored = {"config": recipes.make_settings("improved", epochs=3, device="cpu").config}
    same = recipes.make_settings(checkpoint=stored, resume=tmp_path, epochs=3, device="cpu")
    assert same.recipe.epochs == 3
    with pytest.raises(ValueError) as info:
        recipes.make_settings(checkpoint=stored, resume=tmp_path, epochs=4, device="cpu")
    assert str(info.value) == (
        f"{tmp_path} uses a onecycle learning-rate schedule planned for 3 epochs, so epochs "
        "cannot change on resume.")
    with pytest.raises(ValueError) as info:
        recipes.make_settings("improved", momentum=0.0, device="cpu")
    assert str(info.value) == ("the improved recipe uses Nesterov momentum, which needs a "
                               "momentum above 0 (e.g. momentum 0.9).")
    with pytest.raises(ValueError) as info:
        recipes.make_settings("best", device="cpu")
    assert str(info.value) == f"unknown recipe 'best'; choose one of {sorted(recipes.RECIPES)}."


def test_checkpoint_to_resume_finds_the_newest_checkpoint_written_by_the_cli(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(checkpoints.CheckpointError) as info:
        training.checkpoint_to_resume(folder)
    assert str(info.value) == (
        f"{folder} has no readable checkpoint (checkpoints/last.pt or epoch_NNN.pt) to resume "
        "from; pick a run folder that has one, or leave out resume.")
    torch.manual_seed(0)
    model = models.build_model("tudui")
    path = checkpoints.save_checkpoint(folder / "checkpoints" / "last.pt", model, epoch=1)
    with pytest.raises(checkpoints.CheckpointError) as info:
        training.checkpoint_to_resume(folder)
    assert str(info.value) == (
        f"{path} was not written by 'python -m course_utils train' (it has no 'config'), so "
        "the CLI cannot resume it; use engine.fit(..., checkpoint=...).")
    config = recipes.make_settings("original", device="cpu").config
    checkpoints.save_checkpoint(path, model, epoch=2, config=config)
    capsys.readouterr()
    state = training.checkpoint_to_resume(folder)
    assert (state["epoch"], state["config"]) == (2, config)
    assert capsys.readouterr().out == f"[course_utils] continuing from {path}\n"


def test_model_optimizer_and_loss_take_the_recipes_values():
    improved, original = recipes.RECIPES["improved"], recipes.RECIPES["original"]
    torch.manual_seed(0)
    model = training.build_network(improved)
    (group,) = training.build_optimizer(improved, model).param_groups
    assert _ids(group["params"]) == _ids(model.parameters())
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        improved.lr, improved.momentum, improved.nesterov, improved.weight_decay)
    assert (improved.lr, improved.momentum, improved.weight_decay) != (1e-3, 0, 0)  # not SGD's
    assert training.build_loss(improved).label_smoothing == improved.label_smoothing > 0
    weights = [p for p in training.build_network(original).parameters() if p.dim() == 4]
    assert weights and all(w.is_contiguous() for w in weights)  # NCHW unless channels_last


def _rates(recipe, steps_per_epoch):
    """The learning rate each step of ``recipe`` uses, and its scheduler."""
    optimizer = training.build_optimizer(recipe, torch.nn.Linear(2, 2))
    scheduler = training.build_scheduler(recipe, optimizer, steps_per_epoch)
    rates = []
    for _ in range(recipe.epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates, scheduler


def test_onecycle_warms_up_for_pct_start_of_the_steps_then_cools_down():
    improved = recipes.RECIPES["improved"]
    recipe = dataclasses.replace(improved, epochs=2, lr=0.4, pct_start=0.25)
    rates, scheduler = _rates(recipe, 10)  # 20 steps: the peak at step 5 (index 4)
    assert scheduler.total_steps == 20 and rates[0] == pytest.approx(0.4 / 25)
    assert max(rates) == pytest.approx(0.4) and rates.index(max(rates)) == 4
    assert rates[:5] == sorted(rates[:5]) and rates[4:] == sorted(rates[4:], reverse=True)
    # 4 steps in all: a one-step warm-up would be 0/0 in OneCycleLR, so it warms up for two
    rates, scheduler = _rates(dataclasses.replace(improved, epochs=1, pct_start=0.25), 4)
    assert scheduler.total_steps == 4 and rates.index(max(rates)) == 1
    with pytest.raises(ValueError) as info:
        training.build_scheduler(dataclasses.replace(improved, schedule="cosine"), None, 4)
    assert str(info.value) == "unknown schedule 'cosine'; use 'none' or 'onecycle'."


def test_tensor_pipeline_loaders(offline, capsys):
    recipe = dataclasses.replace(recipes.RECIPES["improved"], batch_size=128,
                                 eval_batch_size=100)
    train, test, normalize = training.build_loaders(recipe, limit=300)  # device "cpu"
    out = capsys.readouterr().out
    assert "CIFAR-10 train: bundled sample" in out and "CIFAR-10 test: bundled sample" in out
    assert normalize == (CIFAR10_MEAN, CIFAR10_STD)
    assert type(train) is TensorLoader and type(test) is TensorLoader
    assert (train.batch_size, train.shuffle, train.augment, train.drop_last, train.device) == \
        (128, True, True, True, torch.device("cpu"))
    assert len(train) == 2  # 300 // 128: the last 44 images dropped
    xs, ys = data.as_tensors(data.cifar10(train=True, verbose=False), 300)
    assert torch.equal(train.images, xs) and torch.equal(train.labels, ys)
    assert (test.batch_size, test.shuffle, test.augment, test.drop_last, len(test)) == \
        (100, False, False, False, 2)
    test_x, test_y = data.as_tensors(data.cifar10(train=False, verbose=False))
    assert torch.equal(test.images, test_x) and torch.equal(test.labels, test_y)
    mean = torch.tensor(CIFAR10_MEAN).view(1, -1, 1, 1) * 255
    assert torch.equal(train.mean, mean) and torch.equal(test.mean, mean)
    # fewer images than one batch: drop_last is off, so one (smaller) batch is left
    train, _, _ = training.build_loaders(recipe, limit=100)
    assert (train.drop_last, len(train)) == (False, 1)
    plain = dataclasses.replace(recipe, augment=False, normalize=False, drop_last=False)
    train, test, normalize = training.build_loaders(plain, limit=300)
    assert (normalize, train.mean, test.mean, train.augment, train.drop_last, len(train)) == \
        (None, None, None, False, False, 3)


def test_tensor_pipeline_on_another_device_from_a_data_folder(offline, tmp_path, capsys):
    """``meta`` stands in for a GPU: both loaders keep their images on the given device."""
    folder = _data_copy(tmp_path)
    recipe = recipes.RECIPES["improved"]
    train, test, _ = training.build_loaders(recipe, limit=300, device="meta", data_dir=folder)
    assert train.device == test.device == torch.device("meta")
    assert train.images.device == test.images.device == torch.device("meta")
    out = capsys.readouterr().out
    assert f"image folder {folder / 'cifar10-jpg' / 'train'}" in out
    assert f"image folder {folder / 'cifar10-jpg' / 'test'}" in out
    training.build_loaders(recipes.RECIPES["original"], limit=100, data_dir=folder)  # PIL
    out = capsys.readouterr().out
    assert f"image folder {folder / 'cifar10-jpg' / 'train'}" in out
    assert f"image folder {folder / 'cifar10-jpg' / 'test'}" in out


def test_pil_pipeline_loaders(offline, capsys):
    recipe = dataclasses.replace(recipes.RECIPES["original"], augment=True, normalize=True,
                                 drop_last=True, batch_size=32, eval_batch_size=50)
    train, test, normalize = training.build_loaders(recipe, limit=100)
    out = capsys.readouterr().out
    assert "CIFAR-10 train: bundled sample" in out and "CIFAR-10 test: bundled sample" in out
    assert normalize == (CIFAR10_MEAN, CIFAR10_STD)
    flip, crop, to_tensor, norm = train.dataset.dataset.transform.transforms
    assert type(flip) is T.RandomHorizontalFlip and flip.p == 0.5
    assert (type(crop), crop.size, crop.padding, crop.padding_mode) == \
        (T.RandomCrop, (32, 32), 4, "reflect")
    assert type(to_tensor) is T.ToTensor and (norm.mean, norm.std) == normalize
    assert [type(t) for t in test.dataset.transform.transforms] == [T.ToTensor, T.Normalize]
    assert (test.dataset.transform.transforms[1].mean,
            test.dataset.transform.transforms[1].std) == normalize
    assert len(train.dataset.dataset) == 1000  # the training split, 100 of its images
    assert train.dataset.indices == data.spread_indices(1000, 100)
    assert (train.batch_size, train.drop_last, type(train.sampler)) == (32, True, RandomSampler)
    assert (test.batch_size, len(test.dataset), type(test.sampler)) == \
        (50, 200, SequentialSampler)
    original = recipes.RECIPES["original"]
    train, test, normalize = training.build_loaders(original)
    assert normalize is None and len(train.dataset) == 1000 and not train.drop_last
    assert [type(t) for t in train.dataset.transform.transforms] == [T.ToTensor]
    assert [type(t) for t in test.dataset.transform.transforms] == [T.ToTensor]
    with pytest.raises(ValueError) as info:
        training.build_loaders(dataclasses.replace(original, pipeline="numpy"))
    assert str(info.value) == "unknown pipeline 'numpy'; use 'pil' or 'tensors'."


def test_loaders_under_torchrun_give_this_process_its_shard(offline, two_processes, capsys):
    recipe = dataclasses.replace(recipes.RECIPES["improved"], batch_size=128,
                                 eval_batch_size=64)
    assert (training._shard(300), training._shard(301)) == (150, 151)
    train, test, normalize = training.build_loaders(recipe, limit=301, seed=5)
    assert capsys.readouterr().out == ""  # only rank 0 talks
    assert type(train) is loaders.ShardedTensorLoader
    xs, ys = data.as_tensors(data.cifar10(train=True, verbose=False), 301)
    assert torch.equal(train.images, xs) and torch.equal(train.labels, ys)
    assert (train.sampler.num_replicas, train.sampler.rank, train.sampler.seed) == (2, 1, 5)
    assert (train.batch_size, train.drop_last, len(train)) == (128, True, 1)  # 151 → 1 batch
    assert train.options == dict(normalize=normalize, augment=True, drop_last=True,
                                 device="cpu")
    test_x, _ = data.as_tensors(data.cifar10(train=False, verbose=False))
    assert torch.equal(test.images, test_x[1::2]) and test.batch_size == 64
    assert training.build_loaders(recipe, limit=200)[0].sampler.seed == 0  # the default seed
    pil = dataclasses.replace(recipes.RECIPES["original"], drop_last=True, batch_size=64)
    train, test, _ = training.build_loaders(pil, limit=200, seed=5)
    assert capsys.readouterr().out == ""  # the PIL pipeline too
    assert type(train.sampler) is DistributedSampler
    assert (train.sampler.num_replicas, train.sampler.rank, train.sampler.seed,
            train.sampler.shuffle) == (2, 1, 5, True)
    assert (train.batch_size, train.drop_last, len(train.dataset)) == (64, True, 200)
    assert list(test.dataset.indices) == list(range(1, 200, 2))
    full = data.cifar10(train=False, transform=T.ToTensor(), verbose=False)
    assert torch.equal(test.dataset[0][0], full[1][0])  # items of the test set itself


def test_build_parts_seeds_then_builds_everything_from_the_settings(offline, tmp_path, capsys):
    folder = _data_copy(tmp_path)
    settings = recipes.make_settings("improved", epochs=3, limit=300, batch_size=128, seed=3,
                                     data_dir=folder, device="cpu")
    settings = dataclasses.replace(settings, device=torch.device("meta"))
    torch.manual_seed(99)
    run = training.build_parts(settings)
    assert torch.initial_seed() == 3
    torch.manual_seed(3)
    expected = training.build_network(settings.recipe)
    assert type(run.model) is type(expected)
    for got, want in zip(run.model.state_dict().values(), expected.state_dict().values(),
                         strict=True):
        assert torch.equal(got, want)
    assert f"image folder {folder / 'cifar10-jpg' / 'train'}" in capsys.readouterr().out
    assert run.train_loader.device == run.test_loader.device == torch.device("meta")
    assert (len(run.train_loader.dataset), run.train_loader.batch_size, len(run.train_loader),
            run.test_loader.batch_size) == (300, 128, 2, 512)
    (group,) = run.optimizer.param_groups
    assert _ids(group["params"]) == _ids(run.model.parameters()) and group["nesterov"]
    assert run.scheduler.optimizer is run.optimizer and run.scheduler.total_steps == 3 * 2
    assert run.loss_fn.label_smoothing == 0.1 and run.normalize == (CIFAR10_MEAN, CIFAR10_STD)


def test_build_parts_under_torchrun_seeds_each_process_apart(offline, two_processes):
    settings = recipes.make_settings("improved", limit=300, batch_size=64, seed=3,
                                     device="cpu")
    run = training.build_parts(settings)
    assert run.train_loader.sampler.seed == 3  # every process shuffles the same epochs
    assert torch.initial_seed() == 3 + 1  # rank 1's own augmentation


def _fake_fit(monkeypatch):
    calls = []

    def fit(*args, **kwargs):
        calls.append((args, kwargs))
        return [{"epoch": 1, "test_accuracy": 0.5}]

    monkeypatch.setattr(engine, "fit", fit)
    return calls


def test_train_hands_the_run_it_built_to_fit(offline, monkeypatch, tmp_path, capsys):
    calls = _fake_fit(monkeypatch)
    settings = recipes.make_settings("improved", epochs=2, limit=300, batch_size=128, seed=1,
                                     device="cpu", logdir=tmp_path / "runs", progress=False)
    run = training.Run(settings)
    run_dir, history = training.train(run)
    assert history == [{"epoch": 1, "test_accuracy": 0.5}] and run.folder == run_dir
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.endswith("_improved")
    ((model, train_loader, test_loader), kw), = calls
    assert type(model) is models.FastCNN
    assert (len(train_loader.dataset), train_loader.batch_size, len(test_loader.dataset)) == \
        (300, 128, 200)
    assert _ids(kw.pop("optimizer").param_groups[0]["params"]) == _ids(model.parameters())
    assert kw.pop("scheduler").total_steps == 2 * 2 and kw.pop("loss_fn").label_smoothing == 0.1
    assert kw == dict(epochs=2, device=torch.device("cpu"), run_dir=run_dir, checkpoint=None,
                      model_name="fast-cnn", progress=False, verbose=True, amp_dtype=None,
                      metadata={"config": settings.config,
                                "normalize": (CIFAR10_MEAN, CIFAR10_STD), "precision": "float32"})
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"[course_utils] model fast-cnn ({models.count_parameters(model):,} parameters), 300 "
        f"training images, 2 epoch(s), lr 0.2, batch 128, device cpu, run folder {run_dir}")
    # a run name of one's own; under torchrun the global batch is spelled out
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    named = dataclasses.replace(settings, run_name="tiny", progress=True)
    run_dir, _ = training.train(training.Run(named))
    assert run_dir.name.endswith("_tiny") and calls[-1][1]["progress"] is True
    assert ", batch 128 per process × 2 processes = 256, device cpu," in \
        capsys.readouterr().out


def test_train_resumes_in_the_run_folder_it_is_given(offline, monkeypatch, tmp_path):
    calls = _fake_fit(monkeypatch)
    new = recipes.make_settings("original", limit=100, device="cpu", logdir=tmp_path / "runs")
    checkpoint = {"config": new.config, "epoch": 1}
    again = recipes.make_settings(checkpoint=checkpoint, resume=tmp_path / "old", device="cpu",
                                  logdir=tmp_path / "runs")
    run_dir, _ = training.train(training.Run(again, checkpoint, again.resume))
    assert run_dir == tmp_path / "old" and calls[-1][1]["checkpoint"] is checkpoint
    assert not (tmp_path / "runs").exists()  # no new run folder
    message = ("a resumed run needs both settings.resume (its folder) and its checkpoint "
               "(prepare() reads it); a new run neither.")
    for settings, given in ((again, None), (new, checkpoint)):
        with pytest.raises(ValueError) as info:
            training.train(training.Run(settings, given))
        assert str(info.value) == message
    assert len(calls) == 1


def test_prepare_reads_the_resumed_run_once_and_knows_its_folder(tmp_path, monkeypatch):
    config = recipes.make_settings("original", limit=100, epochs=2, device="cpu").config
    torch.manual_seed(0)
    checkpoints.save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt",
                                models.build_model("tudui"), epoch=2, config=config)
    reads = []
    read = training.checkpoint_to_resume
    monkeypatch.setattr(training, "checkpoint_to_resume", lambda d: reads.append(d) or read(d))
    run = training.prepare(resume=tmp_path / "run", epochs=3, device=torch.device("cpu"))
    assert reads == [tmp_path / "run"] and run.folder == tmp_path / "run"
    assert (run.checkpoint["epoch"], run.settings.recipe.epochs) == (2, 3)
    assert run.settings.resume == tmp_path / "run" and run.settings.limit == 100
    new = training.prepare("original", device=torch.device("cpu"), logdir=tmp_path / "runs")
    assert (new.checkpoint, new.folder, new.settings.resume) == (None, None, None)
    assert not (tmp_path / "runs").exists()  # the folder comes with train(), not before


def test_a_resolved_device_is_used_as_it_is(monkeypatch):
    def picked(*args, **kwargs):
        raise AssertionError("pick_device called again")

    monkeypatch.setattr(recipes, "pick_device", picked)
    assert recipes.make_settings(device=torch.device("cpu")).device == torch.device("cpu")
