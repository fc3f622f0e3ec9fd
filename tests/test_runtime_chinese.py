"""Issue #26: with the course's language set to Chinese, a short real training run (engine.fit,
resumed from its checkpoint), the precision line and the errors of a broken checkpoint, a
wrong device and a bad command-line option show no English sentence from course_utils; with
the default (English) the same runs print the English lines."""

import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checkpoints, cli, devices, engine, i18n

#: four or more ASCII words in a row: an English sentence (paths, numbers, code are fewer)
ENGLISH = re.compile(r"[A-Za-z]{2,}(?:[ ,;:()'-]+[A-Za-z]{2,}){3,}")
CJK = re.compile("[\u4e00-\u9fff]")


def _english_sentences(text: str, *allowed: str) -> list[str]:
    for known in allowed:  # paths, tracebacks' type names: not the course's words
        text = text.replace(known, " ")
    return ENGLISH.findall(text)


def _fit(run_dir, epochs=1, checkpoint=None):
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if checkpoint is not None:
        checkpoint = checkpoints.load_checkpoint(checkpoint, model)
    return engine.fit(model, loader, loader, epochs=epochs, optimizer=optimizer,
                      loss_fn=nn.CrossEntropyLoss(), device=torch.device("cpu"),
                      run_dir=run_dir, checkpoint=checkpoint, progress=False, verbose=True)


def _run_all(tmp_path, capsys) -> tuple[str, list[str]]:
    """Train one epoch, resume for a second, print the precision line; then collect the
    messages of a damaged checkpoint, a missing one, an unknown device and a bad option."""
    run = tmp_path / "run"
    _fit(run)
    _fit(run, epochs=2, checkpoint=run / "checkpoints" / "last.pt")
    devices.autocast_dtype("auto", "cpu", verbose=True)
    errors = []
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    for path in (broken, tmp_path / "missing.pt"):
        with pytest.raises((checkpoints.CheckpointError, FileNotFoundError)) as info:
            checkpoints.load_checkpoint(path, nn.Linear(4, 2))
        errors.append(str(info.value))
    with pytest.raises(ValueError) as info:
        devices.pick_device("tpu")
    errors.append(str(info.value))
    printed = capsys.readouterr().out
    with pytest.raises(SystemExit) as info:  # argparse reports the converter's message
        cli.main(["train", "--epochs", "zero"])
    assert info.value.code == 2
    errors.append(capsys.readouterr().err.strip().splitlines()[-1])
    return printed, errors


def test_a_chinese_kernel_sees_no_english_sentence_from_training_and_checkpoints(
        tmp_path, capsys):
    i18n.set_language("zh")
    i18n.MISSED.clear()
    printed, errors = _run_all(tmp_path, capsys)
    assert "第 1/1 轮" in printed and "测试准确率" in printed, printed
    assert "第 2/2 轮" in printed and "接着训练" in printed, printed
    assert "精度：" in printed, printed
    # argparse's own frame ("…: error: argument --epochs: …") stays English, as its help does
    allowed = (str(tmp_path), "python -m course_utils train: error: argument --epochs:")
    assert not _english_sentences(printed, *allowed), printed
    for message in errors:
        assert CJK.search(message), message
        assert not _english_sentences(message, *allowed), message
    assert not i18n.MISSED, i18n.MISSED


def test_english_is_the_default(tmp_path, capsys):
    printed, errors = _run_all(tmp_path, capsys)
    assert "epoch 1/1: train loss" in printed and "test accuracy" in printed, printed
    assert "resumed at epoch 1, step 4" in printed, printed
    assert "[course_utils] precision: " in printed, printed
    assert not CJK.search(printed + "".join(errors)), (printed, errors)
    assert "is not a readable PyTorch checkpoint" in errors[0]
    assert "does not exist" in errors[1]
    assert "is not a device" in errors[2] or "not supported" in errors[2], errors[2]
    assert "is not a whole number" in errors[3], errors[3]


def test_a_command_started_from_a_chinese_kernel_speaks_chinese(monkeypatch):
    """set_language sets COURSE_LANG for the commands the kernel starts (appendix B runs
    ``python -m course_utils train`` in a subprocess), and None puts it back as it was."""
    import os
    import subprocess
    import sys

    monkeypatch.setenv(i18n.ENV, "en")
    i18n.set_language("zh")
    done = subprocess.run([sys.executable, "-m", "course_utils", "train", "--epochs", "zero"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "不是整数" in done.stderr.splitlines()[-1], done.stderr
    i18n.set_language(None)
    assert os.environ[i18n.ENV] == "en" and i18n.language() == "en"


def _untranslated(path) -> list[str]:
    """The messages of one module that bypass ``tr``: a ``raise X("…")`` / ``raise X(f"…")``
    and a ``print("[course_utils] …")`` whose words are written there and not passed through
    ``tr`` (a line that only prints an exception, already translated, is fine)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            words = node.exc.args[0]
            kind = getattr(node.exc.func, "attr", getattr(node.exc.func, "id", ""))
            if isinstance(words, (ast.JoinedStr, ast.Constant)) and kind != "AssertionError":
                found.append(f"{path.name}:{node.lineno} raise {kind}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print" and node.args:
            text = node.args[0]
            written = [part.value for part in getattr(text, "values", [text])
                       if isinstance(part, ast.Constant)]
            if ("[course_utils]" in "".join(map(str, written))
                    and not re.search(r"\btr\(", ast.unparse(text))
                    and any(str(w).strip() != "[course_utils]" for w in written)):
                found.append(f"{path.name}:{node.lineno} print")
    return found


def test_every_message_the_package_writes_goes_through_the_course_language():
    """Issue #25's left item: the damaged-folder lines of ``root=`` (and the other modules'
    errors) reached a Chinese learner in English because they bypassed ``tr``. Every module's
    written messages go through ``tr`` and the module is extracted into messages.po.
    ``catalogues.check_lang`` is the one exception: it reports the language choice itself and
    lies below ``i18n`` (it names 简体中文 in its message)."""
    from pathlib import Path

    package = Path(i18n.__file__).parent
    missed, not_extracted = [], []
    for path in sorted(package.glob("*.py")):
        if path.name in ("catalogues.py", "i18n.py"):
            continue
        missed += _untranslated(path)
        if re.search(r"\btr\(", path.read_text(encoding="utf-8")) and path.name not in i18n.MODULES:
            not_extracted.append(path.name)
    assert not missed, missed
    assert not not_extracted, not_extracted
