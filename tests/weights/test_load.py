"""inceptionkit.load: every kind of file a user has, and the files it must refuse."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
import torchvision
from PIL import Image
from sklearn.datasets import load_digits

import inceptionkit
from inceptionkit.train import TrainConfig, fit
from inceptionkit.transfer import predict
from inceptionkit.weights import WeightsError, export, load


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny digits run: googlenet_cifar at 1/8 width on 16x16, a few steps."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    fit(TrainConfig(model="googlenet_cifar", model_kwargs={"width": 0.125}, input_size=(3, 16, 16), epochs=1,
                    batch_size=16, max_steps=3, progress=False, out=str(out), amp="none"))
    return out


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """Ten of scikit-learn's digits as 16x16 PNG files, one per class."""
    folder = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    for label in range(10):
        pixels = digits.images[np.flatnonzero(digits.target == label)[0]] * (255 / 16)
        Image.fromarray(pixels.astype(np.uint8)).resize((16, 16)).convert("RGB").save(folder / f"{label}.png")
    return folder


def test_a_run_exports_and_loads_in_a_fresh_process_with_equal_predictions(run, digit_images, tmp_path):
    model = load(run)
    assert model.pretrained_cfg["classes"] == [str(d) for d in range(10)]
    assert model.pretrained_cfg["input_size"] == (3, 16, 16)
    ours = predict(model, digit_images, top=3).to_dict()

    exported = export(model, tmp_path / "digits.safetensors")
    code = ("import json, sys, inceptionkit; from inceptionkit.transfer import predict; "
            "m = inceptionkit.load(sys.argv[1]); print(json.dumps(predict(m, sys.argv[2], top=3).to_dict()))")
    fresh = subprocess.run([sys.executable, "-c", code, str(exported), str(digit_images)], capture_output=True,
                           text=True, check=True)
    theirs = json.loads(fresh.stdout)
    assert [p["indices"] for p in theirs["predictions"]] == [p["indices"] for p in ours["predictions"]]
    assert np.allclose([p["probabilities"] for p in theirs["predictions"]],
                       [p["probabilities"] for p in ours["predictions"]], atol=1e-6)


def test_a_foreign_state_dict_is_recognised(tmp_path):
    tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    torch.save(tv.state_dict(), tmp_path / "mine.pth")
    model = load(tmp_path / "mine.pth").eval()
    assert model.config.name == "googlenet" and model.init_kwargs["variant"] == "torchvision"
    assert model.aux_taps == {}  # the file has no aux heads, so none were built (and no warning)
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)  # torchvision's weights: [-1, 1] input
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), tv(x), atol=1e-5)

    ref = timm.create_model("inception_v4", num_classes=7).eval()
    torch.save({"state_dict": ref.state_dict()}, tmp_path / "v4.pth")  # wrapped, as training scripts save
    v4 = load(tmp_path / "v4.pth").eval()
    assert v4.config.name == "inception_v4" and v4.pretrained_cfg["num_classes"] == 7
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        assert torch.allclose(v4(x), ref(x), atol=1e-5)


def test_files_that_fit_nothing_are_refused_clearly(tmp_path):
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match="not a readable PyTorch weights file"):
        load(tmp_path / "noise.pth")

    whole = tmp_path / "whole.pth"
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).state_dict(), whole)
    (tmp_path / "truncated.pth").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load(tmp_path / "truncated.pth")

    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="fit no known network layout.*conv.weight"):
        load(tmp_path / "other.pth")

    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load(tmp_path / "bad.safetensors")


class Payload:
    def __reduce__(self):
        return (open, (str(PWNED), "w"))


PWNED = None


def test_a_pickle_with_code_is_refused_and_its_code_never_runs(tmp_path):
    global PWNED
    PWNED = tmp_path / "pwned"
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"fc.weight": torch.zeros(2, 2), "payload": Payload()}, f)
    with pytest.raises(WeightsError, match="never run as code"):
        load(tmp_path / "evil.pth")
    assert not PWNED.exists()


def test_a_run_loads_into_the_network_it_names(run):
    with pytest.raises(WeightsError, match="holds googlenet_cifar, not inception_v3"):
        load(run, model="inception_v3")
    assert isinstance(inceptionkit.load(run), torch.nn.Module)


def test_a_run_records_the_preprocessing_it_trained_with(run):
    """The digits are normalised with googlenet_cifar's CIFAR statistics and resized whole to 16x16."""
    from inceptionkit.runs import load_checkpoint

    meta = load_checkpoint(run, "best", load_state=False).meta
    assert meta["preprocessing"]["input_size"] == [3, 16, 16] and meta["preprocessing"]["resize"] == 16
    assert meta["preprocessing"]["mean"] == list(inceptionkit.model_config("googlenet_cifar").mean)
