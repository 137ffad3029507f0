"""The microscope at the scale of a whole ImageNet network: seconds per channel of feature visualization
for GoogLeNet at 224 px, rendered one channel at a time, in the batch the microscope measures for the
machine, and in two processes sharing the cores (two torchrun ranks' work); then the projected time
of a site of every channel of the nine Inception modules at 512 steps.

Each figure is one channel's share of a render step, timed over ``--steps`` steps after a first one
(a step costs the same all through a render but its first 16, whose redirected ReLU gradient costs a
little more, so 512 steps cost about 512 times as much). "alone" is one channel at a time in the
contiguous layout; "measured" is the batch and layout the microscope measures and keeps (cl:
channels_last); "2 procs" two processes at that batch, the cores split between them:

    python bench/microscope_whole.py [--variant torchvision] [--size 224] [--steps 3] [--layers inception4a,...]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.multiprocessing as mp

import inceptionkit
from inceptionkit import hardware
from inceptionkit.lens import objectives, render
from inceptionkit.lens.activations import activations
from inceptionkit.lens.batching import fastest_batch, render_step_time

MODULES = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
           "inception5a", "inception5b"]
SITE_STEPS = 512


def network(variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return inceptionkit.build_model("googlenet", variant=variant).eval()


def _rank(rank: int, variant: str, layer: str, batch: int, last: bool, size: int, steps: int, threads: int,
          barrier, results) -> None:
    """One of two processes: ``batch`` channels of ``layer`` (its own), timed from a common start."""
    torch.set_num_threads(threads)
    model = network(variant)
    channels = activations(model, torch.zeros(1, 3, size, size), layer)[layer].shape[1]
    mine = [(rank * batch + c) % channels for c in range(batch)]
    render(model, objectives.channel(layer, mine), steps=1, size=size, channels_last=last)  # allocate first
    barrier.wait()
    start = time.perf_counter()
    render(model, objectives.channel(layer, mine), steps=steps, size=size, redirect_relu=False, channels_last=last)
    results.put(time.perf_counter() - start)


def two_processes(variant: str, layer: str, batch: int, last: bool, size: int, steps: int) -> float:
    """Seconds per channel and step with two processes rendering ``batch`` channels each, the cores split."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    threads = max(1, torch.get_num_threads() // 2)
    workers = [context.Process(target=_rank, args=(r, variant, layer, batch, last, size, steps, threads, barrier,
                                                           results))
               for r in range(2)]
    for w in workers:
        w.start()
    wall = max(results.get(timeout=1800) for _ in workers)
    for w in workers:
        w.join()
    return wall / steps / (2 * batch)


def duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="torchvision", help="googlenet variant: torchvision (BN) or paper (LRN)")
    parser.add_argument("--size", type=int, default=224, help="feature visualization side")
    parser.add_argument("--steps", type=int, default=3, help="steps timed per measurement (after a first one)")
    parser.add_argument("--layers", default=",".join(MODULES), help="comma-separated modules (default: all nine)")
    args = parser.parse_args()
    layers = args.layers.split(",")
    model = network(args.variant)
    widths = {layer: out.shape[1] for layer, out in
              activations(model, torch.zeros(1, 3, args.size, args.size), layers).items()}
    print(f"on {hardware.current().describe()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"googlenet ({args.variant}) at {args.size} px; ms per channel and step, {args.steps} steps timed\n")
    print(f"{'layer':<12} {'channels':>8} {'alone':>8} {'measured':>8} {'batch':>5} {'layout':>8} {'2 procs':>8} "
          f"{'ratio':>6}")
    totals = {"alone": 0.0, "batched": 0.0, "two": 0.0}
    for layer in layers:
        timer = render_step_time(model, layer, widths[layer], size=args.size, steps=args.steps + 1)
        choice = fastest_batch(timer)
        alone = timer(1, False)  # one channel at a time, contiguous: a render without the microscope's choice
        two = two_processes(args.variant, layer, choice.size, choice.channels_last, args.size, args.steps)
        best = min(choice.seconds_per_channel_step, two)
        for key, value in (("alone", alone), ("batched", choice.seconds_per_channel_step), ("two", two)):
            totals[key] += widths[layer] * SITE_STEPS * value
        print(f"{layer:<12} {widths[layer]:>8} {1000 * alone:>8.1f} {1000 * choice.seconds_per_channel_step:>8.1f} "
              f"{choice.size:>5} {'cl' if choice.channels_last else 'nchw':>8} {1000 * two:>8.1f} {best / alone:>6.2f}",
              flush=True)
    channels = sum(widths.values())
    print(f"\nall {channels} channels at {SITE_STEPS} steps, projected: one at a time {duration(totals['alone'])}, "
          f"batched {duration(totals['batched'])}, two processes {duration(totals['two'])}; "
          f"best / one at a time: {min(totals['batched'], totals['two']) / totals['alone']:.2f} (target <= 0.25)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    main()
