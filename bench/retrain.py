"""retrain's bottleneck cache: the first run computes every image's bottleneck, a second run on the
same folder reads them all from the cache. Prints both runs' seconds, the bottlenecks each computed,
and the speed-up (the issue's target: at least 3x).

The network is GoogLeNet (torchvision's variant, random weights, ImageNet preprocessing at 224 px);
the folder holds scikit-learn's digits as PNG files, two classes:

    python bench/retrain.py [--images 200] [--steps 1000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import inceptionkit  # noqa: E402
from inceptionkit.transfer import retrain  # noqa: E402
from tests.transfer.test_retrain import write_digits  # noqa: E402  (the tests' digit folders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images in all (two classes)")
    parser.add_argument("--steps", type=int, default=1000, help="head training steps (both runs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    try:
        folder = write_digits(work / "images", (3, 8), limit=args.images // 2)
        torch.manual_seed(0)
        model = inceptionkit.create_model("googlenet", variant="torchvision", aux_logits=False).eval()
        times = []
        for run in ("first", "second"):
            start = time.perf_counter()
            result = retrain(model, folder, work / "out", cache_dir=work / "cache", steps=args.steps)
            times.append(time.perf_counter() - start)
            print(f"{run} run: {times[-1]:.2f} s, bottlenecks computed {result.computed}, "
                  f"from the cache {result.reused}")
        print(f"speed-up of the second run: {times[0] / times[1]:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
