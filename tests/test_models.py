"""The course's networks and the weights shipped with the course."""

from __future__ import annotations

import pytest
import torch

from course_utils import data, models, predict
from course_utils.engine import evaluate
from course_utils.loaders import TensorLoader


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_maps_a_cifar_batch_to_ten_scores(name):
    model = models.build_model(name).eval()
    with torch.no_grad():
        out = model(torch.rand(4, 3, 32, 32))
        out_cl = model(torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    assert out.shape == (4, 10) and out_cl.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_sizes_stay_within_the_course_budget():
    assert models.count_parameters(models.Tudui()) == 145_578
    fast = models.count_parameters(models.build_model("fast-cnn"))
    assert fast == 242_474 and fast <= 300_000


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="fast-cnn"):
        models.build_model("resnet")


def test_old_and_class_names_still_load():
    """Checkpoints written before the rename say "tudui-improved"; some say a class name."""
    assert isinstance(models.build_model("tudui-improved"), models.FastCNN)
    assert models.model_key("TuduiImproved") == "fast-cnn"
    assert models.model_key("TuduiBN") == "tudui-bn"


@pytest.mark.skipif(not predict.SHIPPED_WEIGHTS.is_file(), reason="no shipped weights file")
def test_shipped_weights_classify_the_bundled_test_images(offline):
    """The 200 bundled test images are CIFAR-10 *test* images, never trained on."""
    model, info = predict.load_trained()
    assert info["normalize"] is not None and info["model_name"] == "fast-cnn"
    xs, ys = data.as_tensors(data.cifar10(train=False, verbose=False))
    loader = TensorLoader(xs, ys, batch_size=100, normalize=info["normalize"])
    result = evaluate(model, loader)
    assert result["images"] == 200
    assert result["accuracy"] >= 0.7, result  # 0.83 on the full test set; chance is 0.10
