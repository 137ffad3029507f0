"""predict: top-k with class names, folders with unreadable files, and the --json format."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import inceptionkit
from inceptionkit.cli.main import app
from inceptionkit.transfer import predict
from inceptionkit.weights import export
from inceptionkit.weights.load import attach
from inceptionkit.weights.preprocessing import Preprocessing

CLASSES = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def colour_model():
    """A network that knows colours by construction: logits = 10 x mean of each input channel."""
    model = inceptionkit.create_model("teaching_cifar10", num_classes=3)
    return attach(model, Preprocessing((3, 32, 32), resize=32, mean=(0, 0, 0), std=(1, 1, 1)), CLASSES, "test")


class ChannelMeans(torch.nn.Module):
    def forward(self, x):
        return 10 * x.mean(dim=(2, 3))


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, rgb in [("r", (250, 10, 10)), ("g", (10, 250, 10)), ("b", (10, 10, 250))]:
        Image.new("RGB", (40, 30), rgb).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_predict_names_the_classes_in_order_and_skips_unreadable_files(colour_model, images, monkeypatch):
    monkeypatch.setattr(colour_model, "forward", ChannelMeans().forward)
    result = predict(colour_model, images, top=2)
    assert [(p.image.rsplit("/", 1)[-1], p.classes[0]) for p in result.items] == [
        ("b.png", "blue"), ("g.png", "green"), ("r.png", "red")]
    probs = result.items[0].probabilities
    expected = torch.tensor([10 * 10, 10 * 10, 10 * 250]).div(255).softmax(0).sort(descending=True).values[:2]
    assert np.allclose(probs, expected.tolist(), atol=1e-6)
    assert [(path.rsplit("/", 1)[-1], "broken" in path) for path, _ in result.skipped] == [("broken.jpg", True)]


def test_a_single_unreadable_file_is_an_error(colour_model, images):
    with pytest.raises(ValueError, match="broken.jpg cannot be read as an image"):
        predict(colour_model, images / "broken.jpg")
    with pytest.raises(FileNotFoundError, match="no such image file or folder"):
        predict(colour_model, images / "missing.png")


def test_predict_cli_json_format(images, tmp_path):
    model = inceptionkit.create_model("teaching_cifar10", num_classes=3)
    attach(model, Preprocessing((3, 32, 32), resize=32), CLASSES, "test")
    exported = export(model, tmp_path / "colours.safetensors")
    result = CliRunner().invoke(app, ["predict", str(exported), str(images), "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["weights"] == str(exported)
    assert len(data["predictions"]) == 3 and [s["image"].rsplit("/", 1)[-1] for s in data["skipped"]] == [
        "broken.jpg"]
    first = data["predictions"][0]
    assert set(first) == {"image", "classes", "indices", "probabilities"}
    assert len(first["classes"]) == 2 and set(first["classes"]) <= set(CLASSES)
    assert first["probabilities"] == sorted(first["probabilities"], reverse=True)
    assert [CLASSES[i] for i in first["indices"]] == first["classes"]

    one = CliRunner().invoke(app, ["predict", str(exported), str(images / "broken.jpg")])
    assert one.exit_code == 2 and "broken.jpg cannot be read as an image" in one.output
