"""The Ray Data engine against a local Ray started here (2 CPUs): it writes what the local engine
writes (JSON identical except timings, same summary.csv and errors.jsonl), and the two engines
resume each other's runs. Skipped when Ray Data is not installed (it is an optional extra)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_helpers import BAD, GOOD, assert_complete, error_lines, factory_pdfs, make_tree, outputs
from invoicegen.deployment.batch_runner import AsyncBatchRunner
from invoicegen.deployment.model_loader import ModelLoader

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file for a throwaway local cluster
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


def _without_time(lines: list[dict[str, Any]]) -> dict[str, tuple[str, str, str]]:
    return {e["path"]: (e["sha256"], e["error"], e["message"]) for e in lines}


@pytest.mark.parametrize("split_stages", [False, True], ids=["actors-per-cpu", "load-tasks-and-model-actor"])
def test_ray_engine_writes_what_the_local_engine_writes(tmp_path: Path, tiny_model_dir: Path,
                                                        local_ray: Any, split_stages: bool) -> None:
    """Both layouts: without GPUs (the default here) one actor per CPU does whole batches; with GPUs
    load tasks feed model actors (forced here on CPU: the same stages, only the device differs)."""
    from invoicegen.deployment.ray_engine import RayBatchEngine

    src = make_tree(tmp_path / "in", factory_pdfs(tmp_path / "factory", 4, seed=21))
    local_out, ray_out = tmp_path / "local", tmp_path / "ray"
    local = AsyncBatchRunner(ModelLoader(tiny_model_dir), batch_size=3, num_workers=2,
                             progress=False).process_directory(src, local_out)
    engine = RayBatchEngine(tiny_model_dir, batch_size=3, progress=False, split_stages=split_stages)
    remote = engine.run(src, ray_out)

    assert remote.engine == "ray" and not remote.interrupted
    assert remote.mode == ("load tasks, 1 model actor" if split_stages else "2 actors reading and extracting")
    for key in ("total", "processed", "failed", "skipped", "pages"):
        assert getattr(remote, key) == getattr(local, key), key
    assert sorted(outputs(ray_out)) == sorted(GOOD)
    assert outputs(ray_out) == outputs(local_out)  # identical JSON except timings_ms
    assert (ray_out / "summary.csv").read_text() == (local_out / "summary.csv").read_text()
    assert _without_time(error_lines(ray_out)) == _without_time(error_lines(local_out))
    assert {e["path"]: e["error"] for e in error_lines(ray_out)} == BAD
    assert local_ray.is_initialized()  # a Ray the caller started is left running
    assert_complete(src, ray_out)

    # the engines resume each other's runs: Ray skips everything the local engine finished
    again = engine.run(src, local_out)
    assert (again.skipped, again.processed, again.failed) == (len(GOOD), 0, len(BAD))
    assert_complete(src, local_out)
