"""Adding a probe, a mode or a Hugging Face family takes one class and one YAML (docs/extending.md).

Each test writes exactly what the checklist in ``docs/extending.md`` says — a class file on the
Python path and a YAML in the user's own config folder (``--config-dir``) — and runs an
experiment with it, with no edit anywhere in the toolkit. A tiny random LLaVA answers; the
plumbing, not the answers, is what is tested.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from robustness.cli import main

PROBE_CLASS = '''
"""A user's probe: invert grey levels (a pure, deterministic transformation)."""
from dataclasses import replace

from attacks.base import Condition, Probe
from robustness.data.image import ImageInput


class Invert(Probe):
    name = "invert"

    def __init__(self, name=None):
        self._set_name(name)

    def conditions(self):
        return [Condition(name=self.name, probe=self.name, params={})]

    def apply(self, condition, pair, queries, ctx):
        return tuple(replace(q, image=ImageInput(255 - q.image.pixels)) for q in queries)
'''

PROBE_YAML = '''
# @package probe.invert
_target_: user_invert.Invert
'''

MODE_CLASS = '''
"""A user's mode: the option letters' next-token log-probabilities, no softmax, no merging."""
from robustness.models.base import Capability, NextTokenRequest
from robustness.modes.base import ScoreKind
from robustness.modes.common import TemplatedMode, argmax_label, make_answer


class LetterLogitMode(TemplatedMode):
    name = "letter_logit"
    capability = Capability.NEXT_TOKEN_SCORES
    score_kind = ScoreKind.LETTER

    def serves(self, strategy):
        return strategy != "cot" and super().serves(strategy)

    def answer(self, adapter, queries):
        prompts = self.build_prompts(adapter, queries)
        results = adapter.next_token_scores([NextTokenRequest(p, ("A", "B")) for p in prompts])
        return [make_answer(q, None if r.error else argmax_label(r.logprobs),
                            {"letter_logprobs": r.logprobs}, r.latency_s, r.usage, error=r.error)
                for q, r in zip(queries, results)]
'''

MODE_YAML = '''
_target_: user_letter_logit.LetterLogitMode
templates:
  direct: "Question: {question}\\nA: {option_A}\\nB: {option_B}\\nAnswer: "
'''


def family_yaml(checkpoint: Path) -> str:
    return textwrap.dedent(f'''
        # A Hugging Face family without quirks: the generic adapter path, no FamilySpec entry.
        _target_: robustness.models.hf.HFAdapter
        model_id: {checkpoint}
        revision: null
        family: generic
        dtype: float32
        device: cpu
        batch_size: 4
        local_files_only: true
        trust_remote_code: false
        ''')


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def run(tmp: Path, user_conf: Path, *overrides: str) -> dict:
    args = [f"--config-dir={user_conf}", "dataset.pairs=4", "dataset.size=64",
            f"cache.dir={tmp / 'cache'}", f"hydra.run.dir={tmp / 'run'}", "logger=none",
            "progress=false", "resamples=100", *overrides]
    assert main(args) == 0
    return json.loads((tmp / "run" / "summary.json").read_text())


@pytest.fixture
def user(tmp_path, monkeypatch) -> Path:
    """The user's folder: their classes (on the path, and trusted: docs/security.md) and their
    config folder."""
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.setenv("ROBUSTNESS_TRUSTED_MODULES", "user_invert,user_letter_logit")
    (tmp_path / "code").mkdir()
    return tmp_path


def tiny_model_args(checkpoint: Path) -> list[str]:
    return ["model=llava_1_5", f"model.model_id={checkpoint}", "model.revision=null",
            "model.dtype=float32", "model.device=cpu", "model.local_files_only=true",
            "model.batch_size=4"]


def test_a_probe_is_one_class_and_one_yaml(user, tiny_llava):
    write(user, "code/user_invert.py", PROBE_CLASS)
    write(user, "conf/probe/invert.yaml", PROBE_YAML)
    summary = run(user, user / "conf", *tiny_model_args(tiny_llava), "mode=gd",
                  "probe=[option_swap,invert]", "explain=none")
    assert list(summary["conditions"]) == ["clean", "option_swap", "invert"]
    invert = summary["conditions"]["invert"]
    assert invert["probe"] == {"name": "invert", "params": {}} and "shift" in invert
    clean = [json.loads(x) for x in (user / "run/predictions/clean.jsonl").read_text().splitlines()]
    probed = [json.loads(x) for x in (user / "run/predictions/invert.jsonl").read_text().splitlines()]
    assert len(probed) == len(clean) == 8
    # the model saw other pixels: its letter probabilities moved
    assert [r["raw"]["letter_probs"] for r in probed] != [r["raw"]["letter_probs"] for r in clean]


def test_a_mode_is_one_class_and_one_yaml(user, tiny_llava):
    write(user, "code/user_letter_logit.py", MODE_CLASS)
    write(user, "conf/mode/letter_logit.yaml", MODE_YAML)
    summary = run(user, user / "conf", *tiny_model_args(tiny_llava), "mode=letter_logit",
                  "probe=[option_swap]", "explain=occlusion", "explain.pairs=1",
                  "explain.under_probes=false", "explain.parts=false")
    assert summary["mode"] == "letter_logit" and summary["n_pairs"] == 4
    records = [json.loads(x) for x in (user / "run/predictions/clean.jsonl").read_text().splitlines()]
    assert all(r["choice"] in ("A", "B") and set(r["raw"]["letter_logprobs"]) == {"A", "B"}
               for r in records)
    # saliency asks the mode what it scores (a letter margin), not its name
    assert summary["saliency"]["n_images"] == 2
    # a strategy the mode does not serve is refused before any work
    assert main([f"--config-dir={user / 'conf'}", *tiny_model_args(tiny_llava),
                 "mode=letter_logit", "prompt=cot", f"cache.dir={user / 'cache'}",
                 f"hydra.run.dir={user / 'refused'}", "logger=none"]) == 2
    assert not (user / "refused" / "summary.json").exists()


def test_a_hugging_face_family_without_quirks_is_one_yaml(user, tiny_llava):
    from robustness.models.hf_families import GENERIC

    write(user, "conf/model/my_vlm.yaml", family_yaml(tiny_llava))
    for mode in ("gd", "ps", "mc"):
        summary = run(user, user / "conf", "model=my_vlm", f"mode={mode}", "probe=[]",
                      "explain=none", *(["mode.max_new_tokens=4"] if mode == "mc" else []))
        assert summary["model"] == "my_vlm" and summary["model_identity"]["family"] == "generic"
        assert summary["conditions"]["clean"]["n_answers"] == 8
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    adapter = instantiate(OmegaConf.load(user / "conf/model/my_vlm.yaml"))
    assert adapter.spec is GENERIC  # the generic path: no table entry was needed
