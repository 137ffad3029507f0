"""The microscope: a static site of everything a network learned, for any network and any weights.

An index with the module graph (each chosen module a link), parameters and multiply-adds per
module; a page per chosen layer with, per channel, its feature visualization and the data set's
images that excite it most, cropped to the unit's receptive field (the branches of an Inception
module side by side); a page of activation grids for a few input images; a DeepDream gallery.
Every picture goes through a :class:`~.store.PictureStore`, so a second run renders only what is new.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset
from torchvision.transforms.functional import to_pil_image

from ..cost import summary
from ..cost.diagram import layout, to_svg
from ..cost.graph import collapse_repeats, layer_graph
from ..data import load_data
from ..errors import BadValue
from ..files import check_output
from ..lens import activations, grid, objectives, render
from ..lens.activations import find_layers, run, watching
from ..lens.batching import MOST, BatchChoice, fastest_batch, memory_bound, render_step_time
from ..lens.dream import dream, dream_zoom, load_picture, save_gif
from ..lens.examples import example_crops, merge_examples, receptive_field, top_examples_of_layers
from ..lens.grid import image_sheet
from ..probe import dims
from ..train import distributed
from ..weights.preprocessing import network_identity, preprocessing_of
from . import html
from .store import PictureStore, png_text

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class SiteSettings:
    """What the pictures are made with (each kind of picture is keyed by the fields it depends on, see
    ``DEPENDS``; ``batch`` changes no picture, only the speed)."""

    channels: int = 8  # per layer; per branch for a module whose branches are concatenated
    steps: int = 256  # feature visualization steps
    size: int | None = None  # feature visualization side; None: the model's input side
    param: str = "fourier"
    lr: float = 0.05
    k: int = 8  # data set examples per channel
    max_images: int | None = None  # examples from at most this many training images (a seeded sample); None: all
    images: int = 4  # input images on the activations page
    dream_side: int = 320  # longer side of the DeepDream photos
    dream_octaves: int = 3
    dream_steps: int = 10
    dream_frames: int = 0  # zoom feedback frames of a GIF on the last layer; 0: no GIF
    seed: int = 0
    batch: int | None = None  # channels rendered at once; None: the fastest per channel, measured per layer


@dataclass(frozen=True)
class Branch:
    """A branch of a module whose output is its branches' outputs concatenated: channels
    ``first .. first + count - 1`` of the module's output are this branch's."""

    name: str
    first: int
    count: int


@dataclass
class Site:
    """What :func:`build_site` wrote: the index, every page, and how many pictures it made or found."""

    index: Path
    pages: list[Path]
    rendered: int
    reused: int
    seconds: float
    layers: list[str] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)  # the activations page's input images
    grids: dict[tuple[int, str], Path] = field(default_factory=dict)  # (input, layer) -> activation grid
    dream_gif: Path | None = None
    previews: dict[str, list[Path]] = field(default_factory=dict)  # layer -> its feature visualizations


def default_layers(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """The end of each stage (the modules of timm's ``feature_info``: googlenet's conv1, conv3,
    inception3b, inception4e, inception5b); for a model without it, its top-level modules with weights
    that output feature maps."""
    info = getattr(model, "feature_info", None)
    if info:
        return [stage["module"] for stage in info]
    named = [name for name, module in model.named_children() if any(True for _ in module.parameters())]
    with torch.no_grad(), watching(model, named, stop=False) as seen:
        shapes = run(model, sample, seen)  # modules that do not run in eval mode (aux heads) are not in it
    return [name for name in named if name in shapes and shapes[name].dim() == 4]


def all_layers(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """Every stage of the trunk with weights that outputs feature maps (googlenet: conv1, conv2, conv3 and
    the nine Inception modules; pools and LRN repeat what they are given); for a model without a trunk,
    :func:`default_layers`."""
    trunk = [name for name in getattr(model, "trunk", None) or []
             if any(True for _ in getattr(model, name).parameters())]
    if not trunk:
        return default_layers(model, sample)
    with torch.no_grad(), watching(model, trunk, stop=False) as seen:
        shapes = run(model, sample, seen)
    return [name for name in trunk if name in shapes and shapes[name].dim() == 4]


ALL_CHANNELS = 1 << 30  # SiteSettings.channels for every channel of every branch


def branches(model: nn.Module, layer: str, sample: torch.Tensor) -> list[Branch]:
    """The branches of ``layer`` when its output is exactly its children's outputs concatenated in order
    (an Inception module, checked on ``sample``); [] otherwise (a residual block, a convolution)."""
    module = find_layers(model, [layer])[layer]
    children = [name for name, _ in module.named_children()]
    if len(children) < 2:
        return []
    names = [f"{layer}.{child}" for child in children]
    try:
        with torch.no_grad():
            out = activations(model, sample, [layer, *names])
    except ValueError:  # a child the forward does not call: not a concatenation of branches
        return []
    parts = [out[name] for name in names]
    if any(p.dim() != 4 or p.shape[-2:] != out[layer].shape[-2:] for p in parts):
        return []
    joined = torch.cat(parts, dim=1)
    if joined.shape != out[layer].shape or not torch.equal(joined, out[layer]):
        return []
    found, first = [], 0
    for child, part in zip(children, parts):
        found.append(Branch(child, first, part.shape[1]))
        first += part.shape[1]
    return found


def chosen_channels(total: int, groups: list[Branch], per_group: int) -> list[tuple[str | None, list[int]]]:
    """The channels a layer page shows: the first ``per_group`` of each branch, or of the layer."""
    if groups:
        return [(b.name, list(range(b.first, b.first + min(per_group, b.count)))) for b in groups]
    return [(None, list(range(min(per_group, total))))]


EXAMPLES_LAYOUT = 2  # part of the examples' key: raised when the way a strip is drawn changes
DEPENDS = {  # the settings each kind of picture is made with (and so keyed by)
    "visualization": ("steps", "size", "param", "lr", "seed"),
    "examples": ("k", "max_images", "seed"),
    "input": (),
    "activations": (),
    "photo": ("dream_side",),
    "dream": ("dream_side", "dream_octaves", "dream_steps", "seed"),
    "dream-zoom": ("dream_side", "dream_octaves", "dream_steps", "dream_frames", "seed"),
}


class _Builder:
    """The state of one site build: the network, its data, the store, and the pages written."""

    def __init__(self, model, out: Path, data, settings: SiteSettings, title: str, progress: Progress | None):
        self.model, self.out, self.settings, self.title = model.eval(), out, settings, title
        self.prep = preprocessing_of(model)
        self.progress = progress or (lambda what, done, total: None)
        if isinstance(data, (str, Path)) or data is None:
            prep = self.prep
            data = load_data(data, prep.input_size, mean=prep.mean, std=prep.std, augment=False,
                             interpolation=prep.interpolation, crop_pct=prep.crop_pct)
        self.data = data
        if len(data.train) and not torch.equal(data.train[0][0], data.train[0][0]):
            raise BadValue(f"{data.name}'s training split is augmented (each read differs): the microscope needs "
                             "fixed images (load_data(..., augment=False))")
        self.pool = data.train  # where the examples come from
        if settings.max_images is not None and settings.max_images < len(data.train):
            order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(settings.seed))
            self.pool = Subset(data.train, sorted(order[:settings.max_images].tolist()))
        self.pool_key = [data.name, fingerprint(self.pool)]
        self.store = PictureStore(out / "img", network_identity(model))
        self.style = out / "style.css"
        self.extras: dict = {}  # what the activations and dream pages made, for Site
        self.batches: dict[str, BatchChoice] = {}  # layer -> the batch its renders use
        self.shown: dict[str, list[Path]] = {}  # layer -> its feature visualizations, for the index
        self.deferred: dict[Path, str] = {}  # pages written without links to pages not written yet
        # input images: the test split's, or the training split's when a small folder left the test split empty
        self.inputs = data.test if len(data.test) else data.train
        self.inputs_from = "test split" if len(data.test) else "training split"
        if not len(self.inputs):
            raise BadValue(f"{data.name} has no images to look at")
        self.sample = torch.stack([self.inputs[i][0] for i in range(min(2, len(self.inputs)))])
        self.grey = grey_images(data)  # then the feature visualizations are grey too
        self.inputs_key = [data.name, fingerprint(self.inputs)]

    def picture(self, kind: str, *what, suffix=".png") -> Path:
        """The file of a picture of ``kind``, keyed by ``what`` and the settings that kind depends on."""
        settings = asdict(self.settings)
        depends = {key: settings[key] for key in DEPENDS[kind]}
        if kind == "visualization" and self.grey:
            depends["grey"] = True
        if kind == "examples":
            depends["layout"] = EXAMPLES_LAYOUT
        return self.store.path(kind, *what, depends, suffix=suffix)

    def src(self, path: Path, page: Path) -> str:
        return html.rel(path, page.parent)

    # pictures ------------------------------------------------------------------------------------
    def batch_for(self, layer: str, todo: int) -> BatchChoice:
        """How many channels of ``layer`` to render at once, and in which memory layout: ``settings.batch``
        (contiguous), or the fastest per channel on this machine up to ``todo`` channels (measured once per
        layer and build)."""
        if layer not in self.batches:
            s = self.settings
            timer = render_step_time(self.model, layer, _output_of(self, layer).shape[1], s.size, s.param, self.grey)
            if s.batch:
                self.batches[layer] = BatchChoice(s.batch, timer(s.batch, False), {})
            else:
                side = s.size or self.prep.input_size[1]
                fits = memory_bound(self.model, layer, (self.prep.input_size[0], side, side))
                self.batches[layer] = fastest_batch(timer, most=max(1, min(MOST, todo)), fits=fits)
        return self.batches[layer]

    def visualizations(self, layer: str, channels: list[int],
                       progress: Callable[[int, int], None] | None = None) -> dict[int, Path]:
        """The feature visualizations of ``channels`` of ``layer``, those not made yet rendered in batches
        (:meth:`batch_for`). ``progress(steps done, steps)`` replaces the layer's own phase."""
        paths = {c: self.picture("visualization", layer, c) for c in channels}
        missing = self.store.missing(paths)
        s = self.settings
        what, total = f"{layer}: feature visualization, {len(missing)} channels", len(missing) * s.steps
        report = progress or (lambda done, steps: self.progress(what, done, steps))
        choice = None if s.batch or not missing else self.batch_for(layer, len(missing))
        size, channels_last = (choice.size, choice.channels_last) if choice else (s.batch or 1, False)
        for start in range(0, len(missing), size):
            batch = missing[start:start + size]

            def step(done: int, steps: int, values, before: int = start * s.steps) -> None:
                report(before + len(batch) * done, total)

            result = render(self.model, objectives.channel(layer, batch), steps=s.steps, size=s.size,
                            param=s.param, lr=s.lr, seed=s.seed, progress=step, grey=self.grey,
                            channels_last=channels_last)
            for c, image in zip(batch, result.images):
                self.store.save_image(paths[c], image_sheet(image[None], min_side=1, pad=0))
        return paths

    def examples(self, picks: dict[str, list[int]], share: tuple[int, int] = (0, 1),
                 merge: Callable[[dict], dict | None] | None = None) -> dict[str, dict[int, Path]]:
        """Data set examples of every layer's channels (``{layer: channels}``), those not made yet
        found in one pass over the data. A sharded build passes this process's ``share`` of the data and
        ``merge``, which joins every rank's finds and gives them to the one rank that writes them (None
        elsewhere)."""
        paths = {layer: {c: self.picture("examples", layer, c, self.pool_key) for c in channels}
                 for layer, channels in picks.items()}
        missing = {layer: found for layer in picks if (found := self.store.missing(paths[layer]))}
        if missing:
            what = f"data set examples of {', '.join(missing)}"
            found = top_examples_of_layers(self.model, self.pool, missing, k=self.settings.k, share=share,
                                           progress=lambda done, total: self.progress(what, done, total))
            if merge is not None:
                found = merge(found)
            for layer, by_channel in (found or {}).items():
                crops = example_crops(self.pool, by_channel, self.data.mean, self.data.std)
                for c, examples in by_channel.items():
                    scores = " ".join(f"{e.score:.3g}" for e in examples)
                    whole = crops[c][0].shape[-1] >= 2 * examples[0].box[3]  # whole images, the view outlined
                    cols = min(3, len(crops[c])) if whole else len(crops[c])  # large enough to see the outline
                    sheet = image_sheet(torch.stack(crops[c]), cols=cols, min_side=48)
                    self.store.save_image(paths[layer][c], sheet, text={"scores": scores})
        return paths

    def activation_grids(self, layers: list[str]) -> tuple[list[Path], dict[tuple[int, str], Path]]:
        """The input images and each one's activation grid at every layer with channels of maps."""
        count = min(self.settings.images, len(self.inputs))
        inputs = {i: self.picture("input", i, self.inputs_key) for i in range(count)}
        maps = [layer for layer in layers if _output_of(self, layer).dim() == 4]  # a grid needs channels of maps
        grids = {(i, layer): self.picture("activations", i, layer, self.inputs_key)
                 for i in range(count) for layer in maps}
        new_inputs, new_grids = self.store.missing(inputs), self.store.missing(grids)
        if new_inputs or new_grids:
            self.progress("activation grids", 0, len(new_inputs) + len(new_grids))
            x = torch.stack([self.inputs[i][0] for i in range(count)])
            mean = torch.tensor(self.data.mean).reshape(-1, 1, 1)
            std = torch.tensor(self.data.std).reshape(-1, 1, 1)
            for i in new_inputs:
                self.store.save_image(inputs[i], image_sheet((x[i] * std + mean)[None], min_side=96, pad=0))
            out = activations(self.model, x, sorted({layer for _, layer in new_grids})) if new_grids else {}
            for i, layer in new_grids:
                self.store.save_image(grids[i, layer], grid(out[layer][i]))
            self.progress("activation grids", len(new_inputs) + len(new_grids), len(new_inputs) + len(new_grids))
        return [inputs[i] for i in range(count)], grids

    def dreams(self, layers: list[str], share: tuple[int, int] | None = None
               ) -> tuple[list[Path], dict[tuple[str, str], Path], Path | None]:
        """DeepDream of the two sample photos at every layer, and the zoom GIF on the last layer. A sharded
        build's ``share=(rank, ranks)`` makes only that rank's part of the dreams (the GIF on the last
        rank) and leaves the photos to the pages."""
        s = self.settings
        photos = {name: self.picture("photo", name) for name in ("china.jpg", "flower.jpg")}
        dreamed = {(name, layer): self.picture("dream", name, layer) for name in photos for layer in layers}
        gif = self.picture("dream-zoom", "flower.jpg", layers[-1], suffix=".gif") if s.dream_frames else None
        pictures = {name: load_picture(None, self.prep.colour, s.dream_side, sample=name) for name in photos}
        if share is None:
            for name in self.store.missing(photos):
                self.store.save_image(photos[name], to_pil_image(pictures[name]))
        options = dict(octaves=s.dream_octaves, steps=s.dream_steps, seed=s.seed)
        if share is not None:  # dealt from every dream, not the missing ones: the ranks look at other times
            by_layer = sorted(dreamed, key=lambda pair: (layers.index(pair[1]), pair[0]))  # like costs in turn
            dreamed = {pair: dreamed[pair] for pair in shares(by_layer, *share)}
            gif = gif if share[0] == share[1] - 1 else None
        missing = self.store.missing(dreamed)
        for done, (name, layer) in enumerate(missing):
            self.progress("DeepDream", done, len(missing))
            self.store.save_image(dreamed[name, layer], to_pil_image(dream(self.model, pictures[name], layer,
                                                                           **options)))
            self.progress("DeepDream", done + 1, len(missing))
        if gif is not None and self.store.missing({0: gif}):
            def frame(done: int, total: int) -> None:
                self.progress("DeepDream zoom", done, total)

            frames = dream_zoom(self.model, pictures["flower.jpg"], layers[-1], frames=s.dream_frames,
                                progress=frame, **options)
            self.store.save(gif, lambda tmp: save_gif(frames, tmp))
        return list(photos.values()), dreamed, gif


def grey_images(data, count: int = 16) -> bool:
    """True when the data set's colour images are grey ones repeated in three channels (the digits): its
    first ``count`` training images, normalization undone, have equal channels."""
    if data.input_size[0] != 3 or not len(data.train):
        return False
    mean = torch.tensor(data.mean).reshape(-1, 1, 1)
    std = torch.tensor(data.std).reshape(-1, 1, 1)
    for i in range(min(count, len(data.train))):
        image = data.train[i][0] * std + mean
        if not torch.allclose(image, image[:1].expand_as(image), atol=1e-4):
            return False
    return True


def fingerprint(dataset) -> str:
    """A hash of every item of a data set: each file's path, size and modification time where the data
    set reads files (an image folder), else every image tensor. The data's part of a cache key."""
    digest = hashlib.sha256()
    files = _files(dataset)
    if files is not None:
        for path in files:
            stat = os.stat(path)
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    else:
        for i in range(len(dataset)):
            digest.update(dataset[i][0].numpy().tobytes())
    return digest.hexdigest()[:16]


def _files(dataset) -> list[str] | None:
    """The files behind each item, where the data set reads files (an image folder, or a subset of one)."""
    if isinstance(dataset, Subset):
        base = _files(dataset.dataset)
        return None if base is None else [base[i] for i in dataset.indices]
    samples = getattr(dataset, "samples", None)
    return [str(path) for path, _ in samples] if samples is not None else None


def build_site(
    model: nn.Module,
    out: str | Path,
    *,
    data=None,
    layers: Sequence[str] | str | None = None,
    settings: SiteSettings = SiteSettings(),
    title: str | None = None,
    progress: Progress | None = None,
    estimate: Callable[[Estimate], None] | None = None,
) -> Site:
    """Write the microscope site for ``model`` (any weights) into ``out``; return what was written.

    ``data``: "digits" (default), a data set spec or folder as ``inceptionkit train --data`` takes, or
    :class:`~inceptionkit.data.DataSplits` (examples come from its train split, input images from its
    test split). ``layers``: dotted module names (default: :func:`default_layers`; "all": every stage,
    :func:`all_layers`); ``settings.channels=ALL_CHANNELS`` shows every channel. Pictures already
    made for the same network, layer, channel and settings are reused. ``estimate`` receives an
    :class:`Estimate` of the feature visualizations' time before any is rendered (rank 0).
    """
    start = time.perf_counter()
    every = layers == "all" or list(layers or []) == ["all"]
    if layers and not every:
        find_layers(model, layers)  # unknown names fail here, before any work
    out = check_output(out, "folder")
    info = distributed.setup(next(model.parameters()).device.type)  # torchrun: this process's share
    try:
        model = model.to(info.device)
        distributed.broadcast_state(model, info)  # one network on every rank, even one drawn at random
        name = title or (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
        b = _Builder(model, out, data, settings, name, progress)  # refuses what it cannot use before any file
        if every:
            layers = all_layers(b.model, b.sample)
        else:
            layers = list(layers) if layers else default_layers(b.model, b.sample)
        _output_of(b, *layers)  # each must run in eval mode (ValueError names those that do not)
        out.mkdir(parents=True, exist_ok=True)
        picks = {layer: _picked_channels(b, layer) for layer in layers}
        if estimate is not None and info.is_main:
            estimate(estimate_visualizations(b, picks, info.world_size))
        shared = 0  # pictures the ranks' shares made, which rank 0's pages then find in the store
        if info.distributed:
            render_share(b, picks, info.rank, info.world_size)
            made = torch.tensor([b.store.rendered], device=info.device)
            torch.distributed.all_reduce(made)  # waits for every rank: their pictures are in the store
            if not info.is_main:
                return Site(out / "index.html", [], b.store.rendered, b.store.reused, time.perf_counter() - start,
                            layers)
            shared, b.store.rendered, b.store.reused = int(made.item()), 0, 0
        html.write_style(b.style)
        examples = b.examples(_shown(picks))
        pages = [_layer_page(b, layer, layers, picks[layer], examples[layer]) for layer in layers]
        pages.append(_activations_page(b, layers))
        pages.append(_dream_page(b, layers))
        index = _index_page(b, layers)
        html.write_deferred(b.deferred)  # the links to pages written after them
        return Site(index, [index, *pages], b.store.rendered + shared, b.store.reused - shared,
                    time.perf_counter() - start, layers, previews=b.shown, **b.extras)
    finally:
        distributed.cleanup(info)


@dataclass(frozen=True)
class Estimate:
    """What a build has to render and how long it should take: ``units`` feature visualizations to make
    (of ``layers`` layers), ``steps`` each, at ``seconds_per_channel_step`` (averaged over the units; each
    layer's time measured at the batch it renders with, ``batches``), shared by ``ranks`` processes."""

    units: int
    layers: int
    steps: int
    seconds_per_channel_step: float
    ranks: int
    batches: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.units * self.steps * self.seconds_per_channel_step / self.ranks

    def describe(self) -> str:
        if not self.units:
            return "every feature visualization is made already"
        minutes = self.seconds / 60
        when = f"{minutes:.0f} min" if minutes >= 1 else f"{self.seconds:.0f} s"
        ranks = f" on {self.ranks} processes" if self.ranks > 1 else ""
        layers = f"{self.layers} layer{'s' if self.layers != 1 else ''}"
        sizes = sorted(set(self.batches.values()))
        batches = " or ".join(map(str, sizes)) + " channel" + ("s" if sizes != [1] else "")
        return (f"{self.units} feature visualizations of {layers}, {self.steps} steps each: about {when}{ranks} "
                f"({1000 * self.seconds_per_channel_step:.0f} ms a channel and step, {batches} at once); the "
                f"data set examples' pass over the data comes on top")


def estimate_visualizations(b: _Builder, picks: dict[str, list[tuple[str | None, list[int]]]],
                            ranks: int = 1) -> Estimate:
    """The feature visualizations still to make, and their time: each layer's step measured at the batch
    its renders will use (:meth:`_Builder.batch_for`, whose choice the renders then keep)."""
    todo = {layer: b.store.absent({c: b.picture("visualization", layer, c) for c in channels})
            for layer, channels in _shown(picks).items()}
    todo = {layer: channels for layer, channels in todo.items() if channels}
    units = sum(map(len, todo.values()))
    chosen = {layer: b.batch_for(layer, -(-len(channels) // ranks)) for layer, channels in todo.items()}
    seconds = sum(len(todo[layer]) * choice.seconds_per_channel_step for layer, choice in chosen.items())
    return Estimate(units, len(todo), b.settings.steps, seconds / units if units else 0.0, ranks,
                    {layer: choice.size for layer, choice in chosen.items()})


def _shown(picks: dict[str, list[tuple[str | None, list[int]]]]) -> dict[str, list[int]]:
    """``{layer: every channel shown}`` from each layer's picks per branch."""
    return {layer: [c for _, channels in picked for c in channels] for layer, picked in picks.items()}


def shares(units: Sequence, rank: int, world_size: int) -> list:
    """This rank's share of ``units``: every ``world_size``-th from ``rank`` on, the same split on every
    rank (units of one layer cost alike, so dealing them out in turn balances the ranks)."""
    return list(units)[rank::world_size]


def render_share(b: _Builder, picks: dict[str, list[tuple[str | None, list[int]]]], rank: int,
                 world_size: int) -> None:
    """The pictures of one rank of a sharded build (torchrun): its share of the feature visualizations
    (each seeded by its unit, so the same picture whichever rank makes it), then its share of the data
    set examples' pass (every ``world_size``-th batch, all layers at once), the ranks' finds merged on
    rank 0, which writes them, then its share of the DeepDreams. What is in the store already is
    skipped, so a rerun of an interrupted build makes only what is missing."""
    units = [(layer, c) for layer, channels in _shown(picks).items() for c in channels]
    mine: dict[str, list[int]] = {}
    for layer, c in shares(units, rank, world_size):
        mine.setdefault(layer, []).append(c)
    todo = {layer: len(b.store.absent({c: b.picture("visualization", layer, c) for c in channels}))
            for layer, channels in mine.items()}
    what = f"feature visualizations, {sum(todo.values())} channels"  # the rank's whole share: one time left
    total, before = sum(todo.values()) * b.settings.steps, 0
    for layer, channels in mine.items():
        b.visualizations(layer, channels, lambda done, _, before=before: b.progress(what, before + done, total))
        before += todo[layer] * b.settings.steps

    def merge(found: dict) -> dict | None:
        parts = [None] * world_size if rank == 0 else None
        torch.distributed.gather_object(found, parts, dst=0)
        return merge_examples(parts, b.settings.k) if rank == 0 else None

    b.examples(_shown(picks), share=(rank, world_size), merge=merge)
    b.dreams(list(picks), share=(rank, world_size))


def layer_page_path(out: Path, layer: str) -> Path:
    """``out/layers/NAME.html`` (a ``/`` in a module name becomes ``_``)."""
    return out / "layers" / f"{layer.replace('/', '_')}.html"


def _nav(b: _Builder) -> list[tuple[str, Path]]:
    return [(b.title, b.out / "index.html"), ("activations", b.out / "activations.html"),
            ("DeepDream", b.out / "dream.html")]


def _picked_channels(b: _Builder, layer: str) -> list[tuple[str | None, list[int]]]:
    """The channels shown for ``layer``, by branch (:func:`chosen_channels`)."""
    out = _output_of(b, layer)
    groups = branches(b.model, layer, b.sample) if out.dim() == 4 else []
    return chosen_channels(out.shape[1], groups, b.settings.channels)


def _layer_page(b: _Builder, layer: str, layers: list[str], picked: list[tuple[str | None, list[int]]],
                examples: dict[int, Path]) -> Path:

    page = layer_page_path(b.out, layer)
    out = _output_of(b, layer)
    groups = branches(b.model, layer, b.sample) if out.dim() == 4 else []
    channels = [c for _, cs in picked for c in cs]
    vis = b.visualizations(layer, channels)
    b.shown[layer] = [vis[c] for c in channels]
    field = receptive_field(b.model, layer, b.prep.input_size) if out.dim() == 4 else None

    def card(c: int) -> str:
        scores = png_text(examples[c]).get("scores", "").split()
        about = (f"<p>top activations<br><b>{html.esc(scores[0])}</b> … {html.esc(scores[-1])}</p>" if scores else "")
        return (f'<div class="card"><h3>channel {c}</h3><div class="vis">'
                f'<img class="vis pixels" src="{html.esc(b.src(vis[c], page))}" alt="feature visualization of '
                f'{html.esc(layer)} channel {c}">{about}</div>'
                f'<img class="strip pixels" src="{html.esc(b.src(examples[c], page))}" alt="top examples of channel '
                f'{c}" title="activations: {html.esc(" ".join(scores))}"></div>')

    if groups:
        columns = []
        for (branch, cs), group in zip(picked, groups):
            about = (f"channels {group.first}-{group.first + group.count - 1} of the module's output "
                     f"({group.count}); the first {len(cs)} shown")
            cards = "\n".join(card(c) for c in cs)
            columns.append(f'<div class="branch"><h3>{html.esc(branch)}</h3><p>{about}</p>'
                           f'<div class="cards">{cards}</div></div>')
        body = '<div class="branches">' + "\n".join(columns) + "</div>"
    else:
        body = '<div class="cards">' + "\n".join(card(c) for c in channels) + "</div>"
    where = layers.index(layer)
    before = (html.link(html.rel(layer_page_path(b.out, layers[where - 1]), page.parent), f"← {layers[where - 1]}")
              if where else "")
    after = (html.link(html.rel(layer_page_path(b.out, layers[where + 1]), page.parent), f"{layers[where + 1]} →")
             if where + 1 < len(layers) else "")
    rf = f"; each unit sees {field.box[2]}x{field.box[3]} input pixels" if field else ""
    whole = b.prep.input_size[1] * b.prep.input_size[2]
    where = ("each shown whole with the pixels the most excited unit sees outlined in orange"
             if field and field.box[2] * field.box[3] * 4 < whole else "cropped around the most excited unit")
    grey = "; in grey, as the network was trained on grey images" if b.grey else ""
    intro = (f'<h1>{html.esc(layer)}</h1><p class="lead">{html.esc(b.title)} · output {dims(tuple(out.shape[1:]))}'
             f"{rf}. Each card: the image that excites the channel most (feature visualization, "
             f"{b.settings.steps} steps, {b.settings.param}{grey}) and the {b.settings.k} training images that "
             f"excite it most, {where}, with their activation.</p>")
    nav = f'<div class="nav"><span>{before}</span>{html.link("../index.html", "all layers")}<span>{after}</span></div>'
    return html.write_page(page, f"{layer} · {b.title}", intro + body + nav, b.style, _nav(b), b.deferred)


def _output_of(b: _Builder, *layers: str) -> torch.Tensor:
    """The first layer's output for one input image (the others only checked to run)."""
    with torch.no_grad():
        return activations(b.model, b.sample[:1], list(layers))[layers[0]]


def _activations_page(b: _Builder, layers: list[str]) -> Path:
    page = b.out / "activations.html"
    inputs, grids = b.activation_grids(layers)
    b.extras.update(inputs=inputs, grids=grids)
    rows = []
    for i, source in enumerate(inputs):
        figures = [f'<figure><img class="pixels" src="{html.esc(b.src(source, page))}" alt="input {i}">'
                   f"<figcaption>input {i} ({b.inputs_from})</figcaption></figure>"]
        for layer in layers:
            if (i, layer) in grids:
                figures.append(f'<figure><img class="pixels grid" src="{html.esc(b.src(grids[i, layer], page))}" '
                               f'alt="{html.esc(layer)} on input {i}">'
                               f'<figcaption>{html.esc(layer)}</figcaption></figure>')
        rows.append(f'<div class="row">{"".join(figures)}</div>')
    intro = ('<h1>Activations</h1><p class="lead">Each grid is one layer\'s output for the image on the left: '
             "one tile per channel, each stretched to its own range (black low, white high).</p>")
    return html.write_page(page, f"activations · {b.title}", intro + "\n".join(rows), b.style, _nav(b), b.deferred)


def _dream_page(b: _Builder, layers: list[str]) -> Path:
    page = b.out / "dream.html"
    photos, dreamed, gif = b.dreams(layers)
    b.extras["dream_gif"] = gif
    s = b.settings
    sections = []
    for name, photo in zip(("china.jpg", "flower.jpg"), photos):
        figures = [f'<figure><img src="{html.esc(b.src(photo, page))}" alt="{name}"><figcaption>{name} '
                   "(scikit-learn's sample photo)</figcaption></figure>"]
        figures += [f'<figure><img src="{html.esc(b.src(dreamed[name, layer], page))}" alt="{name} dreamed on '
                    f'{html.esc(layer)}"><figcaption>{html.esc(layer)}</figcaption></figure>' for layer in layers]
        sections.append(f'<div class="gallery">{"".join(figures)}</div>')
    if gif is not None:
        sections.append('<h2>Feedback loop</h2>'
                        f'<figure><img class="photo" src="{html.esc(b.src(gif, page))}" alt="DeepDream zoom">'
                        f"<figcaption>{s.dream_frames} frames: dream on {html.esc(layers[-1])}, zoom in 5%, "
                        "dream again</figcaption></figure>")
    intro = ('<h1>DeepDream</h1><p class="lead">Each photo changed by gradient ascent on one layer\'s activations '
             f"(their squared norm): {s.dream_octaves} octaves of {s.dream_steps} steps. Low layers paint strokes "
             "and textures, high layers the shapes the network learned to tell apart.</p>")
    return html.write_page(page, f"DeepDream · {b.title}", intro + "\n".join(sections), b.style, _nav(b), b.deferred)


def previews(shown: dict[str, list[Path]], links: dict[str, str], folder: Path, count: int = 8) -> str:
    """One row per layer: a link with its name and its first ``count`` feature visualizations."""
    rows = []
    for layer, paths in shown.items():
        images = "".join(f'<img class="thumb pixels" src="{html.esc(html.rel(p, folder))}" alt="">'
                         for p in paths[:count])
        rows.append(f'<a class="preview" href="{html.esc(links[layer])}"><span>{html.esc(layer)}</span>{images}</a>')
    return '<div class="previews">' + "\n".join(rows) + "</div>"


def _index_page(b: _Builder, layers: list[str]) -> Path:

    page = b.out / "index.html"
    size = tuple(b.sample.shape[1:])
    result = summary(b.model, size, depth=1, title=b.title)
    links = {layer: html.rel(layer_page_path(b.out, layer), b.out) for layer in layers}
    svg = to_svg(layout(collapse_repeats(layer_graph(b.model, size, 1))), links)
    rows = [(html.link(links[r.name], r.name) if r.name in links else html.esc(r.name), html.esc(r.type),
             html.esc(dims(r.output_shape)), f"{r.params:,}", f"{r.macs:,}") for r in result.rows]
    stats = [(f"{result.total_params:,}", "parameters"), (f"{result.total_macs / 1e6:,.1f} M", "multiply-adds"),
             (dims(size), "input"), (str(len(layers)), "layers with pages")]
    body = [f'<h1>{html.esc(b.title)}</h1><p class="lead">What the network learned, layer by layer. Click a '
            "module in the graph or the table to see its channels.</p>",
            '<div class="stats">' + "".join(f"<div class=stat><b>{v}</b><span>{k}</span></div>" for v, k in stats)
            + "</div>",
            "<h2>Layers</h2>" + previews({layer: b.shown[layer] for layer in layers}, links, b.out),
            f'<h2>Module graph</h2><div class="panel graph">{svg}</div>',
            '<h2>Parameters and multiply-adds per module</h2><div class="panel">'
            + html.table(("module", "type", "output", "parameters", "multiply-adds"), rows, {3, 4}, raw=True)
            + "</div>"]
    return html.write_page(page, f"{b.title} · microscope", "\n".join(body), b.style, _nav(b))
