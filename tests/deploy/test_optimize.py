"""Inference rewrites and optimize(): the same function as the original network on every network
(BatchNorm with real statistics folded, sibling 1x1 convolutions fused), int8 that keeps a trained
network's answers, bf16 only where the hardware has it, and the original left untouched."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import inceptionkit
from inceptionkit import create_model, hardware, list_models
from inceptionkit.deploy import optimize
from inceptionkit.deploy.chunks import InChunks, high_resolution_stages
from inceptionkit.deploy.fuse import FusedConcat, fold_batchnorm, fold_residual_scales, fuse_sibling_convs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def with_statistics(name: str, **kwargs) -> torch.nn.Module:
    """A network whose BatchNorm layers hold non-trivial statistics and affine weights (eval mode)."""
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


# 1x1 convolutions merged away, counted by hand from the module tables (ARCHITECTURES.md): a module
# whose k branches start with a 1x1 convolution merges k - 1 of them.
# googlenet: 9 modules x 2. inception_v3: 3 x 35x35 (1x1; 1x1-5x5; 1x1-3x3-3x3) 6 + 4 x 17x17 8 +
#   Mixed_7a (two 1x1 reduces) 1 + 2 x 8x8 4 = 19. inception_v4: mixed_4a 1 + 4 A x 2 + 7 B x 2 + 3 C x 2
#   + Reduction-B 1 = 30. inception_resnet_v2: mixed_5b 2 + 10 block35 x 2 + 20 block17 x 1 + mixed_7a
#   (three 1x1 reduces) 2 + 10 block8 x 1 = 54. inception_resnet_v1: 5 A x 2 + 10 B x 1 + Reduction-B
#   (three 1x1 reduces) 2 + 5 C x 1 = 27.
MERGED = {"googlenet": 18, "inception_v3": 19, "inception_v4": 30, "inception_resnet_v2": 54, "inception_resnet_v1": 27}


@pytest.mark.parametrize("name", list_models())
def test_folding_and_fusing_compute_the_same_function(name):
    model = with_statistics(name)
    rewritten = copy.deepcopy(model)
    folded = fold_batchnorm(rewritten)
    fold_residual_scales(rewritten)
    merged = fuse_sibling_convs(rewritten)
    assert folded == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in rewritten.modules())
    if name in MERGED:
        assert merged == MERGED[name]
    assert merged == sum(len(m.sizes) - 1 for m in rewritten.modules() if isinstance(m, FusedConcat))
    c, h, w = model.pretrained_cfg["input_size"]
    side = {"googlenet": 64, "bn_inception": 64}.get(name, max(h, 75) if h > 48 else h)
    x = torch.randn(2, c, side, side if h > 48 else w)
    with torch.no_grad():
        assert rel(rewritten(x), model(x)) <= 1e-4


# The stages up to the first output at 1/16 of the input's side or less, by hand from the tables:
# googlenet 224 -> conv1 112 -> maxpool1 56 -> (lrn1, conv2, conv3, lrn2) -> maxpool2 28 -> 3a, 3b ->
# maxpool3 14 = 224 / 16. inception_v3 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35 -> 5b, 5c, 5d
# -> mixed_6a 17 <= ceil(299 / 16) = 19. inception_resnet_v1 299 -> 149, 147, 147, maxpool 73, 73, 71,
# conv2d_4b 35, five block35, mixed_6a 17. googlenet_cifar (32x32) never gets to 2x2.
HIGH_RESOLUTION = {
    "googlenet": ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2", "inception3a", "inception3b",
                  "maxpool3"],
    "inception_v3": ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a",
                     "mixed_5b", "mixed_5c", "mixed_5d", "mixed_6a"],
    "inception_resnet_v1": ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
                            "conv2d_4b", *(f"block35_{i}" for i in range(1, 6)), "mixed_6a"],
    "googlenet_cifar": [],
}


@pytest.mark.parametrize("name", list(HIGH_RESOLUTION))
def test_the_high_resolution_stages_end_at_a_sixteenth_of_the_side(name):
    with torch.device("meta"):
        model = create_model(name).eval()
    assert high_resolution_stages(model) == HIGH_RESOLUTION[name]


@pytest.mark.parametrize("name", ["googlenet", "inception_resnet_v1"])
def test_optimize_matches_the_original_and_leaves_it_untouched(name):
    model = with_statistics(name, **({"variant": "torchvision"} if name == "googlenet" else {}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize(model, backend="torch")
    assert fast.optimization.max_rel_diff <= 1e-4 and fast.optimization.channels_last
    assert fast.optimization.folded_batchnorms > 0 and fast.optimization.merged_convs == MERGED[name]
    stages = [s for s in HIGH_RESOLUTION[name] if s in model.trunk]  # torchvision's googlenet has no LRN
    assert fast.optimization.chunk == 2 and fast.optimization.chunked_stages == len(stages)
    chunked = next(m for m in fast.runner.module.modules() if isinstance(m, InChunks))
    passes = []
    chunked.body.register_forward_hook(lambda module, inputs, out: passes.append(len(out)))
    x = torch.randn(3, *model.pretrained_cfg["input_size"])
    with torch.no_grad():
        assert rel(fast(x), model(x)) <= 1e-4
    assert passes == [2, 1]  # the early stages ran two images, then the third
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not model.training
    plain = optimize(model, backend="torch", fuse=False, chunk=0, check=False).optimization  # folding always
    assert plain.merged_convs == 0 and plain.folded_batchnorms == fast.optimization.folded_batchnorms
    assert plain.chunked_stages == 0
    runtime = optimize(model, backend="onnxruntime")
    assert runtime.optimization.max_rel_diff <= 1e-4 and runtime.optimization.merged_convs == 0
    with torch.no_grad():
        assert rel(runtime(x), model(x)) <= 1e-4


def test_compiled_ahead_of_time_matches_the_original_at_each_batch_size():
    model = with_statistics("googlenet", variant="torchvision")
    # the check batch (4 images, stem in 2 x 2) builds the first library
    fast = optimize(model, backend="torch", compile=True)
    assert fast.optimization.compiled and fast.optimization.max_rel_diff <= 1e-4
    assert fast.optimization.merged_convs == MERGED["googlenet"] and fast.optimization.chunk == 2
    x = torch.randn(1, *model.pretrained_cfg["input_size"])
    with torch.no_grad():
        assert rel(fast(x), model(x)) <= 1e-4
        assert rel(fast(x.contiguous(memory_format=torch.channels_last)), model(x)) <= 1e-4
    built = fast.runner.compiled.built
    assert sorted(shape[0] for shape, _, _ in built) == [1, 4]  # one library per batch size, reused


@pytest.mark.slow
def test_int8_runs_the_high_resolution_stages_in_chunks_as_a_graph_of_their_own():
    model = with_statistics("googlenet", variant="torchvision")  # its four max pools are in ceil mode
    images = torch.randn(4, *model.pretrained_cfg["input_size"], generator=torch.Generator().manual_seed(1))
    # the check runs the calibration batch: two graphs built
    fast = optimize(model, "int8", backend="torch", calibration=images)
    report = fast.optimization
    print(f"googlenet int8 in chunks: max relative difference {report.max_rel_diff:.4f}, "
          f"top-1 agreement {report.top1_agreement:.2f}")
    assert report.chunk == 2 and report.chunked_stages == len(high_resolution_stages(model)) == 8
    early, rest = fast.runner.compiled
    assert sorted(early.built) == [((2, 3, 224, 224), torch.float32, torch.device("cpu"))]
    # the early stages end at maxpool3: 480 channels at 14x14 (224 / 16, ceil-mode pools all the way),
    # handed over in uint8 where the last early operation runs in int8 (maxpool3, between two int8
    # Inception modules), in fp32 where it does not
    ((shape, dtype, device),) = rest.built
    assert shape == (4, 480, 14, 14) and dtype in (torch.uint8, torch.float32) and device.type == "cpu"
    assert report.max_rel_diff <= 0.05


def test_an_int8_max_pool_in_ceil_mode_keeps_its_output_size():
    """Inductor's int8 max pool (torch 2.14) pools in floor mode unless deploy.workarounds steps in."""
    from inceptionkit.deploy.aot import AheadOfTime
    from inceptionkit.deploy.quantize import torch_int8

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(3, 2, ceil_mode=True),  # 16 -> ceil(13 / 2) + 1 = 8, not 7
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()).eval()
    x = torch.randn(2, 3, 16, 16)
    compiled = AheadOfTime(torch_int8(net, [x]))
    with torch.no_grad():
        got, expected = compiled(x), net(x)
    assert got.shape == expected.shape == (2, 8, 8, 8)
    assert rel(got, expected) <= 0.05


def test_bad_requests_are_refused_with_the_reason(monkeypatch):
    model = create_model("teaching_cifar10")
    with pytest.raises(ValueError, match="dtype must be one of"):
        optimize(model, "fp16")
    with pytest.raises(ValueError, match="int8 needs calibration"):
        optimize(model, "int8")
    with pytest.raises(ValueError, match="fuse=True is for the torch backend"):
        optimize(model, backend="onnxruntime", fuse=True)
    with pytest.raises(ValueError, match="chunk is for the torch backend: ONNX Runtime runs the whole batch"):
        optimize(model, backend="onnxruntime", chunk=2)
    with pytest.raises(ValueError, match="chunk must be 0 .* got -1"):
        optimize(model, chunk=-1)
    with pytest.raises(ValueError, match="compile is for the torch backend"):
        optimize(model, backend="onnxruntime", compile=True)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        optimize(model, batch_size=0)
    with hardware.assume(features=("avx2", "fma3")), pytest.raises(ValueError, match="no native bf16"):
        optimize(model, "bf16")


@pytest.mark.skipif(not hardware.current().native_bf16, reason="this CPU has no native bf16")
def test_bf16_where_the_cpu_has_it_stays_close():
    model = with_statistics("googlenet", variant="torchvision")
    fast = optimize(model, "bf16", backend="torch")
    assert fast.optimization.max_rel_diff <= 0.05


@pytest.fixture(scope="module")
def digits_network(digits_quarter_run):
    """googlenet_cifar (quarter width) trained on 16x16 digits for 6 epochs, and its test images."""
    run = digits_quarter_run
    from inceptionkit.data import load_data
    from inceptionkit.weights.preprocessing import preprocessing_of

    model = inceptionkit.load(run).eval()
    prep = preprocessing_of(model)
    data = load_data("digits", prep.input_size, mean=prep.mean, std=prep.std, augment=False)
    test = torch.stack([data.test[i][0] for i in range(len(data.test))])
    calibration = list(torch.stack([data.train[i][0] for i in range(240)]).split(60))  # 180 test images = 3 x 60:
    # one batch size, so the compiled int8 graph is built once
    return model, test, calibration


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("cpu", ["without VNNI", "with VNNI"])
def test_int8_keeps_the_trained_networks_answers(digits_network, backend, cpu, branch):
    """Both int8 schemes: 7 bits on one side, right on every x86 CPU (forced here whatever this one
    has), and full-range u8s8, right only where the CPU has VNNI (its kernels saturate without)."""
    if cpu == "with VNNI" and not hardware.current().vnni:
        pytest.skip("full-range u8s8 runs only on a CPU with VNNI: without it oneDNN's and MLAS's kernels saturate")
    model, test, calibration = digits_network
    features = hardware.current().features if cpu == "with VNNI" else ("avx2", "fma3")
    with warnings.catch_warnings(), hardware.assume(architecture="x86_64", features=features):
        warnings.simplefilter("ignore")
        quantized = optimize(model, "int8", backend=backend, calibration=calibration)
        got = torch.cat([quantized(batch) for batch in test.split(60)])
    with torch.no_grad():
        expected = model(test)
    agreement = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    scheme = quantized.optimization.int8_scheme
    branch(f"int8 scheme {scheme} ({cpu} forced) on {hardware.current().describe()}: top-1 agreement "
           f"{agreement:.4f}")
    assert scheme == ("u8s8" if cpu == "with VNNI" else "u8s8, 7-bit weights")
    assert agreement >= 0.99  # measured 1.0 on both backends, both schemes on AVX-512 VNNI, 7 bits on AVX2
    assert quantized.optimization.top1_agreement >= 0.99  # on the calibration images
    assert (quantized.optimization.merged_convs > 0) == (backend == "torch")  # int8 in PyTorch: fused
    assert not dead_torchscript_builtins()  # importing torchao left none behind: torch.jit.script still works


def dead_torchscript_builtins() -> list[str]:
    """TorchScript's builtin-operator entries (keyed by id()) whose object no longer exists: a new
    object at that address would be taken for the operator (it made torch.jit.script of inception_v3
    fail later in the suite once). Counted independently of deploy.workarounds: every id must belong
    to an object the garbage collector sees or to torch's own list of builtins."""
    import gc

    from torch.jit import _builtins

    live = {id(o) for o in gc.get_objects()} | {id(f) for f, _ in _builtins._builtin_ops}
    return sorted({name for key, name in (_builtins._builtin_table or {}).items() if key not in live})
