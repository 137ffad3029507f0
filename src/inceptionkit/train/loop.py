"""The training loop: one function, ``fit(TrainConfig)``, read top to bottom.

Each epoch: seed from (seed, epoch) so a resumed run replays exactly what an uninterrupted one
does; train with autocast (bf16 where the hardware has it) and channels_last; stop on a NaN/inf
loss before it reaches the weights; evaluate top-1/top-5 on the validation split; write the
history, plots and an atomic checkpoint (``last``, and ``best`` by validation top-1). At the end
the best weights are evaluated on the test split and ``metrics.json`` is written. Under torchrun
the same loop runs DistributedDataParallel and only rank 0 prints or writes.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..data import DataSplits, ImageFiles, data_location, load_data
from ..models import create_model, model_config
from ..weights.preprocessing import Preprocessing
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
    """What a run does. A None takes a new run's default (:data:`DEFAULTS`, the recipe's, the network's);
    with ``fit(config, resume=RUN)`` a None means "as the run has it", and a value that differs from
    the run's is refused (only :data:`MAY_CHANGE` and data that moved may differ)."""

    model: str | None = None  # None: googlenet_cifar
    model_kwargs: dict = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None  # (C, H, W) images are resized to; None: the model's
    data: str | None = None  # None: the embedded digits; a folder or file is saved as an absolute path
    recipe: str | None = None  # None: fast
    epochs: int | None = None  # None: the recipe's
    batch_size: int | None = None  # global batch (split over torchrun processes); None: the recipe's
    lr: float | None = None  # None: the recipe's
    amp: str | None = None  # auto, bf16, fp16 or none; None: auto
    channels_last: bool | None = None  # None: True
    seed: int | None = None  # None: 0
    out: str | None = None  # run folder; None: runs/<model>-<data>
    device: str = "auto"
    workers: int = 0
    augment: bool | None = None  # None: True
    max_steps: int | None = None  # cap on optimizer steps per epoch (smoke runs, tests)
    progress: bool = True
    download: bool = False

    def with_defaults(self) -> TrainConfig:
        """A copy with the new-run default in every field of :data:`DEFAULTS` left None."""
        return replace(self, **{key: value for key, value in DEFAULTS.items() if getattr(self, key) is None})


DEFAULTS = {"model": "googlenet_cifar", "recipe": "fast", "amp": "auto", "channels_last": True, "seed": 0,
            "augment": True}
MAY_CHANGE = ("epochs", "device", "workers", "download", "progress")  # besides data that moved
_AMP_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "none"}


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


def _names(classes: list[str]) -> str:
    return ", ".join(classes) if len(classes) <= 12 else f"{', '.join(classes[:10])} ... ({len(classes)} in all)"


def _data_path(spec: str | None) -> str | None:
    """The folder or file a data spec names (None for the embedded digits and default locations)."""
    if spec is None or spec.strip().lower() == "digits":
        return None
    name, _, rest = spec.partition(":")
    if name.strip().lower() in ("cifar10", "fer2013"):
        return rest or None
    return spec


def load_run_data(config: TrainConfig, classes: list[str] | None, data_given: bool) -> DataSplits:
    """The data of a saved run (to resume or evaluate it), refused unless it has the run's ``classes``.

    ``data_given``: ``config.data`` is a new place the user named; otherwise an error loading the
    run's own data says how to point at data that moved.
    """
    where = _data_path(config.data)
    if not data_given and where is not None and not Path(where).expanduser().exists():
        raise FileNotFoundError(f"the run's data {where} is not there any more: if it moved, "
                                f"pass --data WHERE_IT_IS_NOW (checked to have the run's classes)")
    try:
        data = load_splits(config)
    except (ValueError, FileNotFoundError) as exc:
        if data_given:
            raise
        kind = FileNotFoundError if isinstance(exc, FileNotFoundError) else ValueError
        raise kind(f"{exc} (this is the data the run was trained on; if it moved, pass --data WHERE_IT_IS_NOW)") \
            from None
    if classes is not None and list(classes) != data.classes:
        raise ValueError(f"{data.name} has the classes {_names(data.classes)}, but the run was trained on "
                         f"{_names(list(classes))}: --data must name the run's data (moved) or data with its classes")
    return data


def latest_data(run_dir: str | Path, data: str | None) -> str | None:
    """Where a run's data was last: ``config.json`` is rewritten at every start, so after a resume
    with ``--data`` it names the new place, while ``best.json`` may still name the old one."""
    try:
        return json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return data


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
    raise ValueError(f"the training split has {images} images, fewer than one batch of {batch_size} (drop_last): "
                     f"{fix}")


def run_preprocessing(config: TrainConfig, data: DataSplits) -> Preprocessing:
    """What the run's network expects of a new image, as its evaluation data was prepared: resized to the
    input size (folders: the shorter side to H / crop_pct, then the centre crop), normalised as trained."""
    cfg = model_config(config.model)
    crop_pct = cfg.crop_pct if isinstance(data.val, ImageFiles) else 1.0
    return Preprocessing.from_crop_pct(data.input_size, crop_pct, interpolation=cfg.interpolation, mean=data.mean,
                                       std=data.std, colour="L" if data.input_size[0] == 1 else "RGB")


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


# --- a resumed run ---------------------------------------------------------------------------------


def _flag(name: str, value) -> str:
    """An option as the command line spells it: ``--lr 0.5``, ``--no-augment``, ``--input 3x16x16``."""
    flag = {"aux_logits": "--aux", "input_size": "--input"}.get(name, "--" + name.replace("_", "-"))
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    return f"{flag} {_value(name, value)}"


def _value(name: str, value) -> str:
    if isinstance(value, bool):
        return _flag(name, value)
    if value is None:
        return "no cap" if name == "max_steps" else "the network's default"
    return "x".join(map(str, value)) if name == "input_size" else str(value)


def _builder_default(model: str, key: str):
    parameter = inspect.signature(model_config(model).builder).parameters.get(key)
    return None if parameter is None or parameter.default is parameter.empty else parameter.default


def resumed_config(config: TrainConfig, resumed, run: Path) -> TrainConfig:
    """The run's saved config, with :data:`MAY_CHANGE` and moved data (``config.data``) taken from ``config``.

    Every other option ``config`` sets (not None) to a value other than the run's is refused in
    one ValueError that names each, with the value the run keeps.
    """
    saved = TrainConfig(**resumed.meta["config"])
    run_lr = saved.lr if saved.lr is not None else resumed.meta.get("recipe", {}).get("lr")
    kept = {"recipe": saved.recipe, "batch_size": saved.batch_size, "lr": run_lr, "amp": saved.amp,
            "channels_last": saved.channels_last, "seed": saved.seed, "augment": saved.augment,
            "max_steps": saved.max_steps, "input_size": data_size(saved)}
    differ = []
    if config.model is not None and config.model != saved.model:
        differ.append(f"{config.model} (the run trains {saved.model})")
    for name, run_value in kept.items():
        given = getattr(config, name)
        if name == "input_size" and given is not None:
            given = tuple(given)
        if name == "amp" and given == "auto":  # what auto means on this machine
            given = _AMP_NAMES[resolve_amp("auto", distributed.pick_device(config.device))]
        if given is not None and given != run_value:
            differ.append(f"{_flag(name, getattr(config, name))} (the run uses {_value(name, run_value)})")
    built = resumed.meta.get("model_kwargs", {})
    for key, given in config.model_kwargs.items():
        run_value = saved.model_kwargs.get(key, built.get(key, _builder_default(saved.model, key)))
        if given != run_value:
            differ.append(f"{_flag(key, given)} (the run uses {_value(key, run_value)})")
    if config.out is not None and os.path.abspath(config.out) != os.path.abspath(run):
        differ.append(f"--out {config.out} (the run is in {run})")
    if differ:
        raise ValueError(f"a resumed run keeps its settings: {', '.join(differ)}; only --epochs, --data (the same "
                         f"classes, moved), --device, --workers, --download and --quiet may change")
    changes = {name: getattr(config, name) for name in MAY_CHANGE}
    changes["epochs"] = saved.epochs if config.epochs is None else config.epochs
    if config.data is not None:
        changes["data"] = data_location(config.data)
    return replace(saved, out=str(run), **changes)


# --- the loop --------------------------------------------------------------------------------------


def fit(config: TrainConfig, resume: str | Path | None = None) -> dict:
    """Train as ``config`` says (or continue the run in ``resume``); return the metrics written to metrics.json.

    A resumed run keeps its settings: ``config`` may change only :data:`MAY_CHANGE` and where the
    data is (the same classes); see :func:`resumed_config`.
    """
    if config.max_steps is not None and config.max_steps < 1:
        raise ValueError(f"--max-steps must be at least 1 (it caps the optimizer steps per epoch), "
                         f"got {config.max_steps}")
    resumed, data_given = None, config.data is not None
    if resume is not None:
        resumed = load_checkpoint(resume, "last")
        run = Path(resume).parent if Path(resume).is_file() else Path(resume)
        config = resumed_config(config, resumed, run)
    else:
        config = replace(config.with_defaults(), data=data_location(config.data))
    info = distributed.setup(config.device)
    try:
        return _fit(config, info, resumed, data_given)
    finally:
        distributed.cleanup(info)


def _fit(config: TrainConfig, info: distributed.DistInfo, resumed, data_given: bool) -> dict:
    started = time.perf_counter()
    recipe: Recipe = get_recipe(config.recipe, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr)
    config.epochs, config.batch_size = recipe.epochs, recipe.batch_size
    if recipe.batch_size % info.world_size:
        raise ValueError(f"batch size {recipe.batch_size} does not split over {info.world_size} processes")
    device, amp = info.device, resolve_amp(config.amp, info.device)
    config.amp = _AMP_NAMES[amp]  # a resumed run keeps it
    if resumed is not None and recipe.epochs < int(resumed.meta["epoch"]):
        raise ValueError(f"--epochs {recipe.epochs} is fewer than the {resumed.meta['epoch']} epochs the run has done")
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    if resumed is None and (run_dir / "last.json").exists():
        raise ValueError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose another --out")
    config.out = str(run_dir)
    check_trainable(config, num_classes=10)  # the class count does not change which sizes work
    seed_everything(config.seed)
    if resumed is None:
        data = distributed.rank0_first(lambda: load_splits(config), info)
    else:
        data = distributed.rank0_first(lambda: load_run_data(config, resumed.meta.get("classes"), data_given), info)
    check_one_batch(len(data.train), recipe.batch_size, info.world_size, resumed is not None)
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
    meta_base = dict(model=config.model, model_kwargs=model_kwargs, classes=data.classes,
                     preprocessing=run_preprocessing(config, data).to_dict(), data=data.name, recipe=asdict(recipe),
                     config=asdict(config))
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
            skipped_images=data.skipped, skipped_reasons=data.skipped_reasons(),
            skipped_files=[{"file": where, "why": why} for where, why in data.skipped_files], run_dir=str(run_dir),
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
    return dict(epoch=epoch + 1, train_loss=loss_total / seen_total, train_top1=correct_total / seen_total,
                lr=optimizer.param_groups[0]["lr"], seconds=seconds, images_per_s=seen_total / seconds)
