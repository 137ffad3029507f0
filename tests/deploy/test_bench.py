"""The speed benchmark's arithmetic and its command, and export --int8 from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import inceptionkit
from inceptionkit.cli.main import app
from inceptionkit.deploy.bench import Timing, Variant, measure, ratios

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_ratios_compare_our_fastest_with_each_peer_of_the_same_precision():
    t = [Timing("inceptionkit a", "inceptionkit", "fp32", 16, 100.0, 0.0),
         Timing("inceptionkit b", "inceptionkit", "fp32", 16, 120.0, 0.0),
         Timing("onnxruntime", "onnxruntime", "fp32", 16, 80.0, 0.0),
         Timing("torchvision int8", "torchvision", "int8", 16, 50.0, 0.0),
         Timing("inceptionkit int8", "inceptionkit", "int8", 16, 75.0, 0.0)]
    rows = {(r["dtype"], r["peer"]): r for r in ratios(t)}
    assert rows[("fp32", "onnxruntime")]["ours"] == "inceptionkit b"
    assert rows[("fp32", "onnxruntime")]["ratio"] == pytest.approx(1.5)
    assert rows[("int8", "torchvision int8")]["ratio"] == pytest.approx(1.5)
    assert len(rows) == 2


def test_measure_times_every_variant_at_every_batch_and_counts_flops():
    calls = []
    found = [Variant("one", "inceptionkit", "fp32", lambda x: calls.append(("one", len(x)))),
             Variant("two", "onnxruntime", "fp32", lambda x: calls.append(("two", len(x))))]
    timings = measure(found, (3, 8, 8), (1, 4), repeats=2, macs=1000)
    assert [(t.variant, t.batch) for t in timings] == [("one", 1), ("two", 1), ("one", 4), ("two", 4)]
    assert all(t.images_per_s > 0 and t.gflops == pytest.approx(2 * 1000 * t.images_per_s / 1e9) for t in timings)
    assert calls[:2] == [("one", 1), ("two", 1)]  # warm-up, then rounds taking turns
    assert calls[2:4] == [("one", 1), ("two", 1)] and len(calls) == 2 * (1 + 6) + 2 * (1 + 2)


def test_measure_compares_each_variant_with_its_fp32_reference():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    found = [Variant("same", "inceptionkit", "fp32", net, reference=net),
             Variant("off by 10%", "onnxruntime", "fp32", lambda x: (net(x) * 1.1).numpy(), reference=net),
             Variant("unchecked", "onnxruntime", "fp32", net)]
    with torch.no_grad():
        diffs = {t.variant: t.max_rel_diff for t in measure(found, (3, 8, 8), (2,), repeats=1)}
    assert diffs["same"] == 0.0 and diffs["unchecked"] is None
    assert diffs["off by 10%"] == pytest.approx(0.1, rel=1e-5)  # |0.1 y| / |y| at the largest |y|
    with pytest.raises(ValueError, match="distinct names, got \\['same'\\]"):  # timings are kept by name
        measure([*found, Variant("same", "inceptionkit", "int8", net)], (3, 8, 8), (2,), repeats=1)


def test_the_bench_command_prints_json_with_the_plain_export_as_peer():
    result = CliRunner().invoke(app, ["bench", "teaching_cifar10", "--dtype", "fp32", "--compare", "onnxruntime",
                                      "--no-compile", "--repeats", "1", "--batch", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert {t["variant"] for t in report["timings"]} == {"inceptionkit auto", "inceptionkit torch",
                                                         "inceptionkit onnxruntime", "onnxruntime (plain export)"}
    assert report["hardware"]["architecture"] and report["versions"]["torch"]  # the machine that measured
    assert report["ratios"] and report["ratios"][0]["peer"] == "onnxruntime (plain export)"
    assert all(t["max_rel_diff"] <= 1e-4 for t in report["timings"])  # each computes the network's function
    wrong = CliRunner().invoke(app, ["bench", "teaching_cifar10", "--dtype", "fp64"])
    assert wrong.exit_code == 2 and "unknown fp64" in wrong.output


def test_export_int8_onnx_calibrated_on_digits(tmp_path):
    from inceptionkit.deploy import read_onnx_meta

    inceptionkit.export(inceptionkit.create_model("teaching_cifar10"), tmp_path / "net.safetensors")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "net.safetensors"), "--onnx", str(tmp_path / "q.onnx"),
                                      "--int8", "--calibrate", "digits", "--calibration-images", "64"])
    assert result.exit_code == 0, result.output
    assert "int8 (calibrated on 64 images); top-1 agrees with PyTorch fp32 on" in result.output
    assert read_onnx_meta(tmp_path / "q.onnx")["model"] == "teaching_cifar10"
    import onnx

    ops = {node.op_type for node in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "net.safetensors"), "--onnx", str(tmp_path / "r.onnx"),
                                       "--int8"])
    assert missing.exit_code == 2 and "--calibrate" in missing.output
