"""CIFAR-10 from a tiny archive written in the official format; the clear error when it is absent."""

import pickle
import tarfile
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from inceptionkit.data import load_cifar10, load_data

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_archive(root, per_class=2, test_per_class=1):
    """cifar-10-batches-py/ as the official python archive lays it out, with few images."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(name, n_per_class, offset):
        labels = [c for c in range(10) for _ in range(n_per_class)]
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        data[:, 1], data[:, 1025], data[:, 2049] = 10 + offset, 20 + offset, 30 + offset  # R, G, B of pixel (0, 1)
        # the official pickles were written by Python 2; read with encoding="latin1" their keys are str
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f, protocol=2)

    for k in range(1, 6):
        batch(f"data_batch_{k}", per_class, k)
    batch("test_batch", test_per_class, 100)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": NAMES, "num_cases_per_batch": 10 * per_class, "num_vis": 3072}, f, protocol=2)
    return folder


def test_fake_archive_loads_with_right_counts_and_classes(tmp_path):
    write_archive(tmp_path)
    splits = load_cifar10(tmp_path, (3, 32, 32), verify=False, val_fraction=0.2)
    assert splits.classes == NAMES and splits.name == "cifar10"
    assert len(splits.train) + len(splits.val) == 100 and len(splits.test) == 10
    assert np.bincount(splits.val.targets, minlength=10).tolist() == [2] * 10  # stratified: 20% of 10 per class
    assert splits.test.targets == list(range(10))
    train, val = set(splits.train.indices.tolist()), set(splits.val.indices.tolist())
    assert not train & val and train | val == set(range(100))


def test_pixels_keep_the_official_channel_layout(tmp_path):
    write_archive(tmp_path)
    x, _ = load_cifar10(tmp_path, (3, 32, 32), mean=(0.0,), std=(1.0,), verify=False).test[0]
    # each row is 1024 red, 1024 green, 1024 blue values, row-major; pixel (0, 1) was set to (110, 120, 130)
    assert x[:, 0, 1].tolist() == pytest.approx([110 / 255, 120 / 255, 130 / 255])


def test_spec_strings_resize_and_the_batches_folder_itself(tmp_path):
    folder = write_archive(tmp_path)
    splits = load_data(f"cifar10:{tmp_path}", (3, 299, 299), verify=False)
    assert splits.train[0][0].shape == (3, 299, 299) and splits.test[0][0].shape == (3, 299, 299)
    grey = load_data(f"cifar10:{folder}", (1, 48, 48), verify=False)
    assert grey.val[0][0].shape == (1, 48, 48)


def test_packed_archive_is_unpacked(tmp_path):
    write_archive(tmp_path / "build")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    assert len(load_cifar10(tmp_path, (3, 32, 32), verify=False).test) == 10


def test_official_check_rejects_a_foreign_archive(tmp_path):
    write_archive(tmp_path)
    with pytest.raises(RuntimeError, match="md5"):
        load_cifar10(tmp_path, (3, 32, 32))


def test_missing_archive_names_folder_url_and_download(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_data(f"cifar10:{tmp_path / 'nowhere'}", (3, 32, 32))
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and CIFAR10.url in message and "--download" in message


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(CIFAR10, "download", offline)
    with pytest.raises(FileNotFoundError, match="downloading"):
        load_cifar10(tmp_path, (3, 32, 32), download=True)


def test_augmentation_on_train_only(tmp_path):
    write_archive(tmp_path)
    torch.manual_seed(0)
    splits = load_cifar10(tmp_path, (3, 32, 32), verify=False)
    reads = [splits.train[3][0] for _ in range(10)]
    assert any(not torch.equal(reads[0], r) for r in reads[1:])
    assert torch.equal(splits.val[3][0], splits.val[3][0]) and torch.equal(splits.test[3][0], splits.test[3][0])
