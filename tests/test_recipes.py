"""The recipes table and the settings that flow from the command line down to the engine."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
import torch

from course_utils import data, models, recipes


def test_the_original_recipe_is_p27_exactly():
    r = recipes.RECIPES["original"]
    assert (r.model, r.lr, r.momentum, r.batch_size, r.epochs) == ("tudui", 0.01, 0.0, 64, 10)
    assert (r.weight_decay, r.nesterov, r.schedule, r.label_smoothing) == (0.0, False, "none", 0.0)
    assert not (r.augment or r.normalize or r.drop_last or r.channels_last)
    model = recipes.build_model(r)
    group = recipes.build_optimizer(r, model).param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == \
        (0.01, 0.0, 0.0, False)
    assert recipes.build_scheduler(r, recipes.build_optimizer(r, model), 10) is None
    assert recipes.build_loss(r).label_smoothing == 0.0


def test_every_recipe_value_is_written_out():
    """No value may come from a fallback: every field is set in the table itself."""
    for name, r in recipes.RECIPES.items():
        assert r.name == name and r.model in models.MODELS
        assert all(getattr(r, f.name) is not None for f in dataclasses.fields(r))
    improved = recipes.RECIPES["improved"]
    model = recipes.build_model(improved)
    optimizer = recipes.build_optimizer(improved, model)
    scheduler = recipes.build_scheduler(improved, optimizer, steps_per_epoch=5)
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
    again = recipes.make_settings(start=start, resume=tmp_path, epochs=5, device="cpu")
    assert again.recipe == dataclasses.replace(first.recipe, epochs=5)
    assert (again.limit, again.seed, again.resume) == (50, 0, tmp_path)
    with pytest.raises(ValueError, match="was trained with --lr 0.03"):
        recipes.make_settings(start=start, resume=tmp_path, lr=0.1, device="cpu")
    old = {"config": {"recipe": "improved", "model": "tudui-improved", "epochs": 3}}
    assert recipes.make_settings(start=old, resume=tmp_path, device="cpu").recipe.model == \
        "fast-cnn"  # a checkpoint from before the rename
    with pytest.raises(ValueError, match="cannot change on resume"):
        recipes.make_settings(start=old, resume=tmp_path, epochs=4, device="cpu")


def test_the_data_folder_is_passed_down_not_set_in_the_environment(
        tmp_path, monkeypatch, offline, capsys, run_cli):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    folder = tmp_path / "my data"
    shutil.copytree(data.CIFAR10_SAMPLE, folder / "cifar10-jpg")
    train, test, normalize = recipes.build_loaders(recipes.RECIPES["original"], limit=40,
                                                   data_dir=folder)
    assert train.dataset.dataset.source == "image-folder" and normalize is None
    assert len(train.dataset) == 40 and len(test.dataset) == 200
    code, out, err = run_cli("train", "--recipe", "original", "--epochs", "1", "--limit", "40",
                             "--data-dir", folder, "--logdir", tmp_path / "runs",
                             "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert f"image folder {folder / 'cifar10-jpg' / 'train'}" in out
    assert "COURSE_DATA_DIR" not in os.environ
