"""Conv and pool arithmetic (the layer chapters): PyTorch's output-size formula,
``H_out = ⌊(H + 2p − d(k−1) − 1) / s⌋ + 1``, written once and tested against real layers.
The chapters import it from :mod:`course_utils.layers`, whose pictures and explorer draw it."""

from __future__ import annotations

from course_utils.i18n import tr

__all__ = ["conv_output_size", "pool_output_size"]


def _check_ints(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(tr(f"{name} must be an int, got {value!r} ({type(value).__name__})."))
    for name in ("size", "kernel_size", "stride", "dilation"):
        if name in values and values[name] < 1:
            raise ValueError(tr(f"{name} must be at least 1, got {values[name]}."))
    if values.get("padding", 0) < 0:
        raise ValueError(tr(f"padding must be 0 or more, got {values['padding']}."))


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int | str = 0,
                     dilation: int = 1) -> int:
    """Output height (or width) of ``nn.Conv2d`` for an input of height (width) ``size``.

    ``H_out = ⌊(H + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1``.
    ``padding`` may also be ``"valid"`` (= 0) or ``"same"`` (output = input; stride 1 only).

    Raises ``ValueError`` when the (dilated) kernel is larger than the padded input, the
    case where ``nn.Conv2d`` fails with "Kernel size can't be greater than actual input size".

    >>> conv_output_size(5, 3), conv_output_size(5, 3, stride=2), conv_output_size(5, 3, padding=1)
    (3, 2, 5)
    >>> conv_output_size(32, 5, padding=2)   # Tudui's convolutions keep 32×32
    32
    """
    if padding == "valid":
        padding = 0
    elif padding == "same":
        _check_ints(size=size, kernel_size=kernel_size, stride=stride, dilation=dilation)
        if stride != 1:
            raise ValueError(tr(f"padding='same' needs stride=1 (got stride={stride}), "
                                "as in PyTorch."))
        return size
    _check_ints(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation)
    span = dilation * (kernel_size - 1) + 1  # the kernel's reach, dilation included
    if span > size + 2 * padding:
        raise ValueError(tr(
            f"kernel_size={kernel_size} with dilation={dilation} spans {span} pixels, more "
            f"than the padded input ({size} + 2·{padding} = {size + 2 * padding}). Use a "
            "smaller kernel or dilation, or more padding."
        ))
    return (size + 2 * padding - span) // stride + 1


def pool_output_size(size: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output height (width) of ``nn.MaxPool2d``; ``stride`` defaults to ``kernel_size``.

    Same formula as :func:`conv_output_size`, with ⌈ ⌉ instead of ⌊ ⌋ when ``ceil_mode``
    (a last, partial window is kept) — except that a window starting in the right padding is
    dropped, as PyTorch does. ``ValueError`` when the output would be empty.

    >>> pool_output_size(5, 3), pool_output_size(5, 3, ceil_mode=True)   # the course's P19
    (1, 2)
    """
    stride = kernel_size if stride is None else stride
    _check_ints(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation)
    if padding > kernel_size // 2:
        raise ValueError(tr(f"padding={padding} is more than half of kernel_size={kernel_size}; "
                            "PyTorch's pooling layers allow at most kernel_size // 2."))
    room = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # that window would start in the padding only
    if out < 1:
        raise ValueError(tr(f"a pooling window of {kernel_size} (dilation {dilation}) does not "
                            f"fit an input of {size} with padding {padding}; the output would be "
                            "empty."))
    return out
