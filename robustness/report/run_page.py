"""``report.html``: one run, self-contained — headline table, robustness curves with interval
bands, shift bars, the category heatmap, position bias, attack curves, the saliency gallery and a
per-question browser (filter by condition, category and right/wrong), in the spirit of
``inspect view``."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Mapping

from robustness.report import figures
from robustness.report.page import data_uri, fmt, fmt_ci, json_script, page, table
from robustness.report.svg import Series, bar_chart, heatmap, line_chart
from robustness.run_outputs import safe_name

REPORT_DIR = "report"  # <run_dir>/report/: pairs.json and images/ the page draws from
RAW_CHARS = 400
METRIC_TITLES = {"set_accuracy": "Set accuracy", "individual_accuracy": "Individual accuracy",
                 "confusion": "Confusion"}


def read_predictions(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every condition's prediction records, by condition name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((run_dir / "predictions").glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        if records:
            out[records[0].get("condition", path.stem)] = records
    return out


def same_pixels(predictions: Mapping[str, list[dict[str, Any]]]) -> dict[str, bool]:
    """Per condition: whether every image it showed is the clean image (text-only probes)."""
    clean = {(r["pair_id"], r["image"]): r["query"]["image_sha256"]
             for r in predictions.get("clean", [])}
    return {name: bool(clean) and all(clean.get((r["pair_id"], r["image"]))
                                      == r["query"]["image_sha256"] for r in records)
            for name, records in predictions.items()}


def curve_section(summary: Mapping[str, Any]) -> str:
    charts = []
    for metric in figures.CURVE_METRICS:
        for curve in figures.curves(summary, metric):
            series = [Series(curve.probe, [(p.x, p.y, p.lo, p.hi) for p in curve.points])]
            charts.append(line_chart(series, title=f"{curve.probe}: {METRIC_TITLES[metric]}",
                                     x_label=curve.param, y_label=f"{metric} (%)"))
    return _section("Robustness curves", charts, "Bands: the bootstrap 95% interval of each "
                    "condition's metric (clean at 0).")


def shift_section(summary: Mapping[str, Any]) -> str:
    charts = []
    for metric in ("set_accuracy", "confusion"):
        bars = figures.shift_bars(summary, metric)
        if bars:
            charts.append(bar_chart([(b.label, b.value, b.lo, b.hi) for b in bars],
                                    title=f"Δ {METRIC_TITLES[metric]} vs clean",
                                    x_label="points (probe − clean), paired 95% CI"))
    return _section("Shifts", charts)


def heatmap_section(summary: Mapping[str, Any]) -> str:
    rows, cols, values = figures.category_matrix(summary)
    if not rows:
        return ""
    return _section("Set accuracy per category", [heatmap(rows, cols, values,
                                                           title="category × condition")])


def bias_section(summary: Mapping[str, Any]) -> str:
    bars = figures.position_bias(summary)
    if not bars:
        return ""
    return _section("Option-swap position bias", [bar_chart(
        [(b.label, b.value, b.lo, b.hi) for b in bars], title="answers on the first shown option",
        x_label="% of answers (50 = no preference)", centre=50.0)])


def attack_section(summary: Mapping[str, Any]) -> str:
    charts = [line_chart([Series(c.probe, [(p.x, p.y, None, None) for p in c.points])],
                         title=f"{c.probe}: attack success", x_label=c.param,
                         y_label="attack success (%)") for c in figures.attack_curves(summary)]
    return _section("Attacks", charts)


def _section(title: str, charts: list[str], note: str = "") -> str:
    if not charts:
        return ""
    cards = "".join(f'<div class="card">{c}</div>' for c in charts)
    note_html = f'<p class="muted">{escape(note)}</p>' if note else ""
    return f"<h2>{escape(title)}</h2>{note_html}<div class=\"grid\">{cards}</div>"


def headline(summary: Mapping[str, Any]) -> str:
    rows = []
    for name, cond in summary.get("conditions", {}).items():
        m, s, ci = cond["overall"], cond.get("shift") or {}, cond.get("ci") or {}
        extras = ", ".join(f"{k} {fmt(v)}" for k, v in figures.scalar_probe_metrics(cond).items())
        rows.append([escape(name), fmt(m["set_accuracy"]), fmt_ci(ci.get("set_accuracy")),
                     fmt(s.get("set_accuracy")), fmt_ci(s.get("set_accuracy_ci"), signed=True),
                     fmt(s.get("mcnemar_p"), 3), fmt(m["individual_accuracy"]),
                     fmt(m["confusion"]), fmt_ci(ci.get("confusion")), fmt(m["invalid_rate"]),
                     fmt(s.get("flip_rate")), escape(extras)])
    return table(["condition", "set acc", "95% CI", "Δ set", "95% CI Δ", "McNemar p",
                  "indiv acc", "confusion", "95% CI", "invalid", "flip %", "probe metrics"], rows)


def provenance(summary: Mapping[str, Any]) -> str:
    bench = summary.get("benchmark") or {}
    return (f"<p>Model <code>{escape(str(summary.get('model_id')))}</code> · mode "
            f"<b>{escape(str(summary.get('mode')))}</b> · benchmark <b>{escape(str(bench.get('name')))}"
            f"</b> ({summary.get('n_pairs')} pairs, sha256 <code>"
            f"{escape(str(bench.get('content_hash', ''))[:12])}</code>) · prompt "
            f"{escape(str(summary.get('prompt')))} · seed {summary.get('seed')} · started "
            f"{escape(str(summary.get('started_at')))} · {fmt(summary.get('elapsed_s'), 1)} s. "
            "Percentages; Δ = probe − clean in points on the same pairs.</p>")


def examples_section(run_dir: Path, summary: Mapping[str, Any], same: Mapping[str, bool]) -> str:
    cards = []
    for name in summary.get("conditions", {}):
        path = run_dir / "examples" / f"{safe_name(name)}.png"
        if name != "clean" and same.get(name):
            cards.append(f'<div class="card muted">{escape(name)}: the same pixels as clean '
                         "(a text-only probe), not drawn again</div>")
        elif path.is_file():
            cards.append(f'<figure class="card"><img alt="{escape(name)}" src="{data_uri(path)}"'
                         f' style="max-width:420px"><figcaption>{escape(name)}</figcaption>'
                         "</figure>")
    return f"<h2>Example pairs</h2><div class=\"grid\">{''.join(cards)}</div>" if cards else ""


def saliency_section(run_dir: Path, summary: Mapping[str, Any]) -> str:
    sal = summary.get("saliency")
    if not sal:
        return ""
    info = run_dir / "saliency" / "images.json"
    images = json.loads(info.read_text(encoding="utf-8")).get("images", []) if info.is_file() else []
    notes: dict[str, list[str]] = {}
    for im in images:
        notes.setdefault(im["pair_id"], []).append(
            f"image {im['image']}: gold {im.get('gold')}, chose {im.get('choice')}, target "
            f"{im.get('target')}")
    cards = []
    for path in sorted((run_dir / "saliency").glob("*.png")):
        caption = f"{path.stem} — " + "; ".join(notes.get(path.stem, []))
        cards.append(f'<figure class="card"><img alt="{escape(path.stem)}" '
                     f'src="{data_uri(path)}" style="max-width:520px"><figcaption>'
                     f"{escape(caption)}</figcaption></figure>")
    head = (f"<p>{escape(str(sal.get('method')))} on {sal.get('n_images')} images · mask energy "
            f"ratio {fmt(sal.get('mask_energy_ratio'))} (model-free "
            f"{fmt(sal.get('model_free_mask_energy_ratio'))}) · pointing game "
            f"{fmt(sal.get('pointing_game'))} of {sal.get('pointing_game_n')} · image reliance "
            f"{fmt(sal.get('image_reliance'))}</p>")
    return f"<h2>Saliency</h2>{head}<div class=\"grid\">{''.join(cards)}</div>"


BROWSER_JS = """
(function(){
const D=JSON.parse(document.getElementById('questions').textContent);
const I=JSON.parse(document.getElementById('images').textContent);
const Q=JSON.parse(document.getElementById('questions-text').textContent);
const sel=id=>document.getElementById(id), out=sel('qlist');
function fill(id,vals){const s=sel(id);for(const v of vals){const o=document.createElement('option');o.value=v;o.textContent=v;s.appendChild(o);}}
fill('fcond',[...new Set(D.map(r=>r.c))]);fill('fcat',[...new Set(D.flatMap(r=>r.cat))].sort());
let limit=100;
function text(tag,cls,t){const e=document.createElement(tag);if(cls)e.className=cls;e.textContent=t;return e;}
function render(){
  const c=sel('fcond').value,k=sel('fcat').value,v=sel('fok').value;
  const rows=D.filter(r=>(!c||r.c===c)&&(!k||r.cat.includes(k))&&(!v||(v==='right')===r.ok));
  sel('qcount').textContent=rows.length+' questions';out.replaceChildren();
  for(const r of rows.slice(0,limit)){
    const d=document.createElement('div');d.className='q';
    const im=r.img&&I[r.img];
    if(im){const e=document.createElement('img');e.src=im;e.alt=r.p+' image '+r.i;d.appendChild(e);}
    else d.appendChild(text('div','muted','(image not kept)'));
    const b=document.createElement('div');
    b.appendChild(text('div','',r.c+' · pair '+r.p+' · image '+r.i+' · '+r.cat.join(', ')));
    b.appendChild(text('div','',Q[r.p]||''));
    b.appendChild(text('div','muted',r.o.map((t,j)=>'ABCDEFGH'[j]+': '+t).join('   ')));
    b.appendChild(text('div',r.ok?'ok':'bad','answered '+(r.a||'invalid')+(r.a!==r.ch?' (= '+(r.ch||'invalid')+' in original order)':'')+' · right answer '+('ABCDEFGH'[r.lm.indexOf(r.g)]||r.g)+(r.ok?' ✔':' ✘')));
    b.appendChild(text('pre','',r.raw));
    if(r.j)b.appendChild(text('div','muted','judge: '+r.j));
    d.appendChild(b);out.appendChild(d);}
  sel('qmore').hidden=rows.length<=limit;}
for(const id of ['fcond','fcat','fok'])sel(id).addEventListener('change',()=>{limit=100;render();});
sel('qmore').addEventListener('click',()=>{limit+=100;render();});
render();document.body.dataset.rendered='yes';
})();
"""


def _judge(raw: Any) -> str | None:
    judge = raw.get("judge") if isinstance(raw, dict) else None
    if not isinstance(judge, dict):
        return None
    return f"{judge.get('name')}: scores {judge.get('scores')}" + (
        f", error {judge['error']}" if judge.get("error") else "")


def question_browser(run_dir: Path, predictions: Mapping[str, list[dict[str, Any]]]) -> str:
    pairs_file = run_dir / REPORT_DIR / "pairs.json"
    pairs = json.loads(pairs_file.read_text(encoding="utf-8")) if pairs_file.is_file() else {}
    image_dir = run_dir / REPORT_DIR / "images"
    images: dict[str, str] = {}
    rows = []
    for name, records in predictions.items():
        for r in records:
            info = pairs.get(r["pair_id"], {})
            key = r["query"]["image_sha256"][:16]
            if key not in images and (image_dir / f"{key}.jpg").is_file():
                images[key] = data_uri(image_dir / f"{key}.jpg")
            raw = r.get("raw")
            text = raw.get("text") if isinstance(raw, dict) and "text" in raw else raw
            cats = info.get("categories") or [[], []]
            rows.append({"c": name, "p": r["pair_id"], "i": r["image"],
                         "cat": list(cats[r["image"] - 1]) if len(cats) == 2 else [],
                         "o": r["query"]["options"], "lm": r["query"]["label_map"],
                         "a": r.get("displayed_choice"), "ch": r.get("choice"),
                         "g": r.get("correct"), "ok": r.get("choice") == r.get("correct"),
                         "raw": str(text if text is not None else r.get("error") or "")[:RAW_CHARS],
                         "j": _judge(raw), "img": key if key in images else None})
    controls = ('<p><label>condition <select id="fcond"><option value="">all</option></select>'
                '</label> <label>category <select id="fcat"><option value="">all</option>'
                '</select></label> <label>answer <select id="fok"><option value="">all</option>'
                '<option>right</option><option>wrong</option></select></label> '
                '<span id="qcount" class="muted"></span></p>')
    return ("<h2>Questions</h2><p class=\"muted\">Each question as the model saw it: the image "
            "(thumbnail), the options in the order shown, its answer and raw output.</p>"
            f"{controls}<div id=\"qlist\"></div><button id=\"qmore\" hidden>more</button>"
            f"{json_script('questions', rows)}{json_script('images', images)}"
            f"{json_script('questions-text', {p: v.get('question', '') for p, v in pairs.items()})}"
            f"<script>{BROWSER_JS}</script>")


def render_run_report(run_dir: Path) -> str:
    """The whole ``report.html`` of the run in ``run_dir`` (from its files alone)."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    predictions = read_predictions(run_dir)
    same = same_pixels(predictions)
    title = f"{summary.get('model')} · {summary.get('mode')} · {summary.get('dataset')}"
    body = "".join([
        f"<h1>Robustness run: {escape(title)}</h1>", provenance(summary),
        "<h2>Conditions</h2>", headline(summary), curve_section(summary), shift_section(summary),
        heatmap_section(summary), bias_section(summary), attack_section(summary),
        saliency_section(run_dir, summary), examples_section(run_dir, summary, same),
        question_browser(run_dir, predictions)])
    return page(f"Robustness: {title}", body)


def write_run_report(run_dir: Path) -> Path:
    """Write ``<run_dir>/report.html`` atomically; returns its path."""
    from robustness.run_outputs import atomic_write

    path = Path(run_dir) / "report.html"
    atomic_write(path, render_run_report(Path(run_dir)))
    return path
