"""The hardware record: read once, agreeing with what the kernel and oneDNN say of this CPU, and
overridable in a test to take the other branch."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from inceptionkit import hardware
from inceptionkit.cli.main import app

CPUINFO = Path("/proc/cpuinfo")


def kernel_flags() -> set[str]:
    """The CPU flags Linux reports (the first processor's), an independent reading of cpuid."""
    for line in CPUINFO.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not CPUINFO.exists() or platform.machine() != "x86_64", reason="reads Linux's x86 cpu flags")
def test_the_record_agrees_with_the_kernels_cpu_flags():
    machine, flags = hardware.detect(), kernel_flags()
    assert machine.architecture == "x86_64" and machine.x86
    for ours, linux in [("avx2", "avx2"), ("avx512_f", "avx512f"), ("avx512_vnni", "avx512_vnni"),
                        ("avx_vnni", "avx_vnni"), ("avx512_bf16", "avx512_bf16"), ("amx_int8", "amx_int8")]:
        assert (ours in machine.features) == (linux in flags), ours
    assert machine.vnni == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)
    assert machine.logical_cpus == len(os.sched_getaffinity(0)) and 1 <= machine.physical_cores <= machine.logical_cpus
    assert machine.kernels == torch.backends.cpu.get_cpu_capability()


def test_native_bf16_agrees_with_onednn():
    """oneDNN's own check of bf16 support is the reference (x86; elsewhere it may not be compiled in)."""
    if not hardware.current().x86:
        pytest.skip("oneDNN's bf16 check is for x86")
    assert hardware.detect().native_bf16 == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_assume_overrides_the_record_inside_the_block_only():
    real = hardware.current()
    with hardware.assume(architecture="x86_64", features=("avx2", "fma3")) as plain:
        assert hardware.current() is plain and not plain.vnni and not plain.native_bf16
        with hardware.assume(features=("avx2", "avx512_f", "avx512_vnni", "avx512_bf16")):
            assert hardware.current().vnni and hardware.current().native_bf16
        assert hardware.current() is plain
        assert (plain.key() == real.key()) == (plain == real)  # the key of a cached decision follows the record
    with hardware.assume(architecture="aarch64", features=("neon", "dot", "bf16")) as arm:
        assert not arm.x86 and not arm.vnni and arm.native_bf16  # Arm's int8 dot products do not saturate
    assert hardware.current() == real and hardware.detect() is hardware.detect()  # detected once


def test_info_prints_the_machine_and_the_versions():
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["hardware"]["architecture"] == hardware.current().architecture
    assert record["hardware"]["vnni"] == hardware.current().vnni
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    text = CliRunner().invoke(app, ["info"]).output
    assert hardware.current().describe() in text and "torch " in text
