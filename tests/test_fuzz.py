"""Fuzzed inputs (Hypothesis): image bytes through ``predict`` and the data-set classes, and
random command lines through the parser. Each example ends with a result or a clear one-line
error naming the input — never another exception, a traceback or a hang.

The examples are derandomized (the same ones on every run, so CI is reproducible) and few
enough that the whole file takes well under a minute; raise ``FUZZ_EXAMPLES`` (a multiplier,
default 1) for a longer local search. What Hypothesis found became the regression tests at
the end of this file.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from course_utils import cli, data, images, predict

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
FUZZ = settings(derandomize=True, deadline=timedelta(seconds=10), database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

#: format → modes Pillow can write in it; each is opened again by the course's code
WRITABLE = {
    "PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"],
    "JPEG": ["L", "RGB", "CMYK"],
    "GIF": ["L", "P"],
    "BMP": ["1", "L", "P", "RGB"],
    "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"],
    "WEBP": ["RGB", "RGBA"],
}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif",
          "WEBP": ".webp"}


def _picture(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I"):
        return Image.fromarray(rng.integers(0, 65536, size[::-1], dtype=np.uint16)).convert(
            mode) if mode == "I" else Image.fromarray(
            rng.integers(0, 65536, size[::-1], dtype=np.uint16))
    if mode == "F":
        return Image.fromarray(rng.normal(100, 80, size[::-1]).astype(np.float32), "F")
    rgba = Image.fromarray(rng.integers(0, 256, (*size[::-1], 4), dtype=np.uint8), "RGBA")
    return rgba.convert(mode) if mode not in ("LA", "P") else rgba.convert(
        "RGB").convert(mode)


@st.composite
def image_bytes(draw) -> tuple[bytes, str]:
    """A real image file of a random format, mode and size — an animated GIF, a 16-bit PNG,
    a CMYK or EXIF-rotated JPEG among them — often damaged afterwards."""
    kind = draw(st.sampled_from(["plain", "plain", "animated-gif", "exif-jpeg"]))
    size = (draw(st.integers(1, 80)), draw(st.integers(1, 80)))
    seed = draw(st.integers(0, 2**16))
    buf = io.BytesIO()
    if kind == "animated-gif":
        frames = [_picture("P", size, seed + i) for i in range(draw(st.integers(2, 4)))]
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50,
                       loop=0)
        fmt = "GIF"
    elif kind == "exif-jpeg":
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))  # orientation, 1–8 valid, others odd
        _picture(draw(st.sampled_from(["RGB", "CMYK", "L"])), size, seed).save(
            buf, "JPEG", exif=exif)
        fmt = "JPEG"
    else:
        fmt = draw(st.sampled_from(sorted(WRITABLE)))
        _picture(draw(st.sampled_from(WRITABLE[fmt])), size, seed).save(buf, fmt)
    raw = bytearray(buf.getvalue())
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "overwrite"]))
    if damage == "truncate":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip" and raw:  # mutate the header, where the size and mode are
        at = draw(st.integers(0, min(len(raw), 64) - 1))
        raw[at] ^= draw(st.integers(1, 255))
    elif damage == "overwrite" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        junk = draw(st.binary(min_size=1, max_size=16))
        raw[at:at + len(junk)] = junk
    suffix = draw(st.sampled_from([SUFFIX[fmt]] * 3 + [".jpg", ".png"]))
    return bytes(raw), suffix


@pytest.fixture(scope="module")
def shipped():
    return predict.load_trained()


def _clean_error(exc: ValueError, path: Path) -> None:
    message = str(exc)
    assert "\n" not in message and str(path) in message, message


@settings(FUZZ, max_examples=int(150 * SCALE))
@given(sample=image_bytes())
def test_predict_gives_a_ranking_or_one_clear_line(shipped, sample):
    raw, suffix = sample
    model, info = shipped
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"photo{suffix}"
        path.write_bytes(raw)
        try:
            ranked = predict.predict_image(model, path, 3, normalize=info["normalize"])
        except ValueError as exc:
            _clean_error(exc, path)
            event("predict: a clear error")
        else:
            event("predict: a ranking")
            probs = [p for _, p in ranked]
            assert len(ranked) == 3 and probs == sorted(probs, reverse=True)
            assert 0 <= sum(probs) <= 1 + 1e-5


@settings(FUZZ, max_examples=int(60 * SCALE))
@given(sample=image_bytes())
def test_data_sets_load_or_name_the_bad_file(cache_dir, sample):
    """One fuzzed file among good ones: CIFAR10Folder (32×32 only) and a photo folder."""
    raw, suffix = sample
    with tempfile.TemporaryDirectory() as folder:
        split = Path(folder) / "test"
        for name in data.CIFAR10_CLASSES:
            (split / name).mkdir(parents=True)
            shutil.copy(sorted((data.CIFAR10_SAMPLE / "test" / name).glob("*.jpg"))[0],
                        split / name)
        path = split / "cat" / f"zz{suffix}"
        path.write_bytes(raw)
        try:
            ds = data.CIFAR10Folder(split)
        except ValueError as exc:
            _clean_error(exc, path)
            event("data set: a clear error")
        else:
            event("data set: loaded")
            n = 11 if suffix in images.PHOTO_SUFFIXES else 10  # a .gif is skipped
            assert ds.data.shape == (n, 32, 32, 3) and ds[n - 1][0].size == (32, 32)
        for photo in images.photo_files(split / "cat", verbose=False):
            try:
                assert images.open_rgb(photo).mode == "RGB"
            except ValueError as exc:
                _clean_error(exc, photo)


ALL_MODES = ["1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "I",
             "F", "LA", "La", "PA", "I;16", "I;16L", "I;16B", "I;16N"]


@settings(FUZZ, max_examples=int(60 * SCALE))
@given(mode=st.sampled_from(ALL_MODES), width=st.integers(1, 300), height=st.integers(1, 300),
       topk=st.integers(1, 10))
def test_pil_images_of_every_mode_are_predicted(shipped, mode, width, height, topk):
    """A PIL image (not a file) of any mode and size: preprocess gives (1, 3, 32, 32)."""
    model, info = shipped
    image = Image.new(mode, (width, height))
    assert predict.preprocess(image, info["normalize"]).shape == (1, 3, 32, 32)
    assert len(predict.predict_image(model, image, topk, normalize=info["normalize"])) == topk


# ------------------------------------------------------------------- command lines
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", ".", "..", "0", "1", "-1", "10", "nan", "inf", "-inf", "1e309",
                     "0.5", "1.0", "cpu", "auto", "cuda", "cuda:7", "mps", "tpu", "original",
                     "improved", "tudui", "fast-cnn", "runs", "a/b", "x:y", "~", "/", "数据"]),
    st.text(max_size=10),
)
OPTIONS = {
    "train": ["--recipe", "--model", "--epochs", "--batch-size", "--lr", "--momentum",
              "--device", "--data-dir", "--limit", "--logdir", "--run-name", "--resume",
              "--seed", "--no-progress", "--bogus"],
    "predict": ["--checkpoint", "--topk", "--device", "--bogus"],
}


@st.composite
def command_lines(draw) -> list[str]:
    command = draw(st.sampled_from(["train", "train", "predict", "predict", "tarin", ""]))
    argv = [command] if command else []
    for option in draw(st.lists(st.sampled_from(OPTIONS.get(command, ["--bogus"])),
                                max_size=5)):
        argv.append(option)
        if option != "--no-progress" and draw(st.integers(0, 9)):  # sometimes no value
            argv.append(draw(VALUES))
    if command == "predict":
        argv += draw(st.lists(st.sampled_from([str(images.demo_image("dog")), "nope.png",
                                               str(data.CIFAR10_SAMPLE), "-"]), max_size=2))
    return argv


@settings(FUZZ, max_examples=int(400 * SCALE))
@given(argv=command_lines())
def test_the_parser_gives_a_command_or_one_error_line(monkeypatch, capsys, argv):
    ran = []
    monkeypatch.setattr(cli, "train", lambda args: ran.append(args) or 0)
    monkeypatch.setattr(cli, "predict", lambda args: ran.append(args) or 0)
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    event(f"parser: exit {code}")
    if code == 0:
        assert len(ran) == 1 and ran[0].command == argv[0]
        return
    assert code == 2 and not ran, (argv, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    # argparse's usage text, then exactly one error line, the last one
    assert [line for line in lines if ": error: " in line] == lines[-1:], (argv, err)
    assert lines[-1].startswith("python -m course_utils"), (argv, err)


# -------------------------------------------------------- what the fuzzing found (kept)
def test_premultiplied_la_and_lab_images_convert():
    """to_rgb raised "conversion from La to L not supported" (found by the mode fuzzing)."""
    for mode in ("La", "LAB", "HSV", "RGBa", "I;16B", "F"):
        assert images.to_rgb(Image.new(mode, (3, 2))).size == (3, 2)


def test_a_float_image_with_nan_becomes_gray_not_an_error():
    arr = np.full((4, 4), np.nan, dtype=np.float32)
    assert images.to_rgb(Image.fromarray(arr, "F")).getpixel((0, 0)) == (0, 0, 0)
