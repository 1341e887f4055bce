"""The ``invoicegen`` command. Each sub-command lives next to the code it drives and is
registered here, so ``--help`` lists only commands that exist."""

from __future__ import annotations

import typer

from invoicegen import __version__

app = typer.Typer(
    name="invoicegen",
    help="InvoiceGen: read, generate, train on and extract invoices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"invoicegen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """InvoiceGen command line."""


if __name__ == "__main__":
    app()
