"""ONNX export: the file ONNX Runtime runs computes what the PyTorch network does, at any batch size,
and carries the network's classes and preprocessing; a file that would disagree is never written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inceptionkit import create_model
from inceptionkit.deploy import ExportMismatch, export_onnx, read_onnx_meta, session
from inceptionkit.weights.preprocessing import preprocessing_of

# a sample that takes ~15 s on 2 cores: BN-Inception's odd sizes,
# and a one-channel teaching network with a hidden layer in its head (test_optimize exports googlenet
# and Inception-ResNet-v1 rewritten); all nine networks were checked the same way by hand (max
# relative difference 1.8e-08 .. 3.4e-06)
NETWORKS = ["bn_inception", "teaching_fer2013"]


@pytest.mark.parametrize("name", NETWORKS)
def test_onnx_runtime_matches_pytorch_at_other_batch_sizes(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **({"aux_logits": True} if name == "googlenet" else {})).train()
    check = export_onnx(model, tmp_path / "net.onnx")
    assert model.training  # left as it was
    assert check.max_rel_diff <= 1e-4 and check.opset >= 17
    model.eval()
    runtime = session(tmp_path / "net.onnx")
    for batch in (1, 5):
        x = torch.randn(batch, *preprocessing_of(model).input_size)
        with torch.no_grad():
            expected = model(x).numpy()
        got = runtime.run(None, {"image": x.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    meta = read_onnx_meta(tmp_path / "net.onnx")
    assert meta["model"] == name and len(meta["classes"]) == model.num_classes
    assert meta["preprocessing"] == preprocessing_of(model).to_dict() | {
        k: list(v) for k, v in preprocessing_of(model).to_dict().items() if isinstance(v, tuple)}


def test_a_disagreeing_export_is_refused_and_nothing_is_written(tmp_path):
    model = create_model("teaching_cifar10")
    with pytest.raises(ExportMismatch, match="was not written"):
        export_onnx(model, tmp_path / "net.onnx", rtol=0.0)  # no float pipeline matches to 0
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="end in .onnx"):
        export_onnx(model, tmp_path / "net.pb")
