"""Errors that name settings: raised by the engine and the recipes in Python's terms
(``lr``, ``epochs`` — the keywords of ``fit`` and ``make_settings``), spelled by the command
line as its options (``--lr``, ``--epochs``). A leaf module: it imports nothing of the course.

>>> str(SettingError("lower {lr}"))
'lower lr'
>>> SettingError("lower {lr}").worded(lambda name: "--" + name)
'lower --lr'
"""

from __future__ import annotations

import re


class NamesSettings:
    """An error whose message names settings as ``{lr}``, ``{model}``: ``str()`` shows them by
    their Python names (``lr``), :meth:`worded` as a caller spells them (the command line:
    ``--lr``). ``args`` keep the placeholders, so the error survives pickling (torchrun)."""

    def worded(self, spell) -> str:
        """The message with every ``{name}`` replaced by ``spell(name)``."""
        return re.sub(r"\{([a-z_]+)\}", lambda m: spell(m.group(1)), str(self.args[0]))

    def __str__(self) -> str:
        return self.worded(lambda name: name)


class SettingError(NamesSettings, ValueError):
    """A setting that cannot be used (``make_settings``, ``fit``), named as a Python keyword."""


class DivergedError(NamesSettings, FloatingPointError):
    """The loss became NaN/inf; the message names the settings to change."""
