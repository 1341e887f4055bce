"""The batch runner on Ray Data, for clusters (``invoicegen batch --engine ray``).

Why Ray Data: it streams files through CPU tasks (reading, OCR) and a pool of model actors (one per
GPU when the cluster has GPUs) with backpressure between the stages, across as many machines as the
cluster has, without a queue or scheduler of our own. The pipeline with GPUs:

    read_binary_files -> map_batches(load: hash, skip check, text layer / OCR; CPU tasks)
                      -> map_batches(model: Extractor.extract_many, write <rel>.json; GPU actor pool)
                      -> driver: errors.jsonl, progress, stats; summary.csv at the end

Without GPUs the two map stages are one: a pool of one actor per CPU, each reading, loading and
extracting whole batches (:class:`PipelineStage`), as the local engine's worker processes do.

Everything on disk is the local engine's contract (:mod:`invoicegen.deployment.batch_io`): the same
inputs, output names, skip rule, error lines and summary, and the same JSON (timings aside), so the
two engines can resume each other's runs. On a cluster, the input and output directories and the
model directory must be at the same path on every node (a shared filesystem), and invoicegen must be
installed on every node. Ray is an optional extra: ``pip install "invoicegen[ray]"``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
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
    open_outcome,
    output_path,
    remove_output,
    result_json,
    sweep_temp_files,
    with_model_threads,
    write_summary,
)
from invoicegen.extract.pipeline import ExtractOptions
from invoicegen.schema import Document

log = logging.getLogger("invoicegen.batch.ray")

RAY_MISSING = ('the ray engine needs Ray Data, which is not installed: pip install "invoicegen[ray]" '
               '(or pip install "ray[data]>=2.10"); or use --engine local')

_COLUMNS = ("rel", "path", "sha256", "status", "document", "dpi", "timings", "load_ms", "error_type", "message",
            "pages")


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a BatchError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra, not just the core
    except ImportError:
        raise BatchError(RAY_MISSING) from None
    return ray


# ------------------------------------------------------------------------------------------------
# Rows between the stages (plain columns: Ray stores them as Arrow)
# ------------------------------------------------------------------------------------------------


def _outcome_to_row(o: LoadOutcome) -> dict[str, Any]:
    return {
        "rel": o.rel, "path": o.path, "sha256": o.sha256, "status": o.status,
        "document": o.document.model_dump_json() if o.document is not None else "",
        "dpi": int(o.dpi), "timings": json.dumps(o.timings_ms), "load_ms": float(o.load_ms),
        "error_type": o.error_type,
        "message": o.message, "pages": len(o.document.pages) if o.document is not None else o.pages,
    }


def _row_to_outcome(row: dict[str, Any]) -> LoadOutcome:
    doc = Document.model_validate_json(row["document"]) if row["document"] else None
    return LoadOutcome(rel=str(row["rel"]), sha256=str(row["sha256"]), status=row["status"], path=str(row["path"]),
                       document=doc, dpi=int(row["dpi"]), timings_ms=json.loads(row["timings"]),
                       load_ms=float(row["load_ms"]), error_type=str(row["error_type"]), message=str(row["message"]))


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {c: [r[c] for r in rows] for c in _COLUMNS}


def _rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    return [{k: _plain(batch[k][i]) for k in keys} for i in range(n)]


def _plain(value: Any) -> Any:
    """numpy scalars and bytes-likes from Ray's batches as plain Python values."""
    if hasattr(value, "item") and not isinstance(value, (bytes, str)):
        return value.item()
    return value


# ------------------------------------------------------------------------------------------------
# The two stages (run inside Ray workers)
# ------------------------------------------------------------------------------------------------


def load_stage(batch: dict[str, Any], *, root: str, out: str, options: LoadOptions, force: bool,
               ignore_unsupported: bool) -> dict[str, list[Any]]:
    """CPU task: hash, skip check and reading (text layer / OCR) of each file of the batch."""
    rows = []
    for path, data in zip(batch["path"], batch["bytes"], strict=True):
        p = Path(str(path))
        item = InputFile(p, p.relative_to(root).as_posix())
        o = load_input(item, Path(out), options, force=force, ignore_unsupported=ignore_unsupported,
                       keep_open=False, data=bytes(data))
        rows.append(_outcome_to_row(o))
    return _columns(rows)


class ModelStage:
    """Actor: loads the model once, then runs each batch through ONE ``extract_many`` call and writes
    the outputs (atomically, like the local engine)."""

    def __init__(self, model_path: str, out: str, options: ExtractOptions, device: str = "cpu",
                 fsync: bool = True) -> None:
        from invoicegen.deployment.model_loader import ModelLoader

        self.loader = ModelLoader(model_path, device=device, use_gpu=device.startswith("cuda"), options=options)
        self.extractor = self.loader.load_model()
        if not device.startswith("cuda"):  # the ONNX session on the actor's CPUs only, not on every core
            # of the node (torch follows OMP_NUM_THREADS, set by Ray)
            self.extractor = with_model_threads(self.extractor, max(1, int(ray_cpus())))
        self.out = Path(out)
        self.options = options
        self.fsync = fsync

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows = _rows(batch)
        todo = [(i, _row_to_outcome(r)) for i, r in enumerate(rows) if r["status"] == "loaded"]
        if todo:
            docs = [open_outcome(o, self.options) for _, o in todo]
            try:
                results = extract_batch(self.extractor, docs, [o.load_ms for _, o in todo], self.options)
            finally:
                for d in docs:
                    d.close()
            for (i, o), res in zip(todo, results, strict=True):
                row = rows[i]
                if not isinstance(res, Exception):
                    try:
                        atomic_write_text(output_path(self.out, o.rel), result_json(res), fsync=self.fsync)
                    except OSError as exc:
                        res = exc
                if isinstance(res, Exception):
                    row.update(status="failed", error_type=type(res).__name__, message=error_message(res))
                else:
                    row.update(status="processed", pages=res.document.pages)
        for row in rows:
            row["document"] = ""  # the words are not needed past this point
        return _columns(rows)


class PipelineStage(ModelStage):
    """Actor without GPUs: reads, loads and extracts its batch itself on its one CPU
    (``batch_io.load_extract_write``, what a worker process of the local engine does).

    Why not load tasks feeding a model actor, as with GPUs: on CPUs both stages need the same cores,
    and the split cost more than it overlapped. One model actor next to load tasks ran 200 invoices in
    11-13 s on 2 CPUs (its CPU the bottleneck, at 40 ms a document: 7 of them re-reading the words
    from the load stage's rows), 2 model actors no faster (the load tasks then lacked a CPU)."""

    def __init__(self, model_path: str, root: str, out: str, options: ExtractOptions, force: bool,
                 ignore_unsupported: bool, fsync: bool = True) -> None:
        super().__init__(model_path, out, options, "cpu", fsync)
        self.root, self.force, self.ignore_unsupported = root, force, ignore_unsupported

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        items = [InputFile(Path(str(p)), Path(str(p)).relative_to(self.root).as_posix()) for p in batch["path"]]
        outcomes = load_extract_write(self.extractor, items, self.out, self.options, force=self.force,
                                      ignore_unsupported=self.ignore_unsupported, fsync=self.fsync)
        return _columns([_outcome_to_row(o) for o in outcomes])


# ------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------


class RayBatchEngine:
    """Runs a directory through Ray Data; same outputs as :class:`AsyncBatchRunner`.

    ``address``: a running cluster (``auto``, ``ray://host:10001``, ``host:6379``); None starts a
    local Ray with ``num_cpus`` (default: all) and stops it afterwards. An already initialised Ray
    (``ray.init`` by the caller) is used as it is and left running. ``model_actors``: model replicas
    (default: one per GPU, or one per CPU without GPUs); ``split_stages``: load in CPU tasks and run
    the model in separate actors (default: when the cluster has GPUs; without, each actor does both,
    see :class:`PipelineStage`); ``load_cpus``: CPUs per loading task; ``model_memory``: bytes of
    memory reserved per model actor (split stages); ``files_per_task``: files per read block.
    """

    def __init__(self, model_path: str | Path, *, address: str | None = None, batch_size: int = 16,
                 options: ExtractOptions | None = None, force: bool = False, ignore_unsupported: bool = False,
                 progress: bool = True, model_actors: int | None = None, load_cpus: float = 1.0,
                 num_cpus: int | None = None, model_memory: int = 1 << 30, files_per_task: int = 4,
                 fsync: bool = True, split_stages: bool | None = None) -> None:
        if batch_size < 1 or (model_actors is not None and model_actors < 1):
            raise ValueError("batch_size and model_actors must be at least 1")
        self.model_path = Path(model_path).resolve()
        self.address = address
        self.batch_size = batch_size
        self.options = options or ExtractOptions()
        check_options(self.options)
        self.force = force
        self.ignore_unsupported = ignore_unsupported
        self.progress = progress
        self.model_actors = model_actors
        self.load_cpus = load_cpus
        self.num_cpus = num_cpus
        self.model_memory = model_memory
        self.files_per_task = max(1, files_per_task)
        self.fsync = fsync
        self.split_stages = split_stages

    def run(self, input_dir: str | Path, output_dir: str | Path, stop: threading.Event | None = None) -> BatchStats:
        ray = import_ray()
        if not self.model_path.is_dir():
            raise BatchError(f"model directory {self.model_path} does not exist")
        stop = stop or threading.Event()
        t0 = time.perf_counter()
        src, out = check_dirs(input_dir, output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with OutputLock(out):
            sweep_temp_files(out)
            inputs = discover_inputs(src, out)
            stats = BatchStats(total=len(inputs), engine="ray", output_dir=str(out))
            errors = ErrorLog(out, fsync=self.fsync)
            done: set[str] = set()
            failed: set[str] = set()
            started = False
            bar = tqdm(total=len(inputs), unit="doc", disable=not self.progress, desc="batch (ray)",
                       dynamic_ncols=True)
            try:
                if inputs:
                    if not ray.is_initialized():
                        started = True
                        self._init(ray)
                    for row in self._execute(ray, src, out, inputs, stats):
                        rel, status = row["rel"], row["status"]
                        if status in ("processed", "skipped"):
                            done.add(rel)
                            if status == "processed":
                                stats.processed += 1
                                stats.pages += int(row["pages"])
                            else:
                                stats.skipped += 1
                        elif status == "ignored":
                            stats.ignored += 1
                        else:
                            errors.record(rel, row["sha256"], row["error_type"], row["message"])
                            remove_output(out, rel)
                            failed.add(rel)
                            stats.failed += 1
                        bar.update(1)
                        if stop.is_set():
                            stats.interrupted = True
                            break
            except BaseException:
                errors.close()
                raise
            finally:
                bar.close()
                if started:
                    ray.shutdown()
            errors.compact((i.rel for i in inputs), done)
            write_summary(out, inputs, failed, fsync=self.fsync)
            stats.seconds = time.perf_counter() - t0
            return stats

    def _init(self, ray: Any) -> None:
        if self.address:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            # a private single-machine Ray: bound to loopback, no dashboard
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False, _node_ip_address="127.0.0.1")

    def _execute(self, ray: Any, src: Path, out: Path, inputs: list[InputFile], stats: BatchStats) -> Any:
        """One result row per input, yielded as the pipeline produces them (``stats.mode``: the layout)."""
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the driver shows one bar for the whole run
        gpus = int(ray.cluster_resources().get("GPU", 0))
        paths = [str(i.path) for i in inputs]
        # one block per `files_per_task` files: small tasks spread over the cluster (Ray's default
        # blocks hold n / (2 x CPUs) files each, thousands of files in one task)
        blocks = max(1, -(-len(paths) // self.files_per_task))
        if not (gpus if self.split_stages is None else self.split_stages):
            # one actor per CPU, each doing whole batches: the local engine's processes
            actors = self.model_actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            stats.mode = f"{actors} actor{'s' if actors > 1 else ''} reading and extracting"
            ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
            return self._rows(ds.map_batches(
                PipelineStage, batch_size=self.batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=1, fn_constructor_kwargs={
                    "model_path": str(self.model_path), "root": str(src), "out": str(out), "options": self.options,
                    "force": self.force, "ignore_unsupported": self.ignore_unsupported, "fsync": self.fsync}))
        # Split (with GPUs): CPU tasks read and load (OCR) while the model actors run on the GPUs. The memory
        # reservation also keeps Ray Data from fusing the load tasks into the model actors (it fuses
        # stages with identical resource requests): fused, each actor would read and OCR its batch
        # itself, and loading would no longer overlap inference. The load stage takes whole read
        # blocks (batch_size=None): Ray then fuses reading and loading into one small task per block.
        ds = ray.data.read_binary_files(paths, include_paths=True, override_num_blocks=blocks)
        ds = ds.map_batches(load_stage, batch_size=None, num_cpus=self.load_cpus,
                            fn_kwargs={"root": str(src), "out": str(out), "options": LoadOptions.of(self.options),
                                       "force": self.force, "ignore_unsupported": self.ignore_unsupported})
        model_kw: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        actors = self.model_actors or max(1, gpus)
        stats.mode = f"load tasks, {actors} model actor{'s' if actors > 1 else ''}" + (" on GPUs" if gpus else "")
        return self._rows(ds.map_batches(
            ModelStage, batch_size=self.batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors), memory=self.model_memory,
            fn_constructor_kwargs={"model_path": str(self.model_path), "out": str(out), "options": self.options,
                                   "device": "cuda" if gpus else "cpu", "fsync": self.fsync}, **model_kw))

    @staticmethod
    def _rows(ds: Any) -> Any:
        """Yield the dataset's result rows as plain values, as the pipeline produces them."""
        it = iter(ds.iter_rows())
        try:
            for row in it:
                yield {k: _plain(v) for k, v in row.items()}
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()


def ray_cpus() -> float:
    """CPUs Ray assigned to the calling task or actor (1 outside Ray)."""
    try:
        import ray

        return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0))
    except Exception:
        return 1.0


def ray_available() -> bool:
    try:
        import_ray()
    except BatchError:
        return False
    return True

__all__ = ["RAY_MISSING", "RayBatchEngine", "import_ray", "ray_available"]
