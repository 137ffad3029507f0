"""Entry point of the ``inceptionkit`` command."""

from __future__ import annotations

import typer
import typer.core

from . import cost, deploy, lens, microscope, models, train, transfer, weights
from .common import Command, Group, set_debug, show_warnings_as_lines

app = typer.Typer(
    help="inceptionkit: build, count, train and look inside the Inception family of CNNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
)
models.register(app)
cost.register(app)
train.register(app)
weights.register(app)
lens.register(app)
transfer.register(app)
deploy.register(app)
microscope.register(app)
for _info in app.registered_commands:
    _info.cls = Command if _info.cls in (None, typer.core.TyperCommand) else _info.cls


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="show the traceback of any error")) -> None:
    """inceptionkit: build, count, train and look inside the Inception family of CNNs."""
    set_debug(debug)
    show_warnings_as_lines()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
