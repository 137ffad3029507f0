"""A state_dict read from a safetensors file comes sorted by name: conversion must not depend on the order."""

import random

import pytest
import timm
import torchvision

from inceptionkit.weights.layouts import registration_order

REFERENCES = {
    "torchvision googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False),
    "torchvision inception_v3": lambda: torchvision.models.inception_v3(weights=None, aux_logits=True,
                                                                        init_weights=False),
    "timm inception_v3": lambda: timm.create_model("inception_v3", aux_logits=True),
    "timm inception_v4": lambda: timm.create_model("inception_v4"),
    "timm inception_resnet_v2": lambda: timm.create_model("inception_resnet_v2"),
}


@pytest.mark.parametrize("reference", list(REFERENCES))
def test_any_order_of_the_keys_comes_back_in_registration_order(reference):
    """Within each top-level module (what a layout pairs with ours), the reference's own order comes back."""
    keys = list(REFERENCES[reference]().state_dict())
    shuffled = keys[:]
    random.Random(0).shuffle(shuffled)

    def by_module(order):
        return {top: [k for k in order if k.split(".")[0] == top] for top in {k.split(".")[0] for k in keys}}

    assert by_module(registration_order(shuffled)) == by_module(keys)
    assert by_module(registration_order(sorted(keys))) == by_module(keys)  # what a safetensors file gives
