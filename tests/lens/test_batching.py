"""How many channels to render at once: the fastest per channel, measured."""

import pytest
import torch

from inceptionkit.lens.batching import (
    MOST,
    PAST_BEST,
    bytes_per_channel,
    fastest_batch,
    free_memory,
    memory_bound,
    render_step_time,
)

SLOW = 1.0  # a layout no test wants


def timer(contiguous: dict[int, float | None], asked: list[tuple[int, bool]], channels_last: dict | None = None):
    """Seconds per channel from the table of each layout (None: out of memory); every call noted."""
    def seconds(batch: int, last: bool) -> float:
        asked.append((batch, last))
        value = (channels_last or {1: SLOW})[batch] if last else contiguous[batch]
        if value is None:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return value
    return seconds


def test_the_fastest_batch_per_channel_is_kept_and_the_doubling_stops_past_it():
    """A CPU's shape: 4 channels at once is fastest; 8 and 16 are slower, so 32 is never tried."""
    asked: list[tuple[int, bool]] = []
    table = {1: 0.100, 2: 0.085, 4: 0.070, 8: 0.080, 16: 0.098, 32: 0.050}
    choice = fastest_batch(timer(table, asked), most=64)
    assert PAST_BEST == 2 and asked == [(1, False), (1, True), (2, False), (4, False), (8, False), (16, False)]
    assert choice.size == 4 and choice.seconds_per_channel_step == 0.070 and not choice.channels_last
    assert list(choice.timings) == [1, 2, 4, 8, 16]
    assert choice.describe().startswith("4 channels at once, contiguous (1: 100 ms, 2: 85 ms, 4: 70 ms")


def test_the_faster_layout_for_one_channel_is_the_one_the_batches_are_timed_in():
    asked: list[tuple[int, bool]] = []
    last = {1: 0.075, 2: 0.060, 4: 0.070, 8: 0.080}
    choice = fastest_batch(timer({1: 0.100}, asked, channels_last=last), most=8)
    assert asked == [(1, False), (1, True), (2, True), (4, True), (8, True)]
    assert choice.channels_last and choice.size == 2 and choice.timings == last


def test_a_batch_that_does_not_fit_ends_the_doubling_and_most_bounds_it():
    """A GPU's shape: ever faster per channel until 32 channels do not fit in memory."""
    asked: list[tuple[int, bool]] = []
    choice = fastest_batch(timer({1: 0.04, 2: 0.02, 4: 0.01, 8: 0.005, 16: 0.003, 32: None}, asked))
    assert [b for b, _ in asked] == [1, 1, 2, 4, 8, 16, 32] and choice.size == 16
    asked.clear()
    assert fastest_batch(timer({1: 0.04, 2: 0.02, 3: 0.015}, asked), most=3).size == 3
    assert [b for b, _ in asked] == [1, 1, 2, 3]  # powers of two, then the most itself
    assert fastest_batch(timer({1: 0.04}, []), most=1).size == 1
    with pytest.raises(torch.OutOfMemoryError):  # not even one channel fits: said, not hidden
        fastest_batch(timer({1: None}, []))
    assert MOST >= 16


def test_the_step_time_is_one_channels_share_of_a_real_render_step(digits_net):
    seconds = render_step_time(digits_net, "inception3a", 64)
    one, four, last = seconds(1), seconds(4), seconds(4, True)
    assert 0 < one < 5 and 0 < four < 5 and 0 < last < 5


def test_the_memory_bound_stops_the_doubling_before_a_batch_too_large():
    asked: list[tuple[int, bool]] = []
    choice = fastest_batch(timer({1: 0.04, 2: 0.02, 4: 0.01, 8: 0.005}, asked), fits=lambda batch: batch <= 4)
    assert [b for b, _ in asked] == [1, 1, 2, 4] and choice.size == 4


def test_a_channels_bytes_are_three_times_the_outputs_run_up_to_the_layer():
    """conv 3->4 then ReLU on 8x8 (layer "1"): 4 x 8 x 8 floats twice, 2,048 bytes, times 3; the last
    convolution, after the layer, does not run."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    assert bytes_per_channel(model, "1", (3, 8, 8)) == 3 * 2 * 4 * 8 * 8 * 4
    fits = memory_bound(model, "1", (3, 8, 8))
    free = free_memory(torch.device("cpu"))
    if free is None:  # a system that does not say (not Linux): no bound
        assert fits is None
    else:  # Linux: MemAvailable, half of it for a batch
        assert fits(1) and not fits(int(free / (3 * 2 * 4 * 8 * 8 * 4)) + 1)
