"""The run's history: one row per epoch, saved as ``history.csv`` and ``history.json``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import BadValue
from ..files import atomic_write_text


def _plain(value):
    """Python numbers for 0-d tensors and numpy scalars, so rows write as CSV and JSON."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.item() if value.ndim == 0 else value.tolist()
    return value


def _json_path(run_dir) -> Path:
    path = Path(run_dir)
    return path if path.suffix == ".json" else path / "history.json"


class History:
    """Rows of per-epoch numbers (epoch, train_loss, train_top1, val_loss, val_top1, lr, ...)."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows: list[dict] = []
        for row in rows or []:
            self.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: dict) -> None:
        """Add one epoch's row. A row for an epoch already present replaces it and every later row."""
        if "epoch" not in row:
            raise BadValue(f"a history row needs an 'epoch', got keys {sorted(row)}")
        row = {k: _plain(v) for k, v in row.items()}
        self.truncate(row["epoch"] - 1)
        self.rows.append(row)

    def columns(self) -> list[str]:
        """The union of the rows' keys, in first-seen order."""
        return list(dict.fromkeys(k for row in self.rows for k in row))

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns(), restval="", lineterminator="\n")
        writer.writeheader()
        # csv writes floats with repr(), which round-trips exactly.
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in self.rows)
        return out.getvalue()

    def to_json(self) -> str:
        return json.dumps(self.rows, indent=1) + "\n"

    def save(self, run_dir) -> None:
        """Write ``run_dir/history.csv`` and ``run_dir/history.json``, each atomically."""
        run = Path(run_dir)
        atomic_write_text(run / "history.csv", self.to_csv())
        atomic_write_text(run / "history.json", self.to_json())

    @classmethod
    def load(cls, run_dir) -> History:
        """Read ``run_dir/history.json`` (or a given .json path); a missing file gives an empty history."""
        path = _json_path(run_dir)
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadValue(f"{path}: unreadable history ({e})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "epoch" in r for r in rows):
            raise BadValue(f"{path}: a history is a JSON list of rows, each with an 'epoch'")
        return cls(rows)

    def truncate(self, epochs: int) -> None:
        """Keep the rows of epochs ``<= epochs`` (to resume after an interrupted run)."""
        self.rows = [row for row in self.rows if row["epoch"] <= epochs]

