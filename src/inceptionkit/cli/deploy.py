"""``inceptionkit bench``: inference speed of a network's optimized paths against torchvision, timm
and ONNX Runtime, measured in one run; ``inceptionkit info``: the machine and the libraries' versions."""

from __future__ import annotations

import json

import typer

from ..errors import BadValue
from .common import comma_list, console, err_console, quiet_libraries, user_errors

PEER_NAMES = ("torchvision", "timm", "onnxruntime")


TABLE_NOTES = (
    "diff to fp32: the largest difference of the logits from the fp32 network's on the timed batch, as a share "
    "of its largest logit. top-1 agrees: how often the top class is the fp32 network's on 64 random images. "
    "On random images the logits are near-ties (and on random weights, where no library ships the network), so "
    "int8 shows large differences and low agreement here whatever its accuracy on real images; the tests "
    "check that on the digits. plain export: ONNX Runtime on our network exported as it is, the peer for a "
    "network no library ships.")


@user_errors
def bench_cmd(
    model: str = typer.Argument(..., help="a registered network name"),
    batch: str = typer.Option("1,16", "--batch", help="batch sizes, comma-separated"),
    dtype: str = typer.Option("fp32,int8", "--dtype", help="fp32, int8, bf16 (bf16 only where the CPU has it)"),
    compare: str = typer.Option(",".join(PEER_NAMES), "--compare", help="peers: torchvision, timm, onnxruntime"),
    compile: bool = typer.Option(True, "--compile/--no-compile",
                                 help="include compiled variants: torch.compile for the peers, AOTInductor "
                                      "for ours (slow to build)"),
    repeats: int = typer.Option(7, "--repeats", help="timed rounds per batch size (batch 1: three times as many)"),
    threads: int = typer.Option(None, "--threads", help="threads for PyTorch and ONNX Runtime; default: PyTorch's"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
) -> None:
    """Images/s and GFLOP/s of every way to run MODEL, ours and the peers', and our fastest against each."""
    import torch

    from .. import hardware
    from ..deploy.bench import as_json as timings_json
    from ..deploy.bench import measure, multiply_adds, ratios, variants
    from ..extras import require
    from ..models import list_models

    if model not in list_models():
        raise BadValue(f"unknown network {model!r}; choose from {', '.join(list_models())}")
    require("deploy", "bench")
    sizes = tuple(int(b) for b in comma_list(batch, "--batch"))
    if min(sizes) < 1:
        raise BadValue(f"batch sizes must be at least 1, got {batch}")
    dtypes = comma_list(dtype, "--dtype", ("fp32", "int8", "bf16"))
    peers = comma_list(compare, "--compare", PEER_NAMES) if compare.strip() else ()
    if repeats < 1:
        raise BadValue(f"--repeats must be at least 1, got {repeats}")
    if threads:
        torch.set_num_threads(threads)
    status = err_console.status("building the variants (compiling takes a minute or two)")
    with status, quiet_libraries():
        found, ours = variants(model, peers=peers, dtypes=dtypes, compile=compile, threads=threads, batches=sizes,
                               progress=lambda text: status.update(text))
        timings = measure(found, tuple(ours.pretrained_cfg["input_size"]), sizes, repeats=repeats,
                          macs=multiply_adds(ours), progress=lambda text: status.update(text))
    if as_json:
        console.print_json(json.dumps({"model": model, "threads": torch.get_num_threads(), **timings_json(timings)}))
        return
    from rich.table import Table

    table = Table(title=f"{model}: images/s, {torch.get_num_threads()} threads (medians, variants interleaved)")
    for column in ("batch", "variant", "dtype", "images/s", "GFLOP/s", "diff to fp32", "top-1 agrees"):
        table.add_column(column, justify="left" if column in ("variant", "dtype") else "right")
    for t in timings:
        style = "bold" if t.family == "inceptionkit" else None
        diff = "" if t.max_rel_diff is None else f"{t.max_rel_diff:.1e}"
        agrees = "" if t.top1_agreement is None else f"{t.top1_agreement:.0%}"
        table.add_row(str(t.batch), t.variant, t.dtype, f"{t.images_per_s:.1f}", f"{t.gflops:.0f}", diff, agrees,
                      style=style)
    console.print(table)
    console.print(f"on {hardware.current().describe()}", highlight=False)
    console.print(TABLE_NOTES, highlight=False, soft_wrap=True)
    for row in ratios(timings):
        console.print(f"batch {row['batch']:>3} {row['dtype']}: {row['ours']} is {row['ratio']:.2f}x "
                      f"{row['peer']}", highlight=False)


def info_cmd(as_json: bool = typer.Option(False, "--json", help="print the record as JSON")) -> None:
    """The machine as inceptionkit sees it (CPU, instruction sets, cores, CUDA devices) and the versions
    of the libraries that decide speed and int8 results: what every hardware-dependent choice reads."""
    from .. import __version__, hardware

    machine, versions = hardware.current(), {"inceptionkit": __version__, **hardware.versions()}
    if as_json:
        console.print_json(json.dumps({"hardware": machine.to_dict(), "versions": versions}))
        return
    console.print(machine.describe(), highlight=False)
    console.print(f"instruction sets: {', '.join(machine.features) or 'none recorded'}", highlight=False)
    console.print(", ".join(f"{name} {version}" for name, version in versions.items() if version), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_cmd)
    app.command("info")(info_cmd)
