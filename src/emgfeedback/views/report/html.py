"""The session report as one self-contained HTML file (figures as PNG ``data:`` URIs, the
placement figure as inline SVG): opens anywhere without the network, prints on A4."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from emgfeedback import __version__
from emgfeedback.views.report import figures
from emgfeedback.views.report import model
from emgfeedback.views.report.model import TRAINING_AID, Report
from emgfeedback.views.summary import Table

__all__ = ["render_html", "table_html"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:72em;
color:#1b1b1b;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.4em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.syn td{background:#fde8e8}tr.side td{border-top-color:#f4f4f4}
.meta td{text-align:left;border:none;padding:.1em 1em .1em 0}
.green{color:#2e7d32}.amber{color:#b26a00}.red{color:#c62828;font-weight:bold}
tr.good td:last-child{color:#2e7d32;font-weight:bold}
tr.bad td:last-child{color:#c62828;font-weight:bold}
figure{margin:1em 0;break-inside:avoid}figure img{max-width:100%}
figcaption{font-size:.85em;color:#555}
.placement svg{max-width:24em;height:auto;float:right;margin:0 0 1em 1em}
.note{color:#666;font-size:.85em}.summary{font-size:1.02em;line-height:1.45}
.aid{border:1px solid #b26a00;background:#fff8e6;padding:.4em .8em;font-size:.9em}
.clear{clear:both}
@page{size:A4 landscape;margin:12mm}
"""


def table_html(t: Table, heading: bool = True) -> str:
    """A :class:`Table` as HTML (a heading, the table, its notes)."""
    e = html.escape
    th = "".join(f'<th class="l">{e(h)}</th>' if i < t.left else f"<th>{e(h)}</th>"
                 for i, h in enumerate(t.head))
    out = [f"<h2>{e(t.title)}</h2>"] if heading else []
    out.append(f'<table class="{e(t.key)}"><thead><tr>{th}</tr></thead><tbody>')
    for n, row in enumerate(t.rows):
        rc = t.row_classes[n] if n < len(t.row_classes) else ""
        cls = f' class="{e(rc)}"' if rc else ""
        tds = "".join(f'<td class="l">{e(c)}</td>' if i < t.left else f"<td>{e(c)}</td>"
                      for i, c in enumerate(row))
        out.append(f"<tr{cls}>{tds}</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note">{e(n)}</p>' for n in t.notes]
    return "".join(out)


def _meta(lines: Sequence[tuple[str, str]], notes: Sequence[str]) -> str:
    e = html.escape
    ids = {"Patient (pseudonymous id)": ' id="patient"', "Patient": ' id="patient"',
           "Date": ' id="date"'}
    rows = [f"<tr><td>{e(k)}</td><td{ids.get(k, '')}>{e(v)}</td></tr>" for k, v in lines]
    rows += [f'<tr><td>Note</td><td class="red">{e(n)}</td></tr>' for n in notes]
    return '<table class="meta">' + "".join(rows) + "</table>"


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    s = report.session
    e = html.escape
    who = model.who(s)
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>emgfeedback session report {e(who)} {s.recorded_at:%Y-%m-%d}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Session report: {e(who)}</h1>",
        _meta(report.header, s.notes),
        f'<p class="aid" id="training-aid">{e(TRAINING_AID)}</p>',
        "<h2>Summary</h2>",
        '<div class="summary" id="summary">' + "".join(f"<p>{e(x)}</p>" for x in report.summary)
        + "</div>",
    ]
    if report.history is not None:
        parts.append("<h2>Compared with earlier sessions</h2>")
        parts.append('<div class="summary" id="history">'
                     + "".join(f"<p>{e(x)}</p>" for x in report.history.sentences) + "</div>")
        parts += [table_html(ht) for ht in report.history.tables]
    t = report.tables
    if "clinician" in t:
        parts.append(table_html(t["clinician"]))
    parts.append("<h2>Montage</h2>")
    if report.placement:
        parts.append(f'<div class="placement">{report.placement}</div>')
    else:
        parts.append('<p class="note">Electrode placement figure not installed '
                     "(emgfeedback/data/placement.svg); sites are described below.</p>")
    parts.append(table_html(t["montage"], heading=False))
    if "quality" in t:
        parts.append(table_html(t["quality"]))
    else:
        parts.append('<h2>Signal quality at rest</h2><p class="note">No signal stored with this '
                     "session (metrics only).</p>")
    parts.append('<div class="clear"></div>')
    if "artefacts" in t:
        parts.append(table_html(t["artefacts"]))
    parts.append(table_html(t["calibration"]))
    parts.append(table_html(t["exercises"]))
    for key, caption, fig in report.figures:
        data = base64.b64encode(figures.png_bytes(fig, dpi=figures.HTML_DPI)).decode("ascii")
        parts.append(f'<figure id="fig-{e(key)}"><img alt="{e(caption)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{e(caption)}</figcaption>'
                     "</figure>")
    parts.append(table_html(t["reps"]))
    parts.append(f'<p class="note">emgfeedback {e(__version__)}. {e(TRAINING_AID)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)
