"""Top-1, top-5, loss and the confusion matrix of a model over a data loader (sharded under torchrun)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import BadValue
from . import distributed
from .precision import autocast
from .recipes import logits_of


def confusion_matrix(targets, predictions, num_classes) -> torch.Tensor:
    """Counts of (true, predicted) pairs: int64, rows = true class, columns = predicted class.

    ``predictions`` are class indices, or scores with one more dimension than ``targets``
    (argmaxed over their last dimension).
    """
    targets = torch.as_tensor(targets).detach().cpu()
    predictions = torch.as_tensor(predictions).detach().cpu()
    if predictions.ndim == targets.ndim + 1:
        predictions = predictions.argmax(dim=-1)
    targets, predictions = targets.reshape(-1).long(), predictions.reshape(-1).long()
    if targets.numel() != predictions.numel():
        raise BadValue(f"{targets.numel()} targets but {predictions.numel()} predictions")
    for name, labels in (("targets", targets), ("predictions", predictions)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise BadValue(
                f"{name} hold labels from {labels.min().item()} to {labels.max().item()}, "
                f"outside 0..{num_classes - 1} for {num_classes} classes"
            )
    counts = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).to(torch.int64)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, *, amp: torch.dtype | None = None,
             channels_last: bool = False, num_classes: int | None = None,
             info: distributed.DistInfo | None = None) -> dict:
    """Loss, top-1 and top-5 (fractions) and the confusion matrix of ``model`` over ``loader``.

    Under torchrun (``info`` distributed) each process passes its own shard and gets the totals of all.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, top-1 hits, top-5 hits: read once, at the end
    targets, predictions = [], []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = logits_of(model(x)).float()
        best = logits.topk(min(5, logits.shape[1]), dim=1).indices
        sums += torch.stack([nn.functional.cross_entropy(logits, y, reduction="sum").double(),
                             (best[:, 0] == y).sum().double(), (best == y[:, None]).any(dim=1).sum().double()])
        targets.append(y)
        predictions.append(best[:, 0])
    model.train(was_training)
    targets = torch.cat(targets).cpu() if targets else torch.zeros(0, dtype=torch.long)
    predictions = torch.cat(predictions).cpu() if predictions else torch.zeros(0, dtype=torch.long)
    count = targets.numel()
    classes = num_classes or int(max(targets.max(), predictions.max()) + 1)
    confusion = confusion_matrix(targets, predictions, classes)
    loss_sum, top1, top5 = sums.cpu().tolist()
    if info is not None and info.distributed:
        totals = distributed.reduce_sum(torch.tensor([loss_sum, top1, top5, count], dtype=torch.float64), info)
        loss_sum, top1, top5, count = totals.tolist()
        confusion = distributed.reduce_sum(confusion, info)
    if count == 0:
        raise BadValue("the evaluation split is empty")
    return dict(loss=loss_sum / count, top1=top1 / count, top5=top5 / count, count=int(count), confusion=confusion)
