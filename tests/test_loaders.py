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
    norm = (data.CIFAR10_MEAN, data.CIFAR10_STD)
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


def test_batches_come_from_the_loader_device():
    """``device=`` moves the data once; every batch (images, labels, the normalisation and the
    augmentation's random numbers) stays there. The ``meta`` device stands in for a GPU."""
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    norm = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    for kwargs in (dict(), dict(shuffle=True), dict(normalize=norm),
                   dict(augment=True, normalize=norm)):
        loader = loaders.TensorLoader(x, torch.arange(10), batch_size=4, device="meta", **kwargs)
        assert loader.device == torch.device("meta") and len(loader.dataset) == 10
        batches = list(loader)
        assert [tuple(b.shape) for b, _ in batches] == [(4, 3, 8, 8)] * 2 + [(2, 3, 8, 8)]
        assert {str(t.device) for batch in batches for t in batch} == {"meta"}, kwargs
    on_cpu = loaders.TensorLoader(x, torch.arange(10))
    assert on_cpu.device == torch.device("cpu") and on_cpu.dataset is on_cpu.images


def test_default_batch_size_is_64(sample):
    _, xs, ys = sample
    sizes = [len(y) for _, y in loaders.TensorLoader(xs, ys)]
    assert sizes == [64, 64, 64, 8]  # 200 test images of the sample


def test_shuffle_follows_the_given_generator_only(sample):
    """The same seeded generator gives the same order whatever the global seed is."""
    _, xs, ys = sample
    ids = torch.arange(len(ys))
    orders = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        loader = loaders.TensorLoader(xs, ids, batch_size=50, shuffle=True,
                                      generator=torch.Generator().manual_seed(7))
        orders.append(torch.cat([y for _, y in loader]))
    assert torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], ids)


def test_random_crop_uses_every_shift_from_0_to_2_pad():
    """``random_flip_crop`` picks each shift 0…2·pad (both axes) with equal chance: over 300
    calls all 9 values turn up (a value missing by chance: p < 1e-14)."""
    h = w = 16
    ramp = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w) + 1000  # distinct values
    torch.manual_seed(0)
    dys, dxs = set(), set()
    pad = torch.nn.functional.pad
    shifts = [(dy, dx) for dy in range(9) for dx in range(9)]
    crops = torch.stack([src[0, :, dy:dy + h, dx:dx + w] for src in
                         (pad(ramp, (4,) * 4, mode="reflect"),
                          pad(ramp.flip(3), (4,) * 4, mode="reflect")) for dy, dx in shifts])
    for _ in range(300):
        out = loaders.random_flip_crop(ramp, pad=4)
        assert out.shape == ramp.shape
        found = (crops == out[0]).flatten(1).all(1).nonzero().flatten().tolist()
        assert found, "not a shifted (or mirrored and shifted) copy"
        dy, dx = shifts[found[0] % len(shifts)]
        dys.add(dy)
        dxs.add(dx)
    assert dys == set(range(9)) and dxs == set(range(9))


@pytest.mark.parametrize("platform, cpus, workers", [
    ("linux", 8, 2), ("linux", 2, 2), ("linux", 1, 1), ("linux", None, 1),
    ("darwin", 8, 0), ("win32", 8, 0), ("freebsd14", 4, 2),
])
def test_safe_num_workers_on_each_platform(monkeypatch, platform, cpus, workers):
    """0 on macOS and Windows (workers there re-import the notebook), else up to 2 but never
    more than the CPUs (an unknown count counts as 1)."""
    monkeypatch.setattr(loaders.sys, "platform", platform)
    monkeypatch.setattr(loaders.os, "cpu_count", lambda: cpus)
    assert loaders.safe_num_workers() == workers


def test_the_sharded_loader_in_one_process_is_a_seeded_shuffle_of_all_images(monkeypatch):
    """Without torchrun the shard is the whole set, in DistributedSampler's order for
    ``seed + epoch`` (seed 0 by default); the loader's options reach every batch."""
    from course_utils import distributed

    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).contiguous()
    y = torch.arange(10)
    loader = loaders.ShardedTensorLoader(x, y, 4, normalize=((0.5,) * 3, (0.25,) * 3))
    assert len(loader) == 3 and len(loader.dataset) == 10
    assert len(loaders.ShardedTensorLoader(x, y, 4, drop_last=True)) == 2
    expected = list(distributed.train_sampler(range(10), 0))  # the default seed: 0
    batches = list(loader)
    assert torch.cat([labels for _, labels in batches]).tolist() == expected
    first_x, first_y = batches[0]
    assert first_x.dtype == torch.float32 and first_y.dtype == torch.int64
    assert torch.allclose(first_x[:, 0, 0, 0], (first_y.float() - 127.5) / 63.75)
    loader.set_epoch(1)  # the next epoch: another order of the same images
    again = torch.cat([labels for _, labels in loader]).tolist()
    assert again != expected and sorted(again) == list(range(10))
    other = loaders.ShardedTensorLoader(x, y, 4, seed=3)
    assert torch.cat([labels for _, labels in other]).tolist() == list(
        distributed.train_sampler(range(10), 3))
    moved = loaders.ShardedTensorLoader(x, y, 4, device="meta")  # where batches are made
    assert moved.images.device.type == "meta" and moved.labels.device.type == "meta"
