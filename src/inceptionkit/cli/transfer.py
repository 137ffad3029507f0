"""``inceptionkit retrain``: a new classifier for a folder of one's own images, on cached bottlenecks."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import MODEL_HELP, WEIGHTS_HELP, Bars, console, err_console, interrupted, network_with_weights, user_errors


@user_errors
def retrain_cmd(
    model: str = typer.Argument(..., help=MODEL_HELP),
    images: Path = typer.Option(..., "--images", help="a folder with one subfolder of images per class"),
    out: Path = typer.Option(Path("runs/retrain"), "-o", "--out", help="folder for model.safetensors and report.json"),
    weights: str = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    validation_pct: float = typer.Option(10.0, "--validation-pct", help="share of each class for validation"),
    test_pct: float = typer.Option(10.0, "--test-pct", help="share of each class for the test"),
    steps: int = typer.Option(1000, "--steps", help="training steps of the new classifier"),
    lr: float = typer.Option(0.01, "--lr", help="learning rate of the new classifier (Adam)"),
    batch_size: int = typer.Option(100, "--batch-size", help="bottlenecks per step of the new classifier "
                                                                 "(with distortions)"),
    cache: Path = typer.Option(None, "--cache",
                               help="bottleneck cache folder (default ~/.cache/inceptionkit/bottlenecks)"),
    flip: bool = typer.Option(False, "--flip", help="distortion: mirror half the training images left to right"),
    random_crop: float = typer.Option(0.0, "--random-crop", help="distortion: crop margin, percent of the side"),
    random_scale: float = typer.Option(0.0, "--random-scale", help="distortion: random enlargement, percent"),
    random_brightness: float = typer.Option(0.0, "--random-brightness", help="distortion: brightness +-, percent"),
    fine_tune: int = typer.Option(0, "--fine-tune", help="then fine-tune the last N stages with weights (0: no)"),
    fine_tune_epochs: int = typer.Option(3, "--fine-tune-epochs", help="epochs of fine-tuning"),
    fine_tune_lr: float = typer.Option(0.01, "--fine-tune-lr", help="peak learning rate of fine-tuning (SGD)"),
    onnx: bool = typer.Option(False, "--onnx", help="also write model.onnx, checked in ONNX Runtime"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars or lines"),
) -> None:
    """Retrain the classifier of a network with weights on your own images (TensorFlow's retrain.py).

    Distortions (any of --flip, --random-crop, --random-scale, --random-brightness) compute each
    training image's bottleneck afresh at every step instead of reading the cache: much slower.
    """
    from ..extras import require
    from ..transfer.distort import Distortions
    from ..transfer.retrain import FineTune, retrain

    if onnx:
        require("deploy", "--onnx")
    net = network_with_weights(model, weights)
    phases = {split: f"bottlenecks of the {split} images" for split in ("train", "validation", "test")}
    phases["head"] = "new classifier (steps, stops early when validation stops improving)"
    distortions = Distortions(flip, random_crop, random_scale, random_brightness)
    tuning = FineTune(stages=fine_tune, epochs=fine_tune_epochs, lr=fine_tune_lr) if fine_tune else None
    try:
        with Bars(quiet) as bars:
            result = retrain(net, images, out, validation_pct=validation_pct, test_pct=test_pct, steps=steps, lr=lr,
                             batch_size=batch_size, cache_dir=cache, distortions=distortions, fine_tune=tuning,
                             onnx=onnx, progress=lambda what, done, total: bars(phases.get(what, what), done, total))
    except KeyboardInterrupt:
        raise interrupted("the bottlenecks computed so far are kept in the cache",
                          "run the same command again to continue from there") from None
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
    if tuning is not None:
        tuned = result.extra["fine_tune"]
        learning = ", ".join(tuned["learning"])
        if tuned["kept"]:
            alone = result.extra.get("head_test_accuracy")
            accuracy += f" after fine-tuning {learning}" + (f" (new classifier alone: {alone:.4f})" if alone else "")
        else:
            accuracy += (f" with the new classifier alone: fine-tuning {learning} reached validation accuracy "
                         f"{tuned['validation_accuracy']:.4f}, below its {tuned['head_validation_accuracy']:.4f}, so "
                         f"it was not kept (its run is in {tuned['run']})")
    written = [out / "model.safetensors", out / "report.json"] + [out / "confusion.png"] * bool(result.confusion)
    written += [out / "model.onnx"] * onnx
    console.print(f"{accuracy}; wrote {', '.join(map(str, written))}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain_cmd)
