"""Bottlenecks: each image's features before the classifier (``forward_head(pre_logits=True)``),
computed once and cached on disk, as TensorFlow's retrain.py does, so that training a new head
and every later run read them instead of running the network again.

The cache is a folder per network identity (architecture, constructor arguments, preprocessing
and every weight outside the classifiers, hashed) holding one ``<file content sha256>.npy`` per
image: a changed image is recomputed, another network or other weights never reuse a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.folder import open_image
from ..files import atomic_save, sha256_of
from ..probe import probing
from ..weights.preprocessing import network_identity, preprocessing_of


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/inceptionkit/bottlenecks`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "inceptionkit" / "bottlenecks"


@dataclass
class Bottlenecks:
    """Features (N x D) and labels of some images, and how many were computed or read from the cache."""

    features: torch.Tensor
    labels: torch.Tensor
    computed: int
    reused: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and labels of the rows in ``index`` (what training a head draws each step)."""
        return self.features[index], self.labels[index]


@torch.no_grad()
def bottlenecks(
    model: nn.Module,
    samples: Sequence[tuple[str, int]],
    cache_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Bottlenecks:
    """The pre-logits features of every (path, label) in ``samples``, from the cache where they are,
    computed in eval mode with the model's own preprocessing where not (and then cached)."""
    folder = Path(cache_dir or default_cache_dir()) / network_identity(model, classifiers=False)
    folder.mkdir(parents=True, exist_ok=True)
    prep = preprocessing_of(model)
    transform, mode = prep.transform(), ("L" if prep.colour == "L" else "RGB")
    keys = [folder / f"{sha256_of(path)}.npy" for path, _ in samples]
    found: dict[Path, np.ndarray] = {}
    todo = [(path, key) for (path, _), key in zip(samples, keys) if not key.exists()]
    with probing(model):
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            rows = pre_logits(model, torch.stack([transform(open_image(path, mode)) for path, _ in chunk])).numpy()
            for (_, key), row in zip(chunk, rows):
                atomic_save(key, lambda tmp, row=row: _save_npy(tmp, row))
                found[key] = row
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
    rows = [found[key] if key in found else np.load(key) for key in keys]
    features = torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, 0)
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    return Bottlenecks(features, labels, computed=len(todo), reused=len(samples) - len(todo))


@torch.no_grad()
def pre_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A batch's features before the classifier, computed on the model's device and dtype, as float32
    on the CPU (the model in the mode the caller set: eval for bottlenecks)."""
    param = next(model.parameters())
    return model.forward_head(model.forward_features(x.to(param.device, param.dtype)), pre_logits=True).float().cpu()


def _save_npy(path: str, row: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, row)
