"""retrain, run twice on the same folder: the first run computes every image's bottleneck, the second
reads them all from the cache and only trains the new classifier. Prints both runs' seconds, the
bottlenecks each computed, the speed-up (the target: at least 3x), and the test images the new
classifier gets right against a classifier trained for a fixed 1000 Adam steps on random batches of
100 (no early stop) on the same bottlenecks.

The network is GoogLeNet (torchvision's variant, random weights with BatchNorm statistics measured on
random images, so that its features tell images apart; ImageNet preprocessing at 224 px);
the folders hold scikit-learn's digits as PNG files: 60 images (3 classes x 20) and 1,000 (10 x 100).

    python bench/retrain.py [--images 60,1000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import inceptionkit  # noqa: E402
from inceptionkit import hardware  # noqa: E402
from inceptionkit.deploy.bench import reestimate_batchnorm  # noqa: E402
from inceptionkit.transfer import retrain  # noqa: E402
from inceptionkit.transfer.bottlenecks import bottlenecks  # noqa: E402
from inceptionkit.transfer.images import scan_images  # noqa: E402
from tests.transfer.test_retrain import write_digits  # noqa: E402  (the tests' digit folders)


def fixed_steps_head(train, validation, classes: int, steps: int = 1000, batch: int = 100, seed: int = 0):
    """A classifier trained for ``steps`` Adam steps on random batches, the best validation accuracy kept."""
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(train.dim, classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.001, generator=generator)
        head.bias.zero_()
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
    best, state = -1.0, None
    for step in range(1, steps + 1):
        features, labels = train.batch(torch.randint(len(train), (min(batch, len(train)),), generator=generator))
        loss = F.cross_entropy(head(features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 and len(validation):
            with torch.no_grad():
                accuracy = (head(validation.features).argmax(1) == validation.labels).float().mean().item()
            if accuracy > best:
                best, state = accuracy, {k: v.clone() for k, v in head.state_dict().items()}
    if state is not None:
        head.load_state_dict(state)
    return head


def bench(model, work: Path, images: int) -> None:
    classes = 3 if images <= 60 else 10
    folder = write_digits(work / f"images-{images}", range(classes), limit=images // classes)
    cache = work / f"cache-{images}"
    times, results = [], []
    for run in ("first", "second"):
        start = time.perf_counter()
        results.append(retrain(model, folder, work / f"out-{images}", cache_dir=cache))
        times.append(time.perf_counter() - start)
        print(f"{images} images, {run} run: {times[-1]:.2f} s, bottlenecks computed {results[-1].computed}, "
              f"from the cache {results[-1].reused}", flush=True)
    print(f"{images} images: speed-up of the second run {times[0] / times[1]:.1f}x", flush=True)
    image_set = scan_images(folder, 10.0, 10.0)
    parts = {split: bottlenecks(model, image_set.part(split), cache) for split in ("train", "validation", "test")}
    start = time.perf_counter()
    head = fixed_steps_head(parts["train"], parts["validation"], len(image_set.classes))
    fixed_steps_s = time.perf_counter() - start
    with torch.no_grad():
        fixed_steps_right = int((head(parts["test"].features).argmax(1) == parts["test"].labels).sum())
    right = round(results[-1].test_accuracy * len(parts["test"]))
    print(f"{images} images: test images right {right} of {len(parts['test'])} (the 1000-step Adam head: "
          f"{fixed_steps_right}, trained in {fixed_steps_s:.2f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="60,1000", help="folder sizes, comma-separated")
    args = parser.parse_args()
    print(f"on {hardware.current().describe()}, {torch.get_num_threads()} threads", flush=True)
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    try:
        torch.manual_seed(0)
        model = inceptionkit.create_model("googlenet", variant="torchvision", aux_logits=False).eval()
        reestimate_batchnorm(model, (3, 224, 224))
        for images in (int(n) for n in args.images.split(",")):
            bench(model, work, images)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
