"""The package's layers, read from its imports with ``ast``: no circle, no arrow from a lower layer to a
higher one, imports at module top outside the command line (unless optional or kept out of start-up),
and each shared constant defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "inceptionkit"

# Lower layers never import higher ones; a layer may import its own and any lower one.
LAYERS = [
    {"data", "errors", "extras", "files", "hardware", "normalization", "probe", "runs"},
    {"models"},
    {"weights", "factory"},
    {"cost", "lens", "train"},
    {"deploy", "microscope", "transfer"},
    {"tour"},
    {"cli", "__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

OPTIONAL = ("onnx", "onnxruntime", "onnxscript", "torchao", "timm", "torch.utils.tensorboard")  # extras, peers
KEPT_INSIDE = {  # (module, import): why it is imported where it is used
    ("inceptionkit.hardware", "torch"): "the leaf `inceptionkit info` and --help read without torch",
    ("inceptionkit.hardware", "importlib"): "finds optional packages by name",
    ("inceptionkit.cost.diagram", "matplotlib"): "0.3 s that `inceptionkit summary` does not need",
    ("inceptionkit.weights.preprocessing", "torchvision"): "1.5 s that `list` and `summary` (via the factory) "
                                                           "do not need",
    ("inceptionkit.deploy.aot", "torch._inductor"): "1.3 s, only when compiling ahead of time",
    ("inceptionkit.deploy.bench", "torch._inductor"): "1.3 s, only for the compiled peer",
    ("inceptionkit.deploy.bench", "torchvision"): "2 s for the quantized peers, only when benchmarked",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, bool, int]]:
    """``(imported module, at module top, line)`` for every import in module ``name``."""
    path, package = MODULES[name]
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = name.split(".") if package else name.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found += [(target, id(node) in top, node.lineno) for target in targets]
    return found


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "inceptionkit" and len(parts) > 1 else None


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it makes Python run (its imports, and their packages' __init__)."""
    graph = {}
    for name in MODULES:
        edges = set()
        for target, _, _ in _imports(name):
            parts = target.split(".")
            if parts[0] != "inceptionkit" or target == "inceptionkit":
                continue  # the top package only re-exports, lazily
            for end in range(2, len(parts) + 1):
                ancestor = ".".join(parts[:end])
                if ancestor in MODULES and not name.startswith(ancestor + ".") and ancestor != name:
                    edges.add(ancestor)
        graph[name] = edges
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_top_level_module_has_a_layer():
    units = {_unit(name) for name in MODULES} - {None}
    assert units <= set(RANK), f"modules without a layer in LAYERS: {sorted(units - set(RANK))}"


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    upward = [f"{name}:{line} imports {target}" for name in sorted(MODULES) for target, _, line in _imports(name)
              if _unit(name) and _unit(target) and RANK[_unit(target)] > RANK[_unit(name)]]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    assert not _circles(_graph())


def test_the_circle_check_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_sit_at_module_top_outside_the_command_line():
    inside = []
    for name in sorted(MODULES):
        if _unit(name) in ("cli", "__main__"):
            continue
        for target, top, line in _imports(name):
            optional = any(target == o or target.startswith(o + ".") for o in OPTIONAL)
            kept = any((name, prefix) in KEPT_INSIDE for prefix in
                       {".".join(target.split(".")[:n]) for n in range(1, len(target.split(".")) + 1)})
            if not top and not optional and not kept:
                inside.append(f"{name}:{line} imports {target} inside a function")
    assert not inside, "\n".join(inside)


@pytest.mark.parametrize("constant", ["META_KEY", "IMAGENET_MEAN", "IMAGENET_STD", "INCEPTION_MEAN", "INCEPTION_STD",
                                      "CHECKPOINT_DIR", "CONFIG_FILE"])
def test_each_shared_constant_is_defined_once(constant):
    where = []
    for name, (path, _) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == constant
                                                    for t in node.targets):
                where.append(f"{name}:{node.lineno}")
    assert len(where) == 1, f"{constant} is defined at {where}"


def test_the_run_folder_is_read_in_one_place():
    """Only runs.py spells the run folder's files: the others ask it."""
    spelled = []
    for name, (path, _) in MODULES.items():
        if name == "inceptionkit.runs":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("last.json", "best.json", "config.json",
                                                                 "metrics.json"):
                spelled.append(f"{name}:{node.lineno} {node.value!r}")
    assert not spelled, "\n".join(spelled)
