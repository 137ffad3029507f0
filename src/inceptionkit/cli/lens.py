"""``inceptionkit activations`` and ``visualize``: looking inside a network with weights."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, user_errors

MODEL_HELP = "NAME[:SOURCE] (inception_v3:torchvision), a run folder or a weights file"


def _parse_channels(text: str) -> list[int]:
    """'0-15' -> 0..15; '3,7,9' -> [3, 7, 9]."""
    picked = []
    for part in text.split(","):
        start, dash, end = part.strip().partition("-")
        try:
            picked += list(range(int(start), int(end) + 1)) if dash else [int(start)]
        except ValueError:
            raise ValueError(f"--channels takes numbers and ranges like 0-15 or 3,7,9, got {text!r}") from None
    if not picked or min(picked) < 0:
        raise ValueError(f"--channels takes non-negative channel numbers, got {text!r}")
    return picked


def _output(path: Path) -> Path:
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"-o {path}: write a .png (or .jpg)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    return path


@user_errors
def activations_cmd(
    image: Path = typer.Argument(..., help="an image file"),
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    layer: str = typer.Option(..., "--layer", help="a dotted module name (`inceptionkit summary NAME --depth 3`)"),
    output: Path = typer.Option(..., "-o", "--output", help="the grid picture to write (.png)"),
    cols: int = typer.Option(None, "--cols", help="tiles per row; default near-square"),
    normalize: str = typer.Option("tile", "--normalize", help="tile (each channel its own range) or global"),
    labels: bool = typer.Option(False, "--labels/--no-labels", help="write each channel's number"),
) -> None:
    """A layer's output for one image, one tile per channel, the image preprocessed as the weights expect."""
    from ..lens import activations, grid
    from ..weights.load import open_weights

    _output(output)
    net = open_weights(model).eval()
    act = activations(net, [image], layer)[layer][0]
    if act.dim() != 3:
        raise ValueError(f"{layer} gives {tuple(act.shape)}, not channels of a grid: pick a convolutional layer")
    grid(act, cols=cols, normalize=normalize, labels=labels).save(output)
    console.print(f"wrote {output}: {layer}, {act.shape[0]} channels of {act.shape[1]}x{act.shape[2]}",
                  highlight=False)


@user_errors
def visualize_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    layer: str = typer.Option(..., "--layer", help="a dotted module name"),
    channels: str = typer.Option("0-7", "--channels", help="channels to render, one image each: 0-15 or 3,7,9"),
    output: Path = typer.Option(..., "-o", "--output", help="the sheet to write (.png)"),
    steps: int = typer.Option(256, "--steps"),
    size: int = typer.Option(None, "--size", help="image side; default: the model's input side"),
    param: str = typer.Option("fourier", "--param", help="fourier (colour-decorrelated) or pixels"),
    lr: float = typer.Option(0.05, "--lr"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Images optimized to excite channels of a layer (feature visualization), one per channel, on one sheet."""
    from tqdm.auto import tqdm

    from ..lens import image_sheet, objectives, render
    from ..weights.load import open_weights

    _output(output)
    picked = _parse_channels(channels)
    net = open_weights(model).eval()
    with tqdm(total=steps, desc=f"{layer} {channels}", unit="step", leave=False, disable=None) as bar:
        def progress(step, total, values):
            bar.update(1)
            bar.set_postfix(objective=f"{values.mean().item():.3f}")

        result = render(net, objectives.channel(layer, picked), steps=steps, size=size, param=param, lr=lr,
                        seed=seed, progress=progress)
    image_sheet(result.images, labels=[f"{layer}:{c}" for c in picked]).save(output)
    start, end = result.trace[0].mean().item(), result.trace[-1].mean().item()
    console.print(f"wrote {output}: {len(picked)} images, objective {start:.3f} -> {end:.3f} in {steps} steps",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("activations")(activations_cmd)
    app.command("visualize")(visualize_cmd)
