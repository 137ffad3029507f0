"""inceptionkit activations and visualize on a network trained in the tests."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from inceptionkit.cli.main import app
from inceptionkit.weights import export

runner = CliRunner()


def test_activations_writes_a_grid_of_the_layer(digits_net, tmp_path):
    weights = export(digits_net, tmp_path / "digits.safetensors")
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    result = runner.invoke(app, ["activations", str(weights), str(tmp_path / "red.png"), "--layer",
                                 "inception3a.branch2", "--cols", "4", "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    channels = digits_net.inception3a.branch2[-1].conv.out_channels
    picture = Image.open(tmp_path / "grid.png")
    tile = 32 * 2 + 1  # 32x32 maps upscaled to 64 px, 1 px apart
    assert picture.size == (4 * tile + 1, -(-channels // 4) * tile + 1)
    assert "channels of 32x32" in result.output

    typo = runner.invoke(app, ["activations", str(weights), str(tmp_path / "red.png"), "--layer",
                               "inception3x", "-o", str(tmp_path / "g.png")])
    assert typo.exit_code == 2 and "no layer 'inception3x'; did you mean inception3b, inception3a" in typo.output
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    bad = runner.invoke(app, ["activations", str(weights), str(tmp_path / "bad.jpg"), "--layer",
                              "conv1", "-o", str(tmp_path / "g.png")])
    assert bad.exit_code == 2 and "bad.jpg cannot be read as an image" in bad.output


def test_visualize_writes_one_image_per_channel(digits_net, tmp_path):
    weights = export(digits_net, tmp_path / "digits.safetensors")
    result = runner.invoke(app, ["visualize", str(weights), "--layer", "inception4a", "--channels",
                                 "0-2", "--steps", "8", "-o", str(tmp_path / "sheet.png")])
    assert result.exit_code == 0, result.output
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape[1] == 2 + 2 * (96 + 2)  # 3 images: 2 columns of 96 px tiles, 2 px apart
    assert "3 images" in result.output


def test_examples_writes_a_row_per_channel(digits_net, tmp_path):
    weights = export(digits_net, tmp_path / "digits.safetensors")
    result = runner.invoke(app, ["examples", str(weights), "--layer", "inception4a", "--channels", "0,2",
                                 "--k", "3", "-o", str(tmp_path / "examples.png")])
    assert result.exit_code == 0, result.output
    assert "2 channels x 3 examples" in result.output and (tmp_path / "examples.png").is_file()


def test_dream_cli_writes_a_picture_or_a_gif(digits_net, tmp_path):
    weights = export(digits_net, tmp_path / "digits.safetensors")
    one = runner.invoke(app, ["dream", str(weights), "--layer", "inception4a", "--max-side", "64",
                              "--octaves", "1", "--steps", "2", "-o", str(tmp_path / "dream.png")])
    assert one.exit_code == 0, one.output
    assert Image.open(tmp_path / "dream.png").size == (64, 43)  # china.jpg (640 x 427) shrunk to 64 wide
    gif = runner.invoke(app, ["dream", str(weights), "--layer", "inception3b", "--max-side", "48",
                              "--octaves", "1", "--steps", "1", "--frames", "3", "-o", str(tmp_path / "d.gif")])
    assert gif.exit_code == 0, gif.output
    assert Image.open(tmp_path / "d.gif").n_frames == 3
    wrong = runner.invoke(app, ["dream", str(weights), "--layer", "inception3b", "--frames", "3",
                                "-o", str(tmp_path / "d.png")])
    assert wrong.exit_code == 2 and "write a .gif" in wrong.output


def test_model_name_with_a_weights_file(digits_net, tmp_path):
    """--model NAME --weights FILE, as the issue spells it, is the same network as --model FILE."""
    weights = export(digits_net, tmp_path / "digits.safetensors")
    Image.new("RGB", (32, 32), (10, 200, 30)).save(tmp_path / "green.png")
    by_file = runner.invoke(app, ["activations", str(weights), str(tmp_path / "green.png"), "--layer",
                                  "conv1", "-o", str(tmp_path / "a.png")])
    by_name = runner.invoke(app, ["activations", "googlenet_cifar", str(tmp_path / "green.png"),
                                  "--weights", str(weights), "--layer", "conv1", "-o", str(tmp_path / "b.png")])
    assert by_file.exit_code == by_name.exit_code == 0, by_name.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
