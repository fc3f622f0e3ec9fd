"""Chapter 9 (P25–P26): editing VGG16, fine-tuning counts, safe checkpoints (in the order
the notebook asks them)."""

import io

import torch
import torchvision
from torch import nn

from course_utils.exercises import Exercise, expect
from course_utils.models import Tudui


def _meta_vgg16() -> nn.Module:
    """VGG16's layers on the 'meta' device: the structure without 138 M real numbers."""
    with torch.device("meta"):
        return torchvision.models.vgg16(weights=None)


def _check_q1(model):
    expect(isinstance(model, torchvision.models.VGG),
           f"`answer` should be the VGG16 model itself, got {type(model).__name__}.")
    head = model.classifier
    expect(len(head) == 7, f"classifier has {len(head)} layers; replace classifier[6] instead "
           "of adding a layer (that keeps 7 layers).")
    last = head[6]
    expect(isinstance(last, nn.Linear), f"classifier[6] is a {type(last).__name__}, not a Linear.")
    expect(last.in_features == 4096, f"the new layer takes {last.in_features} inputs; the layer "
           "before it gives 4096.")
    expect(last.out_features == 10, f"the new layer gives {last.out_features} outputs; CIFAR-10 "
           "has 10 classes.")
    expect(not hasattr(model, "add_linear"), "remove the top-level add_linear: VGG.forward never "
           "calls it, so it only confuses readers.")


q1 = Exercise(
    "9.1",
    "Build VGG16 without downloaded weights, replace the last layer of its classifier so that "
    "it predicts the 10 CIFAR-10 classes, and assign the model to `answer`.",
    _check_q1,
    hint_text="torchvision.models.vgg16(weights=None); then model.classifier[6] = "
              "nn.Linear(4096, 10).",
    solution_code="""
        import torchvision
        from torch import nn
        answer = torchvision.models.vgg16(weights=None)
        answer.classifier[6] = nn.Linear(4096, 10)
    """,
    wrong=[_meta_vgg16(), nn.Linear(4096, 10), "classifier[6]"],
)


def _check_checkpoint(answer):
    expect(isinstance(answer, dict), f"`answer` should be a dict, got {type(answer).__name__}.")
    expect("model_state" in answer and "epoch" in answer,
           f"the dict needs the keys 'model_state' and 'epoch'; it has {sorted(answer)}.")
    buffer = io.BytesIO()
    torch.save(answer, buffer)
    buffer.seek(0)
    try:
        loaded = torch.load(buffer, weights_only=True)
    except Exception as exc:  # noqa: BLE001 — any failure here is the learner's to see
        raise AssertionError(
            "torch.load(..., weights_only=True) refuses it: it holds pickled Python objects "
            f"({type(exc).__name__}). Store model.state_dict(), not the model.") from None
    expect(loaded["epoch"] == 5, f"epoch should be 5, got {loaded['epoch']!r}.")
    model = Tudui()
    try:
        model.load_state_dict(loaded["model_state"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise AssertionError(f"'model_state' does not load into a Tudui ({exc}).") from None


q3 = Exercise(
    "9.3",
    "Make `answer` a checkpoint dict that `torch.load(path, weights_only=True)` can read: the "
    "key 'model_state' holds the weights of a Tudui (course_utils.models.Tudui) and 'epoch' is 5.",
    _check_checkpoint,
    hint_text="Weights are model.state_dict() — plain tensors. The model object itself is a "
              "pickled class, which weights_only refuses.",
    solution_code="""
        from course_utils.models import Tudui
        answer = {"model_state": Tudui().state_dict(), "epoch": 5}
    """,
    wrong=[{"model_state": Tudui(), "epoch": 5}, {"model_state": Tudui().state_dict()},
           Tudui().state_dict(), {"model_state": Tudui().state_dict(), "epoch": "5"}],
)


def _trainable_after_freezing() -> int:
    model = _meta_vgg16()
    model.features.requires_grad_(False)
    with torch.device("meta"):
        model.classifier[6] = nn.Linear(4096, 10)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_finetune(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    expect(isinstance(answer, int) and not isinstance(answer, bool),
           f"`answer` should be a whole number, got {type(answer).__name__}.")
    expected = _trainable_after_freezing()
    expect(answer != 138_357_544, "that is every parameter of VGG16; count only those with "
           "requires_grad=True after freezing `features`.")
    expect(answer != 14_714_688, "that is the frozen part (`features`); count the rest.")
    expect(answer == expected, f"{answer:,} is off — did you replace classifier[6] first "
           "(4096×10 + 10 parameters instead of 4096×1000 + 1000)?")


q2 = Exercise(
    "9.2",
    "Fine-tuning: take VGG16 (weights=None is fine), freeze `features` with "
    "requires_grad_(False), replace classifier[6] by nn.Linear(4096, 10), and assign the "
    "number of parameters that will still be trained to `answer` (an int).",
    _check_finetune,
    hint_text="sum(p.numel() for p in model.parameters() if p.requires_grad)",
    solution_code="""
        import torchvision
        from torch import nn
        model = torchvision.models.vgg16(weights=None)
        model.features.requires_grad_(False)
        model.classifier[6] = nn.Linear(4096, 10)
        answer = sum(p.numel() for p in model.parameters() if p.requires_grad)
    """,
    wrong=[138_357_544, 14_714_688, 123_642_856, "119586826"],
)
