"""The int8 graph that Inductor compiles: ceil-mode pools rewritten exactly, concatenations of
convolutions in int8, the compiled graph computing what PyTorch's reference quantized graph
computes (which Inductor's max pool patterns broke, deploy/workarounds.py), and no convolution's
weights reordered on every call."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from inceptionkit import create_model
from inceptionkit.deploy.aot import AheadOfTime
from inceptionkit.deploy.fuse import fold_batchnorm, fuse_sibling_convs
from inceptionkit.deploy.quantize import INT8_PASSES, torch_int8
from inceptionkit.deploy.workarounds import (
    FloorModeMaxPool,
    _onednn_log,
    floor_mode_max_pools,
    prepack_for_the_output_written,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def test_a_ceil_mode_pool_in_floor_mode_is_the_same_function():
    generator = torch.Generator().manual_seed(0)
    for kernel, stride, padding, height, width in itertools.product((2, 3, 5), (1, 2, 3), (0, 1, 2), range(5, 16),
                                                                     (7, 12)):
        if padding > kernel // 2:
            continue
        pool = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
        x = torch.randn(2, 3, height, width, generator=generator) - 1.0  # mostly negative: no zero padding hides
        expected, got = pool(x), FloorModeMaxPool(pool)(x)
        assert got.shape == expected.shape and torch.equal(got, expected), (kernel, stride, padding, height, width)


def test_every_ceil_mode_pool_is_rewritten_and_a_dilated_one_refused():
    net = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True), nn.MaxPool2d(3, 1, 1),
                        nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True)))
    assert floor_mode_max_pools(net) == 2
    assert isinstance(net[0], FloorModeMaxPool) and isinstance(net[2][0], FloorModeMaxPool)
    assert type(net[1]) is nn.MaxPool2d
    with pytest.raises(ValueError, match="dilated max pool in ceil mode.*backend='onnxruntime'"):
        floor_mode_max_pools(nn.Sequential(nn.MaxPool2d(2, 2, dilation=2, ceil_mode=True)))


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
def test_two_inception_modules_in_int8_compute_the_reference_graph(fuse):
    """googlenet's inception4a then 4b: 4b's pool branch reads 4a's int8 concatenation through a
    ceil-mode 3x3/1 max pool. Left in fp32, Inductor turned that pool into an int8 one at the wrong
    scale (0.07 of the largest output off here, 0.19 in the whole network)."""
    torch.manual_seed(0)
    net = create_model("googlenet", variant="torchvision").eval()
    fold_batchnorm(net)
    if fuse:
        fuse_sibling_convs(net)
    pair = nn.Sequential(net.inception4a, net.inception4b)
    x = torch.randn(2, 480, 14, 14, generator=torch.Generator().manual_seed(1)).relu()
    quantized = torch_int8(pair, [x])
    # every branch ends in a convolution or a part of the merged one: the concatenations are int8
    cats = [n for n in quantized.graph.nodes if n.target is torch.ops.aten.cat.default]
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    assert len(cats) == 2 and all(a.target is dequantize for cat in cats for a in cat.args[0])
    with torch.no_grad():
        reference, compiled = quantized(x), AheadOfTime(quantized, passes=INT8_PASSES)(x)
    assert compiled.shape == (2, 512, 14, 14)
    # PyTorch's reference graph computes the int8 operations in fp32; Inductor's kernels round differently
    # by a step or two of the output's 256 levels
    assert float((compiled - reference).abs().max() / reference.abs().max()) <= 0.02


def test_a_convolution_writing_uint8_runs_on_weights_prepacked_for_it():
    """inception_v3's mixed_6a 3x3/2 convolution (288 -> 384 channels) at batch 2, writing uint8 for
    the next int8 layer: with AVX512-VNNI oneDNN wants its weights blocked 64 output channels at a
    time where Inductor prepacked 48, and reordered them on every call. Where this CPU shows that
    reorder without the pass, the pass must prepack that weight again; with it, none is left."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(288, 384, 3, 2), nn.ReLU(), nn.Conv2d(384, 32, 1)).eval()
    x = torch.randn(2, 288, 35, 35, generator=torch.Generator().manual_seed(1)).relu()
    quantized = torch_int8(net, [x])
    counts = []
    passes = {"post_grad_custom_pre_pass": lambda graph: counts.append(prepack_for_the_output_written(graph))}
    plain, mended = AheadOfTime(quantized), AheadOfTime(quantized, passes=passes)
    with torch.no_grad():
        reference, before, after = quantized(x), plain(x), mended(x)
        log_before, log_after = _onednn_log(lambda: plain(x)), _onednn_log(lambda: mended(x))
    assert log_after.count("convolution,") >= 2, log_after  # the log was read: both convolutions ran
    assert "reorder" not in log_after, log_after
    if "reorder" in log_before:
        assert counts == [1]
    assert torch.equal(before, after)  # the same int8 computation, only the weights' layout differs
    assert float((after - reference).abs().max() / reference.abs().max()) <= 0.02
