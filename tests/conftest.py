"""Shared fixtures: where the real third-party evaluation data lives (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def find_realdata() -> Path | None:
    """``$INVOICEGEN_REALDATA`` if set, else ``<repo>/../shared/realdata``; None when absent."""
    env = os.environ.get("INVOICEGEN_REALDATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "realdata"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real-data folder; tests using it skip cleanly where it is not available."""
    path = find_realdata()
    if path is None:
        pytest.skip("real data not found: set INVOICEGEN_REALDATA or provide <repo>/../shared/realdata")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint trained for 10 epochs on toy documents (a few seconds on 2 cores); shared by
    every test that needs a real model to serve (API, batch runner)."""
    from invoicegen.model.recipes import get_recipe
    from invoicegen.model.train import TrainConfig, train
    from toydata import write_toy_dataset

    root = tmp_path_factory.mktemp("tiny-model")
    data = write_toy_dataset(root / "data", n=8)
    out = root / "model"
    train(TrainConfig(data=data, out=out, recipe=get_recipe("tiny").with_overrides(epochs=10), progress=False))
    return out
