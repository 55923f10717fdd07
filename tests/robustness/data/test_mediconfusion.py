"""Loader validation: every problem is one UserError naming the file, the pair id and the field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from robustness.data.mediconfusion import load_benchmark
from robustness.errors import UserError
from tests.helpers.records import make_pair_record


def _records() -> dict:
    return {"10001": make_pair_record("A", "B", ("Cerebral",), ("Cerebral", "Vascular"), 1, 2),
            "10002": make_pair_record("B", "A", ("Spinal",), ("Spinal",), 1, 3)}


def _image(path: Path, fmt: str = "JPEG", seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (seed * 50 % 256, 80, 160)).save(path, format=fmt)


def _error(write_dataset, records: dict, **kwargs) -> str:
    path = write_dataset(records)
    with pytest.raises(UserError) as info:
        load_benchmark(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_valid_annotations_load_without_images(write_dataset):
    bench = load_benchmark(write_dataset(_records()))
    assert [p.pair_id for p in bench] == ["10001", "10002"]
    pair = bench.pair("10001")
    assert pair.correct == ("A", "B") and pair.mediconfusion.local_ids == ("1", "2")
    assert pair.pair_categories == ("Cerebral", "Cerebral", "Vascular")
    assert pair.images is None and len(bench.content_hash) == 64


@pytest.mark.parametrize("field", ["question", "option_A", "im_2_correct", "category_1", "im_1_local",
                                   "DINO_sim", "AI_option_B", "im_2"])
def test_missing_field_names_pair_and_field(write_dataset, field):
    records = _records()
    del records["10002"][field]
    assert _error(write_dataset, records).endswith(f"pair 10002: field '{field}': missing")


@pytest.mark.parametrize("field,value,problem", [
    ("question", 7, "expected a string, got int"),
    ("option_B", None, "expected a string, got NoneType"),
    ("category_2", "Cerebral", "expected a non-empty list of category names"),
    ("category_1", [], "expected a non-empty list of category names"),
    ("im_1_local", 1.5, "expected an integer or string id"),
    ("im_2_local", True, "expected an integer or string id"),
    ("BiomedCLIP_sim", "0.9", "expected a number or null"),
    ("question", "   ", "empty"),
])
def test_wrong_type_names_pair_and_field(write_dataset, field, value, problem):
    records = _records()
    records["10001"][field] = value
    message = _error(write_dataset, records)
    assert f"pair 10001: field '{field}': {problem}" in message


@pytest.mark.parametrize("value", ["C", "a", "", None, 1, ["A"]])
def test_correct_answer_outside_a_b(write_dataset, value):
    records = _records()
    records["10002"]["im_1_correct"] = value
    assert "pair 10002: field 'im_1_correct': must be 'A' or 'B'" in _error(write_dataset, records)


@pytest.mark.parametrize("field,ref", [
    ("im_1", "/etc/passwd"),
    ("im_2", "../outside.jpg"),
    ("im_1", "train/../../outside.jpg"),
    ("im_2", "C:\\images\\x.jpg"),
    ("im_1", ""),
    ("im_1_local", ".."),
    ("im_2_local", "sub/7"),
])
def test_references_must_stay_inside_the_image_root(write_dataset, field, ref):
    records = _records()
    records["10001"][field] = ref
    message = _error(write_dataset, records)
    assert f"pair 10001: field '{field}'" in message


def test_not_json_empty_and_duplicate_pairs(write_dataset, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"10001": ')
    with pytest.raises(UserError, match="not valid JSON"):
        load_benchmark(bad)
    with pytest.raises(UserError, match="expected a non-empty object keyed by pair id"):
        load_benchmark(write_dataset({}))
    with pytest.raises(UserError, match="no such file"):
        load_benchmark(tmp_path / "absent.json")
    rec = json.dumps(make_pair_record())
    dup = tmp_path / "dup.json"
    dup.write_text(f'{{"10001": {rec}, "10001": {rec}}}')
    with pytest.raises(UserError, match="pair 10001: given twice"):
        load_benchmark(dup)
    with pytest.raises(UserError, match="pair 10001: field '<pair>': expected an object"):
        load_benchmark(write_dataset({"10001": ["not", "an", "object"]}))


def test_local_images_attach_and_shared_images_resolve(write_dataset, tmp_path):
    path = write_dataset(_records())
    for local in (1, 2, 3):
        _image(tmp_path / "images" / f"{local}.jpg", seed=local)
    bench = load_benchmark(path, require_images=True)
    assert bench.pair("10001").images == ((tmp_path / "images/1.jpg").resolve(),
                                          (tmp_path / "images/2.jpg").resolve())
    assert bench.pair("10002").images[0] == bench.pair("10001").images[0]  # image 1 shared
    assert bench.image_root == (tmp_path / "images").resolve()


def test_missing_image_names_pair_and_field(write_dataset, tmp_path):
    path = write_dataset(_records())
    _image(tmp_path / "images/1.jpg")
    _image(tmp_path / "images/2.jpg")
    with pytest.raises(UserError) as info:
        load_benchmark(path, require_images=True)
    assert "pair 10002: field 'im_2_local': image not found" in str(info.value)
    assert "3.jpg" in str(info.value)


def test_missing_image_folder(write_dataset, tmp_path):
    with pytest.raises(UserError, match="image folder .* does not exist .*robustness data download"):
        load_benchmark(write_dataset(_records()), require_images=True)


def _truncated_jpeg() -> bytes:
    import numpy as np

    noise = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="JPEG")
    data = buf.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize("content", [b"<html>not an image</html>", b"", "truncated"])
def test_image_that_does_not_decode(write_dataset, tmp_path, content):
    path = write_dataset(_records())
    for local in (1, 2):
        _image(tmp_path / "images" / f"{local}.jpg")
    data = _truncated_jpeg() if content == "truncated" else content
    (tmp_path / "images/3.jpg").write_bytes(data)
    with pytest.raises(UserError) as info:
        load_benchmark(path, require_images=True)
    assert "pair 10002: field 'im_2_local': image does not decode" in str(info.value)
    # without verification the file is only located, not decoded
    assert load_benchmark(path, require_images=True, verify_images=False).pair("10002").images


def test_roco_layout(write_dataset, tmp_path):
    path = write_dataset(_records())
    roco = tmp_path / "roco"
    for local in (1, 2, 3):
        _image(roco / f"train/radiology/images/ROCO_{local}.jpg", seed=local)
    bench = load_benchmark(path, roco, image_source="roco", require_images=True)
    assert bench.pair("10002").images[1] == (roco / "train/radiology/images/ROCO_3.jpg").resolve()
    (roco / "train/radiology/images/ROCO_3.jpg").unlink()
    with pytest.raises(UserError, match="pair 10002: field 'im_2': image not found"):
        load_benchmark(path, roco, image_source="roco", require_images=True)


def test_roco_symlink_escaping_the_root_is_rejected(write_dataset, tmp_path):
    path = write_dataset(_records())
    roco = tmp_path / "roco"
    for local in (1, 2):
        _image(roco / f"train/radiology/images/ROCO_{local}.jpg")
    outside = tmp_path / "outside.jpg"
    _image(outside)
    (roco / "train/radiology/images/ROCO_3.jpg").symlink_to(outside)
    with pytest.raises(UserError, match="pair 10002: field 'im_2': image reference escapes"):
        load_benchmark(path, roco, image_source="roco", require_images=True)


def test_png_extension(write_dataset, tmp_path):
    path = write_dataset(_records())
    for local in (1, 2, 3):
        _image(tmp_path / "images" / f"{local}.png", fmt="PNG", seed=local)
    bench = load_benchmark(path, require_images=True)
    assert bench.pair("10001").images[1].name == "2.png"
    assert load_benchmark(path, require_images=True, image_extension=".png").pair("10002").images
    with pytest.raises(UserError, match="pair 10001: field 'im_1_local': image not found"):
        load_benchmark(path, require_images=True, image_extension=".jpg")


def test_real_annotations_validate(real_annotations, real_statistics):
    bench = load_benchmark(real_annotations)
    assert len(bench) == 176 and bench.category_counts == real_statistics
    assert list(bench.categories) == list(real_statistics)
