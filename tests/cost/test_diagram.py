"""Layer diagrams, checked against the papers' structure and plain geometry: boxes apart, edges downward;
and the draw command's options and errors."""

import time
import xml.etree.ElementTree as ET

import pytest
import torch
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath
from PIL import Image
from typer.testing import CliRunner

from inceptionkit import create_model
from inceptionkit.cli.main import app
from inceptionkit.cost.diagram import draw, layout, to_png, to_svg
from inceptionkit.cost.graph import LayerGraph, Node, layer_graph

SVG = "{http://www.w3.org/2000/svg}"
runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# GoogLeNet table 1, inception (3a) on 28x28x192: #1x1 64, #3x3 reduce 96, #3x3 128, #5x5 reduce 16,
# #5x5 32, pool proj 32; output 28x28x256.
INCEPTION_3A_EDGES = {
    ("input", "branch1.0"), ("input", "branch2.0"), ("input", "branch3.0"), ("input", "branch4.0"),
    ("branch2.0", "branch2.1"), ("branch3.0", "branch3.1"), ("branch4.0", "branch4.1"),
    ("branch1.0", "cat"), ("branch2.1", "cat"), ("branch3.1", "cat"), ("branch4.1", "cat"),
}


@pytest.fixture(scope="module")
def googlenet():
    with torch.device("meta"):  # the graph needs shapes only: no weights to initialise, no arithmetic
        return create_model("googlenet")


@pytest.fixture(scope="module")
def inception_resnet_v2():
    with torch.device("meta"):
        return create_model("inception_resnet_v2")


@pytest.fixture(scope="module")
def inception3a(googlenet):
    return layer_graph(googlenet.inception3a, (192, 28, 28))


def parse(svg: str):
    """Boxes {name: (left, top, width, height, classes)}, edges [(source, target, points)], texts, root."""
    root = ET.fromstring(svg)
    boxes = {}
    for rect in root.iter(f"{SVG}rect"):
        classes = rect.get("class", "").split()
        if "node" in classes:
            geometry = tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))
            boxes[rect.get("data-name")] = (*geometry, classes, rect.get("fill"))
    edges = []
    for line in root.iter(f"{SVG}polyline"):
        points = [tuple(float(v) for v in p.split(",")) for p in line.get("points").split()]
        edges.append((line.get("data-source"), line.get("data-target"), points, line.get("marker-end")))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    return boxes, edges, texts, root


def cuts(p, q, box, inset=0.5):
    """Whether segment p-q passes through the inside of a box (Liang-Barsky clipping)."""
    left, top, width, height = box[:4]
    x_min, x_max, y_min, y_max = left + inset, left + width - inset, top + inset, top + height - inset
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = 0.0, 1.0
    for pk, qk in ((-dx, p[0] - x_min), (dx, x_max - p[0]), (-dy, p[1] - y_min), (dy, y_max - p[1])):
        if pk == 0:
            if qk < 0:
                return False
        elif pk < 0:
            t0 = max(t0, qk / pk)
        else:
            t1 = min(t1, qk / pk)
    return t0 < t1


def cross(a, b, c, d):
    """Whether segments a-b and c-d cross at a point inside both (touching ends does not count)."""
    def side(p, q, r):
        value = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (value > 1e-9) - (value < -1e-9)
    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def check_geometry(svg: str):
    """No two boxes overlap, edges join the boxes they name, run downward, and pass through no box."""
    boxes, edges, _, root = parse(svg)
    _, _, view_width, view_height = (float(v) for v in root.get("viewBox").split())
    names = list(boxes)
    for i, a in enumerate(names):
        left, top, width, height = boxes[a][:4]
        assert 0 <= left and left + width <= view_width and 0 <= top and top + height <= view_height
        for b in names[i + 1:]:
            assert not overlap(boxes[a], boxes[b]), (a, b)
    for source, target, points, marker in edges:
        assert marker == "url(#arrow)"
        s, t = boxes[source], boxes[target]
        assert points[0][1] == pytest.approx(s[1] + s[3], abs=0.1) and s[0] <= points[0][0] <= s[0] + s[2]
        assert points[-1][1] == pytest.approx(t[1], abs=0.1) and t[0] <= points[-1][0] <= t[0] + t[2]
        assert all(q[1] >= p[1] for p, q in zip(points, points[1:])), (source, target)
        for p, q in zip(points, points[1:]):
            for name, box in boxes.items():
                assert not cuts(p, q, box), (source, target, name)
    return boxes, edges


def test_inception3a_one_box_per_layer_with_the_papers_numbers(inception3a):
    boxes, edges, texts, _ = parse(draw(inception3a))
    assert len(boxes) == 9  # input, six convolutions, the max pool, the concatenation
    assert {(s, t) for s, t, _, _ in edges} == INCEPTION_3A_EDGES
    assert len(edges) == len(INCEPTION_3A_EDGES)
    for text in ["BasicConv 1x1/1 192->64 | 64x28x28", "BasicConv 1x1/1 192->96 | 96x28x28",
                 "BasicConv 3x3/1 96->128 | 128x28x28", "BasicConv 1x1/1 192->16 | 16x28x28",
                 "BasicConv 5x5/1 16->32 | 32x28x28", "MaxPool2d 3x3/1 | 192x28x28",
                 "BasicConv 1x1/1 192->32 | 32x28x28", "cat | 256x28x28", "192x28x28", "branch2.1"]:
        assert text in texts, text


def test_text_fits_its_box(inception3a):
    """Each line, measured with matplotlib's own glyph outlines of the drawing's font, fits its box."""
    root = ET.fromstring(draw(inception3a))
    groups = [g for g in root.iter(f"{SVG}g") if g.find(f"{SVG}rect") is not None]
    assert len(groups) == 9
    for group in groups:
        width = float(group.find(f"{SVG}rect").get("width"))
        for text in group.findall(f"{SVG}text"):
            prop = FontProperties(family="DejaVu Sans Mono", weight=text.get("font-weight", "normal"))
            extent = TextPath((0, 0), text.text, size=float(root.get("font-size")), prop=prop).get_extents()
            assert extent.width < width, text.text


def test_boxes_are_coloured_by_kind(inception3a):
    boxes, *_ = parse(draw(inception3a))
    kinds = {name: next(c for c in box[4] if c != "node") for name, box in boxes.items()}
    assert kinds == {"input": "other", "branch4.0": "pooling", "cat": "merge",
                     **{name: "weighted" for name in boxes if name.startswith("branch") and name != "branch4.0"}}
    fills = {kinds[name]: box[5] for name, box in boxes.items()}
    assert len(set(fills.values())) == 4


def test_branches_side_by_side_in_the_papers_order(inception3a):
    boxes, _ = check_geometry(draw(inception3a))
    starts = [boxes[f"branch{k}.0"] for k in (1, 2, 3, 4)]
    assert len({box[1] for box in starts}) == 1  # one rank
    centres = [box[0] + box[2] / 2 for box in starts]
    assert centres == sorted(centres) and len(set(centres)) == 4
    for k in (2, 3, 4):  # each second layer sits under its own branch, between its neighbours
        second, first = boxes[f"branch{k}.1"], boxes[f"branch{k}.0"]
        assert second[1] > first[1]
    seconds = [boxes[f"branch{k}.1"][0] for k in (2, 3, 4)]
    assert seconds == sorted(seconds)
    assert boxes["cat"][1] > max(box[1] for name, box in boxes.items() if name != "cat")


def test_inception3a_is_drawn_without_crossings(inception3a):
    _, edges, _, _ = parse(draw(inception3a))
    segments = [(i, p, q) for i, (_, _, points, _) in enumerate(edges) for p, q in zip(points, points[1:])]
    for i, a, b in segments:
        for j, c, d in segments:
            assert i == j or not cross(a, b, c, d), (edges[i][:2], edges[j][:2])


def test_residual_shortcut_gets_its_own_column(inception_resnet_v2):
    """Inception-ResNet-v2's 35x35 block: the block input reaches the sum past five ranks of layers."""
    graph = layer_graph(inception_resnet_v2.block35_1, (320, 35, 35))
    boxes, edges = check_geometry(draw(graph))
    shortcut = [points for source, target, points, _ in edges if (source, target) == ("input", "add")]
    assert len(shortcut) == 1
    inner = shortcut[0][1:-1]
    assert len(inner) >= 4 and len({x for x, _ in inner}) == 1  # one straight column past the branches


def test_whole_googlenet_at_depth_one_is_one_column(googlenet):
    """At depth 1 GoogLeNet (aux heads off in eval) is a chain: stem, nine inception modules, head."""
    placed = layout(layer_graph(googlenet, (3, 224, 224), depth=1))
    assert [box.rank for box in placed.boxes] == list(range(len(placed.boxes)))
    assert len({round(box.x, 6) for box in placed.boxes}) == 1
    assert sum(box.name.startswith("inception") for box in placed.boxes) == 9
    by_name = {box.name: box for box in placed.boxes}
    assert by_name["inception5b"].detail.endswith("| 1024x7x7")
    assert by_name["fc"].detail == "Linear 1024->1000 | 1000"
    check_geometry(to_svg(placed))
    boxes, *_ = parse(draw(googlenet, (3, 224, 224), depth=1))
    assert "inception3a" in boxes and "inception3a.branch1.0" not in boxes


def test_png_follows_the_layout_and_dpi(inception3a, tmp_path):
    placed = layout(inception3a)
    draw(inception3a, path=tmp_path / "module.png")
    to_png(placed, tmp_path / "half.png", dpi=48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.png", "module.png"]  # no temporary left
    assert (tmp_path / "module.png").read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(tmp_path / "module.png") as full, Image.open(tmp_path / "half.png") as half:
        assert full.size[0] == pytest.approx(placed.width / 72 * 96, abs=2)
        assert full.size[1] == pytest.approx(placed.height / 72 * 96, abs=2)
        assert half.size[0] == pytest.approx(full.size[0] / 2, abs=2)
        colours = full.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 10  # something was drawn


def test_svg_file_is_the_returned_text(inception3a, tmp_path):
    path = tmp_path / "module.svg"
    path.write_text("old")
    svg = draw(inception3a, path=path)
    assert path.read_text() == svg
    assert [p.name for p in tmp_path.iterdir()] == ["module.svg"]


def test_unknown_suffix_and_missing_input_size_are_refused(googlenet, inception3a, tmp_path):
    with pytest.raises(ValueError, match=r"'\.pdf'.*\.svg, \.png"):
        draw(inception3a, path=tmp_path / "module.pdf")
    with pytest.raises(ValueError, match="input_size"):
        draw(googlenet)
    assert list(tmp_path.iterdir()) == []


def test_names_are_escaped():
    graph = LayerGraph([
        Node("input", "input", "input", "input 3x8x8", (3, 8, 8)),
        Node('a<b>&"c"', "module", "Odd", "Odd <&>", (3, 8, 8), ["input"]),
    ], 'a<b>&"c"', (3, 8, 8))
    boxes, _, texts, _ = parse(draw(graph))
    assert set(boxes) == {"input", 'a<b>&"c"'}
    assert "Odd <&> | 3x8x8" in texts


def test_full_inception_resnet_v2_lays_out_in_seconds(inception_resnet_v2):
    graph = layer_graph(inception_resnet_v2, (3, 299, 299))
    start = time.perf_counter()
    placed = layout(graph)
    assert time.perf_counter() - start < 5
    assert len(placed.boxes) == len(graph.nodes) > 400
    by_name = {box.name: box for box in placed.boxes}
    for node in graph.nodes:
        for source in node.inputs:
            assert by_name[node.name].y > by_name[source].y
    rows: dict[float, list] = {}
    for box in placed.boxes:
        rows.setdefault(box.y, []).append((box.x - box.width / 2, box.x + box.width / 2))
    for row in rows.values():
        row.sort()
        assert all(right < left for (_, right), (left, _) in zip(row, row[1:]))
    trunk = {round(box.x, 6) for box in placed.boxes if box.name.endswith(".act")}
    assert len(trunk) == 1  # the residual blocks one under another, not drifting sideways


# --- issue 8, item 10: depth, input errors, output paths, repeated blocks --------------------------



def titles(svg: str) -> list[str]:
    """The bold first line of every box: its name, or 'block35 x10' for a run of repeated blocks."""
    root = ET.fromstring(svg)
    return [t.text for t in root.iter(f"{SVG}text") if t.get("font-weight") == "bold" and not t.get("class")]


def frames(svg: str) -> list[str]:
    """Labels of the frames drawn around one block that stands for a run of identical blocks."""
    root = ET.fromstring(svg)
    return [t.text for t in root.iter(f"{SVG}text") if "frame" in t.get("class", "")]


@pytest.fixture(scope="module")
def inception_v4():
    with torch.device("meta"):
        return create_model("inception_v4")


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_below_one_is_refused(googlenet, depth, tmp_path):
    with pytest.raises(ValueError, match=rf"depth must be at least 1 \(1: one box per stage\), got {depth}"):
        draw(googlenet, (3, 224, 224), depth=depth)
    result = runner.invoke(app, ["draw", "googlenet", "-o", str(tmp_path / "g.svg"), "--depth", str(depth)])
    assert result.exit_code == 2
    assert f"--depth must be at least 1 (1: one box per stage), got {depth}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_input_the_network_cannot_take_says_what_it_takes(tmp_path):
    """As summary does: the failing layer, then the network's channels and smallest side (v3: 75)."""
    result = runner.invoke(app, ["draw", "inception_v3", "-o", str(tmp_path / "v3.png"), "--input", "3x32x32"])
    assert result.exit_code == 2
    assert "cannot take its input" in result.output
    assert "inception_v3 takes 3 channels and at least 75x75 pixels" in result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_input_channels_build_the_network_for_them(tmp_path):
    """--input 1x224x224 builds GoogLeNet with a one-channel first convolution (issue 8, item 9)."""
    path = tmp_path / "grey.svg"
    result = runner.invoke(app, ["draw", "googlenet", "-o", str(path), "--input", "1x224x224", "--depth", "1"])
    assert result.exit_code == 0, result.output
    assert "BasicConv 7x7/2 1->64 | 64x112x112" in parse(path.read_text())[2]
    half = tmp_path / "half.svg"
    result = runner.invoke(app, ["draw", "googlenet", "-o", str(half), "--width", "0.5", "--depth", "1"])
    assert result.exit_code == 0, result.output
    assert "Linear 512->1000 | 1000" in parse(half.read_text())[2]  # half of GoogLeNet's 1024 features


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_missing_folder_is_named_and_nothing_is_left(inception3a, tmp_path, suffix):
    target = tmp_path / "missing" / f"x{suffix}"
    with pytest.raises(FileNotFoundError) as caught:
        draw(inception3a, path=target)
    assert str(tmp_path / "missing") in str(caught.value) and ".tmp" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    result = runner.invoke(app, ["draw", "googlenet", "-o", str(target), "--depth", "1"])
    assert result.exit_code == 2
    assert f"folder {tmp_path / 'missing'} does not exist" in result.output and ".tmp" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_unsupported_suffix_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["draw", "googlenet", "-o", str(tmp_path / "g.pdf")])
    assert result.exit_code == 2
    assert "'.pdf' is not one of .svg, .png" in result.output and list(tmp_path.iterdir()) == []


def test_stage_drawing_collapses_the_repeated_blocks(inception_resnet_v2, inception_v4):
    """ARCHITECTURES.md 5.3: 10 Block35, 20 Block17, 9 Block8 and a final Block8 without ReLU; 4.3:
    Inception-v4 has 4 Inception-A, 7 Inception-B, 3 Inception-C."""
    names = titles(draw(inception_resnet_v2, (3, 299, 299), depth=1))
    assert "block35 x10" in names and "block17 x20" in names and "block8 x9" in names
    assert "block8_10" in names  # scale 1.0, no ReLU: not the same block
    assert not any(name.startswith(("block35_", "block17_")) for name in names)
    assert names.index("block35 x10") < names.index("mixed_6a") < names.index("block17 x20") < names.index("mixed_7a")
    names = titles(draw(inception_v4, (3, 299, 299), depth=1))
    assert {"inception_a x4", "inception_b x7", "inception_c x3"} <= set(names)
    expanded = titles(draw(inception_v4, (3, 299, 299), depth=1, expand=True))
    assert sum(name.startswith("inception_b") for name in expanded) == 7


def test_full_drawing_shows_one_block_of_each_run_in_a_frame(inception_resnet_v2, tmp_path):
    svg = draw(inception_resnet_v2, (3, 299, 299), path=tmp_path / "irv2.png")
    assert frames(svg) == ["block35 x10", "block17 x20", "block8 x9"]
    boxes, edges = check_geometry(svg)
    blocks = {name.split(".")[0] for name in boxes if name.startswith("block")}
    assert blocks == {"block35_1", "block17_1", "block8_1", "block8_10"}
    # the run's output feeds what follows it: block35_1's last layer goes on to mixed_6a
    assert any(s.startswith("block35_1.") and t.startswith("mixed_6a.") for s, t, _, _ in edges)
    with Image.open(tmp_path / "irv2.png") as image:
        assert image.size[1] < 8000  # 34,024 px with every block drawn
    assert len(parse(draw(inception_resnet_v2, (3, 299, 299), expand=True))[0]) > 400


def test_same_means_same_class_configuration_and_shapes():
    """Three identical blocks collapse; one with other channels or another activation does not."""
    from torch import nn

    def block(chs, act=nn.ReLU):
        return nn.Sequential(nn.Conv2d(chs, chs, 3, padding=1), act())

    model = nn.Sequential(block(4), block(4), block(4), block(4, nn.Tanh), block(4), nn.Conv2d(4, 8, 1), block(8),
                          block(8))
    names = titles(draw(model, (4, 8, 8), depth=1))
    assert names == ["input", "0..2 x3", "3", "4", "5", "6..7 x2"]
    expanded = titles(draw(model, (4, 8, 8), depth=1, expand=True))
    assert expanded == ["input", "0", "1", "2", "3", "4", "5", "6", "7"]


def test_aux_heads_are_drawn_in_train_mode(tmp_path):
    path = tmp_path / "aux.svg"
    result = runner.invoke(app, ["draw", "googlenet", "-o", str(path), "--aux", "--depth", "1"])
    assert result.exit_code == 0, result.output
    names = titles(path.read_text())
    assert "aux1" in names and "aux2" in names  # on 4a and 4d (GoogLeNet paper, section 5)
    boxes, edges, _, _ = parse(path.read_text())
    assert ("inception4a", "aux1") in {(s, t) for s, t, _, _ in edges}
