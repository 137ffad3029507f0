"""The command line: list, summary, and user errors without tracebacks."""

import json

from typer.testing import CliRunner

from inceptionkit.cli.main import app

runner = CliRunner()


def test_list_prints_every_network_with_counts():
    result = runner.invoke(app, ["list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("googlenet", "inception_v3", "inception_resnet_v2", "teaching_fer2013"):
        assert name in result.output
    assert "27,161,264" in result.output  # inception_v3 with its aux head (torchvision's count)
    assert "23,834,568" in result.output  # without
    assert "55,843,464" in result.output  # inception_resnet_v2 as timm
    assert "3x299x299" in result.output


def test_summary_json_totals():
    result = runner.invoke(app, ["summary", "googlenet_cifar", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total_params"] == 6_166_250
    names = [row["name"] for row in data["rows"]]
    assert "inception4c" in names


def test_unknown_model_is_one_clear_line():
    result = runner.invoke(app, ["summary", "googlenett"])
    assert result.exit_code == 2
    assert "unknown model 'googlenett'" in result.output
    assert "googlenet" in result.output
    assert "Traceback" not in result.output


def test_bad_input_size_is_named():
    result = runner.invoke(app, ["summary", "googlenet", "--input", "3by224"])
    assert result.exit_code == 2
    assert "3x224x224" in result.output
