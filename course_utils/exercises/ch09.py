"""Chapter 9 (P25–P26): editing VGG16, fine-tuning counts, safe checkpoints (in the order
the notebook asks them)."""

import io
import tempfile
from pathlib import Path

import torch
import torchvision
from torch import nn

from course_utils.exercises import Exercise, _short, as_whole, call, expect, names_sorted
from course_utils.models import Tudui


def _meta_vgg16() -> nn.Module:
    """VGG16's layers on the 'meta' device: the structure without 138 M real numbers."""
    with torch.device("meta"):
        return torchvision.models.vgg16(weights=None)


def _check_q1(model):
    expect(isinstance(model, torchvision.models.VGG),
           f"`answer` should be the VGG16 model itself, got {type(model).__name__}.")
    convs = sum(isinstance(m, nn.Conv2d) for m in model.features)
    expect(convs == 13, f"that VGG has {convs} convolutions; VGG16 has 13 (13 convolutions + "
           "3 Linear layers = 16): torchvision.models.vgg16(weights=None).")
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


def _meta_vgg11_for_10() -> nn.Module:
    """Wrong on purpose: VGG11 (8 convolutions) with the right new last layer."""
    with torch.device("meta"):
        model = torchvision.models.vgg11(weights=None)
        model.classifier[6] = nn.Linear(4096, 10)
    return model


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
    wrong=[_meta_vgg16(), nn.Linear(4096, 10), "classifier[6]", _meta_vgg11_for_10()],
)


def _check_checkpoint(answer):
    expect(isinstance(answer, dict), f"`answer` should be a dict, got {type(answer).__name__}.")
    expect("model_state" in answer and "epoch" in answer,
           f"the dict needs the keys 'model_state' and 'epoch'; it has {names_sorted(answer)}.")
    buffer = io.BytesIO()
    try:
        torch.save(answer, buffer)
    except Exception as exc:  # noqa: BLE001 — a lambda, a local class, an open file …
        raise AssertionError(
            f"torch.save cannot store it ({type(exc).__name__}: {str(exc)[:80]}): a checkpoint "
            "holds tensors, numbers and strings — no functions or lambdas.") from None
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
    answer = as_whole(answer)
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


# ----------------------------------------------------------------------------- 9.4
def _check_roundtrip(fn):
    expect(callable(fn) and not isinstance(fn, type),
           f"`answer` should be your function save_and_restore (no parentheses), got "
           f"{_short(fn)}.")
    with torch.random.fork_rng():
        torch.manual_seed(9)
        model = Tudui()
    model.train()
    want = {k: v.clone() for k, v in model.state_dict().items()}
    loads = []
    real_load = torch.load

    def spy(*args, **kwargs):
        loads.append(kwargs.get("weights_only", True))
        return real_load(*args, **kwargs)

    with tempfile.TemporaryDirectory(prefix="ex9_4_") as tmp:
        path = Path(tmp) / "tudui_epoch5.pt"
        torch.load = spy
        failure = None
        try:
            result = call("save_and_restore(model, path)", fn, model, str(path))
        except Exception as exc:  # noqa: BLE001 — first see whether the saved file explains it
            failure = exc
        finally:
            torch.load = real_load
        if failure is not None and not path.is_file():
            raise failure
        expect(path.is_file(), "nothing was saved at `path`: torch.save(checkpoint, "
               "path).")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 — any refusal is the learner's to see
            raise AssertionError(
                "torch.load(path, weights_only=True) refuses the saved file "
                f"({type(exc).__name__}): save model.state_dict() in a dict, not the model "
                "object.") from None
    if failure is not None:
        raise failure
    expect(isinstance(saved, dict) and "model_state" in saved and "epoch" in saved,
           "the saved file should hold the dict {'model_state': model.state_dict(), "
           f"'epoch': 5}}, got {_short(saved)}.")
    expect(saved["epoch"] == 5, f"'epoch' should be 5, got {saved['epoch']!r}.")
    expect(loads, "save_and_restore never called torch.load: read the file back with "
           "torch.load(path, weights_only=True).")
    expect(all(loads), "torch.load(..., weights_only=False) runs any code a file holds: "
           "load with weights_only=True.")
    expect(isinstance(result, Tudui), f"return the fresh Tudui, got {_short(result)}.")
    expect(result is not model, "it returns the model it was given; build a fresh Tudui() and "
           "load the weights into it with load_state_dict.")
    got = result.state_dict()
    expect(all(torch.equal(got[k], want[k]) for k in want),
           "the returned model's weights are not the saved ones: "
           "fresh.load_state_dict(checkpoint['model_state']).")
    expect(not result.training, "the restored model is in training mode: call .eval() on it "
           "before you use it for predictions.")


def _roundtrip(*, whole=False, fresh=True, load=True, safe=True, eval_mode=True):
    """Variants of the reference save_and_restore for the known-wrong answers."""
    def save_and_restore(model, path):
        state = model if whole else model.state_dict()
        torch.save({"model_state": state, "epoch": 5}, path)
        checkpoint = torch.load(path, map_location="cpu", weights_only=safe)
        restored = Tudui() if fresh else model
        if load:
            restored.load_state_dict(checkpoint["model_state"])
        return restored.eval() if eval_mode else restored
    return save_and_restore


q4 = Exercise(
    "9.4",
    "Save and load for real: write `save_and_restore(model, path)` that saves the checkpoint "
    "{'model_state': model.state_dict(), 'epoch': 5} to `path` with torch.save, reads it back "
    "with torch.load(path, map_location='cpu', weights_only=True), builds a fresh Tudui, "
    "loads the weights into it with load_state_dict, and returns the fresh model in eval mode. "
    "The checker calls it with a Tudui of its own and a path in a temporary folder. Assign the "
    "function to `answer`.",
    _check_roundtrip,
    hint_text="torch.save({'model_state': model.state_dict(), 'epoch': 5}, path); checkpoint = "
    "torch.load(path, map_location='cpu', weights_only=True); fresh = Tudui(); "
    "fresh.load_state_dict(checkpoint['model_state']); return fresh.eval()",
    solution_code="""
        import torch
        from course_utils.models import Tudui

        def save_and_restore(model, path):
            torch.save({"model_state": model.state_dict(), "epoch": 5}, path)
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            fresh = Tudui()
            fresh.load_state_dict(checkpoint["model_state"])
            return fresh.eval()

        answer = save_and_restore
    """,
    wrong=[_roundtrip(whole=True), _roundtrip(fresh=False), _roundtrip(load=False),
           _roundtrip(safe=False), _roundtrip(eval_mode=False), "torch.save"],
)
