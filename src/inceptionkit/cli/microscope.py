"""``inceptionkit microscope`` (a site of what a network learned) and ``inceptionkit tour`` (the main job)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import BadValue
from .common import (
    MODEL_HELP,
    Bars,
    comma_list,
    console,
    interrupted,
    main_process,
    network_with_weights,
    user_errors,
)


def _pictures_in(site: Path) -> int:
    folder = site / "img"
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


RANK_LINE_EVERY = 30.0  # seconds between a torchrun rank's progress lines


def _progress(quiet: bool) -> Bars:
    """Bars in one process; under torchrun, a line per rank every :data:`RANK_LINE_EVERY` seconds, each
    with its count and time left (bars of several processes on one terminal would overwrite each other)."""
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    if ranks == 1:
        return Bars(quiet)
    return Bars(quiet, every=RANK_LINE_EVERY, prefix=f"rank {os.environ.get('RANK', '0')} of {ranks}: ")


@user_errors
def microscope_cmd(
    weights: str = typer.Argument(..., help=MODEL_HELP),
    output: Path = typer.Option(..., "-o", "--out", help="the site's folder (created; reused pictures stay)"),
    data: str = typer.Option("digits", "--data", help="examples and input images: digits, cifar10[:DIR], "
                             "fer2013:FILE.csv or an image folder"),
    layers: str = typer.Option(None, "--layers", help="comma-separated module names, or all (every stage); "
                               "default: the end of every stage"),
    per_branch: str = typer.Option("8", "--per-branch", help="channels shown per layer (per branch of an Inception "
                                   "module), or all"),
    steps: int = typer.Option(256, "--steps", help="feature visualization steps"),
    k: int = typer.Option(8, "--k", help="data set examples per channel"),
    max_images: int = typer.Option(None, "--max-images", help="examples from at most this many training images "
                                   "(a seeded sample; quicker on large data or large networks)"),
    dream_side: int = typer.Option(320, "--dream-side", help="longer side of the DeepDream photos, in pixels"),
    dream_frames: int = typer.Option(0, "--dream-frames", help="frames of a DeepDream zoom GIF (0: none)"),
    seed: int = typer.Option(0, "--seed", help="seeds the feature visualizations and the examples' sample"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars or lines"),
) -> None:
    """A static site of what a network learned: per layer and channel its feature visualization and top
    data set examples, activation grids, DeepDream; open OUTPUT/index.html. A second run renders only what
    is new."""
    from ..microscope import SiteSettings, build_site
    from ..microscope.site import ALL_CHANNELS

    if per_branch.strip().lower() == "all":
        per_branch = ALL_CHANNELS
    elif per_branch.strip().isdigit():
        per_branch = int(per_branch)
    else:
        raise BadValue(f"--per-branch takes a number of channels or all, got {per_branch!r}")
    if per_branch < 1 or steps < 1 or k < 1:
        raise BadValue(f"--per-branch, --steps and --k must be at least 1, got {per_branch}, {steps}, {k}")
    if dream_side < 16:
        raise BadValue(f"--dream-side must be at least 16 pixels, got {dream_side}")
    if dream_frames < 0:
        raise BadValue(f"--dream-frames must be 0 (no GIF) or more, got {dream_frames}")
    if max_images is not None and max_images < 1:
        raise BadValue(f"--max-images must be at least 1, got {max_images}")
    net = network_with_weights(weights, None)
    settings = SiteSettings(channels=per_branch, steps=steps, k=k, max_images=max_images, dream_side=dream_side,
                            dream_frames=dream_frames, seed=seed)
    chosen = None
    if layers:
        chosen = "all" if layers.strip().lower() == "all" else list(comma_list(layers, "--layers"))
    try:
        with _progress(quiet) as bars:
            site = build_site(net, output, data=data, layers=chosen, settings=settings, progress=bars,
                              estimate=None if quiet else lambda plan: bars.note(f"estimate: {plan.describe()}"))
    except KeyboardInterrupt:
        raise interrupted(f"{_pictures_in(output)} finished pictures are kept in {output / 'img'}, and every "
                          f"page written links only to what exists") from None
    if not main_process():
        return
    layers_ = f"{len(site.layers)} layer{'s' if len(site.layers) != 1 else ''}"
    console.print(f"wrote {len(site.pages)} pages for {layers_}: {site.rendered} pictures made, "
                  f"{site.reused} reused, {site.seconds:.0f} s; open {site.index}", highlight=False, soft_wrap=True)


@user_errors
def tour_cmd(
    out: Path = typer.Option(Path("runs/tour"), "-o", "--out", help="the tour's folder"),
    epochs: int = typer.Option(None, "--epochs", help="training epochs (default 8)"),
    width: float = typer.Option(None, "--width", help="channel width multiplier of the network (default 0.25)"),
    max_steps: int = typer.Option(None, "--max-steps", hidden=True),
    per_branch: int = typer.Option(None, "--per-branch", hidden=True),
    steps: int = typer.Option(None, "--steps", hidden=True),
    dream_frames: int = typer.Option(None, "--dream-frames", hidden=True),
) -> None:
    """The newcomer's tour: build GoogLeNet for 32x32 images, count it, train it on the embedded digits,
    look inside it, and write OUT/index.html that ties it together (about 3 minutes on 2 CPU cores)."""
    from dataclasses import replace

    from .. import tour
    from ..runs import read_metrics
    from .cost import _print_comparison
    from .models import print_summary
    from .train import _Console

    settings = tour.TourSettings()
    site = replace(settings.site, **{key: value for key, value in
                                     dict(channels=per_branch, steps=steps, dream_frames=dream_frames).items()
                                     if value is not None})
    chosen = dict(epochs=epochs, width=width, max_steps=max_steps)
    settings = replace(settings, site=site, **{key: value for key, value in chosen.items() if value is not None})
    console.rule(f"1/4 the network: {tour.MODEL}, width {settings.width:g}")
    summary = tour.summary(settings)
    print_summary(summary, tour.MODEL)
    console.rule("2/4 why 1x1 reductions: GoogLeNet's inception (3a)")
    _print_comparison(tour.comparison(), as_json=False)
    console.rule(f"3/4 training on the embedded digits, {settings.epochs} epochs")
    trained = read_metrics(out / "run") is not None
    try:
        with _Console() as report:
            metrics = tour.train(settings, out, report)
    except KeyboardInterrupt:
        raise interrupted(f"training stopped; its last finished epoch is kept in {out / 'run'}",
                          "run the tour again to continue training from there") from None
    console.print(f"{'already trained: ' if trained else ''}test top-1 {metrics['test_top1']:.4f} (best validation "
                  f"top-1 {metrics['val_top1']:.4f} at epoch {metrics['best_epoch']}), {metrics['seconds']:.0f} s; "
                  f"run in {metrics['run_dir']}", highlight=False)
    console.rule(f"4/4 looking inside: {', '.join(settings.layers)}")
    try:
        with Bars() as bars:
            site = tour.look_inside(settings, out, progress=bars)
    except KeyboardInterrupt:
        raise interrupted(f"the trained network and {_pictures_in(out / 'microscope')} finished pictures are kept "
                          f"in {out}") from None
    console.print(f"microscope: {len(site.pages)} pages, {site.rendered} pictures made, {site.reused} reused, "
                  f"{site.seconds:.0f} s", highlight=False)
    index = tour.write_index(out, settings, metrics, site, summary)
    console.print(f"open {index.resolve()}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("microscope")(microscope_cmd)
    app.command("tour")(tour_cmd)
