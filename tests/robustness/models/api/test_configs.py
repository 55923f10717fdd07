"""Every API model preset composes, instantiates and answers (against the loopback server)."""

from __future__ import annotations


import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tests.helpers.paths import CONF
from robustness.models.base import GenerateRequest, GenerationSettings
from robustness.testing.fake_api import fake_api_server
from tests.robustness.models.api.test_providers import PLANTED, mc_prompt

MODEL_DIR = CONF / "model"
API_PRESETS = {  # preset -> (URL override, capabilities it must declare)
    "gpt4o": ("base_url", {"generate", "next_token_scores"}),
    "gpt4o_judge": ("base_url", {"generate"}),
    "azure_openai": ("azure_endpoint", {"generate", "next_token_scores"}),
    "claude": ("base_url", {"generate"}),
    "gemini": ("base_url", {"generate"}),
    "openai_compatible": ("base_url", {"generate"}),
    "vllm": ("base_url", {"generate", "next_token_scores", "loglikelihood"}),
    "ollama": ("base_url", {"generate"}),
    # the current leaderboard's models (AIF4S/MediConfusion)
    "o1": ("base_url", {"generate"}),
    "gemini_2_0_pro": ("base_url", {"generate"}),
    "deepseek_vl2": ("base_url", {"generate", "next_token_scores", "loglikelihood"}),
}
NATIVE_URL = ("azure_openai", "claude", "gemini", "gemini_2_0_pro")  # not OpenAI-style paths


@pytest.fixture
def keys(monkeypatch, tmp_path):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)


def compose_preset(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(MODEL_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("preset", sorted(API_PRESETS))
def test_preset_instantiates_and_answers(preset, keys):
    url_key, capabilities = API_PRESETS[preset]
    with fake_api_server() as server:
        url = server.base_url if preset in NATIVE_URL else server.openai_base_url
        overrides = [f"{url_key}={url}", "max_retries=0", "timeout_s=5"]
        if preset == "openai_compatible":
            overrides.append("name=my-served-model")
        cfg = compose_preset(preset, overrides)
        assert 5 <= len((MODEL_DIR / f"{preset}.yaml").read_text().splitlines()) <= 50
        adapter = instantiate(cfg)
        try:
            assert {c.value for c in adapter.capabilities} == capabilities
            [result] = adapter.generate([GenerateRequest(mc_prompt(0), GenerationSettings())])
        finally:
            adapter.close()
        assert result.error is None and result.text in ("A", "B")
        assert server.errors == []
        if adapter.prices is not None:
            assert set(adapter.prices) == {"input_per_million", "output_per_million"}


def test_openai_compatible_requires_url_and_name():
    cfg = compose_preset("openai_compatible", [])
    from omegaconf import OmegaConf

    assert OmegaConf.is_missing(cfg, "base_url") and OmegaConf.is_missing(cfg, "name")
    assert cfg.api_key_env == "OPENAI_API_KEY"


def test_local_presets_do_not_send_the_openai_key(keys):
    with fake_api_server() as server:
        for preset in ("vllm", "ollama"):
            cfg = compose_preset(preset, [f"base_url={server.openai_base_url}", "max_retries=0"])
            adapter = instantiate(cfg)
            adapter.generate([GenerateRequest(mc_prompt(0), GenerationSettings())])
            adapter.close()
        assert [s.credential for s in server.seen] == [PLANTED["VLLM_API_KEY"], "EMPTY"]


def test_paper_presets_name_the_paper_models():
    assert compose_preset("gpt4o", []).name == "gpt-4o-2024-05-13"
    assert compose_preset("claude", []).name == "claude-3-opus-20240229"
    assert compose_preset("gemini", []).name == "gemini-1.5-pro"


def test_a_preset_without_its_sdk_names_the_extra(monkeypatch, tmp_path, capsys):
    """A wheel installed without [api] runs offline, and an API preset says what to install."""
    import importlib.util

    from robustness.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openai" else real(name, *a))
    args = ["model=gpt4o", "probe=[]", "logger=none", "explain=none",
            f"cache.dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mediconfusion-robustness[api]'" in err[0]


def test_o1_sends_no_sampling_settings_and_budgets_its_reasoning(keys):
    """Reasoning models reject temperature and seed, and spend hidden tokens from the
    completion budget: the request carries neither, and max_completion_tokens = the mode's
    max_new_tokens + reasoning_tokens."""
    with fake_api_server() as server:
        cfg = compose_preset("o1", [f"base_url={server.openai_base_url}", "max_retries=0",
                                    "timeout_s=5"])
        adapter = instantiate(cfg)
        try:
            [result] = adapter.generate([GenerateRequest(mc_prompt(0),
                                                         GenerationSettings(max_new_tokens=32))])
        finally:
            adapter.close()
    assert result.error is None
    body = server.seen[0].body
    assert "temperature" not in body and "seed" not in body and "logprobs" not in body
    assert body["max_completion_tokens"] == 32 + 8192
    assert body["reasoning_effort"] == "medium" and body["model"] == "o1-2024-12-17"
    assert adapter.identity()["send_temperature"] is False
