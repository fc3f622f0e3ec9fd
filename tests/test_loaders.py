"""TensorLoader against the course's own pipeline (PIL image → ToTensor → Normalize) on the
bundled CIFAR-10 sample."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T

from course_utils import data, loaders


@pytest.fixture(scope="module")
def sample():
    ds = data.cifar10(train=False, download=False, verbose=False)
    xs, ys = data.as_tensors(ds)
    return ds, xs, ys


def test_batches_equal_totensor_of_the_same_images(sample):
    ds, xs, ys = sample
    loader = loaders.TensorLoader(xs, ys, batch_size=32)
    images, labels = next(iter(loader))
    expected = torch.stack([T.ToTensor()(ds[i][0]) for i in range(32)])
    assert images.dtype == torch.float32 and images.shape == (32, 3, 32, 32)
    torch.testing.assert_close(images, expected)
    assert labels.tolist() == [ds[i][1] for i in range(32)]


def test_normalize_matches_torchvision_normalize(sample):
    ds, xs, ys = sample
    norm = (loaders.CIFAR10_MEAN, loaders.CIFAR10_STD)
    images, _ = next(iter(loaders.TensorLoader(xs, ys, batch_size=8, normalize=norm)))
    pipeline = T.Compose([T.ToTensor(), T.Normalize(*norm)])
    expected = torch.stack([pipeline(ds[i][0]) for i in range(8)])
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=1e-5)


def test_shuffle_visits_every_image_once_in_a_new_order(sample):
    _, xs, ys = sample
    ids = torch.arange(len(ys))
    loader = loaders.TensorLoader(xs, ids, batch_size=64, shuffle=True,
                                  generator=torch.Generator().manual_seed(1))
    first = torch.cat([y for _, y in loader])
    second = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == list(range(len(ys)))
    assert not torch.equal(first, second)
    assert len(loader) == -(-len(ys) // 64)


def test_drop_last_and_len(sample):
    _, xs, ys = sample
    loader = loaders.TensorLoader(xs, ys, batch_size=64, drop_last=True)
    sizes = [len(y) for _, y in loader]
    assert sizes == [64] * (len(ys) // 64) and len(loader) == len(sizes)


def test_augment_gives_flipped_and_shifted_copies_of_the_originals(sample):
    _, xs, ys = sample
    torch.manual_seed(0)
    loader = loaders.TensorLoader(xs[:64], ys[:64], batch_size=64, augment=True)
    images, _ = next(iter(loader))
    originals = xs[:64].float() / 255
    assert images.shape == originals.shape
    padded = torch.nn.functional.pad(originals, (4, 4, 4, 4), mode="reflect")
    flipped_pad = torch.nn.functional.pad(originals.flip(3), (4, 4, 4, 4), mode="reflect")
    n_flipped = 0
    for i in range(64):
        matches = [
            (flip, dy, dx)
            for flip, src in ((False, padded), (True, flipped_pad))
            for dy in range(9) for dx in range(9)
            if torch.allclose(images[i], src[i, :, dy:dy + 32, dx:dx + 32])
        ]
        assert matches, f"augmented image {i} is not a flipped/shifted copy of the original"
        n_flipped += matches[0][0]
    assert 0 < n_flipped < 64  # about half the batch is mirrored


def test_bad_input_is_rejected_with_a_clear_message(sample):
    _, xs, ys = sample
    with pytest.raises(ValueError, match="uint8"):
        loaders.TensorLoader(xs.float(), ys)
    with pytest.raises(ValueError, match="labels"):
        loaders.TensorLoader(xs, ys[:-1])
