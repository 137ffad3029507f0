"""``inceptionkit retrain``: a new classifier for a folder of one's own images, on cached bottlenecks."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import MODEL_HELP, WEIGHTS_HELP, console, err_console, network_with_weights, user_errors


@user_errors
def retrain_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    images: Path = typer.Option(..., "--images", help="a folder with one subfolder of images per class"),
    out: Path = typer.Option(Path("runs/retrain"), "--out", help="folder for model.safetensors and report.json"),
    weights: str = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    validation_pct: float = typer.Option(10.0, "--validation-pct", help="share of each class for validation"),
    test_pct: float = typer.Option(10.0, "--test-pct", help="share of each class for the test"),
    steps: int = typer.Option(1000, "--steps", help="training steps of the new classifier"),
    lr: float = typer.Option(0.01, "--lr", help="learning rate of the new classifier (Adam)"),
    batch_size: int = typer.Option(100, "--batch-size"),
    cache: Path = typer.Option(None, "--cache",
                               help="bottleneck cache folder (default ~/.cache/inceptionkit/bottlenecks)"),
) -> None:
    """Retrain the classifier of a network with weights on your own images (TensorFlow's retrain.py)."""
    from tqdm.auto import tqdm

    from ..transfer.retrain import retrain

    net = network_with_weights(model, weights)
    bars: dict[str, tqdm] = {}

    def progress(split: str, done: int, total: int) -> None:
        if split not in bars:
            bars[split] = tqdm(total=total, unit="img", desc=f"bottlenecks ({split})", leave=False)
        bars[split].update(done - bars[split].n)

    try:
        result = retrain(net, images, out, validation_pct=validation_pct, test_pct=test_pct, steps=steps, lr=lr,
                         batch_size=batch_size, cache_dir=cache, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    counts = result.images.report()["images"]
    console.print(f"{len(result.images.classes)} classes: {', '.join(result.images.classes)}; images: "
                  f"{counts['train']} train, {counts['validation']} validation, {counts['test']} test; "
                  f"bottlenecks: {result.computed} computed, {result.reused} from the cache", highlight=False)
    for path, why in result.images.skipped_files:
        err_console.print(f"skipped {path}: {why}", highlight=False, soft_wrap=True)
    for name, why in result.images.skipped_classes:
        err_console.print(f"skipped class {name}: {why}", highlight=False)
    accuracy = ", ".join(f"{what} accuracy {value:.4f}" for what, value in
                         (("validation", result.validation_accuracy), ("test", result.test_accuracy))
                         if value is not None)
    pictures = f", {out / 'confusion.png'}" if result.confusion else ""
    console.print(f"{accuracy}; wrote {out / 'model.safetensors'}, {out / 'report.json'}{pictures}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain_cmd)
