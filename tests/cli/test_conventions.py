"""One command line: the network first, -o/--out for every output, plain help, older spellings
rewritten with a note, user errors as one line and bugs reported as bugs, paths checked before work."""

from __future__ import annotations

import warnings

import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

from inceptionkit import create_model
from inceptionkit.cli import common
from inceptionkit.cli.main import app
from inceptionkit.errors import RandomWeightsWarning

COMMANDS = typer.main.get_command(app).commands
TAKES_A_NETWORK = ("summary", "train", "eval", "predict", "export", "activations", "visualize", "examples", "dream",
                   "retrain", "bench", "microscope", "weights")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_reads_plainly_and_describes_every_option(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    for ugly in ("<bool>", "<str>", "<int>", "<path>", "{", "``"):
        assert ugly not in result.output, (name, ugly, result.output)
    context = typer.main.get_command(app).make_context("inceptionkit", [name, "--help"], resilient_parsing=True)
    command = COMMANDS[name]
    undescribed = [p.name for p in command.get_params(context) if not p.hidden and not p.help]
    assert not undescribed, f"{name}: {undescribed} have no description"


def test_a_network_is_the_first_positional_and_every_output_is_o_out():
    for name, command in COMMANDS.items():
        params = [p for p in command.params if not p.hidden]
        names = {opt for p in params for opt in p.opts}
        assert "--output" not in names, name
        if "--out" in names:
            assert "-o" in names, name
        if name in TAKES_A_NETWORK and name != "weights":
            assert params[0].param_type_name == "argument", name
        assert "--model" not in names, name  # the network is positional; eval names a bare file's with --network


def test_older_spellings_are_rewritten_with_a_note():
    args, notes = common.modernize("activations", ["red.png", "--model", "runs/d", "--output=x.png", "--layer", "a"])
    assert args == ["runs/d", "red.png", "--out=x.png", "--layer", "a"]
    assert notes == ["`activations --model runs/d` is now `activations runs/d` (the network first)",
                     "--output is now --out"]
    assert common.modernize("microscope", ["run", "--channels", "2"])[0] == ["run", "--per-branch", "2"]
    assert common.modernize("eval", ["run", "--model", "googlenet"])[0] == ["run", "--network", "googlenet"]
    assert common.modernize("visualize", ["runs/d", "--channels", "0-3"]) == (["runs/d", "--channels", "0-3"], [])
    assert common.modernize("dream", ["--model=runs/d", "--", "--model"])[0] == ["runs/d", "--", "--model"]


def test_an_old_spelling_still_runs_and_says_what_to_write(digits_run, tmp_path):
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    result = invoke("activations", tmp_path / "red.png", "--model", digits_run, "--layer", "inception3a",
                    "--output", tmp_path / "grid.png")
    assert result.exit_code == 0, result.output
    assert "note: `activations --model" in result.output
    assert "the old spelling goes in the next release" in result.output
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_a_bug_is_reported_as_a_bug_and_debug_shows_its_traceback(monkeypatch):
    import inceptionkit.cost

    def broken(*args, **kwargs):
        raise TypeError("summary() got an unexpected keyword argument 'x'")

    monkeypatch.setattr(inceptionkit.cost, "summary", broken)
    result = invoke("summary", "googlenet_cifar")
    assert result.exit_code == 1
    assert "internal error (a bug): TypeError: summary() got an unexpected keyword argument 'x'" in result.output
    assert "--debug" in result.output and "Traceback" not in result.output
    debug = invoke("--debug", "summary", "googlenet_cifar")
    assert isinstance(debug.exception, TypeError)  # raised through: the runner holds the traceback
    monkeypatch.setenv("INCEPTIONKIT_DEBUG", "1")
    assert isinstance(invoke("summary", "googlenet_cifar").exception, TypeError)


def test_bad_input_stays_one_line_with_exit_code_2():
    result = invoke("summary", "googlenet_cifar", "--depth", "0")
    assert result.exit_code == 2 and result.output.startswith("error: --depth must be at least 1")
    assert "internal error" not in result.output


def test_output_paths_are_checked_before_any_work(digits_run, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    export = invoke("export", digits_run, "-o", afile / "x.safetensors")
    assert export.exit_code == 2 and "Traceback" not in export.output
    assert export.output.strip() == f"error: cannot write {afile / 'x.safetensors'}: {afile} is a file, not a folder"
    train = invoke("train", "googlenet_cifar", "--out", afile / "run", "--max-steps", "1")
    assert train.exit_code == 2 and f"{afile} is a file, not a folder" in train.output
    into_file = invoke("microscope", digits_run, "-o", afile)
    assert into_file.exit_code == 2 and f"cannot write into {afile}: it is a file, not a folder" in into_file.output
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    assert f"cannot write {folder}: it is a folder" in invoke("export", digits_run, "-o", folder).output
    assert afile.read_text() == "not a folder"


def test_random_weights_are_a_baseline_with_a_warning(tmp_path):
    with pytest.warns(RandomWeightsWarning, match="baseline"):
        net = create_model("googlenet_cifar", weights="random", width=0.125)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reference = create_model("googlenet_cifar", width=0.125)
    assert net.state_dict().keys() == reference.state_dict().keys()
    Image.new("RGB", (32, 32), (20, 90, 200)).save(tmp_path / "blue.png")
    result = invoke("activations", "googlenet_cifar", tmp_path / "blue.png", "--weights", "random", "--layer",
                    "inception3a", "-o", tmp_path / "grid.png")
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: googlenet_cifar with random weights: a baseline") == 1
    by_tag = invoke("activations", "googlenet_cifar:none", tmp_path / "blue.png", "--layer", "inception3a", "-o",
                    tmp_path / "grid2.png")
    assert by_tag.exit_code == 0 and "random weights" in by_tag.output
    trained = invoke("train", "googlenet_cifar", "--weights", "random", "--width", "0.125", "--input", "3x16x16",
                     "--epochs", "1", "--max-steps", "1", "--batch-size", "16", "--quiet", "-o", tmp_path / "run")
    assert trained.exit_code == 0, trained.output
    assert "warning: googlenet_cifar from random weights: a baseline" in trained.output
    assert '"weights": null' in (tmp_path / "run" / "config.json").read_text()  # trained as from scratch


def test_an_image_of_a_few_pixels_is_named_in_a_warning(digits_run, tmp_path):
    Image.new("RGB", (1, 1), (255, 255, 255)).save(tmp_path / "dot.png")
    Image.new("RGB", (8, 8), (255, 255, 255)).save(tmp_path / "eight.png")
    result = invoke("predict", digits_run, tmp_path / "dot.png", tmp_path / "eight.png")
    assert result.exit_code == 0, result.output
    assert f"warning: {tmp_path / 'dot.png'} is 1x1 pixels, under 8 on a side" in result.output
    assert "eight.png is" not in result.output
    grid = invoke("activations", digits_run, tmp_path / "dot.png", "--layer", "inception3a", "-o", tmp_path / "g.png")
    assert grid.exit_code == 0 and "is 1x1 pixels" in grid.output
