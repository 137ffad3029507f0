"""A network trained here on the digits, small and quick, for the lens tests."""

import pytest

from inceptionkit.train import TrainConfig, fit
from inceptionkit.weights import load


@pytest.fixture(scope="session")
def digits_net(tmp_path_factory):
    """googlenet_cifar at 1/8 width on 32x32 digits, two short epochs: it has learned strokes."""
    out = tmp_path_factory.mktemp("lens") / "digits"
    fit(TrainConfig(model="googlenet_cifar", model_kwargs={"width": 0.125}, input_size=(3, 32, 32), epochs=2,
                    batch_size=32, max_steps=12, progress=False, out=str(out), amp="none", seed=0))
    return load(out).eval()
