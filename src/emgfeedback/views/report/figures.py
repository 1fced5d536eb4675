"""The figures of session reports (matplotlib, no pyplot, no Qt).

Every function returns a :class:`matplotlib.figure.Figure` built with the object-oriented API, so
figures can be made from any thread and never open a window; :func:`png_bytes` turns one into a
PNG and the PDF writer puts the same figures on pages.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from emgfeedback.views.summary import ExerciseMetrics, RepRow

__all__ = [
    "Drawn",
    "ForkedDrawing",
    "exercise_colors",
    "fig_envelopes",
    "fig_rep_bars",
    "fig_rep_overlays",
    "fig_symmetry",
    "png_bytes",
    "prepare",
    "reduce_for_plot",
    "rgb_array",
]

log = logging.getLogger(__name__)

_PALETTE = ("#4e79a7", "#59a14f", "#9c755f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#bab0ac")
EVENT_COLOR = "#e15759"
AFFECTED_COLOR = "#f28e2b"
UNAFFECTED_COLOR = "#7f7f7f"


def exercise_colors(exercises: Sequence[str]) -> dict[str, str]:
    """A stable colour per exercise, in order of first appearance."""
    out: dict[str, str] = {}
    for ex in exercises:
        if ex not in out:
            out[ex] = _PALETTE[len(out) % len(_PALETTE)]
    return out


#: Figures are drawn once, at this resolution (the PDF's); other resolutions (the HTML's) are
#: resampled from that drawing instead of drawing the figure again.
RENDER_DPI = 150

_RENDERED: "weakref.WeakKeyDictionary[Figure, Any]" = weakref.WeakKeyDictionary()


class Drawn:
    """A figure drawn in another process (:func:`fork_drawing`): its drawing at
    :data:`RENDER_DPI` (a PIL RGB image), and PNGs of it made already (for the HTML, by
    resolution; the PDF's, :func:`pdf_png`); :func:`rgb_array`, :func:`png_bytes` and :func:`prepare`
    take it as they take a figure.

    One of :meth:`ForkedDrawing.pending` may still be on its way: its :attr:`size` is known
    (the child sends it before drawing), :func:`pixels` hands out an array of that size that is
    filled when the drawing arrives, and reading :attr:`image` waits for it (the thread that
    started the drawing settles it: :func:`settle`; any other thread waits)."""

    def __init__(self, image: Any, pngs: dict[int, bytes], pdf: bytes | None,
                 size: tuple[int, int] | None = None,
                 source: "ForkedDrawing | None" = None) -> None:
        self._image = image
        self.pngs = pngs
        self.pdf = pdf
        #: (width, height) in pixels at :data:`RENDER_DPI`
        self.size: tuple[int, int] = image.size if image is not None else size  # type: ignore[assignment]
        self._source = source
        #: the figure drawn in this process instead (the second process failed), or ``None``
        self.figure: Figure | None = None
        #: the array :func:`pixels` handed out before the drawing arrived (filled then)
        self.early: np.ndarray | None = None
        #: PNGs being encoded here (:func:`prepare`), by resolution
        self.encoding: dict[int, Future[bytes]] = {}

    @property
    def ready(self) -> bool:
        return self._image is not None

    @property
    def image(self) -> Any:
        if self._image is None:
            assert self._source is not None
            self._source.settle()
        return self._image


def _rendered(fig: Figure | Drawn) -> Any:
    """The figure drawn at :data:`RENDER_DPI` as a PIL image (drawn on first use, kept while the
    figure lives)."""
    if isinstance(fig, Drawn):
        return fig.image
    img = _RENDERED.get(fig)
    if img is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image

        canvas = FigureCanvasAgg(fig)
        old = fig.dpi
        fig.dpi = RENDER_DPI
        try:
            canvas.draw()  # type: ignore[no-untyped-call]
            rgba = np.array(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
            img = Image.fromarray(rgba, "RGBA").convert("RGB")
        finally:
            fig.dpi = old
        _RENDERED[fig] = img
    return img


def rgb_array(fig: Figure | Drawn) -> np.ndarray:
    """The figure drawn at :data:`RENDER_DPI` as ``(height, width, 3)`` uint8 pixels (for the
    PDF, which embeds the pixels itself: no PNG encoded and decoded on the way)."""
    if isinstance(fig, Drawn) and fig.early is not None:
        fig.image  # noqa: B018 (waits for the drawing, which fills ``early``)
        return fig.early
    return np.asarray(_rendered(fig))


def pixels(fig: Figure | Drawn) -> np.ndarray:
    """:func:`rgb_array` without waiting for a figure still being drawn by the second process:
    an array of its size, filled in place when its drawing arrives (:func:`settle`); the PDF
    writer lays out and draws its pages with it and reads the pixels only when it closes."""
    if isinstance(fig, Drawn) and not fig.ready:
        if fig.early is None:
            w, h = fig.size
            fig.early = np.zeros((h, w, 3), dtype=np.uint8)
        return fig.early
    return rgb_array(fig)


def settle(figs: Sequence[Any]) -> None:
    """Wait for the figures of ``figs`` still being drawn by a second process (drawing here
    those it failed to draw)."""
    for fig in figs:
        if isinstance(fig, Drawn):
            fig.image  # noqa: B018


def settled(fig: Any) -> Any:
    """The figure as the report keeps it: a figure the second process failed to draw is the
    one drawn here."""
    if isinstance(fig, Drawn):
        fig.image  # noqa: B018
        if fig.figure is not None:
            return fig.figure
    return fig


def cancel(figs: Sequence[Any]) -> None:
    """Stop the second process drawing any of ``figs`` (a report that failed); whoever waits
    for those figures gets :class:`ForkFailed`."""
    for fig in figs:
        if isinstance(fig, Drawn) and fig._source is not None:
            fig._source.cancel()


#: The HTML report's figures are PNGs at this resolution.
HTML_DPI = 90

_PNG: "weakref.WeakKeyDictionary[Figure, dict[int, Future[bytes]]]" = weakref.WeakKeyDictionary()
_ENCODER: list[ThreadPoolExecutor] = []


def prepare(fig: Figure | Drawn, dpi: int = HTML_DPI) -> None:
    """Draw the figure now (:data:`RENDER_DPI`) and encode its PNG at ``dpi`` in a background
    thread (Pillow releases the GIL while it resamples and compresses), while the caller goes on
    drawing the next figure; :func:`png_bytes` returns that PNG.  (A figure still being drawn
    by the second process is encoded when it arrives.)"""
    if not _ENCODER:
        _ENCODER.append(ThreadPoolExecutor(1, thread_name_prefix="report-png"))
    if isinstance(fig, Drawn):
        if dpi not in fig.pngs and dpi not in fig.encoding:
            fig.encoding[dpi] = _ENCODER[0].submit(_drawn_png, fig, dpi)
        return
    _PNG.setdefault(fig, {})[dpi] = _ENCODER[0].submit(_png, _rendered(fig), dpi)


def png_bytes(fig: Figure | Drawn, dpi: int = 100) -> bytes:
    """The figure as PNG bytes at ``dpi`` (drawn once per figure; see :data:`RENDER_DPI`)."""
    if isinstance(fig, Drawn) and dpi in fig.pngs:
        return fig.pngs[dpi]
    done = fig.encoding.get(dpi) if isinstance(fig, Drawn) else _PNG.get(fig, {}).get(dpi)
    if done is not None:
        return done.result()
    return _png(_rendered(fig), dpi)


def _drawn_png(fig: Drawn, dpi: int) -> bytes:
    img = fig.image  # (in the encoder thread: waits for a pending drawing)
    return fig.pngs[dpi] if dpi in fig.pngs else _png(img, dpi)


def _png(img: Any, dpi: int) -> bytes:
    """PNG bytes of the drawing ``img`` (at :data:`RENDER_DPI`) resampled to ``dpi``."""
    from PIL import Image

    if dpi != RENDER_DPI:
        w, h = img.size
        k = dpi / RENDER_DPI
        img = img.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(dpi, dpi), compress_level=PNG_LEVEL)
    return buf.getvalue()


#: zlib level of the figures' PNGs (HTML and PDF): the same pixels as Pillow's default (6) in
#: about half of its time, for files about 5 % larger (a 30-minute report's four figures: 1.1 s
#: of CPU at level 6, measured, issue 13).
PNG_LEVEL = 3


def pdf_png(rgb: np.ndarray) -> bytes:
    """The PNG the PDF writer embeds for an image of these pixels (``(h, w, 3)`` uint8): Pillow's
    PNG of its rows bottom first, as matplotlib's ``PdfFile._writePng`` makes it (see
    :class:`.pdf._EarlyImages`), compressed at :data:`PNG_LEVEL`."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[::-1])).save(buf, format="png",
                                                          compress_level=PNG_LEVEL)
    return buf.getvalue()


# ----------------------------------------------------------------------------- a second process
def can_fork() -> bool:
    """Whether :func:`fork_drawing` can draw in a second process here: Linux (``fork``, its
    copy-on-write pages holding the imported matplotlib and the report's data) with at least
    two cores for this process."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except (AttributeError, OSError):
        return (os.cpu_count() or 1) >= 2


#: How long :meth:`ForkedDrawing.result` waits for the second process (its figures take about
#: 1.5 s on a 2-core laptop): past it the child is stopped and this process draws them.
FORK_WAIT_S = 60.0


class ForkFailed(Exception):
    """The drawing process failed (what it said); the caller draws the figures itself."""


class ForkedDrawing:
    """Figures being drawn by a child process (:func:`fork_drawing`); :meth:`result` waits for
    them, :meth:`pending` only for their sizes, :meth:`cancel` stops the child.

    The child sends two messages (each an 8-byte length and a pickle): the figures' sizes,
    once it has made them and before it draws them, then their pixels."""

    def __init__(self, pid: int, fd: int, makers: Sequence[Callable[[], Figure]]) -> None:
        self.pid = pid
        self.n = len(makers)
        self._makers = list(makers)
        self._data = bytearray()
        self._status: int | None = None
        self._sizes: list[tuple[int, int]] | None = None
        self._sized = threading.Event()  # the sizes are in, or the child's output ended
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        self._pending: list[Drawn] = []
        self._error: str | None = None  # what the child said when it failed
        self._failed: str | None = None  # why the pending figures could not be settled
        self._done = threading.Event()  # the pending figures are settled (or failed)
        # read as it comes (the child never waits on a full pipe while this process draws)
        self._reader = threading.Thread(target=self._read, args=(fd,), daemon=True,
                                        name="report-figures-reader")
        self._reader.start()

    def _read(self, fd: int) -> None:
        import pickle

        try:
            with os.fdopen(fd, "rb") as f:
                while chunk := f.read1(1 << 20):  # (what has come: the sizes come alone)
                    self._data += chunk
                    if not self._sized.is_set() and len(self._data) >= 8:
                        n = int.from_bytes(self._data[:8], "big")
                        if len(self._data) >= 8 + n:
                            try:
                                kind, what = pickle.loads(bytes(self._data[8:8 + n]))
                                if kind == "sizes":
                                    self._sizes = [(int(w), int(h)) for w, h in what]
                                    del self._data[:8 + n]
                                else:
                                    self._error = str(what)
                            except Exception as exc:
                                self._error = f"unreadable ({type(exc).__name__})"
                            self._sized.set()
        finally:
            self._sized.set()

    def _wait(self) -> int:
        if self._status is None:
            self._status = os.waitpid(self.pid, 0)[1]
        return self._status

    def pending(self) -> list[Drawn]:
        """The figures as they will be (:class:`Drawn` of known size, their pixels on their
        way), once the child has sent their sizes (raises :class:`ForkFailed`, also when it has
        not within :data:`FORK_WAIT_S`); :func:`settle` waits for their pixels."""
        if not self._sized.wait(FORK_WAIT_S):
            self._stop()
            raise ForkFailed(f"the drawing process did not start in {FORK_WAIT_S:g} s")
        if self._sizes is None or len(self._sizes) != self.n:
            self._stop()
            raise ForkFailed(self._error or "the drawing process ended without its figures")
        self._pending = [Drawn(None, {}, None, size=sz, source=self) for sz in self._sizes]
        return self._pending

    def settle(self) -> None:
        """Give the :meth:`pending` figures their drawings: the child's or, when it failed,
        drawn here by the thread that started it; another thread waits for that."""
        if self._done.is_set() or threading.get_ident() != self._owner:
            if not self._done.wait(2 * FORK_WAIT_S + 60.0):
                raise ForkFailed("the figures were not settled")
            if self._failed is not None:
                raise ForkFailed(self._failed)
            return
        with self._lock:
            if self._done.is_set():
                return
            try:
                try:
                    got = self.result()
                except ForkFailed as exc:
                    log.warning("the second process did not draw the figures (%s); drawn here",
                                exc)
                    got = []
                    for d, make in zip(self._pending, self._makers):
                        d.figure = make()
                        got.append(Drawn(_rendered(d.figure), {}, None))
                for d, g in zip(self._pending, got):
                    d.pngs, d.pdf = g.pngs, g.pdf
                    img = g.image
                    if d.early is not None:
                        px = np.asarray(img)
                        if px.shape == d.early.shape:
                            d.early[...] = px
                        else:  # (never seen: the same figure at the same dpi) laid out again
                            d.early = None
                    d._image = img  # last: a thread that sees it sees the rest filled
            except BaseException as exc:
                self._failed = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self._done.set()

    def result(self) -> list[Drawn]:
        """The figures, in the order of the makers (raises :class:`ForkFailed`, also when the
        child has not sent them within :data:`FORK_WAIT_S`: it is stopped, never waited on
        for ever)."""
        import pickle

        self._reader.join(FORK_WAIT_S)
        if self._reader.is_alive():
            self._stop()
            raise ForkFailed(f"the drawing process did not finish in {FORK_WAIT_S:g} s")
        status = self._wait()
        if self._sizes is None and self._error is not None:
            raise ForkFailed(self._error)
        try:
            n = int.from_bytes(self._data[:8], "big")
            if self._sizes is None or len(self._data) != 8 + n:
                raise ValueError("not one whole message")
            kind, payload = pickle.loads(bytes(self._data[8:]))
        except Exception as exc:  # nothing (the child was killed) or half of it
            raise ForkFailed(f"the drawing process ended ({status}) without its figures "
                             f"({type(exc).__name__})") from None
        finally:
            self._data = bytearray()
        if kind != "ok" or len(payload) != self.n:
            raise ForkFailed(str(payload))
        from PIL import Image

        return [Drawn(Image.frombytes("RGB", size, px), {HTML_DPI: html}, pdf)
                for size, px, html, pdf in payload]

    def cancel(self) -> None:
        """Stop the child if it still runs (the report failed or was interrupted); figures
        still pending fail (whoever waits for them gets :class:`ForkFailed`)."""
        self._stop()
        if not self._done.is_set():
            self._failed = self._failed or "the drawing was stopped"
            self._done.set()

    def _stop(self) -> None:
        if self._status is None:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait()
            self._reader.join()


def pixel_size(fig: Figure) -> tuple[int, int]:
    """``(width, height)`` of the figure drawn at :data:`RENDER_DPI` (:func:`_rendered`'s
    image), without drawing it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    old = fig.dpi
    fig.dpi = RENDER_DPI
    try:
        w, h = FigureCanvasAgg(fig).get_width_height(physical=True)
    finally:
        fig.dpi = old
    return int(w), int(h)


def _message(obj: Any) -> bytes:
    import pickle

    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(8, "big") + data


def fork_drawing(makers: Sequence[Callable[[], Figure]]) -> ForkedDrawing | None:
    """Draw the figures ``makers`` make in a child process, on the second core, while this
    process goes on (matplotlib's drawing holds the GIL: a thread would not run beside it).

    The child is a ``fork`` of this process: it has the report's data and the imported
    matplotlib without pickling or importing anything, makes each figure and sends its size,
    then draws each exactly as :func:`prepare` would here (same code, same pixels), sends the
    pixels through a pipe and exits; it writes no file (:func:`prepare` encodes their PNG
    here).  ``None`` when this machine cannot (:func:`can_fork`, or the fork failed): the
    caller draws them itself."""
    if not makers or not can_fork():
        return None
    import warnings

    r, w = os.pipe()
    try:
        with warnings.catch_warnings():
            # (Python >= 3.12 warns of fork in a process with threads: the child here runs
            # only the drawing code below, which takes no lock those threads may hold)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError as exc:
        log.info("no second process for the figures: %s", exc)
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: draw, send, exit (no cleanup of the parent's state: os._exit)
        code = 1
        try:  # whatever happens here (an error in the error path, a second Ctrl-C), the child
            # never returns into the parent's code: it ends at os._exit below
            with os.fdopen(w, "wb") as f:
                try:
                    os.close(r)
                    figs = [make() for make in makers]
                    f.write(_message(("sizes", [pixel_size(fig) for fig in figs])))
                    f.flush()  # (the parent lays out the PDF's pages meanwhile)
                    out = []
                    for fig in figs:
                        img = _rendered(fig)
                        # and their PNGs, the HTML's and the PDF's (the same calls as the
                        # parent's): the parent meanwhile draws the PDF's pages
                        out.append((img.size, img.tobytes(), _png(img, HTML_DPI),
                                    pdf_png(np.asarray(img))))
                    payload = _message(("ok", out))
                    code = 0
                except BaseException as exc:
                    try:
                        what = f"{type(exc).__name__}: {exc}"
                    except BaseException:
                        what = type(exc).__name__
                    payload = _message(("error", what))
                f.write(payload)
        finally:
            os._exit(code)
    os.close(w)
    return ForkedDrawing(pid, r, makers)


def reduce_for_plot(y: np.ndarray, fs: float, max_points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Peak-preserving reduction of ``y`` (samples, channels) to at most ``max_points`` rows.

    Each bin keeps its maximum, so a short intrusion still shows at the scale of a whole session.
    Returns ``(t_seconds, y_reduced)``.
    """
    n = y.shape[0]
    k = max(1, int(np.ceil(n / max_points)))
    m = n // k
    if m == 0:
        return np.arange(n) / fs, y
    head = y[: m * k].reshape(m, k, -1).max(axis=1)
    t = (np.arange(m) * k + k / 2) / fs
    if n > m * k:
        head = np.vstack([head, y[m * k:].max(axis=0, keepdims=True)])
        t = np.append(t, (m * k + (n - m * k) / 2) / fs)
    return t, head


def _text_width_in(text: str, size: float) -> float:
    """Width in inches of the widest line of ``text`` at ``size`` points (the default font)."""
    from matplotlib.font_manager import FontProperties

    r = _measure_renderer()
    prop = FontProperties(size=size)
    return float(max(r.get_text_width_height_descent(ln, prop, False)[0]
                     for ln in text.split("\n"))) / 72.0


_MEASURE: list[Any] = []


def _measure_renderer() -> Any:
    """An Agg renderer at 72 dpi, for measuring a few texts (points = pixels)."""
    if not _MEASURE:
        from matplotlib.backends.backend_agg import RendererAgg

        _MEASURE.append(RendererAgg(1, 1, 72))  # type: ignore[no-untyped-call]
    return _MEASURE[0]


def _place(fig: Figure, left: float, right: float, top: float, bottom: float,
           hgap: float = 0.0, wgap: float = 0.0, rows: int = 1, cols: int = 1) -> None:
    """Fixed margins and gaps in inches around a grid of ``rows`` x ``cols`` axes.

    The report's figures used matplotlib's constrained layout, which measured every tick label
    of every axes before each drawing (about half of the time of drawing a figure); their
    content is known, so the margins are computed once from the few labels that set them."""
    w, h = fig.get_size_inches()
    ah = (h - top - bottom - (rows - 1) * hgap) / rows
    aw = (w - left - right - (cols - 1) * wgap) / cols
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        hspace=hgap / ah if rows > 1 else 0.0,
                        wspace=wgap / aw if cols > 1 else 0.0)


#: Inches: the edge pad, a tick (length 3.5 pt + pad 3.5 pt), an axis label's pad (4 pt), and
#: the heights of the suptitle (11 pt), a bottom legend (8 pt) and an x label with ticks.
_PAD = 4 / 72
_TICK = 7 / 72
_LABEL_PAD = 4 / 72
_SUPTITLE_H = 0.278
_LEGEND_H = 0.26


#: Axes titles at the top of their axes (plus their pad), where matplotlib's automatic
#: placement puts them in these figures (no tick labels or offset text above the axes); placed
#: so, matplotlib does not measure every tick label of the axes and its twins before each
#: drawing to check (a sixth of the time of drawing the per-rep bars).
_TITLE_Y = 1.0


def _suptitle(fig: Figure, title: str) -> None:
    h = fig.get_size_inches()[1]
    fig.suptitle(title, fontsize=11, y=1 - 0.042 / h)


def _legend(fig: Figure, handles: Sequence[Any], ncols: int) -> None:
    fig.legend(handles=handles, loc="lower center", ncols=ncols, fontsize=8, frameon=False)


def _fixed_ticks(fig: Figure) -> None:
    """Each automatic axis' ticks fixed to those it would draw, with the labels it would give
    them: matplotlib makes a tick (two lines, a marker and two labels) for every location its
    locator returns, one or two beyond each end of the axis too, and formats them at every
    drawing; fixed once the limits are final, only the ticks drawn are made.  The same ticks,
    labels and pixels (an axis whose formatter shows an offset is left as it is)."""
    from matplotlib import transforms
    from matplotlib.ticker import AutoLocator, FixedFormatter, FixedLocator, ScalarFormatter

    inside = getattr(transforms, "_interval_contains_close", None)
    if inside is None:  # (another matplotlib: left to it)
        return
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locator, formatter = axis.get_major_locator(), axis.get_major_formatter()
            if not (axis.get_visible() and type(locator) is AutoLocator
                    and type(formatter) is ScalarFormatter):
                continue  # (a shared axis: fixed with the first)
            locs = axis.get_majorticklocs()  # as drawing takes them, at the final limits
            labels = formatter.format_ticks(locs)  # type: ignore[arg-type]
            if formatter.get_offset():
                continue
            lo, hi = sorted(axis.get_view_interval())
            trans = axis.get_transform()
            ends = trans.transform([lo, hi])
            keep = [i for i, loc in enumerate(locs) if inside(ends, trans.transform(loc))]
            axis.set_major_locator(FixedLocator([locs[i] for i in keep]))
            axis.set_major_formatter(FixedFormatter([labels[i] for i in keep]))


def _span_collection(ax: Axes, spans: list[tuple[float, float]], color: str, alpha: float,
                     zorder: float = 0) -> None:
    if spans:
        ax.broken_barh(spans, (0, 1), transform=ax.get_xaxis_transform(), facecolors=color,
                       alpha=alpha, linewidth=0, zorder=zorder)


def fig_envelopes(
    t: np.ndarray,
    env_pct: np.ndarray,
    channels: Sequence[str],
    rows: Sequence[RepRow],
    events: Sequence[Mapping[str, object]],
    affected_side: str = "",
    calibration: Sequence[tuple[float, float]] = (),
    t_range: tuple[float, float] | None = None,
    title: str = "Envelopes (%MVC) with reps and synkinesis events",
) -> Figure:
    """One strip per channel: the envelope in %MVC, reps shaded by exercise, events in red.

    Parameters
    ----------
    t, env_pct:
        Time (s) and envelope in %MVC, ``(points, channels)`` (already reduced for plotting).
    rows:
        Reps (their cue windows are shaded on every strip).
    events:
        Synkinesis events of the analysis; each is drawn on its own channel's strip, with a tick
        where the live detector raised the alert.
    calibration:
        ``(start_s, duration_s)`` of rest and MVC periods, shaded grey.
    """
    n = len(channels)
    fig = Figure(figsize=(11, 0.95 * n + 1.3))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    labels = [ch + ("\n(affected)" if affected_side and ch[:1] == affected_side else "")
              for ch in channels]
    _place(fig, left=_PAD + max([_text_width_in(lb, 8) for lb in labels] + [0.0]) + _LABEL_PAD
           + _text_width_in("100", 7) + _TICK, right=0.042, top=_SUPTITLE_H, bottom=0.717,
           hgap=0.132, rows=n)
    colors = exercise_colors([r.exercise for r in rows])
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        spans.setdefault(r.exercise, []).append((r.onset_s, r.offset_s - r.onset_s))
    # Unique rep windows (both sides share a cue window).
    for ex in spans:
        spans[ex] = sorted(set(spans[ex]))
    top = float(np.nanpercentile(env_pct, 99.5)) * 1.15 if env_pct.size else 100.0
    top = max(20.0, min(top, 150.0))
    xlim = (t_range if t_range is not None else
            (float(t[0]), float(t[-1])) if len(t) else None)
    for j, (ax, ch) in enumerate(zip(axes, channels)):
        if xlim is not None:  # both limits are set below: no autoscaling of the shared x axis
            ax.set_autoscale_on(False)  # (for every artist added: the same limits, the same figure)
        _span_collection(ax, list(calibration), "#bbbbbb", 0.25)
        for ex, sp in spans.items():
            _span_collection(ax, sp, colors[ex], 0.18)
        # an event still open when a live stream stopped has no offset: drawn to its alert + 0.5 s
        ev = [(float(e["onset_s"]),  # type: ignore[arg-type]
               max(0.05, float(e["offset_s"] if e.get("offset_s") is not None  # type: ignore[arg-type]
                               else float(e.get("alert_s") or e["onset_s"]) + 0.5)  # type: ignore[arg-type]
                   - float(e["onset_s"])))  # type: ignore[arg-type]
              for e in events if e.get("channel") == ch]
        _span_collection(ax, ev, EVENT_COLOR, 0.45, zorder=1)
        # the alert ticks as one collection per strip (an axvline each cost more to make and
        # draw than the trace): from the bottom of the strip to a quarter of its height
        alerts = [float(e["alert_s"]) for e in events  # type: ignore[arg-type]
                  if e.get("channel") == ch and e.get("alert_s") is not None]
        if alerts:
            ax.add_collection(LineCollection(
                [((a, 0.0), (a, 0.25)) for a in alerts], colors=EVENT_COLOR, linewidths=0.8,
                capstyle="projecting", transform=ax.get_xaxis_transform(), zorder=2),
                autolim=False)
        side = ch[:1]
        col = AFFECTED_COLOR if affected_side and side == affected_side else "#1f3b57"
        ax.plot(t, env_pct[:, j], color=col, lw=0.7, zorder=2)
        ax.set_ylim(-5, top)
        ax.set_ylabel(labels[j], rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("time (s)")
    if xlim is not None:
        axes[-1].set_xlim(*xlim)
    handles = [Patch(color=c, alpha=0.35, label=ex) for ex, c in colors.items()]
    if calibration:
        handles.insert(0, Patch(color="#bbbbbb", alpha=0.4, label="calibration (rest, MVC)"))
    handles.append(Patch(color=EVENT_COLOR, alpha=0.6, label="synkinesis event"))
    _legend(fig, handles, min(len(handles), 6))
    _suptitle(fig, title)
    _fixed_ticks(fig)
    return fig


def fig_rep_overlays(
    env_pct: np.ndarray,
    fs: float,
    channels: Sequence[str],
    rows: Sequence[RepRow],
    quiet: Mapping[str, Sequence[str]],
    pre_s: float = 1.0,
    post_s: float = 1.0,
) -> Figure:
    """Reps overlaid, aligned at the cue: target (thick) and quiet regions (thin).

    One row per exercise, one column per side.  ``quiet`` maps a target channel to the channels
    that should stay quiet.  What a therapist looks for: does the eye line (thin) rise with the
    smile line (thick)?  Quiet-region lines of reps with synkinesis are red.
    """
    reps = [r for r in rows if r.target in channels]
    exercises = list(dict.fromkeys(r.exercise for r in reps)) or ["(no reps)"]
    sides = sorted({r.side for r in reps}) or ["L"]
    fig = Figure(figsize=(11, 2.3 * len(exercises) + 0.8))
    axes = fig.subplots(len(exercises), len(sides), sharey=True, sharex=True, squeeze=False)
    _place(fig, left=0.506, right=0.042, top=0.456, bottom=0.691, hgap=0.31, wgap=0.158,
           rows=len(exercises), cols=len(sides))
    n = env_pct.shape[0]
    for i, ex in enumerate(exercises):
        for k, side in enumerate(sides):
            ax = axes[i, k]
            # One collection per kind of line (fast with hundreds of reps; overlaps still darken).
            groups: dict[str, list[np.ndarray]] = {"quiet": [], "quiet_syn": [], "target": []}
            for r in (r for r in reps if r.exercise == ex and r.side == side):
                a = max(0, int((r.onset_s - pre_s) * fs))
                b = min(n, int((r.offset_s + post_s) * fs))
                if b - a < 2:
                    continue
                tt = np.arange(a, b) / fs - r.onset_s
                step = max(1, (b - a) // 600)
                for q in quiet.get(r.target, ()):
                    if q in channels:
                        j = channels.index(q)
                        groups["quiet_syn" if r.synkinesis else "quiet"].append(
                            np.column_stack([tt[::step], env_pct[a:b:step, j]]))
                j = channels.index(r.target)
                groups["target"].append(np.column_stack([tt[::step], env_pct[a:b:step, j]]))
            for kind, color, lw in (("quiet", UNAFFECTED_COLOR, 0.7), ("quiet_syn", EVENT_COLOR, 0.7),
                                    ("target", "#1f3b57", 1.3)):
                if groups[kind]:
                    lc = LineCollection(groups[kind], colors=color, linewidths=lw, alpha=0.8,
                                        rasterized=True)
                    # the data limits only: the axes share both axes, so one autoscaling below
                    # sets them all (autoscaling the group at every collection cost more than
                    # making the figure's other artists)
                    ax.add_collection(lc, autolim="_datalim_only")
    axes[0, 0].autoscale_view()
    for i, ex in enumerate(exercises):
        for k, side in enumerate(sides):
            ax = axes[i, k]
            ax.axvline(0, color="k", lw=0.5, ls=":")
            ax.set_title(f"{ex}, side {side}", fontsize=9, loc="left", y=_TITLE_Y)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel("%MVC", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time from cue (s)", fontsize=8)
    handles = [Patch(color="#1f3b57", label="target region"),
               Patch(color=UNAFFECTED_COLOR, label="regions to keep quiet"),
               Patch(color=EVENT_COLOR, label="regions to keep quiet, rep with synkinesis")]
    _legend(fig, handles, 3)
    _suptitle(fig, "Reps overlaid from the cue")
    _fixed_ticks(fig)
    return fig


def fig_rep_bars(rows: Sequence[RepRow], affected_side: str = "") -> Figure:
    """Per exercise, the target peak %MVC of each rep (affected side in colour) and isolation."""
    exercises = list(dict.fromkeys(r.exercise for r in rows))
    n = max(1, len(exercises))
    fig = Figure(figsize=(11, 2.1 * n + 0.6))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    per_ex = [[r for r in rows if r.exercise == ex] for ex in exercises]
    # under each strip: rotated rep labels (short sessions) or numbers and an x label
    labelled = [f"{r.index}{r.side}" for reps in per_ex if len(reps) <= 60 for r in reps]
    under = max(0.408, _TICK + _text_width_in(max(labelled, key=len), 6) + 0.05) if labelled \
        else 0.408
    twin = any(r.isolation is not None for r in rows)
    _place(fig, left=0.508, right=0.474 if twin else 0.042, top=0.456,
           bottom=_LEGEND_H + under, hgap=under + 0.2, rows=n)
    for ax, ex in zip(axes, exercises):
        reps = [r for r in rows if r.exercise == ex]
        x = np.arange(len(reps))
        peak = [r.peak_pct_mvc if r.peak_pct_mvc is not None else 0.0 for r in reps]
        col = [AFFECTED_COLOR if affected_side and r.side == affected_side else UNAFFECTED_COLOR
               for r in reps]
        # the bars as two collections (plain, and hatched with synkinesis) rather than one
        # patch each: hundreds of reps in a long session drew slowly bar by bar
        boxes = [((xi - 0.4, 0.0), (xi + 0.4, 0.0), (xi + 0.4, p), (xi - 0.4, p))
                 for xi, p in zip(x, peak)]
        for syn in (False, True):
            sel = [i for i, r in enumerate(reps) if r.synkinesis == syn]
            if not sel:
                continue
            pc = PolyCollection([boxes[i] for i in sel], facecolors=[col[i] for i in sel],
                                edgecolors=EVENT_COLOR if syn else "none",
                                linewidths=2.0 if syn else 0.0, hatch="//" if syn else None)
            pc.sticky_edges.y.append(0.0)  # bars stand on zero, as ax.bar's do
            ax.add_collection(pc)
        ax.autoscale_view()
        ax.set_ylabel("peak %MVC", fontsize=8)
        if len(reps) <= 60:
            ax.set_xticks(x, [f"{r.index}{r.side}" for r in reps], fontsize=6, rotation=90)
        else:  # a long session: rep labels would be unreadable; number the bars instead
            ax.set_xlabel("rep (in order; both sides of a cue side by side)", fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_xlim(-1, len(reps))
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(ex, fontsize=9, loc="left", y=_TITLE_Y)
        ax.grid(axis="y", alpha=0.3)
        iso = [r.isolation for r in reps]
        if any(v is not None for v in iso):
            ax2 = ax.twinx()
            ax2.plot(x, [np.nan if v is None else v for v in iso], "o", color="#1f3b57", ms=3)
            ax2.set_ylim(0, 1.05)
            ax2.set_ylabel("isolation (dots)", fontsize=8)
            ax2.tick_params(labelsize=7)
    handles = [Patch(color=AFFECTED_COLOR, label="affected side"),
               Patch(color=UNAFFECTED_COLOR, label="other side"),
               Patch(facecolor="white", edgecolor=EVENT_COLOR, hatch="//", label="synkinesis")]
    _legend(fig, handles, 3)
    _suptitle(fig, "Per rep: target peak %MVC (bars) and isolation (dots)")
    _fixed_ticks(fig)
    return fig


def fig_symmetry(metrics: Sequence[ExerciseMetrics]) -> Figure:
    """Affected / unaffected %MVC per exercise (1.0 = both sides equal)."""
    ms = [m for m in metrics if m.symmetry is not None]
    fig = Figure(figsize=(8, 0.45 * max(1, len(ms)) + 1.2))
    ax = fig.subplots()
    _place(fig, left=_PAD + max([_text_width_in(m.exercise, 8) for m in ms] + [0.0]) + _TICK,
           right=0.042, top=0.241, bottom=0.473)
    if not ms:
        ax.text(0.5, 0.5, "symmetry needs both sides recorded", ha="center", va="center")
        ax.set_axis_off()
        return fig
    y = np.arange(len(ms))
    vals = [float(m.symmetry) for m in ms]  # type: ignore[arg-type]
    ax.barh(y, vals, color=AFFECTED_COLOR, height=0.6)
    for yi, v in zip(y, vals):
        ax.text(v + 0.02, float(yi), f"{v:.2f}", va="center", fontsize=8)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yticks(y, [m.exercise for m in ms], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.25, max(vals) * 1.15))
    ax.set_xlabel("affected / unaffected mean %MVC while active (dashed: equal)")
    ax.set_title("Symmetry per exercise", fontsize=11, y=_TITLE_Y)
    ax.grid(axis="x", alpha=0.3)
    _fixed_ticks(fig)
    return fig

