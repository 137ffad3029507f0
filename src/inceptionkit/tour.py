"""The tour: a newcomer's first run, from nothing to a trained network and a site of what it learned.

On the embedded digits: the CIFAR-style GoogLeNet (width-reduced) is trained through the training
loop, then the microscope writes its site (feature visualizations, data set examples, activation
grids, DeepDream on scikit-learn's photos), and ``index.html`` ties it together with the network's
summary, the naive-vs-reduced comparison, the training curves and the test split's confusion matrix.
The command line (``inceptionkit tour``) prints each step; this module returns data and writes files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .cost import naive_vs_reduced
from .cost import summary as summarize
from .cost.compare import COMPARISON_HEADER
from .cost.summary import HEADER, table_cells, totals_lines
from .errors import BadValue
from .factory import create_model
from .microscope import build_site, html
from .microscope.site import Site, SiteSettings, layer_page_path, previews
from .runs import METRICS_FILE, has_checkpoint, read_config, read_metrics
from .train import TrainConfig, fit
from .weights.load import load

MODEL = "googlenet_cifar"
# GoogLeNet's inception (3a): 192 channels of 28x28 in, (64, 96 -> 128, 16 -> 32, pool -> 32)
INCEPTION_3A = (192, 28, 64, 96, 128, 16, 32, 32)


@dataclass(frozen=True)
class TourSettings:
    """What the tour does: about 2 minutes on two CPU cores with AVX-512 and bf16, about 3.5 with
    AVX2 only (fp32 training), after the set-up. Six epochs of the one-cycle schedule reach 98-100%
    on the test split from any seed tried; the zoom GIF has eight frames."""

    width: float = 0.25
    epochs: int = 6
    max_steps: int | None = None  # cap on steps per epoch (tests)
    layers: tuple[str, ...] = ("inception3a", "inception4c", "inception5b")
    site: SiteSettings = field(default_factory=lambda: SiteSettings(
        channels=2, steps=128, k=6, images=3, dream_side=192, dream_octaves=3, dream_steps=8, dream_frames=8))
    seed: int = 0

    def model_kwargs(self) -> dict:
        return {"width": self.width}


def summary(settings: TourSettings):
    """The network's summary at its input size (:func:`inceptionkit.summary`)."""
    model = create_model(MODEL, **settings.model_kwargs())
    return summarize(model, tuple(model.pretrained_cfg["input_size"]), depth=1, title=MODEL)


def comparison():
    """The naive inception module against the one with 1x1 reductions, at GoogLeNet's inception (3a)."""
    return naive_vs_reduced(*INCEPTION_3A)


def train(settings: TourSettings, out: Path, report: Callable | None = None) -> dict:
    """Train the tour's network on the digits into ``out/run``; a run already finished there is reused,
    one interrupted is continued. Returns its metrics (``metrics.json``)."""
    run = Path(out) / "run"
    config = TrainConfig(model=MODEL, model_kwargs=settings.model_kwargs(), epochs=settings.epochs,
                         max_steps=settings.max_steps, seed=settings.seed, out=str(run))
    finished = read_metrics(run)
    if finished is not None:
        done = read_config(run) or {}
        wanted = {"model_kwargs": config.model_kwargs, "epochs": config.epochs, "max_steps": config.max_steps,
                  "seed": config.seed}
        differ = {key: done.get(key) for key, value in wanted.items() if done.get(key) != value}
        if differ:
            held = ", ".join(f"{key} {value}" for key, value in differ.items())
            raise BadValue(f"{run} holds a finished tour run with other settings ({held}): choose another "
                             "--out, or delete that folder to train again")
        return finished
    resume = run if has_checkpoint(run) else None
    return fit(replace(config, out=None) if resume else config, resume=resume, report=report)


def look_inside(settings: TourSettings, out: Path, progress=None) -> Site:
    """The microscope site of the trained network, in ``out/microscope``."""
    model = load(Path(out) / "run")
    return build_site(model, Path(out) / "microscope", data="digits", layers=settings.layers,
                      settings=settings.site, title=f"{MODEL} (width {settings.width:g}) on digits",
                      progress=progress)


def write_index(out: Path, settings: TourSettings, metrics: dict, site: Site, result=None) -> Path:
    """``out/index.html``: the network (``result``: its :func:`summary`, made when not given), why 1x1
    reductions, training, and links into the site."""
    out = Path(out)
    page = out / "index.html"
    run, micro = out / "run", out / "microscope"
    result = result or summary(settings)
    cmp = comparison()
    accuracy = metrics["test_top1"]
    stats = [(f"{accuracy:.2%}", "test accuracy"), (f"{result.total_params:,}", "parameters"),
             (f"{result.total_macs / 1e6:,.1f} M", "multiply-adds"),
             (f"{metrics['epochs']} epochs", f"{metrics['seconds']:.0f} s of training")]
    links = {layer: html.rel(layer_page_path(micro, layer), out) for layer in site.layers}
    body = [
        f'<h1>The tour: {MODEL} on handwritten digits</h1>'
        '<p class="lead">Built, counted, trained and looked inside by <code>inceptionkit tour</code>. Every '
        "figure on this page was computed by this run.</p>",
        '<div class="stats">' + "".join(f"<div class=stat><b>{html.esc(v)}</b><span>{html.esc(k)}</span></div>"
                                       for v, k in stats) + "</div>",
        "<h2>1. The network</h2>"
        f'<p>The CIFAR-style GoogLeNet (32x32 input, no stem downsampling) at width {settings.width:g}: '
        f'nine Inception modules. {html.link(html.rel(micro / "index.html", out), "Its module graph")} is in the '
        "microscope.</p>"
        '<div class="panel">' + html.table(HEADER, table_cells(result), {3, 4, 5}) + "<p>"
        + "<br>".join(html.esc(line) for line in totals_lines(result)) + "</p></div>",
        "<h2>2. Why 1x1 reductions</h2>"
        "<p>GoogLeNet's inception (3a) with and without the 1x1 convolutions that reduce the channels "
        "before the 3x3 and 5x5 ones (Table 1 of the paper, computed).</p>"
        '<div class="panel">' + html.table(COMPARISON_HEADER, cmp.table_cells(), {2, 3, 4})
        + f"<p>{html.esc(cmp.verdict())}</p></div>",
        "<h2>3. Training</h2>"
        f"<p>{metrics['epochs']} epochs on the embedded digits ({metrics['recipe']} recipe). Test split: top-1 "
        f"<b>{accuracy:.4f}</b>, top-5 {metrics['test_top5']:.4f}; best validation top-1 "
        f"{metrics['val_top1']:.4f} at epoch {metrics['best_epoch']} (the checkpoint tested).</p>"
        '<div class="gallery wide">'
        f'<figure><img src="{html.esc(html.rel(run / "curves.png", out))}" alt="training curves">'
        "<figcaption>loss and accuracy per epoch</figcaption></figure>"
        f'<figure><img src="{html.esc(html.rel(run / "confusion.png", out))}" alt="confusion matrix">'
        "<figcaption>confusion matrix of the test split</figcaption></figure></div>",
        "<h2>4. Inside the network</h2>"
        f'<p>The {html.link(html.rel(micro / "index.html", out), "microscope")}: for each layer below, what excites '
        "its channels (feature visualization) and the training images that excite them most, the "
        "branches of each module side by side; "
        f'{html.link(html.rel(micro / "activations.html", out), "activation grids")}'
        f' and a {html.link(html.rel(micro / "dream.html", out), "DeepDream gallery")}.</p>'
        + previews(site.previews, links, out),
    ]
    if site.inputs:
        figures = [_figure(site.inputs[0], out, "a test image", "pixels")]
        figures += [_figure(site.grids[0, layer], out, f"{layer}: one tile per channel", "pixels grid")
                    for layer in site.layers if (0, layer) in site.grids]
        body.append(f'<div class="row">{"".join(figures)}</div>')
    if site.dream_gif is not None:
        body.append('<h2>5. DeepDream</h2>'
                    f'<figure><img class="photo" src="{html.esc(html.rel(site.dream_gif, out))}" alt="DeepDream zoom">'
                    f"<figcaption>scikit-learn's flower photo dreamed on {html.esc(site.layers[-1])}, zoomed and "
                    "dreamed again</figcaption></figure>")
    html.write_style(out / "style.css")
    return html.write_page(page, "inceptionkit tour", "\n".join(body), out / "style.css",
                        [("tour", page), ("microscope", micro / "index.html"), ("training run", run / METRICS_FILE)])


def _figure(path: Path, page_folder: Path, caption: str, klass: str = "") -> str:
    return (f'<figure><img class="{klass}" src="{html.esc(html.rel(path, page_folder))}" alt="{html.esc(caption)}">'
            f"<figcaption>{html.esc(caption)}</figcaption></figure>")
