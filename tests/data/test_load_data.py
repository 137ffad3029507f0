"""load_data's dispatch and argument checks, and the stratified split on its own."""

import numpy as np
import pytest

from inceptionkit.data import channel_stats, load_data, stratified_split


@pytest.mark.parametrize("spec", ["imagenet", "cifar100:/data", "no/such/folder"])
def test_unknown_spec_names_it_and_lists_the_accepted_forms(spec):
    with pytest.raises(ValueError) as err:
        load_data(spec, (3, 32, 32))
    assert repr(spec) in str(err.value) and "cifar10" in str(err.value) and "digits" in str(err.value)


def test_a_file_that_is_not_csv_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a folder"):
        load_data(str(tmp_path / "a.txt"), (3, 32, 32))


@pytest.mark.parametrize("size", [(2, 32, 32), (3, 0, 32), (32, 32)])
def test_bad_input_size(size):
    with pytest.raises(ValueError, match="input_size"):
        load_data(None, size)


def test_channel_stats():
    assert channel_stats((0.5,), (0.25,), 3) == ((0.5,) * 3, (0.25,) * 3)
    assert channel_stats((0.3, 0.6, 0.9), (0.1, 0.2, 0.3), 1) == (pytest.approx((0.6,)), pytest.approx((0.2,)))
    with pytest.raises(ValueError):
        channel_stats((0.1, 0.2), (0.1, 0.2), 3)
    with pytest.raises(ValueError, match="positive"):
        channel_stats((0.5,), (0.0,), 1)


def test_stratified_split_with_tiny_classes_still_partitions():
    labels = [0] * 8 + [1]  # class 1 too small to stratify
    train, val, test = stratified_split(labels, 0.2, 0.2, seed=0)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(9))
    with pytest.raises(ValueError, match="sum below 1"):
        stratified_split(labels, 0.5, 0.5)
