"""The per-layer summary, checked against hand arithmetic and torchvision's published op counts."""

import torch
from torch import nn

from inceptionkit import create_model
from inceptionkit.cost import summary


def test_five_by_five_with_and_without_reduction():
    """The articles' example: 28x28x192 -> 32 channels by 5x5, with and without a 1x1 reduce to 16."""
    direct = nn.Conv2d(192, 32, 5, padding=2, bias=False)
    assert summary(direct, (192, 28, 28)).total_macs == 5 * 5 * 192 * 32 * 28 * 28 == 120_422_400
    reduced = nn.Sequential(nn.Conv2d(192, 16, 1, bias=False), nn.Conv2d(16, 32, 5, padding=2, bias=False))
    assert summary(reduced, (192, 28, 28)).total_macs == 12_443_648


def test_googlenet_macs_equal_torchvision_ops():
    """torchvision's googlenet `_ops` is 1.498 G: its MACs, aux heads not run in eval."""
    result = summary(create_model("googlenet", variant="torchvision"), (3, 224, 224))
    assert result.total_macs == 1_498_376_192
    assert result.total_params == 13_004_888


def test_rows_follow_the_forward_pass():
    model = create_model("googlenet_cifar")
    result = summary(model, (3, 32, 32), depth=1)
    by_name = {row.name: row for row in result.rows}
    assert by_name["inception3a"].output_shape == (256, 32, 32)
    assert by_name["inception5b"].output_shape == (1024, 8, 8)
    assert sum(row.params for row in result.rows) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        conv = model(torch.zeros(1, 3, 32, 32))
    assert conv.shape == (1, 10)


# Multiply-adds at the default input, aux heads not run, from ../shared/ARCHITECTURES.md section 6
# (computed there by an independent pure-Python counter; torchvision's `_ops` agree for googlenet and v3).
ARCHITECTURES_MACS = {
    ("googlenet", "paper"): 1_582_671_872,
    ("googlenet", "torchvision"): 1_498_376_192,
    ("bn_inception", None): 2_032_600_064,
    ("inception_v3", None): 5_713_216_096,
    ("inception_v4", None): 12_253_974_624,
    ("inception_resnet_v1", None): 6_206_361_696,
    ("inception_resnet_v2", None): 13_155_794_016,
}


def test_network_macs_equal_the_reference_counts():
    for (name, variant), expected in ARCHITECTURES_MACS.items():
        kwargs = {"variant": variant} if variant else {}
        with torch.device("meta"):
            model = create_model(name, **kwargs)
        assert summary(model, model.config.input_size).total_macs == expected, name
    cifar = summary(create_model("googlenet_cifar"), (3, 32, 32))
    assert round(cifar.total_macs / 1e9, 3) == 1.522  # the document prints it rounded
