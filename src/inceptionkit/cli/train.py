"""``inceptionkit train`` and ``inceptionkit eval``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from ..errors import BadValue
from .common import (
    AuxOpt,
    DropRateOpt,
    InChansOpt,
    VariantOpt,
    WidthOpt,
    channels_for,
    console,
    err_console,
    interrupted,
    main_process,
    model_kwargs,
    parse_size,
    user_errors,
)


def _skipped_note(count: int, reasons: dict[str, int]) -> str:
    """``skipped 3 unreadable images (2 truncated JPEG, 1 empty file)``."""
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
    return f"skipped {count} unreadable image{'s' if count != 1 else ''} ({why})"


class _Console:
    """fit's report: within an epoch a progress bar (steps, rate, time left; only on a terminal), after
    it one line."""

    def __init__(self):
        self.bar, self.done, self.run_dir = None, 0, None

    def __call__(self, progress) -> None:
        from ..train import Resumed

        self.run_dir = progress.run_dir
        if isinstance(progress, Resumed):
            print(f"resuming {progress.run_dir} at epoch {progress.epoch + 1} of {progress.epochs} "
                  f"(last checkpoint: epoch {progress.epoch}, {progress.checkpoint})", flush=True)
            return
        if progress.row is not None:
            self.close()
            row = progress.row
            print(f"epoch {progress.epoch}/{progress.epochs}: loss {row['train_loss']:.4f} "
                  f"train top-1 {row['train_top1']:.4f} val top-1 {row['val_top1']:.4f} "
                  f"top-5 {row['val_top5']:.4f} ({row['images_per_s']:.0f} img/s)", flush=True)
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=progress.steps, desc=f"epoch {progress.epoch}/{progress.epochs}", leave=False,
                            dynamic_ncols=True, disable=None)  # None: no bar when the output is not a terminal
            self.done = 0
        self.bar.set_postfix(loss=f"{progress.loss:.3f}", acc=f"{progress.top1:.3f}",
                             img_s=f"{progress.images_per_s:.0f}", refresh=False)
        self.bar.update(progress.step - self.done)
        self.done = progress.step

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


RECIPES_HELP = "fast (default: SGD, one-cycle), v1 (the GoogLeNet paper) or v3 (RMSProp, label smoothing)"


@user_errors
def train_cmd(
    model: str = typer.Argument(None, help="registered network name (not needed with --resume)"),
    data: str = typer.Option(None, "--data", help="digits (default), cifar10[:DIR], fer2013:FILE.csv, or a folder"),
    weights: str = typer.Option(None, "--weights", help="start from these weights (a source tag such as "
                                                        "torchvision, a .safetensors file or a run); default: random"),
    train_stages: int = typer.Option(None, "--train-stages", help="only the last N stages with weights and the "
                                                                  "classifier learn (fine-tuning); default: all"),
    recipe: str = typer.Option(None, "--recipe", help=RECIPES_HELP),
    epochs: int = typer.Option(None, "--epochs", help="default: the recipe's"),
    batch_size: int = typer.Option(None, "--batch-size", help="global batch; default: the recipe's"),
    lr: float = typer.Option(None, "--lr", help="base learning rate; default: the recipe's"),
    amp: str = typer.Option(None, "--amp", help="auto (the default: bf16 where the hardware has it), bf16, "
                                                "fp16 (GPU), none"),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last", help="default: channels-last"),
    input: str = typer.Option(None, "--input", help="image size CxHxW; default: the network's own"),
    variant: VariantOpt = None,
    width: WidthOpt = None,
    in_chans: InChansOpt = None,
    aux: AuxOpt = None,
    drop_rate: DropRateOpt = None,
    augment: bool = typer.Option(None, "--augment/--no-augment",
                                 help="random crops/shifts/flips on the train split; default: on"),
    seed: int = typer.Option(None, "--seed", help="default: 0"),
    out: Path = typer.Option(None, "-o", "--out", help="run folder; default runs/MODEL-DATA"),
    resume: Path = typer.Option(None, "--resume", help="continue the run in this folder"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1"),
    workers: int = typer.Option(0, "--workers", help="data loader processes"),
    max_steps: int = typer.Option(None, "--max-steps", help="cap optimizer steps per epoch (smoke runs)"),
    download: bool = typer.Option(False, "--download", help="download CIFAR-10 when it is not in its folder"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars or per-epoch lines"),
) -> None:
    """Train a network; writes checkpoints, history, plots and metrics.json into the run folder.

    With --resume the run keeps its settings: only --epochs, --data (the same classes, moved),
    --device, --workers, --download and --quiet may change; other options given must match the run.
    """
    from ..runs import METRICS_FILE, has_checkpoint
    from ..train import TrainConfig, TrainingDiverged, fit

    if model is None and resume is None:
        raise BadValue("name a network to train (e.g. `inceptionkit train googlenet_cifar --width 0.25`) "
                         "or a run to continue with --resume RUN_DIR")
    size = parse_size(input) if input else None
    kwargs = model_kwargs(variant=variant, width=width, in_chans=in_chans, aux=aux, drop_rate=drop_rate)
    if size is not None:
        kwargs = channels_for(size, kwargs, default=size)  # refuses --in-chans that disagrees with --input
    config = TrainConfig(
        model=model, model_kwargs=kwargs, weights=weights, train_stages=train_stages, data=data, input_size=size,
        recipe=recipe, epochs=epochs,
        batch_size=batch_size, lr=lr, amp=amp, channels_last=channels_last, seed=seed, augment=augment,
        out=str(out) if out else None, device=device, workers=workers, max_steps=max_steps, progress=not quiet,
        download=download,
    )
    report = _Console()
    try:
        with report:
            metrics = fit(config, resume=resume, report=report)
    except KeyboardInterrupt:
        run = report.run_dir or resume
        if run is not None and has_checkpoint(run):
            raise interrupted(f"the last finished epoch is kept in {run}",
                              f"`inceptionkit train --resume {run}` continues it") from None
        raise interrupted("no epoch had finished, so nothing was kept", "run the command again") from None
    except TrainingDiverged as exc:
        if main_process():
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(3) from None
    if metrics and metrics["skipped_images"]:
        where = Path(metrics["run_dir"]) / METRICS_FILE
        console.print(f"{_skipped_note(metrics['skipped_images'], metrics['skipped_reasons'])}; the list is in {where}",
                      highlight=False, soft_wrap=True)
    if metrics:
        console.print(
            f"{metrics['model']} on {metrics['data']}: test top-1 {metrics['test_top1']:.4f}, "
            f"top-5 {metrics['test_top5']:.4f} (best val top-1 {metrics['val_top1']:.4f} at epoch "
            f"{metrics['best_epoch']}/{metrics['epochs']}), {metrics['seconds']:.0f} s; run in {metrics['run_dir']}",
            highlight=False,
        )


@user_errors
def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="a run folder, its last.json/best.json, or a .safetensors file"),
    data: str = typer.Option(None, "--data", help="default: the data the run trained on (pass it if that moved)"),
    split: str = typer.Option("test", "--split", help="test, val or train"),
    tag: str = typer.Option("best", "--tag", help="best or last (run folders)"),
    network: str = typer.Option(None, "--network", help="network name, for a bare .safetensors file"),
    amp: str = typer.Option("auto", "--amp", help="auto, bf16, fp16 (GPU) or none"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
) -> None:
    """Top-1, top-5 and loss of a checkpoint on a data split."""
    from dataclasses import replace

    import torch
    from torch.utils.data import DataLoader

    from ..data import data_location
    from ..runs import read_meta
    from ..train import TrainConfig, evaluate
    from ..train.precision import resolve_amp
    from ..train.resume import latest_data, load_run_data
    from ..weights import load

    meta, record = read_meta(checkpoint, tag)
    name = network or meta.get("model")
    if not name:
        raise BadValue(f"{checkpoint} does not say which network it holds: pass --network NAME")
    config = (TrainConfig(**meta["config"]) if "config" in meta else TrainConfig(model=name)).with_defaults()
    config = replace(config, model=name, augment=False)
    if data is not None:
        config = replace(config, data=data_location(data))
    elif record.suffix == ".json":  # a run: its data may have moved since this record was written
        config = replace(config, data=latest_data(record.parent, config.data))
    if split not in ("test", "val", "train"):
        raise BadValue(f"--split must be test, val or train, got {split!r}")
    splits = load_run_data(config, meta.get("classes"), data_given=data is not None)
    if splits.skipped:
        err_console.print(_skipped_note(splits.skipped, splits.skipped_reasons()), highlight=False, soft_wrap=True)
    net = load(checkpoint, tag=tag, model=network)
    if net.pretrained_cfg["num_classes"] != splits.num_classes:
        raise BadValue(f"the checkpoint has {net.pretrained_cfg['num_classes']} classes but {splits.name} has "
                         f"{splits.num_classes}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net.to(device)
    result = evaluate(net, DataLoader(getattr(splits, split), 256), device, amp=resolve_amp(amp, device),
                      num_classes=splits.num_classes)
    out = dict(top1=result["top1"], top5=result["top5"], loss=result["loss"], count=result["count"],
               split=split, data=splits.name, model=name)
    if as_json:
        console.print_json(json.dumps(out))
    else:
        console.print(f"{name} on {splits.name} {split} ({out['count']} images): top-1 {out['top1']:.4f}, "
                      f"top-5 {out['top5']:.4f}, loss {out['loss']:.4f}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
