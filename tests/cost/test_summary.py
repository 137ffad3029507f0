"""The per-layer summary, checked against hand arithmetic and torchvision's published op counts."""

import torch
from torch import nn

from inceptionkit import create_model
from inceptionkit.cost import summary


def test_five_by_five_with_and_without_reduction():
    """The articles' example: 28x28x192 -> 32 channels by 5x5, with and without a 1x1 reduce to 16."""
    direct = nn.Conv2d(192, 32, 5, padding=2, bias=False)
    assert summary(direct, (192, 28, 28)).total_macs == 5 * 5 * 192 * 32 * 28 * 28 == 120_422_400
    reduced = nn.Sequential(nn.Conv2d(192, 16, 1, bias=False), nn.Conv2d(16, 32, 5, padding=2, bias=False))
    assert summary(reduced, (192, 28, 28)).total_macs == 12_443_648


def test_googlenet_macs_equal_torchvision_ops():
    """torchvision's googlenet `_ops` is 1.498 G: its MACs, aux heads not run in eval.

    The totals are of what ran, as torchvision's weights meta counts them (num_params 6,624,904,
    the network without aux heads); the aux heads are listed apart and `all_params` adds them back.
    """
    result = summary(create_model("googlenet", variant="torchvision"), (3, 224, 224))
    assert result.total_macs == 1_498_376_192
    assert result.total_params == 6_624_904
    assert [row.name for row in result.not_run] == ["aux1", "aux2"]
    assert result.all_params == 13_004_888


def test_rows_follow_the_forward_pass():
    model = create_model("googlenet_cifar")
    result = summary(model, (3, 32, 32), depth=1)
    by_name = {row.name: row for row in result.rows}
    assert by_name["inception3a"].output_shape == (256, 32, 32)
    assert by_name["inception5b"].output_shape == (1024, 8, 8)
    assert sum(row.params for row in result.rows) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        conv = model(torch.zeros(1, 3, 32, 32))
    assert conv.shape == (1, 10)


# Multiply-adds at the default input, aux heads not run, from ../shared/ARCHITECTURES.md section 6
# (computed there by an independent pure-Python counter; torchvision's `_ops` agree for googlenet and v3).
ARCHITECTURES_MACS = {
    ("googlenet", "paper"): 1_582_671_872,
    ("googlenet", "torchvision"): 1_498_376_192,
    ("bn_inception", None): 2_032_600_064,
    ("inception_v3", None): 5_713_216_096,
    ("inception_v4", None): 12_253_974_624,
    ("inception_resnet_v1", None): 6_206_361_696,
    ("inception_resnet_v2", None): 13_155_794_016,
}


def test_network_macs_equal_the_reference_counts():
    for (name, variant), expected in ARCHITECTURES_MACS.items():
        kwargs = {"variant": variant} if variant else {}
        with torch.device("meta"):
            model = create_model(name, **kwargs)
        assert summary(model, model.config.input_size).total_macs == expected, name
    cifar = summary(create_model("googlenet_cifar"), (3, 32, 32))
    assert round(cifar.total_macs / 1e9, 3) == 1.522  # the document prints it rounded


def test_memory_estimate_equals_torchsummary():
    """torchsummary itself is the reference, on a network of plain layers (where it counts each output once)."""
    import contextlib
    import io

    from torchsummary import summary as torchsummary

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )
    for p in model[1].parameters():
        p.requires_grad_(False)  # a frozen BN: torchsummary counts it as non-trainable too
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        torchsummary(model, (3, 32, 32), device="cpu")
    theirs = {}
    for line in printed.getvalue().splitlines():
        if ":" in line:
            key, value = line.rsplit(":", 1)
            theirs[key.strip()] = value.strip()
    ours = summary(model, (3, 32, 32), depth=1)
    assert f"{ours.total_params:,}" == theirs["Total params"]
    assert f"{ours.trainable_params:,}" == theirs["Trainable params"]
    assert f"{ours.non_trainable_params:,}" == theirs["Non-trainable params"]
    memory = ours.memory_mb
    assert f"{memory['input_size']:.2f}" == theirs["Input size (MB)"]
    assert f"{memory['forward_backward_pass_size']:.2f}" == theirs["Forward/backward pass size (MB)"]
    assert f"{memory['params_size']:.2f}" == theirs["Params size (MB)"]
    assert f"{memory['estimated_total_size']:.2f}" == theirs["Estimated Total Size (MB)"]
    # the same figures by hand: 2 x (16*32*32*3 + 16*16*16 + 32*16*16*2 + 32 + 32 + 10) floats
    outputs = 16 * 32 * 32 * 3 + 16 * 16 * 16 + 32 * 16 * 16 * 2 + 32 + 32 + 10
    assert memory["forward_backward_pass_size"] == 2 * outputs * 4 / 2**20


def test_every_row_shape_is_the_shape_of_a_real_forward_pass():
    model = create_model("inception_v3").eval()
    seen = {}

    def keep(name):
        def hook(_module, _inputs, output):
            seen[name] = output.shape[1:]  # returns None: the output stays as it is

        return hook

    handles = [getattr(model, name).register_forward_hook(keep(name)) for name in model.trunk]
    with torch.no_grad():
        model(torch.zeros(1, 3, 299, 299))
    for h in handles:
        h.remove()
    rows = {row.name: row for row in summary(model, (3, 299, 299), depth=1).rows}
    assert seen and all(rows[name].output_shape == tuple(shape) for name, shape in seen.items())
    assert rows["mixed_7c"].output_shape == (2048, 8, 8)  # ARCHITECTURES.md section 3.2


def test_depth_control_collapses_rows_and_keeps_totals():
    model = create_model("googlenet_cifar", width=0.25)
    shallow = summary(model, (3, 32, 32), depth=1)
    deep = summary(model, (3, 32, 32), depth=3)
    assert all("." not in row.name for row in shallow.rows)
    assert {"inception3a.branch2", "inception3a.branch2.1"} <= {row.name for row in deep.rows}
    assert shallow.total_macs == deep.total_macs and shallow.total_params == deep.total_params
    # a module's activations are the sum of its layers' outputs (float32): 3a's four branch outputs at 32x32
    # plus the inner 1x1/3x3 outputs and the concat
    by_name = {row.name: row for row in deep.rows}
    branch2 = by_name["inception3a.branch2"]
    inner = by_name["inception3a.branch2.0"].output_shape, by_name["inception3a.branch2.1"].output_shape
    assert branch2.activation_bytes == 4 * 3 * sum(torch.Size(s).numel() for s in inner)  # conv, bn, relu each

    import pytest

    for bad in (0, -1):  # an empty table helps nobody: refused, naming the lowest depth
        with pytest.raises(ValueError, match=f"depth must be at least 1.*got {bad}"):
            summary(model, (3, 32, 32), depth=bad)


def test_str_renders_a_table_with_totals():
    text = str(summary(create_model("teaching_cifar10"), (3, 32, 32), title="teaching_cifar10"))
    assert "teaching_cifar10: input 3x32x32" in text
    assert "Total params: 2,761,866" in text  # Keras' count of the article's network
    assert "Estimated Total Size (MB)" in text


def test_an_input_the_network_cannot_take_names_the_layer_and_shape():
    import pytest

    from inceptionkit.cost import LayerInputError

    with torch.device("meta"):
        v4 = create_model("inception_v4")
    with pytest.raises(LayerInputError, match=r"reduction_b\.branch1\.1.*Conv2d 3x3/2.*1x192x2x2"):
        summary(v4, (3, 64, 64))
    with pytest.raises(LayerInputError, match=r"'conv2d_1a.conv' \(Conv2d 3x3/2 3->32\).*1x1x299x299"):
        summary(v4, (1, 299, 299))
    with pytest.raises(ValueError, match="depth must be at least 1"):
        summary(v4, (3, 299, 299), depth=-1)


def test_a_plain_forward_pass_says_what_the_network_takes():
    import pytest

    from inceptionkit.cost import LayerInputError

    model = create_model("googlenet_cifar", width=0.25).eval()
    with pytest.raises(LayerInputError, match=r"stage 'conv1' cannot take its input of shape 1x1x32x32.*takes 3 ch"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(RuntimeError):  # still a RuntimeError for code that catches PyTorch's
        model(torch.zeros(1, 1, 32, 32))
    with torch.device("meta"):
        v3 = create_model("inception_v3")
        with pytest.raises(LayerInputError, match=r"1x3x74x74 .*too small.*at least 75x75"):
            v3.eval()(torch.zeros(1, 3, 74, 74))
        assert v3(torch.zeros(1, 3, 75, 75)).shape == (1, 1000)  # the smallest side that works is not refused
        with pytest.raises(LayerInputError, match=r"2x3x74x74 .*too small.*at least 75x75"):
            v3.train()(torch.zeros(2, 3, 74, 74))
        assert v3(torch.zeros(2, 3, 75, 75)).aux[0].shape == (2, 1000)  # the aux head takes what the trunk takes


def test_layers_that_hand_back_their_input_add_no_memory():
    """Paper GoogLeNet's conv1 is conv (bias) -> Identity (no BN) -> ReLU: two new 64x112x112 tensors, not three."""
    with torch.device("meta"):
        model = create_model("googlenet")
    rows = {row.name: row for row in summary(model, (3, 224, 224)).rows}
    assert rows["conv1"].activation_bytes == 2 * 64 * 112 * 112 * 4
    inplace = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(inplace=True))
    assert summary(inplace, (3, 10, 10)).memory_mb["forward_backward_pass_size"] == 2 * 8 * 8 * 8 * 4 / 2**20


def test_title_defaults_to_the_class_name():
    assert str(summary(nn.Conv2d(3, 8, 3), (3, 8, 8))).startswith("Conv2d: input 3x8x8")
    with torch.device("meta"):
        model = create_model("googlenet_cifar", width=0.25)
    assert summary(model, (3, 32, 32)).title == "GoogLeNetCifar"


def test_totals_count_what_ran_and_the_aux_heads_stand_apart():
    """`list` says googlenet has 6,998,552 params without aux heads, 13,378,280 with: summary agrees."""
    with torch.device("meta"):
        model = create_model("googlenet")  # aux heads built, not run in eval
    result = summary(model, (3, 224, 224))
    no_aux = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux"))
    assert result.total_params == result.trainable_params == no_aux == 6_998_552
    assert sum(row.params for row in result.rows) == result.total_params
    assert [(r.name, r.params) for r in result.not_run] == [
        ("aux1", sum(p.numel() for p in model.aux1.parameters())),
        ("aux2", sum(p.numel() for p in model.aux2.parameters())),
    ]
    assert result.all_params == sum(p.numel() for p in model.parameters()) == 13_378_280
    assert result.memory_mb["params_size"] == 6_998_552 * 4 / 2**20
    text = str(result)
    assert "Total params: 6,998,552" in text and "13,378,280 params with them" in text
    assert "aux1" in text and "not run" in text


class LectureNaiveModule(nn.Module):
    """The lecture's naive module, written as the lecture writes it: each branch a conv+ReLU block."""

    class ConvBlock(nn.Module):
        def __init__(self, in_chs, out_chs, k):
            super().__init__()
            self.conv = nn.Conv2d(in_chs, out_chs, k, padding=k // 2)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(x))

    def __init__(self, in_chs, ch1x1, ch3x3, ch5x5):
        super().__init__()
        self.one = self.ConvBlock(in_chs, ch1x1, 1)
        self.three = self.ConvBlock(in_chs, ch3x3, 3)
        self.five = self.ConvBlock(in_chs, ch5x5, 5)
        self.pool = nn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return torch.cat([self.one(x), self.three(x), self.five(x), self.pool(x)], 1)


def test_torchsummary_convention_reproduces_torchsummary_on_the_lecture_module(capsys):
    """The lecture prints 4.03 MB forward/backward and 4.04 MB total for its naive module on 1x28x28."""
    from torchsummary import summary as torchsummary

    from inceptionkit.models.googlenet import NaiveInception

    for module in (LectureNaiveModule(1, 64, 128, 32), NaiveInception(1, 64, 128, 32)):
        torchsummary(module, (1, 28, 28), device="cpu")
        printed = dict(line.rsplit(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)
        theirs = summary(module, (1, 28, 28), convention="torchsummary")
        memory = theirs.memory_mb
        assert f"{memory['forward_backward_pass_size']:.2f}" == printed["Forward/backward pass size (MB)"]
        assert f"{memory['estimated_total_size']:.2f}" == printed["Estimated Total Size (MB)"]
        assert f"{memory['params_size']:.2f}" == printed["Params size (MB)"]
        assert f"{theirs.total_params:,}" == printed["Total params"]
    lecture = summary(LectureNaiveModule(1, 64, 128, 32), (1, 28, 28), convention="torchsummary").memory_mb
    assert (f"{lecture['forward_backward_pass_size']:.2f}", f"{lecture['estimated_total_size']:.2f}") == (
        "4.03", "4.04")
    # ours counts each tensor once: the three conv outputs, their ReLUs' and the pool's, 2 x 4 bytes each
    ours = summary(LectureNaiveModule(1, 64, 128, 32), (1, 28, 28)).memory_mb
    assert ours["forward_backward_pass_size"] == 2 * 4 * (2 * (64 + 128 + 32) + 1) * 28 * 28 / 2**20
    assert f"{ours['forward_backward_pass_size']:.2f}" == "2.69"
    with __import__("pytest").raises(ValueError, match="convention must be one of inceptionkit, torchsummary"):
        summary(LectureNaiveModule(1, 4, 4, 4), (1, 8, 8), convention="keras")
