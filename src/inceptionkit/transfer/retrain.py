"""Retrain a network's classifier on a folder of one's own images (TensorFlow's retrain.py, for
every network): cached bottlenecks (or, with distortions, fresh ones each step), a new linear head
trained on them, optional fine-tuning of the last stages through the training loop, the network
saved with its new classes and preprocessing (and as ONNX), and a report of what was skipped and
how well it does on the test split.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.folder import ImageFiles
from ..data.splits import data_splits
from ..deploy.onnx import export_onnx
from ..errors import BadValue
from ..files import atomic_write_text, check_output
from ..train import TrainConfig, fit
from ..train.plots import plot_confusion
from ..weights.load import attach, export, load
from ..weights.preprocessing import preprocessing_of
from .bottlenecks import Bottlenecks, bottlenecks
from .distort import DistortedFeatures, Distortions
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
    extra: dict = field(default_factory=dict)  # head-only test accuracy, distortions, fine-tuning, ONNX

    def report(self) -> dict:
        return {
            **self.images.report(),
            "validation_accuracy": self.validation_accuracy, "test_accuracy": self.test_accuracy,
            "bottlenecks": {"computed": self.computed, "reused": self.reused},
            "history": self.history, "confusion": self.confusion, "misclassified": self.misclassified,
            **self.extra,
        }


FULL_BATCH = 8192  # cached bottlenecks up to this many train on all of them at each step
PATIENCE = 200  # steps without a lower validation loss after which training stops early


def train_head(train: Bottlenecks | DistortedFeatures, validation: Bottlenecks | None, num_classes: int, *,
               steps: int = 1000, lr: float = 0.01, batch_size: int = 100, eval_every: int = 10, seed: int = 0,
               progress: Callable[[int, int], None] | None = None) -> tuple[nn.Linear, list[dict]]:
    """A linear classifier on bottlenecks, trained with Adam; the weights with the best validation
    accuracy are kept (ties: the lower validation loss; the last ones without a validation split).

    Cached bottlenecks train on all of them at each step (on up to :data:`FULL_BATCH`; random batches of
    that many above it) and stop early once the validation loss has not improved for :data:`PATIENCE`
    steps; ``steps`` is the most. Distorted images' bottlenecks are computed anew for each batch of
    ``batch_size``. ``progress(step, steps)`` every few steps and at the end.
    """
    if steps < 1 or batch_size < 1:
        raise BadValue(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    cached = isinstance(train, Bottlenecks)
    batch = min(len(train), FULL_BATCH if cached else batch_size)
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(train.dim, num_classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.001, generator=generator)
        head.bias.zero_()
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    checked = validation is not None and len(validation.labels) > 0
    best, best_state, best_loss, history = (-1.0, float("inf")), None, float("inf"), []
    with _threads_for(train.dim * batch if cached else None):
        for step in range(1, steps + 1):
            index = (torch.arange(batch) if batch == len(train)
                     else torch.randint(len(train), (batch,), generator=generator))
            features, labels = train.batch(index)
            loss = F.cross_entropy(head(features), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            last = step == steps
            if checked and (step % eval_every == 0 or last):
                accuracy, val_loss = _accuracy_and_loss(head, validation)
                history.append({"step": step, "loss": loss.item(), "validation_accuracy": accuracy,
                                "validation_loss": val_loss})
                if (accuracy, -val_loss) > best:
                    best, best_state = (accuracy, -val_loss), {k: v.clone() for k, v in head.state_dict().items()}
                if val_loss < best_loss:
                    best_loss, best_step = val_loss, step
                last = last or (cached and step - best_step >= PATIENCE)
            if progress is not None and (step % 10 == 0 or last):
                progress(step if not last else steps, steps)
            if last:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    return head, history


@contextlib.contextmanager
def _threads_for(elements: int | None):
    """One thread while a step handles fewer than ~4M numbers: the operations are then too small for
    threads to pay off, and a busy core makes the others wait (a 60-image head trained 10x slower on 2
    threads than on one). The thread count is put back afterwards."""
    threads = torch.get_num_threads()
    if elements is None or elements >= 1 << 22 or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def _accuracy_and_loss(head: nn.Module, data: Bottlenecks) -> tuple[float, float]:
    logits = head(data.features)
    return (logits.argmax(1) == data.labels).float().mean().item(), F.cross_entropy(logits, data.labels).item()


@torch.no_grad()
def _accuracy(head: nn.Module, data: Bottlenecks) -> float:
    return _accuracy_and_loss(head, data)[0]


@dataclass(frozen=True)
class FineTune:
    """Fine-tuning after the new head: the last ``stages`` trunk stages with weights and the classifier
    train for ``epochs`` through :func:`inceptionkit.train.fit` (the ``fast`` recipe, one-cycle to ``lr``,
    ten times below training from scratch), the rest frozen, on the same split."""

    stages: int = 1
    epochs: int = 3
    lr: float = 0.01
    batch_size: int = 32
    device: str = "auto"


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
    distortions: Distortions | None = None,
    fine_tune: FineTune | None = None,
    onnx: bool = False,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> RetrainResult:
    """Give ``model`` (a network with weights) a new classifier for the classes of ``images`` (one
    subfolder per class), trained on cached bottlenecks (or, with ``distortions``, on distorted images'
    bottlenecks computed each step), then optionally ``fine_tune`` its last stages, kept when it does at least
    as well on the validation split as the new classifier alone (the report says which). With ``out``: writes
    ``model.safetensors`` (loads with :func:`inceptionkit.load`, predicts with ``inceptionkit predict``),
    ``report.json``, ``confusion.png`` (the test split's confusion matrix), ``model.onnx`` with ``onnx``
    (checked against PyTorch in ONNX Runtime) and, fine-tuning, the training run in ``fine-tune/``.
    ``progress(what, done, total)`` hears of each bottleneck split, the head's steps and fine-tuning."""
    distortions = distortions if distortions is not None and distortions.any else None
    if (fine_tune is not None or onnx) and out is None:
        raise BadValue("fine-tuning and ONNX export write files: give an output folder (out)")
    if out is not None:
        check_output(out, "folder")
    image_set = scan_images(images, validation_pct, test_pct)
    if not image_set.part("train"):
        raise BadValue(f"{images}: no image fell in the training split; lower --validation-pct / --test-pct")

    def report(what: str):
        return (lambda done, total: progress(what, done, total)) if progress else None

    counts = [0, 0]  # bottlenecks computed, read from the cache

    def features(net: nn.Module, splits: tuple[str, ...]) -> dict[str, Bottlenecks]:
        got = {split: bottlenecks(net, image_set.part(split), cache_dir, batch_size=32, progress=report(split))
               for split in splits}
        counts[0] += sum(b.computed for b in got.values())
        counts[1] += sum(b.reused for b in got.values())
        return got

    parts = features(model, ("validation", "test") if distortions else ("train", "validation", "test"))
    train = DistortedFeatures(model, image_set.part("train"), distortions, seed) if distortions else parts["train"]
    head, history = train_head(train, parts["validation"], len(image_set.classes), steps=steps, lr=lr,
                               batch_size=batch_size, seed=seed, progress=report("head"))
    preprocessing = preprocessing_of(model)
    model.reset_classifier(len(image_set.classes))
    model.fc.load_state_dict(head.state_dict())
    attach(model, preprocessing, image_set.classes, f"retrained on {image_set.root}")
    head_test = _accuracy(head, parts["test"]) if len(parts["test"]) else None
    extra: dict = {"head_test_accuracy": head_test, "distortions": asdict(distortions) if distortions else None}
    if fine_tune is not None:
        out = Path(out)
        export(model, out / "model.safetensors")  # the fine-tuning run starts from these weights
        tuned, extra["fine_tune"] = _fine_tune(model, image_set, out, fine_tune, distortions, seed, progress)
        tuned_parts = features(tuned, ("validation", "test"))  # the fine-tuned network's own bottlenecks
        head_val = _accuracy(head, parts["validation"])
        tuned_val = _accuracy(tuned.fc.eval(), tuned_parts["validation"])
        kept = tuned_val >= head_val  # fine-tuning stays only where validation says it helps
        extra["fine_tune"].update(kept=kept, head_validation_accuracy=head_val, validation_accuracy=tuned_val)
        if kept:
            model, parts = tuned, tuned_parts
    result = _evaluate(model, image_set, parts, history)
    result.computed, result.reused = counts
    result.extra = extra
    if out is not None:
        _write(result, Path(out), onnx)
    return result


def _fine_tune(model: nn.Module, image_set: ImageSet, out: Path, settings: FineTune,
               distortions: Distortions | None, seed: int, progress) -> tuple[nn.Module, dict]:
    """Train the last stages of the retrained network (saved in ``out/model.safetensors``) on the image
    set's own split; the best epoch's network by validation accuracy, and what the run measured."""
    prep = preprocessing_of(model)
    mode = "L" if prep.colour == "L" else "RGB"
    plain = prep.transform()
    train_tf = distortions.transform(prep, random.Random(seed)) if distortions else plain
    part = image_set.part
    data = data_splits(ImageFiles(part("train"), train_tf, mode), ImageFiles(part("validation"), plain, mode),
                       ImageFiles(part("test"), plain, mode), classes=image_set.classes, input_size=prep.input_size,
                       name=image_set.root, mean=prep.mean, std=prep.std)
    if not len(data.val):
        raise BadValue("fine-tuning keeps the epoch with the best validation accuracy: --validation-pct must "
                         "leave images for validation")
    run_dir = out / "fine-tune"
    config = TrainConfig(
        model=model.config.name, model_kwargs={k: v for k, v in model.init_kwargs.items() if k != "num_classes"},
        weights=str(out / "model.safetensors"), train_stages=settings.stages, data=image_set.root, recipe="fast",
        epochs=settings.epochs, batch_size=min(settings.batch_size, len(data.train)), lr=settings.lr, seed=seed,
        out=str(run_dir), device=settings.device, augment=distortions is not None, progress=progress is not None)

    def report(p) -> None:
        if p.row is None:
            progress(f"fine-tune {p.epoch}/{p.epochs}", p.step, p.steps)

    if run_dir.exists():  # a new fine-tuning run replaces the last one
        shutil.rmtree(run_dir)
    metrics = fit(config, report=report if progress else None, data=data)
    tuned = load(run_dir)
    learning = tuned.freeze(settings.stages)
    tuned.freeze(None)
    return tuned, {"stages": settings.stages, "learning": learning, "epochs": settings.epochs, "lr": settings.lr,
                   "best_epoch": metrics["best_epoch"], "run": str(run_dir)}


def _evaluate(model: nn.Module, image_set: ImageSet, parts: dict[str, Bottlenecks],
              history: list[dict]) -> RetrainResult:
    """Accuracy, confusion matrix and misclassified files of ``model``'s classifier on the validation
    and test bottlenecks."""
    head = model.fc.eval()
    result = RetrainResult(
        model, image_set,
        validation_accuracy=_accuracy(head, parts["validation"]) if len(parts["validation"]) else None,
        test_accuracy=_accuracy(head, parts["test"]) if len(parts["test"]) else None,
        computed=0, reused=0, history=history,
    )
    if len(parts["test"]):
        with torch.no_grad():
            predicted = head(parts["test"].features).argmax(1)
        n = len(image_set.classes)
        confusion = torch.zeros(n, n, dtype=torch.long)
        confusion.index_put_((parts["test"].labels, predicted), torch.ones_like(predicted), accumulate=True)
        result.confusion = confusion.tolist()
        result.misclassified = [
            {"file": path, "class": image_set.classes[label], "predicted": image_set.classes[int(guess)]}
            for (path, label), guess in zip(image_set.part("test"), predicted) if int(guess) != label
        ]
    return result


def _write(result: RetrainResult, out: Path, onnx: bool) -> None:
    export(result.model, out / "model.safetensors")
    if onnx:
        check = export_onnx(result.model, out / "model.onnx")
        result.extra["onnx"] = {"file": str(check.path), "max_rel_diff": check.max_rel_diff, "opset": check.opset}
    atomic_write_text(out / "report.json", json.dumps(result.report(), indent=2))
    if result.confusion:
        plot_confusion(result.confusion, result.images.classes, out / "confusion.png")
