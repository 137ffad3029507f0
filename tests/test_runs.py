"""Checkpoints: exact round trips, records that commit, kills that lose nothing, and clear errors."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from inceptionkit.files import atomic_save, atomic_write_text
from inceptionkit.runs import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint

# The child loads runs.py by its file path, so it runs without the rest of the package.
MODULE = str(Path(__file__).resolve().parents[1] / "src" / "inceptionkit" / "runs.py")


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def train_steps(model, opt, sched, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(8, 3, 6, 6, generator=g), torch.randint(0, 5, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()


def assert_same(a, b, where="state"):
    """Deep equality of nested containers with tensors (bitwise for tensors)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def save_epoch(run, epoch, value, best=False):
    """A tiny checkpoint whose weights are all ``value``."""
    weights = {"w": torch.full((3, 2), float(value)), "b": torch.arange(4)}
    meta = {"epoch": epoch, "metrics": {"val_top1": value}, "model": {"name": "toy", "kwargs": {}}}
    return save_checkpoint(run, weights, {"epoch": epoch, "step": 10 * epoch}, meta, best=best)


def epoch_files(run):
    return sorted(p.name for p in (run / "checkpoints").iterdir())


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_round_trip_resumes_bit_exactly(tmp_path, opt_name):
    model = small_model()
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True) if opt_name == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-2))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    train_steps(model, opt, sched, 3)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
             "epoch": 1, "step": 3}
    meta = {"epoch": 1, "metrics": {"val_top1": 0.5, "val_loss": float("nan")}, "recipe": "fast",
            "model": {"name": "toy", "kwargs": {"num_classes": 5}}}
    record = save_checkpoint(tmp_path, model.state_dict(), state, meta)
    assert record == tmp_path / "last.json" and not (tmp_path / "best.json").exists()

    ckpt = load_checkpoint(tmp_path)
    assert_same(model.state_dict(), ckpt.weights, "weights")
    assert_same(state, ckpt.state)
    assert ckpt.meta["epoch"] == 1 and ckpt.meta["recipe"] == "fast" and ckpt.meta["model"]["kwargs"] == {
        "num_classes": 5}
    assert ckpt.record == record
    # The state file itself is plain data: torch's weights-only loader takes it.
    state_file = tmp_path / json.loads(record.read_text())["state"]["file"]
    torch.load(state_file, weights_only=True)

    # Resuming from the checkpoint continues exactly as the uninterrupted run.
    fresh = small_model(seed=99)
    fresh.load_state_dict(ckpt.weights)
    fresh_opt = type(opt)(fresh.parameters(), lr=123.0)
    fresh_sched = torch.optim.lr_scheduler.OneCycleLR(fresh_opt, max_lr=0.1, total_steps=10)
    fresh_opt.load_state_dict(ckpt.state["optimizer"])  # after building the scheduler, which resets the lr
    fresh_sched.load_state_dict(ckpt.state["scheduler"])
    train_steps(model, opt, sched, 2, seed=5)
    train_steps(fresh, fresh_opt, fresh_sched, 2, seed=5)
    assert_same(model.state_dict(), fresh.state_dict(), "resumed weights")


def test_best_record_stays_on_best_epoch_and_garbage_is_collected(tmp_path):
    save_epoch(tmp_path, 1, 0.1, best=True)
    save_epoch(tmp_path, 2, 0.9, best=True)
    save_epoch(tmp_path, 3, 0.5)
    save_epoch(tmp_path, 4, 0.4)
    assert load_checkpoint(tmp_path, "best").meta["epoch"] == 2
    assert load_checkpoint(tmp_path).meta["epoch"] == 4
    assert torch.equal(load_checkpoint(tmp_path, "best").weights["w"], torch.full((3, 2), 0.9))
    # Epoch 2 survives because best.json names it; 1 and 3 are named by no record any more.
    assert epoch_files(tmp_path) == ["epoch-0002.safetensors", "epoch-0002.state.pt",
                                     "epoch-0004.safetensors", "epoch-0004.state.pt"]
    save_epoch(tmp_path, 5, 0.95, best=True)
    assert epoch_files(tmp_path) == ["epoch-0005.safetensors", "epoch-0005.state.pt"]


def test_resaving_an_epoch_that_a_record_names_keeps_that_record_valid(tmp_path):
    save_epoch(tmp_path, 2, 0.9, best=True)
    save_epoch(tmp_path, 2, 0.3)  # a resumed run saves epoch 2 again, not best this time
    assert load_checkpoint(tmp_path, "best").weights["w"][0, 0].item() == pytest.approx(0.9)
    assert load_checkpoint(tmp_path).weights["w"][0, 0].item() == pytest.approx(0.3)


def test_garbage_collection_keeps_what_records_it_cannot_read_name(tmp_path):
    save_epoch(tmp_path, 1, 1.0, best=True)
    best = tmp_path / "best.json"
    entry = json.loads(best.read_text())
    entry["format_version"] = FORMAT_VERSION + 1  # as if a newer inceptionkit had written it
    best.write_text(json.dumps(entry))
    save_epoch(tmp_path, 2, 2.0)
    assert "epoch-0001.safetensors" in epoch_files(tmp_path)
    best.write_text("{damaged")
    save_epoch(tmp_path, 3, 3.0)  # with a record unreadable, nothing is deleted
    assert [f for f in epoch_files(tmp_path) if f.endswith(".safetensors")] == [
        "epoch-0001.safetensors", "epoch-0002.safetensors", "epoch-0003.safetensors"]
    assert load_checkpoint(tmp_path).meta["epoch"] == 3


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (BaseException, so no `except Exception` catches it)."""


@pytest.mark.parametrize("victim", ["last.json", ".safetensors", ".state.pt"])
def test_kill_before_a_rename_leaves_previous_checkpoint(tmp_path, monkeypatch, victim):
    save_epoch(tmp_path, 1, 1.0, best=True)
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(victim):
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        save_epoch(tmp_path, 2, 2.0, best=True)
    monkeypatch.setattr(os, "replace", real_replace)

    ckpt = load_checkpoint(tmp_path)
    assert ckpt.meta["epoch"] == 1 and ckpt.state == {"epoch": 1, "step": 10}
    assert torch.equal(ckpt.weights["w"], torch.full((3, 2), 1.0))
    # best.json is committed before last.json, so a kill between them leaves it on a complete epoch 2.
    best = load_checkpoint(tmp_path, "best")
    assert best.meta["epoch"] == (2 if victim == "last.json" else 1)
    assert torch.equal(best.weights["w"], torch.full((3, 2), float(best.meta["epoch"])))
    save_epoch(tmp_path, 2, 2.0)  # the run resumes and commits epoch 2 over the leftovers
    assert load_checkpoint(tmp_path).meta["epoch"] == 2


def test_killed_child_process_leaves_previous_checkpoint(tmp_path):
    child = textwrap.dedent(f"""
        import importlib.util, os, sys, torch
        spec = importlib.util.spec_from_file_location("checkpoint", {MODULE!r})
        checkpoint = sys.modules["checkpoint"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(checkpoint)
        save_checkpoint = checkpoint.save_checkpoint
        run = sys.argv[1]
        def save(epoch):
            weights = {{"w": torch.full((64, 64), float(epoch))}}
            save_checkpoint(run, weights, {{"epoch": epoch}}, {{"epoch": epoch}}, best=True)
        save(1)
        real_replace = os.replace
        def replace(src, dst):
            if str(dst).endswith("last.json"):
                os._exit(17)  # killed: no cleanup, no finally, temp files stay
            real_replace(src, dst)
        os.replace = replace
        save(2)
        os._exit(0)
    """)
    result = subprocess.run([sys.executable, "-c", child, str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert result.returncode == 17, result.stderr  # died at the record's rename, not of an error
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.meta["epoch"] == 1 and torch.equal(ckpt.weights["w"], torch.full((64, 64), 1.0))
    assert any(p.name.startswith(".tmp-last.json") for p in tmp_path.iterdir())  # the kill left its temp file
    assert load_checkpoint(tmp_path, "best").meta["epoch"] == 2  # best.json was committed before the kill
    save_epoch(tmp_path, 3, 3.0)
    assert load_checkpoint(tmp_path).meta["epoch"] == 3


def test_corrupt_weights_fail_the_sha256_check(tmp_path):
    record = save_epoch(tmp_path, 1, 1.0)
    weights = tmp_path / json.loads(record.read_text())["weights"]["file"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # a flipped bit inside the tensor data: safetensors alone would not notice
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256") as err:
        load_checkpoint(tmp_path)
    assert weights.name in str(err.value)


def test_missing_files_and_newer_format_are_named(tmp_path):
    record = save_epoch(tmp_path, 1, 1.0)
    entry = json.loads(record.read_text())
    (tmp_path / entry["state"]["file"]).unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        load_checkpoint(tmp_path)
    assert "epoch-0001.state.pt" in str(err.value)
    assert load_checkpoint(tmp_path, load_state=False).state == {}  # the weights alone still load

    entry["format_version"] = FORMAT_VERSION + 1
    atomic_write_text(record, json.dumps(entry))
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(record)
    with pytest.raises(CheckpointError, match=r"no best\.json \(records here: last\)"):
        load_checkpoint(tmp_path, "best")
    with pytest.raises(CheckpointError, match="no checkpoint saved"):
        load_checkpoint(tmp_path / "checkpoints")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "broken.json")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_unloadable_train_state_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CheckpointError, match=r"train_state\['rng'\]\[1\] is a numpy.ndarray"):
        save_checkpoint(tmp_path, {"w": torch.ones(1)}, {"rng": ("MT19937", np.zeros(3))}, {"epoch": 1})
    with pytest.raises(CheckpointError, match="epoch"):
        save_checkpoint(tmp_path, {"w": torch.ones(1)}, {}, {"metrics": {}})
    assert not (tmp_path / "last.json").exists()


def test_tied_and_strided_tensors_save(tmp_path):
    emb = nn.Embedding(5, 4)
    head = nn.Linear(4, 5, bias=False)
    head.weight = emb.weight  # tied
    model = nn.ModuleDict({"emb": emb, "head": head})
    state = dict(model.state_dict())
    state["view"] = emb.weight[1:3]  # a view into a larger storage
    state["transposed"] = emb.weight.t()  # not contiguous
    save_checkpoint(tmp_path, state, {}, {"epoch": 0})
    ckpt = load_checkpoint(tmp_path)
    assert_same({k: v.contiguous() for k, v in state.items()}, ckpt.weights, "weights")
    fresh = nn.ModuleDict({"emb": nn.Embedding(5, 4), "head": nn.Linear(4, 5, bias=False)})
    fresh.load_state_dict({k: ckpt.weights[k] for k in model.state_dict()})
    assert torch.equal(fresh["head"].weight, emb.weight)


def test_plain_safetensors(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.arange(6.0).reshape(2, 3)}, plain)
    ckpt = load_checkpoint(plain)
    assert torch.equal(ckpt.weights["a"], torch.arange(6.0).reshape(2, 3))
    assert ckpt.state == {} and ckpt.meta == {} and ckpt.record == plain


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_file_of_a_checkpoint_follows_the_umask(tmp_path, umask):
    """Weights, state, records and other safe writes get 0o666 minus the umask, as files a plain open() writes."""
    old = os.umask(umask)
    try:
        save_epoch(tmp_path / "run", 1, 0.5, best=True)
        atomic_save(tmp_path / "run" / "export.safetensors", lambda tmp: save_file({"w": torch.ones(2)}, tmp))
        atomic_write_text(tmp_path / "run" / "notes.txt", "text")
        open(tmp_path / "run" / "plain.txt", "w").close()  # what the umask alone gives
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) == 7
    modes = {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
