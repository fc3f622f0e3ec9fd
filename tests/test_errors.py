"""course_utils.errors: one message, in Python's terms or spelled as the CLI's options."""

from __future__ import annotations

import pickle

import pytest

from course_utils import errors


@pytest.mark.parametrize("kind, base", [(errors.SettingError, ValueError),
                                        (errors.DivergedError, FloatingPointError)])
def test_a_named_setting_is_spelled_by_whoever_reports_it(kind, base):
    exc = kind("runs/x was trained with {batch_size} 32; leave out {batch_size} or {resume}")
    assert isinstance(exc, base)
    assert str(exc) == "runs/x was trained with batch_size 32; leave out batch_size or resume"
    flags = exc.worded(lambda name: "--" + name.replace("_", "-"))
    assert flags == "runs/x was trained with --batch-size 32; leave out --batch-size or --resume"
    again = pickle.loads(pickle.dumps(exc))  # torchrun sends rank 0's error to every process
    assert type(again) is kind and again.worded(lambda name: "--" + name) == \
        "runs/x was trained with --batch_size 32; leave out --batch_size or --resume"
