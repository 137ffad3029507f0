"""Published weights, offline: a checkpoint in the source's own format, made here from the reference
implementation, placed in a temporary torch hub cache under the source's file name; ours with
`preprocess` must predict what the reference predicts with its own transforms."""

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from sklearn.datasets import load_sample_images

import inceptionkit
from inceptionkit.weights import SOURCES, HashMismatch, WeightsUnavailable, get_source
from inceptionkit.weights.hub import sha256_of
from tests.reference import recalibrate_bn, relative_diff


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """scikit-learn's two sample photos (china.jpg, flower.jpg), 640x427, and a crop of each."""
    images = [Image.fromarray(np.asarray(a)) for a in load_sample_images().images]
    return images + [im.crop((100, 50, 500, 400)) for im in images]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty $TORCH_HOME; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def publish(monkeypatch, folder, key: str, state: dict) -> None:
    """Save ``state`` as the source's file and make the source expect its real digest."""
    source = SOURCES[key]
    path = folder / source.file_name
    torch.save(state, path)
    monkeypatch.setitem(SOURCES, key, replace(source, sha256=sha256_of(path)))


def sharpened(build: Callable[[], torch.nn.Module], input_size) -> torch.nn.Module:
    """The reference network with seeded random weights (the same whatever ran before), outputs that
    depend on the input, and a classifier scaled so that probabilities differ."""
    torch.manual_seed(0)
    model = build()
    recalibrate_bn(model, input_size, batches=2, batch_size=2)
    if hasattr(model, "get_classifier"):  # timm
        classifier = model.get_classifier()
    else:
        classifier = getattr(model, "last_linear", None) or model.fc  # Cadene, torchvision
    with torch.no_grad():
        classifier.weight.mul_(20)
    return model.eval()


def logits(model, transform, images) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.stack([transform(im) for im in images]))


def assert_same_predictions(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """The same top-5, and the same logits to float32 rounding relative to their scale.

    The pipelines normalise pixels in another order (inputs one float32 ulp apart) and sum in float32
    through dozens of layers: measured 3e-7 to 1.3e-6 of max |logit| for the four networks, as large as
    each reference's own error against float64 (5e-7 for inception_resnet_v2). One pixel off by 1/255
    moves inception_resnet_v2's logits by 1.8e-5 of their scale, a wrong crop or resize by 2e-2.
    (Probabilities compared absolutely hang on how peaked the random softmax is: one-hot for some
    networks, so nothing checked, near 1e-5 of rounding for others.)
    """
    assert torch.equal(ours.topk(5).indices, theirs.topk(5).indices)
    assert relative_diff(ours, theirs) < 1e-5
    assert theirs.softmax(1).max() > 0.05  # the comparison is not between two uniform distributions


@pytest.mark.parametrize("name,builder,weights_enum", [
    ("inception_v3", torchvision.models.inception_v3, torchvision.models.Inception_V3_Weights.IMAGENET1K_V1),
    ("googlenet", torchvision.models.googlenet, torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1),
])
def test_torchvision_weights_predict_as_torchvision_does(name, builder, weights_enum, hub, monkeypatch, photos):
    """torchvision normalises with ImageNet's mean/std and undoes it inside the model (transform_input);
    ours normalises once to [-1, 1] as the weights' preprocessing says: the same top-5 and logits."""
    size = get_source(name, "torchvision").preprocessing.input_size
    reference = sharpened(lambda: builder(weights=None, aux_logits=True, init_weights=True, transform_input=True),
                          size)
    publish(monkeypatch, hub, f"{name}:torchvision", reference.state_dict())

    ours = inceptionkit.create_model(name, weights="torchvision").eval()
    assert ours.pretrained_cfg["source"] == f"{name}:torchvision"
    assert ours.pretrained_cfg["classes"][:2] == ["tench", "goldfish"]
    assert_same_predictions(logits(ours, inceptionkit.preprocess(ours), photos),
                            logits(reference, weights_enum.transforms(), photos))


def test_timm_weights_predict_as_timm_does(hub, monkeypatch, photos):
    import timm
    from timm.data import create_transform, resolve_data_config

    key = "inception_resnet_v2:timm"
    source = SOURCES[key]
    reference = sharpened(lambda: timm.create_model("inception_resnet_v2"), (3, 299, 299))
    from safetensors.torch import save_file

    path = hub / source.file_name
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    monkeypatch.setitem(SOURCES, key, replace(source, sha256=sha256_of(path)))

    ours = inceptionkit.create_model("inception_resnet_v2", weights="timm").eval()
    transform = create_transform(**resolve_data_config({}, model=timm.create_model("inception_resnet_v2")))
    assert_same_predictions(logits(ours, inceptionkit.preprocess(ours), photos),
                            logits(reference, transform, photos))


def test_aux_heads_load_either_way(hub, monkeypatch):
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    publish(monkeypatch, hub, "inception_v3:torchvision", reference.state_dict())
    with_aux = inceptionkit.create_model("inception_v3", weights="torchvision", aux_logits=True)
    assert torch.equal(with_aux.aux.fc.weight, reference.AuxLogits.fc.weight)
    without = inceptionkit.create_model("inception_v3", weights="torchvision", aux_logits=False)
    assert without.aux is None and torch.equal(without.fc.weight, reference.fc.weight)

    no_aux_file = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    publish(monkeypatch, hub, "inception_v3:torchvision", no_aux_file.state_dict())
    with pytest.warns(UserWarning, match="no weights for aux.*freshly initialised"):
        fresh = inceptionkit.create_model("inception_v3", weights="torchvision", aux_logits=True)
    assert torch.equal(fresh.fc.weight, no_aux_file.fc.weight) and fresh.aux is not None


def test_a_cached_file_with_another_hash_is_refused(hub, monkeypatch):
    source = SOURCES["googlenet:torchvision"]
    (hub / source.file_name).write_bytes(b"not the published file")
    with pytest.raises(HashMismatch, match="damaged or not the published one"):
        inceptionkit.create_model("googlenet", weights="torchvision")


def test_a_download_with_another_hash_leaves_nothing_behind(hub, monkeypatch, tmp_path):
    served = tmp_path / "served.pth"
    torch.save({"x": torch.zeros(3)}, served)
    source = SOURCES["googlenet:torchvision"]
    monkeypatch.setitem(SOURCES, "googlenet:torchvision", replace(source, url=served.as_uri(), sha256="0" * 64))
    with pytest.raises(HashMismatch, match="was discarded"):
        inceptionkit.create_model("googlenet", weights="torchvision", progress=False)
    assert list(hub.iterdir()) == []  # no .partial file, no file under the source's name


def test_a_download_lands_in_the_cache_when_its_hash_matches(hub, monkeypatch, tmp_path):
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    served = tmp_path / "served.pth"
    torch.save(reference.state_dict(), served)
    source = SOURCES["googlenet:torchvision"]
    monkeypatch.setitem(SOURCES, "googlenet:torchvision",
                        replace(source, url=served.as_uri(), sha256=sha256_of(served)))
    model = inceptionkit.create_model("googlenet", weights="torchvision", aux_logits=False, progress=False)
    assert (hub / source.file_name).is_file() and torch.equal(model.fc.weight, reference.fc.weight)


def test_offline_and_absent_names_the_url_and_the_path(hub, monkeypatch):
    source = SOURCES["inception_v3:torchvision"]
    monkeypatch.setitem(SOURCES, "inception_v3:torchvision", replace(source, url="http://127.0.0.1:9/x.pth"))
    with pytest.raises(WeightsUnavailable) as error:
        inceptionkit.create_model("inception_v3", weights="torchvision", progress=False)
    assert "http://127.0.0.1:9/x.pth" in str(error.value) and str(hub / source.file_name) in str(error.value)


def test_unknown_sources_are_named():
    with pytest.raises(ValueError, match="inception_v3 has no weights 'torchvison'; did you mean 'torchvision'"):
        get_source("inception_v3", "torchvison")
    with pytest.raises(ValueError, match="no published weights for 'teaching_cifar10'"):
        inceptionkit.create_model("teaching_cifar10", weights="DEFAULT")


def reference_file(key: str, folder) -> None:
    """The source's file, made from the reference implementation with random weights, in the source's format."""
    import timm
    from safetensors.torch import save_file

    source = SOURCES[key]
    if source.layout == "cadene":
        state = cadene_module("models/bninception").BNInception().state_dict()
        torch.save({k: v.unsqueeze(0) if "_bn." in k and v.dim() == 1 else v for k, v in state.items()},
                   folder / source.file_name)
    elif source.layout == "torchvision":
        builder = {"googlenet": torchvision.models.googlenet, "inception_v3": torchvision.models.inception_v3}
        state = builder[source.model](weights=None, aux_logits=True, init_weights=False).state_dict()
        torch.save(state, folder / source.file_name)
    else:
        kwargs = {"aux_logits": True} if source.model == "inception_v3" else {}  # tv_in1k holds timm's aux head
        state = timm.create_model(source.model, **kwargs).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / source.file_name))


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_every_source_loads_with_and_without_aux_heads(key, hub, monkeypatch):
    import warnings

    reference_file(key, hub)
    source = SOURCES[key]
    monkeypatch.setitem(SOURCES, key, replace(source, sha256=sha256_of(hub / source.file_name)))
    tag = key.split(":")[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropping aux weights is silent
        without = inceptionkit.create_model(source.model, weights=tag, aux_logits=False)
    assert without.aux_taps == {}
    if source.model == "bn_inception":  # the network has no aux heads: it says so
        with pytest.raises(ValueError, match="aux"):
            inceptionkit.create_model(source.model, weights=tag, aux_logits=True)
        return
    if source.has_aux:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with_aux = inceptionkit.create_model(source.model, weights=tag, aux_logits=True)
    else:
        with pytest.warns(UserWarning, match="freshly initialised"):
            with_aux = inceptionkit.create_model(source.model, weights=tag, aux_logits=True)
    assert with_aux.aux_taps and torch.equal(with_aux.state_dict()["fc.weight"], without.state_dict()["fc.weight"])


def cadene_module(name: str):
    """A module of Cadene's pretrainedmodels, loaded from its file (its package __init__ imports much more)."""
    import importlib.util

    folder = importlib.util.find_spec("pretrainedmodels").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location(f"cadene_{name.replace('/', '_')}", f"{folder}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cadene_bn_inception_predicts_as_its_own_pipeline(hub, monkeypatch, photos):
    """Caffe's input (BGR, 0..255, minus 104/117/128) travels with the weights; the file's 1 x C BatchNorm
    vectors (saved by an old PyTorch) load as C."""
    reference = sharpened(cadene_module("models/bninception").BNInception, (3, 224, 224))
    state = {k: v.unsqueeze(0) if ("_bn." in k and v.dim() == 1) else v for k, v in reference.state_dict().items()}
    publish(monkeypatch, hub, "bn_inception:cadene", state)

    ours = inceptionkit.create_model("bn_inception", weights="cadene").eval()
    settings = {"input_space": "BGR", "input_size": [3, 224, 224], "input_range": [0, 255],
                "mean": [104, 117, 128], "std": [1, 1, 1]}
    theirs = cadene_module("utils").TransformImage(settings)
    assert_same_predictions(logits(ours, inceptionkit.preprocess(ours), photos),
                            logits(reference, theirs, photos))
