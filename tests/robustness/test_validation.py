"""Ordinary mistakes get one line naming the setting, file or field, exit code 2, no traceback:
settings, cache folder, damaged phantom sets, non-confusing pairs, image files, byte-order marks."""

from __future__ import annotations

import json
import logging
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustness.cli import main
from robustness.errors import UserError
from robustness.run_outputs import strict_json
from tests.helpers.runner_scripted import write_benchmark
from tests.helpers.records import make_pair_record
from tests.robustness.test_runner import cli_args


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"), n_pairs=4)


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("override, needle", [
    ("seed=abc", "seed: expected an integer, got 'abc'"),
    ("examples=many", "examples: expected an integer"),
    ("batch_pairs=lots", "batch_pairs: expected an integer"),
    ("resamples=x", "resamples: expected an integer"),
    ("resamples=0", "resamples: must be at least 1"),
    ("examples=-5", "examples: must be at least 0"),
    ("batch_pairs=0", "batch_pairs: must be at least 1"),
    ("progress=maybe", "progress: expected true or false"),
    ("cache.enabled='false'", "cache.enabled: expected true or false"),
    ("seed=1.5", "seed: expected an integer"),
])
def test_top_level_settings_are_checked_before_any_work(tmp_path, bench, capsys, override,
                                                        needle):
    assert main(cli_args(tmp_path, bench, "probe=[]", "logger=none", "explain=none",
                         override)) == 2
    assert needle in one_line(capsys)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_cache_dir_that_is_a_file_is_one_line(tmp_path, bench, capsys):
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    args = [a for a in cli_args(tmp_path, bench, "probe=[]", "logger=none", "explain=none")
            if not a.startswith("cache.dir=")]
    assert main([*args, f"cache.dir={afile}"]) == 2
    assert f"cache.dir: {afile} is a file, expected a folder" in one_line(capsys)


def test_summary_json_is_strict_json():
    text = strict_json({"ci": [float("nan"), 1.0], "x": {"y": math.inf}})
    assert json.loads(text) == {"ci": [None, 1.0], "x": {"y": None}}
    assert "NaN" not in text and "Infinity" not in text


# ----------------------------------------------------------------------------- phantom set


def test_a_damaged_cached_phantom_set_is_generated_again(tmp_path, caplog):
    from robustness.sources import PhantomSource

    source = PhantomSource(pairs=2, size=64, cache_dir=tmp_path)
    folder = source.ensure()
    image = sorted((folder / "images").iterdir())[0]
    good = image.read_bytes()
    image.write_bytes(good[:50])  # a truncated image, the completion marker still there
    with caplog.at_level(logging.WARNING, logger="robustness.sources"):
        assert source.ensure() == folder
    assert image.read_bytes() == good
    assert any("does not match its recorded checksum" in r.getMessage() for r in caplog.records)
    (folder / "masks" / image.name).unlink()
    source.ensure()
    assert (folder / "masks" / image.name).is_file()
    source.load()  # intact: loads without regenerating
    assert len(list(tmp_path.iterdir())) == 1  # no leftovers


# ------------------------------------------------------------------------ annotation files


@pytest.fixture
def equal_answers(write_dataset) -> Path:
    return write_dataset({"1": make_pair_record("A", "B", local1=1, local2=2),
                          "7": make_pair_record("B", "B", local1=3, local2=4)})


def test_a_pair_with_equal_answers_is_refused_by_every_loader(equal_answers, tmp_path, capsys):
    needle = "pair 7: field 'im_2_correct': equals im_1_correct ('B')"
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"pair_id": p, "image": i, "choice": "A"}) + "\n"
                             for p in ("1", "7") for i in (1, 2)))
    assert main(["score", str(preds), "--annotations", str(equal_answers)]) == 2
    assert needle in one_line(capsys)
    assert main(["gate", str(preds), str(preds), "--annotations", str(equal_answers)]) == 2
    assert needle in one_line(capsys)
    from robustness.data.mediconfusion import load_benchmark

    with pytest.raises(UserError, match="equals im_1_correct"):
        load_benchmark(equal_answers)


def _folder(tmp_path: Path, files: dict[str, object]) -> Path:
    root = tmp_path / "bench"
    (root / "images").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"1": make_pair_record("A", "B", local1=1,
                                                                         local2=2)}))
    for name, content in files.items():
        target = root / "images" / name
        if content == "dir":
            target.mkdir()
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(target, format="PNG")
    return root / "dataset.json"


def test_image_errors_name_the_file_actually_tried(tmp_path):
    from robustness.data.mediconfusion import load_benchmark

    path = _folder(tmp_path, {"1.jpg": "dir", "2.png": "img"})
    with pytest.raises(UserError, match=r"images/1\.jpg is a folder, not an image"):
        load_benchmark(path, require_images=True)
    path = _folder(tmp_path / "b", {"2.png": "img"})
    with pytest.raises(UserError, match=r"image not found in .*images \(tried 1\.jpg, 1\.png, "
                                        r"1\.jpeg\)"):
        load_benchmark(path, require_images=True)


def test_upper_case_extensions_are_found(tmp_path):
    from robustness.data.mediconfusion import load_benchmark

    path = _folder(tmp_path, {"1.JPG": "img", "2.Png": "img"})
    bench = load_benchmark(path, require_images=True)
    assert [p.name for p in bench.pairs[0].images] == ["1.JPG", "2.Png"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` (no pixel data needed to trip the guard)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_one_line(tmp_path, capsys, recwarn):
    from robustness.data.mediconfusion import load_benchmark

    path = _folder(tmp_path, {"1.png": _png_header(12000, 12000), "2.png": "img"})
    with pytest.raises(UserError, match=r"too many pixels \(12000×12000 = 144,000,000\)"):
        load_benchmark(path, require_images=True)
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_byte_order_marks_are_accepted_everywhere(write_dataset, tmp_path, capsys):
    annotations = write_dataset({"1": make_pair_record("A", "B")})
    annotations.write_bytes(b"\xef\xbb\xbf" + annotations.read_bytes())
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(b"\xef\xbb\xbf" + b"".join(
        (json.dumps({"pair_id": "1", "image": i, "choice": c}) + "\n").encode()
        for i, c in ((1, "A"), (2, "B"))))
    assert main(["score", str(preds), "--annotations", str(annotations), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["set_accuracy"] == 100.0
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(b"\xef\xbb\xbfalpha: 0.01\n")
    from robustness.gate.rules import load_rules

    assert load_rules(rules).alpha == 0.01
