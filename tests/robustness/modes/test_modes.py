"""The four answering modes end to end through the real Hugging Face adapter on tiny models."""

from __future__ import annotations

from dataclasses import replace

import pytest

from robustness.modes import mode_from_config
from robustness.errors import ConfigError
from robustness.models.hf import HFAdapter
from robustness.modes.judge import LexicalJudge, ModelJudge
from robustness.modes.prompts import PAPER_PERSONA, PromptStrategy
from robustness.data.query import FewShotExample
from robustness.testing.tiny_models import make_images, make_queries



def adapter(path, batch_size: int = 4) -> HFAdapter:
    return HFAdapter(path, batch_size=batch_size, device="cpu", dtype="float32")


def all_modes(judge_path) -> list:
    judge = ModelJudge(adapter(judge_path), max_new_tokens=12)
    return [mode_from_config("mc", max_new_tokens=8), mode_from_config("gd"), mode_from_config("ps"),
            mode_from_config("ff", judge=judge, max_new_tokens=10),
            mode_from_config("ff", judge=LexicalJudge(), max_new_tokens=10)]


def test_all_four_modes_run_end_to_end(tiny_model, tiny_llava):
    queries = make_queries(4)
    model = adapter(tiny_model)
    for mode in all_modes(tiny_llava):
        mode.check(model)
        answers = mode.answer(model, queries)
        assert [(a.pair_id, a.image_index) for a in answers] == [q.key for q in queries]
        for q, a in zip(queries, answers):
            assert a.error is None
            assert a.displayed_choice in ("A", "B", None)
            assert a.choice == q.to_original(a.displayed_choice)
            assert a.latency_s > 0
            assert set(a.raw["usage"]) == {"input_tokens", "output_tokens"}
            rec = a.record()
            assert rec["choice"] == a.choice and rec["raw"] is a.raw
        if mode.name == "gd":
            for a in answers:
                probs = a.raw["letter_probs"]
                assert sum(probs.values()) == pytest.approx(1.0)
                assert a.displayed_choice == (max(probs, key=probs.get)
                                              if probs["A"] != probs["B"] else None)
                assert 0 < a.raw["letter_mass"] <= 1
        if mode.name == "ps":
            for a in answers:
                s = a.raw["option_scores"]
                best = max(s, key=s.get) if s["A"] != s["B"] else None  # a tie is invalid
                assert a.displayed_choice == best
                assert s["A"] == pytest.approx(a.raw["logprob"]["A"] / a.raw["n_tokens"]["A"])
        if mode.name == "mc":
            assert all(isinstance(a.raw["text"], str) and a.raw["parse"] for a in answers)
        if mode.name == "ff":
            for a in answers:
                judge = a.raw["judge"]
                assert isinstance(a.raw["text"], str)
                if judge["name"] == "model":  # a random tiny judge writes no scores: invalid
                    assert judge["raw"] and judge["scores"] is None
                    assert judge["error"] == "judge_unparseable" and a.choice is None
                else:
                    assert judge["raw"].startswith("A: ") and set(judge["scores"]) == {"A", "B"}


def test_batched_modes_equal_unbatched(tiny_qwen):
    """Mode level (the adapter tests cover every family; Qwen2-VL pads the most here)."""
    queries = make_queries(5)
    for mode in (mode_from_config("gd"), mode_from_config("ps"), mode_from_config("mc", max_new_tokens=3)):
        one = mode.answer(adapter(tiny_qwen, 1), queries)
        many = mode.answer(adapter(tiny_qwen, 4), queries)
        assert [a.choice for a in one] == [a.choice for a in many]
        for a, b in zip(one, many):
            for key in ("letter_probs", "option_scores"):
                if key in a.raw:
                    assert a.raw[key] == pytest.approx(b.raw[key], abs=1e-4)


def test_known_answer_maps_back_through_the_option_order(rigged_llava):
    """A model that always says "B": every mode that reads letters picks displayed B, which is
    original B for plain queries and original A for swapped ones."""
    queries = make_queries(4)  # odd queries have swapped options (label_map = (B, A))
    model = adapter(rigged_llava)
    for mode in (mode_from_config("mc"), mode_from_config("gd")):
        answers = mode.answer(model, queries)
        assert [a.displayed_choice for a in answers] == ["B"] * 4
        assert [a.choice for a in answers] == ["B", "A", "B", "A"]
    cot = [replace(q, strategy="cot") for q in queries]
    answers = mode_from_config("mc").answer(model, cot)
    assert [a.raw["text"] for a in answers] == ["B"] * 4
    assert [a.displayed_choice for a in answers] == ["B"] * 4
    gd = mode_from_config("gd").answer(model, queries)
    assert all(a.raw["letter_probs"]["B"] > 0.999 for a in gd)


def test_strategy_checks_happen_at_configuration_time():
    for mode in (mode_from_config("gd"), mode_from_config("ps")):
        with pytest.raises(ConfigError, match="cot"):
            mode.check_strategy("cot")
        for ok in ("direct", "few_shot", "persona"):
            mode.check_strategy(ok)
    for mode in (mode_from_config("mc"), mode_from_config("ff")):
        for ok in ("direct", "cot", "few_shot", "persona"):
            mode.check_strategy(ok)
    with pytest.raises(ConfigError, match="unknown prompting strategy"):
        mode_from_config("mc").check_strategy("telepathy")


def test_modes_refuse_strategies_they_cannot_serve_before_calling_the_model(tiny_llava):
    model = adapter(tiny_llava)
    with pytest.raises(ConfigError):
        mode_from_config("gd").answer(model, [replace(q, strategy="cot") for q in make_queries(2)])


def _example(pair_id: str, answer: str = "B") -> FewShotExample:
    return FewShotExample(image=make_images(1, seed=7)[0], question="which side?",
                          options=("left", "right"), answer=answer, source_pair_id=pair_id)


def test_prompt_rendering_honours_every_query_field():
    q = make_queries(2)[1]  # swapped options
    builder = mode_from_config("mc").prompts
    direct = builder.build(q, None, lambda ex: ex.answer)
    assert len(direct.messages) == 1 and direct.images == (q.image,)
    text = direct.messages[0].text
    assert f'("A": {q.options[0]})' in text and f'("B": {q.options[1]})' in text
    assert text.endswith('#answer: ("')

    shots = replace(q, strategy="few_shot", few_shot=(_example("other1", "A"), _example("other2")))
    fs = builder.build(shots, None, lambda ex: ex.answer)
    assert [m.role for m in fs.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m.text for m in fs.messages if m.role == "assistant"] == ["A", "B"]
    assert len(fs.images) == 3 and fs.images[-1] is q.image

    ps = mode_from_config("ps").prompts.build(shots, None, lambda ex: ex.options["AB".index(ex.answer)])
    assert [m.text for m in ps.messages if m.role == "assistant"] == ["left", "right"]

    with pytest.raises(ValueError, match="asked pair"):
        builder.build(replace(q, strategy="few_shot", few_shot=(_example(q.pair_id),)), None,
                      lambda ex: ex.answer)

    persona = builder.build(replace(q, strategy="persona"), None, lambda ex: ex.answer)
    assert persona.messages[0].role == "system" and persona.messages[0].text == PAPER_PERSONA
    custom = builder.build(replace(q, system_prompt="You are a radiologist."), None,
                           lambda ex: ex.answer)
    assert custom.messages[0].text == "You are a radiologist."

    cot = builder.build(replace(q, strategy="cot"), None, lambda ex: ex.answer)
    assert 'finish with a final line of the form "Answer: <letter>"' in cot.messages[-1].text

    blip = builder.build(q, "blip2", lambda ex: ex.answer, plain=True).messages[-1].text
    assert blip.startswith("Question: Based on the image") and blip.endswith("Answer:")


def test_prompt_strategy_sets_query_fields():
    q = make_queries(1)[0]
    assert PromptStrategy("persona").apply(q).system_prompt == PAPER_PERSONA
    assert PromptStrategy("cot").apply(q).strategy == "cot"
    shots = PromptStrategy("few_shot", few_shot_k=1).apply(q, [_example("x"), _example("y")])
    assert shots.strategy == "few_shot" and len(shots.few_shot) == 1
    with pytest.raises(ConfigError):
        PromptStrategy("few_shot", few_shot_k=2).apply(q, [_example("x")])
    with pytest.raises(ConfigError):
        PromptStrategy("nonsense")


def test_backend_failures_become_answer_errors(tiny_llava, monkeypatch):
    model = adapter(tiny_llava)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    queries = make_queries(2)
    for method in ("_generate_batch", "_next_token_batch", "_loglikelihood_batch"):
        monkeypatch.setattr(model, method, broken)
    for mode in (mode_from_config("mc"), mode_from_config("gd"), mode_from_config("ps"), mode_from_config("ff")):
        answers = mode.answer(model, queries)
        assert all(a.error == "model_error" and a.choice is None for a in answers)
        assert all("out of memory" in a.raw["error_detail"] for a in answers)


def test_judge_backend_failure_is_an_error_not_a_crash(tiny_llava, monkeypatch):
    judge_model = adapter(tiny_llava)
    monkeypatch.setattr(judge_model, "_generate_batch",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("judge down")))
    mode = mode_from_config("ff", judge=ModelJudge(judge_model), max_new_tokens=4)
    answers = mode.answer(adapter(tiny_llava, 2), make_queries(2))
    assert all(a.error == "judge_model_error" and a.choice is None for a in answers)
    assert all(a.raw["text"] and "judge down" in a.raw["judge"]["error_detail"] for a in answers)


def test_mode_and_judge_capability_checks(tiny_llava):
    from robustness.models.base import Capability, ModelAdapter

    class TextOnlyScores(ModelAdapter):
        capabilities = frozenset({Capability.NEXT_TOKEN_SCORES})
        model_id = "scores-only"

    with pytest.raises(ConfigError, match="cannot serve MC mode"):
        mode_from_config("mc").check(TextOnlyScores())
    with pytest.raises(ConfigError, match="FF judge"):
        mode_from_config("ff", judge=ModelJudge(TextOnlyScores())).check(adapter(tiny_llava))
    mode_from_config("gd").check(TextOnlyScores())
