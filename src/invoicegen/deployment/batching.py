"""Dynamic micro-batching for the API.

Why: one model call on N documents costs much less than N calls (padding aside, the weights are
read once and the matrix products are larger), but an HTTP request carries one document. So each
request's file is read (text layer / OCR) in a bounded thread pool, and the loaded documents wait in
a queue for at most ``max_wait_s``; one collector takes up to ``max_batch`` of them and runs ONE
``Extractor.extract_many`` call in a model thread. While the model runs, new documents keep
arriving and form the next batch, so batches grow with load and stay at 1 when idle.

``model_workers`` batches may be in the model at once (each in its own thread): on a CPU the model
part releases the GIL while the encoding and decoding around it are Python, so with two workers one
batch's Python overlaps the other's matrix products (give each worker cores / workers intra-op
threads: more threads than cores only fight).

Admission is bounded (``queue_size`` documents in flight): past it callers get :class:`Overloaded`
(the API answers 503 + Retry-After) instead of an ever-growing queue that times out everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from invoicegen.deployment.metrics import ServiceMetrics
from invoicegen.deployment.model_loader import ModelLoader
from invoicegen.document import LoadedDocument
from invoicegen.errors import InvoiceGenError
from invoicegen.extract.pipeline import ExtractOptions
from invoicegen.schema import ExtractionResult, Page

log = structlog.get_logger("invoicegen.batching")


class Overloaded(Exception):
    """The admission queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the service is busy (queue full); retry in {retry_after} s")
        self.retry_after = retry_after


class InferenceTimeout(Exception):
    """A document did not finish within INFERENCE_TIMEOUT."""


@dataclass
class Outcome:
    """A finished document: the result and, when asked for, its pages with words."""

    result: ExtractionResult
    pages: list[Page] | None = None


@dataclass
class _Job:
    doc: LoadedDocument
    load_ms: float
    options: ExtractOptions
    want_words: bool
    future: asyncio.Future[Outcome]
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Schedules loading (thread pool) and model calls (``model_workers`` threads, micro-batches)."""

    def __init__(self, loader: ModelLoader, metrics: ServiceMetrics, *, max_batch: int = 8,
                 max_wait_s: float = 0.005, queue_size: int = 64, load_workers: int = 2,
                 timeout_s: float = 60.0, model_workers: int = 1) -> None:
        self.loader = loader
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self._load_pool = ThreadPoolExecutor(load_workers, thread_name_prefix="invoicegen-load")
        self.model_workers = max(1, model_workers)
        self._model_pool = ThreadPoolExecutor(self.model_workers, thread_name_prefix="invoicegen-model")
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._collector: asyncio.Task[None] | None = None
        self._free = asyncio.Semaphore(self.model_workers)
        """Model workers without a batch: the collector forms the next batch once one is free."""
        self._running: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._avg_doc_s = 0.5
        """Moving average of seconds per document, for Retry-After."""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop collecting; documents still queued fail; the pools finish what they run."""
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
            self._collector = None
        if self._running:  # batches in the model finish and answer their requests
            await asyncio.gather(*self._running, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            job.doc.close()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the service is shutting down"))
        self._load_pool.shutdown(wait=False, cancel_futures=True)
        self._model_pool.shutdown(wait=True)

    # -- admission --------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained a batch's worth."""
        batches = self._in_flight / max(1, self.max_batch)
        return max(1, min(60, round(batches * self._avg_doc_s * self.max_batch)))

    @contextlib.asynccontextmanager
    async def admit(self, n: int = 1) -> AsyncIterator[None]:
        """Reserve ``n`` places (all or none: a batch request is not split) or raise Overloaded."""
        if self._in_flight + n > self.queue_size:
            raise Overloaded(self.retry_after())
        self._in_flight += n
        self.metrics.in_flight.set(self._in_flight)
        try:
            yield
        finally:
            self._in_flight -= n
            self.metrics.in_flight.set(self._in_flight)

    # -- one document ---------------------------------------------------------------------------

    async def process(self, data: bytes, filename: str, options: ExtractOptions, want_words: bool = False
                      ) -> Outcome:
        """Load in the pool, then wait for the batch that carries this document (with the timeout)."""
        try:
            return await asyncio.wait_for(self._process(data, filename, options, want_words), self.timeout_s)
        except TimeoutError:
            raise InferenceTimeout(f"{filename}: no result within INFERENCE_TIMEOUT={self.timeout_s:g} s") from None

    async def _process(self, data: bytes, filename: str, options: ExtractOptions, want_words: bool) -> Outcome:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        load = loop.run_in_executor(self._load_pool, self.loader.load, data, filename, options)
        try:
            doc, load_ms = await asyncio.shield(load)
        except asyncio.CancelledError:
            load.add_done_callback(_close_loaded)  # the thread goes on: close what it returns
            raise
        future: asyncio.Future[Outcome] = loop.create_future()
        await self._queue.put(_Job(doc, load_ms, options, want_words, future))
        outcome = await future
        self._avg_doc_s = 0.8 * self._avg_doc_s + 0.2 * (time.perf_counter() - t0)
        return outcome

    # -- the collector ----------------------------------------------------------------------------

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()
            try:
                live = await self._next_batch(loop)
            except BaseException:
                self._free.release()
                raise
            task = loop.create_task(self._run_live(live), name="micro-batch")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> list[_Job]:
        """Up to ``max_batch`` queued jobs whose requests still wait: the first one, and the others
        that arrive within ``max_wait_s`` of it."""
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            live = []
            for job in batch:
                if job.future.done():  # its request timed out or went away while queued
                    job.doc.close()
                else:
                    live.append(job)
            if live:
                return live

    async def _run_live(self, live: list[_Job]) -> None:
        """One batch in a model worker; answers its jobs and frees the worker."""
        loop = asyncio.get_running_loop()
        try:
            try:
                outcomes = await loop.run_in_executor(self._model_pool, self._run_batch, live)
            except Exception as exc:  # _run_batch isolates per-document errors; this is a bug
                log.exception("batch_failed", size=len(live))
                outcomes = [exc] * len(live)
            for job, outcome in zip(live, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)
        finally:
            self._free.release()

    def _run_batch(self, jobs: list[_Job]) -> list[Outcome | BaseException]:
        """Model thread: one extract_many per distinct option set (normally exactly one)."""
        self.metrics.batch_size.observe(len(jobs))
        out: dict[int, Outcome | BaseException] = {}
        groups: dict[ExtractOptions, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            groups[job.options].append(i)
        try:
            for options, idx in groups.items():
                group_out = self._run_group([jobs[i] for i in idx], options)
                out.update(zip(idx, group_out, strict=True))
        finally:
            for job in jobs:
                job.doc.close()
        return [out[i] for i in range(len(jobs))]

    def _run_group(self, jobs: list[_Job], options: ExtractOptions) -> list[Outcome | BaseException]:
        try:
            results = self.loader.extract_loaded([j.doc for j in jobs], options, [j.load_ms for j in jobs])
        except Exception as exc:
            log.exception("extract_failed", size=len(jobs))
            if len(jobs) == 1:
                return [exc]
            # one document broke the batch: run them one by one so only that one fails
            out: list[Outcome | BaseException] = []
            for job in jobs:
                try:
                    result = self.loader.extract_loaded([job.doc], options, [job.load_ms])[0]
                    out.append(Outcome(result, _pages(job)))
                except Exception as one_exc:
                    log.exception("extract_failed", size=1)
                    out.append(one_exc)
            return out
        return [Outcome(result, _pages(job)) for job, result in zip(jobs, results, strict=True)]


def _pages(job: _Job) -> list[Page] | None:
    return list(job.doc.pages) if job.want_words else None


def _close_loaded(fut: asyncio.Future[tuple[LoadedDocument, float]]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fut.result()[0].close()


__all__ = ["InferenceTimeout", "InvoiceGenError", "MicroBatcher", "Outcome", "Overloaded"]
