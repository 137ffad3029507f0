"""optimize(backend="auto"): every plan that applies here timed, the fastest accurate one kept, the
decision and what it built cached per network, machine and library versions."""

from __future__ import annotations

import time
import warnings

import pytest
import torch

from inceptionkit import create_model, hardware
from inceptionkit.deploy import optimize
from inceptionkit.deploy.autotune import Candidate, choose

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def small_network() -> torch.nn.Module:
    """googlenet_cifar at quarter width with real BatchNorm statistics: no stage at 1/16 of its
    32x32 input, so no chunked plans."""
    torch.manual_seed(0)
    model = create_model("googlenet_cifar", width=0.25)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 32, 32))
    return model.eval()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.slow
def test_auto_keeps_the_fastest_accurate_plan_and_a_second_call_reuses_it(tmp_path, branch):
    model = small_network()
    started = time.perf_counter()
    first = optimize(model, batch_size=4, budget=3, cache=tmp_path)
    first_s = time.perf_counter() - started
    report = first.optimization
    print(f"on {hardware.current().describe()}, {first_s:.1f} s:\n{report.table()}")
    # by hand: no high-resolution stages, an fp32 network on a CPU: eager (fused), compiled, ONNX Runtime
    assert sorted(c.plan for c in report.candidates) == ["onnxruntime", "torch aot", "torch fused"]
    (chosen,) = [c for c in report.candidates if c.chosen]
    assert all(c.accurate and c.max_rel_diff <= 1e-4 for c in report.candidates)
    assert chosen.images_per_s == max(c.images_per_s for c in report.candidates)
    assert report.backend == chosen.plan.split()[0] and report.compiled == ("aot" in chosen.plan)
    assert report.batch_size == 4 and not report.reused_decision
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert rel(first(x), model(x)) <= 1e-4

    started = time.perf_counter()
    second = optimize(model, batch_size=4, budget=3, cache=tmp_path)
    second_s = time.perf_counter() - started
    print(f"second call: {second_s:.2f} s (first {first_s:.1f} s), {second.optimization.backend}")
    branch(f"chose {chosen.plan} at batch 4 ({first_s:.0f} s; reused in {second_s:.1f} s)")
    assert second.optimization.reused_decision
    assert [c.plan for c in second.optimization.candidates if c.chosen] == [chosen.plan]
    assert second_s < first_s / 10
    if "aot" in chosen.plan:  # the compiled library is loaded from the cache, not built again
        assert second.runner.compiled.loaded == 1
    with torch.no_grad():
        assert torch.allclose(second(x), first(x), rtol=1e-5, atol=1e-5)
        assert rel(second(x), model(x)) <= 1e-4


def test_a_decision_belongs_to_its_machine_and_its_request(tmp_path):
    model = small_network()
    first = optimize(model, compile=False, budget=0.5, cache=tmp_path).optimization
    assert sorted(c.plan for c in first.candidates) == ["onnxruntime", "torch fused"]  # compile=False narrows
    assert optimize(model, compile=False, budget=0.5, cache=tmp_path).optimization.reused_decision
    with hardware.assume(features=("avx2", "fma3", "avx512_f", "avx512_vnni", "avx512_bf16")):
        assert not optimize(model, compile=False, budget=0.5, cache=tmp_path).optimization.reused_decision
    assert not optimize(model, compile=False, batch_size=3, budget=0.5, cache=tmp_path).optimization.reused_decision
    with torch.no_grad():
        model.fc.weight[0, 0] += 1  # other weights, another network
    assert not optimize(model, compile=False, budget=0.5, cache=tmp_path).optimization.reused_decision
    assert not optimize(model, compile=False, budget=0.5, cache=False).optimization.reused_decision


def test_int8_on_a_cpu_other_than_x86_runs_in_onnx_runtime(tmp_path):
    model = small_network()
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with hardware.assume(architecture="aarch64", features=("neon", "dot")):
        auto = optimize(model, "int8", calibration=images, budget=0.5, cache=tmp_path).optimization
        with pytest.warns(UserWarning, match="int8 in PyTorch runs oneDNN's x86 kernels.*ONNX Runtime runs it"):
            forced = optimize(model, "int8", backend="torch", calibration=images).optimization
    assert [c.plan for c in auto.candidates] == ["onnxruntime"] and auto.backend == "onnxruntime"
    assert auto.int8_scheme == forced.int8_scheme == "u8s8"  # Arm's int8 dot products do not saturate
    assert forced.backend == "onnxruntime" and forced.top1_agreement >= 0.75


def test_a_plan_that_fails_here_is_left_out_with_its_reason(monkeypatch):
    import sys

    optimize_module = sys.modules["inceptionkit.deploy.optimize"]  # the package's name is the function

    def broken(*args, **kwargs):
        raise RuntimeError("no ONNX Runtime on this platform\nsecond line")

    monkeypatch.setattr(optimize_module, "_onnx_runner", broken)
    report = optimize(small_network(), compile=False, budget=0.5, cache=False).optimization
    failed = {c.plan: c.error for c in report.candidates if c.error}
    assert failed == {"onnxruntime": "RuntimeError: no ONNX Runtime on this platform"}
    assert report.backend == "torch" and "failed: RuntimeError" in report.table()


def test_choose_takes_the_fastest_of_the_accurate():
    fp32 = [Candidate("a", 100.0, 2e-3), Candidate("b", 80.0, 1e-5), Candidate("c", 50.0, 1e-6)]
    assert choose(fp32, "fp32").plan == "b" and not fp32[0].accurate and fp32[1].chosen
    int8 = [Candidate("a", 300.0, 0.2, top1_agreement=0.90), Candidate("b", 200.0, 0.1, top1_agreement=0.99),
            Candidate("c", 250.0, 0.1, top1_agreement=0.975)]
    assert choose(int8, "int8").plan == "c"  # within 0.02 of the most faithful int8 plan
    # on 64 images of near-ties (random weights) 0.66 and 0.75 agreement are within the sample's noise
    # (two standard errors: 0.108), so the faster plan is as accurate as far as 64 images can tell
    few = [Candidate("torch", 18.0, 0.3, top1_agreement=0.75, agreement_images=64),
           Candidate("onnxruntime", 20.4, 0.3, top1_agreement=0.66, agreement_images=64)]
    assert choose(few, "int8").plan == "onnxruntime"
    many = [Candidate("torch", 18.0, 0.3, top1_agreement=0.75, agreement_images=4096),
            Candidate("onnxruntime", 20.4, 0.3, top1_agreement=0.66, agreement_images=4096)]
    assert choose(many, "int8").plan == "torch"  # on 4096 images the gap is the plan's
    with pytest.raises(RuntimeError, match="no way to run this network in fp32"):
        choose([Candidate("a", 1.0, 0.5)], "fp32")


def test_explicit_choices_still_force_the_plan():
    model = small_network()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forced = optimize(model, backend="torch", chunk=0, cache=False).optimization
    assert forced.backend == "torch" and not forced.candidates and not forced.compiled
