"""The HTML shell every report shares: inline CSS, a content security policy that forbids any
request (no network, fonts or external scripts), and small escaping and embedding helpers."""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any, Sequence

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:16px;color:#111}
h1{font-size:20px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}td:last-child{white-space:normal}td:first-child,th:first-child{text-align:left}
th{background:#f6f6f6}.muted{color:#666}.grid{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.card{border:1px solid #ddd;border-radius:6px;padding:6px}figure{margin:0}figcaption{font-size:12px;max-width:420px}
.q{border-bottom:1px solid #eee;padding:6px 0;display:flex;gap:10px}.q img{width:80px;height:80px}
.ok{color:#1a7f37}.bad{color:#c62828}code,pre{font-size:12px;background:#f6f6f6}
pre{white-space:pre-wrap;max-width:560px;margin:2px 0;padding:2px 4px}
"""


def fmt(value: Any, digits: int = 2) -> str:
    """A number for a table cell (``–`` for missing or NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def fmt_ci(ci: Any, signed: bool = False) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or None in ci:
        return "–"
    spec = "+.1f" if signed else ".1f"
    return f"[{ci[0]:{spec}}, {ci[1]:{spec}}]"


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(path: Path) -> str:
    """A local image as a ``data:`` URI (PNG or JPEG by suffix)."""
    kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def json_script(element_id: str, payload: Any) -> str:
    """Data for the page's script, safe inside ``<script>`` (no ``</`` can close it)."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}"
            "</body></html>\n")
