"""The embedded digits: counts, splits, sizes, normalization and augmentation against independent facts."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from inceptionkit.data import load_data

RAW = load_digits().images  # (1797, 8, 8), values 0..16


def all_indices(splits):
    return [set(part.indices.tolist()) for part in (splits.train, splits.val, splits.test)]


def test_counts_and_classes_match_sklearn_documentation():
    splits = load_data(None, (3, 32, 32))
    # sklearn's documentation: 1797 samples, 10 classes, about 180 per class
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    assert splits.classes == [str(d) for d in range(10)] and splits.num_classes == 10
    assert splits.name == "digits" and splits.skipped == 0 and splits.input_size == (3, 32, 32)


def test_splits_are_disjoint_cover_everything_and_follow_fractions():
    splits = load_data("digits", (1, 8, 8), val_fraction=0.2, test_fraction=0.3)
    train, val, test = all_indices(splits)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(1797))
    assert abs(len(test) - 0.3 * 1797) <= 1 and abs(len(val) - 0.2 * 1797) <= 1


def test_split_is_stratified():
    splits = load_data(None, (1, 8, 8), val_fraction=0.2, test_fraction=0.2)
    labels = load_digits().target
    overall = np.bincount(labels, minlength=10) / len(labels)
    for part in (splits.train, splits.val, splits.test):
        share = np.bincount(part.targets, minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.02
        assert part.targets == labels[part.indices.numpy()].tolist()


def test_split_is_deterministic_per_seed():
    a, b = load_data(None, (1, 8, 8), seed=3), load_data(None, (1, 8, 8), seed=3)
    c = load_data(None, (1, 8, 8), seed=4)
    assert all_indices(a) == all_indices(b)
    assert all_indices(a)[2] != all_indices(c)[2]


@pytest.mark.parametrize("size", [(3, 32, 32), (1, 48, 48), (3, 224, 224), (3, 40, 24)])
def test_item_shapes(size):
    splits = load_data(None, size)
    for part in (splits.train, splits.val):
        x, y = part[0]
        assert x.shape == size and x.dtype == torch.float32 and isinstance(y, int)


def test_normalization_by_hand():
    mean, std = (0.5, 0.25, 0.125), (0.5, 0.25, 0.2)
    splits = load_data(None, (3, 8, 8), mean=mean, std=std, augment=False)
    x, y = splits.val[0]
    raw = RAW[splits.val.indices[0].item()]
    assert y == load_digits().target[splits.val.indices[0].item()]
    r, c = np.argwhere(raw == 16)[0]  # a full-ink pixel: 1.0 before normalization
    assert x[:, r, c].tolist() == pytest.approx([(1 - 0.5) / 0.5, (1 - 0.25) / 0.25, (1 - 0.125) / 0.2])
    assert x[:, 0, 0].tolist() == pytest.approx([-1.0, -1.0, -0.625])  # pixel (0, 0) is blank in every digit
    # a grey model given three values uses their averages: mean 0.875/3, std 0.95/3
    grey = load_data(None, (1, 8, 8), mean=mean, std=std).val[0][0]
    assert grey[0, r, c].item() == pytest.approx((1 - 0.875 / 3) / (0.95 / 3))


def test_normalized_with_the_data_own_statistics_has_mean_0_std_1():
    values = RAW / 16
    splits = load_data(None, (1, 8, 8), mean=(values.mean(),), std=(values.std(),), val_fraction=0.0, test_fraction=0.0,
                       augment=False)
    x = torch.stack([image for image, _ in splits.train])
    assert x.mean().item() == pytest.approx(0, abs=1e-5) and x.std().item() == pytest.approx(1, abs=1e-3)


def test_upscaling_matches_pil_bilinear():
    splits = load_data(None, (1, 32, 32), mean=(0.0,), std=(1.0,))
    for k in range(3):
        x, _ = splits.test[k]
        raw = (RAW[splits.test.indices[k].item()] / 16).astype(np.float32)
        reference = np.asarray(Image.fromarray(raw, mode="F").resize((32, 32), Image.BILINEAR))
        assert np.abs(x[0].numpy() - reference).max() < 1e-5


def shifted(image, dy, dx, fill):
    out = torch.full_like(image, fill)
    h, w = image.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_augmentation_shifts_train_only_and_never_flips():
    torch.manual_seed(0)
    splits = load_data(None, (1, 32, 32), mean=(0.5,), std=(0.5,))
    assert torch.equal(splits.val[5][0], splits.val[5][0]) and torch.equal(splits.test[5][0], splits.test[5][0])
    plain = load_data(None, (1, 32, 32), mean=(0.5,), std=(0.5,), augment=False).train[5][0]
    reads = [splits.train[5][0] for _ in range(12)]
    assert any(not torch.equal(reads[0], r) for r in reads[1:])
    for r in reads:  # every read is the plain image moved by at most 32/8 = 4 pixels, blank (-1) filled
        assert any(torch.equal(r, shifted(plain, dy, dx, -1.0)) for dy in range(-4, 5) for dx in range(-4, 5))


def test_dataloader_batches():
    splits = load_data(None, (3, 32, 32))
    x, y = next(iter(DataLoader(splits.train, batch_size=64, shuffle=True)))
    assert x.shape == (64, 3, 32, 32) and y.dtype == torch.int64 and y.max() < 10
