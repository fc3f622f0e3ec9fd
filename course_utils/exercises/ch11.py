"""Chapter 11 (P32): preprocessing any photo, top-k probabilities, loading GPU files safely,
and a whole predict(path) written out."""

import functools
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from course_utils.data import CIFAR10_CLASSES, demo_image
from course_utils.exercises import Exercise, _short, call, expect
from course_utils.exercises.i18n import N_

#: resampling filters a learner may use to shrink the whole photo (Resize((32, 32)) uses
#: BILINEAR; PIL's own img.resize((32, 32)) uses BICUBIC)
_RESAMPLE = (Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX, Image.HAMMING)


def _check_q1(fn):
    expect(callable(fn), "`answer` should be a function preprocess(path) → tensor.")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Image.open(demo_image("dog"))
        for mode in ("RGBA", "L", "RGB"):
            path = Path(tmp) / f"dog_{mode}.png"
            photo.convert(mode).save(path)
            try:
                x = call(N_(f"preprocess(a {mode} photo)"), fn, str(path))
            except (RuntimeError, ValueError, TypeError) as exc:
                expect(mode == "RGB", f"preprocess(a {mode} photo) raised "
                       f"{type(exc).__name__}: {str(exc)[:80]} — open every photo as RGB: "
                       "Image.open(path).convert('RGB') (an RGBA photo has 4 channels, a "
                       "grayscale one 1).")
                raise
            expect(isinstance(x, torch.Tensor), f"for a {mode} photo it returns "
                   f"{type(x).__name__}, not a tensor.")
            expect(x.shape == (1, 3, 32, 32), f"a {mode} photo gives shape {tuple(x.shape)}; "
                   "the network wants (1, 3, 32, 32): convert('RGB'), Resize((32, 32)), "
                   "ToTensor, then add the batch dimension.")
            expect(x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1,
                   "values should be float32 in [0, 1] (ToTensor).")
            source = photo.convert(mode).convert("RGB")
            resized = [torch.from_numpy(np.asarray(source.resize((32, 32), f)).copy())
                       .permute(2, 0, 1).float() / 255 for f in _RESAMPLE]
            expect(any(torch.allclose(x[0], r, atol=2 / 255) for r in resized),
                   f"the pixels of the {mode} photo are not the photo resized to 32×32 — "
                   "resize the whole photo (Resize((32, 32))), do not crop it.")


q1 = Exercise(
    "11.1",
    "Write preprocess(path) that turns any photo file (RGBA, grayscale or RGB, any size) into a "
    "float tensor of shape (1, 3, 32, 32) with values in [0, 1]. Assign it to `answer`.",
    _check_q1,
    hint_text="Image.open(path).convert('RGB'), then Compose([Resize((32, 32)), ToTensor()]), "
              "then .unsqueeze(0) (or torch.reshape(x, (1, 3, 32, 32))).",
    solution_code="""
        import torchvision.transforms as T
        from PIL import Image
        def preprocess(path):
            image = Image.open(path).convert("RGB")
            return T.Compose([T.Resize((32, 32)), T.ToTensor()])(image).unsqueeze(0)
        answer = preprocess
    """,
    wrong=[
        lambda p: __import__("torchvision").transforms.ToTensor()(
            Image.open(p).resize((32, 32))).unsqueeze(0),
        lambda p: __import__("torchvision").transforms.ToTensor()(
            Image.open(p).convert("RGB").resize((32, 32))),
        lambda p: __import__("torchvision").transforms.ToTensor()(
            Image.open(p).convert("RGB").crop((0, 0, 32, 32))).unsqueeze(0),
    ],
)


def _check_q2(fn):
    expect(callable(fn), "`answer` should be a function top3(logits).")
    g = torch.Generator().manual_seed(11)
    for _ in range(3):
        logits = torch.randn(1, 10, generator=g) * 3
        z = logits[0].double().numpy()
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        order = np.argsort(-probs)[:3]
        got = call(N_("top3(logits of shape (1, 10))"), fn, logits)
        expect(isinstance(got, list) and len(got) == 3,
               f"return a list of 3 (class name, probability) pairs, got {got!r:.80}.")
        names = [pair[0] for pair in got]
        expect(all(isinstance(n, str) for n in names),
               "the first item of each pair should be the class name (use the list of classes).")
        expect(names == [CIFAR10_CLASSES[i] for i in order],
               f"classes {names} are not the three most likely, most likely first.")
        values = [pair[1] for pair in got]
        expect(all(isinstance(v, float) for v in values),
               "the probabilities should be Python floats (.item() or .tolist()).")
        expect(all(math.isclose(v, probs[i], abs_tol=1e-5) for v, i in zip(values, order,
                                                                             strict=True)),
               "these are not probabilities: apply softmax over the 10 logits first.")


q2 = Exercise(
    "11.2",
    "Write top3(logits) for logits of shape (1, 10): it returns the 3 most likely CIFAR-10 "
    "classes as [(name, probability), ...], most likely first, probabilities as floats. "
    "Assign it to `answer`.",
    _check_q2,
    hint_text="probs = logits.softmax(dim=1)[0]; values, indices = probs.topk(3); names from "
              "course_utils.data.CIFAR10_CLASSES.",
    solution_code="""
        from course_utils.data import CIFAR10_CLASSES
        def top3(logits):
            values, indices = logits.softmax(dim=1)[0].topk(3)
            return [(CIFAR10_CLASSES[i], v) for v, i in zip(values.tolist(), indices.tolist())]
        answer = top3
    """,
    wrong=[
        lambda x: _pairs(x[0].topk(3)),  # logits, not probabilities
        lambda x: x.softmax(1)[0].topk(3).indices.tolist(),  # indices only
        lambda x: _pairs(x.softmax(1)[0].topk(3, largest=False)),  # least likely
    ],
)


def _pairs(top) -> list:
    return [(CIFAR10_CLASSES[i], v)
            for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


TRIPPED = []


def _tripwire():
    """Runs only if a file is unpickled with weights_only=False."""
    TRIPPED.append(True)
    return {}


class _Sneaky:
    def __reduce__(self):
        return (_tripwire, ())


def _check_q3(fn):
    from course_utils.checkpoints import save_with_device_tag

    expect(callable(fn), "`answer` should be a function load_on_cpu(path) → state_dict.")
    weights = {"w": torch.arange(6.0).view(2, 3), "b": torch.ones(2)}
    with tempfile.TemporaryDirectory() as tmp:
        gpu_file = save_with_device_tag(weights, Path(tmp) / "from_gpu.pt", "cuda:0")
        try:
            loaded = call(N_("load_on_cpu(a file saved on a GPU)"), fn, str(gpu_file))
        except RuntimeError as exc:
            raise AssertionError(f"loading a GPU-saved file on this machine fails "
                                 f"({str(exc).splitlines()[0][:90]}…): pass map_location.") \
                from None
        expect(isinstance(loaded, dict) and set(loaded) == set(weights),
               f"it should return the file's dict with keys {sorted(weights)}.")
        expect(all(t.device.type == "cpu" for t in loaded.values()),
               "the tensors are not on the CPU: map_location='cpu' puts them there.")
        expect(all(torch.equal(loaded[k], weights[k]) for k in weights), "the values changed.")
        trap = Path(tmp) / "untrusted.pt"
        torch.save({"w": torch.ones(1), "x": _Sneaky()}, trap)
        TRIPPED.clear()
        try:
            call(N_("load_on_cpu(a file from the internet)"), fn, str(trap))
        except Exception:  # noqa: BLE001 — refusing the file is the right answer
            pass
        expect(not TRIPPED, "a file from the internet just ran code while loading: keep "
               "weights_only=True (the default) — never weights_only=False for files you "
               "did not make.")


q3 = Exercise(
    "11.3",
    "Write load_on_cpu(path): load a state_dict that was saved on a GPU, with every tensor on "
    "the CPU, safely (a file from the internet must not be able to run code). Assign it to "
    "`answer`.",
    _check_q3,
    hint_text="torch.load(path, map_location='cpu', weights_only=True)",
    solution_code="""
        import torch
        def load_on_cpu(path):
            return torch.load(path, map_location="cpu", weights_only=True)
        answer = load_on_cpu
    """,
    wrong=[lambda p: torch.load(p, map_location="cpu", weights_only=False),
           lambda p: torch.load(p),
           "map_location='cpu'"],
)


def _photos(folder: Path) -> list[Path]:
    """Photos of the checker's own: one bundled CIFAR-10 test image per class, enlarged to
    64×64 and saved as RGB, opaque RGBA and grayscale PNGs, plus the two demo photos."""
    from course_utils.settings import BUNDLED_DATA

    paths = [demo_image("dog"), demo_image("airplane")]
    for i, name in enumerate(CIFAR10_CLASSES):
        source = sorted((BUNDLED_DATA / "cifar10-sample" / "test" / name).glob("*.jpg"))[i]
        image = Image.open(source).convert("RGB").resize((64, 64), Image.BILINEAR)
        mode = ("RGB", "RGBA", "L")[i % 3]
        paths.append(folder / f"{name}_{mode}.png")
        image.convert(mode).save(paths[-1])
    return paths + list(_borderline())


#: ImageNet's mean and std — not what the shipped network was trained with
_IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@functools.cache
def _borderline(most: int = 4) -> tuple[Path, ...]:
    """Bundled 32×32 test photos on which the shipped network's answer changes when the
    photo is normalized with ImageNet's mean and std instead of the checkpoint's."""
    import torchvision.transforms as T

    from course_utils.predict import load_trained
    from course_utils.settings import BUNDLED_DATA

    model, info = load_trained()
    paths = sorted((BUNDLED_DATA / "cifar10-sample" / "test").glob("*/*.jpg"))
    x = torch.stack([T.ToTensor()(Image.open(p).convert("RGB").resize((32, 32), Image.BILINEAR))
                     for p in paths])
    with torch.no_grad():
        own = model(T.Normalize(*info["normalize"])(x)).argmax(1)
        imagenet = model(T.Normalize(*_IMAGENET)(x)).argmax(1)
    return tuple(paths[i] for i in (own != imagenet).nonzero().flatten().tolist()[:most])


def _check_q4(fn):
    from course_utils.predict import load_trained, predict_image

    expect(callable(fn), "`answer` should be a function predict(path) → class name.")
    model, info = load_trained()
    border = set(_borderline())
    with tempfile.TemporaryDirectory() as tmp:
        for path in _photos(Path(tmp)):
            expected = predict_image(model, path, 1, normalize=info["normalize"])[0][0]
            mode = path.stem.rsplit("_", 1)[-1]
            try:
                got = call(f"predict({path.name!r})", fn, str(path))
            except (RuntimeError, ValueError, TypeError) as exc:
                expect(mode not in ("RGBA", "L"), f"predict({path.name!r}) raised "
                       f"{type(exc).__name__}: {str(exc)[:80]} — open the photo as RGB "
                       "(Image.open(path).convert('RGB')): an RGBA photo has 4 channels, a "
                       "grayscale one 1, the network wants 3.")
                raise
            expect(isinstance(got, str), f"for {path.name} it returns {_short(got)} "
                   f"({type(got).__name__}); return the class name, e.g. CIFAR10_CLASSES[i].")
            expect(got == expected or path not in border,
                   f"for the test photo {path.parent.name}/{path.name} it says {got!r}; the "
                   f"shipped network says {expected!r}. This photo's answer depends on the "
                   "exact mean and std: normalize with the checkpoint's own "
                   "(T.Normalize(*state['normalize'])), not ImageNet's or numbers of your own.")
            expect(got == expected, f"for {path.name} it says {got!r}; the shipped network "
                   f"says {expected!r}. Check eval(), the checkpoint's Normalize and "
                   "Resize((32, 32)).")


def _predictor(*, normalize=True, eval_mode=True, rgb=True, as_name=True, stats=None):
    """Variants of the reference predict(path) for the known-wrong answers (the network is
    loaded on the first call, not when the chapter's exercises are imported)."""
    import torchvision.transforms as T

    from course_utils.models import FastCNN
    from course_utils.predict import SHIPPED_WEIGHTS

    def predict(path):
        state = torch.load(SHIPPED_WEIGHTS, map_location="cpu", weights_only=True)
        model = FastCNN()
        model.load_state_dict(state["model_state"])
        model.train(not eval_mode)
        steps = [T.Resize((32, 32)), T.ToTensor()]
        steps += [T.Normalize(*(stats or state["normalize"]))] if normalize else []
        transform = T.Compose(steps)
        image = Image.open(path)
        x = transform(image.convert("RGB") if rgb else image).unsqueeze(0)
        with torch.no_grad():
            index = model(x).argmax(1).item()
        return CIFAR10_CLASSES[index] if as_name else index

    return predict


q4 = Exercise(
    "11.4",
    "Write predict(path) that returns the CIFAR-10 class name (a str such as 'dog') that the "
    "course's shipped network gives the photo file at `path`, written out: build FastCNN, "
    "torch.load SHIPPED_WEIGHTS with map_location='cpu' and weights_only=True, load_state_dict "
    "of its 'model_state', eval(); open the photo as RGB, Resize((32, 32)), ToTensor, "
    "Normalize with the checkpoint's 'normalize' (mean, std), add the batch dimension; under "
    "torch.no_grad() take the argmax. Assign the function to `answer`. The checker compares it "
    "with load_trained + predict_image on 12 photos of its own (RGB, RGBA, grayscale).",
    _check_q4,
    hint_text="state = torch.load(SHIPPED_WEIGHTS, map_location='cpu', weights_only=True); "
    "model = FastCNN(); model.load_state_dict(state['model_state']); model.eval(); "
    "T.Normalize(*state['normalize']).",
    solution_code="""
        import torch
        import torchvision.transforms as T
        from PIL import Image
        from course_utils.data import CIFAR10_CLASSES
        from course_utils.models import FastCNN
        from course_utils.predict import SHIPPED_WEIGHTS

        state = torch.load(SHIPPED_WEIGHTS, map_location="cpu", weights_only=True)
        model = FastCNN()
        model.load_state_dict(state["model_state"])
        model.eval()
        transform = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize(*state["normalize"])])

        def predict(path):
            x = transform(Image.open(path).convert("RGB")).unsqueeze(0)
            with torch.no_grad():
                return CIFAR10_CLASSES[model(x).argmax(1).item()]

        answer = predict
    """,
    wrong=[_predictor(normalize=False), _predictor(eval_mode=False), _predictor(rgb=False),
           _predictor(as_name=False), _predictor(stats=_IMAGENET), lambda path: "dog"],
    time_limit=60.0,
)
