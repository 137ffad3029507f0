"""Feature visualization speed and strength: inceptionkit's render against torch-lucent's render_vis.

Both optimize the same objective (the mean of one channel of inception4a) on the same network
(torchvision's GoogLeNet with random weights, BatchNorm statistics measured on noise, and its
exact copy in our layout), with the same settings: a 224 px Fourier image with decorrelated colour,
Adam lr 0.05, the standard transforms, no input normalization on either side. Rounds alternate
between the two. Prints seconds per step, the ratio, and the objective each final image reaches
(measured the same way, without transforms). Also seconds per DeepDream step at 224 px.

torch-lucent pins kornia 0.4.1 and imports IPython; install them beside the project without
touching its dependencies:

    python -m pip install --no-deps --target /tmp/lucent torch-lucent==0.1.8 kornia==0.4.1 decorator
    PYTHONPATH=/tmp/lucent python bench/lens.py [--steps 20] [--rounds 3] [--channel N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types

import torch
import torchvision

import inceptionkit
from inceptionkit.lens import objectives
from inceptionkit.lens.dream import dream
from inceptionkit.lens.render import render
from inceptionkit.weights import convert
from inceptionkit.weights.load import attach
from inceptionkit.weights.preprocessing import Preprocessing


def import_lucent():
    """lucent's display helpers import IPython, which it never uses when show_image=False."""
    if "IPython" not in sys.modules:
        ipython, display = types.ModuleType("IPython"), types.ModuleType("IPython.display")
        ipython.display = display
        sys.modules.update({"IPython": ipython, "IPython.display": display})
    from lucent.optvis import render as lucent_render

    return lucent_render


@torch.no_grad()
def networks():
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    for module in reference.modules():  # BatchNorm statistics measured on noise: every layer carries a signal
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches
    reference.train()
    for _ in range(3):
        reference(torch.rand(4, 3, 224, 224))
    reference.eval()
    ours = inceptionkit.create_model("googlenet", variant="torchvision", aux_logits=False).eval()
    ours.load_state_dict(convert(reference.state_dict(), "googlenet", "torchvision"))
    identity = Preprocessing((3, 224, 224), resize=224, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return reference, attach(ours, identity, [str(i) for i in range(1000)], "bench")


@torch.no_grad()
def channel_mean(model: torch.nn.Module, image: torch.Tensor, channel: int) -> float:
    seen = {}
    handle = model.inception4a.register_forward_hook(lambda m, i, o: seen.update(x=o))
    try:
        model(image)
    finally:
        handle.remove()
    return seen["x"][0, channel].mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--channel", type=int, default=None, help="default: the most active on a grey image")
    args = parser.parse_args()
    lucent_render = import_lucent()
    reference, ours = networks()
    if args.channel is None:  # random weights leave many channels dead on a plain image: take a live one
        grey = torch.full((1, 3, 224, 224), 0.5)
        means = [channel_mean(reference, grey, c) for c in range(reference.inception4a.branch1.conv.out_channels)]
        args.channel = max(range(len(means)), key=means.__getitem__)
    times = {"inceptionkit": [], "lucent": []}
    reached = {"inceptionkit": [], "lucent": []}
    for round_ in range(args.rounds):
        started = time.perf_counter()
        result = render(ours, objectives.channel("inception4a", args.channel), steps=args.steps, size=224,
                        seed=round_)
        times["inceptionkit"].append((time.perf_counter() - started) / args.steps)
        reached["inceptionkit"].append(channel_mean(reference, result.images, args.channel))

        torch.manual_seed(round_)
        started = time.perf_counter()
        images = lucent_render.render_vis(reference, f"inception4a:{args.channel}", thresholds=(args.steps,),
                                          show_image=False, progress=False, preprocess=False,
                                          param_f=lambda: __import__("lucent.optvis.param", fromlist=["image"])
                                          .image(224))
        times["lucent"].append((time.perf_counter() - started) / args.steps)
        final = torch.from_numpy(images[-1]).permute(0, 3, 1, 2).float()
        reached["lucent"].append(channel_mean(reference, final, args.channel))

    ours_s, theirs_s = statistics.median(times["inceptionkit"]), statistics.median(times["lucent"])
    print(f"render, googlenet inception4a:{args.channel}, 224 px, {args.steps} steps, median of {args.rounds} rounds")
    print(f"  inceptionkit  {ours_s:.3f} s/step   objective reached {statistics.median(reached['inceptionkit']):.3f}")
    print(f"  torch-lucent  {theirs_s:.3f} s/step   objective reached {statistics.median(reached['lucent']):.3f}")
    print(f"  speed, ours / lucent's: {theirs_s / ours_s:.2f}x")

    photo = torch.rand(3, 224, 224, generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    dream(ours, photo, "inception4c", octaves=1, steps=5)
    print(f"DeepDream, inception4c at 224 px: {(time.perf_counter() - started) / 5:.3f} s/step")


if __name__ == "__main__":
    main()
