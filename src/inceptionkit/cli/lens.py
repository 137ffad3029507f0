"""``inceptionkit activations`` and ``visualize``: looking inside a network with weights."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import BadValue
from .common import MODEL_HELP, WEIGHTS_HELP, Bars, console, interrupted, network_with_weights, user_errors


def _parse_channels(text: str) -> list[int]:
    """'0-15' -> 0..15; '3,7,9' -> [3, 7, 9]."""
    picked = []
    for part in text.split(","):
        start, dash, end = part.strip().partition("-")
        try:
            picked += list(range(int(start), int(end) + 1)) if dash else [int(start)]
        except ValueError:
            raise BadValue(f"--channels takes numbers and ranges like 0-15 or 3,7,9, got {text!r}") from None
    if not picked or min(picked) < 0:
        raise BadValue(f"--channels takes non-negative channel numbers, got {text!r}")
    return picked


def _output(path: Path, suffixes: tuple[str, ...] = (".png", ".jpg", ".jpeg")) -> Path:
    from ..files import check_folder

    if path.suffix.lower() not in suffixes:
        raise BadValue(f"-o {path}: write a {' or '.join(suffixes)} file")
    return check_folder(path)


@user_errors
def activations_cmd(
    model: str = typer.Argument(..., help=MODEL_HELP),
    image: Path = typer.Argument(..., help="an image file"),
    weights: str = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    layer: str = typer.Option(..., "--layer", help="a dotted module name (`inceptionkit summary NAME --depth 3`)"),
    output: Path = typer.Option(..., "-o", "--out", help="the grid picture to write (.png)"),
    cols: int = typer.Option(None, "--cols", help="tiles per row; default near-square"),
    normalize: str = typer.Option("tile", "--normalize", help="tile (each channel its own range) or global"),
    labels: bool = typer.Option(False, "--labels/--no-labels", help="write each channel's number"),
) -> None:
    """A layer's output for one image, one tile per channel, the image preprocessed as the weights expect."""
    from ..lens import activations, grid

    _output(output)
    net = network_with_weights(model, weights)
    act = activations(net, [image], layer)[layer][0]
    if act.dim() != 3:
        raise BadValue(f"{layer} gives {tuple(act.shape)}, not channels of a grid: pick a convolutional layer")
    grid(act, cols=cols, normalize=normalize, labels=labels).save(output)
    console.print(f"wrote {output}: {layer}, {act.shape[0]} channels of {act.shape[1]}x{act.shape[2]}",
                  highlight=False)


@user_errors
def visualize_cmd(
    model: str = typer.Argument(..., help=MODEL_HELP),
    weights: str = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    layer: str = typer.Option(..., "--layer", help="a dotted module name"),
    channels: str = typer.Option("0-7", "--channels", help="channels to render, one image each: 0-15 or 3,7,9"),
    output: Path = typer.Option(..., "-o", "--out", help="the sheet to write (.png)"),
    steps: int = typer.Option(256, "--steps", help="optimization steps"),
    size: int = typer.Option(None, "--size", help="image side; default: the model's input side"),
    param: str = typer.Option("fourier", "--param", help="fourier (colour-decorrelated) or pixels"),
    lr: float = typer.Option(0.05, "--lr", help="Adam learning rate"),
    seed: int = typer.Option(0, "--seed", help="seeds the starting images and the jitter"),
    grey: bool = typer.Option(False, "--grey", help="render in grey (a network trained on grey images shown in "
                                                    "three channels, such as the digits, never saw colour)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar or line"),
) -> None:
    """Images optimized to excite channels of a layer (feature visualization), one per channel, on one sheet."""
    from ..lens import image_sheet, objectives, render

    _output(output)
    picked = _parse_channels(channels)
    net = network_with_weights(model, weights)
    what = f"{layer}: feature visualization, {len(picked)} channels"
    try:
        with Bars(quiet) as bars:
            result = render(net, objectives.channel(layer, picked), steps=steps, size=size, param=param, lr=lr,
                            seed=seed, progress=lambda step, total, values: bars(what, step, total), grey=grey)
    except KeyboardInterrupt:
        raise interrupted(f"nothing was written to {output}", "run the command again") from None
    image_sheet(result.images, labels=[f"{layer}:{c}" for c in picked]).save(output)
    start, end = result.trace[0].mean().item(), result.trace[-1].mean().item()
    console.print(f"wrote {output}: {len(picked)} images, objective {start:.3f} -> {end:.3f} in {steps} steps",
                  highlight=False)


@user_errors
def examples_cmd(
    model: str = typer.Argument(..., help=MODEL_HELP),
    weights: str = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    data: str = typer.Option("digits", "--data", help="digits, cifar10[:DIR], fer2013:FILE.csv or an image folder"),
    layer: str = typer.Option(..., "--layer", help="a dotted module name"),
    channels: str = typer.Option("0-7", "--channels", help="channels, one row each: 0-7 or 3,7,9"),
    k: int = typer.Option(8, "--k", help="examples per channel"),
    reduce: str = typer.Option("max", "--reduce", help="max (the most excited position) or mean"),
    crop: bool = typer.Option(True, "--crop/--no-crop", help="the receptive field around the maximum"),
    output: Path = typer.Option(..., "-o", "--out", help="the sheet to write (.png)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar or line"),
) -> None:
    """The images of a data set that excite each channel most (one row per channel), cropped to the unit's
    receptive field."""
    import torch

    from ..data import load_data
    from ..lens import image_sheet
    from ..lens.examples import example_crops, top_examples
    from ..weights.preprocessing import preprocessing_of

    _output(output)
    picked = _parse_channels(channels)
    net = network_with_weights(model, weights)
    prep = preprocessing_of(net)
    splits = load_data(data, prep.input_size, mean=prep.mean, std=prep.std, augment=False,
                       interpolation=prep.interpolation, crop_pct=prep.crop_pct)
    what = f"{layer}: examples of {len(picked)} channels in {len(splits.train)} images"
    try:
        with Bars(quiet) as bars:
            found = top_examples(net, splits.train, layer, picked, k=k, reduce=reduce, crop=crop,
                                 progress=lambda done, total: bars(what, done, total))
    except KeyboardInterrupt:
        raise interrupted(f"nothing was written to {output}", "run the command again") from None
    crops = example_crops(splits.train, found, splits.mean, splits.std)
    tiles = [tile for c in picked for tile in crops[c]]
    labels = [f"{c}: {example.score:.2f}" for c in picked for example in found[c]]
    image_sheet(torch.stack(tiles), labels=labels, cols=k).save(output)
    box = found[picked[0]][0].box
    whole = tuple(splits.train[0][0].shape[-2:])
    shown = (f"each tile the whole image, the {box[2]}x{box[3]} pixels the unit sees outlined in orange"
             if tiles[0].shape[-2] > box[2] * 2 and crop else f"crops of {box[2]}x{box[3]} of {whole[0]}x{whole[1]}")
    score = "highest value in the image" if reduce == "max" else "mean over the image"
    console.print(f"wrote {output}: {layer}, {len(picked)} channels x {k} examples from {len(splits.train)} "
                  f"images of {splits.name}; one row per channel, best first; {shown}; labels: channel: its "
                  f"activation ({score})", highlight=False, soft_wrap=True)


@user_errors
def dream_cmd(
    model: str = typer.Argument(..., help=MODEL_HELP),
    image: Path = typer.Argument(None, help="an image; default: scikit-learn's china.jpg photo"),
    weights: str = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    layer: list[str] = typer.Option(..., "--layer", help="a layer to amplify (repeat for several), or LAYER:CHANNEL"),
    output: Path = typer.Option(..., "-o", "--out", help=".png (one dream) or .gif (with --frames)"),
    frames: int = typer.Option(1, "--frames", help="zoom feedback frames (write a .gif)"),
    zoom: float = typer.Option(1.05, "--zoom", help="zoom between frames"),
    rotate: float = typer.Option(0.0, "--rotate", help="degrees turned between frames"),
    octaves: int = typer.Option(4, "--octaves", help="scales, smallest first, each dreamed on"),
    octave_scale: float = typer.Option(1.4, "--octave-scale", help="size ratio between octaves"),
    steps: int = typer.Option(10, "--steps", help="steps per octave"),
    step_size: float = typer.Option(0.01, "--step-size", help="gradient ascent step, on normalized "
                                                                  "gradients"),
    max_side: int = typer.Option(512, "--max-side", help="shrink the image so its longer side is at most this"),
    seed: int = typer.Option(0, "--seed", help="seeds the jitter"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar or line"),
) -> None:
    """DeepDream: amplify what a layer sees in an image, octave by octave; --frames N makes a zoom feedback GIF."""
    from torchvision.transforms.functional import to_pil_image

    from ..lens.dream import dream, dream_zoom, load_picture
    from ..weights.preprocessing import preprocessing_of

    if frames > 1 and output.suffix.lower() != ".gif":
        raise BadValue(f"--frames {frames} makes an animation: write a .gif, not {output.name}")
    _output(output, (".png", ".jpg", ".jpeg", ".gif"))
    net = network_with_weights(model, weights)
    x = load_picture(image, preprocessing_of(net).colour, max_side)
    options = dict(octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size, seed=seed)
    objective = list(layer) if len(layer) > 1 else layer[0]
    what = f"DeepDream, {frames} frames" if frames > 1 else f"DeepDream, {octaves} octaves of {steps} steps"
    try:
        with Bars(quiet) as bars:
            def progress(done, total):
                bars(what, done, total)

            if frames > 1:
                dream_zoom(net, x, objective, frames=frames, zoom=zoom, rotate=rotate, output=output,
                           progress=progress, **options)
            else:
                to_pil_image(dream(net, x, objective, progress=progress, **options)).save(output)
    except KeyboardInterrupt:
        raise interrupted(f"nothing was written to {output}", "run the command again") from None
    size = f"{x.shape[2]}x{x.shape[1]}"
    what = f"{frames} frames" if frames > 1 else "one image"
    console.print(f"wrote {output}: {what}, {size}, {', '.join(layer)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("activations")(activations_cmd)
    app.command("visualize")(visualize_cmd)
    app.command("examples")(examples_cmd)
    app.command("dream")(dream_cmd)
