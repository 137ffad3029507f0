"""render: the objective rises, one image per channel, the same seed gives the same images."""

import sys

import torch

from inceptionkit.lens import objectives as obj
from inceptionkit.lens.render import render


def smoothed(trace: torch.Tensor, window: int = 8) -> torch.Tensor:
    return trace.mean(1).unfold(0, window, window).mean(1)


def test_the_objective_rises_for_every_channel_and_doubles_for_most(digits_net):
    """48 steps on each of inception4a's first 8 channels: every objective that is not dead at its end
    ends higher than it started (a unit the redirected ReLU's 16 steps did not wake stays at 0, as in
    Lucid), at least half end twice as high (how far a channel climbs depends on its start and training)."""
    result = render(digits_net, obj.channel("inception4a", range(8)), steps=48, seed=0)
    start, end = result.trace[0], result.trace[-1]
    assert ((end > start) | (end == 0)).all() and (end > start).sum() >= 6, (start, end)
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


def test_a_channel_renders_the_same_picture_alone_and_inside_a_batch_of_16(digits_net):
    """Each picture is seeded from (seed, layer, channel): its start and its jitter do not depend on the
    batch. What remains is float rounding of batched convolutions, which Adam's steps carry along."""
    batch = render(digits_net, obj.channel("inception3b", range(16)), steps=24, seed=1).images
    for c in (0, 7):
        alone = render(digits_net, obj.channel("inception3b", [c]), steps=24, seed=1).images[0]
        assert (alone - batch[c]).abs().max() <= 8 / 255
        assert (alone - batch[c]).abs().mean() <= 1 / 255
    neighbour = render(digits_net, obj.channel("inception3b", [8]), steps=24, seed=1).images[0]
    assert (neighbour - batch[7]).abs().mean() > 10 / 255  # a unit's own picture, not its batch slot's


def test_the_channels_last_layout_changes_a_picture_by_rounding_only(digits_net):
    """Another memory layout rounds the convolutions differently. Units the render drives (objective
    above 0.05 at the end) keep their pictures to 8/255; a unit near zero all along (its gradients
    near rounding noise, which Adam scales up) may go elsewhere, as it may between two machines."""
    first = render(digits_net, obj.channel("inception3b", range(16)), steps=24, seed=1)
    last = render(digits_net, obj.channel("inception3b", range(16)), steps=24, seed=1, channels_last=True)
    driven = first.trace[-1] > 0.05
    assert driven.sum() >= 6
    assert (last.images - first.images)[driven].abs().max() <= 8 / 255
    assert (last.images - first.images).abs().mean() <= 1 / 255


def test_relu_gradients_are_redirected_for_the_first_16_steps_only(digits_net, monkeypatch):
    """Lucid overrides the ReLU gradient for at most 16 steps; after them the true gradient leads."""
    render_module = sys.modules["inceptionkit.lens.render"]
    calls = []
    original = render_module.RedirectedReLU.apply
    monkeypatch.setattr(render_module.RedirectedReLU, "apply", lambda x: calls.append(1) or original(x))
    render(digits_net, obj.channel("inception3a", [0]), steps=5, seed=0, transforms="none")
    per_step = len(calls) / 5  # the ReLUs up to inception3a (the forward stops there)
    calls.clear()
    render(digits_net, obj.channel("inception3a", [0]), steps=20, seed=0, transforms="none")
    assert per_step >= 2 and len(calls) == 16 * per_step

