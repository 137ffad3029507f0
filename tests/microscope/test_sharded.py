"""The microscope under torchrun: two gloo ranks share the pictures and build the site one process
builds (rank 1 starts from other weights, which rank 0's replace), and a build killed midway reruns to
completion making only what is missing."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inceptionkit.files import TMP_PREFIX

BUILD = '''
import os, sys
import torch
from inceptionkit.microscope import SiteSettings, build_site
from inceptionkit.weights import load
model = load(sys.argv[1])
if os.environ.get("RANK") == "1":  # another network on rank 1: build_site must give it rank 0's weights
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
settings = SiteSettings(channels=1000, steps=int(sys.argv[3]), k=3, images=1, max_images=48, dream_side=32,
                        dream_octaves=1, dream_steps=1, batch=16)  # one batch size for both builds (see below)
site = build_site(model, sys.argv[2], data="digits", layers=["inception3a", "inception3b"],
                  settings=settings)
print(f"rank {os.environ.get('RANK', '0')}: made {site.rendered}, reused {site.reused}", flush=True)
'''
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def build(script: Path, run: Path, out: Path, steps: int, ranks: int = 1, port: int = 29521, **popen):
    launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", f"--master_port={port}"]
                if ranks > 1 else [sys.executable])
    return subprocess.Popen([*launcher, str(script), str(run), str(out), str(steps)], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def finished(process: subprocess.Popen) -> dict[int, tuple[int, int]]:
    """``{rank: (made, reused)}`` from a build that must succeed."""
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return {int(r): (int(m), int(u)) for r, m, u in re.findall(r"rank (\d+): made (\d+), reused (\d+)", output)}


def pictures(site: Path) -> dict[str, Path]:
    """The finished pictures (not the temporary file a killed process was writing)."""
    return {p.name: p for p in (site / "img").rglob("*") if p.is_file() and not p.name.startswith(TMP_PREFIX)}


def pages(site: Path) -> dict[str, list[str]]:
    """Each page and the pictures and pages it links, in order."""
    return {p.relative_to(site).as_posix(): re.findall(r'(?:src|href)="([^"]+)"', p.read_text())
            for p in site.rglob("*.html")}


@pytest.mark.slow
def test_two_gloo_ranks_build_the_pictures_and_pages_of_one_process(digits_run, tmp_path):
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    two = finished(build(script, digits_run, tmp_path / "two", steps=8, ranks=2))
    one = finished(build(script, digits_run, tmp_path / "one", steps=8))
    assert set(two) == {0, 1} and two[1][0] > 0  # rank 1 made its share
    assert two[0][0] == one[0][0]  # rank 0 reports every picture made, its own and rank 1's
    # Batches of the same size in both builds: a picture rendered in a batch of another size differs in the
    # last bits of its batched convolutions, which Adam's steps (each gradient over its own running scale)
    # can carry to a few levels of a pixel; the measured batch would change with the load of the machine.
    sharded, single = pictures(tmp_path / "two"), pictures(tmp_path / "one")
    assert sharded.keys() == single.keys() and len(single) > 90  # 32 + 60 channels of two layers, and more
    for name, path in single.items():
        if path.suffix == ".png":
            a = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
            b = np.asarray(Image.open(sharded[name]).convert("RGB"), dtype=np.int16)
            assert a.shape == b.shape and np.abs(a - b).max() <= 8, name
    assert pages(tmp_path / "two") == pages(tmp_path / "one")


@pytest.mark.slow
def test_a_sharded_build_killed_midway_reruns_making_only_what_is_missing(digits_run, tmp_path):
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    out = tmp_path / "site"
    job = build(script, digits_run, out, steps=32, ranks=2, port=29522, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(pictures(out)) < 20 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
        assert workers and job.poll() is None, "the build ended before it could be killed"
        os.kill(int(workers[-1]), signal.SIGKILL)  # one rank dies; torchrun then stops the job
        job.wait(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode != 0
    kept = len(pictures(out))
    rerun = finished(build(script, digits_run, out, steps=32, ranks=2, port=29523))
    made, reused = rerun[0]
    assert reused == kept and made > 0  # every finished picture reused, only the missing ones made
    assert len(pictures(out)) == kept + made and (out / "index.html").exists()
