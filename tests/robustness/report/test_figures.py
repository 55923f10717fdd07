"""The numbers behind the charts tolerate what real runs produce: missing values (all answers
invalid), a probe that runs its own level 0, conditions without a knob."""

from __future__ import annotations

from robustness.report import figures
from robustness.report.page import page
from robustness.report.svg import bar_chart, heatmap


def cond(name, params, set_acc, ci=None, shift=None, probe_metrics=None):
    out = {"overall": {"set_accuracy": set_acc, "confusion": 10.0, "individual_accuracy": 50.0},
           "ci": {"set_accuracy": ci} if ci else {}, "probe": {"name": name, "params": params}}
    if shift is not None:
        out["shift"] = {"set_accuracy": shift, "set_accuracy_ci": [shift - 1, shift + 1]}
    if probe_metrics:
        out["probe_metrics"] = probe_metrics
    return out


SUMMARY = {"conditions": {
    "clean": cond(None, {}, 80.0, [70.0, 90.0]),
    "noise@2": cond("noise", {"severity": 2}, 60.0, [50.0, 70.0], shift=-20.0),
    "noise@1": cond("noise", {"severity": 1}, 70.0, None, shift=-10.0),
    "pgd@0": cond("pgd", {"eps": 0}, 79.0, shift=-1.0, probe_metrics={"attack_success_rate": 0.0}),
    "pgd@8": cond("pgd", {"eps": 8}, 5.0, shift=-75.0,
                  probe_metrics={"attack_success_rate": 90.0}),
    "swap": cond("option_swap", {"order": "reversed"}, 80.0, shift=0.0,
                 probe_metrics={"position_bias_clean": None, "position_bias_swapped": None}),
}}


def test_curves_put_clean_at_zero_unless_the_probe_ran_level_zero():
    curves = {c.probe: c for c in figures.curves(SUMMARY)}
    assert [(p.x, p.y, p.condition) for p in curves["noise"].points] == [
        (0.0, 80.0, "clean"), (1.0, 70.0, "noise@1"), (2.0, 60.0, "noise@2")]
    assert curves["noise"].points[1].lo is None and curves["noise"].points[2].lo == 50.0
    assert [p.condition for p in curves["pgd"].points] == ["pgd@0", "pgd@8"]
    assert [(c.probe, [p.y for p in c.points]) for c in figures.attack_curves(SUMMARY)] == \
        [("pgd", [0.0, 90.0])]


def test_missing_values_are_left_out_not_drawn():
    assert figures.position_bias(SUMMARY) == []
    broken = {"conditions": {"clean": cond(None, {}, None), "noise@1": cond("noise",
                                                                           {"severity": 1}, None)}}
    assert figures.curves(broken) == []
    assert [b.label for b in figures.shift_bars(SUMMARY)][:2] == ["noise@2", "noise@1"]


def test_charts_escape_labels_and_draw_empty_cells():
    svg = heatmap(["<script>"], ["a&b"], [[None]], title="t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    assert "<script>" not in bar_chart([("</svg><script>x", 1.0, None, None)], title="t",
                                       x_label="x")
    assert "default-src 'none'" in page("t", "")
