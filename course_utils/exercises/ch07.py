"""Chapter 7 (P22): the Tudui network, shapes through it, nn.Sequential."""

import torch
from torch import nn

from course_utils.exercises import Exercise, as_whole, call, expect
from course_utils.exercises.i18n import N_
from course_utils.models import Tudui, count_parameters


def _count(answer, what):
    return as_whole(answer, what)


def _check_q1(answer):
    value = _count(answer, N_("the number of features"))
    features = Tudui().model[:7]  # the convolutions, poolings and Flatten
    expected = features(torch.zeros(1, 3, 64, 64)).shape[1]
    expect(value != 1024, "1024 is right for 32×32 images; each 2×2 pooling halves the side, "
           "so start from 64.")
    expect(value == expected, f"{value} is off: 64 channels × (side after three halvings)².")


q1 = Exercise(
    "7.1",
    "Tudui's layers before Flatten turn a 32×32 image into 64×4×4 = 1024 features. If the "
    "images were 64×64 instead, how many in_features would the first Linear layer need? "
    "Assign the number to `answer`.",
    _check_q1,
    hint_text="The convolutions (kernel 5, padding 2) keep the size; each MaxPool2d(2) halves it.",
    solution_code="""
        side = 64 // 2 // 2 // 2
        answer = 64 * side * side
    """,
    wrong=[1024, 64 * 64 * 3, 64 * 16 * 16, 4096.5, "4096"],
)


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The layers of ``module`` in order, nested Sequentials opened up."""
    kids = list(module.children())
    return [module] if not kids else [leaf for k in kids for leaf in _leaves(k)]


def _with_relus(convs, linears) -> nn.Sequential:
    """The question's network made of the learner's own conv and linear layers."""
    return nn.Sequential(convs[0], nn.ReLU(), nn.MaxPool2d(2), convs[1], nn.ReLU(),
                         nn.MaxPool2d(2), convs[2], nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         linears[0], nn.ReLU(), linears[1])


def _relu_places(layers: list[nn.Module]) -> list[str]:
    """Where the ReLUs are missing or extra, read from the layer list."""
    problems, weighted = [], [i for i, m in enumerate(layers)
                              if isinstance(m, (nn.Conv2d, nn.Linear))]
    for n, (i, j) in enumerate(zip(weighted, weighted[1:] + [len(layers)], strict=True)):
        relus = sum(isinstance(m, nn.ReLU) for m in layers[i + 1:j])
        name = type(layers[i]).__name__
        if j == len(layers) and relus:
            problems.append(N_(f"a ReLU after the last {name}"))
        elif j < len(layers) and relus == 0:
            problems.append(N_(f"no ReLU after layer {n + 1} ({name})"))
        elif relus > 1:
            problems.append(N_(f"{relus} ReLUs after layer {n + 1} ({name})"))
    if weighted and any(isinstance(m, nn.ReLU) for m in layers[:weighted[0]]):
        problems.insert(0, N_("a ReLU before the first Conv2d (on the input)"))
    return problems


def _check_q2(answer):
    expect(isinstance(answer, nn.Sequential),
           f"`answer` should be an nn.Sequential, got {type(answer).__name__}.")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    try:
        out = call(N_("answer(a (2, 3, 32, 32) batch)"), answer, x)
    except RuntimeError as exc:
        raise AssertionError(f"a (2, 3, 32, 32) batch does not go through: {exc}") from None
    expect(isinstance(out, torch.Tensor) and out.shape == (2, 10),
           f"the output should have shape (2, 10), got {tuple(getattr(out, 'shape', ()))}.")
    layers = _leaves(answer)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    expect(count_parameters(answer) == count_parameters(Tudui()) and len(convs) == 3
           and len(linears) == 2,
           "the layer sizes differ from Tudui's (ReLU adds no parameters).")
    with torch.no_grad():
        same = torch.allclose(answer(x), _with_relus(convs, linears)(x), atol=1e-5)
    if same:  # it computes the question's network (nn.ReLU layers or a ReLU of its own)
        return
    problems = _relu_places(layers)
    first = problems[0] if problems else ""
    expect(not problems, f"the ReLUs are not where the question puts them: "
           f"{first}. Put one after each of the 3 convolutions and "
           "one between the two Linear layers — logits go to the loss without a ReLU.")
    expect(False, "it does not compute Tudui with a ReLU after each convolution and between "
           "the Linear layers: check the order of the layers.")


q2 = Exercise(
    "7.2",
    "Write Tudui as one nn.Sequential, but with an nn.ReLU() after every Conv2d and between the "
    "two Linear layers (the original has none). Assign the Sequential to `answer`.",
    _check_q2,
    hint_text="Copy the nn.Sequential(...) of the lesson and insert nn.ReLU() in four places.",
    solution_code="""
        from torch import nn
        answer = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1024, 64), nn.ReLU(), nn.Linear(64, 10),
        )
    """,
    wrong=[
        Tudui().model,
        nn.Sequential(*Tudui().model, nn.ReLU()),
        nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(1024, 64), nn.ReLU(), nn.Linear(64, 10)),
        nn.Sequential(nn.ReLU(), nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
                      nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(1024, 64), nn.ReLU(), nn.Linear(64, 10)),
        nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(32 * 16 * 16, 10)),
        Tudui(),
    ],
)


def _check_q3(answer):
    value = _count(answer, N_("the number of parameters"))
    conv = nn.Conv2d(3, 32, kernel_size=5, padding=2)
    expected = sum(p.numel() for p in conv.parameters())
    expect(value != 3 * 32 * 5 * 5, f"{value} counts the weights only; every output channel also "
           "has a bias.")
    expect(value == expected, f"{value} is off: out_channels × in_channels × 5 × 5 weights, plus "
           "one bias per output channel.")


q3 = Exercise(
    "7.3",
    "How many parameters (weights and biases) does Tudui's first layer, "
    "nn.Conv2d(3, 32, kernel_size=5, padding=2), have? Work it out, assign it to `answer` "
    "(then compare with the table's Param # column).",
    _check_q3,
    hint_text="32 kernels, each 3 × 5 × 5 (one 5×5 slice per input channel), plus 32 biases.",
    solution_code="""
        answer = 32 * 3 * 5 * 5 + 32
    """,
    wrong=[2400, 32 * 5 * 5 + 32, 2464, "2432"],
)


_SPEC = [  # (layer type, output shape without the batch dimension)
    ("Conv2d", (16, 32, 32)), ("ReLU", (16, 32, 32)), ("MaxPool2d", (16, 16, 16)),
    ("Conv2d", (32, 16, 16)), ("ReLU", (32, 16, 16)), ("MaxPool2d", (32, 8, 8)),
    ("Flatten", (2048,)), ("Linear", (10,)),
]


def _check_q4(answer):
    expect(isinstance(answer, nn.Sequential),
           f"`answer` should be an nn.Sequential, got {type(answer).__name__}.")
    layers = list(answer)
    names = [type(m).__name__ for m in layers]
    expect(names == [n for n, _ in _SPEC], f"the layers should be {[n for n, _ in _SPEC]} in "
           f"this order, got {names}.")
    for conv in (m for m in layers if isinstance(m, nn.Conv2d)):
        expect(conv.kernel_size == (3, 3), f"the convolutions have 3×3 kernels, got "
               f"{conv.kernel_size}.")
    for batch in (5, 2):  # two batch sizes: no size may be hard-coded
        h = torch.rand(batch, 3, 32, 32)
        for i, (layer, (name, shape)) in enumerate(zip(layers, _SPEC, strict=True)):
            try:
                h = call(f"layer {i} ({name})", layer, h)
            except RuntimeError as exc:
                raise AssertionError(f"layer {i} ({name}) cannot take the shape "
                                     f"{tuple(h.shape)}: {exc}") from None
            got, want = tuple(h.shape), (batch, *shape)
            expect(got == want or name != "Conv2d", f"after layer {i} ({name}) the shape is "
                   f"{got}; the specification says {want} (a 3×3 kernel keeps the size with "
                   "padding=1).")
            expect(got == want, f"after layer {i} ({name}) the shape is {got}; the "
                   f"specification says {want}.")


q4 = Exercise(
    "7.4",
    "Build an nn.Sequential that turns a batch of shape (N, 3, 32, 32) into (N, 10) through "
    "exactly these layers and output shapes: Conv2d with a 3×3 kernel → (N, 16, 32, 32); "
    "ReLU; MaxPool2d(2) → (N, 16, 16, 16); Conv2d 3×3 → (N, 32, 16, 16); ReLU; "
    "MaxPool2d(2) → (N, 32, 8, 8); Flatten → (N, 2048); Linear → (N, 10). Assign it to "
    "`answer`. The checker pushes batches of its own through it, layer by layer.",
    _check_q4,
    hint_text="Work out the padding that keeps 32×32 with kernel_size=3 (chapter 6's formula), "
    "and the Flatten size: 32 channels × 8 × 8.",
    solution_code="""
        from torch import nn
        answer = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
        )
    """,
    wrong=[
        nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 6 * 6, 10)),
        nn.Sequential(nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(2048, 10)),
        nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2),
                      nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(2048, 10)),
        nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(1024, 10)),
        nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(2048, 64)),
        Tudui().model,
    ],
)
