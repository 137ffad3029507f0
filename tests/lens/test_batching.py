"""How many channels to render at once: the fastest per channel, measured."""

import pytest
import torch

from inceptionkit.lens.batching import MOST, PAST_BEST, fastest_batch, render_step_time


def timer(table: dict[int, float], asked: list[int]):
    def seconds(batch: int) -> float:
        asked.append(batch)
        if table[batch] is None:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return table[batch]
    return seconds


def test_the_fastest_batch_per_channel_is_kept_and_the_doubling_stops_past_it():
    """A CPU's shape: 4 channels at once is fastest; 8 and 16 are slower, so 32 is never tried."""
    asked: list[int] = []
    table = {1: 0.100, 2: 0.085, 4: 0.070, 8: 0.080, 16: 0.098, 32: 0.050}
    choice = fastest_batch(timer(table, asked), most=64)
    assert PAST_BEST == 2 and asked == [1, 2, 4, 8, 16]
    assert choice.size == 4 and choice.seconds_per_channel_step == 0.070 and list(choice.timings) == asked
    assert choice.describe().startswith("4 channels at once (1: 100 ms, 2: 85 ms, 4: 70 ms")


def test_a_batch_that_does_not_fit_ends_the_doubling_and_most_bounds_it():
    """A GPU's shape: ever faster per channel until 32 channels do not fit in memory."""
    asked: list[int] = []
    choice = fastest_batch(timer({1: 0.04, 2: 0.02, 4: 0.01, 8: 0.005, 16: 0.003, 32: None}, asked))
    assert asked == [1, 2, 4, 8, 16, 32] and choice.size == 16
    asked.clear()
    assert fastest_batch(timer({1: 0.04, 2: 0.02, 3: 0.015}, asked), most=3).size == 3 and asked == [1, 2, 3]
    with pytest.raises(torch.OutOfMemoryError):  # not even one channel fits: said, not hidden
        fastest_batch(timer({1: None}, []))
    assert MOST >= 16


def test_the_step_time_is_one_channels_share_of_a_real_render_step(digits_net):
    seconds = render_step_time(digits_net, "inception3a", 64)
    one, four = seconds(1), seconds(4)
    assert 0 < one < 5 and 0 < four < 5
