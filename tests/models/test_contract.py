"""timm's model-test checks (tests/test_models.py), written here for every registered network, and
torchvision's deployment paths: TorchScript, FX (and create_feature_extractor), torch.export and
torch.compile(fullgraph=True), each compared with the eager network."""

from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
import torch.fx
from timm.models._features import feature_take_indices as timm_take_indices
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision.models.feature_extraction import create_feature_extractor

from inceptionkit import InceptionOutputs, create_model, list_models, model_config
from inceptionkit.models.features import FeatureNet, feature_take_indices
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


# timm's tests/test_models.py: its size constants and its _get_input_size, read from our pretrained_cfg
TARGET_BWD_SIZE, MAX_BWD_SIZE, TARGET_FFEAT_SIZE = 128, 320, 96


def timm_input_size(cfg: dict, target: int | None = None) -> tuple[int, int, int]:
    """The input timm's tests feed a model: a fixed size as it is, else min_input_size where the
    default input exceeds ``target`` (each side capped at ``target`` without a min_input_size)."""
    input_size = cfg["input_size"]
    if cfg.get("fixed_input_size"):
        return input_size
    if cfg.get("min_input_size"):
        if target and max(input_size) > target:
            input_size = cfg["min_input_size"]
    elif target and max(input_size) > target:
        input_size = tuple(min(x, target) for x in input_size)
    return input_size


@pytest.mark.parametrize("name", NAMES)
def test_model_backward_as_timm_runs_it(name):
    """timm's test_model_backward: the default build (aux heads on where they are by default) in train
    mode at timm's size (min_input_size: 31 or 75 here), its outputs ``torch.cat``-ed when a tuple (a
    list of aux logits inside the tuple broke that), every parameter given a gradient."""
    model = build(name, num_classes=42).train()
    input_size = timm_input_size(model.pretrained_cfg, TARGET_BWD_SIZE)
    assert max(input_size) <= MAX_BWD_SIZE
    outputs = model(torch.randn(2, *input_size))
    if isinstance(outputs, tuple):
        assert len(outputs) == 1 + len(model.aux_taps) and outputs.logits is outputs[0]
        outputs = torch.cat(outputs)
    outputs.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert sum(p.numel() for p in model.parameters()) == sum(p.grad.numel() for p in model.parameters())
    assert outputs.shape == (2 * (1 + len(model.aux_taps)), 42) and not torch.isnan(outputs).any()


def test_train_outputs_are_a_flat_tuple_with_names_in_every_form():
    logits, aux1, aux2 = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
    out = InceptionOutputs(logits, (aux1, aux2))
    assert out == InceptionOutputs(logits, aux1, aux2) == InceptionOutputs(logits, [aux1, aux2])
    assert len(out) == 3 and out.logits is logits and out.aux == [aux1, aux2]
    assert torch.equal(torch.cat(out), torch.cat([logits, aux1, aux2]))
    copied = pickle.loads(pickle.dumps(out))
    assert type(copied) is InceptionOutputs and all(torch.equal(a, b) for a, b in zip(copied, out))
    leaves, spec = tree_flatten(out)  # as DistributedDataParallel and torch.export take it apart
    assert len(leaves) == 3 and type(tree_unflatten(leaves, spec)) is InceptionOutputs


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
def test_no_classifier_as_timm_checks_it(name):
    """timm's test_model_default_cfgs and _non_std: reset_classifier(0) leaves pre-logits
    (``head_hidden_size`` wide); a network built with num_classes=0 gives ``num_features`` along dim 1
    (a teaching network gave its dense layers' 150 where num_features says 30); with global_pool=''
    the map of pool_size."""
    with torch.device("meta"):
        model = create_model(name).eval()
        cfg = model.pretrained_cfg
        x = torch.zeros(1, *cfg["input_size"])
        pre_logits = model.forward_head(model.forward_features(x), pre_logits=True)
        model.reset_classifier(0)
        assert model.num_classes == 0 and model(x).shape == pre_logits.shape == (1, model.head_hidden_size)
        headless = create_model(name, num_classes=0).eval()
        out = headless(x)
        assert out.shape[-1 if out.ndim == 3 else 1] == headless.num_features
        unpooled = create_model(name, num_classes=0, global_pool="").eval()(x)
        assert unpooled.ndim == 4 and tuple(unpooled.shape[-2:]) == cfg["pool_size"]


def test_teaching_network_built_without_classifier_is_its_module():
    model = create_model("teaching_fer2013", num_classes=0).eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_features(x))
        assert model(torch.randn(1, 1, 40, 40)).shape == (1, 30, 40, 40)  # no flatten head: any size
        model.set_global_pool("flatten")  # the dense layers' pre-logits, as asked
        assert model(x).shape == (2, model.head_hidden_size) == (2, 150)


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


# --- timm's forward_intermediates and prune_intermediate_layers ------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_forward_intermediates_as_timm_checks_them(name):
    """timm's test_model_forward_intermediates at its size (min_input_size here), and the maps are the
    network's own stage outputs (FeatureNet's), the final one forward_features', checkpointed or not."""
    model = build(name).eval()
    input_size = timm_input_size(model.pretrained_cfg, TARGET_FFEAT_SIZE)
    x = torch.randn(1, *input_size)
    channels = [level["num_chs"] for level in model.feature_info]
    reductions = [level["reduction"] for level in model.feature_info]
    with torch.no_grad():
        output, intermediates = model.forward_intermediates(x, output_fmt="NCHW")
        assert len(intermediates) == len(channels)
        for c, r, o in zip(channels, reductions, intermediates):
            assert o.shape[1] == c and o.shape[0] == 1 and not torch.isnan(o).any()
            assert o.shape[2] <= math.ceil(input_size[1] / r) + 1 and o.shape[3] <= math.ceil(input_size[2] / r) + 1
        assert torch.allclose(output, model.forward_features(x))
        assert all(torch.equal(a, b) for a, b in zip(intermediates, FeatureNet(model)(x)))
        model.set_grad_checkpointing()
        assert torch.allclose(model.forward_intermediates(x)[0], output, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("indices", [None, 1, 3, 5, [0], [-1], [3, 1], [1, 1, -5], (2, -2)])
def test_feature_indices_are_timms(indices):
    assert feature_take_indices(5, indices) == timm_take_indices(5, indices)


def test_feature_indices_out_of_range_are_refused():
    for wrong in (0, 6, [5], [-6], [], "1", [1.0]):
        with pytest.raises(ValueError, match="indices"):
            feature_take_indices(5, wrong)
    with torch.device("meta"):
        model = create_model("googlenet_cifar")
    with pytest.raises(ValueError, match="output_fmt must be 'NCHW'"):
        model.forward_intermediates(torch.zeros(1, 3, 32, 32, device="meta"), output_fmt="NHWC")


@pytest.fixture(scope="module")
def v3_pair():
    """timm's inception_v3 and ours with its weights (converted), in eval mode."""
    timm = pytest.importorskip("timm")
    from inceptionkit.weights import convert

    torch.manual_seed(0)
    reference = timm.create_model("inception_v3", pretrained=False).eval()
    if not hasattr(reference, "forward_intermediates"):
        pytest.skip("this timm's inception_v3 has no forward_intermediates")
    ours = create_model("inception_v3", aux_logits=False)
    ours.load_state_dict(convert(reference.state_dict(), "inception_v3", "timm"))
    return reference, ours.eval()


@pytest.mark.parametrize("kwargs", [
    {}, {"indices": 2}, {"indices": [3, 0]}, {"indices": [-2], "stop_early": True},
    {"indices": 1, "intermediates_only": True}, {"indices": (1, -1), "stop_early": True, "intermediates_only": True},
], ids=str)
def test_forward_intermediates_equal_timms_inception_v3(v3_pair, kwargs):
    reference, ours = v3_pair
    x = torch.randn(2, 3, 75, 75, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs, mine = reference.forward_intermediates(x, **kwargs), ours.forward_intermediates(x, **kwargs)
    if not kwargs.get("intermediates_only"):
        assert torch.allclose(mine[0], theirs[0], atol=1e-5)
        theirs, mine = theirs[1], mine[1]
    assert len(mine) == len(theirs) >= 1
    assert all(a.shape == b.shape and torch.allclose(a, b, atol=1e-5) for a, b in zip(mine, theirs))


def test_prune_intermediate_layers_equals_timms_inception_v3(v3_pair):
    reference, ours = map(copy.deepcopy, v3_pair)
    assert ours.prune_intermediate_layers([1, -3]) == reference.prune_intermediate_layers([1, -3]) == [1, 2]
    assert ours.num_features == ours.head_hidden_size == reference.num_features == 288
    x = torch.randn(2, 3, 75, 75, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5)  # the unpooled mixed_5d map
        assert torch.allclose(ours.forward_intermediates(x, indices=[1, 2])[1][1], ours(x))


def test_prune_drops_the_stages_after_the_last_level_and_the_aux_heads():
    model = build("googlenet", num_classes=5)
    names = [level["module"] for level in model.feature_info]
    assert model.prune_intermediate_layers(indices=[0, 2]) == [0, 2]
    kept = model.trunk[:model.trunk.index(names[2]) + 1]
    assert all(isinstance(getattr(model, n), torch.nn.Identity) for n in model.trunk[len(kept):])
    weighted = {n for n in kept if any(True for _ in getattr(model, n).parameters())}
    assert {k.split(".")[0] for k in model.state_dict()} == weighted  # no aux heads, no classifier
    assert model.aux1 is None and not model.has_aux and model.num_features == model.feature_info[2]["num_chs"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), model.forward_intermediates(x, indices=2, intermediates_only=True)[0])
    assert isinstance(model.train()(x), torch.Tensor)  # no aux outputs in train mode either
    model.reset_classifier(3, "avg")  # a new head on the last kept level
    assert model.eval()(x).shape == (2, 3)
    full = build("googlenet_cifar")  # the deepest level kept and prune_head=False: nothing changes
    assert full.prune_intermediate_layers(indices=2, prune_head=False) == [2, 3] and full.num_classes == 10


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
    sides = list(SCAN.get(name, [*range(72, 78), 299]))  # the minimum (75) and its neighbours, and a large side
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


@pytest.mark.parametrize("name", [n for n in NAMES if model_config(n).family != "teaching"])
def test_non_square_inputs_at_the_declared_minimum_side(name):
    """pretrained_cfg's min_input_size side beside another (the default side, 8 more, twice and half the
    minimum), either way round, in train mode (aux heads on): what runs is what the declared rule takes.
    BN-Inception refuses 62 beside 31, as its rule says and timm's one min_input_size cannot say."""
    with torch.device("meta"):
        model = create_model(name, aux_logits=name in WITH_AUX).train()
    cfg, rule = model.pretrained_cfg, model.size_rule
    side = cfg["min_input_size"][1]
    assert side == rule.minimum and runs(model, side)
    for other in sorted({cfg["input_size"][1], side + 8, 2 * side, max(1, side // 2)}):
        for size in ((side, other), (other, side)):
            assert runs(model, size) == rule.accepts(other), size


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
