"""Inception-v4: counts against timm and ARCHITECTURES.md section 4, the model contract, errors."""

import pytest
import timm
import torch

from inceptionkit import InceptionOutputs, create_model, model_config
from inceptionkit.models.inception_v4 import InceptionB, InceptionC, ReductionA, StemFactorized

NAME = "inception_v4"


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def meta_model():
    with torch.device("meta"):
        return create_model(NAME)


def test_param_count_equals_timm(meta_model):
    with torch.device("meta"):
        reference = timm.create_model(NAME)
    assert n_params(meta_model) == n_params(reference) == 42_679_816


def test_block_param_counts(meta_model):
    # ARCHITECTURES.md 4.3, "Per-block parameters, timm (BN affine) [computed]"
    m = meta_model
    assert sum(n_params(getattr(m, s)) for s in ("conv2d_1a", "conv2d_2a", "conv2d_2b")) == 28_768
    expected = {"mixed_3a": 55_488, "mixed_4a": 189_312, "mixed_5a": 332_160, "reduction_a": 2_306_112,
                "reduction_b": 2_747_392, "fc": 1_537_000}
    expected |= {f"inception_a{i}": 317_632 for i in range(1, 5)}
    expected |= {f"inception_b{i}": 2_936_256 for i in range(1, 8)}
    expected |= {f"inception_c{i}": 4_553_088 for i in range(1, 4)}
    assert {name: n_params(getattr(m, name)) for name in expected} == expected


def test_aux_head_param_count():
    # TF-slim with aux minus without (ARCHITECTURES.md 4.3: 46,006,800 - 42,648,232) plus the BN gammas
    # TF-slim does not train (128 + 768).
    with torch.device("meta"):
        with_aux = create_model(NAME, aux_logits=True)
    assert n_params(with_aux) - 42_679_816 == 46_006_800 - 42_648_232 + 128 + 768


def test_config():
    config = model_config(NAME)
    assert config.input_size == (3, 299, 299) and config.min_input == 75
    assert config.mean == config.std == (0.5, 0.5, 0.5)
    assert (config.interpolation, config.crop_pct) == ("bicubic", 0.875)
    assert "1602.07261" in config.paper and config.deviations


def test_stage_names(meta_model):
    names = dict(meta_model.named_modules())
    for name in ("conv2d_1a", "mixed_3a", "mixed_4a.branch2", "inception_a4", "reduction_a.branch2",
                 "inception_b3", "inception_b3.branch3", "reduction_b", "inception_c3.branch2", "fc"):
        assert name in names, name
    assert meta_model.trunk[-1] == "inception_c3" and len(meta_model.trunk) == 6 + 4 + 1 + 7 + 1 + 3


def test_train_step_at_299():
    """Train mode with the aux head: output type, gradients everywhere, feature_info, and the
    conv+fc multiply-adds of ARCHITECTURES.md 4.3 (12,253,974,624 for 1000 classes; here 10)."""
    model = create_model(NAME, num_classes=10, aux_logits=True).train()
    stages, macs = {}, []
    for info in model.feature_info:
        getattr(model, info["module"]).register_forward_hook(lambda m, i, o, k=info["module"]: stages.setdefault(k, o))
    for module_name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module_name.startswith("aux."):
            module.register_forward_hook(lambda m, i, o: macs.append(m.weight.numel() * o[0, 0].numel()))
    out = model(torch.randn(2, 3, 299, 299))
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == (2, 10) and len(out.aux) == 1 and out.aux[0].shape == (2, 10)
    (out.logits.logsumexp(1).sum() + out.aux[0].logsumexp(1).sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    for info in model.feature_info:
        y = stages[info["module"]]
        assert y.shape[1] == info["num_chs"]
        assert 2 ** round(torch.log2(torch.tensor(299 / y.shape[-1])).item()) == info["reduction"]
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16, 32]
    assert sum(macs) == 12_253_974_624 - 1536 * (1000 - 10)


def test_eval_contract_at_min_input():
    model = create_model(NAME, num_classes=7, aux_logits=True).eval()
    x = torch.randn(2, 3, 75, 75)
    with torch.no_grad():
        logits = model(x)  # eval: no aux head, a plain tensor
        assert isinstance(logits, torch.Tensor) and logits.shape == (2, 7)
        features = model.forward_features(x)
        assert features.shape == (2, 1536, 1, 1)
        assert model.forward_head(features, pre_logits=True).shape == (2, 1536)
        torch.testing.assert_close(model.forward_head(features), logits)
        model.reset_classifier(10)
        assert model.get_classifier().out_features == 10 and model.forward_head(features).shape == (2, 10)
        assert model.aux.fc.out_features == 10
        model.reset_classifier(0)
        assert model.forward_head(features).shape == (2, 1536)


def test_too_small_input_fails():
    size = model_config(NAME).min_input - 1  # 74: Reduction-B's 3x3/2 valid convs meet a 2x2 grid
    model = create_model(NAME).eval()
    with torch.no_grad():
        with pytest.raises((RuntimeError, ValueError)):
            model(torch.randn(1, 3, size, size))


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: ReductionA(384, k=0, l=224, m=256, n=384), "k"),
        (lambda: ReductionA(384, k=192, l=224, m=256, n=-1), "n"),
        (lambda: InceptionB(1024, 384, ch7x7=(192, 224), dbl7x7=(192, 192, 224, 224, 256), pool_proj=128), "ch7x7"),
        (lambda: InceptionC(1536, 256, ch3x3=(384, 256), dbl3x3=(384, 448, 512, 0), pool_proj=256), "dbl3x3"),
        (lambda: StemFactorized(160, ch3x3=(64, 96), ch7x7=(64, 64, 96)), "ch7x7"),
        (lambda: create_model(NAME, drop_rate=1.0), "drop_rate"),
        (lambda: create_model(NAME, in_chans=0), "in_chans"),
        (lambda: create_model(NAME, num_classes=-1), "num_classes"),
    ],
)
def test_invalid_arguments_name_the_argument(build, argument):
    with torch.device("meta"), pytest.raises(ValueError, match=rf"^{argument}\b"):
        build()
