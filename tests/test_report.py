"""Session reports: the numbers of the analysis appear in the HTML, images are real, PDF renders."""

from __future__ import annotations

import base64
import datetime
import json
import io
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _sessions import SMALL, analyse_file, make_source, session_start, write_edf_session
from emgfeedback.stream import Chunk
from emgfeedback.errors import CalibrationError, ConfigError, FileFormatError
from emgfeedback.io.edf.reader import read_edf
from emgfeedback.io.edf.sidecar import analysis_path, sidecar_path
from emgfeedback.views.report import (
    PLACEMENT_ENV,
    build_report,
    envelopes_pct,
    load_session,
    render_html,
    write_report,
)
from emgfeedback.views.summary import SessionInput, placement_svg_path, rep_rows

REPO = Path(__file__).resolve().parents[1]


class _Tables(HTMLParser):
    """Collects the cell texts of every table by its class, and the ``src`` of every image."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.ids: dict[str, str] = {}
        self._id: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"])
        if a.get("id"):
            self._id = a["id"]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._id:
            self.ids[self._id] = data.strip()
            self._id = None


@pytest.fixture(scope="module")
def edf(tmp_path_factory) -> tuple[Path, dict]:
    """A simulated 4-channel clinic session recorded as EDF+ with its sidecar, and what
    ``analyze`` gives for it (run here, independently of the report)."""
    d = tmp_path_factory.mktemp("edf")
    path = d / "P-001_2025-01-06.edf"
    src = make_source(seed=3, synkinesis_prob=0.5, duration=100.0, channels=SMALL)
    write_edf_session(path, src, patient="P-001", start=session_start(0))
    return path, analyse_file(path)


@pytest.fixture(scope="module")
def session(edf) -> SessionInput:
    return load_session(edf[0])  # reads the file and runs analyze itself


@pytest.fixture(scope="module")
def written(session, tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("report")
    out, pdf = d / "report.html", d / "report.pdf"
    write_report(session, out, pdf)
    return out, pdf


def _close(text: str, value: float | None, decimals: int) -> bool:
    if value is None:
        return text == "–"
    return abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-9


def test_report_holds_the_numbers_of_analyze(edf, session, written):
    analysis = edf[1]
    assert session.analysis == analysis
    p = _Tables()
    p.feed(written[0].read_text(encoding="utf-8"))
    assert p.ids["patient"] == "P-001"
    assert p.ids["date"] == "2025-01-06 09:30"
    reps = p.tables["reps"]
    head, body = reps[0], reps[1:]
    col = {h: i for i, h in enumerate(head)}
    analysis_reps = analysis["reps"]
    assert len(body) == len(analysis_reps) >= 10
    assert {r["exercise"] for r in analysis_reps} == {"smile", "eye_closure"}
    sym_by_rep = {(s["rep"], s["exercise"]): s["ratio"] for s in analysis["symmetry"]}
    # One rep per cue, numbered from 1 as analyze numbers them; its sides listed under it (the
    # rep's own cells only on its first line).
    assert [r["rep"] for r in analysis_reps][:2] == [1, 1]
    shared = ("rep", "exercise", "onset (s)", "duration (s)", "symmetry")
    last: dict[str, str] = {}
    for row, rep in zip(body, analysis_reps):
        first = row[col["rep"]] != ""
        assert first == (last.get("rep") != str(rep["rep"]))
        if first:
            last = {k: row[col[k]] for k in shared}
        else:
            assert all(row[col[k]] == "" for k in shared)
            row = list(row)
            for k in shared:
                row[col[k]] = last[k]
        assert row[col["rep"]] == str(rep["rep"])
        assert row[col["exercise"]] == rep["exercise"]
        assert row[col["side"]] == rep["side"]
        assert row[col["target"]] == rep["target"]
        assert _close(row[col["onset (s)"]], rep["onset_s"], 2)
        assert _close(row[col["duration (s)"]], rep["offset_s"] - rep["onset_s"], 2)
        assert _close(row[col["target peak %MVC"]], rep["target_peak_pct_mvc"], 1)
        assert _close(row[col["time in band (s)"]], rep["time_in_band_s"], 2)
        assert _close(row[col["isolation"]], rep["isolation"], 2)
        worst = max(rep["cocontraction"], key=rep["cocontraction"].get)
        assert row[col["worst quiet region"]] == worst
        assert _close(row[col["co-contraction"]], rep["cocontraction"][worst], 1)
        n_events = sum(1 for e in analysis["events"]
                       if e["rep"] == rep["rep"] and e["channel"][0] == rep["side"])
        assert int(row[col["synkinesis events"]]) == n_events
        assert (n_events > 0) == rep["synkinesis"]
        assert _close(row[col["symmetry"]], sym_by_rep.get((rep["rep"], rep["exercise"])), 2)
    # Every event of analyze is counted in exactly one rep row, and there are some.
    assert sum(int(r[col["synkinesis events"]]) for r in body) == len(analysis["events"]) > 0
    cal = {r[0]: r for r in p.tables["calibration"][1:]}
    assert set(cal) == set(analysis["calibration"]) == set(analysis["channels"])
    for ch, c in analysis["calibration"].items():
        assert _close(cal[ch][1], c["rest_mean_uv"], 2)
        assert _close(cal[ch][2], c["rest_sd_uv"], 2)
        assert _close(cal[ch][3], c["mvc_uv"], 1)
        assert cal[ch][5] == "rest, mvc"
        trials = [float(v) for v in cal[ch][6].split(",")]
        assert len(trials) == len(c["mvc_trials_uv"]) == 3
        assert all(_close(f"{v:.1f}", w, 1) for v, w in zip(trials, c["mvc_trials_uv"]))
    ex = {r[0]: r for r in p.tables["exercises"][1:]}
    for name in {r["exercise"] for r in analysis_reps}:
        aff = [r for r in analysis_reps if r["exercise"] == name and r["side"] == "L"]
        other = [r for r in analysis_reps if r["exercise"] == name and r["side"] == "R"]
        assert int(ex[name][1]) == len(aff)
        assert int(ex[name][2]) == sum(r["synkinesis"] for r in aff)
        assert int(ex[name][3]) == sum(1 for e in analysis["events"]
                                       if e["exercise"] == name and e["channel"][0] == "L")
        assert _close(ex[name][4], np.mean([r["target_peak_pct_mvc"] for r in aff]), 1)
        assert _close(ex[name][5], np.mean([r["target_peak_pct_mvc"] for r in other]), 1)
        ratios = [s["ratio"] for s in analysis["symmetry"]
                  if s["exercise"] == name and s["ratio"] is not None]
        assert ratios and _close(ex[name][9], float(np.mean(ratios)), 2)
    # Signal quality: one row per channel, each with a traffic light.
    q = p.tables["quality"][1:]
    assert [r[0] for r in q] == session.channels
    assert all(re.match(r"(green|amber|red): ", r[4]) for r in q)
    # Artefacts, electrodes off and blinks: one row per channel, as analyze found them.
    art = {r[0]: r for r in p.tables["artefacts"][1:]}
    assert list(art) == session.channels
    for ch, qa in analysis["quality"].items():
        assert int(art[ch][2]) == len(qa["periods"])
        assert _close(art[ch][3], qa["artefact_s"], 1)
        assert int(art[ch][5]) == sum(1 for e in analysis["events"]
                                      if e["channel"] == ch and e["type"] == "blink")


def test_artefact_table_shows_what_the_detector_set_aside(session):
    """Artefact periods (with their reasons), electrode-off time, blinks and withdrawn alerts
    per channel reach the report (issue 11: shown in the report, not only in the JSON)."""
    from dataclasses import replace

    from emgfeedback.views.report.model import _artefact_table

    ch = session.channels[0]
    analysis = dict(session.analysis)
    analysis["quality"] = {ch: {"artefact_s": 8.25, "electrode_off_s": 8.0, "periods": [
        {"onset_s": 100.0, "offset_s": 108.0, "reason": "flat line"},
        {"onset_s": 120.0, "offset_s": 120.25, "reason": "motion, flat line"}]}}
    analysis["events"] = [
        {"type": "blink", "channel": ch, "retracted": True},
        {"type": "blink", "channel": ch, "retracted": True},
        {"type": "synkinesis", "channel": ch, "retracted": False}]
    table = _artefact_table(replace(session, analysis=analysis))
    assert table is not None
    rows = {r[0]: r for r in table.rows}
    assert rows[ch] == (ch, "flat line, motion", "2", "8.2", "8.0", "2", "2")
    other = session.channels[1]
    assert rows[other][1:] == ("–", "0", "–", "–", "0", "0")


def test_every_image_is_a_real_png(written):
    p = _Tables()
    p.feed(written[0].read_text(encoding="utf-8"))
    assert len(p.images) >= 4
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        img = Image.open(io.BytesIO(raw))
        img.load()
        assert img.width > 300 and img.height > 150
        px = np.asarray(img.convert("L"))
        assert (px < 200).mean() > 0.005  # something is drawn


def test_packaged_placement_figure_is_the_only_copy_and_is_embedded(written):
    path = placement_svg_path()
    assert path is not None and path.name == "placement.svg"
    assert path.resolve() == (REPO / "src" / "emgfeedback" / "data" / "placement.svg").resolve()
    copies = [p for p in REPO.rglob("placement.svg")
              if not {".venv", "build", ".git"} & set(p.relative_to(REPO).parts)
              and "site-packages" not in p.parts]
    assert copies == [REPO / "src" / "emgfeedback" / "data" / "placement.svg"]
    assert "src/emgfeedback/data/placement.svg" in (REPO / "hardware" / "README.md").read_text()
    text = written[0].read_text(encoding="utf-8")
    m = re.search(r"<svg\b.*?</svg>", text, re.DOTALL)
    assert m is not None
    root = ET.fromstring(m.group(0))
    assert root.tag.endswith("svg")
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and "electrode placement" in (title.text or "").lower()
    # the codes of the regions in the montage are on the figure
    assert all(code in m.group(0) for code in ("ZYG", "OOC"))


def test_placement_figure_override_is_cleaned_or_note(session, tmp_path, monkeypatch):
    svg = tmp_path / "placement.svg"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" '
                   'height="80"><circle cx="40" cy="40" r="5"/><script>alert(1)</script></svg>')
    monkeypatch.setenv(PLACEMENT_ENV, str(svg))
    bare = SessionInput(session.patient_id, session.recorded_at, session.source, session.analysis,
                        session.affected_side)
    text = render_html(build_report(bare))
    m = re.search(r"<svg\b.*?</svg>", text, re.DOTALL)
    assert m is not None
    root = ET.fromstring(m.group(0))
    assert root.tag.endswith("svg") and "script" not in m.group(0) and "circle" in m.group(0)
    import emgfeedback.views.report.placement as report_placement

    monkeypatch.setattr(report_placement, "placement_svg_path", lambda: None)
    text = render_html(build_report(bare))
    assert "<svg" not in text and "placement figure not installed" in text


def test_pdf_renders_to_non_blank_pages(written, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm not found: install poppler-utils to render the PDF")
    pdf = written[1]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True,
                   timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 6
    for page in pages:
        px = np.asarray(Image.open(page).convert("L"))
        assert (px < 128).mean() > 0.002, f"{page.name} is blank"


def test_session_without_calibration_is_refused_and_nothing_overwritten(session, tmp_path):
    analysis = dict(session.analysis, calibration={})
    bare = SessionInput(session.patient_id, session.recorded_at, session.source, analysis,
                        session.affected_side)
    out = tmp_path / "report.html"
    out.write_text("earlier report")
    with pytest.raises(CalibrationError, match="no calibration") as exc:
        write_report(bare, out)
    assert "\n" not in str(exc.value)
    assert out.read_text() == "earlier report"


def test_recording_without_calibration_periods_is_refused(tmp_path, capsys):
    """A file with reps but no rest/mvc periods: analyze falls back to its automatic estimate,
    which the report refuses in one line (the CLI too), leaving an earlier report alone."""
    from emgfeedback.cli import main

    path = tmp_path / "nocal.edf"
    src = make_source(seed=6, duration=40.0, channels=SMALL, scenario="smile-synkinesis",
                      calibration=False)
    write_edf_session(path, src, patient="P-003", start=session_start(2))
    s = load_session(path)
    assert {c["mvc_source"] for c in s.analysis["calibration"].values()} == {"auto"}
    out = tmp_path / "nocal.report.html"
    out.write_text("earlier report")
    with pytest.raises(CalibrationError, match="no calibration .all channels"):
        write_report(s, out)
    assert main(["report", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nocal.edf: session has no calibration" in err
    assert out.read_text() == "earlier report"


@pytest.mark.parametrize("bad", ["Jane Doe", "", "x" * 65, "../etc"])
def test_names_are_not_patient_ids(session, bad):
    with pytest.raises(ConfigError, match="pseudonymous"):
        SessionInput(bad, session.recorded_at, session.source, session.analysis)


def test_rep_rows_count_events_per_side():
    analysis = {"channels": ["L-ZYG", "L-OOC", "R-ZYG", "R-OOC"], "reps": [
        {"exercise": "smile", "side": "L", "target": "L-ZYG", "onset_s": 1.0, "offset_s": 4.0,
         "target_peak_pct_mvc": 40.0, "isolation": 0.5, "cocontraction": {"L-OOC": 30.0},
         "synkinesis": True},
        {"exercise": "smile", "side": "R", "target": "R-ZYG", "onset_s": 1.0, "offset_s": 4.0,
         "target_peak_pct_mvc": 60.0, "isolation": 0.9, "cocontraction": {"R-OOC": 4.0},
         "synkinesis": False}],
        "events": [{"type": "synkinesis", "channel": "L-OOC", "trigger": "L-ZYG",
                    "exercise": "smile", "onset_s": 1.5, "offset_s": 3.0, "alert_s": 1.6,
                    "peak_pct_mvc": 30.0}]}
    rows = rep_rows(analysis)
    assert [r.events for r in rows] == [1, 0]
    assert rows[0].cocontraction_channel == "L-OOC" and rows[0].time_in_band_s is None


# ----------------------------------------------------------------------------- EDF+ sessions
def test_load_session_takes_metadata_from_the_sidecar(edf, session):
    from emgfeedback.vocabulary import REGIONS

    sc = read_edf(edf[0]).sidecar
    assert sc["patient"] == "P-001" and sc["status"] == "complete"
    assert session.patient_id == "P-001"
    assert session.recorded_at == session_start(0)
    assert session.affected_side == "L"  # the simulated board records it in source.extra
    assert session.montage["L-ZYG"] == REGIONS["ZYG"].site
    assert set(session.montage) == {"L-ZYG", "L-OOC", "R-ZYG", "R-OOC"}
    assert session.status == "complete" and session.notes == ()
    assert session.signal is not None and session.signal.n_samples == 100_000
    assert session.duration_s == pytest.approx(100.0)


def test_edf_of_another_tool_without_sidecar_uses_the_header(edf, tmp_path):
    plain = tmp_path / "plain.edf"
    plain.write_bytes(edf[0].read_bytes())
    s = load_session(plain, edf[1])
    assert s.patient_id == "P-001" and s.recorded_at == session_start(0)
    assert s.montage == {} and s.status == ""
    # no patient anywhere: refused in one line
    raw = bytearray(plain.read_bytes())
    raw[8:88] = b"X X X X".ljust(80)
    plain.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="no pseudonymous patient id") as exc:
        load_session(plain, edf[1])
    assert "\n" not in str(exc.value)


def test_recording_that_was_never_closed_is_reported_as_recovered(edf, tmp_path):
    crashed = tmp_path / "crashed.edf"
    raw = bytearray(edf[0].read_bytes())
    raw[236:244] = b"-1".ljust(8)
    crashed.write_bytes(bytes(raw[:-1000]))  # and a partial last record
    sc = json.loads(sidecar_path(edf[0]).read_text())
    sc.update(status="recording", slots=None)
    sidecar_path(crashed).write_text(json.dumps(sc))
    s = load_session(crashed, edf[1])
    assert s.status == "recording" and s.notes and s.notes[0].startswith("recovered")
    assert s.signal is not None and s.signal.n_samples < 100_000
    text = render_html(build_report(s))
    assert "recovered: header says -1 records" in text


def test_gaps_stay_gaps_in_the_envelopes(tmp_path):
    from emgfeedback.io.edf.recorder import Recorder

    src = make_source(seed=4, duration=100.0, channels=SMALL)
    path = tmp_path / "gap.edf"
    rec = Recorder(path, src.info, patient="P-002", start_time=session_start(1))
    chunk = src.read_all()
    lost = (40_000, 42_500)  # 2.5 s lost in transmission
    for a, b in ((0, lost[0]), (lost[1], len(chunk))):
        rec.write(Chunk(chunk.data[a:b], a, chunk.fs, chunk.channels, chunk.status,
                        tuple(m for m in chunk.markers if a <= m.sample < b)))
    rec.close()
    s = load_session(path)
    assert s.signal is not None and s.signal.gaps == [(lost[0], lost[1] - lost[0])]
    scan = envelopes_pct(s)
    assert scan.lost_samples == 2500 and scan.fs == pytest.approx(100.0)
    gap_bins = scan.envelope_pct[lost[0] // 10: lost[1] // 10]
    assert np.isnan(gap_bins).all()
    ok = np.delete(scan.envelope_pct, np.s_[lost[0] // 10: lost[1] // 10], axis=0)
    assert np.isfinite(ok).all()
    report = build_report(s)
    assert report.lost_samples == 2500
    assert "Samples lost in transmission: 2500." in render_html(report)


def test_live_session_in_memory_becomes_a_session(edf):
    from emgfeedback.sources.simulated import SIM_RANGE_UV
    from emgfeedback.views.report import recording_from_chunk, session_from_recording

    src = make_source(seed=3, synkinesis_prob=0.5, duration=100.0, channels=SMALL)
    chunk = src.read_all()
    rec = recording_from_chunk(chunk, "live", SIM_RANGE_UV,
                               sidecar={"patient": "P-001", "started": "2025-01-06T09:30:00+01:00",
                                        "affected_side": "L"})
    s = session_from_recording(rec, edf[1])
    assert (s.patient_id, s.recorded_at, s.affected_side) == ("P-001", session_start(0), "L")
    assert s.signal is rec and rec.markers[0].text == "rest"
    with pytest.raises(FileFormatError, match="no pseudonymous patient id"):
        session_from_recording(recording_from_chunk(chunk), edf[1])


def test_plotted_envelopes_are_what_analyze_measured(session):
    """The report's %MVC envelopes come from the chain analyze replays the file through: within
    each rep the plotted target peaks at the rep's target_peak_pct_mvc (10 ms bin means)."""
    scan = envelopes_pct(session)
    for rep in session.analysis["reps"]:
        j = session.channels.index(rep["target"])
        a, b = int(rep["onset_s"] * scan.fs), int(rep["offset_s"] * scan.fs) + 1
        peak = float(np.nanmax(scan.envelope_pct[a:b, j]))
        assert rep["target_peak_pct_mvc"] - 2.0 <= peak <= rep["target_peak_pct_mvc"] + 0.01


def test_analysis_saved_after_the_session_is_used_and_other_programs_noted(edf, tmp_path):
    """The GUI keeps <name>-analysis.json (the session's program) beside the recording: report and
    history use it; without it a sidecar naming another program gets a note in the report."""
    import shutil


    path = tmp_path / "gui.edf"
    shutil.copy(edf[0], path)
    sc = json.loads(sidecar_path(edf[0]).read_text())
    sc["program"] = {"name": "oral-ocular", "affected_side": "L"}
    sidecar_path(path).write_text(json.dumps(sc))
    s = load_session(path)
    assert dict(s.analysis, file="") == dict(edf[1], file="") and s.program == "oral-ocular"
    today = f"{datetime.date.today():%Y-%m-%d}"
    assert s.analysis_note.startswith(f"analysis: analysed by 'emgfeedback analyze' on {today}")
    assert "while the session ran 'oral-ocular'" in s.analysis_note
    # A saved analysis that 'analyze' wrote is not claimed to come from the window ...
    saved = json.loads(json.dumps(edf[1]))
    saved["program"] = "oral-ocular"
    saved["reps"][0]["target_peak_pct_mvc"] = 12.3
    analysis_path(path).write_text(json.dumps(saved))
    assert analysis_path(path).name == "gui-analysis.json"
    s = load_session(path)
    assert s.analysis == saved
    assert s.analysis_note == (f"analysis: gui-analysis.json, analysed by 'emgfeedback analyze' "
                               f"on {today}")
    html_text = render_html(build_report(s))
    assert "12.3" in html_text and "written by the window" not in html_text
    # ... only one the window wrote when the session stopped ("origin": "session").
    saved["origin"] = "session"
    analysis_path(path).write_text(json.dumps(saved))
    s = load_session(path)
    assert s.analysis_note == ("analysis: gui-analysis.json, written by the window when the "
                               "session stopped")
    assert "12.3" in render_html(build_report(s))


def test_pdf_has_the_placement_figure_or_says_where_it_is(session, tmp_path, monkeypatch):
    from emgfeedback.views.report import pdf as report_mod

    report = build_report(session)
    png = report_mod.placement_png(report.placement)

    def placement_images(pages):
        return [im for p in pages for im in report_mod.page_images(p)
                if im.shape[:2] == img_shape]

    if shutil.which("rsvg-convert") is not None:
        assert png is not None
        img = Image.open(io.BytesIO(png))
        assert img.width > 600 and img.height > 700  # 640 x 800 px at 96 dpi, drawn at 150 dpi
        img_shape = (img.height, img.width)
        assert len(placement_images(report_mod.pages(report))) == 1
    else:
        assert png is None
    # Without rsvg-convert: the PDF says where the figure is.
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert report_mod.placement_png(report.placement) is None
    texts = [t for p in report_mod.pages(report) for t in report_mod.page_lines(p)]
    assert any("rsvg-convert" in t for t in texts)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """An 8-channel session (every region of the default montage) with a previous session in
    the history and the therapist's notes and grading in its sidecar; report HTML and PDF."""
    from _sessions import make_session

    from emgfeedback.views.history import store_session
    from emgfeedback.views.history.progress import context_from_db

    d = tmp_path_factory.mktemp("full")
    db = d / "h.sqlite"
    store_session(make_session(seed=7, patient="P-042", day=0, duration=150.0,
                               with_signal=False), db)
    path = d / "P-042_day7.edf"
    clinician = {"notes": "Eye still pulls with the smile; practise slower.",
                 "house_brackmann": 3, "sunnybrook_synkinesis": 7}
    write_edf_session(path, make_source(seed=8, synkinesis_prob=0.5, duration=150.0), "P-042",
                      session_start(7), clinician=clinician)
    s = load_session(path)
    out, pdf = d / "r.html", d / "r.pdf"
    report = write_report(s, out, pdf, history=context_from_db(s, db))
    s.signal.close()
    return report, out, pdf


def _pdf_text(pdf: Path) -> list[str]:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext not found: install poppler-utils (scripts/setup.sh does)")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    return text.split("\f")[:-1]


def test_pdf_text_holds_every_row_of_every_table(full_report):
    """Every row of every table of the HTML report is in the PDF's text (pdftotext), the
    calibration rows of all 8 channels among them; every page is numbered and carries the
    training-aid statement; the layout is compact."""
    report, out, pdf = full_report
    pages = _pdf_text(pdf)
    norm = lambda s: " ".join(s.split())  # noqa: E731
    lines = {norm(ln) for p in pages for ln in p.splitlines()}
    p = _Tables()
    p.feed(out.read_text(encoding="utf-8"))
    tables = {k: v for k, v in p.tables.items() if k != "meta"}
    assert set(tables) == {"previous", "clinician", "montage", "quality", "artefacts", "calibration",
                           "exercises", "reps"}
    n_rows = 0
    for key, rows in tables.items():
        for row in rows:  # the header and every body row
            want = norm(" ".join(c for c in row if c))
            assert want in lines, f"table {key}: row {want!r} not in the PDF"
            n_rows += 1
    assert n_rows > 40
    cal = [r[0] for r in tables["calibration"][1:]]
    assert cal == report.session.channels and "R-OOR" in cal and len(cal) == 8
    # page numbers and the statement on every page; no near-empty page but the last
    n = len(pages)
    for i, page in enumerate(pages, start=1):
        assert f"page {i} of {n}" in page
        assert "not a diagnostic medical device" in norm(page)
    assert n <= 8
    d = pdf.parent / "pages"
    d.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "20", "-gray", "-png", str(pdf), str(d / "p")], check=True,
                   timeout=60)
    for png in sorted(d.glob("p-*.png"))[:-1]:
        px = np.asarray(Image.open(png).convert("L"))
        body = px[: int(px.shape[0] * (1 - 0.75 / 8.27))]  # above the footer
        inked = np.flatnonzero((body < 200).any(axis=1))
        assert inked[-1] > 0.6 * len(body), f"{png.name}: content ends in the upper part"


def test_report_says_what_a_therapist_needs_in_plain_words(full_report):
    report, out, _pdf = full_report
    html_text = out.read_text(encoding="utf-8")
    s = report.session
    assert s.clinician == {"notes": "Eye still pulls with the smile; practise slower.",
                           "house_brackmann": 3, "sunnybrook_synkinesis": 7}
    p = _Tables()
    p.feed(html_text)
    grading = {r[0]: r[1] for r in p.tables["clinician"][1:]}
    assert grading == {"House-Brackmann grade": "3", "Sunnybrook synkinesis score": "7"}
    assert "Eye still pulls with the smile" in html_text
    assert "training aid for facial rehabilitation, not a diagnostic medical device" in html_text
    summary = " ".join(report.summary)
    n_cues = len({r["rep"] for r in s.analysis["reps"]})
    assert summary.startswith(f"{n_cues} reps of ") and "left side" in summary
    k = sum(m.n_synkinesis_reps for m in report.metrics)
    assert (f"in {k} of " in summary) if k else ("no synkinesis" in summary)
    history = " ".join(report.history.sentences)
    assert "Previous session: 2025-01-06 09:30 (7 days earlier" in history
    assert "Too early for a trend: 2 sessions on 2 days" in history
    prev = p.tables["previous"]
    assert prev[0][3] == "previous (2025-01-06)" and len(prev) > 4
    assert all(r[4] in ("better", "worse", "about the same", "–") for r in prev[1:])


def test_clinician_entries_are_validated_one_by_one(edf, tmp_path):
    path = tmp_path / "c.edf"
    shutil.copy(edf[0], path)
    sc = json.loads(sidecar_path(edf[0]).read_text())
    sc["clinician"] = {"notes": "ok", "house_brackmann": 9, "sunnybrook_synkinesis": 4,
                       "mood": "fine"}
    sidecar_path(path).write_text(json.dumps(sc))
    s = load_session(path, edf[1], keep_signal=False)
    assert s.clinician == {"notes": "ok", "house_brackmann": None, "sunnybrook_synkinesis": 4}
    assert any("house_brackmann must be a whole number 1-6" in n for n in s.notes)
    assert any("unknown key 'mood'" in n for n in s.notes)


def test_rest_quality_is_not_fooled_by_a_blink_at_the_end_of_rest():
    """The quality at rest is the median over the rest period: a blink just before its end (the
    running RMS still holds it) does not read as a noisy baseline; a noisy channel does."""
    from emgfeedback.dsp.quality import assess
    from emgfeedback.stream import Chunk, Marker, Status
    from emgfeedback.views.report import recording_from_chunk

    fs = 1000.0
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 2.0, (12000, 3))
    x[:, 2] *= 10.0  # R-OOC: a noisy electrode (20 µV RMS)
    blink = slice(9750, 9900)
    x[blink, 0] += rng.normal(0.0, 120.0, 150)  # L-OOC blinks 0.25 s before the rest ends
    chunk = Chunk(x, 0, fs, ("EMG L-OOC", "EMG L-ZYG", "EMG R-OOC"), Status(),
                  (Marker(0, 10000, "rest"),))
    rec = recording_from_chunk(chunk, "blink.edf")
    s = SessionInput("P-001", session_start(0), "blink.edf",
                     {"channels": ["L-OOC", "L-ZYG", "R-OOC"], "reps": []}, signal=rec)
    lights = assess(envelopes_pct(s).rest_quality, at_rest=True)
    assert [lt[0] for lt in lights] == ["green", "green", "amber"], lights


def test_envelopes_from_the_analysis_pass_are_the_reports_own(session):
    """When the report runs ``analyze`` itself, the envelope bins, rail counts and the quality at
    rest come from the analysis' pass over the file (the chain runs once, plus the rest period
    for the quality): exactly what the report's own pass over the file gives."""
    from dataclasses import replace

    from emgfeedback.views.report.bins import EnvelopeBins

    assert isinstance(session.signal_bins, EnvelopeBins)
    assert session.signal is not None and session.signal_bins.samples == session.signal.n_samples
    reused = envelopes_pct(session)
    own = envelopes_pct(replace(session, signal_bins=None))
    assert np.array_equal(reused.envelope_pct, own.envelope_pct, equal_nan=True)
    assert np.array_equal(reused.saturated, own.saturated)
    for f in ("rms_uv", "mains_uv", "mains_ratio", "diff_rms_uv", "clip_fraction"):
        assert np.array_equal(getattr(reused.rest_quality, f), getattr(own.rest_quality, f)), f
    # a saved analysis (or the history, which keeps no signal) collects nothing
    assert load_session(session.signal.path, analysis=dict(session.analysis)).signal_bins is None


def test_envelope_bins_do_not_depend_on_the_blocks():
    """Bins fed in blocks that split bins (odd sizes) equal bins fed whole bins at a time."""
    from emgfeedback.views.report.bins import EnvelopeBins

    rng = np.random.default_rng(1)
    env = np.ascontiguousarray(rng.random((3, 10_007))).T  # the chain's (samples, channels) view
    raw = rng.normal(0.0, 100.0, (10_007, 3))
    raw[5, 1] = raw[9000, 2] = 1000.0  # two samples on the rails
    whole, split = (EnvelopeBins(1000.0, 10_007, 3, (-1000.0, 1000.0)) for _ in range(2))
    whole.add(0, env, raw)
    s = 0
    for n in (7, 20, 333, 1000, 2000, 6647):
        split.add(s, env[s:s + n], raw[s:s + n])
        s += n
    assert s == 10_007 and whole.fs == 100.0
    assert np.allclose(whole.envelope(), split.envelope(), rtol=1e-13, atol=0)
    assert whole.envelope().shape == (1001, 3)
    assert whole.saturated.tolist() == split.saturated.tolist() == [0, 1, 1]


def test_pdf_table_lines_outside_the_core_font_keep_their_characters(tmp_path):
    """A table line that is not in cp1252 (the core fonts' encoding) is drawn in the embedded
    monospaced font; the other lines in Courier; on a raster renderer all are drawn as text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_pdf import PdfPages

    from emgfeedback.views.report import pdf as report_pdf
    from emgfeedback.views.summary import Table

    flow = report_pdf._Flow()
    flow.table(Table("t", "Lines", ("channel", "note"),
                     (("L-ZYG", "µV plain"), ("R-OOC", "ratio → 1"))), max_size=9)
    out = tmp_path / "t.pdf"
    with PdfPages(out) as pdf:
        for page in flow.pages:
            pdf.savefig(page)
    FigureCanvasAgg(flow.pages[0]).draw()  # the raster path draws the same lines
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext not found: install poppler-utils (scripts/setup.sh does)")
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "L-ZYG" in text and "µV plain" in text and "ratio → 1" in text


def test_pdf_paragraphs_in_helvetica_keep_other_characters_and_their_places(tmp_path):
    """Paragraph, heading and footer lines in cp1252 are written in Helvetica (a core font,
    nothing embedded), a line with other characters in the embedded DejaVu Sans with every
    character; each line keeps the baseline a DejaVu Sans Text had (evenly spaced lines), and
    the footer's right-aligned page number ends at the right margin."""
    from matplotlib.backends.backend_pdf import PdfPages

    from emgfeedback.views.report import pdf as report_pdf

    flow = report_pdf._Flow()
    flow.heading("Plain heading")
    flow.para("A plain paragraph (cp1252: µV, 50 %, café).")
    flow.para("Another one: ratio → 1, ≤ 2 %MVC, Δ 0.3.")
    flow.para("Third line")  # no descender, no parenthesis
    flow.para("Costs $5 and $6.")  # a Text would read $...$ as mathtext: drawn as Text
    flow.footers("footer · P-0001")
    assert report_pdf.page_lines(flow.pages[0])[:3] == [
        "Plain heading", "A plain paragraph (cp1252: µV, 50 %, café).",
        "Another one: ratio → 1, ≤ 2 %MVC, Δ 0.3."]
    out = tmp_path / "p.pdf"
    with PdfPages(out) as pdf:
        for page in flow.pages:
            pdf.savefig(page)
    raw = out.read_bytes()
    assert b"/Helvetica-Bold" in raw and b"/Helvetica" in raw and b"DejaVuSans" in raw
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext not found: install poppler-utils (scripts/setup.sh does)")
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    for s in ("Plain heading", "A plain paragraph (cp1252: µV, 50 %, café).",
              "Another one: ratio", "footer · P-0001", "page 1 of 1", "Costs"):
        assert s in text
    # (matplotlib writes a DejaVu glyph beyond its first 256 as a drawing: text extraction
    # finds it apart from its line, as it did before the core fonts)
    assert all(c in text for c in "→≤Δ")
    # baselines: the same for the same size whatever the characters (Helvetica's glyph heights
    # are not taken); the page number ends at the right margin
    bbox = subprocess.run(["pdftotext", "-bbox", str(out), "-"], capture_output=True,
                          text=True).stdout
    import re

    words = {m[4]: (float(m[0]), float(m[1]), float(m[2]), float(m[3])) for m in re.findall(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)<', bbox)}
    line_step = 9.5 * 1.45  # points between two 9.5 pt lines
    assert words["Third"][3] - words["A"][3] == pytest.approx(2 * line_step, abs=0.01)
    assert words["of"][2] < report_pdf.PAGE_W * 72 - report_pdf.MARGIN_X * 72 + 0.5
    assert words["1"][2] == pytest.approx(report_pdf.PAGE_W * 72 - report_pdf.MARGIN_X * 72,
                                          abs=0.5)


def test_prefetched_pass_gives_the_reports_own_envelopes(edf, session):
    """``load_session(prefetch=True)`` with an analysis given (nothing collected it) starts the
    report's pass over the signal in a thread: the same envelopes, rail counts and rest quality
    as the report's own pass; ``close_session`` waits for it before closing the file."""
    from dataclasses import replace

    from emgfeedback.views.report import close_session
    from emgfeedback.views.report.bins import SignalPass

    s = load_session(edf[0], analysis=dict(session.analysis), prefetch=True)
    try:
        assert isinstance(s.signal_bins, SignalPass)
        got = envelopes_pct(s)
        own = envelopes_pct(replace(s, signal_bins=None))
        assert np.array_equal(got.envelope_pct, own.envelope_pct, equal_nan=True)
        assert np.array_equal(got.saturated, own.saturated)
        assert np.array_equal(got.rest_quality.rms_uv, own.rest_quality.rms_uv)
        assert got.fs == own.fs == pytest.approx(100.0)
    finally:
        close_session(s)
    # other settings than the default: the prefetched pass is waited for and not used
    s = load_session(edf[0], analysis=dict(session.analysis), prefetch=True)
    try:
        half = envelopes_pct(s, bin_s=0.02)
        assert half.fs == pytest.approx(50.0)
    finally:
        close_session(s)


def test_unused_prefetched_pass_is_stopped_when_the_session_closes(edf, session):
    """A report that fails or is interrupted before it used the prefetched pass does not wait
    for the whole pass over the file: ``close_session`` stops it at the next block."""
    import threading

    from emgfeedback.views.report import bins as report_bins
    from emgfeedback.views.report import close_session

    blocks: list[int] = []
    gate = threading.Event()
    real = report_bins.EnvelopeBins.add

    def slow_add(self, start, env, raw):  # type: ignore[no-untyped-def]
        blocks.append(start)
        gate.wait(5.0)  # the first block holds until the session is closed
        return real(self, start, env, raw)

    report_bins.EnvelopeBins.add = slow_add  # type: ignore[method-assign]
    try:
        s = load_session(edf[0], analysis=dict(session.analysis), prefetch=True)
        assert isinstance(s.signal_bins, report_bins.SignalPass)
        pas = s.signal_bins
        while not blocks:
            threading.Event().wait(0.01)
        threading.Timer(0.2, gate.set).start()
        close_session(s)
        assert len(blocks) == 1  # stopped after the block it was in
        with pytest.raises(report_bins.PassStopped):
            pas.result()
    finally:
        gate.set()
        report_bins.EnvelopeBins.add = real  # type: ignore[method-assign]


def test_pdf_figures_are_compressed_once(session, tmp_path, monkeypatch):
    """The figures' images compressed early for the PDF are the ones its writer embeds (the
    same pixels to the byte), so matplotlib does not compress them a second time."""
    from emgfeedback.views.report import pdf as report_pdf

    seen = []
    attach = report_pdf._EarlyImages.attach

    def spy(self, pdf):
        seen.append(self)
        attach(self, pdf)

    monkeypatch.setattr(report_pdf._EarlyImages, "attach", spy)
    report = build_report(session)
    report_pdf.write_pdf(report, tmp_path / "r.pdf")
    assert len(seen) == 1 and len(seen[0].items) == len(report.figures) >= 3
    assert seen[0].used == len(report.figures)
    # figures still being drawn by a second process when the pages are drawn: their pixels
    # (filled in when they arrive) and PNGs (made there) are the ones written, compressed once
    from emgfeedback.views.report import figures

    if figures.can_fork():
        pending = build_report(session, workers=2, pending=True)
        assert any(isinstance(f, figures.Drawn) and not f.ready for _k, _c, f in pending.figures)
        report_pdf.write_pdf(pending, tmp_path / "p.pdf")
        assert len(seen) == 2 and seen[1].used == len(pending.figures)
        for (_k, _c, a), (_k2, _c2, b) in zip(report.figures, pending.figures):
            assert np.array_equal(figures.rgb_array(a), figures.rgb_array(b))


def test_rep_overlays_are_one_line_collection_per_kind_with_every_reps_lines():
    """The overlay figure draws its reps as at most three line collections per axes (target,
    quiet, quiet with synkinesis), not one Line2D per rep: every rep's target line and one line
    per quiet region are there, in the colours, widths and alpha of the legend."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    from emgfeedback.views.report import figures
    from emgfeedback.views.summary import RepRow

    fs = 100.0
    channels = ["L-ZYG", "L-OOC", "R-ZYG", "R-OOC"]
    env = np.abs(np.random.default_rng(3).normal(10.0, 5.0, (int(60 * fs), len(channels))))
    rows = [RepRow(k // 2 + 1, "smile", side, f"{side}-ZYG", 5.0 + 5 * (k // 2),
                   8.0 + 5 * (k // 2), 50.0, 1.0, 0.8, 0.1, f"{side}-OOC", k % 4 == 0, 0, None)
            for k, side in enumerate(["L", "R"] * 8)]
    quiet = {"L-ZYG": ["L-OOC"], "R-ZYG": ["R-OOC"]}
    fig = figures.fig_rep_overlays(env, fs, channels, rows, quiet)
    colls = [(ax, c) for ax in fig.axes for c in ax.collections if isinstance(c, LineCollection)]
    assert len(fig.axes) == 2 and not any(ax.get_lines()[1:] for ax in fig.axes)  # (the cue line)
    by_colour: dict[tuple, int] = {}
    for _ax, c in colls:
        key = (tuple(np.round(c.get_colors()[0][:3], 3)), float(c.get_linewidths()[0]))
        by_colour[key] = by_colour.get(key, 0) + len(c.get_segments())
        assert c.get_alpha() == 0.8
    target = (tuple(np.round(to_rgba("#1f3b57")[:3], 3)), 1.3)
    grey = (tuple(np.round(to_rgba(figures.UNAFFECTED_COLOR)[:3], 3)), 0.7)
    red = (tuple(np.round(to_rgba(figures.EVENT_COLOR)[:3], 3)), 0.7)
    n_syn = sum(r.synkinesis for r in rows)
    assert by_colour == {target: len(rows), grey: len(rows) - n_syn, red: n_syn}
    assert all(len(seg) == int(5.0 * fs) for _ax, c in colls for seg in c.get_segments())
    assert max(sum(1 for a, _ in colls if a is ax) for ax in fig.axes) <= 3


def test_pdf_backend_imported_without_font_subsetting_until_a_font_is_embedded(tmp_path):
    """The PDF backend is imported with ``fontTools.subset`` registered lazily (its import was
    0.12-0.19 s of the report's critical path): the report's PDF, in the core fonts and, for a
    line outside cp1252, DejaVu Sans embedded as a Type 3 font, never runs it (every character
    still in the text); a TrueType font (``pdf.fonttype`` 42) runs it when first embedded."""
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext not found: install poppler-utils (scripts/setup.sh does)")
    code = f"""
import subprocess, sys, types
from emgfeedback.views.report import pdf as report_pdf
PdfPages = report_pdf.backend_pdf().PdfPages
def ran():  # (a lazy module is of a subclass of ModuleType until it has run)
    return type(sys.modules["fontTools.subset"]) is types.ModuleType
assert not ran()
def write(out, line):
    flow = report_pdf._Flow()
    flow.para(line)
    with PdfPages(out) as pdf:
        for page in flow.pages:
            pdf.savefig(page)
    return subprocess.run(["pdftotext", out, "-"], capture_output=True, text=True).stdout
assert "plain: 50 %, café" in write(r"{tmp_path / 'a.pdf'}", "plain: 50 %, café")
assert not ran()  # core fonts: nothing subset
text = write(r"{tmp_path / 'b.pdf'}", "ratio → 1, ≤ 2 %MVC")
assert "ratio" in text and "→ 1, ≤ 2 %MVC" in text, text
assert not ran()  # (embedded as a Type 3 font, matplotlib's default: no fontTools)
import matplotlib
matplotlib.rcParams["pdf.fonttype"] = 42  # (a TrueType subset: the subsetter runs)
text = write(r"{tmp_path / 'c.pdf'}", "ratio → 1, ≤ 2 %MVC")
assert "ratio" in text and "→ 1, ≤ 2 %MVC" in text, text
assert ran() and hasattr(sys.modules["fontTools.subset"], "Subsetter")
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "ok"
    assert b"DejaVuSans" in (tmp_path / "b.pdf").read_bytes()
    assert b"DejaVuSans" in (tmp_path / "c.pdf").read_bytes()
    assert b"DejaVuSans" not in (tmp_path / "a.pdf").read_bytes()
