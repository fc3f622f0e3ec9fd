"""Inference (P32) on the demo photos with checkpoints trained here by the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from course_utils import checkpoints, data, engine, loaders, models, predict
from course_utils.checkpoints import CheckpointError

NORM = (data.CIFAR10_MEAN, data.CIFAR10_STD)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A TuduiBN trained for 3 epochs on 500 images of the bundled sample, checkpointed by
    ``fit``."""
    run_dir = tmp_path_factory.mktemp("run")
    xs, ys = data.as_tensors(data.cifar10(train=True, verbose=False))
    keep = data.spread_indices(len(ys), 500)
    xs, ys = xs[keep], ys[keep]
    xt, yt = data.as_tensors(data.cifar10(train=False, verbose=False))
    torch.manual_seed(0)
    model = models.TuduiBN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = engine.fit(
        model, loaders.TensorLoader(xs, ys, 64, shuffle=True, normalize=NORM),
        loaders.TensorLoader(xt, yt, 200, normalize=NORM), epochs=3, optimizer=optimizer,
        loss_fn=nn.CrossEntropyLoss(), device="cpu", run_dir=run_dir, model_name="tudui-bn",
        metadata={"normalize": NORM},
        progress=False)
    return run_dir / "checkpoints" / "last.pt", model, history


def _reference_probs(model, path, normalize):
    """Softmax over the model's output for ``path``, preprocessed by hand with PIL/numpy."""
    img = Image.open(path).convert("RGB").resize((32, 32), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(normalize[0], dtype=np.float32)) / np.array(normalize[1], dtype=np.float32)
    x = torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        return model(x).softmax(1)[0]


@pytest.mark.parametrize("name", ["dog", "airplane"])
def test_predicts_the_demo_photos(trained, name):
    path, _, history = trained
    model, info = predict.load_trained(path)
    assert isinstance(model, models.TuduiBN) and not model.training
    assert not hasattr(model, "normalize")  # the information comes apart from the model
    assert info["normalize"] == (tuple(NORM[0]), tuple(NORM[1]))
    assert info["path"] == path and info["model_name"] == "tudui-bn"
    assert info["epoch"] == 3 and info["test_accuracy"] == history[-1]["test_accuracy"]
    ranked = predict.predict_image(model, data.demo_image(name), topk=3, normalize=NORM)
    assert len(ranked) == 3
    assert all(isinstance(c, str) and type(p) is float for c, p in ranked)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)

    probs = _reference_probs(model, data.demo_image(name), NORM)
    top = probs.topk(3)
    assert [c for c, _ in ranked] == [data.CIFAR10_CLASSES[i] for i in top.indices]
    assert [p for _, p in ranked] == pytest.approx(top.values.tolist(), abs=0.02)


def test_all_ten_probabilities_sum_to_one(trained):
    model, info = predict.load_trained(trained[0])
    ranked = predict.predict_image(model, data.demo_image("dog"), topk=10,
                                   normalize=info["normalize"])
    assert sorted(c for c, _ in ranked) == sorted(data.CIFAR10_CLASSES)
    assert sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-5)


def test_loaded_weights_are_the_trained_ones(trained):
    path, model, history = trained
    loaded, info = predict.load_trained(path)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert info["epoch"] == 3
    assert info["history"] == history


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "LA", "I;16"])
def test_any_image_mode_becomes_rgb_32x32(tmp_path, trained, mode):
    rgb = Image.open(data.demo_image("dog")).convert("RGB")
    odd = rgb.convert(mode) if mode != "I;16" else rgb.convert("L").convert("I;16")
    path = tmp_path / f"dog_{mode.replace(';', '')}.png"
    odd.save(path)
    x = predict.preprocess(path)
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    model, _ = predict.load_trained(trained[0])
    assert len(predict.predict_image(model, path, topk=2)) == 2
    if mode == "RGBA":  # opaque alpha: the same pixels as the RGB photo
        assert torch.allclose(x, predict.preprocess(data.demo_image("dog")))


def test_pil_images_are_accepted(trained):
    model, info = predict.load_trained(trained[0])
    img = Image.open(data.demo_image("airplane")).convert("RGBA")
    from_pil = predict.predict_image(model, img, topk=3, normalize=info["normalize"])
    from_file = predict.predict_image(model, data.demo_image("airplane"), topk=3,
                                      normalize=info["normalize"])
    assert [c for c, _ in from_pil] == [c for c, _ in from_file]


def test_gpu_saved_checkpoint_predicts_on_cpu(tmp_path, trained):
    path, _, _ = trained
    state = checkpoints.load_checkpoint(path)
    gpu_file = checkpoints.save_with_device_tag(state, tmp_path / "from_gpu.pt", "cuda:0")
    on_cpu, info = predict.load_trained(gpu_file, device="cpu")
    assert next(on_cpu.parameters()).device.type == "cpu"
    assert predict.predict_image(on_cpu, data.demo_image("dog"), normalize=NORM) == \
        predict.predict_image(predict.load_trained(path)[0], data.demo_image("dog"),
                              normalize=info["normalize"])


def test_model_name_as_class_name_and_override(tmp_path):
    torch.manual_seed(1)
    net = models.Tudui()
    path = checkpoints.save_checkpoint(tmp_path / "t.pt", net)  # model_name "Tudui"
    assert isinstance(predict.load_trained(path)[0], models.Tudui)
    with pytest.raises(CheckpointError, match="different architecture"):
        predict.load_trained(path, model_name="tudui-bn")
    torch.save({"model_state": net.state_dict(), "model_name": "resnet9"}, tmp_path / "r.pt")
    with pytest.raises(CheckpointError, match="resnet9"):
        predict.load_trained(tmp_path / "r.pt")


def test_bad_inputs_are_named(tmp_path, trained):
    model, _ = predict.load_trained(trained[0])
    with pytest.raises(ValueError, match="topk"):
        predict.predict_image(model, data.demo_image("dog"), topk=11)
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    with pytest.raises(ValueError, match="notes.png"):
        predict.predict_image(model, fake)
    with pytest.raises(FileNotFoundError):
        predict.predict_image(model, tmp_path / "missing.jpg")
    with pytest.raises(TypeError, match="PIL image"):
        predict.preprocess(np.zeros((32, 32, 3)))
    torch.save({"model_state": models.Tudui().state_dict(), "normalize": (1, 2)},
               tmp_path / "badnorm.pt")
    with pytest.raises(CheckpointError, match="normalize"):
        predict.load_trained(tmp_path / "badnorm.pt")


def test_missing_shipped_weights_explain_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "SHIPPED_WEIGHTS", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="python -m course_utils train"):
        predict.load_trained()


@pytest.mark.skipif(not predict.SHIPPED_WEIGHTS.is_file(),
                    reason=f"{predict.SHIPPED_WEIGHTS.name} is not in this checkout yet (the "
                           "benchmarks work trains and ships it)")
@pytest.mark.parametrize("name", ["dog", "airplane"])
def test_shipped_weights_recognise_the_demo_photos(name):
    model, info = predict.load_trained()
    assert info["normalize"] is not None, "the shipped checkpoint must record its normalize"
    ranked = predict.predict_image(model, data.demo_image(name), topk=3,
                                   normalize=info["normalize"])
    assert name in [c for c, _ in ranked], ranked
    readme = predict.SHIPPED_WEIGHTS.parent / "README.md"
    assert readme.is_file() and "accuracy" in readme.read_text(encoding="utf-8").lower()
