"""Fixtures for the model tests: tiny checkpoints built once per session, images, queries.

Test modules import the fixtures they use (``from model_fixtures import tiny_llava, ...``), so
the shared ``conftest.py`` stays untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robustness.models.base import ImageInput
from robustness.modes.query import Query
from tiny_models import build_tiny_llava, build_tiny_qwen2_vl

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


@pytest.fixture(scope="session", params=["llava", "qwen2_vl"])
def tiny_model(request, tiny_llava, tiny_qwen) -> Path:
    return {"llava": tiny_llava, "qwen2_vl": tiny_qwen}[request.param]


def make_images(n: int, seed: int = 0) -> list[ImageInput]:
    """Random RGB and grayscale images of varied sizes (so batches really pad)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = (36 + 7 * i, 48 - 3 * i) + ((3,) if i % 3 else ())
        out.append(ImageInput(rng.integers(0, 256, size=shape, dtype=np.uint8)))
    return out


QUESTIONS = ("is there a nodule in the left lung?", "which side is the lesion on?",
             "is the scan normal", "what is seen in this chest x ray image",
             "is there a fracture", "is the hemorrhage present in the brain?")
OPTIONS = (("There is a nodule in the left lung", "There is a nodule in the right lung"),
           ("left", "right"), ("Yes", "No"), ("a mass", "no mass is seen"),
           ("fracture present", "no fracture"), ("Yes", "No"))


def make_queries(n: int, seed: int = 0) -> list[Query]:
    """``n`` queries over varied questions, options, images and option orders."""
    images = make_images(n, seed)
    queries = []
    for i in range(n):
        k = i % len(QUESTIONS)
        swapped = i % 2 == 1
        opts = OPTIONS[k][::-1] if swapped else OPTIONS[k]
        queries.append(Query(pair_id=f"pair{i // 2}", image_index=1 + i % 2, image=images[i],
                             question=QUESTIONS[k], options=opts,  # type: ignore[arg-type]
                             label_map=("B", "A") if swapped else ("A", "B"),
                             correct="A" if i % 4 < 2 else "B"))
    return queries
