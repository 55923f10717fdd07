"""Fixtures for the model tests: tiny checkpoints built once per session, images, queries.

``tests/conftest.py`` registers this module as a plugin: any test may ask for a checkpoint,
and each is built once per session (only when some test asks for it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustness.testing.tiny_models import build_tiny_idefics3, build_tiny_llava, build_tiny_qwen2_vl

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def tiny_llava(tiny_dir) -> Path:
    return build_tiny_llava(tiny_dir / "llava")


@pytest.fixture(scope="session")
def tiny_qwen(tiny_dir) -> Path:
    return build_tiny_qwen2_vl(tiny_dir / "qwen2_vl")


@pytest.fixture(scope="session")
def rigged_llava(tiny_dir) -> Path:
    """A tiny LLaVA that always answers "B" and then stops."""
    return build_tiny_llava(tiny_dir / "llava_says_b", answer_token="B")


@pytest.fixture(scope="session")
def tiny_idefics3(tiny_dir) -> Path:
    return build_tiny_idefics3(tiny_dir / "idefics3")


@pytest.fixture(scope="session", params=["llava", "qwen2_vl", "idefics3"])
def tiny_model(request, tiny_dir) -> Path:
    """Each tiny family in turn (built on first use)."""
    return request.getfixturevalue({"llava": "tiny_llava", "qwen2_vl": "tiny_qwen",
                                    "idefics3": "tiny_idefics3"}[request.param])


FAMILIES = ("llava", "llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "idefics3",
            "smolvlm", "gemma3", "paligemma", "internvl", "janus", "blip2", "instructblip",
            "mllama")


SHARED_FIXTURES = {"llava": "tiny_llava", "qwen2_vl": "tiny_qwen", "idefics3": "tiny_idefics3"}


@pytest.fixture(scope="session")
def build_family(tiny_dir, request):
    """Build (once per session) and return the tiny checkpoint of a family by name."""
    from robustness.testing.tiny_families import all_builders

    built: dict[str, Path] = {}

    def _build(name: str) -> Path:
        if name not in built:
            built[name] = (request.getfixturevalue(SHARED_FIXTURES[name])
                           if name in SHARED_FIXTURES
                           else all_builders()[name](tiny_dir / f"family_{name}"))
        return built[name]

    return _build
