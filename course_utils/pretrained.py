"""torchvision's pretrained weights (P25), offline when they are cached.

>>> # vgg16 = load_pretrained(torchvision.models.vgg16, VGG16_Weights.DEFAULT)
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import torch
from torch import nn

from course_utils import download as dl
from course_utils.i18n import N_, tr


def pretrained_file(weights) -> Path:
    """Where torchvision keeps ``weights`` once downloaded:
    ``<torch.hub.get_dir()>/checkpoints/<file name>`` (``$TORCH_HOME/hub/checkpoints``).

    >>> pretrained_file(torchvision.models.VGG16_Weights.DEFAULT).name
    'vgg16-397923af.pth'
    """
    name = Path(urllib.parse.urlsplit(weights.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_pretrained(builder, weights, *, download: bool = True, **kwargs) -> nn.Module:
    """``builder(weights=weights)`` — e.g. ``load_pretrained(torchvision.models.vgg16,
    VGG16_Weights.DEFAULT)`` — offline when the file is cached, else after a download.

    Raises :class:`course_utils.download.OfflineError` with one clear sentence when the
    file is not cached and ``download=False`` or the server cannot be reached.
    """
    path = pretrained_file(weights)
    size = weights.meta.get("_file_size")
    what = f"{weights} ({size:.0f} MB)" if size else str(weights)
    if not path.is_file():
        advice = N_(f"Run this once online (the file is then kept at {path}), or copy "
                    f"{path.name} there from a machine that has it. Without it, build the "
                    "model with weights=None (same layers, random weights).")
        if not download:
            raise dl.OfflineError(tr(f"{what} is not downloaded yet and downloading is off. "
                                     f"{advice}"))
        if not dl.host_reachable(weights.url):
            host = urllib.parse.urlsplit(weights.url).hostname
            raise dl.OfflineError(tr(f"{what} is not downloaded yet and {host} cannot be "
                                     f"reached (offline?). {advice}"))
        print("[course_utils] " + tr(f"downloading {what} to {path} (once) …"))
    try:
        return builder(weights=weights, **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad hash a RuntimeError
        first = str(exc).splitlines()[0]
        raise dl.OfflineError(tr(
            f"could not get {what}: {type(exc).__name__}: {first}. "
            f"Delete {path} if it exists and try again online.")) from None
