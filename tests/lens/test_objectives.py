"""Objectives, checked by hand arithmetic on made-up activations."""

import pytest
import torch

from inceptionkit.lens import objectives as obj


@pytest.fixture
def acts():
    x = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3)  # batch 2, 3 channels, 3x3
    return {"block": x, "fc": torch.tensor([[1.0, -2.0], [3.0, 4.0]])}


def test_channel_neuron_layer_by_hand(acts):
    x = acts["block"]
    assert obj.channel("block", 1)(acts).tolist() == [x[0, 1].mean().item(), x[1, 1].mean().item()]
    assert obj.channel("block", [2, 0])(acts).tolist() == [x[0, 2].mean().item(), x[1, 0].mean().item()]
    assert obj.neuron("block", 1)(acts).tolist() == [x[0, 1, 1, 1].item(), x[1, 1, 1, 1].item()]  # the centre
    assert obj.neuron("block", 0, x=2, y=0)(acts).tolist() == [2.0, 29.0]
    assert obj.layer("block")(acts).tolist() == [(x[0] ** 2).mean().item(), (x[1] ** 2).mean().item()]
    assert obj.channel("fc", 1)(acts).tolist() == [-2.0, 4.0]  # a linear layer's outputs are channels


def test_objectives_add_subtract_and_scale(acts):
    a, b = obj.channel("block", 0), obj.channel("block", 2)
    combined = a - 0.5 * b + 1
    assert torch.allclose(combined(acts), a(acts) - 0.5 * b(acts) + 1)
    assert combined.layers == ("block",)
    assert torch.allclose((a / 4)(acts), a(acts) / 4)
    assert set((a + obj.channel("fc", 0)).layers) == {"block", "fc"}


def test_direction_and_diversity(acts):
    ones = obj.direction("block", torch.ones(3))(acts)
    assert ones.shape == (2,) and torch.all(ones > 0.5)  # positive activations point along (1, 1, 1)
    same = {"block": torch.ones(2, 3, 3, 3)}
    assert torch.allclose(obj.diversity("block")(same), torch.tensor([-1.0, -1.0]))  # identical images


def test_bad_requests_are_named(acts):
    with pytest.raises(ValueError, match="block has channels 0-2; asked for \\[5, 5\\]"):
        obj.channel("block", 5)(acts)
    with pytest.raises(ValueError, match="3 channels for a batch of 2"):
        obj.channel("block", [0, 1, 2])(acts)
    with pytest.raises(ValueError, match="outside block's 3x3"):
        obj.neuron("block", 0, x=3, y=0)(acts)
    assert obj.as_objective("block:2").name == "channel(block, 2)" and obj.as_objective("block").name == "layer(block)"
