"""The training loop: one function, ``fit(TrainConfig)``, read top to bottom.

Each epoch: seed from (seed, epoch) so a resumed run replays exactly what an uninterrupted one
does; train with autocast (bf16 where the hardware has it) and channels_last; stop on a NaN/inf
loss before it reaches the weights; evaluate top-1/top-5 on the validation split; write the
history, plots and an atomic checkpoint (``last``, and ``best`` by validation top-1). At the end
the best weights are evaluated on the test split and ``metrics.json`` is written. Under torchrun
the same loop runs DistributedDataParallel and only rank 0 prints or writes.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..data import DataSplits, load_data
from ..models import create_model, model_config
from . import distributed
from .checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from .evaluate import evaluate
from .history import History
from .plots import plot_confusion, plot_curves
from .precision import autocast, resolve_amp
from .recipes import Recipe, build_optimizer, build_scheduler, compute_loss, get_recipe, logits_of


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    model: str = "googlenet_cifar"
    model_kwargs: dict = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None  # (C, H, W) images are resized to; None: the model's
    data: str | None = None  # None: the embedded digits
    recipe: str = "fast"
    epochs: int | None = None  # None: the recipe's
    batch_size: int | None = None  # global batch (split over torchrun processes); None: the recipe's
    lr: float | None = None
    amp: str = "auto"  # auto, bf16, fp16 or none
    channels_last: bool = True
    seed: int = 0
    out: str | None = None  # run folder; None: runs/<model>-<data>
    device: str = "auto"
    workers: int = 0
    augment: bool = True
    max_steps: int | None = None  # cap on optimizer steps per epoch (smoke runs, tests)
    progress: bool = True
    download: bool = False


# --- pieces ----------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def build_model(config: TrainConfig, data: DataSplits) -> nn.Module:
    kwargs = dict(config.model_kwargs)
    kwargs.setdefault("num_classes", data.num_classes)
    kwargs.setdefault("in_chans", data.input_size[0])
    return create_model(config.model, **kwargs)


def check_trainable(config: TrainConfig, num_classes: int) -> None:
    """Build the network on the meta device and run one train-mode step's forward at the data size.

    Catches sizes a network (or its aux heads, which run only in training) cannot take before any
    data is loaded; the message says how to fix it.
    """
    size = data_size(config)
    kwargs = dict(config.model_kwargs)
    kwargs.setdefault("num_classes", num_classes)
    kwargs.setdefault("in_chans", size[0])
    with torch.device("meta"):
        model = create_model(config.model, **kwargs).train()
        try:
            model(torch.zeros(2, *size))
        except RuntimeError as exc:
            hint = (" Train without them (--no-aux), or at their size (--input 3x299x299)."
                    if "aux head" in str(exc) else f" {config.model} takes at least "
                    f"{model_config(config.model).min_input}x{model_config(config.model).min_input}.")
            dims = "x".join(map(str, size))
            raise ValueError(f"{config.model} cannot train on {dims} images: {exc}.{hint}") from None


def data_size(config: TrainConfig) -> tuple[int, int, int]:
    size = tuple(config.input_size) if config.input_size else model_config(config.model).input_size
    in_chans = config.model_kwargs.get("in_chans", size[0])
    return (in_chans, size[1], size[2])


def load_splits(config: TrainConfig) -> DataSplits:
    cfg = model_config(config.model)
    return load_data(config.data, data_size(config), mean=cfg.mean, std=cfg.std, augment=config.augment,
                     seed=config.seed, download=config.download, crop_pct=cfg.crop_pct,
                     interpolation=cfg.interpolation)


def default_run_dir(config: TrainConfig) -> Path:
    data = "digits" if config.data is None else Path(str(config.data).split(":", 1)[-1]).stem or "data"
    base = Path("runs") / f"{config.model}-{data}"
    path, n = base, 1
    while (path / "last.json").exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class _Board:
    """TensorBoard scalars when tensorboard is installed; nothing otherwise."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                return
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, row: dict, epoch: int) -> None:
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "epoch":
                    self.writer.add_scalar(key, value, epoch)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# --- the loop --------------------------------------------------------------------------------------


def fit(config: TrainConfig, resume: str | Path | None = None) -> dict:
    """Train as ``config`` says (or continue the run in ``resume``); return the metrics written to metrics.json."""
    resumed = None
    if resume is not None:
        resumed = load_checkpoint(resume, "last")
        saved = TrainConfig(**resumed.meta["config"])
        # a resumed run keeps its own settings; only more epochs and the progress display may change
        saved.epochs = config.epochs if config.epochs is not None else saved.epochs
        run = Path(resume).parent if Path(resume).is_file() else Path(resume)
        saved.progress, saved.out = config.progress, str(run)
        saved.device, saved.workers = config.device, config.workers  # the machine may differ
        config = saved
    info = distributed.setup(config.device)
    try:
        return _fit(config, info, resumed)
    finally:
        distributed.cleanup(info)


def _fit(config: TrainConfig, info: distributed.DistInfo, resumed) -> dict:
    started = time.perf_counter()
    recipe: Recipe = get_recipe(config.recipe, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr)
    config.epochs, config.batch_size = recipe.epochs, recipe.batch_size
    if recipe.batch_size % info.world_size:
        raise ValueError(f"batch size {recipe.batch_size} does not split over {info.world_size} processes")
    device, amp = info.device, resolve_amp(config.amp, info.device)
    config.amp = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "none"}[amp]  # a resumed run keeps it
    if resumed is not None and recipe.epochs < int(resumed.meta["epoch"]):
        raise ValueError(f"--epochs {recipe.epochs} is fewer than the {resumed.meta['epoch']} epochs the run has done")
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    if resumed is None and (run_dir / "last.json").exists():
        raise ValueError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose another --out")
    config.out = str(run_dir)
    check_trainable(config, num_classes=10)  # the class count does not change which sizes work
    seed_everything(config.seed)
    if not info.is_main:  # rank 0 downloads or unpacks first; the others then read what it wrote
        distributed.barrier(info)
    data = load_splits(config)
    if info.is_main:
        distributed.barrier(info)
    model = build_model(config, data).to(device)
    if info.distributed and device.type == "cuda":  # BN statistics over the global batch (SyncBN is GPU-only)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)

    sampler = DistributedSampler(data.train, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    per_rank = recipe.batch_size // info.world_size
    loading = dict(num_workers=config.workers, pin_memory=device.type == "cuda", persistent_workers=config.workers > 0)
    train_loader = DataLoader(data.train, per_rank, sampler=sampler, drop_last=True, **loading)
    val_shard = Subset(data.val, range(info.rank, len(data.val), info.world_size))  # every process a share
    val_loader = DataLoader(val_shard, 256, **loading)
    steps = len(train_loader) if config.max_steps is None else min(len(train_loader), config.max_steps)
    optimizer = build_optimizer(recipe, model)
    scheduler = build_scheduler(recipe, optimizer, steps, recipe.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
    history, start_epoch, best_top1 = History(), 0, -1.0
    if resumed is not None:
        model.load_state_dict(resumed.weights)
        optimizer.load_state_dict(resumed.state["optimizer"])
        scheduler.load_state_dict(resumed.state["scheduler"])
        scaler.load_state_dict(resumed.state["scaler"])
        start_epoch = int(resumed.meta["epoch"])
        best_top1 = float(resumed.meta.get("best_val_top1", -1.0))
        history = History.load(run_dir)
        history.truncate(start_epoch)
    if info.distributed:
        ids = [info.local_rank] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    else:
        net = model

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(asdict(config), indent=2))
    board = _Board(run_dir, info.is_main)
    model_kwargs = dict(config.model_kwargs)
    model_kwargs.setdefault("num_classes", data.num_classes)
    model_kwargs.setdefault("in_chans", data.input_size[0])
    meta_base = dict(model=config.model, model_kwargs=model_kwargs,
                     classes=data.classes, data=data.name, recipe=asdict(recipe), config=asdict(config))
    try:
        for epoch in range(start_epoch, recipe.epochs):
            seed_everything(epoch_seed(config.seed, epoch))
            sampler.set_epoch(epoch)
            row = _train_epoch(net, train_loader, steps, optimizer, scheduler, scaler, recipe, config, info, amp,
                               epoch, run_dir)
            val = evaluate(model, val_loader, device, amp, config.channels_last, data.num_classes, info)
            if info.is_main:
                row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
                history.append(row)
                is_best = val["top1"] > best_top1
                best_top1 = max(best_top1, val["top1"])
                state = dict(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                             scaler=scaler.state_dict(), torch_rng=torch.get_rng_state())
                meta = dict(meta_base, epoch=epoch + 1, metrics=row, best_val_top1=best_top1)
                history.save(run_dir)  # before the commit: a resumed run truncates rows past its checkpoint
                save_checkpoint(run_dir, model.state_dict(), state, meta, best=is_best)
                plot_curves(history, run_dir / "curves.png")
                board.log(row, epoch + 1)
                if config.progress:
                    print(f"epoch {epoch + 1}/{recipe.epochs}: loss {row['train_loss']:.4f} "
                          f"train top-1 {row['train_top1']:.4f} val top-1 {val['top1']:.4f} "
                          f"top-5 {val['top5']:.4f} ({row['images_per_s']:.0f} img/s)", flush=True)
            if info.distributed:
                torch.distributed.barrier()
    finally:
        board.close()
    identical = distributed.same_on_all_ranks(model, info)

    result = {}
    if info.is_main:
        best = load_checkpoint(run_dir, "best", load_state=False)
        model.load_state_dict(best.weights)
        test_loader = DataLoader(data.test, 256, num_workers=config.workers)
        test = evaluate(model, test_loader, device, amp, config.channels_last, data.num_classes)
        plot_confusion(test["confusion"], data.classes, run_dir / "confusion.png")
        last = history.rows[-1] if history.rows else {}
        result = dict(
            test_top1=test["top1"], test_top5=test["top5"], test_loss=test["loss"],
            val_top1=best.meta["metrics"]["val_top1"], best_epoch=best.meta["epoch"], epochs=recipe.epochs,
            seconds=time.perf_counter() - started + sum(r["seconds"] for r in history.rows[:start_epoch]),
            images_per_s=last.get("images_per_s"), model=config.model, data=data.name, recipe=recipe.name,
            amp=str(amp).replace("torch.", "") if amp else "none", channels_last=config.channels_last,
            world_size=info.world_size, ranks_identical=identical, classes=data.classes,
            skipped_images=data.skipped, run_dir=str(run_dir),
        )
        atomic_write_text(run_dir / "metrics.json", json.dumps(result, indent=2))
    return result


def _kept(epoch: int, run_dir: Path) -> str:
    if epoch:
        return f"the last good checkpoint (epoch {epoch}) is kept in {run_dir}"
    return "no epoch had finished, so there is no checkpoint yet"


def _train_epoch(net, loader, steps, optimizer, scheduler, scaler, recipe, config, info, amp, epoch, run_dir) -> dict:
    device = info.device
    net.train()
    loss_sum, correct, seen = torch.zeros((), dtype=torch.float64, device=device), 0, 0
    started = time.perf_counter()
    bar = None
    if config.progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{recipe.epochs}", leave=False, dynamic_ncols=True,
                   disable=None)  # None: no bar when the output is not a terminal (logs, CI)
    try:
        for step, (x, y) in enumerate(loader):
            if step >= steps:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp):
                output = net(x)
            loss, main = compute_loss(recipe, output, y)
            if not distributed.all_finite(loss, info):
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: training stopped before the "
                    f"weights were touched; {_kept(epoch, run_dir)} (try a lower --lr)"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            norm = None
            if recipe.clip_grad_norm:
                scaler.unscale_(optimizer)
                norm = nn.utils.clip_grad_norm_(net.parameters(), recipe.clip_grad_norm)
            elif not scaler.is_enabled():
                norm = nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None])
            if norm is not None and not scaler.is_enabled() and not distributed.all_finite(norm, info):
                # fp16's grad scaler skips such steps itself; without it they would poison the weights
                raise TrainingDiverged(
                    f"the gradients became non-finite at epoch {epoch + 1}, step {step + 1} "
                    f"(the loss was {loss.item()}): "
                    f"training stopped before the weights were touched; {_kept(epoch, run_dir)} (try a lower --lr)"
                )
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += main.detach().double() * y.numel()
            correct += (logits_of(output).argmax(1) == y).sum().item()
            seen += y.numel()
            if bar is not None:
                rate = seen * info.world_size / (time.perf_counter() - started)
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{rate:.0f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    totals = distributed.reduce_sum(torch.tensor([loss_sum.item(), correct, seen], dtype=torch.float64), info)
    seconds = time.perf_counter() - started
    loss_total, correct_total, seen_total = totals.tolist()
    if seen_total == 0:
        raise ValueError("no training step ran: the training split is smaller than one batch")
    return dict(epoch=epoch + 1, train_loss=loss_total / seen_total, train_top1=correct_total / seen_total,
                lr=optimizer.param_groups[0]["lr"], seconds=seconds, images_per_s=seen_total / seconds)
