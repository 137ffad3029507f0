"""Shared helpers of the CLI: user errors become one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import functools
import os

import typer
from rich.console import Console

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:  # piped or captured: don't squeeze tables to 80
    console = Console(width=140)
err_console = Console(stderr=True)


def main_process() -> bool:
    """False on the other ranks of a torchrun job, so that an error is printed once."""
    return os.environ.get("RANK", "0") == "0"


def user_errors(fn):
    """Turn ValueError/TypeError/FileNotFoundError raised for bad input into ``error: ...``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            if main_process():
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def parse_size(text: str) -> tuple[int, ...]:
    """'3x299x299' -> (3, 299, 299)."""
    try:
        size = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"input size must look like 3x224x224, got {text!r}") from None
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"input size must be three positive numbers CxHxW, got {text!r}")
    return size
