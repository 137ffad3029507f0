"""Training images/s: inceptionkit's trainer against a plain PyTorch loop over the same network.

Both train googlenet_cifar (width 1.0 unless --width) at batch 64 on 32x32 inputs in the same
process, interleaved round by round so both see the same machine state. The plain loop runs in
three settings (fp32 NCHW, channels_last, bf16 autocast + channels_last) on tensors already in
memory; our trainer runs its default setting (what `inceptionkit train` does when given no
precision flags) through its real data pipeline (the embedded digits, augmented). Prints the
median images/s of each and the ratio of ours to the plain loop's best setting.

    python bench/train_speed.py [--width 1.0] [--steps 3] [--rounds 2] [--skip-bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from inceptionkit import create_model, hardware
from inceptionkit.train import TrainConfig, fit
from inceptionkit.train.precision import resolve_amp

BATCH = 64


def plain_loop(width: float, steps: int, channels_last: bool, bf16: bool) -> float:
    """The loop a user writes by hand: SGD, cross-entropy, no data loading."""
    torch.manual_seed(0)
    model = create_model("googlenet_cifar", width=width, num_classes=10)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for step in range(steps + 1):  # the first step warms up and is not timed
        if step == 1:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return BATCH * steps / (time.perf_counter() - start)


def ours(width: float, steps: int) -> float:
    """`inceptionkit train googlenet_cifar --width W` with its defaults, on the digits, `steps` steps timed."""
    with tempfile.TemporaryDirectory() as out:
        # epoch 1 (one step) warms up; epoch 2 is timed by the trainer itself
        config = TrainConfig(model="googlenet_cifar", model_kwargs={"width": width}, epochs=2, batch_size=BATCH,
                             progress=False, out=out, max_steps=steps)
        fit(config)
        rows = json.loads((Path(out) / "history.json").read_text())
        return rows[-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-bf16", action="store_true", help="leave out the plain bf16 setting")
    args = parser.parse_args()
    default_amp = resolve_amp("auto", torch.device("cpu"))
    print(f"googlenet_cifar width {args.width}, batch {BATCH}, 32x32, {torch.get_num_threads()} threads; "
          f"CPU: {hardware.current().describe()}; our default: amp {default_amp or 'none'} + channels_last")
    settings = {"plain fp32 NCHW": (False, False), "plain channels_last": (True, False)}
    if not args.skip_bf16:
        settings["plain bf16 + channels_last"] = (True, True)
    results: dict[str, list[float]] = {name: [] for name in [*settings, "inceptionkit default"]}
    for _ in range(args.rounds):
        for name, (cl, bf16) in settings.items():
            results[name].append(plain_loop(args.width, args.steps, cl, bf16))
        results["inceptionkit default"].append(ours(args.width, args.steps))
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, value in medians.items():
        print(f"{name:28s} {value:8.1f} img/s")
    best_name = max(settings, key=lambda n: medians[n])
    ratio = medians["inceptionkit default"] / medians[best_name]
    print(f"inceptionkit default / best plain ({best_name}): {ratio:.2f}x")


if __name__ == "__main__":
    main()
