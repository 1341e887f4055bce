"""The ``invoicegen`` command. Each sub-command lives next to the code it drives and is
registered here, so ``--help`` lists only commands that exist."""

from __future__ import annotations

from pathlib import Path

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


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="Factory dataset directory (documents.jsonl + manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Checkpoint directory to write."),
    recipe: str = typer.Option("small", "--recipe", help="Model recipe: tiny, small or base."),
    base: Path | None = typer.Option(None, "--base", help="Pretrained LayoutLMv3 directory to start from."),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the recipe's epoch count."),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    learning_rate: float | None = typer.Option(None, "--lr"),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    seed: int = typer.Option(13, "--seed"),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop after this wall time."),
    max_train_docs: int | None = typer.Option(None, "--max-train-docs"),
) -> None:
    """Train the multi-task LayoutLMv3 on a factory dataset; keeps the best checkpoint."""
    import sys

    from invoicegen.model.recipes import get_recipe
    from invoicegen.model.train import TrainConfig
    from invoicegen.model.train import train as run_training

    cfg = TrainConfig(data=data, out=out, base=base, resume=resume, seed=seed, max_minutes=max_minutes,
                      max_train_docs=max_train_docs,
                      recipe=get_recipe(recipe).with_overrides(epochs=epochs, batch_size=batch_size,
                                                               learning_rate=learning_rate))
    meta = run_training(cfg, command="invoicegen " + " ".join(sys.argv[1:]))
    test = meta.get("test_metrics", {})
    summary = ", ".join(f"{h} F1 {m['f1']:.4f}" for h, m in test.items())
    typer.echo(f"best epoch {meta['best_epoch']}, {meta['train_minutes']:.1f} min; test: {summary or 'no test split'}")
    typer.echo(f"checkpoint: {out}")


if __name__ == "__main__":
    app()
