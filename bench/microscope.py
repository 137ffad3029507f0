"""The microscope's picture cache: a first run renders every picture, a second on the same inputs
renders none. Prints both runs' seconds, the pictures each made and found, and the speed-up.

The network is the tour's (googlenet_cifar at width 0.25, random weights), on the embedded digits,
with the tour's site settings and layers:

    python bench/microscope.py [--per-branch 2] [--steps 128]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

import inceptionkit
from inceptionkit.microscope import build_site
from inceptionkit.tour import MODEL, TourSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-branch", type=int, default=2, help="channels shown per branch")
    parser.add_argument("--steps", type=int, default=128, help="feature visualization steps")
    args = parser.parse_args()
    tour = TourSettings()
    settings = replace(tour.site, channels=args.per_branch, steps=args.steps)
    torch.manual_seed(0)
    model = inceptionkit.create_model(MODEL, **tour.model_kwargs()).eval()
    work = Path(tempfile.mkdtemp(prefix="microscope-bench-"))
    try:
        times = []
        for run in ("first", "second"):
            site = build_site(model, work, data="digits", layers=tour.layers, settings=settings)
            times.append(site.seconds)
            print(f"{run} run: {site.seconds:.2f} s, pictures made {site.rendered}, found {site.reused}")
        print(f"speed-up of the second run: {times[0] / times[1]:.0f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
