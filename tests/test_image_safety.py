"""Images that Pillow refuses for safety ("decompression bombs": the header declares more
pixels than ``PIL.Image.MAX_IMAGE_PIXELS``) end like every other bad image on every path that
opens one: one line naming the file and why, exit 2 on the command line, a ``ValueError`` in
the notebook helpers — never a traceback, never an attempt to decode the pixels."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import pytest
from _helpers import jpg_copy
from PIL import Image, ImageFile

from course_utils import data, images, predict

#: A small stand-in for Pillow's 89,478,485-pixel limit (the demo photos, 456×336 at most,
#: stay under it).
LIMIT = 200_000


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels (its data is 1 pixel)."""
    Image.new("L", (1, 1)).save(path, "PNG")
    raw = bytearray(path.read_bytes())
    raw[16:24] = struct.pack(">II", width, height)  # IHDR: width, height
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    return path


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)


@pytest.fixture
def never_decoded(monkeypatch):
    """An attempt to decode the pixels of a test's oversized file fails the test."""
    real_load = ImageFile.ImageFile.load

    def refuse(self, *args, **kwargs):
        if any(word in str(self.filename) for word in ("bomb", "big_", "forged")):
            raise AssertionError(f"{self.filename} was decoded")
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.fixture
def bombs(tmp_path, small_limit):
    """Real, valid photos over the (small) limit: 500×500 (Pillow only warns: 1–2× the limit)
    and 700×700 (Pillow raises: over 2×); as JPEG and PNG."""
    photo = Image.merge("RGB", [Image.linear_gradient("L")] * 3)  # 256×256
    made = {}
    for side, fmt in ((500, "JPEG"), (700, "PNG")):
        path = tmp_path / f"big_{side}.{fmt.lower().replace('jpeg', 'jpg')}"
        photo.resize((side, side)).save(path, fmt)
        made[side] = path
    return made


@pytest.mark.parametrize("side", [500, 700])
def test_open_rgb_refuses_from_the_header(bombs, never_decoded, side):
    with pytest.raises(ValueError, match="refused for safety") as info:
        images.open_rgb(bombs[side])
    message = str(info.value)
    assert str(bombs[side]) in message and "\n" not in message
    assert "MAX_IMAGE_PIXELS" in message  # how to trust it anyway


def test_the_real_limit_and_a_forged_header(tmp_path, never_decoded):
    """Pillow's own limit, with a 170-byte file declaring 20000×20000 and 12000×12000."""
    for side in (20000, 12000):  # over 2× the limit (error), 1–2× (only a warning in Pillow)
        path = _png_declaring(tmp_path / f"forged{side}.png", side, side)
        with pytest.raises(ValueError, match=f"{path}.*refused for safety"):
            images.open_rgb(path)


def test_to_rgb_refuses_an_image_over_the_limit(small_limit):
    with pytest.raises(ValueError, match="refused for safety: 500×500 = 250,000 pixels"):
        images.to_rgb(Image.new("RGB", (500, 500)))
    assert images.to_rgb(Image.new("RGB", (400, 400))).size == (400, 400)


def test_no_limit_means_no_refusal_but_still_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the learner chose to trust files
    path = _png_declaring(tmp_path / "forged.png", 3000, 3000)
    with pytest.raises(ValueError, match="is not a readable image"):
        images.open_rgb(path)  # its data is one pixel: truncated


def test_predict_refuses_a_path_and_a_pil_image(bombs, small_limit):
    model, info = predict.load_trained()
    with pytest.raises(ValueError, match=f"{bombs[700]}.*refused for safety"):
        predict.predict_image(model, bombs[700], normalize=info["normalize"])
    with pytest.raises(ValueError, match="refused for safety"):
        predict.preprocess(Image.new("RGB", (700, 700)))
    with pytest.raises(ValueError, match="refused for safety"):
        predict.show_prediction(model, bombs[500], normalize=info["normalize"])


def test_cli_predict_reports_each_refused_file_and_goes_on(bombs, run_cli):
    dog = images.demo_image("dog")
    code, out, err = run_cli("predict", bombs[500], dog, bombs[700])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert str(bombs[500]) in lines[0] and str(bombs[700]) in lines[1]
    assert all("refused for safety" in line for line in lines)
    assert out.startswith(f"{dog}: dog ")


def test_a_refused_file_in_an_image_folder_data_set(tmp_path, cache_dir, never_decoded):
    root = jpg_copy(tmp_path / "full", 2)
    bomb = _png_declaring(root / "cifar10-jpg" / "test" / "cat" / "zz_bomb.png", 20000, 20000)
    with pytest.raises(ValueError, match=f"{bomb}.*refused for safety"):
        data.CIFAR10Folder(root / "cifar10-jpg" / "test")


def test_cli_train_ends_with_one_line_and_exit_2(tmp_path, offline, run_cli):
    root = jpg_copy(tmp_path / "full", 2)
    bomb = _png_declaring(root / "cifar10-jpg" / "train" / "dog" / "zz_bomb.png", 20000, 20000)
    code, out, err = run_cli("train", "--recipe", "original", "--epochs", "1", "--device",
                             "cpu", "--data-dir", root, "--logdir", tmp_path / "runs",
                             "--no-progress")
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("python -m course_utils train: error: ")
    assert str(bomb) in line and "refused for safety" in line


def test_photo_folders_and_the_demo_photos_go_through_the_same_check(tmp_path, bombs):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(images.demo_image("airplane"), folder / "a.png")
    shutil.copy(bombs[700], folder / "b.png")
    opened, refused = [], []
    for path in images.photo_files(folder, verbose=False):  # what the chapters' Datasets do
        try:
            opened.append(images.open_rgb(path).size)
        except ValueError as exc:
            refused.append(str(exc))
    assert opened == [(478, 354)]
    assert len(refused) == 1 and "b.png" in refused[0]
    assert data.open_rgb is images.open_rgb and data.to_rgb is images.to_rgb


def test_the_sample_batches_are_built_through_the_same_check(tmp_path, cache_dir, monkeypatch):
    """cifar_batches writes CIFAR-10's pickles from the sample's image files: a refused file
    there is named too (the bundled sample has none; a copy with one stands in for it)."""
    from course_utils import cifar_batches as cb

    sample = tmp_path / "sample"
    shutil.copytree(data.CIFAR10_SAMPLE, sample)
    bomb = _png_declaring(sample / "test" / "ship" / "zz_bomb.png", 20000, 20000)
    monkeypatch.setattr(data, "CIFAR10_SAMPLE", sample)
    cb.sample_files.cache_clear()
    try:
        with pytest.raises(ValueError, match=f"{bomb}.*refused for safety"):
            cb.write_sample_batches(tmp_path / "root")
    finally:
        cb.sample_files.cache_clear()
