"""Fourier against pixels at a matched objective: the share of spectral energy above half the Nyquist
frequency in the final pictures, for channels of the given layers, without jitter and with Lucid's
standard transforms (inceptionkit.lens.spectrum.compare_parameterizations).

    python bench/spectrum.py WEIGHTS [--layers inception3b,inception4c] [--channels 8] [--steps 256]

WEIGHTS is what ``inceptionkit.load`` takes: a run folder (the tour's is runs/tour/run), a weights
file, or NAME:SOURCE such as googlenet:torchvision where its weights are in the torch hub cache.
"""

from __future__ import annotations

import argparse

import torch

from inceptionkit import hardware
from inceptionkit.lens import objectives
from inceptionkit.lens.spectrum import compare_parameterizations
from inceptionkit.weights import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="a run folder, a weights file or NAME:SOURCE")
    parser.add_argument("--layers", default="inception3b,inception4c", help="comma-separated layers")
    parser.add_argument("--channels", type=int, default=8, help="channels 0..N-1 of each layer")
    parser.add_argument("--steps", type=int, default=256, help="Fourier steps (the pixels stop where they match)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load(args.weights).eval()
    print(f"{args.weights} on {hardware.current().describe()}, {torch.get_num_threads()} threads")
    print(f"{'layer':<14} {'transforms':<10} {'fourier':>8} {'pixels':>8} {'pixel steps':>11} {'pixels/fourier':>15}")
    for layer in args.layers.split(","):
        for transforms in ("none", "standard"):
            found = compare_parameterizations(model, objectives.channel(layer, range(args.channels)),
                                              steps=args.steps, transforms=transforms, seed=args.seed)
            print(f"{layer:<14} {transforms:<10} {found.fourier_share:>8.3f} {found.pixel_share:>8.3f} "
                  f"{found.pixel_steps:>11} {found.pixel_share / found.fourier_share:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
