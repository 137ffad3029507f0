import os
import tempfile

import pytest
import torch

# Under pytest-xdist (test.sh runs two workers on the 2-core CI machine) each worker computes on one
# thread, so the two never fight over a core; a plain `pytest` keeps both threads.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
# caches the library writes by default (optimize's decisions, retrain's bottlenecks) go to a folder of
# the run's own, not the user's ~/.cache
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="inceptionkit-tests-cache-")
# xdist's workers inherit COLUMNS=80 from it; the commands' captured output is read at the width a
# pipe gets (140), as in a plain run
for name in ("COLUMNS", "LINES"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A run folder: googlenet_cifar at 1/8 width on 32x32 digits, two short epochs (it has learned
    strokes), shared by the lens and microscope tests."""
    from inceptionkit.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("lens") / "digits"
    fit(TrainConfig(model="googlenet_cifar", model_kwargs={"width": 0.125}, input_size=(3, 32, 32), epochs=2,
                    batch_size=32, max_steps=12, progress=False, out=str(out), amp="none", seed=0))
    return out


@pytest.fixture(scope="session")
def digits_quarter_run(tmp_path_factory, worker_id):
    """A run folder: googlenet_cifar at quarter width trained 6 epochs on 16x16 digits (the training tests'
    accuracy and the int8 tests' network). Trained once for all of xdist's workers: the first to ask
    trains it under a file lock, the others wait for it and read it."""
    from filelock import FileLock

    from inceptionkit.train import TrainConfig, fit

    root = tmp_path_factory.getbasetemp()
    root = root.parent if worker_id != "master" else root
    run = root / "digits-quarter"
    with FileLock(str(root / "digits-quarter.lock")):
        if not (run / "metrics.json").exists():
            fit(TrainConfig(model="googlenet_cifar", model_kwargs={"width": 0.25}, input_size=(3, 16, 16), epochs=6,
                            progress=False, out=str(run)))
    return run


@pytest.fixture(scope="session")
def digits_net(digits_run):
    """The network of :func:`digits_run`, in eval mode, one for the session (tests leave it as it is)."""
    from inceptionkit.weights import load

    return load(digits_run).eval()


def pytest_report_header(config):
    from inceptionkit import hardware

    return f"inceptionkit hardware: {hardware.current().describe()}"


@pytest.fixture
def branch(record_property):
    """``branch("...")`` records which hardware-dependent branch a test took; the run's summary lists them."""
    return lambda text: record_property("hardware branch", text)


def pytest_terminal_summary(terminalreporter):
    rows = [(report.nodeid, value) for kind in ("passed", "failed") for report in terminalreporter.stats.get(kind, [])
            if report.when == "call" for key, value in report.user_properties if key == "hardware branch"]
    if rows:
        from inceptionkit import hardware

        terminalreporter.section(f"hardware branches taken on {hardware.current().describe()}")
        for nodeid, text in sorted(rows):
            terminalreporter.write_line(f"{nodeid}: {text}")
