"""Letter parsing, judge replies, the threshold rule and the lexical judge (no models)."""

from __future__ import annotations

import pytest

from robustness.modes.gd import softmax
from robustness.modes.judge import (PAPER_JUDGE_INSTRUCTION, LexicalJudge, JudgeItem,
                                    judge_prompt_text, parse_judge_scores, threshold_choice)
from robustness.modes.parsing import parse_choice
from robustness.modes.ps import normalised_score
from robustness.models.base import ContinuationScore

SIDES = ("There is a nodule in the left lung", "There is a nodule in the right lung")


@pytest.mark.parametrize("text, choice", [
    ("A", "A"), ("B", "B"), ("(A)", "A"), ("A:", "A"), ("A.", "A"), ("b", "B"),
    ("Answer: B", "B"), ("answer: (A)", "A"), ("The answer is B.", "B"), ("**B**", "B"),
    ("**Answer:** A", "A"), ('A")', "A"), ('"B"', "B"),
    ("B: There is a nodule in the right lung", "B"),
    ("(A) left", "A"), ("Option B", "B"), ("I think it is option A.", "A"),
    ("There is a nodule in the right lung.", "B"), ("the nodule is in the LEFT lung", None),
    ("there is a nodule in the left lung", "A"),
    ("A nodule is seen in the left lung", None),  # an article, not a letter
    ("A and B", None), ("A or B", None), ("Both A) and B) are possible", None),
    ("I cannot determine this from the image.", None), ("I'm sorry, I can't help with that.", None),
    ("C", None), ("", None), ("   ", None), (None, None),
    ("Answer: A. Actually, Answer: B", None),  # contradicting itself
])
def test_parse_choice(text, choice):
    assert parse_choice(text, SIDES).choice == choice


def test_parse_reasons_are_recorded():
    assert parse_choice("A and B", SIDES).how == "both"
    assert parse_choice("I cannot tell", SIDES).how == "refusal"
    assert parse_choice("C", SIDES).how == "other_letter"
    assert parse_choice("", SIDES).how == "empty"
    assert parse_choice("hmm", SIDES).how == "none"
    assert parse_choice("right lung nodule: there is a nodule in the right lung", SIDES).how \
        == "option_text"


def test_option_text_inside_the_other_option():
    opts = ("nodule", "no nodule")
    assert parse_choice("There is no nodule.", opts).choice == "B"
    assert parse_choice("A nodule is present", opts).choice == "A"
    assert parse_choice("Yes", ("Yes", "No")).choice == "A"
    assert parse_choice("no", ("Yes", "No")).choice == "B"


def test_chain_of_thought_reads_the_final_answer():
    text = ("Option A says left, option B says right. The opacity is on the right side.\n"
            "Answer: B")
    assert parse_choice(text, SIDES, cot=True).choice == "B"
    assert parse_choice(text, SIDES).choice == "B"  # the marker wins in direct parsing too
    rambling = "A would mean left. B would mean right.\nThe nodule is in the left lung, so A."
    assert parse_choice(rambling, SIDES, cot=True).choice == "A"  # last line only
    assert parse_choice("Answer: A\n...\nFinal answer: B", SIDES, cot=True).choice == "B"
    assert parse_choice("A or B, hard to say", SIDES, cot=True).choice is None


def test_judge_prompt_is_the_papers():
    text = judge_prompt_text("Which side?", ("left", "right"), "It is on the left.")
    assert text == ("[Question]\nWhich side?\n\n[Answer A]\nleft\n\n[Answer B]\nright\n\n"
                    "[AI Assistant]\nIt is on the left.\n\n[End of AI Assistant]\n\n"
                    f"[System]\n{PAPER_JUDGE_INSTRUCTION}\n\n")
    assert PAPER_JUDGE_INSTRUCTION.endswith(
        "format:\nA: <SCORE>\nB: <SCORE>\nYour explanation: <EXPLANATION>")


@pytest.mark.parametrize("reply, scores", [
    ("A: 8\nB: 2\nYour explanation: close to A", {"A": 8, "B": 2}),
    ("A: 8\n\nB: 2\n\nYour explanation: x", {"A": 8, "B": 2}),
    ("**A**: 9/10\n**B**: 1/10\nYour explanation: x", {"A": 9, "B": 1}),
    ("Answer A: 7\nAnswer B: 7.5", {"A": 7, "B": 7.5}),
    ("A: 8\nYour explanation: B is missing", None),
    ("A: 11\nB: 2", None), ("A: 0\nB: 2", None), ("A: 8\nB: 2\nA: 3", None),
    ("I think A is closer.", None), ("", None), (None, None),
])
def test_parse_judge_scores(reply, scores):
    assert parse_judge_scores(reply) == scores


def test_threshold_rule():
    assert threshold_choice({"A": 8, "B": 5}) == "A"
    assert threshold_choice({"A": 8, "B": 6}) is None
    assert threshold_choice({"A": 1, "B": 10}) == "B"
    assert threshold_choice({"A": 5, "B": 5}) is None
    assert threshold_choice(None) is None
    assert threshold_choice({"A": 8, "B": 7}, threshold=1) == "A"


def lexical(options, response):
    return LexicalJudge().judge([JudgeItem("q", tuple(options), response)])[0]


def test_lexical_judge_scores_distinctive_words():
    v = lexical(SIDES, "A rounded nodule is seen in the left lung.")
    assert v.scores == {"A": 10, "B": 1} and v.error is None
    assert v.raw.startswith("A: 10\nB: 1\nYour explanation: lexical overlap")
    assert threshold_choice(v.scores) == "A"
    assert threshold_choice(lexical(SIDES, "right-sided nodule").scores) == "B"
    both = lexical(SIDES, "nodules in the left and right lung")
    assert threshold_choice(both.scores) is None
    assert threshold_choice(lexical(("Yes", "No"), "No, there is none.").scores) == "B"
    assert threshold_choice(lexical(("nodule", "no nodule"), "There is a nodule.").scores) == "A"
    assert threshold_choice(lexical(("nodule", "no nodule"), "no nodule seen").scores) == "B"
    # same words, different order: bigrams decide
    order = ("left above right", "right above left")
    assert threshold_choice(lexical(order, "the left is above the right").scores) == "A"
    assert threshold_choice(lexical(SIDES, "").scores) is None
    missing = LexicalJudge().judge([JudgeItem("q", SIDES, None)])[0]
    assert missing.error == "no_answer" and missing.scores is None


def test_lexical_judge_credits_short_answers_and_word_forms():
    """A short answer whose words all point at one long option is close to it (word F1), and
    word forms meet through the stemmer; neither credits an answer naming the other finding."""
    occlusion = ("An abrupt cut-off of a branch, consistent with occlusion",
                 "All branches patent with normal filling")
    assert threshold_choice(lexical(occlusion, "Branch occlusion.").scores) == "A"
    assert threshold_choice(lexical(occlusion, "Patent arterial tree.").scores) == "B"
    heart = ("Normal heart size", "Cardiomegaly, with a cardiothoracic ratio above 0.5")
    assert threshold_choice(lexical(heart, "Normal cardiac silhouette.").scores) == "A"
    assert threshold_choice(lexical(heart, "Cardiomegaly.").scores) == "B"
    normality = ("Abnormal head CT", "Normal head CT")
    assert threshold_choice(lexical(normality, "A focal parenchymal abnormality is present."
                                    ).scores) == "A"  # abnormality ~ abnormal
    assert threshold_choice(lexical(SIDES, "the lung").scores) is None  # shared words only


def test_lexical_judge_reads_negation_like_a_reader():
    """An option the answer denies scores 1; with one of two options denied, the other is the
    one left (at least 6), so the paper's threshold picks it. A self-contradicting answer denies
    nothing, and words outside a negation's clause keep their polarity."""
    from robustness.modes.judge import contradicts, polarity

    assert polarity("No skull fracture. Intact calvarium.") == ({"intact", "calvarium"},
                                                                {"skull", "fractur"})
    assert polarity("Clear trachea without a tube") == ({"clear", "trachea"}, {"tube"})
    assert polarity("Smooth cortex, no fracture") == ({"smooth", "cortex"}, {"fractur"})
    assert contradicts("No skull fracture.", "A linear skull fracture with scalp hematoma")
    assert not contradicts("No skull fracture.", "Intact calvarium")
    assert contradicts("Fracture of the radius.", "Continuous cortex, no fracture")
    assert not contradicts("Calvarial fracture. No skull fracture.", "A linear skull fracture")
    # both deny the lesion: they agree, though "no" also swept "liver" into its scope
    assert not contradicts("No liver lesion.", "Homogeneous liver without focal lesion")
    # two of the option's words denied, one shared place word asserted: still a denial
    assert contradicts("Homogeneous liver without focal lesion.", "Focal liver lesion")
    # asserting what the option rules out denies it, whatever place words they share
    assert contradicts("Focal nodular opacity in the lung.", "Clear lungs without a focal nodule")
    cases = [  # options, answer, expected choice (None: invalid)
        (("A linear skull fracture with overlying scalp hematoma", "Intact calvarium"),
         "No skull fracture.", "B"),
        (("Pacemaker present", "No implanted cardiac device"), "No pacemaker.", "B"),
        (("A right internal jugular central line", "No central venous catheter"),
         "No line in the mediastinum.", "B"),
        (("Fracture of the tibia", "Continuous cortex, no fracture"),
         "A fracture line through the shaft.", "A"),
        (("Clear trachea without a tube", "Endotracheal tube present"),
         "No endotracheal tube.", "A"),
        (("Left-sided pleural effusion", "Right-sided pleural effusion"),
         "No pleural effusion.", None),  # both denied
        (("A linear skull fracture with overlying scalp hematoma", "Intact calvarium"),
         "Calvarial fracture. No skull fracture.", None),  # contradicts itself: overlap decides
        (("No focal abnormality", "A focal abnormality is present"),
         "A focal abnormality is present.", "B"),
        (("Homogeneous liver without focal lesion", "A hypodense hepatic mass"),
         "No liver lesion.", "A"),  # the old scope read this as denying the liver: B
        (("Focal liver lesion", "No liver lesion"),
         "Homogeneous liver without focal lesion.", "B"),
    ]
    for options, answer, expected in cases:
        verdict = lexical(options, answer)
        assert threshold_choice(verdict.scores) == expected, (options, answer, verdict.raw)
    assert "denied by the answer" in lexical(cases[0][0], cases[0][1]).raw


def test_gd_softmax_and_ps_normalisations():
    probs = softmax({"A": -1.0, "B": -3.0})
    assert probs["A"] == pytest.approx(1 / (1 + 2.718281828 ** -2), rel=1e-6)
    assert softmax({"A": float("-inf"), "B": -5.0}) == {"A": 0.0, "B": 1.0}
    s = ContinuationScore(logprob=-6.0, n_tokens=3, n_chars=12)
    assert normalised_score(s, "per_token") == -2.0
    assert normalised_score(s, "sum") == -6.0
    assert normalised_score(s, "per_char") == -0.5


def test_the_official_parser_equals_the_official_clean_up_on_every_fixture_reply():
    import json

    from robustness.modes.parsing import parse_official
    from tests.helpers.official_reference import OfficialScorer, clean_up_manual
    from tests.helpers.paths import FIXTURES

    fixture = json.loads((FIXTURES / "mc_replies.json").read_text(encoding="utf-8"))
    for reply in fixture["replies"]:
        scores = clean_up_manual("q", fixture["options"], reply)
        _, official = OfficialScorer.check_answer("A", scores["A"], scores["B"], 3)
        ours = parse_official(reply).choice
        assert (ours or "-") == official, (reply, ours, official)
    assert parse_official(None).choice is None
