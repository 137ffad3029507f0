"""The documentation, run, so that it cannot drift from the code.

Each page (README.md and docs/*.md) is one test:

- its fenced ```python blocks run in order in one fresh namespace, in a temporary folder that holds
  the files the examples name (a digits run folder as ``runs/googlenet_cifar-digits``, digit PNGs,
  photos, a folder of images per class) and a torch hub cache holding checkpoints made here, in each
  source's own format, for the published weights the examples load (nothing is downloaded);
- every ``inceptionkit ...`` command of its bash/console blocks (and the ``$ inceptionkit`` lines of
  its output blocks) must name a subcommand that exists, with options it has, parsed by the command
  line itself (older spellings go through the same rewriting as on the command line);
- a console block after ``<!-- test: run -->`` is run in-process, and every line it shows after a
  command must appear in that command's output (whitespace aside).

A python block after ``<!-- no-test: REASON -->`` is not run, on purpose (training for minutes,
compiled libraries, files only a reader has): it must still parse, and its imports must resolve. Such
blocks stay the minority on every page, and every page has at least one example that runs.

The examples are written small (a few steps, small images) so that all pages together take about
half a minute on one core; INCEPTIONKIT_DOCS_TIMINGS=1 prints each block's CPU time.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console", ""}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
MARK = re.compile(r"<!--\s*(?P<kind>no-test|test)\s*:\s*(?P<text>.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    mark: tuple[str, str] | None  # ("no-test", reason) or ("test", "run")

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page``, each with the marker comment on the line before it, if any."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening["indent"], opening["lang"].lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:j]]
        before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        mark = MARK.fullmatch(before)
        blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n",
                            (mark["kind"], mark["text"]) if mark else None))
        i = j + 1
    return blocks


# ---------------------------------------------------------------------------------------------------
# commands


def command_lines(block: Block) -> list[str]:
    """The command lines of a shell block: every line of a bash block, the ``$ `` lines of a console or
    output block; continuation lines joined."""
    out, pending = [], ""
    for raw in block.code.splitlines():
        line = pending + raw
        pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        if line.startswith("$ "):
            out.append(line[2:])
        elif block.lang in ("bash", "sh", "shell") and line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


def inceptionkit_args(line: str) -> list[str] | None:
    """The arguments after ``inceptionkit`` in a shell line (``inceptionkit ...``, ``torchrun ... -m
    inceptionkit ...``, ``python -m inceptionkit ...``), or None when the line runs something else."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as e:
        if "inceptionkit" in line:
            raise AssertionError(f"not a shell command line ({e}): {line}") from e
        return None
    for stop in ("|", "&&", ";", ">", "2>", "||"):
        if stop in tokens:
            tokens = tokens[:tokens.index(stop)]
    if not tokens:
        return None
    if tokens[0] == "inceptionkit":
        return tokens[1:]
    if tokens[0] in ("torchrun", "python", "python3", "/usr/bin/time", "time") and "inceptionkit" in tokens:
        k = tokens.index("inceptionkit")
        if tokens[0].endswith("time") or tokens[k - 1] == "-m":
            return tokens[k + 1:]
    return None


def check_command(args: list[str]) -> None:
    """Parse ``args`` as the command line does (the subcommand, its options and arguments, their types),
    without running the command."""
    import click
    import typer.main

    from inceptionkit.cli.main import app

    group = typer.main.get_command(app)
    ctx = group.make_context("inceptionkit", [], resilient_parsing=True)
    args = list(args)
    own = {opt for param in group.params for opt in (*param.opts, *param.secondary_opts)}
    while args and args[0].startswith("-"):
        assert args[0] in own, f"{args[0]} is not an option of inceptionkit itself ({', '.join(sorted(own))})"
        args.pop(0)
    assert args, "no subcommand"
    name, command, rest = group.resolve_command(ctx, args)
    assert command is not None, f"inceptionkit has no command {args[0]!r}"
    try:
        command.make_context(name, rest, parent=ctx)
    except click.exceptions.Exit:  # --help
        pass


def normalized(text: str) -> str:
    return " ".join(text.split())


def run_console(block: Block) -> None:
    """Run each ``$ inceptionkit`` line of ``block`` in-process; the lines shown after it must appear in
    its output."""
    from typer.testing import CliRunner

    from inceptionkit.cli.main import app

    chunks = re.split(r"^\$ ", block.code, flags=re.MULTILINE)
    for chunk in chunks[1:]:
        line, _, shown = chunk.partition("\n")
        args = inceptionkit_args(line)
        assert args is not None, f"{block.where}: not an inceptionkit command: {line}"
        result = CliRunner().invoke(app, args)
        output = normalized(result.output)
        expected_error = "error:" in shown
        assert result.exit_code == (2 if expected_error else 0), (
            f"{block.where}: `{line}` exited {result.exit_code}\n{result.output}")
        for want in shown.splitlines():
            if want.strip():
                assert normalized(want) in output, (
                    f"{block.where}: `{line}` did not print\n{want}\nIt printed:\n{result.output}")


def check_imports(block: Block) -> None:
    """A block that is not run: it parses, and what it imports exists."""
    tree = ast.parse(block.code, block.where)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), block.where, "exec"), {})  # noqa: S102


# ---------------------------------------------------------------------------------------------------
# what the examples name


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One computing thread, as each of test.sh's two workers has: the examples are small, and two
    threads on two busy cores only wait for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def docs_run(tmp_path_factory):
    """The run folder the examples call ``runs/googlenet_cifar-digits``: googlenet_cifar at 1/8 width on
    the 32x32 digits, trained one step (the examples read it; none depends on what it learned)."""
    from inceptionkit.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("docs") / "digits"
    fit(TrainConfig(model="googlenet_cifar", model_kwargs={"width": 0.125}, input_size=(3, 32, 32), epochs=1,
                    batch_size=16, max_steps=1, progress=False, out=str(out), amp="none", seed=0))
    return out


@pytest.fixture(scope="session")
def digit_images():
    """scikit-learn's digits as 32x32 grey PIL images, and their labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [Image.fromarray((im * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BILINEAR)
              for im in digits.images[:400]]
    return images, [int(t) for t in digits.target[:400]]


@pytest.fixture(scope="session")
def photo():
    from PIL import Image
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg"))


def make_files(root: Path, digits_run: Path, digit_images, photo) -> None:
    """The files the examples name, in the reader's working folder."""
    images, labels = digit_images
    (root / "digits").mkdir()
    for digit in range(10):
        images[labels.index(digit)].save(root / "digits" / f"{digit}.png")
    for name, box in (("cat.jpg", (150, 60, 470, 300)), ("photo.jpg", (0, 0, 400, 300))):
        photo.crop(box).save(root / name)
    (root / "photos").mkdir()
    photo.crop((200, 100, 440, 280)).save(root / "photos" / "temple.jpg")
    for digit, name in ((3, "three"), (8, "eight")):
        folder = root / "my_images" / name
        folder.mkdir(parents=True)
        for k, index in enumerate([i for i, t in enumerate(labels) if t == digit][:12]):
            images[index].save(folder / f"{name}_{k}.png")
    photo.crop((0, 0, 1, 1)).save(root / "dot.png")
    (root / "notes.txt").write_text("a file, not a folder\n")
    runs = root / "runs"
    runs.mkdir()
    for name in ("googlenet_cifar-digits", "d", "tour/run"):
        shutil.copytree(digits_run, runs / name)


class Hub:
    """A torch hub cache holding, for each published source the examples load, a checkpoint made here
    from the reference implementation (random weights, the source's own key layout and file format)."""

    def __init__(self, root: Path):
        self.root = root
        self.folder = root / "hub" / "checkpoints"
        self.folder.mkdir(parents=True)
        self.digests: dict[str, str] = {}

    def publish(self, key: str) -> None:
        import torch
        import torchvision
        from safetensors.torch import save_file

        from inceptionkit.weights import SOURCES
        from inceptionkit.weights.hub import sha256_of

        if key in self.digests:
            return
        source = SOURCES[key]
        path = self.folder / source.file_name
        torch.manual_seed(0)
        if key == "googlenet:torchvision":
            net = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
        elif key == "inception_v3:torchvision":
            net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
        else:
            raise AssertionError(f"the docs test has no stand-in for {key}: add one, or mark the block")
        state = net.state_dict()
        if path.suffix == ".safetensors":
            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        else:
            torch.save(state, path)
        self.digests[key] = sha256_of(path)


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    return Hub(tmp_path_factory.mktemp("torch"))


SOURCE_USE = [
    re.compile(r"""create_model\(\s*"(?P<model>\w+)"[^)]*weights\s*=\s*"(?P<tag>\w+)\""""),
    re.compile(r""""(?P<model>[a-z][a-z0-9_]+):(?P<tag>torchvision|timm|cadene)\""""),
]


def sources_used(code: str) -> set[str]:
    """The published sources ``code`` loads (``weights="random"`` and the like load none)."""
    from inceptionkit.errors import UserError
    from inceptionkit.weights import get_source

    keys = set()
    for pattern in SOURCE_USE:
        for m in pattern.finditer(code):
            try:
                keys.add(get_source(m["model"], m["tag"]).key)
            except UserError:
                pass
    return keys


# ---------------------------------------------------------------------------------------------------
# the test


def test_every_page_is_found():
    assert "docs/deploy.md" in PAGES and len(PAGES) >= 10


@pytest.mark.parametrize("page", PAGES)
def test_page(page, tmp_path, monkeypatch, capsys, docs_run, digit_images, photo, hub):
    import matplotlib

    matplotlib.use("Agg")
    from inceptionkit.weights import SOURCES

    blocks = read_blocks(page)
    python = [b for b in blocks if b.lang == "python"]
    runnable = [b for b in python if b.mark is None]
    skipped = [b for b in python if b.mark and b.mark[0] == "no-test"]
    assert runnable, f"{page} has no runnable python example"
    assert len(skipped) <= len(runnable), (
        f"{page}: {len(skipped)} of {len(python)} python blocks are skipped: keep them the minority")
    for block in skipped:
        assert block.mark[1], f"{block.where}: say why the block is not run"
        try:
            check_imports(block)
        except Exception as e:
            raise AssertionError(f"{block.where} (not run): {type(e).__name__}: {e}") from e

    # every command named in a shell block parses
    for block in blocks:
        if block.lang in SHELL:
            for line in command_lines(block):
                args = inceptionkit_args(line)
                if args is not None:
                    try:
                        check_command(args)
                    except Exception as e:
                        raise AssertionError(f"{block.where}: `{line}` does not parse: {e}") from e

    monkeypatch.chdir(tmp_path)
    make_files(tmp_path, docs_run, digit_images, photo)
    code = "".join(b.code for b in runnable)
    monkeypatch.setenv("TORCH_HOME", str(hub.root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for key in sorted(sources_used(code)):
        hub.publish(key)
        monkeypatch.setitem(SOURCES, key, replace(SOURCES[key], sha256=hub.digests[key]))

    namespace = {"__name__": "__docs__"}
    timings = []
    for block in runnable:
        start = time.process_time()
        try:
            exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102 - the docs' own code
        except Exception as e:
            raise AssertionError(f"{block.where}: the example fails: {type(e).__name__}: {e}") from e
        timings.append((time.process_time() - start, block.where))

    for block in blocks:
        if block.mark == ("test", "run"):
            run_console(block)
    if os.environ.get("INCEPTIONKIT_DOCS_TIMINGS"):
        with capsys.disabled():
            for seconds, where in timings:
                print(f"\n{seconds:6.2f} s of CPU {where}", end="")
