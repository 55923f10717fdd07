"""Phantom benchmark: determinism, disjoint seeds, official schema, balance, coverage, masks, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.paths import ROOT
from robustness.data.mediconfusion import load_benchmark
from robustness.data.phantom import (FAMILIES, MODALITIES, TEMPLATES, generate_phantom_benchmark,
                                     phantom_pairs, vocabulary)
from robustness.data.phantom.canvas import Grid
from robustness.data.phantom.findings import KINDS, MODALITY_CLASSES
from robustness.data.phantom.generator import generate_pair
from robustness.data.phantom.questions import caption, word_question
from robustness.data.phantom.settings import Difficulty
from robustness.data.types import MEDICONFUSION_CATEGORIES
from robustness.errors import UserError

OFFICIAL_FIELDS = {"question", "option_A", "option_B", "im_1_correct", "im_2_correct", "im_1_local",
                   "im_2_local", "category_1", "category_2", "im_1", "im_2", "cap_1", "cap_2",
                   "BiomedCLIP_sim", "DINO_sim", "AI_question", "AI_option_A", "AI_option_B"}


@pytest.fixture(scope="module")
def full_set(tmp_path_factory) -> Path:
    """The default 176-pair set (seed 0), generated once for the module."""
    return generate_phantom_benchmark(tmp_path_factory.mktemp("phantom176"), pairs=176, seed=0)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustness", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


# --- determinism and splits -------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(tmp_path):
    first = generate_phantom_benchmark(tmp_path / "a", pairs=10, seed=3, size=96).parent
    second = generate_phantom_benchmark(tmp_path / "b", pairs=10, seed=3, size=96).parent
    files_a, files_b = _files(first), _files(second)
    assert len(files_a) == 1 + 2 * 10 * 2
    assert files_a == files_b


def test_another_seed_gives_different_images_and_disjoint_ids(tmp_path):
    a = generate_phantom_benchmark(tmp_path / "a", pairs=10, seed=0, size=96)
    b = generate_phantom_benchmark(tmp_path / "b", pairs=10, seed=1, size=96)
    raw_a, raw_b = json.loads(a.read_text()), json.loads(b.read_text())
    assert not set(raw_a) & set(raw_b)
    locals_a = {r[f"im_{n}_local"] for r in raw_a.values() for n in (1, 2)}
    locals_b = {r[f"im_{n}_local"] for r in raw_b.values() for n in (1, 2)}
    assert not locals_a & locals_b
    assert all(pid.startswith("ph0-") for pid in raw_a) and all(pid.startswith("ph1-") for pid in raw_b)
    images_a = {p.read_bytes() for p in (a.parent / "images").iterdir()}
    images_b = {p.read_bytes() for p in (b.parent / "images").iterdir()}
    assert not images_a & images_b


def test_a_pair_does_not_depend_on_how_many_pairs_are_made(tmp_path):
    small = json.loads(generate_phantom_benchmark(tmp_path / "s", pairs=4, seed=5, size=96).read_text())
    large = json.loads(generate_phantom_benchmark(tmp_path / "l", pairs=7, seed=5, size=96).read_text())
    for pid, record in small.items():
        assert large[pid] == record
        for n in (1, 2):
            name = f"{record[f'im_{n}_local']}.png"
            assert (tmp_path / "s/images" / name).read_bytes() == (tmp_path / "l/images" / name).read_bytes()


def test_in_memory_pairs_match_the_written_files(tmp_path):
    path = generate_phantom_benchmark(tmp_path, pairs=3, seed=4, size=80)
    raw = json.loads(path.read_text())
    for pair in phantom_pairs(pairs=3, seed=4, size=80):
        assert raw[pair.pair_id] == pair.record
        for n in (1, 2):
            local = pair.record[f"im_{n}_local"]
            assert np.array_equal(_grey(tmp_path / "images" / f"{local}.png"), pair.images[n - 1])
            assert np.array_equal(_grey(tmp_path / "masks" / f"{local}.png") > 0, pair.masks[n - 1])


def test_regenerating_a_smaller_set_removes_stale_files(tmp_path):
    generate_phantom_benchmark(tmp_path, pairs=5, seed=0, size=64)
    generate_phantom_benchmark(tmp_path, pairs=2, seed=0, size=64)
    assert len(list((tmp_path / "images").iterdir())) == 4
    assert len(list((tmp_path / "masks").iterdir())) == 4
    assert load_benchmark(tmp_path / "dataset.json", require_images=True).pairs


# --- schema and loader ----------------------------------------------------------------------------

def test_official_schema_and_loader(full_set):
    raw = json.loads(full_set.read_text())
    assert len(raw) == 176
    for record in raw.values():
        assert OFFICIAL_FIELDS <= set(record)
        assert record["BiomedCLIP_sim"] is None and record["DINO_sim"] is None
        assert record["AI_question"] != record["question"]
        assert record["AI_option_A"] != record["option_A"] and record["AI_option_B"] != record["option_B"]
        assert record["option_A"] != record["option_B"]
        assert record["cap_1"] and record["cap_2"]
    benchmark = load_benchmark(full_set, require_images=True)
    assert len(benchmark) == 176
    assert set(benchmark.categories) <= set(MEDICONFUSION_CATEGORIES)
    # im_1 / im_2 resolve too, against images/ as the ROCO root
    roco = load_benchmark(full_set, image_source="roco", require_images=True, verify_images=False)
    assert [p.images for p in roco] == [p.images for p in benchmark]


def test_answers_are_balanced(full_set):
    benchmark = load_benchmark(full_set)
    counts = Counter(p.correct for p in benchmark)
    assert counts == {("A", "B"): 88, ("B", "A"): 88}
    # which finding state is option A is not tied to the answer order
    present_first = Counter(p.extra["phantom"]["answers"]["A"] for p in benchmark)
    assert present_first["present"] > 10 and present_first["absent"] > 10


def test_every_modality_family_and_kind_appears(full_set):
    meta = [p.extra["phantom"] for p in load_benchmark(full_set)]
    assert {m["modality"] for m in meta} == set(MODALITIES)
    assert {m["family"] for m in meta} == set(FAMILIES)
    assert {m["kind"] for m in meta} == {k.name for k in KINDS}
    wanted = {"Pulmonary", "Cerebral", "Vascular", "Cardiac", "Spinal", "Musculoskeletal",
              "Gastrointestinal", "Head and Neck"}
    assert set(load_benchmark(full_set).categories) == wanted


def test_per_image_metadata_and_masks(full_set):
    folder = full_set.parent
    for pair in load_benchmark(full_set, require_images=True):
        meta = pair.extra["phantom"]
        presents = []
        for n in (1, 2):
            info = meta[f"im_{n}"]
            for key in ("family", "finding", "present", "side", "zone", "centre", "bbox", "size_mm",
                        "size_px", "mask", "image", "answer", "label"):
                assert key in info
            assert info["label"] == pair.correct[n - 1]
            assert meta["answers"][info["label"]] == info["answer"]
            mask = _grey(folder / info["mask"])
            image = _grey(pair.images[n - 1])
            assert mask.shape == image.shape == (224, 224)
            assert set(np.unique(mask)) <= {0, 255}
            assert (mask > 0).sum() == info["area_px"] > 0
            x0, y0, x1, y1 = info["bbox"]
            assert mask[y0:y1, x0:x1].any() and not mask[:y0].any() and not mask[y1:].any()
            presents.append(info["present"])
        if meta["family"] in ("laterality", "zone"):
            assert presents == [True, True]
        else:
            assert sorted(presents) == [False, True]


def test_images_differ_mostly_inside_the_masks(full_set):
    """Shared anatomy and noise: outside the masks the two images are (nearly) identical."""
    folder = full_set.parent
    inside_sum = inside_n = outside_sum = outside_n = 0.0
    for pair in load_benchmark(full_set, require_images=True):
        one, two = (_grey(p).astype(np.int16) for p in pair.images)
        union = np.zeros(one.shape, bool)
        for n in (1, 2):
            union |= _grey(folder / pair.extra["phantom"][f"im_{n}"]["mask"]) > 0
        diff = np.abs(one - two)
        inside, outside = diff[union], diff[~union]
        assert inside.mean() > 4.0, pair.pair_id  # the decisive finding is plainly visible
        assert outside.mean() < 0.1, pair.pair_id
        inside_sum += inside.sum()
        inside_n += inside.size
        outside_sum += outside.sum()
        outside_n += outside.size
        recorded = pair.extra["phantom"]["difference"]
        assert recorded["inside_mask"] == pytest.approx(inside.mean(), abs=1e-3)
    inside_mean, outside_mean = inside_sum / inside_n, outside_sum / outside_n
    # measured at the defaults: about 50 grey levels inside, about 0.0005 outside
    assert inside_mean > 30.0
    assert inside_mean >= 1000 * max(outside_mean, 1e-3)


def test_score_command_reads_the_phantom_annotations(full_set, tmp_path):
    raw = json.loads(full_set.read_text())
    preds = tmp_path / "preds.jsonl"
    with preds.open("w") as f:
        for pid, record in raw.items():
            for n in (1, 2):
                f.write(json.dumps({"pair_id": pid, "image": n, "choice": record[f"im_{n}_correct"]}) + "\n")
    from robustness.cli import main

    assert main(["score", str(preds), "--annotations", str(full_set), "--json", "--resamples", "50"]) == 0


# --- templates, knobs, kinds -------------------------------------------------------------------

def test_every_template_variant_fills_for_every_kind():
    """All question/option wordings and captions of every kind format with the slots it provides."""
    grid = Grid(96)
    difficulty = Difficulty()
    used = set()
    for kind in KINDS:
        modality = MODALITY_CLASSES[kind.modality]
        for seed in range(10):
            rng = np.random.default_rng(seed)
            for variant in kind.variants:
                anatomy = modality.sample(rng, grid, difficulty, variant)
                pair = kind.build(rng, anatomy, difficulty)
                templates = TEMPLATES[pair.question]
                used.add(pair.question)
                assert {f.answer for f in pair.images} == set(templates.options[0])
                slots = dict(pair.slots) | {"limb_title": pair.slots.get("limb", "").capitalize()}
                for _ in range(12):
                    wording = word_question(rng, pair.question, slots)
                    assert "{" not in wording.question and "{" not in wording.ai_question
                for finding in pair.images:
                    image_slots = slots | finding.slots
                    if "limb" in image_slots:
                        image_slots["limb_title"] = image_slots["limb"].capitalize()
                    for _ in range(6):
                        assert "{" not in caption(rng, pair.question, finding.answer, finding.finding, image_slots)
    assert used == set(TEMPLATES)
    assert len(vocabulary()) > 300 and all("{" not in w or "}" in w for w in vocabulary())


def test_contrast_knob_changes_the_finding_only(tmp_path):
    kind = next(k for k in KINDS if k.name == "chest.nodule")
    faint = generate_pair(0, 0, 128, Difficulty(contrast=0.3), kind, 4)
    plain = generate_pair(0, 0, 128, Difficulty(), kind, 4)
    assert faint.record["phantom"]["difference"]["inside_mask"] < plain.record["phantom"]["difference"]["inside_mask"]
    noiseless = generate_pair(0, 0, 128, Difficulty(noise=0.0), kind, 4)
    assert not np.array_equal(noiseless.images[0], plain.images[0])


@pytest.mark.parametrize("kind_name", ["chest.nodule", "head.calcification", "abdomen.calcification"])
def test_more_distractors_add_shared_structures_only(kind_name):
    kind = next(k for k in KINDS if k.name == kind_name)
    plain = generate_pair(1, 0, 128, Difficulty(distractors=0), kind, 4)
    busy = generate_pair(1, 0, 128, Difficulty(distractors=8), kind, 4)
    assert not np.array_equal(plain.images[0], busy.images[0])
    for pair in (plain, busy):
        union = pair.masks[0] | pair.masks[1]
        diff = np.abs(pair.images[0].astype(int) - pair.images[1].astype(int))
        assert diff[~union].max() == 0 and diff[union].mean() > 4


@pytest.mark.parametrize("kwargs, message", [
    ({"pairs": 0}, "pairs"),
    ({"size": 16}, "size"),
    ({"seed": -1}, "seed"),
    ({"modalities": "ultrasound"}, "unknown modalit"),
    ({"families": ["nodule", "tumour"]}, "unknown famil"),
    ({"contrast": -1}, "contrast"),
    ({"sharpness": 2}, "unknown phantom option"),
    ({"modalities": "angiogram", "families": "nodule"}, "no phantom pair kind"),
])
def test_bad_arguments_are_user_errors(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        generate_phantom_benchmark(tmp_path, **kwargs)


def test_selected_modalities_only(tmp_path):
    path = generate_phantom_benchmark(tmp_path, pairs=6, size=64, modalities="head_ct,angiogram", noise=0.5)
    meta = [p.extra["phantom"] for p in load_benchmark(path)]
    assert {m["modality"] for m in meta} <= {"head_ct", "angiogram"}
    assert all(m["difficulty"]["noise"] == 0.5 for m in meta)


def test_refuses_to_overwrite_foreign_annotations(tmp_path):
    (tmp_path / "dataset.json").write_text('{"10001": {"question": "q"}}')
    with pytest.raises(UserError, match="not a phantom set"):
        generate_phantom_benchmark(tmp_path, pairs=1, size=64)


# --- command line --------------------------------------------------------------------------------

def test_cli_generates_and_previews(tmp_path):
    out = tmp_path / "set"
    done = _run("data", "phantom", "--out", str(out), "--pairs", "4", "--seed", "2", "--size", "128",
                "--contrast", "1.5")
    assert done.returncode == 0, done.stderr
    assert "wrote 4 phantom pairs" in done.stdout
    assert len(json.loads((out / "dataset.json").read_text())) == 4
    sheet = tmp_path / "sheet.png"
    done = _run("data", "preview", str(out), "--out", str(sheet), "--pairs", "3")
    assert done.returncode == 0, done.stderr
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        assert img.width >= 700 and img.height >= 3 * 180
        pixels = np.asarray(img)
    assert (pixels == (255, 48, 48)).all(axis=-1).sum() > 20  # mask outlines were drawn
    assert sheet.stat().st_size > 20_000


@pytest.mark.parametrize("args, needle", [
    (["--pairs", "0"], "pairs"),
    (["--modalities", "ultrasound"], "ultrasound"),
    (["--pairs", "two"], "invalid int"),
])
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, args, needle):
    done = _run("data", "phantom", "--out", str(tmp_path / "x"), *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and needle in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_unwritable_output_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _run("data", "phantom", "--out", str(blocker / "sub"), "--pairs", "1")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and str(blocker) in done.stderr


def test_preview_bad_arguments(tmp_path):
    from robustness.commands.data_preview import main as preview

    with pytest.raises(UserError, match="dataset.json"):
        preview([str(tmp_path), "--out", str(tmp_path / "x.png")])
    path = generate_phantom_benchmark(tmp_path / "set", pairs=2, size=64)
    with pytest.raises(UserError, match="unknown pair id"):
        preview([str(path.parent), "--out", str(tmp_path / "x.png"), "--ids", "nope"])
    with pytest.raises(UserError, match=".png"):
        preview([str(path.parent), "--out", str(tmp_path / "x.jpg")])
