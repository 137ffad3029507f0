"""The shared blocks: shapes by hand arithmetic, the residual formula, and errors that name the problem."""

import pytest
import torch
from torch import nn

from inceptionkit.models.blocks import BasicConv, Concat, Residual, conv_branch, pool_branch


def test_basic_conv_same_and_valid_padding():
    x = torch.randn(1, 8, 17, 17)
    assert BasicConv(8, 4, (1, 7))(x).shape == (1, 4, 17, 17)  # "same" keeps the grid
    assert BasicConv(8, 4, 3, stride=2, padding="valid")(x).shape == (1, 4, 8, 8)  # floor((17-3)/2)+1
    unit = BasicConv(8, 4, 3, bn=False)
    assert unit.conv.bias is not None and isinstance(unit.bn, nn.Identity)
    assert BasicConv(8, 4, 3).conv.bias is None  # BN makes the bias redundant
    assert BasicConv(8, 4, 3).bn.eps == 1e-3  # TF's value, as torchvision and timm


def test_concat_orders_branches_and_counts_channels():
    block = Concat({
        "branch1": conv_branch(6, (2, 1)),
        "branch2": pool_branch(6, "max"),  # pass-through: all 6 input channels
    })
    assert block.out_chs == 8
    x = torch.randn(2, 6, 5, 5)
    out = block(x)
    assert out.shape == (2, 8, 5, 5)
    assert torch.equal(out[:, 2:], nn.functional.max_pool2d(x, 3, 1, 1))


def test_concat_names_branches_whose_sizes_disagree():
    block = Concat({"branch1": conv_branch(4, (2, 1)), "branch2": conv_branch(4, (3, 3, 2, "valid"))})
    with pytest.raises(ValueError) as err:
        block(torch.randn(1, 4, 9, 9))
    message = str(err.value)
    assert "branch1: (2, 9, 9)" in message and "branch2: (3, 4, 4)" in message


def test_residual_is_relu_of_input_plus_scaled_projection():
    torch.manual_seed(0)
    branches = Concat({"branch1": conv_branch(8, (4, 1))})
    block = Residual(branches, 8, scale=0.17).eval()
    x = torch.randn(2, 8, 6, 6)
    expected = torch.relu(x + 0.17 * nn.functional.conv2d(branches(x), block.proj.weight, block.proj.bias))
    assert torch.allclose(block(x), expected, atol=1e-6)
    linear = Residual(Concat({"branch1": conv_branch(8, (4, 1))}), 8, scale=1.0, activate=False).eval()
    assert (linear(x) < 0).any()  # no ReLU after the sum


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: BasicConv(0, 4, 3), "in_chs"),
        (lambda: BasicConv(4, -1, 3), "out_chs"),
        (lambda: BasicConv(4, 4, 4), "even"),
        (lambda: BasicConv(4, 4, 3, padding="full"), "padding"),
        (lambda: Residual(Concat({"branch1": conv_branch(4, (2, 1))}), 4, scale=1.5), "scale"),
        (lambda: Residual(Concat({"branch1": conv_branch(4, (2, 1))}), 4, scale=0.0), "scale"),
        (lambda: pool_branch(4, "median"), "pool kind"),
    ],
)
def test_invalid_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()
