"""``AsyncBatchRunner``: extract every document of a directory tree, resumably and fault-tolerantly.

Why this shape:

* **Pipelined.** Reading a file (PDF text layer, or rendering + OCR) is per-file CPU work that
  parallelises. A worker pool (threads or processes) loads files while batches of up to
  ``batch_size`` loaded documents go through ONE ``Extractor.extract_many`` call, so loading and
  inference overlap and both cores work. A result never depends on the other documents of its
  batch (an INT8 model runs each window in a call of its own: ``model.runtime.run_each``), so it is
  exactly what ``Extractor.extract`` gives, whatever the engine, mode or timing.
* **Bounded.** At most ``max_inflight`` documents are submitted or loaded but not yet written, so
  memory stays flat on 10,000 files (the input list is paths only; results are not kept).
* **Resumable.** An input is done when ``OUT/<rel>.json`` exists and its ``document.sha256`` is
  the input's hash: a rerun skips it, redoes changed inputs and retries failed ones.
* **Fault-tolerant.** A bad file becomes one line of ``errors.jsonl`` and the run goes on; outputs
  are written atomically, so a kill (even SIGKILL) never leaves a partial ``.json``. SIGINT/SIGTERM
  stop gracefully: the batch in the model finishes and is written, then the run stops.

The on-disk layout is in :mod:`invoicegen.deployment.batch_io` (shared with the Ray engine).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm import tqdm

from invoicegen.deployment.batch_io import (
    BatchError,
    BatchStats,
    ErrorLog,
    InputFile,
    LoadOptions,
    LoadOutcome,
    OutputLock,
    atomic_write_text,
    check_dirs,
    check_options,
    discover_inputs,
    error_message,
    extract_batch,
    load_extract_write,
    load_input,
    loader_process_init,
    open_outcome,
    output_path,
    remove_output,
    result_json,
    sweep_temp_files,
    with_model_threads,
    write_summary,
)
from invoicegen.deployment.model_loader import ModelLoader
from invoicegen.extract.output import summary_row
from invoicegen.extract.pipeline import ExtractOptions
from invoicegen.schema import ExtractionResult

log = logging.getLogger("invoicegen.batch")

WORKERS_DIED = ("the worker processes died before finishing any batch (could they load the model? run with "
                "the default --threads mode to see the error)")


@dataclass
class _Job:
    item: InputFile
    attempt: int = 1


def _failed(job: _Job, exc: BaseException, message: str) -> LoadOutcome:
    """The outcome of a file whose worker call raised instead of returning its outcome."""
    return LoadOutcome(job.item.rel, "", "failed", path=str(job.item.path), error_type=type(exc).__name__,
                       message=message)


class AsyncBatchRunner:
    """Runs a directory of invoices through the model (see the module docstring).

    ``batch_size``: documents per model call. ``use_threads=True``: ``num_workers`` loader threads
    feed up to ``model_threads`` concurrent model batches in this process (one model in memory; the
    GIL limits the Python parts to one core). ``use_threads=False``: ``num_workers`` processes, each
    with its own model (CPU only), run the whole pipeline for their batches, so the Python parts
    (PDF text, encoding, decoding, JSON) use every core too, at a few seconds' start-up and one
    model's memory per process.
    """

    def __init__(self, model_loader: ModelLoader | None = None, batch_size: int = 16, num_workers: int = 4,
                 use_threads: bool = True, *, options: ExtractOptions | None = None,
                 max_inflight: int | None = None, max_wait_s: float = 2.0, model_threads: int | None = None,
                 torch_threads: int | None = None, force: bool = False, ignore_unsupported: bool = False,
                 progress: bool = True, fsync: bool = True) -> None:
        if batch_size < 1 or num_workers < 1:
            raise ValueError("batch_size and num_workers must be at least 1")
        self.model_loader = model_loader or ModelLoader()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.use_threads = use_threads
        self.options = options or self.model_loader.default_options
        check_options(self.options)
        self.max_inflight = max_inflight or (2 * batch_size + num_workers)
        """Documents submitted for loading or loaded but not yet written (the memory bound)."""
        self.max_wait_s = max_wait_s
        """A partial batch goes to the model once its oldest document has waited this long."""
        self.model_threads = model_threads
        """Batches in the model at once (default: 2 on CPU, 1 on GPU): while one batch is in
        Python (encoding, decoding), the other runs matrix products with the GIL released."""
        self.torch_threads = torch_threads
        """Intra-op threads of the model during the run (default: cores / model_threads): torch's (restored
        after) or the ONNX session's (a session for the run, :func:`batch_io.with_model_threads`)."""
        self.force = force
        self.ignore_unsupported = ignore_unsupported
        self.progress = progress
        self.fsync = fsync
        self._started: Executor | None = None

    # -- public API ------------------------------------------------------------------------------

    async def process_directory_async(self, input_dir: str | Path, output_dir: str | Path) -> BatchStats:
        """Process ``input_dir`` into ``output_dir`` without blocking the event loop.

        Cancelling the task stops the run gracefully (the batch in the model is finished and
        written) and then re-raises ``CancelledError``.
        """
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, self._run, Path(input_dir), Path(output_dir), stop)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([fut])
            raise

    def process_directory(self, input_dir: str | Path, output_dir: str | Path, *,
                          handle_signals: bool = True) -> BatchStats:
        """Blocking version. In the main thread, the first SIGINT/SIGTERM stops gracefully
        (``stats.interrupted``); a second SIGINT aborts at once (outputs stay complete)."""
        stop = threading.Event()
        with _graceful_signals(stop, enabled=handle_signals):
            return self._run(Path(input_dir), Path(output_dir), stop)

    # -- the run ---------------------------------------------------------------------------------

    def start(self) -> float:
        """Warm start: load the model now (threads), or spawn the worker processes and wait until
        each has loaded its model (processes), e.g. while the input is still arriving; returns the
        seconds it took. The next ``process_directory`` takes the started processes over (and stops
        them at its end); :meth:`close` stops them if no run follows. Optional: a run starts what it
        needs itself."""
        t0 = time.perf_counter()
        if self.use_threads:
            self.model_loader.load_model()
        elif self._started is None:
            if not self.model_loader.model_path.is_dir():
                raise FileNotFoundError(f"model directory {self.model_loader.model_path} does not exist")
            pool, ready = self._make_process_pool()
            futures = [pool.submit(os.getpid) for _ in range(self.num_workers)]  # each submit spawns one
            n = 0
            while n < self.num_workers:
                if ready.acquire(timeout=0.1):
                    n += 1
                elif any(f.done() and f.exception() is not None for f in futures):
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise BatchError(WORKERS_DIED)
            self._started = pool
        return time.perf_counter() - t0

    def close(self) -> None:
        """Stop worker processes started by :meth:`start` that no run took over."""
        pool, self._started = self._started, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _take_pool(self) -> Executor:
        pool, self._started = self._started, None
        return pool or self._make_pool()

    def _make_pool(self) -> Executor:
        if self.use_threads:
            return ThreadPoolExecutor(self.num_workers, thread_name_prefix="invoicegen-batch-load")
        return self._make_process_pool()[0]

    def _make_process_pool(self) -> tuple[ProcessPoolExecutor, Any]:
        """The worker processes (spawned on the first submits) and a semaphore each of them releases
        once its model is loaded."""
        # spawn, not fork: the driver holds torch's thread pools and PDFium, neither fork-safe
        ctx = multiprocessing.get_context("spawn")
        threads = self.torch_threads or max(1, (os.cpu_count() or 1) // self.num_workers)
        loader = self.model_loader
        ready = ctx.Semaphore(0)
        pool = ProcessPoolExecutor(self.num_workers, mp_context=ctx, initializer=_pipeline_process_init,
                                   initargs=(str(loader.model_path), loader.backend, loader.batch_size, self.options,
                                             threads, ready))
        return pool, ready

    def _run(self, input_dir: Path, output_dir: Path, stop: threading.Event) -> BatchStats:
        t0 = time.perf_counter()
        src, out = check_dirs(input_dir, output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with OutputLock(out):
            swept = sweep_temp_files(out)
            if swept:
                log.info("removed %d temp file(s) left by an earlier run", swept)
            inputs = discover_inputs(src, out)
            if self.use_threads:
                extractor = self.model_loader.load_model()  # fail before touching anything else
                on_gpu = self.model_loader.device.startswith("cuda")
                model_threads = self.model_threads or (1 if on_gpu else min(2, os.cpu_count() or 1))
                torch_threads = self.torch_threads or max(1, (os.cpu_count() or 1) // model_threads)
                run = _Run(self, with_model_threads(extractor, torch_threads), out, inputs, stop, model_threads)
            else:  # the worker processes load the model; the driver only schedules
                if not self.model_loader.model_path.is_dir():
                    raise FileNotFoundError(f"model directory {self.model_loader.model_path} does not exist")
                on_gpu, torch_threads = True, 0  # (no model in the driver: leave its threads alone)
                run = _ProcessRun(self, None, out, inputs, stop, 1)
            with _torch_threads(None if on_gpu else torch_threads):
                try:
                    run.execute()
                except BaseException:
                    run.finish(aborted=True)
                    raise
                run.finish(aborted=False)
            run.stats.seconds = time.perf_counter() - t0
            log.info("batch done: %s", run.stats.line())
            return run.stats


class _Run:
    """The state of one run: the pool, the documents in flight, the counters."""

    def __init__(self, runner: AsyncBatchRunner, extractor: Any, out: Path, inputs: list[InputFile],
                 stop: threading.Event, model_threads: int) -> None:
        self.r = runner
        self.extractor = extractor
        self.out, self.inputs, self.stop = out, inputs, stop
        n, kind = runner.num_workers, "thread" if runner.use_threads else "process"
        self.stats = BatchStats(total=len(inputs), engine="local", output_dir=str(out),
                                mode=f"{n} {kind}{'' if n == 1 else 'es' if kind == 'process' else 's'}")
        self.errors = ErrorLog(out, fsync=runner.fsync)
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.rows: dict[str, dict[str, str]] = {}
        """summary.csv rows of the documents processed in this run."""
        self.pending: dict[Future[LoadOutcome], tuple[_Job, Executor]] = {}
        self.ready: list[tuple[LoadOutcome, float]] = []
        self.retry: list[_Job] = []
        self._items = iter(inputs)
        self._taken = 0
        self._exhausted = False
        self.load_options = LoadOptions.of(runner.options)
        self.pool = runner._take_pool()
        self.model_threads = model_threads
        self.model_pool = ThreadPoolExecutor(model_threads, thread_name_prefix="invoicegen-batch-model")
        self.running: dict[Future[list[ExtractionResult | Exception]], list[LoadOutcome]] = {}
        self.bar = tqdm(total=len(inputs), unit="doc", disable=not runner.progress, file=sys.stderr,
                        dynamic_ncols=True, desc="batch")

    # -- loading ----------------------------------------------------------------------------------

    def _next_job(self) -> _Job | None:
        if self.retry:
            return self.retry.pop()
        item = next(self._items, None)
        if item is None:
            self._exhausted = True
            return None
        self._taken += 1
        return _Job(item)

    @property
    def _more(self) -> bool:
        return not self._exhausted or bool(self.retry)

    def _submit(self, job: _Job) -> None:
        r = self.r
        fut = self.pool.submit(load_input, job.item, self.out, self.load_options, force=r.force,
                               ignore_unsupported=r.ignore_unsupported, keep_open=r.use_threads)
        self.pending[fut] = (job, self.pool)

    def _wait(self, timeout: float | None) -> None:
        """Take finished loads and model batches (waiting up to ``timeout`` for the first one)."""
        futures: list[Future[Any]] = [*self.pending, *self.running]
        if not futures:
            return
        finished, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        for fut in finished:
            if fut in self.running:
                self._batch_done(fut)
            else:
                self._load_done(fut)

    def _load_done(self, fut: Future[LoadOutcome]) -> None:
        job, pool = self.pending.pop(fut)
        try:
            outcome = fut.result()
        except BrokenProcessPool:
            self._pool_broke(job, pool)
            return
        except Exception as exc:  # load_input catches everything; this is a pickling problem
            outcome = _failed(job, exc, str(exc))
        self._take(outcome)

    def _pool_broke(self, job: _Job, pool: Executor) -> None:
        """A loader process died (a crash or out of memory in a decoder): every file the pool held
        fails with it. Start a new pool and retry those files once; a file that is in flight when a
        pool dies a second time is recorded as failed (the next run retries it)."""
        if job.attempt >= 2:
            self._fail(job.item.rel, "", "WorkerCrashed",
                       f"{job.item.rel}: the loader process died while it was being read (crash or out of memory)")
            return
        if pool is self.pool:  # the first casualty of this pool replaces it
            pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self.r._make_pool()
            log.warning("a loader process died; restarted the loader pool")
        self.retry.append(replace(job, attempt=job.attempt + 1))

    def _take(self, o: LoadOutcome) -> None:
        if o.status == "loaded":
            self.ready.append((o, time.perf_counter()))
            return
        if o.status == "skipped":
            self.stats.skipped += 1
            self.done.add(o.rel)
        elif o.status == "ignored":
            self.stats.ignored += 1
        else:
            self._fail(o.rel, o.sha256, o.error_type, o.message, counted=False)
        self._tick()

    def _fail(self, rel: str, sha: str, error_type: str, message: str, counted: bool = True) -> None:
        self.errors.record(rel, sha, error_type, message)
        remove_output(self.out, rel)
        self.rows.pop(rel, None)
        self.failed.add(rel)
        self.done.discard(rel)
        self.stats.failed += 1
        if counted:
            self._tick()

    def _tick(self, n: int = 1) -> None:
        self.bar.update(n)
        s = self.stats
        if s.failed or s.skipped:
            self.bar.set_postfix(failed=s.failed, skipped=s.skipped, refresh=False)

    # -- the model -------------------------------------------------------------------------------

    def _model_job(self, outcomes: list[LoadOutcome]) -> list[ExtractionResult | Exception]:
        """Runs in a model thread: one extract_many call for the batch; the documents are closed."""
        opts = self.r.options
        docs = []
        try:
            docs = [open_outcome(o, opts) for o in outcomes]
            return extract_batch(self.extractor, docs, [o.load_ms for o in outcomes], opts)
        finally:
            for d in docs:
                d.close()
            for o in outcomes:
                o.loaded = None

    def _submit_batch(self) -> None:
        n = self.r.batch_size
        batch, self.ready = self.ready[:n], self.ready[n:]
        outcomes = [o for o, _ in batch]
        self.running[self.model_pool.submit(self._model_job, outcomes)] = outcomes

    def _batch_done(self, fut: Future[list[ExtractionResult | Exception]]) -> None:
        """Back in the driver: write the outputs of a finished batch."""
        outcomes = self.running.pop(fut)
        try:
            results = fut.result()
        except Exception as exc:  # extract_batch returns errors; this would be a bug around it
            results = [exc] * len(outcomes)
        for o, res in zip(outcomes, results, strict=True):
            if isinstance(res, Exception):
                log.error("model stage failed on %s: %r", o.rel, res)
                self._fail(o.rel, o.sha256, type(res).__name__, error_message(res))
                continue
            try:
                atomic_write_text(output_path(self.out, o.rel), result_json(res), fsync=self.r.fsync)
            except OSError as exc:
                self._fail(o.rel, o.sha256, type(exc).__name__, f"writing the output: {exc}")
                continue
            self.done.add(o.rel)
            self.rows[o.rel] = summary_row(o.rel, res)
            self.stats.processed += 1
            self.stats.pages += res.document.pages
            self._tick()

    def _batch_due(self) -> bool:
        if not self.ready or len(self.running) >= self.model_threads:
            return False
        if len(self.ready) >= self.r.batch_size or not (self._more or self.pending):
            return True
        return time.perf_counter() - self.ready[0][1] >= self.r.max_wait_s

    @property
    def _in_flight(self) -> int:
        return len(self.pending) + len(self.ready) + sum(len(b) for b in self.running.values())

    # -- the loop ---------------------------------------------------------------------------------

    def execute(self) -> None:
        while not self.stop.is_set():
            # keep the loaders fed: everything submitted, loaded or in the model counts against the bound
            while self._in_flight < self.r.max_inflight:
                job = self._next_job()
                if job is None:
                    break
                self._submit(job)
            if not (self.pending or self.ready or self.running or self._more):
                break
            if self._batch_due():
                self._wait(0)  # whatever else finished joins this batch
                self._submit_batch()
                continue
            timeout = 0.5  # at most: check `stop`
            if self.ready and len(self.running) < self.model_threads:
                timeout = min(timeout, max(0.0, self.r.max_wait_s - (time.perf_counter() - self.ready[0][1])))
            self._wait(timeout)
        if self.stop.is_set():
            self.stats.interrupted = True

    def finish(self, aborted: bool) -> None:
        """Stop the loaders, record what they finished, compact errors.jsonl, rebuild summary.csv.

        On a graceful stop, batches in the model finish and are written, loads that already finished
        keep their verdict (skipped/failed), loaded documents that did not reach the model are dropped
        (the rerun does them). On an abort (a second Ctrl-C, an exception), only the error log is
        closed: the next run rebuilds the rest.
        """
        self.pool.shutdown(wait=not aborted, cancel_futures=True)
        if not aborted:
            for mfut in list(self.running):  # the batches in the model finish and are written
                wait([mfut])
                self._batch_done(mfut)
        self.model_pool.shutdown(wait=not aborted, cancel_futures=True)
        self.running.clear()
        for fut in list(self.pending):
            if fut.done() and not fut.cancelled() and fut.exception() is None and not aborted:
                outcome = fut.result()
                if outcome.status != "loaded":
                    self._take(outcome)
                elif outcome.loaded is not None:
                    outcome.loaded.close()
        self.pending.clear()
        for o, _ in self.ready:
            if o.loaded is not None:
                o.loaded.close()
        self.ready.clear()
        self.bar.close()
        if aborted:
            self.errors.close()
            return
        self.errors.compact((i.rel for i in self.inputs), self.done)
        write_summary(self.out, self.inputs, self.failed, fsync=self.r.fsync, rows=self.rows)


MIN_CHUNK = 4
"""Smallest chunk of files handed to a worker process (each chunk is a round trip to it)."""


class _ProcessRun(_Run):
    """Process mode: the driver hands out batches of paths; each worker process loads its batch,
    runs ONE extract_many call with its own model and writes the outputs, so the Python parts of
    the pipeline (reading PDFs, encoding, decoding, JSON) run on all cores instead of one GIL.
    Batches in different processes overlap: one loads while another runs the model."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.jobs: dict[Future[list[LoadOutcome]], tuple[list[_Job], Executor]] = {}
        self.chunks_done = 0

    def _broken(self, chunk: list[_Job], pool: Executor) -> None:
        if not self.chunks_done:  # no process ever finished a batch: they cannot start at all
            raise BatchError(WORKERS_DIED)
        for job in chunk:
            self._pool_broke(job, pool)

    def _chunk_size(self) -> int:
        """``batch_size`` files per chunk, smaller towards the end of the input (what is left / (2 x
        workers), at least MIN_CHUNK), so the processes finish together instead of one working
        through a last full batch while the others idle."""
        r = self.r
        left = len(self.inputs) - self._taken
        return min(r.batch_size, max(MIN_CHUNK, -(-left // (2 * r.num_workers))))

    def _next_chunk(self) -> list[_Job]:
        if self.retry:  # files of a crashed process are retried one by one
            return [self.retry.pop()]
        chunk: list[_Job] = []
        size = self._chunk_size()
        while len(chunk) < size:
            job = self._next_job()
            if job is None:
                break
            chunk.append(job)
        return chunk

    def execute(self) -> None:
        r = self.r
        while not self.stop.is_set():
            while len(self.jobs) < 2 * r.num_workers:  # one running and one queued per process
                chunk = self._next_chunk()
                if not chunk:
                    break
                try:
                    fut = self.pool.submit(_pipeline_batch, [j.item for j in chunk], self.out, r.force,
                                           r.ignore_unsupported, r.fsync)
                except BrokenProcessPool:
                    self._broken(chunk, self.pool)
                    continue
                self.jobs[fut] = (chunk, self.pool)
            if not self.jobs and not self._more:
                break
            self._wait(0.5)
        if self.stop.is_set():
            self.stats.interrupted = True

    def _wait(self, timeout: float | None) -> None:
        if not self.jobs:
            return
        finished, _ = wait(list(self.jobs), timeout=timeout, return_when=FIRST_COMPLETED)
        for fut in finished:
            self._chunk_done(fut)

    def _chunk_done(self, fut: Future[list[LoadOutcome]]) -> None:
        chunk, pool = self.jobs.pop(fut)
        try:
            outcomes = fut.result()
        except BrokenProcessPool:
            self._broken(chunk, pool)
            return
        except Exception as exc:  # _pipeline_batch catches per file; this is a bug around it
            outcomes = [_failed(j, exc, error_message(exc)) for j in chunk]
        self.chunks_done += 1
        for o in outcomes:
            if o.status == "processed":
                self.done.add(o.rel)
                if o.summary is not None:
                    self.rows[o.rel] = o.summary
                self.stats.processed += 1
                self.stats.pages += o.pages
                self._tick()
            else:
                self._take(o)

    def finish(self, aborted: bool) -> None:
        """Running batches finish (their outputs are written by the processes) and are recorded;
        queued ones are cancelled. The run does not wait for the processes to exit (tearing down an
        interpreter and its model takes a few hundred ms each, and every result is in by then):
        they exit in the background, and at the latest when this interpreter does."""
        for fut in self.jobs:
            fut.cancel()
        if not aborted:
            for fut in list(self.jobs):
                if fut.cancelled():
                    continue
                wait([fut])
                if fut.exception() is None:
                    self._chunk_done(fut)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.jobs.clear()
        self.model_pool.shutdown(wait=False)
        self.bar.close()
        if aborted:
            self.errors.close()
            return
        self.errors.compact((i.rel for i in self.inputs), self.done)
        write_summary(self.out, self.inputs, self.failed, fsync=self.r.fsync, rows=self.rows)


_WORKER: dict[str, Any] = {}
"""A pipeline process's model and options (set once by its initializer)."""


def _pipeline_process_init(model_path: str, backend: str | None, window_batch: int, options: ExtractOptions,
                           threads: int, ready: Any = None) -> None:
    """Initializer of pipeline processes: SIGINT ignored, exit with the driver (as loader processes),
    and an own model with ``threads`` intra-op threads (processes x threads = cores).

    The model is loaded once, straight with its share of the cores. With the default ONNX backend
    neither torch nor transformers is imported: a process is ready in ~1 s of CPU instead of ~6 s,
    which on a short run was most of the process mode's time (see docs/batch.md, "Throughput")."""
    loader_process_init()
    from invoicegen.extract.pipeline import Extractor
    from invoicegen.model.runtime import load_runtime

    runtime = load_runtime(model_path, backend=backend, device="cpu", threads=threads)
    if runtime.backend == "torch":
        import torch

        torch.set_num_threads(threads)
    extractor = Extractor(runtime, batch_size=window_batch)
    _warm_up(extractor)
    _WORKER.update(extractor=extractor, options=options)
    if ready is not None:
        ready.release()  # AsyncBatchRunner.start waits for every process


def _warm_up(extractor: Any) -> None:
    """One extraction of the packaged sample invoice, so first-use costs (PDFium, the ONNX session's
    first run, lazy imports of the post-processing) are paid before the process reports ready."""
    from invoicegen.extract.pipeline import ExtractOptions

    sample = Path(__file__).resolve().parents[1] / "samples" / "sample_invoice.pdf"
    try:
        extractor.extract(sample, options=ExtractOptions(ocr="none"))
    except Exception as exc:  # a warm-up is an optimisation: the batches report real problems
        log.warning("warm-up extraction failed: %r", exc)


def _pipeline_batch(items: list[InputFile], out: Path, force: bool, ignore_unsupported: bool,
                    fsync: bool) -> list[LoadOutcome]:
    """In a pipeline process: :func:`~invoicegen.deployment.batch_io.load_extract_write` with the
    process's model (documents never cross the process boundary, only small statuses)."""
    return load_extract_write(_WORKER["extractor"], items, out, _WORKER["options"], force=force,
                              ignore_unsupported=ignore_unsupported, fsync=fsync)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads (process-wide) for the run, and restore them after: with two
    batches in the model at once, 2 x 2 threads on 2 cores would only fight over the cores."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _graceful_signals(stop: threading.Event, enabled: bool = True) -> Iterator[None]:
    """First SIGINT/SIGTERM: set ``stop`` (finish the current batch); second SIGINT: abort now."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        print(f"\n{name}: stopping after the current batch (outputs written so far are complete; "
              "press Ctrl-C again to abort)", file=sys.stderr, flush=True)

    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------

EXIT_OK, EXIT_SETUP, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_batch_command(input_dir: Path, output_dir: Path, *, engine: str = "local", workers: int | None = None,
                      batch_size: int = 16, processes: bool | None = None, ray_address: str | None = None,
                      model: Path | None = None, ocr: str = "auto", dpi: int = 150, force: bool = False,
                      ignore_unsupported: bool = False, progress: bool = True,
                      echo: Callable[[str], None] | None = None) -> int:
    """What ``invoicegen batch`` does; returns the exit code (0 all done, 1 cannot start,
    2 some inputs failed (see errors.jsonl), 130 interrupted: run the same command again).
    ``processes``: pipeline processes, or threads in this process; default: processes on CPU with
    more than one core (the Python half of the pipeline then uses every core: ~1.5x a plain loop on
    2 cores against 1.07x with threads, docs/batch.md), threads on a GPU (one model on it).
    ``workers``: loader threads (default 4), or pipeline processes (default: one per core; more only
    make the processes fight over the cores)."""
    say = echo or (lambda s: print(s, file=sys.stderr))
    import structlog

    if not structlog.is_configured():  # ModelLoader logs through structlog, to stdout by default;
        # keep stdout clean, and look sys.stderr up per message (it may be replaced, as in tests)
        structlog.configure(logger_factory=lambda *args: structlog.PrintLogger(sys.stderr))
    if engine not in ("local", "ray"):
        say(f"error: --engine must be local or ray, not {engine!r}")
        return EXIT_SETUP
    options = ExtractOptions(ocr=ocr, dpi=dpi)
    loader = ModelLoader(model_path=model, options=options)
    try:
        check_options(options)
        if not loader.model_path.is_dir():
            raise BatchError(f"model directory {loader.model_path} does not exist (use --model or MODEL_PATH)")
        if engine == "ray":
            from invoicegen.deployment.ray_engine import RayBatchEngine

            stop = threading.Event()
            with _graceful_signals(stop):
                stats = RayBatchEngine(model_path=loader.model_path, address=ray_address, batch_size=batch_size,
                                       options=options, force=force, ignore_unsupported=ignore_unsupported,
                                       progress=progress, model_actors=workers).run(input_dir, output_dir, stop)
        else:
            if processes is None:
                processes = not loader.device.startswith("cuda") and (os.cpu_count() or 1) > 1
            if workers is None:
                workers = (os.cpu_count() or 1) if processes else 4
            runner = AsyncBatchRunner(loader, batch_size=batch_size, num_workers=workers,
                                      use_threads=not processes, options=options, force=force,
                                      ignore_unsupported=ignore_unsupported, progress=progress)
            stats = runner.process_directory(input_dir, output_dir)
    except (BatchError, FileNotFoundError, ValueError) as exc:
        say(f"error: {exc}")
        return EXIT_SETUP
    except KeyboardInterrupt:
        say("aborted: outputs written so far are complete; run the same command again to continue")
        return EXIT_INTERRUPTED
    say(stats.line())
    if stats.interrupted:
        say("interrupted: outputs written so far are complete; run the same command again to continue")
        return EXIT_INTERRUPTED
    if stats.failed:
        say(f"{stats.failed} input(s) failed: see {Path(output_dir) / 'errors.jsonl'}")
        return EXIT_FAILED
    return EXIT_OK


__all__ = ["AsyncBatchRunner", "BatchStats", "run_batch_command"]
