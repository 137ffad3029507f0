"""The training loop, read top to bottom in :func:`fit`: prepare a run, then for each epoch train,
validate and commit; at the end test the best checkpoint.

Each epoch seeds from (seed, epoch), so a resumed run replays exactly what an uninterrupted one
does; it trains with autocast (bf16 where the hardware has it) and channels_last, and stops on a
NaN/inf loss before it reaches the weights. The commit writes the history, the curves and an
atomic checkpoint (``last``, and ``best`` by validation top-1). At the end the best weights are
evaluated on the test split and ``metrics.json`` is written. Under torchrun the same loop runs
DistributedDataParallel and only rank 0 writes or reports. The library prints nothing: progress
goes to the ``report`` callback the caller passes (the command line draws a bar and a line per epoch).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..data import DataSplits, ImageFiles, data_location
from ..data.seeding import EpochSampler, SeededItems
from ..errors import BadValue, RandomWeightsWarning
from ..factory import asks_for_no_weights, create_model
from ..files import check_output
from ..models import model_config
from ..runs import (
    Checkpoint,
    free_run_dir,
    has_checkpoint,
    load_checkpoint,
    run_dir_of,
    save_checkpoint,
    write_config,
    write_metrics,
)
from ..weights.preprocessing import Preprocessing, preprocessing_of
from . import distributed
from .config import TrainConfig, data_size, load_splits, network_kwargs, recipe_of
from .evaluate import evaluate
from .history import History
from .plots import plot_confusion, plot_curves
from .precision import amp_name, autocast, resolve_amp
from .recipes import Recipe, build_optimizer, build_scheduler, compute_loss, logits_of
from .resume import load_run_data, resumed_config

LOG_EVERY = 10  # steps between reads of the device: the running loss for the report, and its finiteness


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Progress:
    """What :func:`fit` tells its ``report`` callback (on rank 0, when ``config.progress``): within an
    epoch after its first step, every :data:`LOG_EVERY` steps and after its last (``row`` None), then
    once the epoch is committed (``row``: its history row, validation included)."""

    epoch: int  # from 1
    epochs: int
    step: int  # steps done in this epoch
    steps: int
    loss: float  # mean training loss so far this epoch (this process's images)
    top1: float  # training top-1 so far this epoch (this process's images)
    images_per_s: float  # all processes together
    row: dict | None = None
    run_dir: Path | None = None


@dataclass
class Resumed:
    """What :func:`fit` tells its ``report`` callback first when it continues a run: the epoch it starts
    from (the last checkpoint's), of how many, and the checkpoint record it read."""

    run_dir: Path
    epoch: int  # epochs done; training continues with epoch + 1
    epochs: int
    checkpoint: Path


@dataclass
class Run:
    """Everything a run needs between epochs; :func:`prepare` builds it, the epoch steps update it."""

    config: TrainConfig  # resolved: every default filled in (epochs, batch size, amp, out)
    recipe: Recipe
    info: distributed.DistInfo
    amp: torch.dtype | None
    data: DataSplits
    model: nn.Module  # the network; its state_dict is what a checkpoint holds
    net: nn.Module  # what trains: the model, or DistributedDataParallel around it
    sampler: EpochSampler
    train_loader: DataLoader
    val_loader: DataLoader
    steps: int  # optimizer steps per epoch
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    run_dir: Path
    meta: dict  # what every checkpoint's meta holds besides the epoch's figures
    history: History
    report: Callable[[Progress], None] | None = None
    board: _Board = field(default_factory=lambda: _Board())  # TensorBoard, once the run folder is open
    start_epoch: int = 0
    best_top1: float = -1.0
    started: float = 0.0  # time.perf_counter() when the run was prepared


# --- the loop --------------------------------------------------------------------------------------


def fit(config: TrainConfig, resume: str | Path | None = None,
        report: Callable[[Progress], None] | None = None, *, data: DataSplits | None = None) -> dict:
    """Train as ``config`` says (or continue the run in ``resume``); return the metrics written to metrics.json.

    A resumed run keeps its settings: ``config`` may change only :data:`~.config.MAY_CHANGE` and
    where the data is (the same classes); see :func:`~.resume.resumed_config`. ``config`` itself is
    left as it is. ``report`` receives a :class:`Progress` during and after each epoch (first a
:class:`Resumed` when continuing a run). ``data``:
    splits built by the caller (any datasets of (image tensor, label)) instead of ``config.data``'s.
    """
    info = distributed.setup(config.device)
    try:
        run = prepare(config, info, resume, report, data)
        with contextlib.closing(run.board):
            for epoch in range(run.start_epoch, run.config.epochs):
                metrics = train_one_epoch(run, epoch)
                metrics.update(validate(run))
                commit(run, epoch, metrics)
        return finish(run)
    finally:
        distributed.cleanup(info)


def prepare(config: TrainConfig, info: distributed.DistInfo, resume: str | Path | None = None,
            report: Callable[[Progress], None] | None = None, data: DataSplits | None = None) -> Run:
    """Resolve and check the config, load the data, build the network, its loaders and optimizer, open
    the run folder and (resuming) put everything back where the last checkpoint left it."""
    started, data_given = time.perf_counter(), config.data is not None
    if data is not None and config.input_size is None and resume is None:
        config = replace(config, input_size=tuple(data.input_size))
    config, resumed = resolve(config, info, resume)
    recipe = recipe_of(config)
    check_trainable(config)
    seed_everything(config.seed)
    if data is None and resumed is None:
        data = distributed.rank0_first(lambda: load_splits(config), info)
    elif data is None:
        data = distributed.rank0_first(lambda: load_run_data(config, resumed.meta.get("classes"), data_given), info)
    elif resumed is not None and resumed.meta.get("classes") not in (None, list(data.classes)):
        raise BadValue(f"the data's classes {list(data.classes)} differ from the run's {resumed.meta['classes']}")
    check_one_batch(len(data.train), recipe.batch_size, info.world_size, resumed is not None)
    kwargs = network_kwargs(config, data.num_classes)
    model = build_model(config, kwargs, info)
    sampler, train_loader, val_loader = make_loaders(config, data, recipe, info)
    steps = len(train_loader) if config.max_steps is None else min(len(train_loader), config.max_steps)
    optimizer = build_optimizer(recipe, model)
    amp = resolve_amp(config.amp, info.device)
    meta = dict(model=config.model, model_kwargs=kwargs, classes=data.classes,
                preprocessing=run_preprocessing(config, data, model).to_dict(), data=data.name,
                recipe=asdict(recipe), config=asdict(config))
    run = Run(config=config, recipe=recipe, info=info, amp=amp, data=data, model=model, net=model, sampler=sampler,
              train_loader=train_loader, val_loader=val_loader, steps=steps, optimizer=optimizer,
              scheduler=build_scheduler(recipe, optimizer, steps, recipe.epochs),
              scaler=torch.amp.GradScaler("cuda", enabled=amp is torch.float16), run_dir=Path(config.out),
              meta=meta, history=History(), report=report if config.progress and info.is_main else None,
              started=started)
    if resumed is not None:
        restore(run, resumed)
        if run.report is not None:
            run.report(Resumed(run.run_dir, run.start_epoch, config.epochs, resumed.record))
    if info.distributed:
        ids = [info.local_rank] if info.device.type == "cuda" else None
        run.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    run.board = open_run_folder(config, info)
    return run


def restore(run: Run, checkpoint: Checkpoint) -> None:
    """Put ``run`` where its last checkpoint left it: weights, optimizer, scheduler and grad scaler, the
    best val top-1 so far, the history up to that epoch. (Each epoch seeds its own RNGs from the seed.)"""
    run.model.load_state_dict(checkpoint.weights)
    run.optimizer.load_state_dict(checkpoint.state["optimizer"])
    run.scheduler.load_state_dict(checkpoint.state["scheduler"])
    run.scaler.load_state_dict(checkpoint.state["scaler"])
    run.start_epoch = int(checkpoint.meta["epoch"])
    run.best_top1 = float(checkpoint.meta.get("best_val_top1", -1.0))
    run.history = History.load(run.run_dir)
    run.history.truncate(run.start_epoch)


def train_one_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training split (``run.steps`` steps); the history row's training figures,
    summed over processes. The running sums stay on the device, read only to report progress."""
    seed_everything(epoch_seed(run.config.seed, epoch))
    run.sampler.set_epoch(epoch)
    run.net.train()
    device = run.info.device
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss x images, correct
    finite = Finiteness(device)
    seen, started = 0, time.perf_counter()
    for step, (x, y) in enumerate(itertools.islice(run.train_loader, run.steps)):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if run.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        output, main, loss, norm = train_step(run, x, y)
        finite.record(step, loss, norm)
        sums += torch.stack([main.detach().double() * y.numel(), (logits_of(output).argmax(1) == y).sum().double()])
        seen += y.numel()
        done = step + 1
        if done == 1 or done % LOG_EVERY == 0 or done == run.steps:  # the one wait for the device
            finite.check(run, epoch)
            if run.report is not None:
                loss_sum, correct = sums.tolist()
                rate = seen * run.info.world_size / (time.perf_counter() - started)
                run.report(Progress(epoch + 1, run.config.epochs, done, run.steps, loss_sum / seen, correct / seen,
                                    rate, run_dir=run.run_dir))
    totals = distributed.reduce_sum(torch.tensor([*sums.tolist(), seen], dtype=torch.float64), run.info)
    seconds = time.perf_counter() - started
    loss_sum, correct, seen = totals.tolist()
    return dict(epoch=epoch + 1, train_loss=loss_sum / seen, train_top1=correct / seen,
                lr=run.optimizer.param_groups[0]["lr"], seconds=seconds, images_per_s=seen / seconds)


def train_step(run: Run, x: torch.Tensor, y: torch.Tensor) -> tuple:
    """Forward, backward and one optimizer step: ``(output, main loss, loss, gradient norm)``, all on the
    device (the norm None where fp16's grad scaler checks the gradients and skips such steps itself)."""
    with autocast(run.info.device, run.amp):
        output = run.net(x)
    loss, main = compute_loss(run.recipe, output, y)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    norm = None
    if run.recipe.clip_grad_norm:
        run.scaler.unscale_(run.optimizer)
        norm = nn.utils.clip_grad_norm_(run.net.parameters(), run.recipe.clip_grad_norm)
    elif not run.scaler.is_enabled():
        norm = nn.utils.get_total_norm([p.grad for p in run.net.parameters() if p.grad is not None])
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return output, main, loss, None if run.scaler.is_enabled() else norm


class Finiteness:
    """The first step of an epoch whose loss or gradients were not finite, tracked on the device.

    :meth:`record` costs no wait for the device; :meth:`check` reads it (on every process at the same
    step) and raises :class:`TrainingDiverged`. The loop checks at its report interval and at the
    epoch's last step, before the epoch is committed, so a non-finite update never reaches a checkpoint.
    """

    def __init__(self, device: torch.device):
        self.step = torch.full((), -1, dtype=torch.long, device=device)
        self.loss = torch.zeros((), dtype=torch.float32, device=device)
        self.only_grads = torch.zeros((), dtype=torch.bool, device=device)  # the loss was finite, the gradients not

    def record(self, step: int, loss: torch.Tensor, norm: torch.Tensor | None) -> None:
        loss = loss.detach().float()
        bad_loss = ~torch.isfinite(loss)
        bad = bad_loss if norm is None else bad_loss | ~torch.isfinite(norm.detach())
        first = bad & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.loss = torch.where(first, loss, self.loss)
        self.only_grads = torch.where(first, ~bad_loss, self.only_grads)

    def check(self, run: Run, epoch: int) -> None:
        flag = torch.where(self.step >= 0, float("nan"), 0.0)
        if distributed.all_finite(flag, run.info):
            return
        step = int(self.step.item())
        if step < 0:
            raise _diverged(run, epoch, None, "the loss or gradients became non-finite on another process")
        if bool(self.only_grads.item()):
            raise _diverged(run, epoch, step, "the gradients became non-finite", f" (the loss was {self.loss.item()})")
        raise _diverged(run, epoch, step, f"the loss became {self.loss.item()}")


def validate(run: Run) -> dict:
    """Loss, top-1 and top-5 on the validation split, each process evaluating its share."""
    val = evaluate(run.model, run.val_loader, run.info.device, amp=run.amp, channels_last=run.config.channels_last,
                   num_classes=run.data.num_classes, info=run.info)
    return dict(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])


def commit(run: Run, epoch: int, metrics: dict) -> None:
    """The epoch's end: rank 0 appends the history row, saves it and the checkpoint (``best`` too when
    val top-1 improved), draws the curves and reports; the other processes wait for it."""
    if run.info.is_main:
        run.history.append(metrics)
        is_best = metrics["val_top1"] > run.best_top1
        run.best_top1 = max(run.best_top1, metrics["val_top1"])
        state = dict(optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
                     scaler=run.scaler.state_dict())
        meta = dict(run.meta, epoch=epoch + 1, metrics=metrics, best_val_top1=run.best_top1)
        run.history.save(run.run_dir)  # before the commit: a resumed run truncates rows past its checkpoint
        save_checkpoint(run.run_dir, run.model.state_dict(), state, meta, best=is_best)
        plot_curves(run.history, run.run_dir / "curves.png")
        run.board.log(metrics, epoch + 1)
        if run.report is not None:
            run.report(Progress(epoch + 1, run.config.epochs, run.steps, run.steps, metrics["train_loss"],
                                metrics["train_top1"], metrics["images_per_s"], row=metrics, run_dir=run.run_dir))
    if run.info.distributed:
        torch.distributed.barrier()


def finish(run: Run) -> dict:
    """Test the best checkpoint, draw its confusion matrix and write ``metrics.json`` (rank 0; {} elsewhere)."""
    identical = distributed.same_on_all_ranks(run.model, run.info)
    if not run.info.is_main:
        return {}
    best = load_checkpoint(run.run_dir, "best", load_state=False)
    run.model.load_state_dict(best.weights)
    test_loader = DataLoader(run.data.test, 256, num_workers=run.config.workers)
    test = evaluate(run.model, test_loader, run.info.device, amp=run.amp, channels_last=run.config.channels_last,
                    num_classes=run.data.num_classes)
    plot_confusion(test["confusion"], run.data.classes, run.run_dir / "confusion.png")
    result = _metrics(run, test, best, identical)
    write_metrics(run.run_dir, result)
    return result


def _metrics(run: Run, test: dict, best: Checkpoint, identical: bool) -> dict:
    data, rows = run.data, run.history.rows
    earlier = sum(row["seconds"] for row in rows[:run.start_epoch])  # the epochs before a resume
    return dict(
        test_top1=test["top1"], test_top5=test["top5"], test_loss=test["loss"],
        val_top1=best.meta["metrics"]["val_top1"], best_epoch=best.meta["epoch"], epochs=run.config.epochs,
        seconds=time.perf_counter() - run.started + earlier,
        images_per_s=rows[-1]["images_per_s"] if rows else None, model=run.config.model, data=data.name,
        recipe=run.recipe.name, amp=str(run.amp).replace("torch.", "") if run.amp else "none",
        channels_last=run.config.channels_last, world_size=run.info.world_size, ranks_identical=identical,
        classes=data.classes, skipped_images=data.skipped, skipped_reasons=data.skipped_reasons(),
        skipped_files=[{"file": where, "why": why} for where, why in data.skipped_files], run_dir=str(run.run_dir),
    )


def _diverged(run: Run, epoch: int, step: int | None, what: str, note: str = "") -> TrainingDiverged:
    kept = (f"the last good checkpoint (epoch {epoch}) is kept in {run.run_dir}" if epoch
            else "no epoch had finished, so there is no checkpoint yet")
    where = f"at epoch {epoch + 1}" + ("" if step is None else f", step {step + 1}")
    return TrainingDiverged(f"{what} {where}{note}: training stopped before the epoch was saved; {kept} "
                            f"(try a lower --lr)")


# --- what prepare does -----------------------------------------------------------------------------


def resolve(config: TrainConfig, info: distributed.DistInfo,
            resume: str | Path | None) -> tuple[TrainConfig, Checkpoint | None]:
    """A copy of ``config`` with every default filled in (a new run) or the run's own settings (a resume),
    and the run's last checkpoint; refuses what cannot run before anything is loaded or written."""
    if config.max_steps is not None and config.max_steps < 1:
        raise BadValue(f"--max-steps must be at least 1 (it caps the optimizer steps per epoch), "
                         f"got {config.max_steps}")
    resumed = None
    if resume is None:
        weights = config.weights
        if asks_for_no_weights(weights):
            warnings.warn(f"{config.model} from random weights: a baseline to compare trained weights against",
                          RandomWeightsWarning, stacklevel=3)
            weights = None
        config = replace(config.with_defaults(), model_kwargs=dict(config.model_kwargs), weights=weights,
                         data=data_location(config.data))
    else:
        resumed = load_checkpoint(resume, "last")
        config = resumed_config(config, resumed, run_dir_of(resume))
    recipe = recipe_of(config)
    if recipe.batch_size % info.world_size:
        raise BadValue(f"batch size {recipe.batch_size} does not split over {info.world_size} processes")
    amp = amp_name(resolve_amp(config.amp, info.device))  # a resumed run keeps it
    if resumed is not None and recipe.epochs < int(resumed.meta["epoch"]):
        raise BadValue(f"--epochs {recipe.epochs} is fewer than the {resumed.meta['epoch']} epochs the run has done")
    run_dir = check_output(config.out, "folder") if config.out else default_run_dir(config)
    if resumed is None and has_checkpoint(run_dir):
        raise BadValue(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose another --out")
    return replace(config, epochs=recipe.epochs, batch_size=recipe.batch_size, amp=amp, out=str(run_dir)), resumed


def check_trainable(config: TrainConfig) -> None:
    """Build the network on the meta device and run one train-mode step's forward at the data size.

    Catches sizes a network cannot take before any data is loaded; the message gives the sizes that
    work. (The class count does not change which sizes work.)
    """
    size = data_size(config)
    with torch.device("meta"):
        model = create_model(config.model, **network_kwargs(config, num_classes=None)).train()
        try:
            model(torch.zeros(2, *size))
        except RuntimeError as exc:
            dims = "x".join(map(str, size))
            raise BadValue(f"{config.model} cannot train on {dims} images: {exc}") from None


def check_one_batch(images: int, batch_size: int, world_size: int = 1, resumed: bool = False) -> None:
    """Refuse a training split smaller than one global batch (every batch is full: drop_last)."""
    if images // world_size >= batch_size // world_size:
        return
    fits = images // world_size * world_size
    if resumed:
        fix = "a resumed run keeps its batch size: point --data at the data set it was trained on"
    elif fits:
        processes = f" (a multiple of the {world_size} processes)" if world_size > 1 else ""
        fix = f"use --batch-size {fits} or less{processes}, or more images"
    else:
        fix = f"use more images (at least {world_size}, one per process)"
    raise BadValue(f"the training split has {images} images, fewer than one batch of {batch_size} (drop_last): "
                     f"{fix}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def build_model(config: TrainConfig, kwargs: dict, info: distributed.DistInfo) -> nn.Module:
    """The network on its device, from ``config.weights`` if given, with only its last ``train_stages``
    learning if set (SyncBatchNorm across GPUs under torchrun), channels_last if asked."""
    model = create_model(config.model, weights=config.weights, **kwargs).to(info.device)
    if config.train_stages is not None:
        model.freeze(config.train_stages)
    if info.distributed and info.device.type == "cuda":  # BN statistics over the global batch (SyncBN is GPU-only)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def make_loaders(config: TrainConfig, data: DataSplits, recipe: Recipe,
                 info: distributed.DistInfo) -> tuple[EpochSampler, DataLoader, DataLoader]:
    """The training sampler and loader (this process's share of each global batch) and the validation loader.

    Each training image is augmented from (seed, epoch, index) (:mod:`~inceptionkit.data.seeding`), and the
    loaders draw their worker seeds from their own generators, so the number of workers and a resume change
    nothing: the same run gives the same weights bit for bit on a CPU.
    """
    sampler = EpochSampler(data.train, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                           seed=config.seed, drop_last=True)
    loading = dict(num_workers=config.workers, pin_memory=info.device.type == "cuda",
                   persistent_workers=config.workers > 0)
    train_loader = DataLoader(SeededItems(data.train, config.seed), recipe.batch_size // info.world_size,
                              sampler=sampler, drop_last=True, generator=torch.Generator().manual_seed(config.seed),
                              **loading)
    val_shard = Subset(data.val, range(info.rank, len(data.val), info.world_size))  # every process a share
    val_loader = DataLoader(val_shard, 256, generator=torch.Generator().manual_seed(config.seed), **loading)
    return sampler, train_loader, val_loader


def open_run_folder(config: TrainConfig, info: distributed.DistInfo) -> _Board:
    """Create the run folder, write ``config.json`` (rewritten at every start) and open TensorBoard (rank 0)."""
    if info.is_main:
        Path(config.out).mkdir(parents=True, exist_ok=True)
        write_config(config.out, asdict(config))
    return _Board(Path(config.out) if info.is_main else None)


def run_preprocessing(config: TrainConfig, data: DataSplits, model: nn.Module) -> Preprocessing:
    """What the run's network expects of a new image, as its evaluation data was prepared: resized to the
    input size (folders: the shorter side to H / crop_pct, then the centre crop), normalised as trained;
    a run from weights keeps the weights' preprocessing."""
    if config.weights:
        return preprocessing_of(model)
    cfg = model_config(config.model)
    crop_pct = cfg.crop_pct if isinstance(data.val, ImageFiles) else 1.0
    return Preprocessing.from_crop_pct(data.input_size, crop_pct, interpolation=cfg.interpolation, mean=data.mean,
                                       std=data.std, colour="L" if data.input_size[0] == 1 else "RGB")


def default_run_dir(config: TrainConfig) -> Path:
    data = "digits" if config.data is None else Path(str(config.data).split(":", 1)[-1]).stem or "data"
    return free_run_dir(Path("runs") / f"{config.model}-{data}")


class _Board:
    """TensorBoard scalars in ``run_dir`` when tensorboard is installed; nothing otherwise (or without a folder)."""

    def __init__(self, run_dir: Path | None = None):
        self.writer = None
        if run_dir is not None:
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
