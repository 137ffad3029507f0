"""FER2013 from a tiny CSV in its format: Usage splits, class names, bad rows skipped and counted."""

import csv

import numpy as np
import pytest
import torch

from inceptionkit.data import load_data, load_fer2013

EMOTIONS = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def pixels(value):
    return " ".join([str(value)] * 2304)


def write_csv(path, usage=True):
    rows = []
    for emotion in range(7):
        rows += [(emotion, pixels(10 * emotion), "Training")] * 3
        rows += [(emotion, pixels(10 * emotion + 1), "PublicTest"), (emotion, pixels(10 * emotion + 2), "PrivateTest")]
    rows.insert(5, (3, " ".join(["7"] * 2303), "Training"))  # row 7: a pixel short
    rows.insert(9, (3, pixels(5).replace("5", "x", 1), "Training"))  # row 11: not a number
    rows.insert(12, (9, pixels(5), "PublicTest"))  # row 14: no such emotion
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["emotion", "pixels", "Usage"] if usage else ["emotion", "pixels"])
        writer.writerows([row if usage else row[:2] for row in rows])
    return path


def test_splits_by_usage_with_counts_and_class_names(tmp_path):
    splits = load_data(f"fer2013:{write_csv(tmp_path / 'fer2013.csv')}", (1, 48, 48))
    assert splits.classes == EMOTIONS and splits.num_classes == 7 and splits.name == "fer2013"
    assert (len(splits.train), len(splits.val), len(splits.test)) == (21, 7, 7)
    assert sorted(splits.val.targets) == list(range(7))


def test_bad_rows_are_skipped_and_counted(tmp_path):
    path = write_csv(tmp_path / "faces.csv")
    splits = load_data(str(path), (1, 48, 48))
    assert splits.skipped == 3
    assert [where for where, _ in splits.skipped_files] == [f"{path}:{row}" for row in (7, 11, 14)]
    assert "2303" in splits.skipped_files[0][1]


def test_pixel_values_and_resizing(tmp_path):
    path = write_csv(tmp_path / "faces.csv")
    x, y = load_fer2013(path, (1, 48, 48), mean=(0.0,), std=(1.0,)).test[0]
    assert y == 0 and torch.allclose(x, torch.full((1, 48, 48), 2 / 255))  # PrivateTest rows of emotion 0 hold 2
    x, y = load_fer2013(path, (3, 299, 299), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)).val[6]
    assert y == 6 and x.shape == (3, 299, 299)
    assert torch.allclose(x, torch.full_like(x, (61 / 255 - 0.5) / 0.25), atol=1e-5)  # 61: emotion 6 PublicTest


def test_augmentation_on_train_only(tmp_path):
    path = tmp_path / "faces.csv"
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["emotion", "pixels", "Usage"])
        for usage in ("Training", "PublicTest"):
            writer.writerow([0, " ".join(map(str, rng.integers(0, 256, 2304))), usage])
    torch.manual_seed(0)
    splits = load_fer2013(path, (1, 48, 48))
    reads = [splits.train[0][0] for _ in range(10)]
    assert any(not torch.equal(reads[0], r) for r in reads[1:])
    assert torch.equal(splits.val[0][0], splits.val[0][0])


def test_csv_without_usage_is_split_by_fractions(tmp_path):
    splits = load_data(str(write_csv(tmp_path / "train.csv", usage=False)), (1, 48, 48), val_fraction=1 / 7)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 35 and len(splits.val) == 5


def test_not_fer2013_names_the_row_and_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,age\nada,36\n")
    with pytest.raises(ValueError, match=r"row 1.*emotion, pixels"):
        load_data(str(path), (1, 48, 48))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="kaggle"):
        load_data(f"fer2013:{tmp_path / 'none.csv'}", (1, 48, 48))
