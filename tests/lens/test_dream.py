"""DeepDream: the layer objective rises, size and range kept, tiles bound what one pass sees, zoom GIFs."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

from inceptionkit.lens.activations import activations
from inceptionkit.lens.dream import dream, dream_zoom, guided
from inceptionkit.lens.render import model_input
from inceptionkit.weights.preprocessing import preprocessing_of


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """scikit-learn's china.jpg shrunk to 96 x 64, C x H x W in [0, 1]."""
    picture = Image.fromarray(load_sample_image("china.jpg")).resize((96, 64))
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 255


def layer_energy(model, image: torch.Tensor, layer: str) -> float:
    x = model_input(preprocessing_of(model), resize=False)(image[None])
    return activations(model, x, layer)[layer].pow(2).mean().item()


def test_dreaming_raises_the_layer_objective_and_keeps_the_picture_shape(digits_net, photo):
    out = dream(digits_net, photo, "inception4a", octaves=2, steps=6, seed=0)
    assert out.shape == photo.shape and 0 <= out.min() and out.max() <= 1
    assert (out - photo).abs().mean() > 0.01
    assert layer_energy(digits_net, out, "inception4a") > 1.5 * layer_energy(digits_net, photo, "inception4a")
    assert torch.equal(out, dream(digits_net, photo, "inception4a", octaves=2, steps=6, seed=0))  # seeded


def test_tiles_bound_what_one_forward_pass_sees(digits_net, photo):
    sides = []
    handle = digits_net.register_forward_pre_hook(lambda m, inputs: sides.append(tuple(inputs[0].shape[-2:])))
    try:
        big = torch.nn.functional.interpolate(photo[None], size=(128, 192), mode="bilinear")[0]
        out = dream(digits_net, big, "inception3b", octaves=1, steps=2, tile=48)
    finally:
        handle.remove()
    assert out.shape == big.shape and sides and max(max(s) for s in sides) <= 48


def test_guided_dreaming_moves_towards_the_guide(digits_net, photo):
    guide_image = photo.flip(-1)
    prep = preprocessing_of(digits_net)
    guide = activations(digits_net, model_input(prep, resize=False)(guide_image[None]), "inception4a")["inception4a"]
    objective = guided("inception4a", guide)
    x = model_input(prep, resize=False)
    before = objective(activations(digits_net, x(photo[None]), "inception4a")).item()
    out = dream(digits_net, photo, objective, octaves=1, steps=6)
    after = objective(activations(digits_net, x(out[None]), "inception4a")).item()
    assert after > before


def test_zoom_feedback_writes_every_frame_as_a_gif(digits_net, photo, tmp_path):
    frames = dream_zoom(digits_net, photo, "inception3b", frames=4, zoom=1.1, octaves=1, steps=2,
                        output=tmp_path / "zoom.gif")
    assert len(frames) == 4 and all(f.shape == photo.shape for f in frames)
    with Image.open(tmp_path / "zoom.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 4 and gif.size == (96, 64)
