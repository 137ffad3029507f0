"""Retrain a network's classifier on a folder of one's own images (TensorFlow's retrain.py, for
every network): cached bottlenecks, a new linear head trained on them, the network saved with its
new classes and preprocessing, and a report of what was skipped and how well it does on the test split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..files import atomic_write_text
from ..weights.load import attach, export, preprocessing_of
from .bottlenecks import Bottlenecks, bottlenecks
from .images import ImageSet, scan_images


@dataclass
class RetrainResult:
    """The retrained network and what the run measured."""

    model: nn.Module
    images: ImageSet
    validation_accuracy: float | None
    test_accuracy: float | None
    computed: int  # bottlenecks computed by this run (the rest came from the cache)
    reused: int
    history: list[dict] = field(default_factory=list)  # validation accuracy every ``eval_every`` steps
    confusion: list[list[int]] = field(default_factory=list)  # test split: rows true class, columns predicted
    misclassified: list[dict] = field(default_factory=list)  # test files the network gets wrong

    def report(self) -> dict:
        return {
            **self.images.report(),
            "validation_accuracy": self.validation_accuracy, "test_accuracy": self.test_accuracy,
            "bottlenecks": {"computed": self.computed, "reused": self.reused},
            "history": self.history, "confusion": self.confusion, "misclassified": self.misclassified,
        }


def train_head(train: Bottlenecks, validation: Bottlenecks | None, num_classes: int, *, steps: int = 1000,
               lr: float = 0.01, batch_size: int = 100, eval_every: int = 100, seed: int = 0
               ) -> tuple[nn.Linear, list[dict]]:
    """A linear classifier on bottlenecks: Adam on random batches, keeping the weights with the best
    validation accuracy (the last ones without a validation split)."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(train.features.shape[1], num_classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.001, generator=generator)
        head.bias.zero_()
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    best, best_state, history = -1.0, None, []
    for step in range(1, steps + 1):
        index = torch.randint(len(train.labels), (min(batch_size, len(train.labels)),), generator=generator)
        loss = F.cross_entropy(head(train.features[index]), train.labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if validation is not None and len(validation.labels) and (step % eval_every == 0 or step == steps):
            accuracy = _accuracy(head, validation)
            history.append({"step": step, "loss": loss.item(), "validation_accuracy": accuracy})
            if accuracy > best:
                best, best_state = accuracy, {k: v.clone() for k, v in head.state_dict().items()}
    if best_state is not None:
        head.load_state_dict(best_state)
    return head, history


@torch.no_grad()
def _accuracy(head: nn.Linear, data: Bottlenecks) -> float:
    return (head(data.features).argmax(1) == data.labels).float().mean().item()


def retrain(
    model: nn.Module,
    images: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    validation_pct: float = 10.0,
    test_pct: float = 10.0,
    steps: int = 1000,
    lr: float = 0.01,
    batch_size: int = 100,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> RetrainResult:
    """Give ``model`` (a network with weights) a new classifier for the classes of ``images`` (one
    subfolder per class), trained on cached bottlenecks. With ``out``: writes ``model.safetensors``
    (loads with :func:`inceptionkit.load`, predicts with ``inceptionkit predict``), ``report.json``
    and ``confusion.png`` (the test split's confusion matrix)."""
    image_set = scan_images(images, validation_pct, test_pct)
    parts = {}
    for split in ("train", "validation", "test"):
        report = (lambda done, total, s=split: progress(s, done, total)) if progress else None
        parts[split] = bottlenecks(model, image_set.part(split), cache_dir, batch_size=32, progress=report)
    if not len(parts["train"].labels):
        raise ValueError(f"{images}: no image fell in the training split; lower --validation-pct / --test-pct")
    head, history = train_head(parts["train"], parts["validation"], len(image_set.classes), steps=steps, lr=lr,
                               batch_size=batch_size, seed=seed)
    preprocessing = preprocessing_of(model)
    model.reset_classifier(len(image_set.classes))
    model.fc.load_state_dict(head.state_dict())
    attach(model, preprocessing, image_set.classes, f"retrained on {image_set.root}")
    result = RetrainResult(
        model, image_set,
        validation_accuracy=_accuracy(head, parts["validation"]) if len(parts["validation"].labels) else None,
        test_accuracy=_accuracy(head, parts["test"]) if len(parts["test"].labels) else None,
        computed=sum(p.computed for p in parts.values()), reused=sum(p.reused for p in parts.values()),
        history=history,
    )
    if len(parts["test"].labels):
        with torch.no_grad():
            predicted = head(parts["test"].features).argmax(1)
        n = len(image_set.classes)
        confusion = torch.zeros(n, n, dtype=torch.long)
        confusion.index_put_((parts["test"].labels, predicted), torch.ones_like(predicted), accumulate=True)
        result.confusion = confusion.tolist()
        test_files = image_set.part("test")
        result.misclassified = [
            {"file": path, "class": image_set.classes[label], "predicted": image_set.classes[int(guess)]}
            for (path, label), guess in zip(test_files, predicted) if int(guess) != label
        ]
    if out is not None:
        out = Path(out)
        export(model, out / "model.safetensors")
        atomic_write_text(out / "report.json", json.dumps(result.report(), indent=2))
        if result.confusion:
            from ..train.plots import plot_confusion

            plot_confusion(result.confusion, image_set.classes, out / "confusion.png")
    return result
