"""The course's networks.

* :class:`Tudui` — the CIFAR-10 network of P22/P27, faithful to the original: three
  5×5 conv + max-pool stages, Flatten, Linear(1024, 64), Linear(64, 10), **no ReLU**.
* :class:`TuduiBN` — the same stages with BatchNorm and ReLU (the "improved recipe").

``build_model(name)`` builds either by name (used by the CLI's ``--model``).
"""

from __future__ import annotations

from torch import nn


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

    Almost the same size (145,706 parameters). Shapes: ``(N, 3, 32, 32)`` → ``(N, 10)``.
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


MODELS = {"tudui": Tudui, "tudui-bn": TuduiBN}


def build_model(name: str = "tudui") -> nn.Module:
    """A fresh network by name; ``ValueError`` lists the names when ``name`` is unknown."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}.") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``Tudui`` has 145,578)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
