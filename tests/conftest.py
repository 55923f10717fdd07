"""Shared fixtures: the real annotations (skipped when absent), dataset writers, tiny models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.paths import SHARED

# The tiny checkpoints of real transformers families, built once per session when asked for.
pytest_plugins = ["tests.helpers.model_fixtures"]

# Test configs build the scripted test model and mode (tests/helpers/conf): trust that module
# the way a user trusts their own (docs/security.md); subprocesses inherit it.
os.environ["ROBUSTNESS_TRUSTED_MODULES"] = "tests.helpers"


@pytest.fixture
def real_annotations() -> Path:
    """``../shared/mediconfusion/dataset.json``; the test is skipped where it is absent."""
    path = SHARED / "dataset.json"
    if not path.is_file():
        pytest.skip("../shared/mediconfusion is not present")
    return path


@pytest.fixture
def real_statistics() -> dict[str, int]:
    path = SHARED / "statistics.json"
    if not path.is_file():
        pytest.skip("../shared/mediconfusion is not present")
    return json.loads(path.read_text())


@pytest.fixture
def write_dataset(tmp_path):
    """Write a dict of pair records as dataset.json and return its path."""

    def _write(records: dict, name: str = "dataset.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(records))
        return path

    return _write


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The default experiment (reference model, phantom, default probes, W&B offline) on 16
    pairs without saliency: the run folder, shared by the dashboard and report tests."""
    from robustness.cli import main

    tmp = tmp_path_factory.mktemp("default_run")
    code = main([f"hydra.run.dir={tmp / 'run'}", f"cache.dir={tmp / 'cache'}", "dataset.pairs=16",
                 "explain=none", "resamples=200", "progress=false"])
    assert code == 0
    return tmp / "run"
