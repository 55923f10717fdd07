"""End to end: the gate reads run folders written by the real runner (`robustness` + Hydra).

Uses the runner's test-only scripted model; skipped where the runner is not part of the tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness.cli import main
from tests.helpers.paths import TEST_CONF

pytest.importorskip("robustness.experiment", reason="the runner is not in this tree")
scripted = pytest.importorskip("tests.helpers.runner_scripted", reason="the runner's scripted test model "
                                                               "is not in this tree")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runner_runs")
    bench = scripted.write_benchmark(root / "bench", n_pairs=12)
    out = {}
    for name, model, extra in (("base", "scripted", []), ("cand", "scripted_biased", []),
                               ("seed1", "scripted", ["seed=1"])):
        code = main([f"hydra.searchpath=[file://{TEST_CONF}]", f"model={model}",
                     "mode=scripted_mc", "dataset=mediconfusion", f"dataset.root={bench}",
                     f"cache.dir={root / 'cache'}", f"hydra.run.dir={root / name}",
                     "progress=false", "resamples=200", "logger=none",
                     "probe=[option_swap,swap_images]", *extra])
        assert code == 0
        out[name] = root / name
    return out


def test_gate_reads_runner_output(runs, capsys):
    capsys.readouterr()
    assert main(["gate", str(runs["base"]), str(runs["base"]), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["verdict"] == "pass" and all(c["delta"] == 0 for c in same["checks"])
    code = main(["gate", str(runs["base"]), str(runs["cand"]), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and report["conditions"] == ["clean", "option_swap", "swap_images"]
    names = {c["name"] for c in report["checks"]}
    assert {"clean/set_accuracy", "option_swap/set_accuracy_shift",
            "swap_images/set_accuracy_shift"} <= names
    summary = json.loads((runs["cand"] / "summary.json").read_text())
    clean = next(c for c in report["checks"] if c["name"] == "clean/set_accuracy")
    assert clean["candidate"] == pytest.approx(
        summary["conditions"]["clean"]["overall"]["set_accuracy"], abs=0.01)


def test_gate_refuses_runner_runs_with_other_seeds(runs, capsys):
    capsys.readouterr()
    assert main(["gate", str(runs["base"]), str(runs["seed1"])]) == 2
    assert "seeds" in capsys.readouterr().err
