"""Inception-ResNet-v1 and -v2: counts against ARCHITECTURES.md section 5 and timm, residual
blocks, the model contract, errors."""

import pytest
import timm
import torch

from inceptionkit import InceptionOutputs, create_model, model_config
from inceptionkit.models.inception_resnet import (
    InceptionResNetA,
    InceptionResNetB,
    InceptionResNetC,
    ResNetReductionB,
)

NAMES = ("inception_resnet_v1", "inception_resnet_v2")
NUM_FEATURES = {"inception_resnet_v1": 1792, "inception_resnet_v2": 1536}
MACS_299 = {"inception_resnet_v1": 6_206_361_696, "inception_resnet_v2": 13_155_794_016}  # ARCHITECTURES.md 6


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta(name: str, **kwargs):
    with torch.device("meta"):
        return create_model(name, **kwargs)


def test_v1_param_counts():
    # ARCHITECTURES.md 5.1, "Per-block parameters (BN affine) [computed]" and the paper-layout total
    m = meta("inception_resnet_v1")
    assert n_params(m) == 22_756_328
    stem = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a", "conv2d_4b")
    assert sum(n_params(getattr(m, s)) for s in stem) == 615_552
    expected = {"mixed_6a": 1_710_080, "mixed_7a": 3_346_176}
    expected |= {f"block35_{i}": 77_440 for i in range(1, 6)}
    expected |= {f"block17_{i}": 690_048 for i in range(1, 11)}
    expected |= {f"block8_{i}": 1_600_768 for i in range(1, 6)}
    assert {name: n_params(getattr(m, name)) for name in expected} == expected


def test_v2_param_counts_equal_timm():
    with torch.device("meta"):
        reference = timm.create_model("inception_resnet_v2")
    m = meta("inception_resnet_v2")
    assert n_params(m) == n_params(reference) == 55_843_464
    # ARCHITECTURES.md 5.3, "Per-block parameters, timm [computed]"
    stem = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a")
    assert sum(n_params(getattr(m, s)) for s in stem) == 172_672
    expected = {"mixed_5b": 268_320, "mixed_6a": 2_664_960, "mixed_7a": 3_880_960, "conv_7b": 3_197_952,
                "fc": 1_537_000}
    expected |= {f"block35_{i}": 123_168 for i in range(1, 11)}
    expected |= {f"block17_{i}": 1_126_784 for i in range(1, 21)}
    expected |= {f"block8_{i}": 2_035_424 for i in range(1, 11)}
    assert {name: n_params(getattr(m, name)) for name in expected} == expected


def test_v2_aux_head_param_count():
    # TF-slim with aux minus without (ARCHITECTURES.md 5.3: 59,179,952 - 55,813,192) plus the BN gammas
    # TF-slim does not train (128 + 768).
    assert n_params(meta("inception_resnet_v2", aux_logits=True)) - 55_843_464 == 59_179_952 - 55_813_192 + 896


@pytest.mark.parametrize("name, blocks", [("inception_resnet_v1", (5, 10, 5)), ("inception_resnet_v2", (10, 20, 10))])
def test_residual_blocks_scales_and_final_block(name, blocks):
    m = meta(name)
    for prefix, count, scale in zip(("block35", "block17", "block8"), blocks, (0.17, 0.10, 0.20)):
        names = [n for n in m.trunk if n.startswith(prefix + "_")]
        assert names == [f"{prefix}_{i}" for i in range(1, count + 1)]
        body = names[:-1] if prefix == "block8" else names
        assert all(getattr(m, n).scale == scale and isinstance(getattr(m, n).act, torch.nn.ReLU) for n in body)
    last = getattr(m, f"block8_{blocks[2]}")
    assert last.scale == 1.0 and isinstance(last.act, torch.nn.Identity)


def test_residual_block_arithmetic():
    block = InceptionResNetC(16, 4, ch3x3=(4, 4, 4), scale=0.2, activate=False).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        y = block(x)
        torch.testing.assert_close(y, x + 0.2 * block.proj(block.branches(x)))
        assert (y < 0).any()
        block.act = torch.nn.ReLU()
        assert (block(x) >= 0).all()
    assert block.branches.out_chs == 8 and block.proj.bias is not None


def test_config():
    v1, v2 = model_config("inception_resnet_v1"), model_config("inception_resnet_v2")
    for config in (v1, v2):
        assert config.input_size == (3, 299, 299) and config.min_input == 75
        assert config.mean == config.std == (0.5, 0.5, 0.5) and config.interpolation == "bicubic"
        assert "1602.07261" in config.paper and config.deviations
    assert (v1.crop_pct, v2.crop_pct) == (0.875, 0.8975)
    assert "facenet" in v1.source and "timm" in v2.source and "TF-slim" in v2.source


@pytest.mark.parametrize("name", NAMES)
def test_stage_names(name):
    names = dict(meta(name).named_modules())
    for module in ("conv2d_1a", "maxpool_3a", "block35_1", "mixed_6a.branch2", "block17_3", "block17_3.branches",
                   "block17_3.branches.branch2", "block17_3.proj", "mixed_7a.branch4", "block8_5", "fc"):
        assert module in names, module
    if name == "inception_resnet_v2":
        assert {"mixed_5b.branch2", "block35_10", "block17_20", "block8_10", "conv_7b"} <= set(names)


@pytest.mark.parametrize("name", NAMES)
def test_train_step_at_299(name):
    """Train mode (v2 with its aux head): output type, gradients everywhere, feature_info, and the
    conv+fc multiply-adds of ARCHITECTURES.md 5.1 / 5.3 (for 1000 classes; here 10)."""
    has_aux = name == "inception_resnet_v2"  # v1 has none
    model = create_model(name, num_classes=10, aux_logits=has_aux).train()
    stages, macs = {}, []
    for info in model.feature_info:
        getattr(model, info["module"]).register_forward_hook(lambda m, i, o, k=info["module"]: stages.setdefault(k, o))
    for module_name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module_name.startswith("aux."):
            module.register_forward_hook(lambda m, i, o: macs.append(m.weight.numel() * o[0, 0].numel()))
    out = model(torch.randn(2, 3, 299, 299))
    if has_aux:
        assert isinstance(out, InceptionOutputs)
        assert out.logits.shape == (2, 10) and len(out.aux) == 1 and out.aux[0].shape == (2, 10)
        loss = out.logits.logsumexp(1).sum() + out.aux[0].logsumexp(1).sum()
    else:
        assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
        loss = out.logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    for info in model.feature_info:
        y = stages[info["module"]]
        assert y.shape[1] == info["num_chs"]
        assert 2 ** round(torch.log2(torch.tensor(299 / y.shape[-1])).item()) == info["reduction"]
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16, 32]
    assert stages[model.feature_info[-1]["module"]].shape[1:] == (NUM_FEATURES[name], 8, 8)
    assert sum(macs) == MACS_299[name] - NUM_FEATURES[name] * (1000 - 10)


@pytest.mark.parametrize("name", NAMES)
def test_eval_contract_at_min_input(name):
    model = create_model(name, num_classes=7, aux_logits=name == "inception_resnet_v2").eval()
    width = NUM_FEATURES[name]
    x = torch.randn(2, 3, 75, 75)
    with torch.no_grad():
        logits = model(x)  # eval: no aux head, a plain tensor
        assert isinstance(logits, torch.Tensor) and logits.shape == (2, 7)
        features = model.forward_features(x)
        assert features.shape == (2, width, 1, 1)
        assert model.forward_head(features, pre_logits=True).shape == (2, width)
        torch.testing.assert_close(model.forward_head(features), logits)
        model.reset_classifier(10)
        assert model.get_classifier().out_features == 10 and model.forward_head(features).shape == (2, 10)
        if model.has_aux:
            assert model.aux.fc.out_features == 10


@pytest.mark.parametrize("name", NAMES)
def test_too_small_input_fails(name):
    size = model_config(name).min_input - 1  # 74: Reduction-B's 3x3/2 valid convs meet a 2x2 grid
    model = create_model(name).eval()
    with torch.no_grad():
        with pytest.raises((RuntimeError, ValueError)):
            model(torch.randn(1, 3, size, size))


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: InceptionResNetA(320, 32, ch3x3=(32, 32), dbl3x3=(32, 48, 64), scale=1.5), "scale"),
        (lambda: InceptionResNetA(320, 32, ch3x3=(32, 32), dbl3x3=(32, 48, 64), scale=0.0), "scale"),
        (lambda: InceptionResNetA(320, 32, ch3x3=(32,), dbl3x3=(32, 48, 64), scale=0.17), "ch3x3"),
        (lambda: InceptionResNetB(1088, 0, ch7x7=(128, 160, 192), scale=0.1), "ch1x1"),
        (lambda: InceptionResNetC(2080, 192, ch3x3=(192, 224, 256), scale=-0.2), "scale"),
        (lambda: ResNetReductionB(1088, ch3x3=(256, 384), ch3x3_2=(256, 288), dbl3x3=(256, 320)), "dbl3x3"),
        (lambda: create_model("inception_resnet_v1", drop_rate=-0.1), "drop_rate"),
        (lambda: create_model("inception_resnet_v1", aux_logits=True), "aux_logits"),
        (lambda: create_model("inception_resnet_v2", in_chans=0), "in_chans"),
    ],
)
def test_invalid_arguments_name_the_argument(build, argument):
    with torch.device("meta"), pytest.raises(ValueError, match=rf"^{argument}\b"):
        build()
