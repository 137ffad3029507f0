"""What a run keeps and what may change: data found from any folder (and after it moved), options a
resume cannot change refused by name, sizes refused up front, skipped images reported."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inceptionkit.cli.main import app
from inceptionkit.runs import load_checkpoint
from inceptionkit.train import TrainConfig, fit

from .test_loop import small

# googlenet_cifar at 1/8 width on 16x16 images, one step of 4 images per epoch
TINY = ["--width", "0.125", "--input", "3x16x16", "--max-steps", "1", "--batch-size", "4", "--amp", "none", "--quiet"]


def make_folder(root, classes=("cat", "dog"), per_class=10):
    """An image folder: ``per_class`` random 12x12 PNGs in a subfolder per class."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / name / f"{k}.png")
    return root


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def epoch_of(run):
    return load_checkpoint(run, "last", load_state=False).meta["epoch"]


def test_a_relative_data_folder_works_from_anywhere_and_may_move(tmp_path, monkeypatch):
    make_folder(tmp_path / "work" / "imgs")
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path / "work")
    first = invoke("train", "googlenet_cifar", "--data", "imgs", "--epochs", "1", *TINY, "--out", run)
    assert first.exit_code == 0, first.output
    monkeypatch.chdir(tmp_path)  # another folder
    evaluated = invoke("eval", run, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["data"] == str(tmp_path / "work" / "imgs")
    resumed = invoke("train", "--resume", run, "--epochs", "2", "--quiet")
    assert resumed.exit_code == 0, resumed.output

    (tmp_path / "work" / "imgs").rename(tmp_path / "moved")
    lost = invoke("eval", run)
    assert lost.exit_code == 2 and "--data" in lost.output and "Traceback" not in lost.output
    assert invoke("eval", run, "--data", "moved", "--json").exit_code == 0
    moved = invoke("train", "--resume", run, "--epochs", "3", "--data", "moved", "--quiet")
    assert moved.exit_code == 0, moved.output
    assert epoch_of(run) == 3
    # the run now knows where its data is
    assert invoke("eval", run).exit_code == 0

    make_folder(tmp_path / "other", classes=("cat", "fox"))
    for wrong in (invoke("eval", run, "--data", "other"),
                  invoke("train", "--resume", run, "--epochs", "4", "--data", "other", "--quiet")):
        assert wrong.exit_code == 2, wrong.output
        assert "cat, fox" in wrong.output and "cat, dog" in wrong.output and "Traceback" not in wrong.output
    assert epoch_of(run) == 3


def test_options_a_resume_cannot_change_are_refused_by_name(tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "googlenet_cifar", "--epochs", "1", *TINY, "--out", run).exit_code == 0
    refused = invoke("train", "--resume", run, "--epochs", "4", "--lr", "0.5", "--batch-size", "16", "--recipe", "v1",
                     "--width", "0.5", "--seed", "3", "--no-augment", "--quiet")
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    for named in ("--lr 0.5 (the run uses 0.1)", "--batch-size 16 (the run uses 4)", "--recipe v1 (the run uses fast)",
                  "--width 0.5 (the run uses 0.125)", "--seed 3 (the run uses 0)",
                  "--no-augment (the run uses --augment)"):
        assert named in text, named
    assert "--epochs 4" not in text and "Traceback" not in text
    other_net = invoke("train", "googlenet", "--resume", run, "--quiet")
    assert other_net.exit_code == 2 and "googlenet (the run trains googlenet_cifar)" in other_net.output
    assert epoch_of(run) == 1
    with pytest.raises(ValueError, match=r"--recipe v3 \(the run uses fast\)"):
        fit(TrainConfig(recipe="v3", progress=False), resume=run)
    clash = invoke("train", "googlenet_cifar", "--in-chans", "1", "--input", "3x16x16", "--out", tmp_path / "grey")
    assert clash.exit_code == 2 and "--in-chans 1 disagrees with --input 3x16x16" in clash.output

    # the values the run already has, and the options that may change, are accepted
    same = invoke("train", "googlenet_cifar", "--resume", run, "--epochs", "2", *TINY, "--recipe", "fast",
                  "--seed", "0", "--device", "cpu", "--workers", "0")
    assert same.exit_code == 0, same.output
    assert epoch_of(run) == 2


def test_max_steps_0_and_a_split_smaller_than_a_batch_are_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="--max-steps must be at least 1"):
        fit(small(tmp_path / "a", max_steps=0))
    make_folder(tmp_path / "imgs", per_class=15)  # 30 images: 24 in the training split
    with pytest.raises(ValueError, match=r"the training split has 24 images, fewer than one batch of 64 "
                                         r"\(drop_last\): use --batch-size 24 or less, or more images"):
        fit(small(tmp_path / "b", data=str(tmp_path / "imgs"), batch_size=64))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_skipped_images_are_reported_on_the_console(tmp_path):
    make_folder(tmp_path / "imgs")
    good = (tmp_path / "imgs" / "cat" / "0.png").read_bytes()
    (tmp_path / "imgs" / "cat" / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "imgs" / "dog" / "empty.png").write_bytes(b"")
    (tmp_path / "imgs" / "dog" / "notes.jpg").write_text("not a picture")
    run = tmp_path / "run"
    result = invoke("train", "googlenet_cifar", "--data", tmp_path / "imgs", "--epochs", "1", *TINY, "--out", run)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"skipped 3 unreadable images (1 empty file, 1 not an image, 1 truncated PNG); the list is in " \
           f"{run / 'metrics.json'}" in text
    listed = json.loads((run / "metrics.json").read_text())["skipped_files"]
    assert sorted(item["file"] for item in listed) == sorted(
        str(tmp_path / "imgs" / p) for p in ("cat/cut.png", "dog/empty.png", "dog/notes.jpg"))
