"""Bring your own pairs: tables in every format, DICOM from pydicom's own test files (real
medical files nobody here made), 16-bit images, every problem of a broken table in one pass,
and no patient data in any output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from robustness.cli import main
from robustness.data.convert import Conversion, read_dicom, read_high_bit
from robustness.data.user_pairs import HFSource, PairsSource
from robustness.errors import UserError

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402

PHI_NAME, PHI_ID = "Doe^Jane^SECRETNAME", "PID-SECRET-4711"
HEADER = ["pair_id", "question", "option_A", "option_B", "image_1", "image_2", "answer_1",
          "answer_2", "category"]


def dicom_file(name: str) -> Path:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed (pydicom-data)")
    return Path(path)


def copy_with_phi(name: str, dest: Path) -> Path:
    ds = pydicom.dcmread(dicom_file(name))
    ds.PatientName, ds.PatientID = PHI_NAME, PHI_ID
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest)
    return dest


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def dicom_table(tmp_path_factory) -> Path:
    """Four pairs of real DICOM slices (CT, MR, an RLE-compressed MR, a JPEG 2000 CT head,
    multi-frame MR frames), each file carrying a patient name and id."""
    root = tmp_path_factory.mktemp("dicom_pairs")
    files = {"ct.dcm": "CT_small.dcm", "mr.dcm": "MR_small.dcm", "mr_rle.dcm": "MR_small_RLE.dcm",
             "head_j2k.dcm": "693_J2KI.dcm", "multi.dcm": "emri_small.dcm",
             "siemens.dcm": "MR-SIEMENS-DICOM-WithOverlays.dcm"}
    for dest, name in files.items():
        copy_with_phi(name, root / "img" / dest)
    return write_csv(root / "pairs.csv", [
        ["p1", "Is there a lesion?", "Lesion present", "No lesion", "img/ct.dcm",
         "img/head_j2k.dcm", "A", "B", "Cerebral"],
        ["p2", "Which sequence is this?", "T1 weighted", "T2 weighted", "img/mr.dcm",
         "img/siemens.dcm", "A", "B", "Cerebral;Vascular"],
        ["p3", "Is the image compressed?", "Compressed", "Uncompressed", "img/mr_rle.dcm",
         "img/mr.dcm", "A", "B", "Pulmonary"],
        ["p4", "Is the image noisy?", "Noisy", "Clean", "img/multi.dcm", "img/ct.dcm", "B", "A",
         "Musculoskeletal"]])


def test_dicom_pairs_run_the_default_probe_suite_with_saliency_and_no_phi(dicom_table,
                                                                          tmp_path):
    run = tmp_path / "run"
    assert main(["dataset=pairs", f"dataset.path={dicom_table}", f"hydra.run.dir={run}",
                 f"cache.dir={tmp_path / 'cache'}", "explain.pairs=1", "explain.probe_pairs=0",
                 "resamples=100", "progress=false"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["conditions"]) == ["clean", "option_swap", *(
        f"gaussian_noise@{s}" for s in range(1, 6)), "expert_persona"]
    assert summary["n_pairs"] == 4 and summary["dataset"] == "pairs"
    assert set(summary["conditions"]["clean"]["per_category"]) == {
        "Cerebral", "Vascular", "Pulmonary", "Musculoskeletal"}
    conversion = summary["benchmark"]["settings"]["conversion"]
    assert conversion["converted"] == 6
    assert summary["saliency"]["n_images"] == 2
    assert (run / "report.html").is_file() and (run / "wandb").is_dir()
    for path in run.rglob("*"):  # results, logs, report, W&B files: no patient data anywhere
        if path.is_file():
            data = path.read_bytes()
            assert b"SECRETNAME" not in data and PHI_ID.encode() not in data, path
            assert b"Doe^Jane" not in data, path


def test_keep_tags_lets_listed_header_values_through(dicom_table, tmp_path):
    source = PairsSource(dicom_table, keep_tags=["Modality"], cache_dir=tmp_path)
    source.load()
    kept = source.describe()["kept_tags"]
    assert kept["ct.dcm"] == {"Modality": "CT"} and kept["mr.dcm"] == {"Modality": "MR"}
    assert "PatientName" not in json.dumps(kept)


def test_dicom_conversion_follows_the_file_and_the_settings():
    ct = read_dicom(dicom_file("CT_small.dcm"), Conversion())
    assert ct.pixels.dtype == np.uint8 and ct.pixels.shape == (128, 128)
    assert ct.record["window_from"] == "image range" and ct.record["rescale_slope"] == 1.0
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    lung = read_dicom(dicom_file("CT_small.dcm"), Conversion(window="lung")).pixels
    expected = np.clip(np.round((hu - (-600 - 0.5 - 749.5)) / 1499 * 255), 0, 255)
    np.testing.assert_array_equal(lung, expected.astype(np.uint8))
    mr = read_dicom(dicom_file("MR_small.dcm"), Conversion())
    assert mr.record["window_from"] == "file" and mr.record["window"] == [600.0, 1600.0]
    frames = [read_dicom(dicom_file("emri_small.dcm"), Conversion(frame=k)).pixels for k in (0, 3)]
    assert not np.array_equal(*frames)
    with pytest.raises(UserError, match="dataset.frame=99 but the file has 10 frames"):
        read_dicom(dicom_file("emri_small.dcm"), Conversion(frame=99))


def test_monochrome1_is_inverted():
    path = dicom_file("RG1_UNCR.dcm")
    ds = pydicom.dcmread(path)
    converted = read_dicom(path, Conversion(window=(15000.0, 30000.0)))
    assert converted.record["inverted"] is True
    raw = ds.pixel_array.astype(np.float64)
    low = raw < np.percentile(raw, 5)
    high = raw > np.percentile(raw, 95)
    assert converted.pixels[low].mean() > converted.pixels[high].mean()  # high values are dark


def test_a_missing_decoder_is_one_line_naming_it(tmp_path, capsys):
    jpeg_ls = copy_with_phi("MR_small_jpeg_ls_lossless.dcm", tmp_path / "img" / "ls.dcm")
    copy_with_phi("CT_small.dcm", tmp_path / "img" / "ct.dcm")
    table = write_csv(tmp_path / "pairs.csv", [["p1", "q?", "a", "b", "img/ls.dcm", "img/ct.dcm",
                                               "A", "B", "X"]])
    try:
        pydicom.dcmread(jpeg_ls).pixel_array
        pytest.skip("a JPEG-LS decoder is installed here")
    except RuntimeError:
        pass
    assert main(["data", "check", str(table)]) == 2
    out = capsys.readouterr().out
    problem = next(line for line in out.splitlines() if "row 2, field image_1" in line)
    assert "JPEG-LS" in problem and "no installed decoder" in problem


def test_sixteen_bit_png_and_tiff_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)
    for suffix in (".png", ".tif"):
        path = tmp_path / f"ramp{suffix}"
        Image.fromarray(ramp).save(path)
        converted = read_high_bit(path, Conversion())
        assert converted is not None and converted.pixels.max() == 255
        assert converted.record["range"] == [0.0, 4095.0]
        windowed = read_high_bit(path, Conversion(window=(2048.0, 2048.0))).pixels
        assert windowed[ramp < 1024].max() == 0 and windowed[ramp > 3072].min() == 255
    eight = tmp_path / "eight.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(eight)
    assert read_high_bit(eight, Conversion()) is None  # 8-bit images pass through


def test_a_broken_table_lists_every_problem_in_one_pass(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.full((16, 16), ord(name[0]), np.uint8)).save(tmp_path / "img" / name)
    (tmp_path / "img" / "broken.png").write_text("not an image")
    outside = tmp_path.parent / "outside.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(outside)
    table = write_csv(tmp_path / "pairs.csv", [
        ["p1", "Is it?", "yes", "no", "img/a.png", "img/b.png", "A", "B", "X"],  # fine
        ["p2", "", "yes", "no", "img/a.png", "img/c.png", "A", "A", "X"],  # empty q, same answers
        ["p1", "Again?", "yes", "yes", "img/missing.png", "img/b.png", "C", "B", "X"],
        ["p4", "Broken?", "yes", "no", "img/broken.png", "../outside.png", "A", "B", "X"],
        ["p5", "Same?", "yes", "no", "img/c.png", "img/c.png", "B", "A", "X"]])
    assert main(["data", "check", str(table)]) == 2
    lines = capsys.readouterr().out.splitlines()
    problems = [line for line in lines if line.startswith(str(table))
                and "field" in line]
    expected = ["row 3, field question: empty", "row 3, field answer_2: both images answer A",
                "row 4, field pair_id: 'p1' repeats the pair id of row 2",
                "row 4, field answer_1: expected A or B, got 'C'",
                "row 4, field option_B: the same as option_A",
                "row 4, field image_1: img/missing.png: no such file",
                "row 5, field image_2: ../outside.png is outside the table's folder",
                "row 5, field image_1: broken.png: cannot identify it as an image",
                "row 6, field image_2: the same file as image_1"]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected)
    assert lines[-1] == f"invalid: {len(expected)} problem(s)"
    # a run on it: one line, exit 2, before any model work
    capsys.readouterr()
    assert main(["dataset=pairs", f"dataset.path={table}", "logger=none", "explain=none",
                 f"hydra.run.dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "9 problem(s)" in err and "data check" in err


def test_columns_map_and_formats_read_alike(tmp_path, capsys):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((16, 16), ord(name[0]), np.uint8)).save(tmp_path / name)
    record = {"id": "p1", "Frage": "Ist da etwas?", "option_A": "ja", "option_B": "nein",
              "image_1": "a.png", "image_2": "b.png", "answer_1": "a", "answer_2": "b",
              "category": "Lunge", "paraphrase_1": "Sieht man etwas?", "site": "Klinik"}
    columns = {"pair_id": "id", "question": "Frage"}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(record) + "\n")
    (tmp_path / "sub").mkdir()
    benches = [PairsSource(tmp_path / "pairs.jsonl", columns=columns, cache_dir=tmp_path / "c")
               .load()]
    (tmp_path / "pairs.json").write_text(json.dumps([record]))
    benches.append(PairsSource(tmp_path / "pairs.json", columns=columns,
                               cache_dir=tmp_path / "c").load())
    assert benches[0].content_hash == benches[1].content_hash
    pair = benches[0].pairs[0]
    assert pair.question == "Ist da etwas?" and pair.correct == ("A", "B")
    assert pair.categories == (("Lunge",), ("Lunge",))
    assert pair.extra == {"paraphrase_1": "Sieht man etwas?", "site": "Klinik"}
    assert main(["data", "check", str(tmp_path / "pairs.jsonl")]) == 2
    assert "column 'pair_id' missing (dataset.columns.pair_id=<your column> maps it)" in \
        capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "pairs.jsonl"), "--column", "pair_id=id",
                 "--column", "question=Frage"]) == 0


def test_dicom_without_pydicom_names_the_extra(dicom_table, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(UserError, match=r"needs pydicom: pip install 'mediconfusion-robustness\[dicom\]'"):
        read_dicom(dicom_table.parent / "img" / "ct.dcm", Conversion())


def test_a_hugging_face_dataset_of_pairs_runs(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)) for _ in range(4)]
    data = datasets.Dataset.from_dict(
        {"pair_id": ["h1", "h2"], "Frage": ["Is it left?", "Is it big?"],
         "option_A": ["left", "big"], "option_B": ["right", "small"],
         "image_1": images[:2], "image_2": images[2:], "answer_1": ["A", "B"],
         "answer_2": ["B", "A"], "category": ["Cerebral", "Cardiac"]},
        features=datasets.Features({"pair_id": datasets.Value("string"),
                                    "Frage": datasets.Value("string"),
                                    "option_A": datasets.Value("string"),
                                    "option_B": datasets.Value("string"),
                                    "image_1": datasets.Image(), "image_2": datasets.Image(),
                                    "answer_1": datasets.Value("string"),
                                    "answer_2": datasets.Value("string"),
                                    "category": datasets.Value("string")}))
    datasets.DatasetDict({"test": data}).save_to_disk(str(tmp_path / "hf_pairs"))
    bench = HFSource(str(tmp_path / "hf_pairs"), columns={"question": "Frage"},
                     local_files_only=True, cache_dir=tmp_path / "cache").load()
    assert [p.pair_id for p in bench] == ["h1", "h2"] and bench.pairs[1].correct == ("B", "A")
    run = tmp_path / "run"
    assert main(["dataset=hf", f"dataset.path={tmp_path / 'hf_pairs'}",
                 "+dataset.columns.question=Frage", "dataset.local_files_only=true",
                 "probe=[gaussian_noise]", "probe.gaussian_noise.severities=[3]", "logger=none",
                 "explain=none", f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={run}",
                 "resamples=50", "progress=false"]) == 0
    assert json.loads((run / "summary.json").read_text())["n_pairs"] == 2
    sheet = tmp_path / "sheet.png"
    assert main(["data", "preview", f"hf:{tmp_path / 'hf_pairs'}", "--column", "question=Frage",
                 "--out", str(sheet)]) == 0
    assert sheet.stat().st_size > 1000


def test_a_missing_table_path_is_one_line(tmp_path, capsys):
    assert main(["dataset=pairs", "logger=none", "explain=none",
                 f"hydra.run.dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("robustness: error: dataset.path: required, not set (e.g. dataset.path=VALUE; "
                   "see conf/dataset/)")
