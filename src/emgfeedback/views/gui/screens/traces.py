"""The traces screen: filtered signal and envelope (or raw) of every channel, events shaded."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QVBoxLayout, QWidget

from emgfeedback.views.gui.live import ColumnCache, LiveBuffers
from emgfeedback.views.gui.screens.common import _label, _title
from emgfeedback.views.gui.widgets import COLOURS


class _Shading(pg.GraphicsObject):  # type: ignore[misc]
    """Filled rectangles in data coordinates (event periods), painted in one pass.

    One item for every shaded period instead of a ``LinearRegionItem`` each: a region item is two
    movable lines with their own bounds and signals, and scrolling moves every region on every
    frame.  Threads: GUI thread only.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rects: list[tuple[QRectF, QColor]] = []
        self._bounds = QRectF()

    def set_rects(self, rects: list[tuple[QRectF, QColor]], bounds: QRectF) -> None:
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds
        self._rects = rects
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, p: QPainter, *args: Any) -> None:
        for r, colour in self._rects:
            p.fillRect(r, colour)


class TracesScreen(QWidget):
    """Filtered signal with its envelope (or raw) per channel; scrolling 10 s; events shaded.

    Drawing is built for a high frame rate (docs/gui.md, "Measured"):

    * **one** plot whose time axis is fixed at -10 … 0 s (0 = the newest sample), so neither axis
      is laid out again while the signal scrolls; the channels are vertically offset bands of
      that plot, each scaled to its own amplitude (rescaled once a second; the left axis names
      the channel and its full scale);
    * all channels' signal traces are **one** curve and all envelopes another, each set with one
      ``setData`` call (``skipFiniteCheck``; a gap's NaN only breaks the line through the
      ``connect`` array) and drawn as line segments;
    * the signal is reduced to its min and max per pixel column of the plot, drawn as one
      vertical segment per column; the envelope to its mean per four columns; both through
      :class:`~emgfeedback.views.gui.live.ColumnCache`, which reduces only the samples that
      arrived since the last frame.

    Threads: GUI thread only; :meth:`refresh` reads the ring buffers of
    :class:`~emgfeedback.views.gui.live.LiveBuffers` (thread-safe copies).
    """

    SECONDS = 10.0
    ENV_COLUMNS = 4  # pixel columns per envelope point (the envelope is smooth: a few Hz)
    HALF_BAND = 0.45  # half height of a channel's band (bands are 1 apart)
    BRUSHES = {"rest": (120, 140, 170, 40), "mvc": (224, 180, 70, 45),
               "exercise": (90, 160, 110, 45), "synkinesis": (200, 69, 60, 80),
               "marker": (60, 60, 60, 90), "gap": (0, 0, 0, 60)}

    def __init__(self, parent: QWidget | None = None, bins: int | None = None) -> None:
        super().__init__(parent)
        self.fixed_bins = bins
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 10, 16, 10)
        head = QHBoxLayout()
        head.addWidget(_title("Traces"))
        head.addStretch(1)
        head.addWidget(_label("Show"))
        self.mode = QComboBox()
        self.mode.addItems(["filtered + envelope", "raw"])
        head.addWidget(self.mode)
        outer.addLayout(head)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(COLOURS["background"])
        outer.addWidget(self.view, 1)
        self.plot: pg.PlotItem = self.view.addPlot(row=0, col=0)
        p = self.plot
        p.setMenuEnabled(False)
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        p.enableAutoRange(False)
        p.setLabel("bottom", "seconds (0 = now)")
        tick_font = QFont()
        tick_font.setPointSizeF(11.0)
        for name in ("left", "bottom"):
            ax = p.getAxis(name)
            ax.setStyle(tickFont=tick_font)
            ax.setTextPen(pg.mkPen("#22262a"))
        p.getAxis("left").setWidth(170)
        p.setXRange(-self.SECONDS, 0.0, padding=0)
        self.shading = _Shading()
        self.shading.setZValue(-10)
        p.addItem(self.shading, ignoreBounds=True)
        # Measured choices (bench/bench_gui.py): line segments (QPainter.drawLines) are cheaper
        # than one path for these curves, and a 2 px envelope far cheaper than 2.5 px.
        self.curve_sig = pg.PlotCurveItem(pen=pg.mkPen("#9db4c8", width=1), skipFiniteCheck=True,
                                          antialias=False)
        self.curve_env = pg.PlotCurveItem(pen=pg.mkPen("#1f5e38", width=2), skipFiniteCheck=True,
                                          antialias=False)
        for c in (self.curve_sig, self.curve_env):
            c.setSegmentedLineMode("on")
            p.addItem(c)
        self.channels: tuple[str, ...] = ()
        self.mode.currentIndexChanged.connect(self._reset)
        self._caches: tuple[Any, ...] = ()  # (key, signal ColumnCache, envelope ColumnCache)
        self._conn: dict[tuple[str, int], np.ndarray] = {}
        self._xbuf: dict[str, np.ndarray] = {}
        self._ybuf: dict[str, np.ndarray] = {}
        self._scale: np.ndarray | None = None  # (2, channels): low and high of each band
        self._last_scale_at = -10**12
        self._scale_raw = False
        self._region_key: tuple[Any, ...] = ()
        self.frames = 0
        self.shown_total = 0
        self.bins_used = 0

    def set_channels(self, channels: tuple[str, ...]) -> None:
        """One band per channel, first channel at the top (GUI thread, once per connection)."""
        self.channels = channels
        self.plot.setYRange(-0.5, len(channels) - 0.5, padding=0)
        self._reset()
        self._set_ticks()

    def _reset(self) -> None:
        self._caches = ()
        self._conn.clear()
        self._scale = None
        self._region_key = ()

    def _centre(self, i: int) -> float:
        return float(len(self.channels) - 1 - i)

    def _set_ticks(self) -> None:
        ticks = []
        for i, ch in enumerate(self.channels):
            text = ch.replace("EMG ", "")
            if self._scale is not None:
                half = (self._scale[1, i] - self._scale[0, i]) / 2.0
                if np.isfinite(half):
                    text += f"  ±{half:.0f} µV"
            ticks.append((self._centre(i), text))
        self.plot.getAxis("left").setTicks([ticks, []])

    def _bins(self) -> int:
        """Pixel columns of the plot: one min/max pair each."""
        if self.fixed_bins:
            return self.fixed_bins
        return max(100, int(self.plot.getViewBox().width()))

    def _connect(self, kind: str, npts: int, per_col: int) -> np.ndarray:
        """The ``connect`` array: lines within a channel's points, none between channels;
        with two points per column (min, max) only the vertical segment of each column."""
        key = (kind, npts)
        conn = self._conn.get(key)
        if conn is None:
            conn = np.ones(npts * len(self.channels), dtype=np.int32)
            if per_col == 2:
                conn[1::2] = 0
            conn[npts - 1::npts] = 0  # the last point of a channel does not join the next
            if len(self._conn) > 8:
                self._conn.clear()
            self._conn[key] = conn
        return conn

    def _xy(self, kind: str, starts: np.ndarray, vals: np.ndarray, end: int,
            fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (seconds before now) and y (band coordinates) of all channels end to end, written
        into buffers kept between frames, and the ``connect`` array."""
        assert self._scale is not None
        ncol, per_col, nch = vals.shape
        npts = ncol * per_col
        xb = self._xbuf.get(kind)
        yb = self._ybuf.get(kind)
        if xb is None or xb.shape != (nch, npts):
            xb = self._xbuf[kind] = np.empty((nch, npts))
            yb = self._ybuf[kind] = np.empty((nch, npts))
        assert yb is not None
        x1 = (starts - end) / fs
        xb[:] = np.repeat(x1, per_col) if per_col > 1 else x1
        lo, hi = self._scale
        mid = (lo + hi) / 2.0
        gain = self.HALF_BAND * 2.0 / np.where(hi > lo, hi - lo, 1.0)
        centre = np.arange(nch - 1, -1, -1, dtype=np.float64)
        np.subtract(vals.reshape(npts, nch).T, mid[:, None], out=yb)
        yb *= gain[:, None]
        # A peak beyond the band's scale is clipped at the band's edge, never drawn over the
        # neighbouring channel (the scale follows within a second).
        np.clip(yb, -0.5, 0.5, out=yb)
        yb += centre[:, None]
        x, y = xb.reshape(-1), yb.reshape(-1)
        conn = self._connect(kind, npts, per_col)
        bad = np.isnan(y)
        if bad.any():  # a gap: no segment starts or ends at a NaN point
            conn = conn.copy()
            conn[bad] = 0
            conn[:-1][bad[1:]] = 0
            y = np.where(bad, np.repeat(centre, npts), y)
        return x, y, conn

    def refresh(self, live: LiveBuffers, events: list[tuple[int, int, str, int]]) -> None:
        """Redraw from the ring buffers (GUI thread).

        ``events``: ``(start, stop, kind, channel)`` in samples, channel ``-1`` for all bands.
        """
        if live.envelope is None or not self.channels:
            return
        fs = live.fs
        n = int(self.SECONDS * fs)
        raw_mode = self.mode.currentIndex() == 1
        src = live.raw if raw_mode else live.filtered
        assert src is not None
        end = live.envelope.total  # written last: raw and filtered hold at least as much
        if end < 2:
            return
        bins = self._bins()
        key = (id(live), raw_mode, bins)
        if not self._caches or self._caches[0] != key:
            step = max(1, n // bins)
            self._caches = (key, ColumnCache(src, n, step, "minmax"),
                            ColumnCache(live.envelope, n, step * self.ENV_COLUMNS, "mean"))
        _, sig_cache, env_cache = self._caches
        self.bins_used = bins
        starts, vals = sig_cache.update(end)
        if len(starts) == 0:
            return
        if end - self._last_scale_at >= fs or self._scale is None or raw_mode != self._scale_raw:
            self._rescale(vals, raw_mode)
            self._last_scale_at = end
        x, y, conn = self._xy("sig", starts, vals, end, fs)
        self.curve_sig.setData(x, y, connect=conn, skipFiniteCheck=True)
        if raw_mode:
            self.curve_env.setData([], [])
        else:
            starts_e, vals_e = env_cache.update(end)
            xe, ye, conne = self._xy("env", starts_e, vals_e, end, fs)
            self.curve_env.setData(xe, ye, connect=conne, skipFiniteCheck=True)
        self._shade(events, end, fs)
        self.frames += 1
        self.shown_total = end

    def _rescale(self, vals: np.ndarray, raw_mode: bool) -> None:
        """A robust range per channel from the column min/max (cheap; once a second)."""
        self._scale_raw = raw_mode
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN after a long gap
            if raw_mode:
                lo = np.nanmin(vals[:, 0], axis=0)
                hi = np.nanmax(vals[:, 1], axis=0)
                pad = np.maximum((hi - lo) * 0.05, 1.0)
                lo, hi = lo - pad, hi + pad
            else:
                a = np.nanpercentile(np.abs(vals).reshape(-1, vals.shape[2]), 99.0, axis=0)
                a = np.maximum(a * 1.2, 20.0)
                lo, hi = -a, a
        lo = np.nan_to_num(lo, nan=-20.0)
        hi = np.nan_to_num(hi, nan=20.0)
        self._scale = np.vstack([lo, hi])
        self._set_ticks()

    def _shade(self, events: list[tuple[int, int, str, int]], end: int, fs: float) -> None:
        a = end - int(self.SECONDS * fs)
        visible = tuple(e for e in events if e[1] > a and e[0] < end)
        key = (visible, end)
        if key == self._region_key:
            return
        self._region_key = key
        nch = len(self.channels)
        rects: list[tuple[QRectF, QColor]] = []
        for s0, e0, kind, ch in visible:
            stop = max(e0, s0 + int(0.05 * fs))
            x0 = max(s0 - end, a - end) / fs
            x1 = min(stop - end, 0) / fs
            if x1 <= x0:
                continue
            if ch == -1:
                y0, y1 = -0.5, nch - 0.5
            else:
                c = self._centre(ch)
                y0, y1 = c - 0.5, c + 0.5
            rects.append((QRectF(x0, y0, x1 - x0, y1 - y0),
                          QColor(*self.BRUSHES.get(kind, (0, 0, 0, 30)))))
        self.shading.set_rects(rects, QRectF(-self.SECONDS, -0.5, self.SECONDS, nch))
