"""Image folders: broken files skipped and counted, the train/val/test layout, eval crop and normalization."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inceptionkit.data import load_data


def save(path, colour, size=(40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def write_tree(root):
    """Two classes of 6 good images each, and three broken files that look like images."""
    rng = np.random.default_rng(0)
    (root / "dog").mkdir(parents=True)
    for k in range(6):
        save(root / "cat" / f"{k}.png", (200, 30, 30))
        Image.fromarray(rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(root / "dog" / f"{k}.jpg")
    jpeg = (root / "dog" / "0.jpg").read_bytes()
    (root / "cat" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "dog" / "empty.png").write_bytes(b"")
    (root / "dog" / "x.jpg").write_text("not an image")
    (root / "dog" / "notes.txt").write_text("not an image either, and not named like one")
    return [root / "cat" / "truncated.jpg", root / "dog" / "empty.png", root / "dog" / "x.jpg"]


def test_broken_images_are_skipped_counted_and_loaders_run(tmp_path):
    broken = write_tree(tmp_path)
    splits = load_data(tmp_path, (3, 32, 32), val_fraction=1 / 3, test_fraction=1 / 3)
    assert splits.skipped == 3 and sorted(p for p, _ in splits.skipped_files) == sorted(map(str, broken))
    assert splits.classes == ["cat", "dog"] and splits.name == str(tmp_path)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 12
    assert sorted(splits.test.targets) == [0, 0, 1, 1]  # a third of each class
    for part in (splits.train, splits.val, splits.test):
        for x, y in DataLoader(part, batch_size=4):
            assert x.shape[1:] == (3, 32, 32) and y.dtype == torch.int64


def test_grey_model_gets_one_channel(tmp_path):
    write_tree(tmp_path)
    x, _ = load_data(str(tmp_path), (1, 48, 48)).train[0]
    assert x.shape == (1, 48, 48)


def test_eval_normalization_by_hand(tmp_path):
    write_tree(tmp_path)
    splits = load_data(tmp_path, (3, 32, 32), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    cats = [k for k, y in enumerate(splits.test.targets) if y == 0]
    x, _ = splits.test[cats[0]]
    expected = [(200 / 255 - 0.485) / 0.229, (30 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225]
    assert x.mean(dim=(1, 2)).tolist() == pytest.approx(expected, abs=1e-5)
    assert x.std(dim=(1, 2)).max().item() < 1e-5


def test_eval_crop_follows_crop_pct(tmp_path):
    for name in ("a", "b"):
        image = np.zeros((40, 40, 3), np.uint8)
        image[4:36, 4:36] = 255  # white, with a black border 4 pixels wide
        for k in range(3):
            (tmp_path / name).mkdir(exist_ok=True)
            Image.fromarray(image).save(tmp_path / name / f"{k}.png")
    inside = load_data(tmp_path, (3, 32, 32), mean=(0.0,), std=(1.0,), crop_pct=0.8).test[0][0]
    assert inside.min().item() == pytest.approx(1.0)  # 40 = 32 / 0.8: the centre crop drops the border
    whole = load_data(tmp_path, (3, 32, 32), mean=(0.0,), std=(1.0,), crop_pct=1.0).test[0][0]
    assert whole.min().item() < 0.1


def test_train_val_test_layout(tmp_path):
    for k in range(10):
        save(tmp_path / "train" / "ant" / f"{k}.png", (0, 0, 0))
        save(tmp_path / "train" / "bee" / f"{k}.png", (255, 255, 0))
    save(tmp_path / "val" / "bee" / "v.png", (255, 255, 0))
    splits = load_data(tmp_path, (3, 32, 32), test_fraction=0.2)
    assert splits.classes == ["ant", "bee"]
    assert splits.val.targets == [1]  # val/ as given
    assert len(splits.train) == 16 and sorted(splits.test.targets) == [0] * 2 + [1] * 2  # test taken from train/


def test_augmentation_on_train_only(tmp_path):
    write_tree(tmp_path)
    torch.manual_seed(0)
    splits = load_data(tmp_path, (3, 32, 32))
    dog = splits.train.targets.index(1)
    reads = [splits.train[dog][0] for _ in range(5)]
    assert any(not torch.equal(reads[0], r) for r in reads[1:])
    assert torch.equal(splits.val[0][0], splits.val[0][0])


def test_empty_class_folder_is_an_error(tmp_path):
    write_tree(tmp_path)
    (tmp_path / "owl").mkdir()
    with pytest.raises(ValueError, match="owl"):
        load_data(tmp_path, (3, 32, 32))


def test_one_class_is_refused(tmp_path):
    for k in range(4):
        save(tmp_path / "flat" / "cat" / f"{k}.png", (200, 30, 30))
        save(tmp_path / "parts" / "train" / "cat" / f"{k}.png", (200, 30, 30))
    for root in (tmp_path / "flat", tmp_path / "parts"):
        with pytest.raises(ValueError, match=r"only one class \(cat\).*at least two classes"):
            load_data(root, (3, 32, 32))


def test_one_class_with_readable_images_is_refused(tmp_path):
    save(tmp_path / "cat" / "0.png", (200, 30, 30))
    save(tmp_path / "cat" / "1.png", (200, 30, 30))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "0.png").write_bytes(b"")
    with pytest.raises(ValueError, match="dog"):
        load_data(tmp_path, (3, 32, 32))


def test_skipped_images_are_grouped_by_reason(tmp_path):
    write_tree(tmp_path)
    jpeg = (tmp_path / "dog" / "1.jpg").read_bytes()
    (tmp_path / "dog" / "cut.jpeg").write_bytes(jpeg[:200])
    splits = load_data(tmp_path, (3, 32, 32))
    assert splits.skipped_reasons() == {"truncated JPEG": 2, "empty file": 1, "not an image": 1}
    assert list(splits.skipped_reasons()) == ["truncated JPEG", "empty file", "not an image"]  # most first
