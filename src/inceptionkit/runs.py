"""A run folder's format, in one place: its layout, its records, and the one reader and writer of
safetensors files with inceptionkit's metadata.

A run folder holds the epoch files and the records that commit them::

    RUN/config.json                          the run's settings (rewritten at every start)
    RUN/checkpoints/epoch-0005.safetensors   model weights (safetensors, meta embedded)
    RUN/checkpoints/epoch-0005.state.pt      optimizer, scheduler, grad scaler
    RUN/last.json                            record: names both files with their sha256
    RUN/best.json                            the same for the best epoch so far
    RUN/metrics.json                         a finished run's test figures

Every file goes to a temporary file in its own folder, is fsynced, then ``os.replace``d; the
record is replaced last, so a process killed before that rename leaves the previous record
pointing at a complete previous checkpoint. Epoch files no record names are deleted afterwards.
Every file gets the mode the user's umask gives (0666 minus the umask), weights included.
The state file is read with ``torch.load(weights_only=True)``: checkpoints are never unpickled
as code, so a train state may hold only tensors, containers, numbers, strings and None.
An exported network (``inceptionkit.export``) is one safetensors file with the same metadata key.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from inceptionkit.errors import BadValue, MissingFile
from inceptionkit.files import (  # absolute: tests load this file alone
    atomic_save,
    atomic_write_text,
    sha256_of,
)

FORMAT = "inceptionkit-checkpoint"
FORMAT_VERSION = 1
RECORDS = ("last", "best")
CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"  # a finished run's test figures
META_KEY = "inceptionkit"  # key of the JSON meta inside a safetensors header (and an ONNX file's metadata_props)

_EPOCH_FILE = re.compile(r"^epoch-\d+(-\d+)?\.(safetensors|state\.pt)$")
_PLAIN_TYPES = (str, bytes, int, float, complex, bool, type(None), torch.dtype, torch.device)


class CheckpointError(BadValue):
    """A checkpoint that cannot be written or read: names the file and what is wrong."""


# --- what may be saved --------------------------------------------------------------------------


def plain_weights(model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors that share no memory (safetensors refuses shared storage).

    Tied weights are stored once per name, so the state_dict loads back unchanged.
    """
    out, seen = {}, set()
    for key, value in model_state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"model_state[{key!r}] is a {type(value).__name__}, not a tensor")
        t = value.detach().to("cpu").contiguous()
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if t.numel() and (ptr in seen or storage.nbytes() != t.nbytes):
            t = t.clone()
            ptr = t.untyped_storage().data_ptr()
        if t.numel():
            seen.add(ptr)
        out[key] = t
    return out


def _check_plain(obj, where: str) -> None:
    """Raise if ``obj`` holds something ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(obj, torch.Tensor) or isinstance(obj, _PLAIN_TYPES):
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_plain(k, f"{where} key {k!r}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    hint = ""
    if type(obj).__module__.startswith("numpy"):
        hint = " (convert with torch.from_numpy or .item())"
    raise CheckpointError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; a train state may hold only "
        f"tensors, dicts, lists, tuples, numbers, strings and None{hint}"
    )


def _json_default(obj):
    if isinstance(obj, (torch.Tensor, np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _meta_json(meta: Mapping) -> str:
    try:
        return json.dumps(meta, default=_json_default, sort_keys=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint meta is not JSON serializable: {e}") from None


# --- safetensors with metadata ----------------------------------------------------------------


def write_safetensors(path, tensors: Mapping[str, torch.Tensor], meta: Mapping) -> Path:
    """Write ``tensors`` (made plain: CPU, contiguous, unshared) with ``meta`` as JSON under
    :data:`META_KEY` in the header, atomically."""
    path = Path(path)
    weights = plain_weights(tensors)
    metadata = {"format": "pt", META_KEY: _meta_json(meta)}
    atomic_save(path, lambda tmp: save_file(weights, tmp, metadata=metadata))
    return path


def read_safetensors(path, *, tensors: bool = True, error: type[Exception] = None,
                     map_location=None) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, meta)`` of a safetensors file: ``meta`` is the JSON under :data:`META_KEY` (else the
    header's own strings but ``format``); ``tensors=False`` reads the header only ({} tensors).

    A file that is not safetensors, or whose meta is not JSON, raises ``error`` (CheckpointError by
    default) naming the file; a missing file raises MissingFile.
    """
    path, error = Path(path), error or CheckpointError
    if not path.is_file():
        raise MissingFile(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            found = {key: f.get_tensor(key) for key in f.keys()} if tensors else {}
    except Exception as exc:  # safetensors raises its own error types for a malformed file
        raise error(f"{path} is not a readable safetensors file ({exc})") from None
    if META_KEY not in header:
        meta = {k: v for k, v in header.items() if k != "format"}
    else:
        try:
            meta = json.loads(header[META_KEY])
        except json.JSONDecodeError:
            raise error(f"{path}: its {META_KEY!r} header is not valid JSON") from None
    device = _device(map_location)
    if device is not None and device != "cpu":
        found = {k: v.to(device) for k, v in found.items()}
    return found, meta


# --- the run folder -----------------------------------------------------------------------------


def has_checkpoint(run_dir) -> bool:
    """Whether ``run_dir`` holds a committed checkpoint (a run to resume, not a fresh folder)."""
    return (Path(run_dir) / "last.json").is_file()


def is_run(path) -> bool:
    """Whether ``path`` names a run folder or one of its records (rather than a weights file)."""
    path = Path(path)
    return path.is_dir() or path.suffix == ".json"


def run_dir_of(path) -> Path:
    """The run folder of ``path`` (the folder itself, or the folder of a record .json)."""
    path = Path(path)
    return path.parent if path.is_file() else path


def free_run_dir(base) -> Path:
    """``base``, or ``base-2``, ``base-3`` ... : the first that holds no run yet."""
    base = path = Path(base)
    n = 1
    while has_checkpoint(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def write_config(run_dir, config: Mapping) -> None:
    """Write the run's settings to ``RUN/config.json`` (atomically; rewritten at every start)."""
    atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(config, indent=2, default=_json_default))


def read_config(run_dir) -> dict | None:
    """The run's settings as last written (``RUN/config.json``), or None when it is missing or unreadable."""
    return _json_object(Path(run_dir) / CONFIG_FILE)


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(run_dir) -> dict | None:
    """A finished run's figures (``RUN/metrics.json``), or None while the run has not finished."""
    return _json_object(Path(run_dir) / METRICS_FILE)


def write_metrics(run_dir, metrics: Mapping) -> None:
    """Write a finished run's figures to ``RUN/metrics.json`` (atomically)."""
    atomic_write_text(Path(run_dir) / METRICS_FILE, json.dumps(metrics, indent=2, default=_json_default))


# --- records ------------------------------------------------------------------------------------


def _read_record(record: Path) -> dict:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{record}: no such checkpoint record") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{record}: unreadable checkpoint record ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{record}: not an inceptionkit checkpoint record")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{record}: checkpoint format version {version!r} is newer than this inceptionkit reads "
            f"(up to {FORMAT_VERSION}); upgrade inceptionkit to load it"
        )
    for part in ("weights", "state"):
        entry = data.get(part)
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "sha256" not in entry:
            raise CheckpointError(f"{record}: record lacks the {part} file entry")
    return data


def _referenced(run: Path) -> set[Path] | None:
    """Epoch files named by the run's records; None when a record cannot be read (then keep everything).

    Records of a newer format version count too, so an older inceptionkit never deletes their files.
    """
    names = set()
    for tag in RECORDS:
        record = run / f"{tag}.json"
        if not record.exists():
            continue
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            files = [data[part]["file"] for part in ("weights", "state")]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        names.update((run / f).resolve() for f in files if isinstance(f, str))
    return names


def _free_stem(run: Path, epoch: int) -> str:
    """``epoch-0005``, or ``epoch-0005-2`` ... when a record still names that epoch's files."""
    referenced = _referenced(run)
    folder = run / CHECKPOINT_DIR

    def taken(path: Path) -> bool:
        return path.exists() if referenced is None else path.resolve() in referenced

    stem, n = f"epoch-{epoch:04d}", 1
    while any(taken(folder / f"{stem}{ext}") for ext in (".safetensors", ".state.pt")):
        n += 1
        stem = f"epoch-{epoch:04d}-{n}"
    return stem


def _collect_garbage(run: Path) -> None:
    """Delete epoch files no record names, and temp files a killed save left behind (ours, and
    safetensors' ``.tmpXXXXXX``)."""
    referenced = _referenced(run)
    for p in (run / CHECKPOINT_DIR).iterdir():
        unreferenced = referenced is not None and _EPOCH_FILE.match(p.name) and p.resolve() not in referenced
        if (p.name.startswith(".tmp") or unreferenced) and p.is_file():
            try:
                p.unlink()
            except OSError:
                pass


def save_checkpoint(run_dir, model_state: dict[str, torch.Tensor], train_state: dict, meta: dict, *,
                    best: bool = False) -> Path:
    """Save one epoch into ``run_dir`` and commit it as ``last.json`` (and ``best.json``); return last.json.

    ``meta`` must hold ``epoch`` (an int) and otherwise anything JSON can hold (metrics, model
    name and kwargs, recipe). ``train_state`` must load with ``torch.load(weights_only=True)``.
    """
    run = Path(run_dir)
    epoch = meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"checkpoint meta needs 'epoch' as a non-negative int, got {epoch!r}")
    meta_json = _meta_json(meta)
    _check_plain(train_state, "train_state")

    folder = run / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(run, epoch)
    weights_path = folder / f"{stem}.safetensors"
    state_path = folder / f"{stem}.state.pt"
    write_safetensors(weights_path, model_state, meta)
    atomic_save(state_path, lambda tmp: torch.save(train_state, tmp))

    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "epoch": epoch,
        "weights": {"file": f"{CHECKPOINT_DIR}/{weights_path.name}", "sha256": sha256_of(weights_path),
                    "bytes": weights_path.stat().st_size},
        "state": {"file": f"{CHECKPOINT_DIR}/{state_path.name}", "sha256": sha256_of(state_path),
                  "bytes": state_path.stat().st_size},
        "meta": json.loads(meta_json),
    }
    text = json.dumps(record, indent=2) + "\n"
    # The record is the commit: until its rename, the previous record still names complete files.
    # best.json goes first, so once last.json names an epoch, everything that epoch implies is committed.
    if best:
        atomic_write_text(run / "best.json", text)
    last = run / "last.json"
    atomic_write_text(last, text)
    _collect_garbage(run)
    return last


# --- loading ------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    weights: dict[str, torch.Tensor]
    state: dict  # the train_state as saved ({} for a plain weights file or load_state=False)
    meta: dict  # the JSON meta (epoch, metrics, model, ...)
    record: Path  # the record .json read, or the .safetensors file itself for plain weights


def _device(map_location) -> str | None:
    if isinstance(map_location, (str, torch.device)):
        return str(map_location)
    return None


def _verified(run: Path, entry: dict, record: Path) -> Path:
    path = run / entry["file"]
    if not path.is_file():
        raise CheckpointError(f"{path}: file named by {record.name} is missing")
    digest = sha256_of(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"{path}: sha256 mismatch (record {record.name} expects {entry['sha256']}, file has {digest}); "
            "the file is corrupt or was changed after saving"
        )
    return path


def _record_path(path: Path, tag: str) -> Path:
    if path.is_dir():
        record = path / f"{tag}.json"
        if not record.is_file():
            found = sorted(p.stem for p in path.glob("*.json") if p.stem in RECORDS)
            have = f"records here: {', '.join(found)}" if found else "no checkpoint saved here yet"
            raise CheckpointError(f"{path}: no {tag}.json ({have})")
        return record
    return path


def _record_of(path, tag: str) -> Path:
    """The file that describes a checkpoint: a run folder's ``{tag}.json``, a record .json, or a .safetensors."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run folder or checkpoint file")
    if path.is_file() and path.suffix == ".safetensors":
        return path
    record = _record_path(path, tag)
    if record.suffix != ".json":
        raise CheckpointError(f"{record}: expected a run folder, a record .json or a .safetensors file")
    return record


def read_meta(path, tag: str = "best") -> tuple[dict, Path]:
    """``(meta, file)`` of a checkpoint (as :func:`load_checkpoint` takes it) without reading its tensors."""
    record = _record_of(path, tag)
    if record.suffix == ".json":
        return _read_record(record).get("meta", {}), record
    return read_safetensors(record, tensors=False)[1], record


def load_checkpoint(path, tag: str = "last", map_location="cpu", load_state: bool = True) -> Checkpoint:
    """Load a checkpoint from a run folder (its ``{tag}.json``), a record .json, or a plain .safetensors.

    Files named by a record are checked against their sha256. ``map_location`` is passed to
    ``torch.load`` for the state; weights move to it when it names a device.
    """
    record = _record_of(path, tag)
    if record.suffix == ".safetensors":
        weights, meta = read_safetensors(record, map_location=map_location)
        return Checkpoint(weights=weights, state={}, meta=meta, record=record)
    data = _read_record(record)
    run = record.parent
    needed = [("weights", data["weights"])] + ([("state", data["state"])] if load_state else [])
    missing = [str(run / e["file"]) for _, e in needed if not (run / e["file"]).is_file()]
    if missing:
        raise CheckpointError(f"{record}: names files that are missing: {', '.join(missing)}")

    weights, _ = read_safetensors(_verified(run, data["weights"], record), map_location=map_location)
    state = {}
    if load_state:
        state_path = _verified(run, data["state"], record)
        try:
            state = torch.load(state_path, map_location=map_location, weights_only=True)
        except Exception as e:  # an unpickling error means the file holds more than plain data
            raise CheckpointError(f"{state_path}: cannot load train state with weights_only=True ({e})") from None
    return Checkpoint(weights=weights, state=state, meta=data.get("meta", {}), record=record)

