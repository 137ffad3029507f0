"""inception_v3 from torchvision and timm: converted state_dicts give the reference's outputs."""

import copy

import pytest
import timm
import torch
import torchvision

from inceptionkit import create_model
from inceptionkit.weights import ConversionError, convert
from tests.reference import assert_input_dependent, disable_dropout, recalibrate_bn, relative_diff


def build_reference(source: str, aux_logits: bool, init: bool = True) -> torch.nn.Module:
    if source == "torchvision":  # transform_input=False: compare the networks, not preprocessing
        return torchvision.models.inception_v3(
            weights=None, aux_logits=aux_logits, init_weights=init, transform_input=False
        )
    return timm.create_model("inception_v3", aux_logits=aux_logits)


def logits(out):
    """torchvision returns a tensor in eval; timm with aux_logits returns (logits, aux) always."""
    return out[0] if isinstance(out, tuple) else out


@pytest.fixture(scope="module", params=["torchvision", "timm"])
def reference(request):
    """A reference with aux head and random weights, its BN statistics measured on random batches."""
    torch.manual_seed(0)
    model = build_reference(request.param, aux_logits=True)
    recalibrate_bn(model, (3, 299, 299), batches=2, batch_size=2)
    return request.param, model


@pytest.fixture(scope="module")
def image():
    return torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("aux_logits", [True, False], ids=["aux", "no_aux"])
def test_eval_outputs_equal_reference(reference, image, aux_logits):
    source, ref = reference
    state = ref.state_dict()
    if not aux_logits:  # the same weights in a reference built without the aux head
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        ref = build_reference(source, aux_logits=False, init=False)
        ref.load_state_dict(state, strict=True)
    ours = create_model("inception_v3", aux_logits=aux_logits)
    ours.load_state_dict(convert(state, "inception_v3", source), strict=True)
    ref.eval(), ours.eval()
    with torch.no_grad():
        expected, got = logits(ref(image)), ours(image)
    assert_input_dependent(expected)
    assert relative_diff(got, expected) <= 1e-5


def test_train_mode_aux_outputs_equal_reference(reference, image):
    """Train mode (batch statistics, dropout off): main and aux logits both agree."""
    source, ref = reference
    ref = copy.deepcopy(ref)  # train mode updates running stats; keep the shared fixture intact
    ours = create_model("inception_v3", aux_logits=True)
    ours.load_state_dict(convert(ref.state_dict(), "inception_v3", source), strict=True)
    for model in (ref, ours):
        disable_dropout(model)
        model.train()
    with torch.no_grad():
        main, aux = ref(image)
        out = ours(image)
    assert len(out.aux) == 1
    assert_input_dependent(aux)
    assert relative_diff(out.logits, main) <= 1e-5
    assert relative_diff(out.aux[0], aux) <= 1e-5


def test_conversion_reads_classes_and_input_channels():
    ref = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, num_classes=10)
    ref.Conv2d_1a_3x3.conv = torch.nn.Conv2d(1, 32, 3, stride=2, bias=False)  # a grayscale variant
    state = convert(ref.state_dict(), "inception_v3", "torchvision")
    ours = create_model("inception_v3", num_classes=10, in_chans=1)
    ours.load_state_dict(state, strict=True)
    # the nested 1x3 || 3x1 split of the expanded module lands where it should
    assert torch.equal(state["mixed_7b.branch2.1.branch2.conv.weight"], ref.Mixed_7b.branch3x3_2b.conv.weight)


def test_wrong_shape_names_the_key():
    state = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).state_dict()
    state["Mixed_6b.branch7x7_2.conv.weight"] = torch.zeros(128, 128, 7, 1)  # 7x1 where a 1x7 belongs
    with pytest.raises(ConversionError, match=r"Mixed_6b\.branch7x7_2\.conv\.weight"):
        convert(state, "inception_v3", "torchvision")


def test_missing_and_unexpected_keys_are_named():
    state = timm.create_model("inception_v3").state_dict()
    state.pop("Mixed_7c.branch_pool.bn.running_var")
    with pytest.raises(ConversionError, match="Mixed_7c"):
        convert(state, "inception_v3", "timm")
