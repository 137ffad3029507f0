"""The layer graph, the papers' depth counts, and multiply-adds against PyTorch's own FLOP counter."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from inceptionkit import create_model, list_models, model_config
from inceptionkit.cost import layer_depth, layer_graph, summary
from inceptionkit.cost.graph import module_input_size


@pytest.mark.parametrize("name", list_models())
def test_macs_are_half_of_torch_flop_counter(name):
    """torch.utils.flop_counter counts conv and matmul FLOPs (2 per multiply-add, biases out): an independent count."""
    size = model_config(name).input_size
    with torch.device("meta"):
        model = create_model(name).eval()
        x = torch.zeros(1, *size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    assert counter.get_total_flops() > 0
    assert summary(model, size).total_macs * 2 == counter.get_total_flops()
    graph = layer_graph(model, size)
    assert sum(node.macs for node in graph.nodes) * 2 == counter.get_total_flops()


def test_googlenet_is_22_layers_deep_27_with_pooling():
    """The paper: "22 layers deep when counting only layers with parameters (or 27 layers if we also count pooling)"."""
    for variant in ("paper", "torchvision"):
        with torch.device("meta"):
            model = create_model("googlenet", variant=variant)
        assert layer_depth(model, (3, 224, 224)) == 22
        assert layer_depth(model, (3, 224, 224), count_pooling=True) == 27


def test_inception_v3_is_48_layers_deep():
    """Keras and MATLAB describe Inception-v3 as "48 layers deep": conv and fc layers on the longest path."""
    with torch.device("meta"):
        model = create_model("inception_v3")
    assert layer_depth(model, (3, 299, 299)) == 48


def test_depth_by_hand_on_a_small_graph():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.short = nn.Conv2d(3, 4, 1)
            self.long = nn.Sequential(
                nn.Conv2d(3, 4, 1), nn.ReLU(), nn.MaxPool2d(3, 1, 1), nn.Conv2d(4, 4, 3, padding=1)
            )
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            y = torch.cat([self.short(x), self.long(x)], 1)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    graph = layer_graph(TwoPaths(), (3, 8, 8))
    assert graph.depth() == 3  # long path conv, conv, then fc
    assert graph.depth(count_pooling=True) == 5  # + the max-pool and the functional average pool
    cat = graph["cat"]
    assert cat.inputs == ["short", "long.3"] and cat.output_shape == (8, 8, 8)
    assert graph["fc"].inputs == ["flatten"]


def test_graph_of_an_inception_module_has_four_branches_into_cat():
    with torch.device("meta"):
        model = create_model("googlenet")
    size = module_input_size(model, "inception3a", (3, 224, 224))
    assert size == (192, 28, 28)  # Table 1: 3a takes the 28x28x192 output of the stem
    graph = layer_graph(model.inception3a, size)
    cat = graph[graph.output]
    assert cat.type == "cat" and cat.output_shape == (256, 28, 28)
    assert cat.inputs == ["branch1.0", "branch2.1", "branch3.1", "branch4.1"]
    starts = [node.name for node in graph.nodes if node.inputs == ["input"]]
    assert starts == ["branch1.0", "branch2.0", "branch3.0", "branch4.0"]
    assert graph["branch3.1"].label == "BasicConv 5x5/1 16->32"
    with pytest.raises(ValueError, match="no module 'inception9z'"):
        module_input_size(model, "inception9z", (3, 224, 224))


def test_collapsed_graph_is_the_trunk():
    with torch.device("meta"):
        model = create_model("inception_v4")
    graph = layer_graph(model, (3, 299, 299), depth=1)
    names = [node.name for node in graph.nodes if node.op == "module"]
    assert names[: len(model.trunk)] == model.trunk
    assert graph["reduction_a"].output_shape == (1024, 17, 17)  # ARCHITECTURES.md section 4.3


def test_residual_blocks_have_a_shortcut_edge():
    with torch.device("meta"):
        model = create_model("inception_resnet_v2")
    graph = layer_graph(model.block35_1, (320, 35, 35))
    add = [node for node in graph.nodes if node.type in ("add", "__add__")]
    assert add and "input" in add[0].inputs  # x + scale * proj(branches(x))


def test_edges_survive_detach_names_stay_unique_and_bf16_works():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.input = nn.Conv2d(3, 4, 1)  # a submodule called "input", like the graph's input node
            self.b = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.b(self.input(x).detach())

    graph = layer_graph(Odd(), (3, 4, 4))
    names = [node.name for node in graph.nodes]
    assert len(set(names)) == len(names)
    assert graph["b"].inputs == [names[1]] and graph[names[1]].inputs == ["input"]
    assert graph.depth() == 2
    half = layer_graph(Odd().to(torch.bfloat16), (3, 4, 4))
    assert half.depth() == 2
    assert summary(Odd().to(torch.bfloat16), (3, 4, 4)).total_macs == 3 * 4 * 16 + 4 * 4 * 16
