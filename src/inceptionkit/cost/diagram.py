"""Diagrams of a layer graph, drawn top to bottom like Keras' ``plot_model``, as SVG or PNG.

The layout is the layered (Sugiyama) method, written out here: rank each layer by its longest
path from the input; split edges that span several ranks with virtual points, so a long edge
(a 1x1 branch going straight to ``cat``, a residual shortcut) gets its own column; order each rank
by barycenter sweeps, execution order breaking ties so branch1..branch4 stay left to right; then
pull each box towards its neighbours' mean x without letting boxes in a rank overlap.

A run of identical blocks (Inception-ResNet-v2's ten ``block35``) is drawn once: as one box
'block35 x10' when blocks are boxes (``depth=1``), else as the first block's layers in a frame
labelled 'block35 x10'. ``expand=True`` draws every block.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..errors import BadArgument, BadValue
from ..files import atomic_save, atomic_write_text, check_folder
from ..probe import dims
from .graph import LayerGraph, Node, collapse_repeats, layer_graph

FONT = 10.0  # points: one layout unit is one point (1/72 inch), in the SVG and the PNG alike
CHAR = 0.6 * FONT  # advance of one monospace character (DejaVu Sans Mono: 0.602 em)
LINE = 1.4 * FONT
PAD_X, PAD_Y = 8.0, 5.0
GAP_X, GAP_Y = 18.0, 36.0  # between boxes in a rank, between ranks
MARGIN = 12.0
HEIGHT = 2 * LINE + 2 * PAD_Y  # every box holds two lines
ARROW = 7.0
SUFFIXES = (".svg", ".png")
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"

MERGES = {"cat", "concat", "concatenate", "stack", "add", "__add__", "__radd__", "add_", "__iadd__", "sum"}
COLOURS = {  # kind -> (fill, stroke)
    "weighted": ("#dae8f8", "#3c6ea8"),
    "pooling": ("#dcf0d5", "#4a8a3c"),
    "merge": ("#fde5c4", "#b5711f"),
    "other": ("#eeeeee", "#777777"),
}
EDGE_COLOUR = "#555555"
FRAME_FILL, FRAME_STROKE = "#f4f4f8", "#6a6a90"
FRAME_PAD = 8.0  # around the boxes of a block that stands for a run of identical ones


@dataclass
class Box:
    """One node of the graph as a box; ``x``, ``y`` is its centre. ``end`` marks the input and the output."""

    name: str
    title: str
    detail: str
    kind: str  # "weighted", "pooling", "merge" or "other"
    rank: int
    x: float
    y: float
    width: float
    height: float
    end: bool = False


@dataclass
class Edge:
    """From the bottom of ``source`` to the top of ``target``, through one column per rank it crosses."""

    source: str
    target: str
    points: list[tuple[float, float]]


@dataclass
class Frame:
    """Around the layers of the one block drawn for a run of identical blocks; ``label`` left of its top."""

    label: str
    left: float
    top: float
    width: float
    height: float


@dataclass
class Layout:
    """Boxes in the graph's execution order, edges, frames, and the size of the drawing in points."""

    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float
    frames: list[Frame] = field(default_factory=list)


def kind(node: Node) -> str:
    """Which colour a node gets: convolution or linear, pooling, concat or add, anything else."""
    if node.weighted:
        return "weighted"
    if node.pooling:
        return "pooling"
    if node.op == "function" and (node.type in MERGES or len(node.inputs) > 1):
        return "merge"
    return "other"


def _detail(node: Node) -> str:
    shape = dims(node.output_shape) or "-"
    return shape if node.op == "input" else f"{node.label} | {shape}"


def _crossings(layers: list[list[int]], down: list[list[int]], pos: list[int]) -> int:
    """Edge crossings between adjacent ranks: inversions of the lower ends once sorted by the upper."""
    total = 0
    for layer in layers[:-1]:
        seen: list[int] = []
        for _, b in sorted((pos[a], pos[b]) for a in layer for b in down[a]):
            total += len(seen) - bisect.bisect_right(seen, b)
            bisect.insort(seen, b)
    return total


def _order(layers: list[list[int]], up: list[list[int]], down: list[list[int]], key: list[tuple]) -> None:
    """Barycenter sweeps, down then up, keeping the ordering with the fewest crossings."""
    pos = [0] * len(key)

    def sweep(ranks, near):
        for r in ranks:
            layer = layers[r]
            centre = {e: sum(pos[n] for n in near[e]) / len(near[e]) if near[e] else pos[e] for e in layer}
            layer.sort(key=lambda e: (centre[e], key[e]))
            for k, e in enumerate(layer):
                pos[e] = k

    for layer in layers:
        layer.sort(key=key.__getitem__)
        for k, e in enumerate(layer):
            pos[e] = k
    sweep(range(1, len(layers)), up)
    best, fewest = [list(layer) for layer in layers], _crossings(layers, down, pos)
    for _ in range(4):
        if fewest == 0:
            break
        sweep(range(len(layers) - 2, -1, -1), down)
        sweep(range(1, len(layers)), up)
        count = _crossings(layers, down, pos)
        if count < fewest:
            best, fewest = [list(layer) for layer in layers], count
    layers[:] = best


def _pack(target: list[float], weight: list[float], gaps: list[float]) -> list[float]:
    """x closest to ``target`` (weighted least squares) with x[k+1] - x[k] >= gaps[k]: pool adjacent violators."""
    offset = [0.0]
    for gap in gaps:
        offset.append(offset[-1] + gap)
    blocks: list[list[float]] = []  # [mean, weight, count], of x - offset
    for t, w, o in zip(target, weight, offset):
        blocks.append([t - o, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    shifted = [m for m, _, c in blocks for _ in range(int(c))]
    return [s + o for s, o in zip(shifted, offset)]


def _place(layers: list[list[int]], up: list[list[int]], down: list[list[int]], width: list[float],
           real: int) -> list[float]:
    """x of every element: passes down and up, pulling each towards its parents' or children's mean.

    A virtual point pulled by another weighs more than a box, so long edges run straight and boxes
    move around them.
    """
    x = [0.0] * len(width)

    def gaps(layer):
        return [(width[a] + width[b]) / 2 + GAP_X for a, b in zip(layer, layer[1:])]

    for layer in layers:
        for e, value in zip(layer, _pack([0.0] * len(layer), [1.0] * len(layer), gaps(layer))):
            x[e] = value

    def sweep(ranks, near_of):
        for r in ranks:
            layer = layers[r]
            target, weight = [], []
            for e in layer:
                near = near_of(e)
                target.append(sum(x[n] for n in near) / len(near) if near else x[e])
                straight = e >= real and near and all(n >= real for n in near)
                weight.append(8.0 if straight else max(len(near), 1))
            for e, value in zip(layer, _pack(target, weight, gaps(layer))):
                x[e] = value

    downward, upward = range(1, len(layers)), range(len(layers) - 2, -1, -1)
    for _ in range(6):
        sweep(downward, lambda e: up[e])
        sweep(upward, lambda e: down[e])
    sweep(downward, lambda e: up[e])
    return x


def _align_trunk(layers: list[list[int]], x: list[float]) -> None:
    """Put each rank that holds a single box (the trunk between blocks) under the first such box.

    The ranks since the previous one move with it, so a chain of lopsided blocks (a residual
    shortcut on one side) does not drift sideways down the page.
    """
    anchor, shift, pending = None, 0.0, []
    for layer in layers:
        pending += layer
        if len(layer) == 1:
            anchor = x[layer[0]] if anchor is None else anchor
            shift = anchor - x[layer[0]]
            for e in pending:
                x[e] += shift
            pending = []
    for e in pending:
        x[e] += shift


def layout(graph: LayerGraph) -> Layout:
    """Place every node of ``graph`` as a box, top to bottom, and route the edges between them."""
    nodes = graph.nodes
    index = {node.name: i for i, node in enumerate(nodes)}
    preds = [[index[p] for p in node.inputs if index.get(p, i) < i] for i, node in enumerate(nodes)]
    rank = [0] * len(nodes)
    for i, ps in enumerate(preds):
        rank[i] = 1 + max((rank[p] for p in ps), default=-1)

    titles = [node.name for node in nodes]
    details = [_detail(node) for node in nodes]
    width = [max(len(t), len(d)) * CHAR + 2 * PAD_X for t, d in zip(titles, details)]
    key: list[tuple] = [(i, -1) for i in range(len(nodes))]  # a virtual point sorts as its target
    elem_rank = list(rank)
    up: list[list[int]] = [[] for _ in nodes]
    down: list[list[int]] = [[] for _ in nodes]
    chains: list[list[list[int]]] = [[] for _ in nodes]  # by target: source, virtual points, target
    for i, ps in enumerate(preds):
        for p in ps:
            chain = [p]
            for r in range(rank[p] + 1, rank[i]):
                elem_rank.append(r)
                key.append((i, p))
                width.append(0.0)
                up.append([])
                down.append([])
                chain.append(len(key) - 1)
            chain.append(i)
            for a, b in zip(chain, chain[1:]):
                down[a].append(b)
                up[b].append(a)
            chains[i].append(chain)

    layers: list[list[int]] = [[] for _ in range(max(rank, default=0) + 1)]
    for e, r in enumerate(elem_rank):
        layers[r].append(e)
    _order(layers, up, down, key)
    x = _place(layers, up, down, width, len(nodes))
    _align_trunk(layers, x)

    y = [MARGIN + r * (HEIGHT + GAP_Y) + HEIGHT / 2 for r in elem_rank]

    boxes = [
        Box(node.name, titles[i], details[i], kind(node), rank[i], x[i], y[i], width[i], HEIGHT,
            end=node.op == "input" or node.name == graph.output)
        for i, node in enumerate(nodes)
    ]
    edges = []
    for target in range(len(nodes)):  # arrows into one box land side by side, in the order they come from
        into = sorted(chains[target], key=lambda c: x[c[-2]])
        for k, chain in enumerate(into):
            source = chain[0]
            port = x[target] - width[target] / 2 + width[target] * (k + 1) / (len(into) + 1)
            points = [(x[source], y[source] + HEIGHT / 2)]
            for e in chain[1:-1]:
                points += [(x[e], y[e] - HEIGHT / 2), (x[e], y[e] + HEIGHT / 2)]
            points.append((port, y[target] - HEIGHT / 2))
            edges.append(Edge(nodes[source].name, nodes[target].name, points))
    frames = _frames(graph, boxes, edges)
    left = min([x[e] - width[e] / 2 for e in range(len(x))] + [f.left - _label_width(f) for f in frames], default=0.0)
    right = max([x[e] + width[e] / 2 for e in range(len(x))] + [f.left + f.width for f in frames], default=0.0)
    shift = MARGIN - left
    for box in boxes:
        box.x += shift
    for edge in edges:
        edge.points = [(px + shift, py) for px, py in edge.points]
    for frame in frames:
        frame.left += shift
    height = MARGIN + len(layers) * (HEIGHT + GAP_Y) - GAP_Y + MARGIN
    return Layout(boxes, edges, right - left + 2 * MARGIN, height, frames)


def _label_width(frame: Frame) -> float:
    return len(frame.label) * CHAR + PAD_X


def _frames(graph: LayerGraph, boxes: list[Box], edges: list[Edge]) -> list[Frame]:
    """A frame for each run of identical blocks drawn as its first block's layers.

    It holds that block's boxes and the edges running beside them (a residual shortcut's column).
    """
    found = []
    for repeat in graph.repeats:
        first, second = (repeat.modules[0] + ".", repeat.modules[1] + ".")
        inside = [box for box in boxes if box.name.startswith(first) and box.name != repeat.title]
        if not inside or any(box.name.startswith(second) or box.name == repeat.title for box in boxes):
            continue  # merged into one box, inside a bigger box, or drawn expanded
        top = min(box.y - box.height / 2 for box in inside) - FRAME_PAD
        bottom = max(box.y + box.height / 2 for box in inside) + FRAME_PAD
        xs = [x for box in inside for x in (box.x - box.width / 2, box.x + box.width / 2)]
        xs += [x for edge in edges if edge.target.startswith(first)
               for x, y in edge.points[1:-1] if top < y < bottom]
        left, right = min(xs) - FRAME_PAD, max(xs) + FRAME_PAD
        found.append(Frame(repeat.title, left, top, right - left, bottom - top))
    return found


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _label_baseline(frame: Frame) -> float:
    return frame.top + (LINE + 0.7 * FONT) / 2


def _baselines(box: Box) -> tuple[float, float]:
    """Baselines of the two lines of text in a box, each line's capitals centred in its line."""
    first = box.y - box.height / 2 + PAD_Y + (LINE + 0.7 * FONT) / 2
    return first, first + LINE


def to_svg(layout: Layout, links: dict[str, str] | None = None) -> str:
    """The layout as an SVG document: boxes coloured by kind, edges with arrowheads; the boxes named
    in ``links`` are links to its addresses."""
    w, h = _n(layout.width), _n(layout.height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'font-family="{FONT_FAMILY}" font-size="{_n(FONT)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="{_n(ARROW)}" markerHeight="{_n(ARROW)}" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{EDGE_COLOUR}"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    if layout.frames:
        out.append('<g class="frames">')
        for frame in layout.frames:
            out += [
                f'<rect class="frame" x="{_n(frame.left)}" y="{_n(frame.top)}" width="{_n(frame.width)}" '
                f'height="{_n(frame.height)}" rx="6" fill="{FRAME_FILL}" stroke="{FRAME_STROKE}" '
                'stroke-dasharray="4 3"/>',
                f'<text class="frame" x="{_n(frame.left - PAD_X / 2)}" y="{_n(_label_baseline(frame))}" '
                f'text-anchor="end" font-weight="bold" fill="{FRAME_STROKE}">{_xml(frame.label)}</text>',
            ]
        out.append("</g>")
    out.append(f'<g class="edges" fill="none" stroke="{EDGE_COLOUR}" stroke-width="1">')
    for edge in layout.edges:
        points = " ".join(f"{_n(px)},{_n(py)}" for px, py in edge.points)
        out.append(f'<polyline class="edge" data-source="{_xml(edge.source)}" data-target="{_xml(edge.target)}" '
                   f'points="{points}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    out.append('<g class="nodes" text-anchor="middle">')
    for box in layout.boxes:
        fill, stroke = COLOURS[box.kind]
        first, second = _baselines(box)
        link = (links or {}).get(box.name)
        out += [
            f'<a href="{_xml(link)}">' if link else "",
            f'<g><title>{_xml(box.name)}</title>',
            f'<rect class="node {box.kind}" data-name="{_xml(box.name)}" x="{_n(box.x - box.width / 2)}" '
            f'y="{_n(box.y - box.height / 2)}" width="{_n(box.width)}" height="{_n(box.height)}" rx="3" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if box.end else 1}"/>',
            f'<text x="{_n(box.x)}" y="{_n(first)}" font-weight="bold">{_xml(box.title)}</text>',
            f'<text x="{_n(box.x)}" y="{_n(second)}">{_xml(box.detail)}</text></g>',
            "</a>" if link else "",
        ]
    out.append("</g></svg>\n")
    return "\n".join(out)


def _arrowhead(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
    dx, dy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - ARROW * dx, y1 - ARROW * dy
    half = ARROW / 2
    return [(x1, y1), (bx - half * dy, by + half * dx), (bx + half * dy, by - half * dx)]


def check_path(path: Path) -> None:
    """Refuse, before any drawing, a path whose suffix is neither .svg nor .png or whose folder is missing."""
    if path.suffix.lower() not in SUFFIXES:
        raise BadValue(f"cannot draw to {str(path)!r}: suffix {path.suffix or '(none)'!r} "
                         f"is not one of {', '.join(SUFFIXES)}")
    check_folder(path)


def to_png(layout: Layout, path: str | os.PathLike, dpi: float = 96) -> Path:
    """Draw the layout with matplotlib (Agg, no global state touched) into a PNG file at ``dpi``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PatchCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    path = Path(path)
    check_path(path)  # before drawing

    figure = Figure(figsize=(layout.width / 72, layout.height / 72), dpi=dpi, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, layout.width)
    axes.set_ylim(layout.height, 0)
    axes.set_axis_off()
    for frame in layout.frames:
        axes.add_patch(FancyBboxPatch((frame.left, frame.top), frame.width, frame.height,
                                      boxstyle="round,pad=0,rounding_size=6", facecolor=FRAME_FILL,
                                      edgecolor=FRAME_STROKE, linestyle=(0, (4, 3)), linewidth=1, zorder=0))
        axes.text(frame.left - PAD_X / 2, _label_baseline(frame), frame.label, ha="right", va="baseline",
                  fontsize=FONT, family="monospace", weight="bold", color=FRAME_STROKE, zorder=3)
    axes.add_collection(LineCollection([edge.points for edge in layout.edges], colors=EDGE_COLOUR, linewidths=1))
    axes.add_collection(PolyCollection([_arrowhead(edge.points) for edge in layout.edges],
                                       facecolors=EDGE_COLOUR, edgecolors="none"))
    rects = [FancyBboxPatch((box.x - box.width / 2, box.y - box.height / 2), box.width, box.height,
                            boxstyle="round,pad=0,rounding_size=3") for box in layout.boxes]
    axes.add_collection(PatchCollection(
        rects, facecolors=[COLOURS[box.kind][0] for box in layout.boxes],
        edgecolors=[COLOURS[box.kind][1] for box in layout.boxes],
        linewidths=[2 if box.end else 1 for box in layout.boxes], zorder=2))
    for box in layout.boxes:
        first, second = _baselines(box)
        axes.text(box.x, first, box.title, ha="center", va="baseline", fontsize=FONT, family="monospace",
                  weight="bold", zorder=3)
        axes.text(box.x, second, box.detail, ha="center", va="baseline", fontsize=FONT, family="monospace",
                  zorder=3)
    atomic_save(path, lambda file: figure.savefig(file, format="png", dpi=dpi, facecolor="white"))
    return path


def draw(model_or_graph: nn.Module | LayerGraph, input_size: tuple[int, ...] | None = None,
         path: str | os.PathLike | None = None, depth: int | None = None, dpi: float = 96,
         expand: bool = False, training: bool = False) -> str:
    """The SVG diagram of a model (recorded on ``input_size``, collapsed to ``depth``) or of a layer graph.

    Runs of identical blocks are drawn once ('block35 x10') unless ``expand``. ``training=True``
    records train mode, where the auxiliary heads run and are drawn. With ``path`` the diagram is
    also written there: ``.svg`` as text, ``.png`` drawn by matplotlib at ``dpi``.
    """
    if path is not None:
        path = Path(path)
        check_path(path)
    if depth is not None and depth < 1:
        raise BadValue(f"depth must be at least 1 (1: one box per stage), got {depth}")
    if isinstance(model_or_graph, LayerGraph):
        if input_size is not None or depth is not None or training:
            raise BadValue("input_size, depth and training apply to a model; a layer graph is already recorded")
        graph = model_or_graph
    elif isinstance(model_or_graph, nn.Module):
        if input_size is None:
            raise BadValue("drawing a model needs its input_size (C, H, W), e.g. (3, 224, 224)")
        graph = layer_graph(model_or_graph, input_size, depth, training=training)
    else:
        raise BadArgument(f"draw takes an nn.Module or a LayerGraph, not {type(model_or_graph).__name__}")
    placed = layout(graph if expand else collapse_repeats(graph))
    svg = to_svg(placed)
    if path is not None and path.suffix.lower() == ".svg":
        atomic_write_text(path, svg)
    elif path is not None:
        to_png(placed, path, dpi)
    return svg
