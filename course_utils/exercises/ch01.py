"""Chapter 1 (P4): dir() opens the toolbox, help() reads the manual."""

from collections.abc import Set

import torch
from torch import nn

from course_utils.exercises import Exercise, _short, call, expect


def _check_q1(answer):
    expect(isinstance(answer, (list, tuple, Set)),
           f"`answer` should be a list of names, got {type(answer)}.")
    expect("is_available" in answer, "`is_available` is missing — did you look inside torch.cuda?")
    expect(all(isinstance(n, str) for n in answer), "every item should be a name (a str).")
    expect(not any(n.startswith("__") for n in answer),
           "drop the dunder names (those that start with '__').")
    real = set(n for n in dir(torch.cuda) if not n.startswith("__"))
    missing = sorted(real - set(answer))
    expect(not missing, f"some names of torch.cuda are missing, e.g. {missing[:3]}.")
    invented = sorted(set(answer) - real)
    expect(not invented, f"{invented[:3]} are not names in torch.cuda — take the names from "
           "dir(torch.cuda), do not add your own.")


q1 = Exercise(
    "1.1",
    "Make `answer` the list of names in `torch.cuda` that do not start with '__'.",
    _check_q1,
    hint_text="dir(torch.cuda) lists every name; keep those where not name.startswith('__').",
    solution_code="""
        import torch
        answer = [name for name in dir(torch.cuda) if not name.startswith("__")]
    """,
    wrong=[["__doc__", "is_available"], ["device_count"], "is_available", ["is_available"],
           [n for n in dir(torch.cuda) if not n.startswith("__")] + ["is_fast", "gpu_count"]],
)


def _check_q2(answer):
    expect(not isinstance(answer, bool),
           f"`answer` is {answer!r}, a bool: you *called* the function. help() wants the "
           "function itself — leave out the ().")
    expect(callable(answer), f"`answer` should be a function, got {type(answer).__name__}.")
    expect(answer is torch.cuda.is_available,
           f"that is {getattr(answer, '__qualname__', answer)!r}, not torch.cuda.is_available.")


q2 = Exercise(
    "1.2",
    "Assign to `answer` exactly what you would pass to help() to read the manual of "
    "torch.cuda.is_available.",
    _check_q2,
    hint_text="help(f) needs the tool f itself. f() is what the tool *returns* (here True/False).",
    solution_code="""
        import torch
        answer = torch.cuda.is_available
    """,
    wrong=[False, True, "is_available", torch.cuda.device_count],
)


def _check_q3(answer):
    expect(isinstance(answer, str), f"give the version as a str, got {type(answer).__name__}.")
    expect(answer == torch.__version__,
           f"{_short(answer)} is not the version of the torch you run. Which name in dir(torch) "
           "starts and ends with '__' and says 'version'?")


q3 = Exercise(
    "1.3",
    "Use dir(torch) to find the dunder name that holds torch's version string, and assign "
    "its value to `answer`.",
    _check_q3,
    hint_text="[n for n in dir(torch) if 'version' in n] — then read torch.<that name>.",
    solution_code="""
        import torch
        answer = torch.__version__
    """,
    wrong=["__version__", "2.0.0", torch.version],
)


class _Empty:
    """A class with one public method (one of the checker's own cases)."""

    def method(self):
        return None


def _check_q4(answer):
    import functools
    import types

    expect(callable(answer) and not isinstance(answer, type),
           f"`answer` should be your function public_names (no parentheses), got "
           f"{_short(answer)}.")
    cases = [torch.cuda, torch.nn.functional, _Empty, object(),
             functools.lru_cache(maxsize=None)(abs), types.SimpleNamespace(a=1, _b=2)]
    for obj in cases:
        want = sorted(n for n in dir(obj) if not n.startswith("_"))
        got = call(f"public_names({obj!r:.40})", answer, obj)
        expect(isinstance(got, list), f"public_names({obj!r:.40}) returned "
               f"{type(got).__name__}; return a list of names.")
        extra = sorted(set(got) - set(want))
        missing = sorted(set(want) - set(got))
        expect(not extra, f"public_names({obj!r:.40}) includes {extra[:3]}: leave out every "
               "name that starts with '_' (dunder names too).")
        expect(not missing, f"public_names({obj!r:.40}) misses {missing[:3]}.")
        expect(got == want, f"public_names({obj!r:.40}) has the right names in the wrong "
               "order: return them sorted.")


def _public_with_dunders(obj):
    return sorted(n for n in dir(obj) if not n.startswith("__"))


def _public_unsorted(obj):
    return [n for n in reversed(dir(obj)) if not n.startswith("_")]


q4 = Exercise(
    "1.4",
    "Write a function `public_names(obj)` that returns the sorted list of the names in "
    "`dir(obj)` that do not start with an underscore (neither `_private` nor `__dunder__`). "
    "The checker calls it on modules, a class, a plain object and a cached function of its "
    "own. Assign the function (no parentheses) to `answer`.",
    _check_q4,
    hint_text="[n for n in dir(obj) if not n.startswith('_')] — dir() already sorts, but say "
    "sorted(...) to be sure.",
    solution_code="""
        def public_names(obj):
            return sorted(name for name in dir(obj) if not name.startswith("_"))

        answer = public_names
    """,
    wrong=[_public_with_dunders, _public_unsorted, dir, ["is_available"]],
)


# ----------------------------------------------------------------------------- 1.5
def _layers() -> list[nn.Module]:
    """The checker's own layers: weights and a bias, no bias, buffers that are not
    parameters (BatchNorm's running statistics), a layer with no parameters at all."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return [nn.Linear(4, 2), nn.Conv2d(3, 8, kernel_size=5), nn.Linear(6, 3, bias=False),
                nn.BatchNorm2d(16), nn.ReLU(), nn.Embedding(10, 4)]


def _check_q5(answer):
    expect(callable(answer) and not isinstance(answer, type),
           f"`answer` should be your function param_shapes (no parentheses), got "
           f"{_short(answer)}.")
    for layer in _layers():
        want = {name: tuple(p.shape) for name, p in layer.named_parameters(recurse=False)}
        got = call(f"param_shapes({layer!r})", answer, layer)
        expect(isinstance(got, dict), f"param_shapes({layer!r}) returned "
               f"{type(got).__name__}; return a dict {{name: shape}}.")
        keys = {str(k) for k in got}
        extra, missing = sorted(keys - set(want)), sorted(set(want) - keys)
        buffers = [n for n in extra if n in dict(layer.named_buffers())]
        expect(not buffers, f"param_shapes({layer!r}) lists {buffers}: those are buffers "
               "(tensors the layer keeps), not nn.Parameter — keep only the values that are "
               "an nn.Parameter.")
        expect(not extra, f"param_shapes({layer!r}) lists {extra[:3]}, which are not "
               "parameters of the layer (a bias=False layer has bias None).")
        expect(not missing, f"param_shapes({layer!r}) misses {missing}.")
        for name, shape in want.items():
            value = got[name]
            expect(not isinstance(value, torch.Tensor) or isinstance(value, torch.Size),
                   f"param_shapes({layer!r})[{name!r}] is the parameter itself; give its "
                   "shape: tuple(param.shape).")
            expect(isinstance(value, (tuple, list)) and tuple(value) == shape,
                   f"param_shapes({layer!r})[{name!r}] is {_short(got[name])}, "
                   f"but the parameter's shape is {shape}: tuple(param.shape).")


def _all_tensors(layer):
    return {n: tuple(getattr(layer, n).shape) for n in dir(layer)
            if isinstance(getattr(layer, n, None), torch.Tensor)}


def _shapes_as_sizes(layer):
    return {n: getattr(layer, n) for n in dir(layer)
            if isinstance(getattr(layer, n, None), nn.Parameter)}


def _weight_only(layer):
    return {"weight": tuple(layer.weight.shape)} if hasattr(layer, "weight") else {}


q5 = Exercise(
    "1.5",
    "Explore a PyTorch layer with dir() and help(): `layer = nn.Linear(4, 2)`; `dir(layer)` "
    "lists `weight`, `bias`, `in_features`, … and `help(nn.Linear)` tells the shape of each. "
    "Write a function `param_shapes(layer)` that returns a dict {name: shape as a tuple} of "
    "every name in `dir(layer)` whose value is an `nn.Parameter` (for nn.Linear(4, 2): "
    "{'bias': (2,), 'weight': (2, 4)}). The checker calls it on layers of its own (a "
    "convolution, a Linear without bias, a BatchNorm with buffers, a ReLU). Assign the "
    "function to `answer`.",
    _check_q5,
    hint_text="for name in dir(layer): value = getattr(layer, name); keep it when "
    "isinstance(value, nn.Parameter), as tuple(value.shape). BatchNorm's running_mean is a "
    "tensor but not a Parameter.",
    solution_code="""
        import torch
        from torch import nn

        def param_shapes(layer):
            shapes = {}
            for name in dir(layer):
                value = getattr(layer, name)
                if isinstance(value, nn.Parameter):
                    shapes[name] = tuple(value.shape)
            return shapes

        answer = param_shapes
    """,
    wrong=[_all_tensors, _shapes_as_sizes, _weight_only, {"weight": (2, 4), "bias": (2,)}],
)
