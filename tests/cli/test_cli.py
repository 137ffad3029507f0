"""The command line: list, summary, and user errors without tracebacks."""

import json

import pytest
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


def test_summary_prints_memory_and_json_has_it():
    result = runner.invoke(app, ["summary", "googlenet_cifar", "--json"])
    data = json.loads(result.output)
    for key in ("rows", "total_params", "trainable_params", "non_trainable_params", "total_macs", "memory_mb"):
        assert key in data
    from inceptionkit import create_model

    assert data["total_params"] == sum(p.numel() for p in create_model("googlenet_cifar").parameters())
    text = runner.invoke(app, ["summary", "googlenet_cifar"], terminal_width=200).output
    assert "Forward/backward pass size (MB)" in text and "activations" in text
    assert "Params size (MB): 23.52" in text  # 6,166,250 float32 parameters, as torchsummary prints them


def test_summary_of_a_too_small_input_names_the_layer():
    result = runner.invoke(app, ["summary", "inception_v4", "--input", "3x64x64"])
    assert result.exit_code == 2
    assert "reduction_b.branch1.1.conv" in result.output and "1x192x2x2" in result.output
    assert "at least 75x75" in result.output and "Traceback" not in result.output


def test_compare_naive_vs_reduced():
    result = runner.invoke(app, ["compare", "--in", "192", "--size", "28", "--reduced", "64,96,128,16,32,32", "--json"])
    assert result.exit_code == 0, result.output
    naive, reduced = json.loads(result.output)["rows"]
    assert naive["macs"] == 303_464_448 and reduced["macs"] == 128_049_152
    two = json.loads(runner.invoke(app, ["compare", "--in", "64", "--size", "35", "--two-3x3", "--json"]).output)
    assert two["rows"][1]["macs_vs_first"] == pytest.approx(18 / 25)
    bad = runner.invoke(app, ["compare", "--in", "192", "--size", "28", "--reduced", "64,96"])
    assert bad.exit_code == 2 and "6 positive comma-separated numbers" in bad.output


def test_cost_of_a_conv_stack():
    result = runner.invoke(app, ["cost", "--in", "192", "--size", "28", "--convs", "1x1:16,5x5:32"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "12,443,648" in result.output
    result = runner.invoke(app, ["cost", "--in", "192", "--size", "28", "--convs", "5x5:32"], terminal_width=200)
    assert "120,422,400" in result.output


def test_table_googlenet_prints_table_1():
    result = runner.invoke(app, ["table", "googlenet"], terminal_width=220)
    assert result.exit_code == 0, result.output
    assert "inception (4c)" in result.output and "463K" in result.output
    assert "depth 22 layers with parameters, 27 counting pooling" in result.output
    data = json.loads(runner.invoke(app, ["table", "googlenet", "--json"]).output)
    assert {row["name"] for row in data["rows"] if not row["agrees"]} == {"conv1", "inception4c", "inception5a"}


def _heavy_modules_after(args: list[str]) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running the command line with ``args``."""
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from inceptionkit.cli.main import app; "
            f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
            "print(','.join(m for m in ('torch', 'torchvision', 'sklearn', 'matplotlib', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_help_imports_nothing_heavy_and_list_only_torch():
    """Start-up: --help must not wait for torch; list needs torch but no torchvision, scikit-learn or plotting."""
    assert _heavy_modules_after(["--help"]) == []
    assert _heavy_modules_after(["train", "--help"]) == []
    assert _heavy_modules_after(["list"]) == ["torch"]


def test_train_help_names_every_recipe():
    from inceptionkit.train.recipes import RECIPES

    text = runner.invoke(app, ["train", "--help"], terminal_width=200).output
    assert all(name in text for name in RECIPES)


def test_summary_totals_agree_with_list():
    """list: googlenet 6,998,552 params without aux heads, 13,378,280 with; summary's totals say the same."""
    listed = runner.invoke(app, ["list"], terminal_width=200).output
    assert "6,998,552" in listed and "13,378,280" in listed
    text = runner.invoke(app, ["summary", "googlenet"], terminal_width=200).output
    assert "Total params: 6,998,552" in text and "13,378,280 params with them" in text
    assert "aux1" in text and "not run" in text
    data = json.loads(runner.invoke(app, ["summary", "googlenet", "--no-aux", "--json"]).output)
    assert data["total_params"] == data["all_params"] == 6_998_552 and data["not_run"] == []


def test_summary_takes_the_constructor_options():
    """--variant, --width, --in-chans and --aux reach the network; --input 1xHxW builds a 1-channel one."""
    tv = json.loads(runner.invoke(app, ["summary", "googlenet", "--variant", "torchvision", "--json"]).output)
    assert tv["total_macs"] == 1_498_376_192 and tv["total_params"] == 6_624_904  # torchvision's _ops, num_params
    narrow = json.loads(runner.invoke(app, ["summary", "googlenet_cifar", "--width", "0.25", "--json"]).output)
    assert narrow["total_params"] < 6_166_250 / 8
    grey = runner.invoke(app, ["summary", "googlenet", "--input", "1x224x224", "--json"])
    assert grey.exit_code == 0, grey.output
    first = json.loads(grey.output)["rows"][0]
    assert first["name"] == "conv1" and first["params"] == 7 * 7 * 1 * 64 + 64  # conv bias, no BN (paper)
    same = runner.invoke(app, ["summary", "googlenet", "--in-chans", "1", "--input", "1x224x224", "--json"])
    assert json.loads(same.output)["rows"][0]["params"] == first["params"]
    clash = runner.invoke(app, ["summary", "googlenet", "--in-chans", "3", "--input", "1x224x224"])
    assert clash.exit_code == 2 and "--in-chans 3 disagrees with --input 1x224x224 (1 channel)" in clash.output


def test_summary_refuses_depth_below_one():
    for depth in ("0", "-1"):
        result = runner.invoke(app, ["summary", "googlenet_cifar", "--depth", depth])
        assert result.exit_code == 2 and "--depth must be at least 1" in result.output


def test_summary_torchsummary_convention():
    """torchsummary's count takes every module's output (a conv, its ReLU and the block holding them): more
    memory than ours for the same network, the same parameters (its exact figures: tests/cost/test_summary.py)."""
    ours = json.loads(runner.invoke(app, ["summary", "googlenet", "--json"]).output)
    theirs = json.loads(runner.invoke(app, ["summary", "googlenet", "--json", "--convention", "torchsummary"]).output)
    assert theirs["convention"] == "torchsummary"
    assert theirs["memory_mb"]["forward_backward_pass_size"] > ours["memory_mb"]["forward_backward_pass_size"]
    assert theirs["total_params"] == ours["total_params"]
    text = runner.invoke(app, ["summary", "googlenet", "--convention", "torchsummary"], terminal_width=200).output
    assert "torchsummary's count" in text


def test_an_unwritable_file_is_one_line_not_a_traceback(capsys):
    import typer

    from inceptionkit.cli.common import user_errors

    @user_errors
    def write():
        raise PermissionError(13, "Permission denied", "/srv/readonly/x.png")

    with pytest.raises(typer.Exit) as stopped:
        write()
    assert stopped.value.exit_code == 2
    assert "Permission denied: '/srv/readonly/x.png'" in capsys.readouterr().err


def test_table_takes_the_shared_options():
    """googlenet_cifar at width 0.5: the classifier reads 512 features (1024 x 0.5), 5,130 params for 10 classes."""
    rows = json.loads(runner.invoke(app, ["table", "googlenet_cifar", "--width", "0.5", "--json"]).output)
    assert {r["name"]: r["params"] for r in rows}["fc"] == 512 * 10 + 10
    wrong = runner.invoke(app, ["table", "inception_v3", "--variant", "torchvision"])
    assert wrong.exit_code == 2 and "inception_v3 does not take variant" in wrong.output
