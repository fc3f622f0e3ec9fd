"""The course's networks.

* :class:`Tudui` — the CIFAR-10 network of P22/P27, faithful to the original: three
  5×5 conv + max-pool stages, Flatten, Linear(1024, 64), Linear(64, 10), **no ReLU**.
* :class:`TuduiPlain` — :class:`Tudui` written without ``nn.Sequential`` (P22's first form).
* :class:`TuduiBN` — Tudui's layout with BatchNorm and ReLU added (chapter 10's experiment).
* :class:`FastCNN` — the network of the ``improved`` recipe (:mod:`course_utils.recipes`):
  3×3 convs, pooling early, BatchNorm, ReLU, global max-pool.
* :class:`DeepCNN` — the network of the ``deep`` recipe: seven convolutions, trained in
  bfloat16 where the CPU has BF16 instructions (the most accuracy in ten minutes on two CPU
  cores, appendix A).

``build_model(name)`` builds any of them by its :data:`MODELS` name (the CLI's ``--model``).
"""

from __future__ import annotations

from torch import nn

from course_utils.i18n import tr


class Tudui(nn.Module):
    """小土堆's CIFAR-10 network (P22, P27).

    Shapes: ``(N, 3, 32, 32)`` → ``(N, 10)`` logits.

    >>> import torch
    >>> Tudui()(torch.ones(64, 3, 32, 32)).shape
    torch.Size([64, 10])
    """

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(3, 32, 5, 1, 2),  # (N, 32, 32, 32)
            nn.MaxPool2d(2),  # (N, 32, 16, 16)
            nn.Conv2d(32, 32, 5, 1, 2),  # (N, 32, 16, 16)
            nn.MaxPool2d(2),  # (N, 32, 8, 8)
            nn.Conv2d(32, 64, 5, 1, 2),  # (N, 64, 8, 8)
            nn.MaxPool2d(2),  # (N, 64, 4, 4)
            nn.Flatten(),  # (N, 1024)
            nn.Linear(64 * 4 * 4, 64),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.model(x)


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class TuduiBN(nn.Module):
    """Tudui's layout with BatchNorm + ReLU after every conv and a ReLU between the linears.

    The one-change experiment of chapter 10 (what do BatchNorm and ReLU alone buy?); it is
    *not* the improved recipe's network, which is :class:`FastCNN`. Almost the same size as
    Tudui (145,706 parameters). Shapes: ``(N, 3, 32, 32)`` → ``(N, 10)``.

    >>> import torch
    >>> TuduiBN()(torch.ones(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            *_conv_bn_relu(3, 32, 5), nn.MaxPool2d(2),
            *_conv_bn_relu(32, 32, 5), nn.MaxPool2d(2),
            *_conv_bn_relu(32, 64, 5), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 64), nn.ReLU(inplace=True),
            nn.Linear(64, 10),
        )  # fmt: skip

    def forward(self, x):
        return self.model(x)


class TuduiPlain(nn.Module):
    """:class:`Tudui` written without ``nn.Sequential`` — the course's first form in P22.

    Same layers in the same order (so ``count_parameters`` is 145,578 as well); each layer is
    an attribute and ``forward`` calls them one by one. Shapes: ``(N, 3, 32, 32)`` → ``(N, 10)``.

    >>> import torch
    >>> TuduiPlain()(torch.ones(64, 3, 32, 32)).shape
    torch.Size([64, 10])
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=5, padding=2)
        self.maxpool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 32, kernel_size=5, padding=2)
        self.maxpool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, kernel_size=5, padding=2)
        self.maxpool3 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.linear1 = nn.Linear(1024, 64)
        self.linear2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.maxpool1(x)
        x = self.conv2(x)
        x = self.maxpool2(x)
        x = self.conv3(x)
        x = self.maxpool3(x)
        x = self.flatten(x)
        x = self.linear1(x)
        x = self.linear2(x)
        return x


class FastCNN(nn.Module):
    """The ``improved`` recipe's network, designed for speed on a CPU (242,474 parameters).

    Four stages of 3×3 conv → 2×2 max-pool → BatchNorm → ReLU with widths 32, 64, 128, 128
    (pooling right after each conv keeps the later convs on small maps: about 12.7 M
    multiply-adds per image, as many as :class:`Tudui`), then a global max-pool over the
    last 2×2 map and one Linear layer. Trained 10 epochs with ``benchmarks/accuracy.py
    --recipe improved``; see ``course_utils/weights/README.md`` for its accuracy.

    Shapes: ``(N, 3, 32, 32)`` → 16×16 → 8×8 → 4×4 → 2×2 → ``(N, 128)`` → ``(N, 10)``.

    >>> import torch
    >>> FastCNN()(torch.ones(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, widths=(32, 64, 128, 128), num_classes: int = 10):
        super().__init__()
        stages, c_in = [], 3
        for c_out in widths:
            stages += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class DeepCNN(nn.Module):
    """The ``deep`` recipe's network: seven convolutions, for the most accuracy a CPU can buy
    in ten minutes (498,128 parameters, about 33 M multiply-adds per image).

    A 2×2 "stem" convolution, then three stages of (3×3 conv → 2×2 max-pool → BatchNorm →
    ReLU → 3×3 conv → BatchNorm → ReLU) with widths 32, 128, 128, a global max-pool and one
    Linear layer. Like :class:`FastCNN` it pools right after the first conv of a stage, so the
    wide convs work on small maps. Trained in bfloat16 (mixed precision, appendix A) where the
    hardware computes it, else in float32 (the recipe's precision ``auto``).

    Shapes: ``(N, 3, 32, 32)`` → stem 31×31 → 15×15 → 7×7 → 3×3 → ``(N, 128)`` → ``(N, 10)``.

    >>> import torch
    >>> DeepCNN()(torch.ones(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, widths=(32, 128, 128), stem: int = 24, num_classes: int = 10):
        super().__init__()
        layers = [nn.Conv2d(3, stem, 2, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        c_in = stem
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       *_conv_bn_relu(c_out, c_out, 3)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes, bias=False)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


#: Every network by the name the CLI's ``--model`` and checkpoints' ``model_name`` use.
MODELS = {"tudui": Tudui, "tudui-bn": TuduiBN, "tudui-plain": TuduiPlain, "fast-cnn": FastCNN,
          "deep-cnn": DeepCNN}
#: Names that older checkpoints carry, and what they are called now.
OLD_NAMES = {"tudui-improved": "fast-cnn", "TuduiImproved": "fast-cnn"}


def model_key(name: str) -> str:
    """The :data:`MODELS` name for a registry name, an old name or a class name
    (``"TuduiBN"`` → ``"tudui-bn"``); ``ValueError`` lists the names when it is unknown."""
    if name in MODELS:
        return name
    if name in OLD_NAMES:
        return OLD_NAMES[name]
    for key, cls in MODELS.items():
        if cls.__name__ == name:
            return key
    raise ValueError(tr(f"unknown model {name!r}; choose one of {sorted(MODELS)}."))


def build_model(name: str = "tudui") -> nn.Module:
    """A fresh network by name (see :func:`model_key`)."""
    return MODELS[model_key(name)]()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``Tudui`` has 145,578)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
