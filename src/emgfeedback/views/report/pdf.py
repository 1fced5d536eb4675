"""The session report as a PDF: A4 landscape pages, content flowed top to bottom, page numbers.

matplotlib's ``PdfPages`` (offline: no browser, no TeX).  The same :class:`~.model.Report` as the
HTML: every table with every row (a table runs on over as many pages as it needs, its header
repeated), headings kept with what follows, figures scaled to the width and to the space left on
the page (a new page only when less than about half of the figure would fit), and a footer with
the patient, the date, the training-aid statement and "page i of n" on every page.
"""

from __future__ import annotations

import functools
import io
import logging
import textwrap
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback import __version__
from emgfeedback.views.report import figures
from emgfeedback.views.report import model
from emgfeedback.views.report.model import TRAINING_AID, Report
from emgfeedback.views.report.placement import placement_png
from emgfeedback.views.summary import Table

__all__ = ["page_images", "page_lines", "placement_png", "write_pdf"]

log = logging.getLogger(__name__)

PAGE_W, PAGE_H = 11.69, 8.27  # inches, A4 landscape
MARGIN_X, TOP, BOTTOM = 0.45, 0.45, 0.65
TEXT_W = PAGE_W - 2 * MARGIN_X
#: Characters per line of 9.5 pt body text across the page (DejaVu Sans averages ~0.55 em).
BODY_CHARS = int(TEXT_W * 72 / (0.55 * 9.5))


def backend_pdf() -> Any:
    """matplotlib's PDF backend (``matplotlib.backends.backend_pdf``), imported without running
    ``fontTools.subset`` first.

    The backend imports ``fontTools.subset`` when it is imported (``_backend_pdf_ps``): 0.12-0.19
    s of the parent's critical path in a 30-minute report (measured, issue 13), although it
    uses it only to embed a TrueType font (``pdf.fonttype`` 42); the report's lines are in the
    standard PDF fonts, or, outside cp1252, in DejaVu Sans embedded as a Type 3 font (the
    default), which needs none of it.  So the module is registered with the standard library's
    :class:`importlib.util.LazyLoader`: it runs, as it would have, when first used (never in a
    report).  A ``fontTools.subset`` already imported is left as it is.
    """
    import sys

    if not {"matplotlib.backends.backend_pdf", "fontTools.subset"} & sys.modules.keys():
        import importlib.util

        spec = importlib.util.find_spec("fontTools.subset")  # (imports the package fontTools)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
            module = importlib.util.module_from_spec(spec)
            sys.modules["fontTools.subset"] = module
            spec.loader.exec_module(module)
            package: Any = sys.modules["fontTools"]
            package.subset = module  # (as its import would)
    from matplotlib.backends import backend_pdf as module

    return module


def _core_lines_class() -> Any:
    """The :class:`matplotlib.artist.Artist` holding a page's lines of text (see :class:`_Flow`).

    In the PDF a line whose text is in cp1252 is written in a standard PDF font (Courier for
    the tables' monospace, Helvetica for paragraphs, headings and footers): matplotlib lays out
    and emits an embedded TrueType font one glyph at a time, which made the long rep tables of
    a 30-minute session, then the ~120 paragraph and footer lines, take most of the PDF's time;
    a core font is one string per line (the viewer has the font: nothing embedded).  The lines
    are drawn by one artist per page, placed as a single-line :class:`~matplotlib.text.Text`
    with ``va="center"`` (and its ``ha``) would place them (same baseline, to the float: ascent
    and descent of the line's characters, at least the font's), without building a Text per
    line: that machinery cost more than the drawing.  Other lines (not in cp1252, or with a
    ``$`` that a Text could read as mathtext), and every line on another renderer, are drawn as
    Text in the embedded font of their family (DejaVu Sans, DejaVu Sans Mono), so no character
    is lost."""
    import matplotlib as mpl
    from matplotlib.artist import Artist
    from matplotlib.colors import to_rgba
    from matplotlib.font_manager import FontProperties
    from matplotlib.text import Text

    class CoreLines(Artist):
        def __init__(self, page: Any) -> None:
            super().__init__()
            self.page = page
            self.set_zorder(3)  # a Text's: above the row stripes (patches)
            #: (x, y of the line's centre, in figure fractions; text; size; weight; colour;
            #: family; horizontal alignment; vertical alignment, "center" or "baseline")
            self.lines: list[tuple[float, float, str, float, str, str, str, str, str]] = []
            #: the tables' row stripes under the lines: (x, y, width, height in figure
            #: fractions; colour), drawn first, in order, as a Rectangle patch each drew them
            self.stripes: list[tuple[float, float, float, float, str]] = []
            self._metrics = _CHAR_METRICS

        def _text(self, line: tuple[float, float, str, float, str, str, str, str, str]) -> Text:
            x, y, s, size, weight, color, family, ha, va = line
            if weight == "medium" and family != "monospace":
                weight = "normal"  # (Helvetica's regular is "medium", DejaVu Sans' "normal")
            t = Text(x, y, s, fontsize=size, va=va, ha=ha, family=family, weight=weight,
                     color=color, transform=self.page.transFigure)
            t.set_figure(self.page)
            return t

        def _ascent_descent(self, renderer: Any, s: str, prop: Any, key: Any) -> tuple[float, float]:
            """Ascent and descent of ``s`` as the renderer measures the whole string (the
            highest top, at least the baseline, and the lowest bottom of its characters)."""
            m = self._metrics
            a = d = 0.0
            for c in set(s):
                v = m.get((key, c))
                if v is None:
                    _w, h, dc = renderer.get_text_width_height_descent(c, prop, False)
                    v = m[(key, c)] = (h - dc, dc)
                a, d = max(a, v[0]), max(d, v[1])
            return a, d

        def _draw_stripes(self, renderer: Any) -> None:
            from matplotlib.path import Path as MplPath
            from matplotlib.transforms import Affine2D

            trans = self.page.transFigure
            for x, y, w, h, color in self.stripes:
                gc = renderer.new_gc()
                gc.set_linewidth(0.0)
                gc.set_snap(None)
                rect = MplPath.unit_rectangle()
                renderer.draw_path(gc, rect, Affine2D().scale(w, h).translate(x, y) + trans,
                                   to_rgba(color))
                gc.restore()

        def draw(self, renderer: Any) -> None:
            if not self.get_visible():
                return
            RendererPdf = backend_pdf().RendererPdf

            self._draw_stripes(renderer)

            # (savefig to a PDF draws through a MixedModeRenderer around the RendererPdf)
            # the tables' lines first, then the others in their order: the order a page of
            # one artist for the tables and a Text per other line was drawn in (Text after
            # artists), so the PDF's text reads in the same order
            lines = sorted(self.lines, key=lambda ln: ln[6] != "monospace")
            if not isinstance(getattr(renderer, "_renderer", renderer), RendererPdf):
                for line in lines:
                    self._text(line).draw(renderer)
                return
            trans = self.page.transFigure
            props: dict[tuple[float, str, str], tuple[Any, float, float]] = {}
            old = mpl.rcParams["pdf.use14corefonts"]
            # the core font of each of those properties looked up once per page (the PDF
            # renderer looks it up for every string: a font search each time)
            # (a private method of matplotlib's PDF renderer: without it, no cache)
            pdf_renderer = getattr(renderer, "_renderer", renderer)
            find_afm: Any = getattr(pdf_renderer, "_get_font_afm", None)
            afms: dict[int, tuple[Any, Any]] = {}

            def afm(prop: Any) -> Any:
                got = afms.get(id(prop))
                if got is None:
                    got = afms[id(prop)] = (prop, find_afm(prop))  # (prop kept: its id too)
                return got[1]

            if find_afm is not None:
                pdf_renderer._get_font_afm = afm
            try:
                for line in lines:
                    x, y, s, size, weight, color, family, ha, va = line
                    try:
                        s.encode("cp1252")
                        if "$" in s:
                            raise UnicodeEncodeError("cp1252", s, 0, 1, "mathtext")
                    except UnicodeEncodeError:
                        mpl.rcParams["pdf.use14corefonts"] = False
                        self._text(line).draw(renderer)
                        continue
                    if not s:
                        continue
                    mpl.rcParams["pdf.use14corefonts"] = True
                    key = (size, weight, family)
                    got = props.get(key)
                    if got is None:
                        # the core font's file found once per family and weight (a lookup
                        # by properties scans the font list again for every size)
                        prop = FontProperties(family=family, size=size, weight=weight,
                                              fname=_afm_file(family, weight))
                        # the font's own ascent and descent, as Text takes them
                        fm = getattr(renderer, "_get_font_height_metrics", None)
                        asc, desc, _gap = fm(prop) if fm is not None else (None, None, None)
                        if asc is None or desc is None:
                            _w, h, desc = renderer.get_text_width_height_descent("lp", prop,
                                                                                 False)
                            asc = h - desc
                        got = props[key] = (prop, asc, desc)
                    prop, asc, desc = got
                    if family == "monospace":
                        a, d = self._ascent_descent(renderer, s, prop, key)
                        a, d = max(a, asc), max(d, desc)
                    else:  # on the baseline a DejaVu Sans Text had: evenly spaced lines
                        a, d = _ttf_ascent_descent(family, size, weight)
                    px, py = trans.transform((x, y))
                    if ha != "left":
                        w = renderer.get_text_width_height_descent(s, prop, False)[0]
                        px -= w if ha == "right" else w / 2
                    gc = renderer.new_gc()
                    gc.set_foreground(to_rgba(color), isRGBA=True)
                    renderer.draw_text(gc, px, py + (d - a) / 2 if va == "center" else py, s,
                                       prop, 0.0, ismath=False)
                    gc.restore()
            finally:
                mpl.rcParams["pdf.use14corefonts"] = old
                if find_afm is not None:
                    del pdf_renderer._get_font_afm
            self.stale = False

    return CoreLines


#: Ascent and descent of single characters as the PDF renderer measures them, by font
#: ``(size, weight, family)`` and character (the same on every page: measured once).
_CHAR_METRICS: dict[tuple[Any, str], tuple[float, float]] = {}


@functools.lru_cache(maxsize=1)
def _page_image_class() -> Any:
    """The :class:`matplotlib.artist.Artist` of an image on a PDF page: its pixels (RGB or
    RGBA, ``uint8``) embedded unsampled in a box given in figure fractions, the PDF viewer
    scaling them, as an ``imshow(interpolation="none")`` in an axes of that box without axis
    embeds them.  Without the axes and the image machinery around it (colour mapping, masking
    and copies of every pixel, about a third of the PDF's time for a 30-minute session), and
    the pixels are the array given, read when the file is written."""
    from matplotlib.artist import Artist
    from matplotlib.transforms import Affine2D

    class PageImage(Artist):
        def __init__(self, page: Any, pixels: np.ndarray,
                     box: tuple[float, float, float, float]) -> None:
            super().__init__()
            self.page = page
            self.pixels = pixels
            self.box = box

        def get_array(self) -> np.ndarray:
            return self.pixels

        def draw(self, renderer: Any) -> None:
            if not self.get_visible():
                return
            x, y, w, h = self.box
            (x0, y0), (x1, y1) = self.page.transFigure.transform([(x, y), (x + w, y + h)])
            gc = renderer.new_gc()
            if renderer.option_scale_image():  # the PDF's: the pixels with a placement
                # rows bottom first in the file, as an image drawn with origin "upper" is
                trans = Affine2D().scale(1.0, -1.0).translate(0.0, 1.0).scale(x1 - x0, y1 - y0)
                renderer.draw_image(gc, x0, y0, self.pixels, trans)
            else:  # a raster renderer: resampled to the box
                from PIL import Image

                px = self.pixels
                im = Image.fromarray(px).resize((max(1, round(x1 - x0)), max(1, round(y1 - y0))))
                rgba = np.asarray(im.convert("RGBA"))[::-1]
                renderer.draw_image(gc, x0, y0, np.ascontiguousarray(rgba))
            gc.restore()
            self.stale = False

    return PageImage


def page_images(page: Any) -> list[np.ndarray]:
    """The pixels of the images on a page of :func:`pages` (figures and placement)."""
    return [a.get_array() for a in page.artists if hasattr(a, "pixels") and hasattr(a, "box")]


@functools.lru_cache(maxsize=16)
def _afm_file(family: str, weight: str) -> str:
    """The core PDF font (AFM file) matplotlib takes for ``family`` and ``weight`` (the same
    whatever the size: the core fonts are scalable)."""
    from matplotlib.font_manager import FontProperties, findfont

    RendererPdf = backend_pdf().RendererPdf

    return str(findfont(FontProperties(family=family, weight=weight), fontext="afm",
                        directory=RendererPdf._afm_font_dir))


@functools.lru_cache(maxsize=64)
def _ttf_ascent_descent(family: str, size: float, weight: str) -> tuple[float, float]:
    """Ascent and descent in points of the embedded (TrueType) font of ``family``, from its
    tables, as a single-line :class:`~matplotlib.text.Text` takes them at least: the lines of
    paragraphs written in Helvetica keep the baseline they had in DejaVu Sans (Helvetica's
    per-glyph heights, which a Text in Helvetica would take, made evenly spaced lines look
    uneven)."""
    from matplotlib.font_manager import FontProperties, findfont, get_font

    if weight == "medium":
        weight = "normal"
    font = get_font(findfont(FontProperties(family=family, weight=weight)))
    head = font.get_sfnt_table("head")
    os2 = font.get_sfnt_table("OS/2")
    hhea = font.get_sfnt_table("hhea")
    if head is None:
        return 0.75 * size, 0.25 * size
    scale = size / head["unitsPerEm"]
    if os2 is not None:
        return os2["sTypoAscender"] * scale, -os2["sTypoDescender"] * scale
    if hhea is not None:
        return hhea["ascent"] * scale, -hhea["descent"] * scale
    return 0.75 * size, 0.25 * size


class _Flow:
    """Pages of matplotlib figures filled top to bottom; positions in inches from the bottom."""

    def __init__(self) -> None:
        self.pages: list[Any] = []
        self.y = 0.0
        self._lines_cls = _core_lines_class()
        self._image_cls = _page_image_class()
        self._lines: Any = None
        self._new()

    def _new(self) -> None:
        from matplotlib.figure import Figure

        self.page = Figure(figsize=(PAGE_W, PAGE_H))
        self.pages.append(self.page)
        self.y = PAGE_H - TOP

    def room(self) -> float:
        return self.y - BOTTOM

    def need(self, h: float) -> None:
        if self.room() < h and self.y < PAGE_H - TOP - 1e-6:
            self._new()

    def line(self, page: Any, x: float, y: float, s: str, size: float, weight: str = "medium",
             color: str = "black", family: str = "sans-serif", ha: str = "left",
             va: str = "center") -> None:
        """One line of text centred on ``y`` (or with its baseline there: ``va``; inches from
        the bottom of ``page``), in a core PDF font where it can be (see
        :func:`_core_lines_class`)."""
        self._page_lines(page).lines.append((x / PAGE_W, y / PAGE_H, s, size, weight, color,
                                             family, ha, va))

    def _page_lines(self, page: Any) -> Any:
        """The artist holding ``page``'s lines (and row stripes), made on first use."""
        if self._lines is None or self._lines.page is not page:
            self._lines = next((a for a in page.artists if isinstance(a, self._lines_cls)), None)
            if self._lines is None:
                self._lines = self._lines_cls(page)
                page.add_artist(self._lines)
        return self._lines

    def stripe(self, y: float, h: float, color: str) -> None:
        """A table row's background across the text width, from ``y`` (inches from the bottom)
        up ``h``, under the page's lines."""
        self._page_lines(self.page).stripes.append(
            (MARGIN_X / PAGE_W, y / PAGE_H, TEXT_W / PAGE_W, h / PAGE_H, color))

    def text(self, x: float, s: str, size: float, h: float, weight: str = "medium",
             color: str = "black") -> None:
        """A line of text (Helvetica in the PDF, DejaVu Sans for other characters; ``medium``
        is Helvetica's regular weight)."""
        self.line(self.page, x, self.y - 0.5 * h, s, size, weight, color)
        self.y -= h

    def mono(self, x: float, s: str, size: float, h: float, weight: str = "medium",
             color: str = "black") -> None:
        """One line of a table (monospaced: Courier in the PDF, DejaVu Sans Mono for other
        characters); ``medium`` is Courier's regular weight (no font lookup warning)."""
        self.line(self.page, x, self.y - 0.5 * h, s, size, weight, color, family="monospace")
        self.y -= h

    def gap(self, h: float) -> None:
        self.y -= h

    def title(self, s: str) -> None:
        self.need(0.5)
        self.text(MARGIN_X, s, 15, 0.42, weight="bold")

    def heading(self, s: str, keep: float = 0.8) -> None:
        self.need(0.38 + keep)  # kept with the first lines of what follows
        self.gap(0.06)
        self.text(MARGIN_X, s, 11.5, 0.3, weight="bold")

    def para(self, s: str, size: float = 9.5, color: str = "#1b1b1b", indent: float = 0.0,
             chars: int | None = None) -> None:
        width = chars or int(BODY_CHARS * 9.5 / size - indent * 72 / (0.55 * size))
        for line in textwrap.wrap(s, width) or [""]:
            h = size * 1.45 / 72
            self.need(h)
            self.text(MARGIN_X + indent, line, size, h, color=color)

    def table(self, t: Table, heading: bool = True, max_size: float = 9.0) -> None:
        """Every row as one monospaced line, columns padded (text left, numbers right), striped;
        continued on the next page with its header repeated."""
        body = [list(r) for r in t.rows]
        numeric = [i >= t.left for i in range(len(t.head))]
        widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(t.head)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if num else c.ljust(w)
                             for c, w, num in zip(cells, widths, numeric))

        n_chars = sum(widths) + 2 * (len(widths) - 1)
        # DejaVu Sans Mono advances 0.602 em per character; keep a little slack.
        size = float(min(max_size, (TEXT_W - 0.15) * 72 / (0.62 * max(1, n_chars))))
        h = size * 1.5 / 72
        whole = (len(body) + 1) * h + 0.2 * len(t.notes)
        # a very short table is kept on one page; a longer one starts with at least 3 rows
        keep = whole if whole < (PAGE_H - TOP - BOTTOM) / 6 else 3 * h
        if heading:
            self.heading(t.title, keep=keep)
        else:
            self.need(keep)
        first = True
        k = 0
        while first or k < len(body):
            self.need(2 * h if body else h)
            if not first:
                self.text(MARGIN_X, f"{t.title} (continued)", 9, 0.22, weight="bold",
                          color="#444444")
            self.stripe(self.y - h, h, "#e6e6e6")
            self.mono(MARGIN_X + 0.04, line(t.head), size, h, weight="bold")
            first = False
            while k < len(body) and self.room() >= h:
                shade = "#fde8e8" if "syn" in (t.row_classes[k] if k < len(t.row_classes)
                                               else "") else ("#f5f5f5" if k % 2 else None)
                if shade:
                    self.stripe(self.y - h, h, shade)
                self.mono(MARGIN_X + 0.04, line(body[k]), size, h)
                k += 1
            if k < len(body):
                self._new()
        for n in t.notes:
            self.para(n, 8.5, "#555555")

    def image(self, png: bytes | np.ndarray, dpi: int, caption: str = "",
              max_h: float | None = None, min_share: float = 0.55) -> None:
        """A PNG (or its pixels) scaled to the text width (at most 1.25 times its size), and down
        to the room left when at least ``min_share`` of it fits; else on a new page."""
        if isinstance(png, np.ndarray):
            img = png
        else:
            from PIL import Image

            with Image.open(io.BytesIO(png)) as im:
                img = np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
        hpx, wpx = img.shape[:2]
        cap_h = 0.2 * max(1, len(textwrap.wrap(caption, BODY_CHARS))) if caption else 0.0
        scale = min(TEXT_W / (wpx / dpi), 1.25)
        full_h = min(hpx / dpi * scale, max_h or 1e9, PAGE_H - TOP - BOTTOM - cap_h - 0.1)
        if self.room() - cap_h < min_share * full_h:
            self._new()
        h = min(full_h, self.room() - cap_h - 0.05)
        w = wpx / hpx * h
        if w > TEXT_W:
            w, h = TEXT_W, TEXT_W * hpx / wpx
        # embedded as drawn (the PDF viewer scales it): no resampling to the page's dpi
        self.page.add_artist(self._image_cls(
            self.page, img, ((PAGE_W - w) / 2 / PAGE_W, (self.y - h) / PAGE_H, w / PAGE_W,
                             h / PAGE_H)))
        self.y -= h + 0.05
        if caption:
            self.para(caption, 8.5, "#444444")
        self.gap(0.1)

    def footers(self, left: str) -> None:
        n = len(self.pages)
        for i, page in enumerate(self.pages, start=1):
            self.line(page, PAGE_W / 2, 0.42, TRAINING_AID, 7, color="#8a5a00", ha="center",
                      va="baseline")
            self.line(page, MARGIN_X, 0.22, left, 7.5, color="#555555", va="baseline")
            self.line(page, PAGE_W - MARGIN_X, 0.22, f"page {i} of {n}", 8, color="#333333",
                      ha="right", va="baseline")


def page_lines(page: Any) -> list[str]:
    """The lines of text on a page of :func:`pages`, in the order they are drawn (its
    :class:`~matplotlib.text.Text` objects, then the lines of :func:`_core_lines_class`)."""
    from matplotlib.text import Text

    out = [t.get_text() for t in page.texts if isinstance(t, Text)]
    for a in page.artists:
        if hasattr(a, "lines") and hasattr(a, "page"):
            out += [ln[2] for ln in sorted(a.lines, key=lambda ln: ln[6] != "monospace")]
    return out


def _placement(flow: _Flow, svg: str | None) -> None:
    png = placement_png(svg)
    if png is None:
        flow.para("The placement figure is in the HTML report (and in emgfeedback/data/"
                  "placement.svg); this PDF was made without rsvg-convert (Debian: "
                  "librsvg2-bin).", 9, "#555555")
        return
    flow.image(png, 150, "Electrode placement.", max_h=4.6, min_share=0.4)


def pages(report: Report) -> list[Any]:
    """The report's PDF pages (matplotlib figures)."""
    s = report.session
    f = _Flow()
    who = model.who(s)
    f.title(f"Session report: {who}")
    for k, v in report.header:
        f.para(f"{k}: {v}", 9.5)
    for n in s.notes:
        f.para(f"Note: {n}", 9.5, "#c62828")
    f.gap(0.05)
    f.para(TRAINING_AID, 9.5, "#8a5a00")
    f.heading("Summary")
    for x in report.summary:
        f.para(x, 10)
    if report.history is not None:
        f.heading("Compared with earlier sessions")
        for x in report.history.sentences:
            f.para(x, 10)
        for ht in report.history.tables:
            f.table(ht)
    t = report.tables
    if "clinician" in t:
        f.table(t["clinician"])
    f.table(t["montage"])
    if "quality" in t:
        f.table(t["quality"])
    if "artefacts" in t:
        f.table(t["artefacts"])
    f.table(t["calibration"])
    f.table(t["exercises"])
    f.heading("Electrode placement", keep=4.6 * 0.4 + 0.3)  # with the figure (see image())
    _placement(f, report.placement)
    for _key, caption, fig in report.figures:
        # (a figure still being drawn by the second process: an array of its size, filled
        # when its drawing arrives, before the file is closed: see write_pdf)
        f.image(figures.pixels(fig), figures.RENDER_DPI, caption)
    f.table(t["reps"])
    f.para(f"emgfeedback {__version__}.", 8, "#555555")
    f.footers(f"emgfeedback session report · {who} · {s.recorded_at:%Y-%m-%d %H:%M}")
    return f.pages


def write_pdf(report: Report, path: Path) -> None:
    """Write the report as a multi-page PDF (A4 landscape) to ``path`` (via a temporary name).

    Figures still being drawn by the second process (``build_report(pending=True)``) are
    waited for only when the file is closed, after every page has been laid out and drawn
    (the PDF writer reads an image's pixels then)."""
    try:
        _write_pdf(report, path)
    except _LaidOutAgain:  # (a figure arrived in another size than announced: never seen)
        _write_pdf(report, path)


class _LaidOutAgain(Exception):
    pass


def _write_pdf(report: Report, path: Path) -> None:
    PdfPages = backend_pdf().PdfPages
    from emgfeedback.validate import private_file

    s = report.session
    figs = [fig for _k, _c, fig in report.figures]
    tmp = path.with_name(path.name + ".part")
    try:
        # patient data: the partial file is owner-only from its first byte; an error or Ctrl-C
        # while it is written removes it (an earlier report at ``path`` stays as it was)
        with private_file(tmp, "wb") as fh, \
                ThreadPoolExecutor(1, thread_name_prefix="report-pdf-images") as pool:
            try:
                images = _EarlyImages(pool, figs)
                with PdfPages(fh, metadata={"Title": f"emgfeedback session report "
                                                     f"{s.recorded_at:%Y-%m-%d}",
                                            "Creator": f"emgfeedback {__version__}"}) as pdf:
                    images.attach(pdf)
                    for fig in pages(report):
                        pdf.savefig(fig)
                    # the arrays the pages hold for figures still on their way
                    early = [getattr(fig, "early", None) for fig in figs]
                    figures.settle(figs)  # their pixels, before the images are written
                    if any(e is not None and fig.early is not e for fig, e in zip(figs, early)):
                        raise _LaidOutAgain()
            except BaseException:
                figures.cancel(figs)  # (nobody waits for the second process: the pool ends)
                raise
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _EarlyImages:
    """The figures' images compressed for the PDF in a background thread while its pages are
    drawn (Pillow releases the GIL), instead of one after another when the file is closed.

    matplotlib's PDF writer compresses each image as Pillow's PNG of its pixels
    (``PdfFile._writePng``, when the file is finalised); this hands it those same bytes, made
    earlier by the same call, when the pixels are the same to the byte.  Anything else (another
    image, another matplotlib without that method) is written by matplotlib as before, so the
    PDF is the same either way."""

    def __init__(self, pool: ThreadPoolExecutor, figs: Sequence[Any]) -> None:
        """``figs``: the report's figures (a :class:`.figures.Drawn` may carry its PNG, or be
        still on its way: its PNG is made when its pixels arrive)."""
        #: per image: its shape, and its pixels bottom row first with their PNG (to come)
        self.items: list[tuple[tuple[int, ...], Future[tuple[np.ndarray, bytes]]]] = []
        later = []
        for fig in figs:
            img = figures.pixels(fig)
            if not (img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
                continue
            ready = not isinstance(fig, figures.Drawn) or fig.ready
            fut: Future[tuple[np.ndarray, bytes]] = Future()
            self.items.append((img.shape, fut))
            if ready:
                pool.submit(self._encode, fig, fut)
            else:
                later.append((fig, fut))
        for fig, fut in later:  # (after the figures at hand: one thread, in order)
            pool.submit(self._encode, fig, fut)
        self.used = 0  # images handed to the writer

    @staticmethod
    def _encode(fig: Any, fut: Future[tuple[np.ndarray, bytes]]) -> None:
        try:
            img = figures.rgb_array(fig)  # (waits for a figure still being drawn)
            png = getattr(fig, "pdf", None)  # (made by the second process)
            # the writer gets the pixels bottom row first (PDF image space)
            fut.set_result((np.ascontiguousarray(img[::-1]),
                            png if png is not None else figures.pdf_png(img)))
        except BaseException as exc:
            fut.set_exception(exc)

    def attach(self, pdf: Any) -> None:
        pdf.infodict()  # (opens the file)
        file = getattr(pdf, "_file", None)
        write = getattr(file, "_writePng", None)
        if write is None or not self.items:
            return

        class Encoded:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def save(self, buffer: Any, format: str = "png") -> None:
                buffer.write(self.data)

        def write_png(img: Any) -> Any:
            if getattr(img, "mode", None) == "RGB":
                w, h = img.size
                for shape, fut in self.items:
                    if shape[:2] == (h, w):
                        arr, png = fut.result()
                        if img.tobytes() == arr.tobytes():
                            self.used += 1
                            return write(Encoded(png))
            return write(img)

        assert file is not None
        file._writePng = write_png
