"""timm's model-test checks (tests/test_models.py), written here for every registered network, and
torchvision's deployment paths: TorchScript, FX (and create_feature_extractor), torch.export and
torch.compile(fullgraph=True), each compared with the eager network."""

from __future__ import annotations

import io

import pytest
import torch
import torch.fx
from torchvision.models.feature_extraction import create_feature_extractor

from inceptionkit import create_model, list_models, model_config
from inceptionkit.models.features import FeatureNet
from inceptionkit.probe import LayerInputError, locate_failure, probing

pytestmark = pytest.mark.filterwarnings(  # torch.jit's deprecation notice; torchvision's train/eval node note
    "ignore:`torch.jit:FutureWarning", "ignore:NOTE. The nodes obtained:UserWarning")
NAMES = list_models()
WITH_AUX = {"googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"}  # networks that can have aux heads
SMALL = {"googlenet": 64, "bn_inception": 64, "googlenet_cifar": 32}  # fast sizes the rules allow; else the minimum


def small_input(name: str, batch: int = 2, in_chans: int | None = None) -> torch.Tensor:
    config = model_config(name)
    c, h, w = config.input_size
    side = SMALL.get(name, config.min_input)
    size = (h, w) if config.sizes.exact else (side, side)
    return torch.randn(batch, in_chans or c, *size)


def build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **kwargs)


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    model = build(name, num_classes=42).train()
    out = model(small_input(name))
    outputs = [out.logits, *out.aux] if isinstance(out, tuple) else [out]
    assert all(o.shape == (2, 42) and torch.isfinite(o).all() for o in outputs)
    torch.cat(outputs).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_freeze_lets_only_the_last_stages_learn_and_keeps_frozen_batchnorm_statistics(name):
    model = build(name, num_classes=5, **({"aux_logits": True} if name in WITH_AUX else {}))
    weighted = [n for n in model.trunk if any(True for _ in getattr(model, n).parameters())]
    learning = model.freeze(min(2, len(weighted)))  # the teaching networks have one stage
    assert learning[0] == weighted[-min(2, len(weighted))] and learning[-1] == model.trunk[-1]
    head = {n for n, _ in model.named_children() if n not in model.trunk and n not in model.aux_taps.values()}
    frozen_aux = [aux for tap, aux in model.aux_taps.items() if tap not in learning]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model.train()(small_input(name))
    outputs = [out.logits, *out.aux] if isinstance(out, tuple) else [out]
    torch.cat(outputs).mean().backward()
    for key, param in model.named_parameters():
        stage = key.split(".")[0]
        assert (param.grad is not None) == (stage in learning or stage in head), key
        assert param.requires_grad == (stage not in model.frozen)
    moved = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert moved <= set(learning)  # BatchNorm statistics moved only where the network learns
    assert {n for n, m in model.named_children() if not m.training} == set(model.frozen) - set(learning)
    assert set(model.frozen) >= set(frozen_aux)
    model.freeze(None)
    assert model.frozen == [] and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="train_stages must be between 0 and"):
        model.freeze(len(weighted) + 1)


@pytest.mark.parametrize("name", NAMES)
def test_forward_features_then_head_is_forward_and_pools_as_told(name):
    model = build(name, num_classes=7).eval()
    x = small_input(name)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape[1] == model.num_features
        assert close(model.forward_head(features), model(x))
        pools = ("flatten", "") if model_config(name).family == "teaching" else ("avg", "max", "avgmax", "")
        for pool in pools:
            model.reset_classifier(0, global_pool=pool)
            out = model(x)
            if pool == "":
                assert torch.equal(out, features)
                continue
            assert out.shape == (2, model.head_hidden_size)
            if pool != "flatten":  # the pre-logits width is num_features, pooled as named
                assert model.head_hidden_size == model.num_features
                avg, top = features.mean((2, 3)), features.amax((2, 3))
                assert close(out, {"avg": avg, "max": top, "avgmax": (avg + top) / 2}[pool], 1e-5)
    with pytest.raises(ValueError, match="global_pool='' .*num_classes=0"):
        model.reset_classifier(3, global_pool="")
    model.reset_classifier(3, global_pool=pools[0])
    assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_default_cfg_has_timms_keys_and_they_are_right(name):
    """timm's test_model_default_cfgs: forward_features at input_size is pool_size; classifier and
    first_conv name weights of the state_dict (the first conv taking the input's channels)."""
    config = model_config(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        features = model.forward_features(torch.zeros(1, *config.input_size))
    cfg = model.default_cfg
    assert cfg is model.pretrained_cfg and cfg["architecture"] == name
    assert tuple(features.shape[-2:]) == cfg["pool_size"]
    state = model.state_dict()
    assert f"{cfg['classifier']}.weight" in state
    first = (cfg["first_conv"],) if isinstance(cfg["first_conv"], str) else cfg["first_conv"]
    assert first and all(state[f"{conv}.weight"].shape[1] == config.input_size[0] for conv in first)
    assert cfg["input_size"] == config.input_size and cfg["num_classes"] == model.num_classes
    for key in ("crop_pct", "interpolation", "mean", "std", "min_input_size", "fixed_input_size"):
        assert key in cfg


@pytest.mark.parametrize("name", NAMES)
def test_features_only_maps_match_feature_info(name):
    config = model_config(name)
    model = build(name).eval()
    features = FeatureNet(model)
    x = torch.randn(1, *config.input_size)
    seen = {}
    hooks = [(getattr(model, f["module"]), lambda m, i, o, n=f["module"]: seen.__setitem__(n, o))
             for f in model.feature_info]
    with torch.no_grad(), probing(model, forward=hooks):
        model(x)
        maps = features(x)
    assert len(maps) == len(features.feature_info) == len(model.feature_info) >= 1
    assert features.feature_info.channels() == [m.shape[1] for m in maps]
    for level, fmap in zip(features.feature_info, maps):
        assert torch.equal(fmap, seen[level["module"]])  # the network's own stage outputs
        reduction = config.input_size[-1] / fmap.shape[-1]
        assert level["reduction"] <= reduction < 1.2 * level["reduction"]
    assert set(features.state_dict()) <= set(model.state_dict())  # the network's weights load as they are
    # create_model(features_only=True, out_indices=...): a subset, negative indices from the end
    picked = create_model(name, features_only=True, out_indices=(0, -1))
    levels = sorted({0, len(model.feature_info) - 1})
    assert picked.feature_info.module_name() == [model.feature_info[i]["module"] for i in levels]
    assert [m.shape[1] for m in picked(x)] == picked.feature_info.channels()
    with pytest.raises(ValueError, match="feature levels"):
        create_model(name, features_only=True, out_indices=(len(model.feature_info),))


@pytest.mark.parametrize("name", NAMES)
def test_one_input_channel(name):
    model = build(name, in_chans=1, num_classes=3).eval()
    assert model.pretrained_cfg["input_size"][0] == 1
    with torch.no_grad():
        assert model(small_input(name, in_chans=1)).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_torchscript_equals_eager_and_saves(name):
    model = build(name, num_classes=5).eval()
    x = small_input(name)
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)  # nothing left as a Python call: it deploys without Python
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        expected = model(x)
        assert close(scripted(x), expected) and close(loaded(x), expected)
        assert close(torch.jit.script(FeatureNet(model))(x)[-1], model.forward_features(x))


@pytest.mark.parametrize("name", NAMES)
def test_fx_trace_and_torchvision_feature_extractor(name):
    model = build(name, num_classes=5).eval()
    x = small_input(name)
    traced = torch.fx.symbolic_trace(model)
    nodes = {f["module"]: f["module"] for f in model.feature_info}
    extractor = create_feature_extractor(model, return_nodes=nodes)  # traces train and eval mode
    with torch.no_grad():
        assert close(traced(x), model(x))
        maps = extractor(x)
        assert close(maps[model.feature_info[-1]["module"]], model.forward_features(x))
    if model.has_aux:  # train mode: the aux heads' outputs too
        model.train()
        out, graph = model(x), torch.fx.symbolic_trace(model)(x)
        assert len(graph.aux) == len(out.aux) == len(model.aux_taps)


@pytest.mark.parametrize("name", NAMES)
def test_torch_export(name):
    model = build(name, num_classes=5).eval()
    x = small_input(name)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        assert close(program.module()(x), model(x))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_compile_fullgraph_matches_eager(name, mode):
    """Dynamo captures every network whole (no graph break), in both modes; AOT autograd's graphs
    match eager, gradients included in train mode, for one network of each kind of block (the graphs
    of the largest take 10-40 s each; the others are captured whole with the eager backend, and
    ``torch.export``, which traces through AOT autograd, runs on every network above). The default
    backend (Inductor) is run by the next test."""
    compiled_matches(name, mode, backend="aot_eager" if name in AOT else "eager")


# aux heads and LRN; factorized modules; residual blocks with scales; a flatten head
AOT = {"googlenet", "inception_v3", "inception_resnet_v1", "teaching_cifar10"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet", "teaching_cifar10"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_compile_with_the_default_backend_matches_eager(name, mode):
    """Inductor compiles a network in 40-60 s on a 2-core CPU: GoogLeNet (aux heads, LRN, ceil-mode
    pools) and the flatten-head net stand for the rest, whose whole-graph capture the test above checks."""
    compiled_matches(name, mode, backend="inductor")


def compiled_matches(name: str, mode: str, backend: str) -> None:
    torch._dynamo.reset()
    model = build(name, num_classes=5).train(mode == "train")
    for module in model.modules():  # no dropout (the aux heads' too): compiled and eager draw other masks
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    x = small_input(name)
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    if mode == "eval":
        with torch.no_grad():
            assert close(compiled(x), model(x), 1e-3)
        return
    params = list(model.parameters())

    def outputs_and_grads(run):  # each backward before the next forward updates BatchNorm's statistics
        out = run(x)
        outs = [out.logits, *out.aux] if isinstance(out, tuple) else [out]
        return outs, torch.autograd.grad(torch.cat(outs).square().mean(), params)

    (eager, eager_grads), (mine, grads) = outputs_and_grads(model), outputs_and_grads(compiled)
    assert len(mine) == len(eager) and all(close(a, b, 1e-3) for a, b in zip(mine, eager))
    assert all(close(a, b, 1e-3) for a, b in zip(grads, eager_grads))


# --- training hooks timm's optimizers and trainers use ---------------------------------------------


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_grad_checkpointing_gives_the_same_gradients(name):
    x = small_input(name)
    grads = []
    for enable in (False, True):
        model = build(name, num_classes=5, drop_rate=0.0).train()
        model.set_grad_checkpointing(enable)
        out = model(x)
        (out.logits.sum() + sum(a.sum() for a in out.aux)).backward()
        grads.append([p.grad for p in model.parameters()])
    assert all(close(a, b, 1e-4) for a, b in zip(*grads))


@pytest.mark.parametrize("name", NAMES)
def test_layer_decay_groups_with_timms_optimizer_factory(name):
    """timm's param_groups_layer_decay reads group_matcher: the stem lowest, the classifier highest,
    every parameter in one group, aux heads with the stage they tap."""
    from timm.optim import create_optimizer_v2

    model = create_model(name, aux_logits=name in WITH_AUX)
    assert model.no_weight_decay() == set()
    optimizer = create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-4, layer_decay=0.5)
    scales = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            scales[p] = group["lr_scale"]
    named = dict(model.named_parameters())
    assert set(map(id, scales)) == set(map(id, named.values()))
    assert scales[named["fc.weight"]] == 1.0
    first = model.trunk[0]
    deepest = named[next(n for n in named if n.startswith(model.trunk[-1] + "."))]
    lowest = scales[named[next(n for n in named if n.startswith(first + "."))]]
    assert lowest < scales[deepest] <= 1.0 if len(model.trunk) > 1 else lowest <= 1.0
    for tap, aux in model.aux_taps.items():
        assert scales[getattr(model, aux).fc.weight if hasattr(getattr(model, aux), "fc") else
                      getattr(model, aux).fc2.weight] == scales[next(getattr(model, tap).parameters())]


# --- input sizes: the declared rule against real forward passes -----------------------------------


def runs(model: torch.nn.Module, side: int | tuple[int, int]) -> bool:
    """Whether the network's layers take the size, without its own up-front check (as the probe runs it)."""
    h, w = (side, side) if isinstance(side, int) else side
    try:
        with locate_failure(model):
            model(torch.zeros(2, model.in_chans, h, w, device=next(model.parameters()).device))
        return True
    except (RuntimeError, ValueError):
        return False


SCAN = {"googlenet": range(1, 40), "googlenet_cifar": range(1, 12), "bn_inception": range(25, 105)}


@pytest.mark.parametrize("name", [n for n in NAMES if model_config(n).family != "teaching"])
def test_the_size_rule_is_what_the_layers_take_in_train_and_eval_mode(name):
    config = model_config(name)
    sides = list(SCAN.get(name, [*range(70, 80), 299, 300]))
    variants = config.variant_sizes or {None: config.sizes}
    for variant, rule in variants.items():
        kwargs = {"variant": variant} if variant else {}
        with torch.device("meta"):
            model = create_model(name, aux_logits=name in WITH_AUX, **kwargs)
        assert model.size_rule == rule
        for mode in (False, True):
            model.train(mode)
            taken = [s for s in sides if runs(model, s)]
            assert taken == [s for s in sides if rule.accepts(s)], (variant, mode)
            refused = next((s for s in sides if not rule.accepts(s)), None)
            if refused is not None:  # refused up front, with the rule and the nearest sizes that work
                with pytest.raises(LayerInputError, match=rf"{refused}x{refused} .*they take .*nearest sides"):
                    model(torch.zeros(2, model.in_chans, refused, refused, device="meta"))


def test_bn_inception_checks_height_and_width_each():
    with torch.device("meta"):
        model = create_model("bn_inception").eval()
        assert runs(model, (224, 96)) and not runs(model, (224, 240))
        with pytest.raises(LayerInputError, match=r"3x224x240 .*does not fit.*nearest sides that work: 230 and 255"):
            model(torch.zeros(1, 3, 224, 240))


def test_teaching_heads_take_their_size_only_and_say_so():
    model = create_model("teaching_cifar10").eval()
    assert model_config("teaching_cifar10").describe_sizes() == "exactly 32x32"
    with pytest.raises(LayerInputError, match=r"teaching_cifar10 needs 3x32x32 input.*got 3x40x40"):
        model(torch.zeros(1, 3, 40, 40))
    assert model.forward_features(torch.zeros(1, 3, 40, 40)).shape == (1, 256, 40, 40)  # the module takes any size


def test_googlenet_variants_state_their_own_sizes():
    config = model_config("googlenet")
    assert config.describe_sizes() == "variant='paper': at least 31x31; variant='torchvision': at least 15x15"
    assert create_model("googlenet", variant="torchvision").size_rule.minimum == 15
