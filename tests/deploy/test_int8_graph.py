"""The int8 graph that Inductor compiles: ceil-mode pools rewritten exactly, concatenations of
convolutions in int8, the compiled graph computing what PyTorch's reference quantized graph
computes (which Inductor's max pool patterns broke, deploy/workarounds.py), and no convolution's
weights reordered on a call."""

from __future__ import annotations

import functools
import itertools
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from inceptionkit import create_model, hardware
from inceptionkit.deploy.aot import AheadOfTime, compile_ahead_of_time
from inceptionkit.deploy.fuse import fold_batchnorm, fuse_sibling_convs
from inceptionkit.deploy.quantize import int8_passes, int8_scheme, torch_int8
from inceptionkit.deploy.workarounds import FastestWeightPacking, FloorModeMaxPool, floor_mode_max_pools

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
def test_two_inception_modules_in_int8_compute_the_reference_graph(fuse, branch):
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
    branch(f"int8 scheme {int8_scheme('torch')}")
    # every branch ends in a convolution or a part of the merged one: the concatenations are int8
    cats = [n for n in quantized.graph.nodes if n.target is torch.ops.aten.cat.default]
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    assert len(cats) == 2 and all(a.target is dequantize for cat in cats for a in cat.args[0])
    with torch.no_grad():
        reference, compiled = quantized(x), AheadOfTime(quantized, passes=int8_passes())(x)
    assert compiled.shape == (2, 512, 14, 14)
    # PyTorch's reference graph computes the int8 operations in fp32; Inductor's kernels round differently
    # by a step or two of the output's 256 levels (more where a CPU without VNNI saturated a multiply-add
    # of full-range int8 weights: quantize.int8_scheme)
    assert float((compiled - reference).abs().max() / reference.abs().max()) <= 0.02


def onednn_log_of_second_call(package: str, x: torch.Tensor, tmp_path) -> str:
    """oneDNN's verbose log of the second call of a compiled package (the first builds and caches the
    primitives), read in a child process: the library is run there with ONEDNN_VERBOSE set."""
    torch.save(x, tmp_path / "x.pt")
    child = (f"import torch\nfrom torch._inductor import aoti_load_package\nrun = aoti_load_package({package!r})\n"
             f"x = torch.load({str(tmp_path / 'x.pt')!r})\nrun(x)\nprint('second call', flush=True)\nrun(x)\n")
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"ONEDNN_VERBOSE": "1"}, check=True)
    return done.stdout.split("second call", 1)[1]


def test_each_int8_convolution_runs_on_the_fastest_packing_of_its_weights(tmp_path, branch):
    """inception_v3's mixed_6a 3x3/2 convolution (288 -> 384 channels) at batch 2, writing uint8 for
    the next int8 layer: with AVX512-VNNI oneDNN wanted its weights blocked 64 output channels at a
    time where Inductor packed 48, and reordered them on every call. The pass times each packing and
    keeps the fastest: the same int8 computation, and no weight reordered on a call afterwards."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(288, 384, 3, 2), nn.ReLU(), nn.Conv2d(384, 32, 1)).eval()
    x = torch.randn(2, 288, 35, 35, generator=torch.Generator().manual_seed(1)).relu()
    scheme = int8_scheme("torch")
    quantized = torch_int8(net, [x])
    packing = FastestWeightPacking()
    package = str(tmp_path / "packed.pt2")
    with torch.no_grad():
        reference, plain = quantized(x), AheadOfTime(quantized)(x)
        packed = compile_ahead_of_time(quantized, x, {"post_grad_custom_pre_pass": packing}, package)(x)
    branch(f"int8 scheme {scheme}, {packing.repacked} convolution(s) packed again")
    assert torch.equal(plain, packed)  # the same int8 computation, only the weights' layout differs
    # Inductor's kernels round the uint8 intermediate otherwise than the reference graph (which
    # computes in fp32) by a step or two of its 256 levels
    assert float((packed - reference).abs().max() / reference.abs().max()) <= 0.02
    log = onednn_log_of_second_call(package, x, tmp_path)
    assert log.count("convolution,") >= 2, log  # the log was read: both convolutions ran
    assert "reorder" not in log, log


@pytest.mark.parametrize("vnni", [True, False], ids=["with VNNI", "without VNNI"])
def test_the_int8_scheme_follows_the_cpu_in_both_runtimes(vnni, tmp_path):
    """Full-range int8 weights where the CPU has VNNI; in [-64, 64] without it, where a uint8 x int8
    multiply-add of two pairs must stay within int16 (2 x 255 x 64 < 32767 < 2 x 255 x 127). Either
    branch is forced here, whatever this CPU has; the weights are read from the quantized graph and
    from the ONNX file, not from the code's own record."""
    import onnx
    from onnx import numpy_helper

    from inceptionkit.deploy.onnx import onnx_proto
    from inceptionkit.deploy.quantize import quantize_onnx

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 8, 1)).eval()
    x = torch.randn(4, 3, 12, 12)
    features = ("avx2", "fma3", "avx512_f", "avx512_vnni") if vnni else ("avx2", "fma3")
    with hardware.assume(architecture="x86_64", features=features):
        scheme, onnx_scheme = int8_scheme("torch"), int8_scheme("onnxruntime")
        quantized = torch_int8(net, [x])
        (tmp_path / "net.onnx").write_bytes(onnx_proto(net, x[:2]).SerializeToString())
        quantize_onnx(tmp_path / "net.onnx", [x], tmp_path / "net.int8.onnx")
    assert scheme == onnx_scheme == ("u8s8" if vnni else "u8s8, 7-bit weights")
    constants = [functools.reduce(getattr, n.target.split("."), quantized)
                 for n in quantized.graph.nodes if n.op == "get_attr"]
    int8_weights = [t for t in constants if t.dtype == torch.int8 and t.dim() == 4]
    from_onnx = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "net.int8.onnx")).graph.initializer]
    from_onnx = [torch.from_numpy(a.copy()) for a in from_onnx if a.dtype.name == "int8" and a.ndim == 4]
    assert len(int8_weights) == len(from_onnx) == 2
    for weights in (int8_weights, from_onnx):
        low, high = min(int(w.min()) for w in weights), max(int(w.max()) for w in weights)
        assert (low, high) in ((-128, 127), (-127, 127)) if vnni else (low >= -64 and high <= 64 and high - low >= 120)


def test_outside_the_tested_releases_torchaos_own_quantizer_runs(monkeypatch):
    """With torch or torchao outside deploy.quantize.TESTED, the int8 graph comes from torchao's
    quantizer as it is (no annotation of ours, no packing pass), with a warning: still int8, still
    the network's function within the bound of the int8 tests."""
    import inceptionkit.deploy.quantize as quantize

    monkeypatch.setattr(quantize.hardware, "versions", lambda: {"torch": "2.16.0", "torchao": "0.20.0"})
    assert not quantize.within_tested_versions() and quantize.int8_passes() == {}
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                        nn.Conv2d(16, 8, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(2, 3, 16, 16)
    with pytest.warns(UserWarning, match="tested with torch 2.14 and torchao 0.18; with torch 2.16.0, torchao 0.20.0"):
        quantized = torch_int8(net, [x])
    assert any(n.target is torch.ops.quantized_decomposed.quantize_per_tensor.default for n in quantized.graph.nodes)
    with torch.no_grad():
        got, expected = AheadOfTime(quantized, passes=quantize.int8_passes())(x), net(x)
    assert got.shape == expected.shape and float((got - expected).abs().max() / expected.abs().max()) <= 0.05
