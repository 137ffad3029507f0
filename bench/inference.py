"""Inference speed of every optimized path against the peers, per network, batch 1 and 16, in one
process with the variants interleaved (``inceptionkit.deploy.bench``): torchvision (NCHW,
channels_last, torch.compile, bf16 autocast, its int8 models), timm (the same but int8), ONNX Runtime
fp32 and int8 on the peer's own export; ours: optimize() with PyTorch (channels_last, eager or
compiled ahead of time by AOTInductor, bf16, int8 via torchao + AOTInductor) and ONNX Runtime (fp32,
int8). Same weights everywhere (the peer's random initialisation with BatchNorm re-estimated,
converted to ours). Also int8's top-1 agreement
with fp32 on 256 random images of each network (random weights: see docs/benchmarks.md on why this
is a harsh test).

    python bench/inference.py [--networks googlenet,inception_v3] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inceptionkit import hardware  # noqa: E402
from inceptionkit.deploy.bench import as_json, measure, multiply_adds, ratios, variants  # noqa: E402


def int8_agreement(found, ours, images: int = 256) -> dict[str, float]:
    """Share of random images whose top-1 class each int8 variant keeps from our fp32 network."""
    x = torch.randn(images, *ours.pretrained_cfg["input_size"], generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        expected = torch.cat([ours(b) for b in x.split(32)]).argmax(1)
    shares = {}
    same = next(v.weights for v in found if v.family == "inceptionkit")
    for variant in found:
        if variant.dtype == "int8" and variant.weights == same:  # timm's variants hold other weights
            got = torch.cat([torch.as_tensor(variant.forward(b)) for b in x.split(32)])
            shares[variant.name] = float((got.argmax(1) == expected).float().mean())
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default="googlenet,inception_v3,inception_v4,inception_resnet_v2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    machine = hardware.current()
    dtypes = ("fp32", "int8", "bf16") if machine.native_bf16 else ("fp32", "int8")
    print(f"{machine.describe()}; {torch.get_num_threads()} threads; "
          + ", ".join(f"{k} {v}" for k, v in hardware.versions().items() if v))
    report = {"hardware": machine.to_dict(), "versions": hardware.versions()}
    for name in args.networks.split(","):
        started = time.perf_counter()
        found, ours = variants(name, dtypes=dtypes)
        timings = measure(found, tuple(ours.pretrained_cfg["input_size"]), (1, 16), repeats=args.repeats,
                          macs=multiply_adds(ours))
        agreement = int8_agreement(found, ours)
        print(f"\n{name} ({time.perf_counter() - started:.0f} s with building and compiling)")
        for t in timings:
            diff = "" if t.max_rel_diff is None else f"  diff to fp32 {t.max_rel_diff:.1e}"
            print(f"  batch {t.batch:>2}  {t.variant:42s} {t.dtype:5s} {t.images_per_s:8.1f} img/s "
                  f"{t.gflops:6.0f} GFLOP/s{diff}")
        for row in ratios(timings):
            print(f"  batch {row['batch']:>2}  {row['dtype']}: {row['ours']} / {row['peer']} = {row['ratio']:.2f}")
        for variant, share in agreement.items():
            print(f"  int8 top-1 agreement with fp32 on 256 random images: {variant} {share:.3f}")
        report[name] = {**as_json(timings), "int8_agreement": agreement}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
