"""``inceptionkit weights``, ``predict`` and ``export``: networks with weights, used and written."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import BadValue
from .common import console, err_console, user_errors

WEIGHTS_HELP = ("NAME[:SOURCE] (inception_v3:torchvision; a name alone: its default; NAME:random: no weights), a "
                "run folder, or a file")


@user_errors
def weights_cmd(
    name: str = typer.Argument(None, help="a network; none: every published source"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Published weights: source, accuracy, preprocessing, and where the file goes in the torch hub cache."""
    from rich.table import Table

    from ..weights import checkpoint_dir, list_sources
    from ..weights.sources import DEFAULTS

    sources = list_sources(name)
    if name is not None and not sources:
        raise BadValue(f"no published weights for {name!r}; networks with weights: {', '.join(sorted(DEFAULTS))}")
    if as_json:
        console.print_json(json.dumps([{
            "weights": s.key, "default": DEFAULTS.get(s.model) == s.tag, "url": s.url, "file": s.file_name,
            "sha256": s.sha256, "top1": s.top1, "top5": s.top5, "accuracy_source": s.accuracy_source,
            "preprocessing": s.preprocessing.to_dict(), "licence": s.licence} for s in sources]))
        return
    table = Table(title=f"published weights (files go in {checkpoint_dir()})")
    for column in ("weights", "top-1", "top-5", "preprocessing", "file"):
        table.add_column(column, justify="right" if column.startswith("top") else "left", overflow="fold")
    for s in sources:
        default = " (default)" if DEFAULTS.get(s.model) == s.tag else ""
        table.add_row(f"{s.key}{default}", f"{s.top1:.2f}" if s.top1 else "-", f"{s.top5:.2f}" if s.top5 else "-",
                      s.preprocessing.describe(), s.file_name)
    console.print(table)


@user_errors
def predict_cmd(
    weights: str = typer.Argument(..., help=WEIGHTS_HELP),
    images: list[Path] = typer.Argument(..., help="image files and folders of them"),
    top: int = typer.Option(5, "--top", help="how many classes per image"),
    batch_size: int = typer.Option(32, "--batch-size", help="images per forward pass"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Top-k classes and probabilities of each image, preprocessed as the weights expect."""
    from ..transfer import predict
    from ..weights.load import open_weights

    model = open_weights(weights)
    bar = None
    if not as_json and any(p.is_dir() for p in images):
        from tqdm.auto import tqdm

        bar = tqdm(total=0, unit="img", desc="predict", leave=False, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = predict(model, images, top=top, batch_size=batch_size, progress=progress if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        console.print_json(json.dumps({"weights": weights, **result.to_dict()}))
        return
    for item in result.items:
        best = ", ".join(f"{name} {p:.3f}" for name, p in zip(item.classes, item.probabilities))
        console.print(f"{item.image}: {best}", highlight=False, soft_wrap=True)
    if result.skipped:
        err_console.print(f"skipped {len(result.skipped)} unreadable file(s):", highlight=False)
        for path, why in result.skipped:
            err_console.print(f"  {path}: {why}", highlight=False, soft_wrap=True)


@user_errors
def export_cmd(
    weights: str = typer.Argument(..., help=WEIGHTS_HELP),
    output: Path = typer.Option(None, "-o", "--out", help="the .safetensors file to write"),
    onnx: Path = typer.Option(None, "--onnx", help="an ONNX file to write, checked against PyTorch in ONNX Runtime"),
    int8: bool = typer.Option(False, "--int8", help="quantize the ONNX file to int8 (needs --calibrate)"),
    calibrate: str = typer.Option(None, "--calibrate", help="int8 calibration images: digits or a folder"),
    calibration_images: int = typer.Option(256, "--calibration-images", help="how many images calibrate int8"),
) -> None:
    """Write a self-describing .safetensors (weights plus network, classes and preprocessing in its
    header) and/or an ONNX file (any batch size; input "image", output "logits")."""
    from ..extras import require
    from ..weights import export
    from ..weights.load import open_weights

    if onnx is not None:
        require("deploy", "--onnx")
    if output is None and onnx is None:
        raise BadValue("say what to write: -o FILE.safetensors and/or --onnx FILE.onnx")
    if int8 and (onnx is None or calibrate is None):
        raise BadValue("--int8 quantizes the ONNX file: give --onnx FILE.onnx and --calibrate digits|FOLDER")
    model = open_weights(weights)
    cfg = model.pretrained_cfg
    about = f"{model.config.name}, {len(cfg['classes'])} classes, {cfg['input_size'][1]}x{cfg['input_size'][2]} input"
    if output is not None:
        export(model, output)
        console.print(f"wrote {output}: {about}", highlight=False, soft_wrap=True)
    if onnx is not None and int8:
        from ..deploy.quantize import export_onnx_int8, load_calibration
        from ..weights.preprocessing import preprocessing_of

        batches = load_calibration(calibrate, preprocessing_of(model), calibration_images)
        check = export_onnx_int8(model, onnx, batches)
        console.print(f"wrote {onnx}: {about}, int8 (calibrated on {check['images']} images); top-1 agrees with "
                      f"PyTorch fp32 on {check['top1_agreement']:.1%} of them", highlight=False, soft_wrap=True)
    elif onnx is not None:
        from ..deploy.onnx import export_onnx

        check = export_onnx(model, onnx)
        console.print(f"wrote {onnx}: {about}, opset {check.opset}; ONNX Runtime matches PyTorch to "
                      f"{check.max_rel_diff:.1e} of the largest logit", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("weights")(weights_cmd)
    app.command("predict")(predict_cmd)
    app.command("export")(export_cmd)
