"""Start-up time of the command line against the floor it cannot go below, measured in one run.

Each command runs as a fresh process, interleaved round by round. The floors: a Python that
imports typer and rich (what ``--help`` needs) and one that imports torch (what every command
that builds a network needs). Prints the median seconds of each and the ratio to its floor.

    python bench/cli_startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

FLOORS = {
    "python + typer + rich": [sys.executable, "-c", "import typer, rich.console"],
    "python + torch": [sys.executable, "-c", "import torch"],
}
COMMANDS = {  # command -> the floor it is compared with
    "inceptionkit --help": (["--help"], "python + typer + rich"),
    "inceptionkit list": (["list"], "python + torch"),
    "inceptionkit summary googlenet": (["summary", "googlenet"], "python + torch"),
}


def seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("inceptionkit") or sys.exit("inceptionkit is not on PATH (source scripts/env.sh)")
    runs = {**FLOORS, **{name: [exe, *argv] for name, (argv, _) in COMMANDS.items()}}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, argv in runs.items():
            times[name].append(seconds(argv))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"median of {args.rounds} fresh processes each")
    for name in FLOORS:
        print(f"  {name:34s} {median[name]:6.2f} s  (floor)")
    for name, (_, floor) in COMMANDS.items():
        print(f"  {name:34s} {median[name]:6.2f} s  {median[name] / median[floor]:5.2f}x {floor}")


if __name__ == "__main__":
    main()
