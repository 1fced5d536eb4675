"""The session's video in its report: the frame at each rep's peak and at each synkinesis event,
next to the EMG envelopes of that moment (a small panel per moment, six to a figure).

Only when the recording has a video (its sidecar's ``"video"`` table, written by the session:
:mod:`emgfeedback.video.live`) and the video extra is installed; otherwise :func:`video_figures`
returns nothing (a line says why in the log).  Cheap on purpose: at most :data:`MAX_MOMENTS`
frames are decoded (seeking in the compressed video), the traces come from the envelope the
report computed already.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from emgfeedback.views.report.figures import EVENT_COLOR, exercise_colors
from emgfeedback.views.summary import RepRow, SessionInput

__all__ = ["MAX_MOMENTS", "video_figures"]

log = logging.getLogger(__name__)

#: At most this many frames in a report: every synkinesis event first, then reps' peaks.
MAX_MOMENTS = 12
#: Moments per figure (two columns).
PER_FIGURE = 6
#: Seconds of EMG shown either side of the moment.
HALF_WINDOW_S = 2.0


def _moments(rows: Sequence[RepRow], events: Sequence[Mapping[str, Any]], env: np.ndarray,
             fs: float, channels: Sequence[str]) -> list[tuple[str, float, str, list[int]]]:
    """``(kind, second, caption, channel indices to plot)``: synkinesis events, then the peak of
    each rep's target on the rep's first listed side (one per rep number)."""
    index = {c: i for i, c in enumerate(channels)}
    out: list[tuple[str, float, str, list[int]]] = []
    for e in events:
        ch = str(e.get("channel", ""))
        t = float(e.get("onset_s", 0.0))
        trig = str(e.get("trigger", ""))
        idx = [index[c] for c in (trig, ch) if c in index]
        out.append(("synkinesis", t, f"Synkinesis: {ch} joined in at {t:.1f} s "
                    f"({e.get('exercise', '')} rep {e.get('rep', '?')}, trigger {trig})", idx))
    seen: set[int] = set()
    for r in rows:
        if r.index in seen or r.target not in index:
            continue
        seen.add(r.index)
        i = index[r.target]
        a, b = int(r.onset_s * fs), max(int(r.onset_s * fs) + 1, int(r.offset_s * fs))
        seg = env[a:b, i]
        if not np.isfinite(seg).any():
            continue
        t = (a + int(np.nanargmax(seg))) / fs
        side = [index[c] for c in channels if c.startswith(r.side + "-")]
        out.append(("peak", t, f"Rep {r.index} ({r.exercise}): peak of {r.target} at {t:.1f} s",
                    side))
    return out[:MAX_MOMENTS]


def _panel(fig: Any, img_rgb: np.ndarray, env: np.ndarray, fs: float, t: float,
           channels: Sequence[str], idx: Sequence[int], alert: bool, title: str) -> None:
    """One moment in ``fig`` (a subfigure): the frame beside the envelopes around it."""
    ax_img, ax = fig.subplots(1, 2, width_ratios=(1.0, 1.3))
    ax_img.imshow(img_rgb)
    ax_img.set_axis_off()
    a = max(0, int((t - HALF_WINDOW_S) * fs))
    b = min(env.shape[0], int((t + HALF_WINDOW_S) * fs))
    tt = np.arange(a, b) / fs
    colors = exercise_colors([channels[i] for i in idx])
    for i in idx:
        ax.plot(tt, env[a:b, i], lw=1.0, color=colors[channels[i]], label=channels[i])
    ax.axvline(t, color=EVENT_COLOR if alert else "#333333", lw=1.0, ls="--")
    ax.set_ylabel("%MVC", fontsize=7)
    ax.tick_params(labelsize=6)
    if idx:
        ax.legend(fontsize=5.5, loc="upper left", frameon=False, ncol=2)
    fig.suptitle(title, fontsize=8, color=EVENT_COLOR if alert else "#222222")


def _grid(items: Sequence[tuple[np.ndarray, float, Sequence[int], bool, str]], env: np.ndarray,
          fs: float, channels: Sequence[str]) -> Figure:
    rows = (len(items) + 1) // 2
    fig = Figure(figsize=(10.0, 1.9 * rows), layout="constrained")
    subs = np.atleast_2d(fig.subfigures(rows, 2, squeeze=False))
    for k, sub in enumerate(subs.ravel()):
        if k < len(items):
            img, t, idx, alert, title = items[k]
            _panel(sub, img, env, fs, t, channels, idx, alert, title)
    return fig


def video_figures(session: SessionInput, rows: Sequence[RepRow],
                  events: Sequence[Mapping[str, Any]], envelope_pct: np.ndarray,
                  fs: float) -> list[tuple[str, str, Figure]]:
    """``(key, caption, figure)`` per moment (see the module docstring); ``[]`` when the session
    has no video, the video extra is missing, or the video file is gone."""
    rec = session.signal
    meta = (rec.sidecar or {}) if rec is not None else {}
    table = meta.get("video")
    if rec is None or not isinstance(table, dict):
        return []
    from emgfeedback.errors import EmgError
    from emgfeedback.video import missing

    why = missing()
    if why is not None:
        log.info("the session's video is not in the report: %s", why)
        return []
    from emgfeedback.video.record import VideoTrack

    first = int(meta.get("first_sample") or 0)
    rate = float(rec.fs)
    out: list[tuple[str, str, Figure]] = []
    try:
        track = VideoTrack(table, Path(rec.path).parent)
    except EmgError as exc:
        log.warning("the session's video is not in the report: %s", exc)
        return []
    items: list[tuple[np.ndarray, float, Sequence[int], bool, str]] = []
    captions: list[str] = []
    try:
        for kind, t, caption, idx in _moments(rows, events, envelope_pct, fs, session.channels):
            frame = track.frame_at(first + int(round(t * rate)))
            img = track.image(frame) if frame is not None else None
            if img is None:
                continue
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            if track.mirrored:
                rgb = np.ascontiguousarray(rgb[:, ::-1])
            n = len(items) + 1
            items.append((rgb, t, idx, kind == "synkinesis", f"{n}. {caption.split(':')[0]} "
                          f"at {t:.1f} s"))
            captions.append(f"{n}. {caption} (frame {frame})")
    except EmgError as exc:
        log.warning("the session's video is not in the report: %s", exc)
    finally:
        track.close()
    for k in range(0, len(items), PER_FIGURE):
        out.append((f"video-{k // PER_FIGURE}",
                    "The camera beside the EMG (each frame as the camera saw it, the envelopes "
                    "around that moment, the dashed line at it): " +
                    "; ".join(captions[k:k + PER_FIGURE]) + ".",
                    _grid(items[k:k + PER_FIGURE], envelope_pct, fs, session.channels)))
    return out
