"""The training loop: run files, resume equivalence, NaN handling, DDP with two gloo processes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from inceptionkit.cli.main import app
from inceptionkit.runs import load_checkpoint
from inceptionkit.train import TrainConfig, TrainingDiverged, fit
from inceptionkit.train import loop as loop_module


def small(out, **overrides) -> TrainConfig:
    """A tiny run: googlenet_cifar at 1/8 width on 16x16 digits, 3 steps per epoch."""
    config = dict(model="googlenet_cifar", model_kwargs={"width": 0.125}, input_size=(3, 16, 16), epochs=3,
                  batch_size=16, max_steps=3, progress=False, out=str(out), amp="none")
    config.update(overrides)
    return TrainConfig(**config)


def scale_loss_after_epoch_1(monkeypatch, factor: float) -> dict:
    """Multiply the training loss by ``factor`` from the 4th step on (epoch 2 of a 3-step-per-epoch run)."""
    real, calls = loop_module.compute_loss, {"n": 0}

    def scaled(*args):
        calls["n"] += 1
        total, main = real(*args)
        return (total * factor, main) if calls["n"] > 3 else (total, main)

    monkeypatch.setattr(loop_module, "compute_loss", scaled)
    return calls


def weights(run, tag="last"):
    return load_checkpoint(run, tag, load_state=False).weights


def test_a_run_writes_metrics_history_plots_and_checkpoints(tmp_path):
    metrics = fit(small(tmp_path / "run"))
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert 0.0 <= saved["test_top1"] <= 1.0 and 0.0 <= saved["val_top1"] <= 1.0
    assert saved["epochs"] == 3 and saved["seconds"] > 0 and saved["data"] == "digits"
    assert len(json.loads((run / "history.json").read_text())) == 3
    assert (run / "history.csv").read_text().splitlines()[0].startswith("epoch,")
    for name in ("curves.png", "confusion.png", "last.json", "best.json", "config.json"):
        assert (run / name).stat().st_size > 0, name
    assert any(f.name.startswith("events.out.tfevents") for f in (run / "tensorboard").iterdir())
    assert load_checkpoint(run, "last").meta["epoch"] == 3
    # the test accuracy is that of the best checkpoint on the test split
    best = load_checkpoint(run, "best", load_state=False)
    assert best.meta["metrics"]["val_top1"] == saved["val_top1"]


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, monkeypatch):
    fit(small(tmp_path / "straight"))
    real = loop_module.train_one_epoch

    def dies_in_epoch_3(run, epoch):
        if epoch == 2:  # a kill in the middle of the third epoch
            raise KeyboardInterrupt
        return real(run, epoch)

    monkeypatch.setattr(loop_module, "train_one_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        fit(small(tmp_path / "broken"))
    assert load_checkpoint(tmp_path / "broken", "last").meta["epoch"] == 2
    monkeypatch.setattr(loop_module, "train_one_epoch", real)
    fit(TrainConfig(progress=False), resume=tmp_path / "broken")
    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "broken")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    history = json.loads((tmp_path / "broken" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]


def _last_epoch(run) -> int:
    try:
        return json.loads((run / "last.json").read_text())["meta"]["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture
def one_thread():
    """Computing on one thread, as the killed process does (a CPU's sums may depend on the thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_killed_with_workers_resumes_to_the_same_weights_bit_for_bit(tmp_path, one_thread):
    """kill -9 during epoch 2 of a real process loading with 2 workers, resumed with 2 workers: the same
    weights as the uninterrupted run; and 0 workers give them too (augmentation keyed by sample, not worker)."""
    args = ["train", "googlenet_cifar", "--width", "0.125", "--input", "3x16x16", "--epochs", "3", "--batch-size",
            "16", "--max-steps", "16", "--amp", "none", "--seed", "3", "--workers", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = subprocess.Popen([sys.executable, "-m", "inceptionkit", *args, "--out", str(tmp_path / "killed")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in killed.stdout:  # not a terminal: one line per finished epoch
            if line.startswith("epoch 1/3:"):
                time.sleep(0.2)  # a few steps into epoch 2
                killed.send_signal(signal.SIGKILL)
                break
    finally:
        killed.kill()
        killed.wait()
    assert killed.returncode == -signal.SIGKILL and _last_epoch(tmp_path / "killed") == 1

    straight = fit(small(tmp_path / "straight", workers=2, max_steps=16, seed=3))
    resumed = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "killed"), "--workers", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.startswith(f"resuming {tmp_path / 'killed'} at epoch 2 of 3 (last checkpoint: epoch 1, ")
    fit(small(tmp_path / "no-workers", workers=0, max_steps=16, seed=3))
    reference = weights(tmp_path / "straight")
    for run in ("killed", "no-workers"):
        other = weights(tmp_path / run)
        assert reference.keys() == other.keys()
        differ = [key for key in reference if not torch.equal(reference[key], other[key])]
        assert not differ, f"{run}: {len(differ)} of {len(reference)} tensors differ"
    assert straight["epochs"] == 3


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = scale_loss_after_epoch_1(monkeypatch, float("nan"))
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at epoch 2, step 1.*last good checkpoint"):
        fit(small(tmp_path / "run"))
    good = load_checkpoint(tmp_path / "run", "last")
    assert good.meta["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in good.weights.values())

    calls["n"] = 0  # the command line: one clear line, exit code 3
    result = CliRunner().invoke(app, ["train", "googlenet_cifar", "--width", "0.125", "--input", "3x16x16",
                                      "--epochs", "2", "--max-steps", "3", "--batch-size", "16", "--quiet",
                                      "--amp", "none", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 3, result.output
    assert "the loss became nan" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """torchrun, 2 CPU processes, gloo: both ranks end identical and equal to a single-process run (1e-5)."""
    args = ["train", "teaching_cifar10", "--epochs", "1", "--max-steps", "3", "--batch-size", "16",
            "--no-augment", "--amp", "none", "--quiet", "--recipe", "v1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         "-m", "inceptionkit", *args, "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    ours, theirs = weights(tmp_path / "ddp"), weights(tmp_path / "one")
    assert max((ours[k] - theirs[k]).abs().max().item() for k in ours) < 1e-5
    ddp_metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp_metrics["world_size"] == 2 and ddp_metrics["ranks_identical"] is True
    # validation is sharded over the two processes and summed: the same figures as one process
    ddp_rows, one_rows = (json.loads((tmp_path / r / "history.json").read_text()) for r in ("ddp", "one"))
    assert ddp_rows[0]["val_top1"] == one_rows[0]["val_top1"]
    assert ddp_rows[0]["val_loss"] == pytest.approx(one_rows[0]["val_loss"], rel=1e-5)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "ddp").rglob("*"))


@pytest.mark.slow
def test_a_data_error_under_torchrun_is_printed_once_without_a_traceback(tmp_path):
    """Rank 0 finds CIFAR-10 missing; rank 1 must stop with the same error instead of dying in gloo."""
    env = dict(os.environ, OMP_NUM_THREADS="1", INCEPTIONKIT_CACHE=str(tmp_path / "cache"))
    ran = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29518",
         "-m", "inceptionkit", "train", "teaching_cifar10", "--data", "cifar10", "--epochs", "1", "--max-steps", "1",
         "--amp", "none", "--quiet", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode != 0
    assert output.count("error: CIFAR-10 is not in") == 1, output
    assert "gloo" not in output and "Connection closed" not in output and "[rank" not in output, output
    # what remains is torchrun's own report of its workers: the first to stop exited with the user-error
    # code 2 (torchrun may then SIGTERM the other before it exits with 2 as well), none with a Python error
    assert output.count("Traceback") == output.count("ChildFailedError:") == 1, output
    assert "exitcode  : 2" in output and "exitcode  : 1 " not in output, output


def test_a_finished_run_is_never_overwritten(tmp_path):
    fit(small(tmp_path / "run", epochs=1, max_steps=1))
    before = (tmp_path / "run" / "last.json").read_text()
    with pytest.raises(ValueError, match="already holds a run: continue it with --resume"):
        fit(small(tmp_path / "run", epochs=1, max_steps=1))
    assert (tmp_path / "run" / "last.json").read_text() == before


@pytest.mark.slow
def test_digits_reach_95_percent(digits_quarter_run):
    """The embedded default, fast: 1/4-width googlenet_cifar at 16x16, 6 epochs (the 98% run is in docs/training.md)."""
    metrics = json.loads((digits_quarter_run / "metrics.json").read_text())
    assert metrics["epochs"] == 6 and metrics["test_top1"] >= 0.95, metrics


def test_eval_command_and_bf16_autocast(tmp_path):
    metrics = fit(small(tmp_path / "run", epochs=1, max_steps=2, amp="bf16"))
    assert metrics["amp"] == "bfloat16"
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), "--split", "test", "--amp", "bf16", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["count"] == 180 and data["data"] == "digits"  # 10% of the 1,797 digits
    assert data["top1"] == metrics["test_top1"] and data["top5"] == metrics["test_top5"]
    missing = CliRunner().invoke(app, ["eval", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_non_finite_gradients_stop_the_run_before_the_weights(tmp_path, monkeypatch):
    scale_loss_after_epoch_1(monkeypatch, 1e38)  # a finite loss, overflowing gradients
    with pytest.raises(TrainingDiverged, match=r"gradients became non-finite at epoch 2, step 1"):
        fit(small(tmp_path / "run"))
    good = load_checkpoint(tmp_path / "run", "last")
    assert good.meta["epoch"] == 1 and all(torch.isfinite(t).all() for t in good.weights.values())


def test_sizes_a_network_cannot_train_on_are_refused_before_loading_data(tmp_path):
    with pytest.raises(ValueError, match=r"bn_inception cannot train on 3x80x80.*nearest sides that work: 70 and 95"):
        fit(TrainConfig(model="bn_inception", input_size=(3, 80, 80), progress=False, out=str(tmp_path / "a")))
    with pytest.raises(ValueError, match="at least 75x75"):
        fit(TrainConfig(model="inception_v3", input_size=(3, 64, 64), progress=False, out=str(tmp_path / "b")))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # the aux head trains at every size the trunk takes (it needed 299x299 before)
    loop_module.check_trainable(TrainConfig(model="inception_v3", input_size=(3, 75, 75), progress=False))


def test_a_run_from_weights_with_frozen_stages_changes_only_the_last_stages(tmp_path):
    fit(small(tmp_path / "first", epochs=1))
    start = weights(tmp_path / "first", "best")
    result = runner_train(tmp_path, ["--weights", str(tmp_path / "first"), "--train-stages", "1", "--out",
                                     str(tmp_path / "second")])
    assert result.exit_code == 0, result.output
    tuned = weights(tmp_path / "second")
    changed = {key.split(".")[0] for key in start if not torch.equal(start[key], tuned[key])}
    assert changed == {"inception5b", "fc"}  # the one stage that learns and the classifier, BN statistics too
    config = load_checkpoint(tmp_path / "second", "last", load_state=False).meta["config"]
    assert config["weights"] == str(tmp_path / "first") and config["train_stages"] == 1
    resumed = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "second"), "--train-stages", "2"])
    assert resumed.exit_code != 0 and "--train-stages 2 (the run uses 1)" in resumed.output


def test_caller_built_data_splits_train_without_a_data_name(tmp_path):
    from inceptionkit.data import load_digits_splits

    data = load_digits_splits((3, 16, 16), mean=[0.5], std=[0.25], augment=False)
    metrics = fit(small(tmp_path / "run", input_size=None), data=data)
    meta = load_checkpoint(tmp_path / "run", "best", load_state=False).meta
    assert meta["preprocessing"]["input_size"] == [3, 16, 16] and meta["preprocessing"]["mean"] == [0.5] * 3
    assert metrics["epochs"] == 3


def runner_train(tmp_path, extra):
    return CliRunner().invoke(app, ["train", "googlenet_cifar", "--width", "0.125", "--input", "3x16x16", "--epochs",
                                    "1", "--batch-size", "16", "--max-steps", "3", "--amp", "none", "--quiet",
                                    *extra])
