"""The ``invoicegen`` command. Each sub-command lives next to the code it drives and is
registered here, so ``--help`` lists only commands that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    base: Path | None = typer.Option(None, "--base", help="Start from this model: an InvoiceGen checkpoint (training goes on with its tokenizer and weights, same --recipe) or a pretrained LayoutLMv3 directory."),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the recipe's epoch count."),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    learning_rate: float | None = typer.Option(None, "--lr"),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    seed: int = typer.Option(13, "--seed"),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop after this wall time (minutes); the learning rate decays to reach 0 by then."),
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


@app.command()
def extract(
    files: list[Path] = typer.Argument(..., help="Invoice files: PDF, PNG, JPEG, TIFF, WebP, BMP."),
    out: str = typer.Option("-", "--out", help="Output directory, or - for stdout."),
    fmt: str = typer.Option("json", "--format", help="json, jsonl or csv (key fields per document)."),
    ocr: str = typer.Option("auto", "--ocr", help="auto, rapidocr, tesseract or none."),
    model: Path | None = typer.Option(None, "--model", help="Checkpoint directory (default: the shipped model)."),
    overlay: Path | None = typer.Option(None, "--overlay", help="Directory for page images with the fields drawn."),
    dpi: int = typer.Option(150, "--dpi", help="Rendering resolution for OCR and overlays."),
    embedded: bool = typer.Option(True, "--embedded/--no-embedded",
                                  help="Read the e-invoice XML embedded in ZUGFeRD/Factur-X/XRechnung PDFs "
                                  "(exact) instead of running the model on them."),
) -> None:
    """Extract invoice fields, line items and tables (from embedded e-invoice XML, else with the model)."""
    from invoicegen.errors import InvoiceGenError
    from invoicegen.extract.output import write_results
    from invoicegen.extract.pipeline import ExtractOptions, Extractor

    if fmt not in ("json", "jsonl", "csv"):
        raise typer.BadParameter("--format must be json, jsonl or csv")
    extractor = Extractor.load(model)
    options = ExtractOptions(ocr=ocr, dpi=dpi, embedded=embedded)
    results, failed = [], 0
    for path in files:
        try:
            result = extractor.extract(path, options=options)
        except (InvoiceGenError, FileNotFoundError) as exc:
            typer.echo(f"{path}: {exc}", err=True)
            failed += 1
            continue
        results.append((path, result))
        if overlay is not None:
            from invoicegen.extract.overlay import draw_result

            for image_path in draw_result(path, result, overlay, dpi=dpi):
                typer.echo(f"overlay: {image_path}", err=True)
    write_results(results, out, fmt)
    if failed:
        raise typer.Exit(code=2)


@app.command()
def export(
    model: Path = typer.Option(..., "--model", help="Checkpoint directory."),
    fmt: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    int8: bool = typer.Option(False, "--int8", help="Quantise weights to INT8 (onnxruntime dynamic)."),
    opset: int = typer.Option(14, "--opset"),
    out: Path | None = typer.Option(None, "--out", help="Output file (default: inside the checkpoint, where "
                                    "MODEL_BACKEND=auto finds it)."),
) -> None:
    """Export a checkpoint to ONNX (optionally INT8) with dynamic batch and sequence axes."""
    from invoicegen.model.export import ONNX_FILE, ONNX_INT8_FILE, export_onnx

    if fmt != "onnx":
        raise typer.BadParameter("only --format onnx is supported")
    target = out or model / (ONNX_INT8_FILE if int8 else ONNX_FILE)
    path = export_onnx(model, target, opset=opset, int8=int8)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def read(
    file: Path = typer.Argument(..., help="PDF or image (PNG, JPEG, TIFF, WebP, BMP)."),
    ocr: str = typer.Option("auto", "--ocr", help="auto, rapidocr, tesseract or none (paddleocr = rapidocr)."),
    dpi: int = typer.Option(150, "--dpi", help="Resolution for rendering PDF pages (OCR, overlay)."),
    password: str | None = typer.Option(None, "--password", help="Password of an encrypted PDF."),
    as_json: bool = typer.Option(False, "--json", help="Print the document (pages, words, boxes) as JSON."),
    overlay: Path | None = typer.Option(None, "--overlay", help="PNG with the word boxes drawn on page 1 "
                                        "(further pages: <name>-p2.png, ...)."),
) -> None:
    """Read a file into words with boxes (PDF points, top-left origin): text layer or OCR."""
    from invoicegen.document import load_document
    from invoicegen.errors import InvoiceGenError

    try:
        with load_document(file, ocr=ocr, dpi=dpi, password=password) as doc:
            from invoicegen.readview import print_pages, write_overlays

            if as_json:
                typer.echo(doc.document.model_dump_json(indent=2))
            else:
                print_pages(doc)
            if overlay is not None:
                for path in write_overlays(doc, overlay, dpi):
                    typer.echo(f"overlay: {path}", err=as_json)
    except (InvoiceGenError, FileNotFoundError, IsADirectoryError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default: API_HOST).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: API_PORT).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes (default: API_WORKERS).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Checkpoint directory (default: MODEL_PATH).")] = None,
) -> None:
    """Run the production API (FastAPI + uvicorn); settings come from the environment and .env."""
    import os

    from invoicegen.deployment.settings import SettingsError, load_settings

    if model is not None:
        os.environ["MODEL_PATH"] = str(model)  # the workers read their settings from the environment
    overrides = {k: v for k, v in {"api_host": host, "api_port": port, "api_workers": workers}.items()
                 if v is not None}
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    if not settings.resolved_model_path.is_dir():
        typer.echo(f"MODEL_PATH: model directory {settings.resolved_model_path} does not exist", err=True)
        raise typer.Exit(code=2)
    from invoicegen.deployment.api import run_server

    run_server(settings)


@app.command()
def generate(
    n: int = typer.Option(100, "--n", help="Number of documents."),
    out: Path = typer.Option(..., "--out", help="Output directory (PDFs, PNGs, documents.jsonl, manifest.json)."),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed -> same bytes."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    kinds: list[str] = typer.Option(None, "--kinds", help="Document kinds (comma-separated or repeated)."),
    locales: list[str] = typer.Option(None, "--locales", help="Locales (comma-separated or repeated)."),
    augment: float = typer.Option(0.0, "--augment", help="Fraction of documents with scan/photo augmentation."),
    dpi: int = typer.Option(150, "--dpi", help="Page image resolution."),
    preview: int = typer.Option(0, "--preview", help="Write labelled previews of the first M documents."),
    ocr: str | None = typer.Option(None, "--ocr", help="Take augmented pages' words from this OCR engine."),
    verify: bool = typer.Option(False, "--verify", help="Check every labelled box against the PDF text."),
    split_seed: int | None = typer.Option(None, "--split-seed", help="Seed of the layout split (fixed default)."),
    mix: float = typer.Option(0.0, "--mix", help="Fraction of documents on composed training layouts."),
) -> None:
    """Generate synthetic invoices with exact word labels (the invoice factory)."""
    from invoicegen.synth.cli_support import run_generate

    run_generate(n=n, out=out, seed=seed, workers=workers, kinds=kinds, locales=locales, augment=augment, dpi=dpi,
                 preview=preview, ocr=ocr, verify=verify, split_seed=split_seed, mix=mix)


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", help="Checkpoint directory."),
    out: Path = typer.Option(..., "--out", help="Report directory (report.json, report.md, plots)."),
    data: Path | None = typer.Option(None, "--data", help="Factory dataset directory (documents.jsonl + manifest)."),
    split: str = typer.Option("test", "--split", help="Split of the factory dataset."),
    real: Path | None = typer.Option(None, "--real", help="Folder of real documents (instead of --data)."),
    gold: Path | None = typer.Option(None, "--gold", help="Gold JSONL for --real (default: REAL/gold_dev.jsonl)."),
    datasets: str = typer.Option("", "--datasets", help="--real only: comma-separated datasets to keep."),
    max_docs: int | None = typer.Option(None, "--max-docs", help="Evaluate at most this many documents."),
    worst: int = typer.Option(5, "--worst", help="Overlays for this many worst documents."),
    ocr: str = typer.Option("auto", "--ocr", help="--real only: auto, rapidocr, tesseract or none."),
    backend: str | None = typer.Option(None, "--backend", help="torch, torch-int8, onnx, onnx-int8 (default auto)."),
) -> None:
    """Evaluate a model on a factory split or on real documents: metrics, plots, error analysis."""
    from invoicegen.evaluation.report import evaluate_factory, evaluate_real

    if (data is None) == (real is None):
        raise typer.BadParameter("give exactly one of --data or --real")
    if data is not None:
        _, line = evaluate_factory(model, data, out, split=split, max_docs=max_docs, worst=worst, progress=True,
                                   backend=backend)
    else:
        assert real is not None
        _, line = evaluate_real(model, real, out, gold=gold, datasets=[d for d in datasets.split(",") if d],
                                max_docs=max_docs, worst=worst, ocr=ocr, progress=True, backend=backend)
    typer.echo(line)


@app.command("verify-model")
def verify_model_cmd(
    directory: Path = typer.Argument(..., help="Checkpoint directory (what MODEL_PATH points to)."),
    backend: str | None = typer.Option(None, "--backend", help="Also run this serving backend (default: auto)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check a model directory: files, label schema, weights, one dummy forward pass (exit 1 on FAIL)."""
    import json

    from invoicegen.deployment.verify import verify_model

    report = verify_model(directory, backend=backend)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.render())
    if not report.ok:
        raise typer.Exit(code=1)


@app.command()
def batch(
    input_dir: Path = typer.Argument(..., help="Directory of invoices (searched recursively; types sniffed)."),
    output_dir: Path = typer.Argument(..., help="Output directory: <rel>.json per input, errors.jsonl, "
                                      "summary.csv."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Pipeline processes (default: one per core), "
                                       "with --threads loader threads (default 4), with --engine ray model actors "
                                       "(default: one per CPU of the cluster, or per GPU)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Documents per model call."),
    engine: str = typer.Option("local", "--engine", help="local (this machine) or ray (Ray Data)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address (default: start "
                                           "a local Ray)."),
    model: Path | None = typer.Option(None, "--model", help="Checkpoint directory (default: MODEL_PATH or "
                                      "the shipped model)."),
    ocr: str = typer.Option("auto", "--ocr", help="auto, rapidocr, tesseract or none."),
    dpi: int = typer.Option(150, "--dpi", help="Rendering resolution for OCR."),
    processes: bool | None = typer.Option(None, "--processes/--threads", help="Run the pipeline in one process "
                                          "per worker, or in threads of this process with one model (default: "
                                          "processes on CPU, threads on a GPU).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Redo inputs that already have an up-to-date output."),
    ignore_unsupported: bool = typer.Option(False, "--ignore-unsupported",
                                            help="Skip files that are not PDFs/images instead of reporting them."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Extract a whole directory: resumable (reruns skip finished inputs), failures to errors.jsonl."""
    from invoicegen.deployment.batch_runner import run_batch_command

    code = run_batch_command(input_dir, output_dir, engine=engine, workers=workers, batch_size=batch_size,
                             processes=processes, ray_address=ray_address, model=model, ocr=ocr, dpi=dpi,
                             force=force, ignore_unsupported=ignore_unsupported, progress=progress,
                             echo=lambda s: typer.echo(s, err=True))
    if code:
        raise typer.Exit(code)


if __name__ == "__main__":
    app()
