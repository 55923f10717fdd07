"""Every Hugging Face model config, mode config and prompt config composes and instantiates
without downloading anything, and carries valid fields."""

from __future__ import annotations

import json


import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tests.helpers.paths import FIXTURES
from tests.helpers.paths import CONF
from robustness.errors import ConfigError
from robustness.models.hf import DEVICES, DTYPES, HFAdapter
from robustness.models.hf_families import known_family_names
from robustness.modes.base import AnsweringMode
from robustness.modes.ff import FreeFormMode
from robustness.modes.judge import LexicalJudge, ModelJudge
from robustness.modes.prompts import PromptStrategy

HF_TARGET = "robustness.models.hf.HFAdapter"
HF_MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml")
                   if yaml.safe_load(p.read_text()).get("_target_") == HF_TARGET)
EXPECTED = {"llava_1_5", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3", "smolvlm",
            "paligemma", "blip2", "instructblip", "llama_3_2_vision", "medgemma", "molmo"}


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(overrides=list(overrides))


def test_every_paper_family_has_a_config():
    assert EXPECTED <= set(HF_MODELS)


@pytest.mark.parametrize("name", HF_MODELS)
def test_model_config_composes_and_builds_lazily(name):
    cfg = composed(f"+model={name}").model
    raw = (CONF / "model" / f"{name}.yaml").read_text()
    assert 5 <= len(raw.splitlines()) <= 50
    for key in ("model_id", "revision", "dtype", "device", "batch_size", "family",
                "local_files_only", "trust_remote_code"):
        assert key in cfg, f"{name}: {key} missing"
    assert cfg.dtype in DTYPES and cfg.device in DEVICES and cfg.batch_size >= 1
    assert cfg.family in known_family_names()
    # remote code only where the model's own config says so, explicitly, and pinned by the user
    assert cfg.trust_remote_code is (name == "molmo")
    if cfg.trust_remote_code:
        assert cfg.revision is None  # the pin is the user's to set
        cfg.revision = "0" * 40
    adapter = instantiate(cfg, _convert_="all")
    assert isinstance(adapter, HFAdapter) and adapter._loaded is None  # nothing read yet
    # hub ids are used as written; a shipped checkpoint's path is resolved by its own _target_
    model_id = cfg.model_id if isinstance(cfg.model_id, str) else instantiate(cfg.model_id)
    assert adapter.identity()["model_id"] == model_id
    assert adapter.prompt_family == cfg.family  # configured: no download to find it


PAPER_PROMPTS = FIXTURES / "paper_prompts.json"


@pytest.mark.parametrize("key", ["trust_remote_code", "local_files_only"])
@pytest.mark.parametrize("value", ["false", "False", "no", 0, 1, "true"])
def test_gating_booleans_accept_real_booleans_only(key, value):
    """A quoted 'false' is truthy in Python: it must never turn remote code or network on."""
    with pytest.raises(ConfigError, match=f"model.{key}: expected true or false"):
        HFAdapter("llava-hf/llava-1.5-7b-hf", **{key: value})


@pytest.mark.parametrize("revision", [None, "main", "v1.0", "abc123"])
def test_remote_code_needs_a_pinned_commit(revision):
    with pytest.raises(ConfigError, match="model.revision: .*pin the commit"):
        HFAdapter("allenai/Molmo-7B-D-0924", revision=revision, trust_remote_code=True)
    HFAdapter("allenai/Molmo-7B-D-0924", revision="a" * 40, trust_remote_code=True)


def test_molmo_is_refused_in_one_line_until_pinned(tmp_path, capsys):
    from robustness.cli import main

    args = ["model=molmo", "probe=[]", "logger=none", f"hydra.run.dir={tmp_path}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.revision" in err[0] and "Traceback" not in err[0]


def test_plain_families_are_the_papers_blip2_families():
    """Exactly the families the paper prompted with BLIP-2's wording take plain templates."""
    from robustness.models.hf_families import FAMILIES

    paper = json.loads(PAPER_PROMPTS.read_text(encoding="utf-8"))
    assert sorted(f.name for f in FAMILIES if f.plain_prompts) == paper["plain_families"]


@pytest.mark.parametrize("name", ["mc", "gd", "ps", "ff"])
def test_mode_configs_build_with_the_papers_wording(name):
    cfg = composed(f"+mode={name}").mode
    mode = instantiate(cfg, _convert_="all")
    assert isinstance(mode, AnsweringMode) and mode.name == name
    paper = json.loads(PAPER_PROMPTS.read_text(encoding="utf-8"))
    assert mode.prompts.templates == paper["templates"][name]
    assert mode.prompts.plain_templates == paper["plain_templates"][name]
    assert mode.prompts.family_templates == {}
    if name == "ff":
        assert isinstance(mode.judge, LexicalJudge) and mode.threshold == 3


def test_ff_model_judge_takes_any_model_config():
    cfg = composed("+mode=ff_model_judge", "model@mode.judge.adapter=qwen2_vl").mode
    mode = instantiate(cfg, _convert_="all")
    assert isinstance(mode, FreeFormMode) and isinstance(mode.judge, ModelJudge)
    assert mode.judge.adapter.model_id == "Qwen/Qwen2-VL-7B-Instruct"
    assert mode.judge.settings.temperature == 0.0


def test_ps_normalisation_is_configurable():
    mode = instantiate(composed("+mode=ps", "mode.normalize=per_char").mode, _convert_="all")
    assert mode.normalize == "per_char"


@pytest.mark.parametrize("name", ["direct", "cot", "few_shot", "persona"])
def test_prompt_configs(name):
    strategy = instantiate(composed(f"+prompt={name}").prompt, _convert_="all")
    assert isinstance(strategy, PromptStrategy) and strategy.strategy == name
    if name == "persona":
        assert strategy.system_prompt


def test_ff_model_judge_default_is_the_gpt4o_preset():
    if not (CONF / "model" / "gpt4o_judge.yaml").is_file():
        pytest.skip("the GPT-4o judge preset (conf/model/gpt4o_judge.yaml) comes with the API "
                    "adapters")
    mode = instantiate(composed("+mode=ff_model_judge").mode, _convert_="all")
    assert isinstance(mode.judge, ModelJudge)
