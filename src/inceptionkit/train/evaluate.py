"""Top-1, top-5, loss and the confusion matrix of a model over a data loader (sharded under torchrun)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from . import distributed
from .plots import confusion_matrix
from .precision import autocast
from .recipes import logits_of


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, amp: torch.dtype | None = None,
             channels_last: bool = False, num_classes: int | None = None,
             info: distributed.DistInfo | None = None) -> dict:
    """Loss, top-1 and top-5 (fractions) and the confusion matrix of ``model`` over ``loader``.

    Under torchrun (``info`` distributed) each process passes its own shard and gets the totals of all.
    """
    was_training = model.training
    model.eval()
    loss_sum, top1, top5, count = 0.0, 0, 0, 0
    targets, predictions = [], []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = logits_of(model(x)).float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        k = min(5, logits.shape[1])
        best = logits.topk(k, dim=1).indices
        top1 += (best[:, 0] == y).sum().item()
        top5 += (best == y[:, None]).any(dim=1).sum().item()
        count += y.numel()
        targets.append(y.cpu())
        predictions.append(best[:, 0].cpu())
    model.train(was_training)
    targets = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long)
    predictions = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)
    classes = num_classes or int(max(targets.max(), predictions.max()) + 1)
    confusion = confusion_matrix(targets, predictions, classes)
    if info is not None and info.distributed:
        sums = distributed.reduce_sum(torch.tensor([loss_sum, top1, top5, count], dtype=torch.float64), info)
        loss_sum, top1, top5, count = sums.tolist()
        confusion = distributed.reduce_sum(confusion, info)
    if count == 0:
        raise ValueError("the evaluation split is empty")
    return dict(loss=loss_sum / count, top1=top1 / count, top5=top5 / count, count=int(count), confusion=confusion)
