"""Entry point of the ``inceptionkit`` command."""

from __future__ import annotations

import typer

from . import cost, deploy, lens, microscope, models, train, transfer, weights

app = typer.Typer(
    help="inceptionkit: build, count, train and look inside the Inception family of CNNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models.register(app)
cost.register(app)
train.register(app)
weights.register(app)
lens.register(app)
transfer.register(app)
deploy.register(app)
microscope.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
