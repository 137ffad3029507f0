"""The articles' hand arithmetic: 1x1 reductions and factorizations, and the table of every network."""

import pytest
from torch import nn

from inceptionkit.cost import (
    compare_modules,
    conv_stack,
    five_vs_two_3x3,
    naive_vs_reduced,
    network_table,
    parse_stack,
    square_vs_asymmetric,
)


def test_reduction_before_the_5x5():
    """28x28x192 -> 32 channels: 5*5*192*32*28*28 = 120,422,400 alone; with a 1x1 to 16 first, 12,443,648."""
    result = compare_modules(
        {"5x5": conv_stack(192, "5x5:32"), "1x1 then 5x5": conv_stack(192, "1x1:16,5x5:32")}, (192, 28, 28)
    )
    assert result["5x5"].macs == 120_422_400
    assert result["1x1 then 5x5"].macs == 28 * 28 * (192 * 16 + 5 * 5 * 16 * 32) == 12_443_648
    assert result["5x5"].params == 5 * 5 * 192 * 32
    assert result["1x1 then 5x5"].output_shape == (32, 28, 28)


def test_naive_vs_reduced_inception_3a():
    result = naive_vs_reduced(192, 28, 64, 96, 128, 16, 32, 32)
    naive, reduced = result.rows
    assert naive.macs == 28 * 28 * 192 * (64 + 9 * 128 + 25 * 32) == 303_464_448
    assert reduced.macs == 163_328 * 28 * 28  # Table 1's 3a: 163,328 weights (ARCHITECTURES.md 1.1)
    assert naive.output_shape == (64 + 128 + 32 + 192, 28, 28)  # the pool passes all 192 channels on
    assert reduced.output_shape == (256, 28, 28)


def test_two_3x3_save_28_percent_of_a_5x5():
    result = five_vs_two_3x3(64, 35)
    assert result.ratio("5x5", "two 3x3") == pytest.approx(25 / 18)
    assert result["5x5"].params / result["two 3x3"].params == pytest.approx(25 / 18)
    assert result["5x5"].output_shape == result["two 3x3"].output_shape == (64, 35, 35)


@pytest.mark.parametrize("n", [3, 5, 7])
def test_asymmetric_factorization_costs_2_over_n(n):
    result = square_vs_asymmetric(n, 192, 17)
    assert result.ratio(f"{n}x{n}", f"1x{n} + {n}x1") == pytest.approx(n * n / (2 * n))
    if n == 3:
        assert result.ratio("3x3", "1x3 + 3x1") == pytest.approx(9 / 6)  # the paper's "33% cheaper"
    if n == 7:  # Mixed_6e's 7x7 branch (ARCHITECTURES.md section 8): 1,806,336 vs 516,096 weights
        assert (result["7x7"].params, result["1x7 + 7x1"].params) == (1_806_336, 516_096)


def test_bad_specs_are_named():
    assert parse_stack("1x7:192, 7x1:192") == [((1, 7), 192), ((7, 1), 192)]
    with pytest.raises(ValueError, match="KxK:CHANNELS"):
        parse_stack("5x5")
    with pytest.raises(ValueError, match="odd"):
        parse_stack("4x4:8")
    with pytest.raises(ValueError, match="odd kernel"):
        square_vs_asymmetric(4, 8, 8)


def test_compare_modules_takes_any_module_and_a_list():
    result = compare_modules([nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.Conv2d(8, 8, 1)], (8, 4, 4))
    assert [row.macs for row in result.rows] == [9 * 8 * 8 * 16, 8 * 8 * 16]
    assert result.rows[1].params == 8 * 8 + 8  # the 1x1 keeps its bias
    assert "vs first" in str(result)


def test_network_table_rows():
    rows = {row.name: row for row in network_table(["googlenet", "inception_v3", "teaching_cifar10"])}
    assert (rows["googlenet"].depth, rows["googlenet"].depth_with_pooling) == (22, 27)
    assert rows["inception_v3"].params == 23_834_568 and rows["inception_v3"].macs == 5_713_216_096
    assert rows["inception_v3"].input_size == (3, 299, 299)
    assert rows["teaching_cifar10"].params == 2_761_866  # Keras' count for the article's network
