"""render: the objective rises, one image per channel, the same seed gives the same images."""

import torch

from inceptionkit.lens import objectives as obj
from inceptionkit.lens.render import render


def smoothed(trace: torch.Tensor, window: int = 8) -> torch.Tensor:
    return trace.mean(1).unfold(0, window, window).mean(1)


def test_the_objective_rises_for_every_channel_and_doubles_for_most(digits_net):
    """48 steps on each of inception4a's first 8 channels: every objective ends higher than it started, at
    least half end twice as high (how far a channel climbs depends on its start and on the training)."""
    result = render(digits_net, obj.channel("inception4a", range(8)), steps=48, seed=0)
    start, end = result.trace[0], result.trace[-1]
    assert (end > start).all(), (start, end)
    assert (end >= 2 * start.clamp_min(1e-3)).sum() >= 4, (start, end)
    windows = smoothed(result.trace)
    assert windows[-1] > windows[0] and windows[-1] >= windows.max() * 0.8
    assert result.images.shape == (8, 3, 32, 32) and 0 <= result.images.min() and result.images.max() <= 1


def test_a_grey_rendering_has_equal_channels_and_still_rises(digits_net):
    result = render(digits_net, obj.channel("inception4a", range(8)), steps=24, seed=0, grey=True)
    images = result.images
    assert images.shape == (8, 3, 32, 32) and torch.equal(images[:, 0], images[:, 1])
    assert torch.equal(images[:, 1], images[:, 2])
    assert (result.trace[-1] > result.trace[0]).all()


def test_a_channel_range_gives_one_image_each_and_the_seed_fixes_them(digits_net):
    first = render(digits_net, obj.channel("inception3b", range(4)), steps=6, seed=3)
    again = render(digits_net, obj.channel("inception3b", range(4)), steps=6, seed=3)
    other = render(digits_net, obj.channel("inception3b", range(4)), steps=6, seed=4)
    assert first.images.shape[0] == 4 and first.trace.shape == (6, 4)
    assert torch.equal(first.images, again.images) and not torch.equal(first.images, other.images)



def test_a_dead_unit_wakes_up_with_redirected_relu(digits_net):
    """A channel whose ReLU is off everywhere on the start image has no gradient: plain ReLU stays at 0,
    Lucid's redirected ReLU lets the optimization find it."""
    start = render(digits_net, obj.channel("inception4a", range(8)), steps=1, seed=0).trace[0]
    dead = [c for c in range(8) if start[c] == 0]
    assert dead, "every channel is alive on the start image: the test needs a dead one"
    objective = obj.channel("inception4a", dead)
    stuck = render(digits_net, objective, steps=24, seed=0, redirect_relu=False)
    woken = render(digits_net, objective, steps=24, seed=0)
    assert torch.all(stuck.trace[-1] == 0)
    assert (woken.trace[-1] > 0).float().mean() >= 0.5  # most wake within 24 steps
