"""The answering modes (MC, FF with the paper's model judge, GD, PS) through the API adapters,
against the loopback server, with faults injected."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tests.helpers.paths import CONF
from robustness.modes import mode_from_config
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.modes.judge import ModelJudge
from robustness.data.query import Query
from robustness.testing.fake_api import REFUSAL_TEXT, fake_api_server
from tests.robustness.models.api.test_providers import PLANTED, PROVIDERS, make_adapter

GD_PROVIDERS = ["openai", "azure", "gemini", "vllm"]


@pytest.fixture
def keys(monkeypatch, tmp_path):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server():
    with fake_api_server() as srv:
        yield srv
        assert srv.errors == []


def make_queries(n: int, marker: dict[int, str] | None = None) -> list[Query]:
    """Queries over random images; odd ones show the options swapped."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        image = ImageInput(rng.integers(0, 256, (24 + i, 30, 3), dtype=np.uint8))
        swapped = i % 2 == 1
        options = ("left", "right")[::-1] if swapped else ("left", "right")
        question = f"Which side is the lesion on? {(marker or {}).get(i, '')}".strip()
        out.append(Query(pair_id=f"p{i // 2}", image_index=1 + i % 2, image=image,
                         question=question, options=options,
                         label_map=("B", "A") if swapped else ("A", "B")))
    return out


def believed(query: Query) -> str:
    """The letter the fake model picks for this image (see robustness.testing.fake_api.image_letter)."""
    return "AB"[hashlib.sha256(query.image.png_bytes()).digest()[0] % 2]


def check_answers(queries, answers, expected=None):
    assert [(a.pair_id, a.image_index) for a in answers] == [q.key for q in queries]
    for q, a in zip(queries, answers):
        assert a.choice == q.to_original(a.displayed_choice)
        json.dumps(a.record())  # records stay serialisable
    if expected is not None:
        assert [a.displayed_choice for a in answers] == expected


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mc_and_ff_with_the_paper_judge_through_each_provider(provider, keys, server):
    queries = make_queries(6)
    model = make_adapter(provider, server)
    judge = ModelJudge(make_adapter("openai", server))  # the paper's judge: GPT-4o
    modes = [mode_from_config("mc"), mode_from_config("ff", judge=judge)]
    for mode in modes:
        mode.check(model)
    expected = [believed(q) for q in queries]
    for mode in modes:
        answers = mode.answer(model, queries)
        check_answers(queries, answers, expected)
        for a in answers:
            assert a.error is None and a.raw["usage"]["input_tokens"] > 0
        if mode.name == "ff":
            assert all(a.raw["judge"]["scores"] in ({"A": 9.0, "B": 2.0}, {"A": 2.0, "B": 9.0})
                       for a in answers)
            assert all("usage" in a.raw["judge"] for a in answers)
    model.close()
    judge.adapter.close()


@pytest.mark.parametrize("provider", GD_PROVIDERS)
def test_gd_through_providers_that_return_logprobs(provider, keys, server):
    queries = make_queries(6)
    model = make_adapter(provider, server)
    mode = mode_from_config("gd")
    mode.check(model)
    answers = mode.answer(model, queries)
    model.close()
    check_answers(queries, answers, [believed(q) for q in queries])
    for a in answers:
        assert sum(a.raw["letter_probs"].values()) == pytest.approx(1.0)
        assert a.raw["letter_mass"] == pytest.approx(0.95)  # 0.55+0.15 and 0.20+0.05


@pytest.mark.parametrize("provider", ["anthropic", "compatible"])
def test_gd_fails_at_configuration_time_without_logprobs(provider, keys, server):
    with pytest.raises(ConfigError, match="next_token_scores"):
        mode_from_config("gd").check(make_adapter(provider, server))


def test_ps_through_vllm_and_nowhere_else(keys, server):
    queries = make_queries(4)
    model = make_adapter("vllm", server)
    mode = mode_from_config("ps")
    mode.check(model)
    answers = mode.answer(model, queries)
    model.close()
    check_answers(queries, answers)
    for a in answers:
        assert a.error is None and set(a.raw["option_scores"]) == {"A", "B"}
    for provider in ("openai", "azure", "anthropic", "gemini", "compatible"):
        with pytest.raises(ConfigError, match="loglikelihood"):
            mode.check(make_adapter(provider, server))


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_faults_inside_modes_are_recorded_and_counted(provider, keys, server):
    server.plan.when("FAULT-500", "server_error").when("FAULT-REFUSE", "refusal")
    server.plan.next("rate_limit", times=2, retry_after=0.01)
    queries = make_queries(6, marker={1: "FAULT-500", 4: "FAULT-REFUSE"})
    model = make_adapter(provider, server, max_retries=2)
    answers = mode_from_config("mc").answer(model, queries)
    model.close()
    errors = [a.error for a in answers]
    refusal = "content_filter" if provider == "gemini" else "refusal"
    assert errors == [None, "server_error", None, None, refusal, None]
    assert answers[1].choice is None and answers[1].raw["error_detail"]
    if refusal == "refusal":
        assert answers[4].raw["text"] == REFUSAL_TEXT
    good = [a for a, e in zip(answers, errors) if e is None]
    assert all(a.displayed_choice in ("A", "B") for a in good)
    stats = model.stats()
    assert stats["failures"] == {"server_error": 1, refusal: 1}
    assert stats["retries"]["server_error"] == 2 and stats["retries"]["rate_limit"] == 2


def test_a_failing_judge_marks_the_answer_not_the_run(keys, server):
    server.plan.when("[Answer A]", "server_error")  # every judge request fails
    queries = make_queries(2)
    judge = ModelJudge(make_adapter("openai", server, max_retries=0))
    answers = mode_from_config("ff", judge=judge).answer(make_adapter("anthropic", server), queries)
    assert [a.error for a in answers] == ["judge_server_error"] * 2
    assert all(a.raw["text"].startswith("The image shows") for a in answers)


def test_ff_model_judge_config_runs_with_api_model_and_api_judge(keys, server):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=[
            "+mode=ff_model_judge", f"mode.judge.adapter.base_url={server.openai_base_url}",
            "+model=claude", f"model.base_url={server.anthropic_base_url}"])
    mode = instantiate(cfg.mode, _convert_="all")
    model = instantiate(cfg.model, _convert_="all")
    assert mode.judge.adapter.model_id == "gpt-4o-2024-05-13"
    assert mode.judge.settings.temperature == 0.0
    mode.check(model)
    queries = make_queries(4)
    answers = mode.answer(model, queries)
    check_answers(queries, answers, [believed(q) for q in queries])
    judged = [s for s in server.seen if s.protocol == "openai"]
    assert len(judged) == 4 and all(s.model == "gpt-4o-2024-05-13" for s in judged)
    assert all(s.body["temperature"] == 0.0 for s in judged)
