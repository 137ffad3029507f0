"""GoogLeNet's Table 1, rebuilt from the model, against the paper's printed figures and hand counts."""

import pytest
import torch
from torch import nn

from inceptionkit import create_model
from inceptionkit.cost import summary, table1

# ARCHITECTURES.md section 1.1, "params [computed, weights only]" and "MACs [computed]", by hand arithmetic
HAND = {
    "conv1": (9_408, 118.0), "conv2+conv3": (114_688, 359.7), "inception3a": (163_328, 128.0),
    "inception3b": (388_096, 304.3), "inception4a": (375_552, 73.6), "inception4b": (448_512, 87.9),
    "inception4c": (509_440, 99.9), "inception4d": (604_672, 118.5), "inception4e": (867_328, 170.0),
    "inception5a": (1_042_432, 51.1), "inception5b": (1_442_816, 70.7), "fc": (1_024_000, 1.0),
}


@pytest.fixture(scope="module")
def table():
    return table1()


def test_rows_match_the_hand_counts(table):
    rows = {row.name: row for row in table.rows}
    for name, (weights, mmacs) in HAND.items():
        assert rows[name].weights == weights, name
        assert round(rows[name].macs / 1e6, 1) == mmacs, name
    assert [r.type for r in table.rows][:5] == ["convolution", "max pool", "convolution", "max pool", "inception (3a)"]
    assert rows["inception4e"].output_size == "14x14x832" and rows["inception5b"].output_size == "7x7x1024"
    assert rows["conv1"].patch == "7x7/2" and rows["global_pool"].patch == "7x7/1"
    assert rows["inception4c"].filters == {"#1x1": 128, "#3x3 reduce": 128, "#3x3": 256, "#5x5 reduce": 24,
                                          "#5x5": 64, "pool proj": 64}
    assert rows["head_drop"].type == "dropout (40%)"


def test_rows_agree_with_the_paper_except_the_three_it_gets_wrong(table):
    disagree = {row.name for row in table.rows if not row.agrees}
    assert disagree == {"conv1", "inception4c", "inception5a"}
    rows = {row.name: row for row in table.rows}
    # within the paper's rounding, by hand: 3a 163,328 / 1024 = 159.5K printed 159K; 128.0M printed 128M
    assert abs(rows["inception3a"].params_k - 159) < 1 and abs(rows["inception3a"].ops_m - 128) < 1
    assert "depthwise-separable" in rows["conv1"].note and "463K" in rows["inception4c"].note
    assert all(row.note == "" for row in table.rows if row.name not in disagree)
    assert "* inception (5a): paper prints 1072K / 54M" in str(table)


def test_depth_is_22_and_27(table):
    assert (table.depth, table.depth_with_pooling) == (22, 27)
    assert sum(row.depth for row in table.rows) == 22  # the depth column adds up to the network's depth
    assert table.total_macs == 1_582_671_872  # the whole paper network (ARCHITECTURES.md section 6)


def test_the_paper_conv1_figures_are_a_separable_7x7():
    """The note's claim, counted: depthwise 7x7 with 8 filters per input channel, then 1x1 to 64, at 112x112."""
    separable = nn.Sequential(nn.Conv2d(3, 24, 7, 2, 3, groups=3, bias=False), nn.Conv2d(24, 64, 1, bias=False))
    result = summary(separable, (3, 224, 224))
    assert result.total_params == 7 * 7 * 24 + 24 * 64 == 2_712  # printed "2.7K"
    assert round(result.total_macs / 1e6) == 34


def test_other_variants_get_no_paper_columns():
    with torch.device("meta"):
        torchvision = create_model("googlenet", variant="torchvision", aux_logits=False)
    table = table1(torchvision)
    assert all(row.paper_params_k is None and row.note == "" for row in table.rows)
    assert table.total_macs == 1_498_376_192  # torchvision's `_ops` 1.498
    assert {row.name: row.patch for row in table.rows}["maxpool4"] == "2x2/2"
    with pytest.raises(TypeError, match="GoogLeNet"):
        table1(nn.Conv2d(3, 3, 1))
