"""The on-disk contract of a batch run, shared by the local engine and the Ray engine.

Why one module: both engines must find the same inputs, name the same outputs, decide "already
done" the same way and leave the same ``errors.jsonl`` and ``summary.csv``; if each engine had its
own copy, a rerun with the other engine would redo (or worse, skip) the wrong files.

Layout of ``OUT`` for an input ``IN/a/b/x.pdf``:

* ``OUT/a/b/x.pdf.json``: the :class:`ExtractionResult` (the input's full name plus ``.json``, so
  ``x.pdf`` and ``x.png`` never collide and no input can overwrite ``errors.jsonl``/``summary.csv``);
  written to a hidden temp file in the same directory, then ``os.replace``-d: readers and reruns
  only ever see complete files.
* ``OUT/errors.jsonl``: one line per input that failed (path, sha256, error type, message, time);
  appended as failures happen, compacted at the end to one line per still-failing input.
* ``OUT/summary.csv``: the key fields of every document with an output, rebuilt at the end.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from invoicegen.document import Limits, LoadedDocument, PageBackend, load_document, sniff_type
from invoicegen.errors import FileTooLargeError, InvoiceGenError
from invoicegen.extract.output import CSV_FIELDS, summary_row
from invoicegen.schema import Document, ExtractionResult

if TYPE_CHECKING:  # the pipeline imports torch: loader processes must not pay for it
    from invoicegen.extract.pipeline import ExtractOptions, Extractor

OUTPUT_SUFFIX = ".json"
ERRORS_FILE = "errors.jsonl"
SUMMARY_FILE = "summary.csv"
TMP_SUFFIX = ".invoicegen-tmp"
LOCK_FILE = ".invoicegen-batch.lock"

Status = Literal["loaded", "skipped", "ignored", "failed", "processed"]


class BatchError(RuntimeError):
    """The run cannot start (bad directories, output in use, model or engine missing)."""


@dataclass(frozen=True)
class LoadOptions:
    """What reading a file needs from :class:`ExtractOptions`; importable (and picklable) without
    the model code, so loader processes start without importing torch."""

    ocr: str = "auto"
    dpi: int = 150
    password: str | None = None
    limits: Limits = Limits()

    @classmethod
    def of(cls, options: ExtractOptions | LoadOptions) -> LoadOptions:
        return cls(ocr=options.ocr, dpi=options.dpi, password=options.password, limits=options.limits)


def check_options(options: ExtractOptions | LoadOptions) -> None:
    """Reject a bad OCR mode before the run, not once per file as 10,000 identical errors."""
    mode = options.ocr.strip().lower()
    if mode not in ("auto", "none"):
        from invoicegen.ocr.base import resolve_engine_name

        try:
            resolve_engine_name(mode)
        except ValueError as exc:
            raise BatchError(f"--ocr: {exc}") from None
    if not 1 <= options.dpi <= 1200:
        raise BatchError(f"--dpi must be in 1..1200, got {options.dpi}")


@dataclass(frozen=True)
class InputFile:
    """One input: its path and its path relative to the input directory (POSIX separators)."""

    path: Path
    rel: str


@dataclass
class BatchStats:
    """What a run did; ``docs_per_second`` counts documents that went through the model."""

    total: int = 0
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    pages: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    engine: str = "local"
    mode: str = ""
    """How the local engine ran: ``2 processes`` or ``4 threads``."""
    output_dir: str = ""

    @property
    def docs_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        d["docs_per_second"] = round(self.docs_per_second, 3)
        return d

    def line(self) -> str:
        """One human line for the end of a run."""
        return (f"{self.processed} processed, {self.failed} failed, {self.skipped} skipped"
                + (f", {self.ignored} ignored" if self.ignored else "")
                + f" of {self.total} inputs; {self.pages} pages in {self.seconds:.1f} s "
                f"({self.docs_per_second:.2f} docs/s" + (f", {self.mode}" if self.mode else "") + ")")


# ------------------------------------------------------------------------------------------------
# Finding inputs, naming outputs
# ------------------------------------------------------------------------------------------------


def check_dirs(input_dir: str | Path, output_dir: str | Path) -> tuple[Path, Path]:
    """Resolved (input, output) directories; BatchError when they cannot work together."""
    src, dst = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not src.is_dir():
        raise BatchError(f"input directory {input_dir} does not exist or is not a directory")
    if src == dst:
        raise BatchError("the output directory must differ from the input directory")
    if dst.exists() and not dst.is_dir():
        raise BatchError(f"output {output_dir} exists and is not a directory")
    if src.is_relative_to(dst):
        raise BatchError("the input directory must not lie inside the output directory")
    return src, dst


def discover_inputs(input_dir: Path, output_dir: Path) -> list[InputFile]:
    """Every regular, non-hidden file under ``input_dir`` (recursively), sorted by relative path.

    Names do not decide what an input is: the loader sniffs the bytes, so ``scan.dat`` that holds a
    PDF is read as a PDF, and ``notes.txt`` is reported as unsupported (or ignored, on request).
    Hidden files and directories (``.DS_Store``, ``.git``) and the output directory, when it lies
    inside the input directory, are left out.
    """
    root, out = input_dir.resolve(), output_dir.resolve()
    found: list[InputFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and (here / n).resolve() != out)
        for name in filenames:
            if name.startswith("."):
                continue
            path = here / name
            if path.is_file():  # follows symlinks; skips FIFOs, sockets and dangling links
                found.append(InputFile(path, path.relative_to(root).as_posix()))
    found.sort(key=lambda f: f.rel)
    return found


def output_path(output_dir: Path, rel: str) -> Path:
    """``OUT/a/b/x.pdf.json`` for the input ``a/b/x.pdf``."""
    return output_dir / (rel + OUTPUT_SUFFIX)


# ------------------------------------------------------------------------------------------------
# Atomic files
# ------------------------------------------------------------------------------------------------


@contextmanager
def atomic_writer(path: Path, *, fsync: bool = True, newline: str | None = None) -> Iterator[IO[str]]:
    """A text file handle whose content replaces ``path`` only when the block ends without error:
    ``path`` is always either the old file or the complete new one.

    The temp file lies in the same directory (``os.replace`` is atomic only within a filesystem) and
    is hidden (``.name.XXXX.invoicegen-tmp``), so a killed run never leaves something that looks like
    an output; the next run sweeps such leftovers. ``fsync`` makes the content durable before the
    rename (a power cut cannot leave an empty ``.json``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, fsync=fsync) as fh:
        fh.write(text)


def sweep_temp_files(output_dir: Path) -> int:
    """Delete temp files left by a killed run (safe: the output lock excludes a live writer)."""
    n = 0
    for dirpath, _, filenames in os.walk(output_dir):
        for name in filenames:
            if name.startswith(".") and name.endswith(TMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
                    n += 1
    return n


class OutputLock:
    """An exclusive ``flock`` on ``OUT/.invoicegen-batch.lock`` for the length of a run.

    Two runs writing the same output directory would sweep each other's temp files and interleave
    ``errors.jsonl``; the kernel drops the lock when the process dies, even by SIGKILL, so a killed
    run never blocks the next one.
    """

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BatchError(f"another batch run is writing to {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def error_message(exc: BaseException) -> str:
    """The message for errors.jsonl: input errors say it all; anything else gets its type too."""
    if isinstance(exc, InvoiceGenError):
        return exc.message
    text = str(exc) or repr(exc)
    return text if isinstance(exc, OSError) else f"{type(exc).__name__}: {text}"


class ErrorLog:
    """``OUT/errors.jsonl``: the inputs that failed, one JSON object per line.

    Lines are appended and flushed as failures happen, so a killed run keeps what it learnt; at the
    end :meth:`compact` keeps one line (the latest) per input that still has no output, so after a
    rerun every input has exactly one output or one error line.
    """

    def __init__(self, output_dir: Path, *, fsync: bool = True) -> None:
        self.path = output_dir / ERRORS_FILE
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - open for the run
        self._fh.seek(0, os.SEEK_END)
        if self._fh.tell() > 0:
            self._fh.seek(self._fh.tell() - 1)
            if self._fh.read(1) != "\n":  # a run killed mid-line: never glue a new line onto it
                self._fh.write("\n")
        self.recorded = 0

    def record(self, rel: str, sha256: str, error_type: str, message: str) -> dict[str, str]:
        entry = {"path": rel, "sha256": sha256, "error": error_type, "message": message,
                 "time": datetime.now(UTC).isoformat(timespec="seconds")}
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.recorded += 1
        return entry

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every parseable line (a line cut by a kill is skipped)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                        yield entry

    def compact(self, current: Iterable[str], done: set[str]) -> int:
        """Rewrite the file with the latest line of each input in ``current`` that is not ``done``
        (inputs that now have an output, or that no longer exist, lose their line)."""
        self.close()
        wanted = set(current) - done
        latest: dict[str, dict[str, Any]] = {}
        for entry in self.entries():
            if entry["path"] in wanted:
                latest.pop(entry["path"], None)  # re-insert: keeps file order = order of last failure
                latest[entry["path"]] = entry
        atomic_write_text(self.path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in latest.values()),
                          fsync=self.fsync)
        return len(latest)


# ------------------------------------------------------------------------------------------------
# Loading one input (runs in the worker pool / Ray tasks)
# ------------------------------------------------------------------------------------------------


@dataclass
class LoadOutcome:
    """What the loading stage says about one input; picklable unless ``loaded`` is set."""

    rel: str
    sha256: str
    status: Status
    path: str = ""
    loaded: LoadedDocument | None = None
    """Thread mode: the open document, ready for the model."""
    document: Document | None = None
    """Process / Ray mode: the words and boxes (the open PDF cannot cross processes)."""
    dpi: int = 150
    timings_ms: dict[str, float] = field(default_factory=dict)
    load_ms: float = 0.0
    error_type: str = ""
    message: str = ""
    pages: int = 0
    """Processed inputs: pages of the document."""
    summary: dict[str, str] | None = None
    """Processed inputs: the document's ``summary.csv`` row, so the driver need not read the output back."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_result(out: Path) -> ExtractionResult | None:
    """The result in ``out``, or None when it is missing or not a complete, valid result."""
    try:
        return ExtractionResult.model_validate_json(out.read_bytes())
    except (OSError, ValueError):
        return None


def is_finished(out: Path, sha256: str) -> bool:
    """``out`` is a complete result for content ``sha256`` (not another version's output)."""
    result = read_result(out)
    return result is not None and result.document.sha256 == sha256


def load_input(item: InputFile, output_dir: Path, options: LoadOptions | ExtractOptions, *, force: bool = False,
               ignore_unsupported: bool = False, keep_open: bool = True, data: bytes | None = None
               ) -> LoadOutcome:
    """Hash, skip-check and load one input; never raises for a bad file (it becomes ``failed``).

    ``keep_open``: return the open :class:`LoadedDocument` (threads); otherwise only its
    :class:`Document` (processes, Ray), which pickles. ``data``: the bytes when already read (Ray).
    """
    t0 = time.perf_counter()
    sha = ""

    def outcome(status: Status, **kw: Any) -> LoadOutcome:
        return LoadOutcome(rel=item.rel, sha256=sha, status=status, path=str(item.path), **kw)

    try:
        if data is None:
            size = item.path.stat().st_size
            if size > options.limits.max_bytes:  # refuse before reading it into memory
                sha = file_sha256(item.path)
                raise FileTooLargeError(item.rel, size, options.limits.max_bytes)
            data = item.path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if not force and is_finished(output_path(output_dir, item.rel), sha):
            return outcome("skipped")
        if ignore_unsupported and data and sniff_type(data) is None:
            return outcome("ignored")
        doc = load_document(data, filename=item.rel, ocr=options.ocr, dpi=options.dpi,
                            password=options.password, limits=options.limits)
    except Exception as exc:  # one bad file never stops the run
        return outcome("failed", error_type=type(exc).__name__, message=error_message(exc))
    load_ms = (time.perf_counter() - t0) * 1000
    if keep_open:
        return outcome("loaded", loaded=doc, dpi=doc.dpi, load_ms=load_ms)
    with doc:
        return outcome("loaded", document=doc.document, dpi=doc.dpi, timings_ms=dict(doc.timings_ms),
                       load_ms=load_ms)


def loader_process_init() -> None:
    """Initializer of loader processes (here, not in batch_runner: that module imports torch).

    They ignore SIGINT: Ctrl-C reaches the whole process group, and only the driver decides how to
    stop (it lets running loads finish instead of dying mid-file). And they exit when the driver
    dies: after a SIGKILL nobody would shut the pool down, and a worker waiting on its task queue
    (whose write end its siblings also hold) would wait forever.
    """
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="invoicegen-parent-watch", daemon=True).start()


class ReloadBackend(PageBackend):
    """Page images for a document whose words were read in another process: the file is read
    again here on first use. Only visual recipes need page images, so text models never pay."""

    def __init__(self, path: str, n_pages: int, options: LoadOptions | ExtractOptions) -> None:
        self.path = path
        self.n_pages = n_pages
        self.options = options
        self._doc: LoadedDocument | None = None

    def _open(self) -> LoadedDocument:
        if self._doc is None:
            o = self.options
            self._doc = load_document(self.path, ocr="none", dpi=o.dpi, password=o.password, limits=o.limits)
        return self._doc

    def render(self, index: int, dpi: float | None) -> Any:
        return self._open().page_image(index, dpi)

    def native_dpi(self, index: int) -> float:
        return self._open().page_dpi(index)

    def page_count(self) -> int:
        return self.n_pages

    @contextmanager
    def pdf(self) -> Iterator[Any | None]:
        """The file opened here too (its text layer read again, ~10 ms a page): the embedded
        e-invoice XML is not part of the pickled Document."""
        with self._open().pdf() as pdf:
            yield pdf

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
            self._doc = None


def open_outcome(outcome: LoadOutcome, options: LoadOptions | ExtractOptions) -> LoadedDocument:
    """The :class:`LoadedDocument` of a loaded outcome (rebuilt around its Document if needed)."""
    if outcome.loaded is not None:
        return outcome.loaded
    assert outcome.document is not None
    backend = ReloadBackend(outcome.path, len(outcome.document.pages), options)
    return LoadedDocument(outcome.document, backend, outcome.dpi, dict(outcome.timings_ms))


# ------------------------------------------------------------------------------------------------
# The model stage
# ------------------------------------------------------------------------------------------------


def result_json(result: ExtractionResult) -> str:
    """The exact text of an output file (both engines write this)."""
    return result.model_dump_json(indent=2) + "\n"


def extract_batch(extractor: Extractor, docs: Sequence[LoadedDocument], load_ms: Sequence[float],
                  options: ExtractOptions) -> list[ExtractionResult | Exception]:
    """One model call for ``docs``; if it fails, each document again on its own, so one document
    that breaks the model (a bug, not bad input) fails alone instead of taking its batch along."""
    try:
        return list(extractor.extract_many(docs, options=options, load_ms=load_ms))
    except Exception as exc:
        if len(docs) == 1:
            return [exc]
    out: list[ExtractionResult | Exception] = []
    for doc, ms in zip(docs, load_ms, strict=True):
        try:
            out.append(extractor.extract_many([doc], options=options, load_ms=[ms])[0])
        except Exception as exc:
            out.append(exc)
    return out


def load_extract_write(extractor: Extractor, items: Sequence[InputFile], out: Path, options: ExtractOptions, *,
                       force: bool = False, ignore_unsupported: bool = False, fsync: bool = True
                       ) -> list[LoadOutcome]:
    """Load ``items``, ONE extract_many call, write the outputs; one status per file (never raises
    for a bad file). A whole batch on one core: the local engine's worker processes and the Ray
    engine's CPU actors, so the two write the same outputs by construction."""
    finished: list[LoadOutcome] = []
    loaded: list[LoadOutcome] = []
    for item in items:
        o = load_input(item, out, options, force=force, ignore_unsupported=ignore_unsupported, keep_open=True)
        (loaded if o.status == "loaded" else finished).append(o)
    if not loaded:
        return finished
    docs = [o.loaded for o in loaded if o.loaded is not None]
    try:
        results = extract_batch(extractor, docs, [o.load_ms for o in loaded], options)
    finally:
        for d in docs:
            d.close()
    for o, res in zip(loaded, results, strict=True):
        o.loaded = None
        if isinstance(res, Exception):
            o.status, o.error_type, o.message = "failed", type(res).__name__, error_message(res)
        else:
            try:
                atomic_write_text(output_path(out, o.rel), result_json(res), fsync=fsync)
                o.status, o.pages, o.summary = "processed", res.document.pages, summary_row(o.rel, res)
            except OSError as exc:
                o.status, o.error_type, o.message = "failed", type(exc).__name__, f"writing the output: {exc}"
        finished.append(o)
    return finished


def with_model_threads(extractor: Extractor, threads: int) -> Extractor:
    """The extractor with an ONNX session of ``threads`` intra-op threads (a second session on the
    same file, ~0.1 s; the extractor itself when it has them, or runs torch, whose threads are
    process-wide). Where several inferences share the cores (two model threads, a Ray actor next
    to load tasks), each should use its share: more threads than cores only fight."""
    from invoicegen.extract.pipeline import Extractor
    from invoicegen.model.runtime import with_threads

    runtime = with_threads(extractor.runtime, threads)
    return extractor if runtime is extractor.runtime else Extractor(runtime, batch_size=extractor.batch_size)


def remove_output(output_dir: Path, rel: str) -> None:
    """Drop the output of an input that now fails (it was made from older content)."""
    with contextlib.suppress(FileNotFoundError):
        output_path(output_dir, rel).unlink()


SUMMARY_COLUMNS = ["file", "pages", *CSV_FIELDS, "line_items", "failed_checks"]
"""The columns of ``invoicegen extract --format csv`` (``extract.output.csv_text``)."""


def write_summary(output_dir: Path, inputs: Sequence[InputFile], failed: set[str], *, fsync: bool = True,
                  rows: Mapping[str, dict[str, str]] | None = None) -> int:
    """Rebuild ``summary.csv`` for all inputs, in input order. ``rows``: the rows of the documents
    processed in this run (a few hundred bytes each); the other outputs (skipped: done by an earlier
    run) are read back, ~0.5 ms each, which at the end of a run would keep every core waiting.
    ``failed``: inputs that failed in this run (their outputs are gone). Returns the number of rows."""
    rows = rows or {}
    n = 0
    with atomic_writer(output_dir / SUMMARY_FILE, fsync=fsync, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for item in inputs:
            if item.rel in failed:
                continue
            row = rows.get(item.rel)
            if row is None:
                result = read_result(output_path(output_dir, item.rel))
                row = None if result is None else summary_row(item.rel, result)
            if row is not None:
                writer.writerow(row)
                n += 1
    return n


__all__ = [
    "BatchError",
    "BatchStats",
    "ERRORS_FILE",
    "ErrorLog",
    "InputFile",
    "LoadOptions",
    "LoadOutcome",
    "OutputLock",
    "SUMMARY_FILE",
    "atomic_write_text",
    "atomic_writer",
    "check_dirs",
    "check_options",
    "discover_inputs",
    "extract_batch",
    "load_input",
    "output_path",
    "result_json",
    "sweep_temp_files",
    "with_model_threads",
    "write_summary",
]
