"""The report's view of the signal: the chain's envelope as means over short bins (100 Hz) and
the samples on the rails, collected from one pass of the chain over the recording.

:class:`EnvelopeBins` is a pipeline consumer (``feed``/``close``): when the report runs
``analyze`` itself it is fed the chunks of the analysis' own pass (the envelopes are computed
once), otherwise the report feeds it from its own pass (:func:`.model.envelopes_pct`).  NumPy
only (no matplotlib): the history opens sessions with this package too.

Saved with the analysis: when an analysis is written beside its recording (``emgfeedback
analyze FILE --json FILE-analysis.json``, or the window when a recorded session stops), the
bins of the analysis' own pass are saved beside it (:func:`save_report_data`, the file
:func:`emgfeedback.io.edf.sidecar.report_data_path`), so a later report draws them without a
pass of the chain over the file.  They are used only for the recording whose content id they
were made from and with the analysis JSON they were saved with, to the byte
(:func:`load_report_data`); anything else (another file, another analysis, a damaged or
foreign file) is ignored and the report runs its pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.config import DspConfig, QualityConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.errors import FileFormatError
from emgfeedback.recording import Recording
from emgfeedback.stream import Chunk, Processed, Quality, Status, rail_counts
from emgfeedback.vocabulary import REST, parse_annotation

__all__ = ["REPORT_BIN_S", "BinsCollector", "EnvelopeBins", "SignalPass", "bins_for",
           "chain_pass", "load_report_data", "save_report_data", "save_with_analysis"]

log = logging.getLogger(__name__)

#: The report's envelopes are means over bins of this many seconds.
REPORT_BIN_S = 0.01


def bin_samples(fs: float, bin_s: float = REPORT_BIN_S) -> int:
    """Samples per envelope bin at ``fs``: also the grid of :func:`chain_pass`'s blocks, so its
    quality snapshots fall on the same samples with or without bins to fill."""
    return max(1, int(round(bin_s * fs)))


class EnvelopeBins:
    """Means of the envelope over bins of ``round(bin_s * fs)`` samples aligned to the sample
    index, and the samples per channel on the digital rails, of one pass over a recording.

    Parameters
    ----------
    fs, n_samples, n_channels:
        The recording's rate, length and channel count (channels in the recording's order).
    rails_uv:
        The recording's digital rails (:attr:`emgfeedback.recording.Recording.rails_uv`).
    """

    def __init__(self, fs: float, n_samples: int, n_channels: int,
                 rails_uv: tuple[float, float] | None, bin_s: float = REPORT_BIN_S) -> None:
        self.k = bin_samples(fs, bin_s)
        self.fs = fs / self.k
        self.rails_uv = rails_uv
        nbins = -(-n_samples // self.k)
        self.acc = np.zeros((nbins, n_channels))
        self.cnt = np.zeros(nbins)
        self.saturated = np.zeros(n_channels, dtype=np.int64)
        self.samples = 0
        #: the means as saved (:meth:`saved`), else ``None``
        self._saved: np.ndarray | None = None
        #: rows of the bin ``_held_bin`` not yet summed (:meth:`add`)
        self._held: list[np.ndarray] = []
        self._held_bin = 0
        #: the quality at rest being computed (:meth:`start_rest_pass`)
        self._rest: Future[Quality] | None = None

    def start_rest_pass(self, rec: Recording) -> None:
        """Start the chain's pass over the rest period of ``rec`` (the quality at rest, default
        settings: :func:`chain_pass` without bins) in a background thread, for envelopes that
        need no pass: it runs while the caller imports the report's drawing (the filter kernels
        release the GIL).  :meth:`rest_quality` takes its result; :meth:`wait` before closing
        the recording."""
        if self._rest is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="report-rest")
            self._rest = pool.submit(chain_pass, rec, None, None, None)
            pool.shutdown(wait=False)  # the thread ends with its one task

    def rest_quality(self, rec: Recording, cfg: DspConfig | None, qcfg: QualityConfig | None,
                     block_s: float) -> Quality:
        """The quality at rest of ``rec`` (:func:`chain_pass` without bins): the one started by
        :meth:`start_rest_pass` for the default settings, else computed now."""
        if (self._rest is not None and cfg in (None, DspConfig()) and qcfg is None
                and block_s == 10.0):
            return self._rest.result()
        return chain_pass(rec, cfg, qcfg, None, block_s)

    def wait(self) -> None:
        """Wait until a pass started by :meth:`start_rest_pass` has stopped reading."""
        if self._rest is not None:
            self._rest.exception()

    def feed(self, p: Processed) -> None:
        self.add(p.start, p.envelope, p.raw)

    def close(self) -> None:
        pass

    def add(self, start: int, envelope: np.ndarray, raw: np.ndarray) -> None:
        """The chain's ``envelope`` and the ``raw`` samples ``(samples, channels)`` from
        ``start``.

        Each bin is summed in one reduction over its samples in order, whatever blocks they
        came in: the rows of a bin a block leaves unfinished (a block edge or a gap inside
        it) are held until the bin is left, so the analysis' 8 s blocks, the report's own
        pass and any other split give the same bins to the bit (at 2048 Hz, 512 Hz, after
        gaps)."""
        if self._saved is not None:
            raise RuntimeError("saved envelope bins are complete: nothing is added to them")
        n = envelope.shape[0]
        if n == 0:
            return
        self.samples += n
        self.saturated += np.asarray(rail_counts(raw, self.rails_uv), dtype=np.int64)
        k = self.k
        et = np.ascontiguousarray(envelope.T)  # (channels, samples): a bin's samples in a row
        end = start + n
        i = 0  # rows of this block taken so far
        if self._held and self._held_bin != start // k:
            self._flush()  # the held bin was left (a gap to a later bin)
        if start % k:  # the block starts inside a bin: its first rows join that bin
            i = min(n, k - start % k)
            self._hold(start // k, et[:, :i])
            if (start + i) % k == 0:
                self._flush()
        whole = (end - (start + i)) // k  # whole bins from here
        if whole:
            a = (start + i) // k
            sums = et[:, i:i + whole * k].reshape(et.shape[0], whole, k).sum(axis=2).T
            self.acc[a:a + whole] += sums
            self.cnt[a:a + whole] += k
            i += whole * k
        if i < n:  # the block ends inside a bin: held until the bin is left
            self._hold((start + i) // k, et[:, i:])

    def _hold(self, b: int, rows: np.ndarray) -> None:
        self._held_bin = b
        self._held.append(rows)

    def _flush(self) -> None:
        """The held rows of one bin summed in one reduction, as a whole bin's are."""
        if self._held:
            rows = np.ascontiguousarray(np.concatenate(self._held, axis=1))
            self.acc[self._held_bin] += rows.sum(axis=1)
            self.cnt[self._held_bin] += rows.shape[1]
            self._held = []

    def envelope(self) -> np.ndarray:
        """``(bins, channels)`` mean envelope per bin; NaN where no sample was seen (gaps)."""
        if self._saved is not None:
            return self._saved
        self._flush()
        with np.errstate(invalid="ignore", divide="ignore"):
            env = self.acc / self.cnt[:, None]
        env[self.cnt == 0] = np.nan
        return env

    @classmethod
    def saved(cls, fs: float, samples: int, rails_uv: tuple[float, float] | None,
              envelope: np.ndarray, saturated: np.ndarray,
              bin_s: float = REPORT_BIN_S) -> EnvelopeBins:
        """The bins of a whole pass of ``samples`` samples as :meth:`envelope` and
        :attr:`saturated` gave them (read back by :func:`load_report_data`): complete, nothing
        more is added to them (the sums and counts are not kept)."""
        self = cls(fs, 0, envelope.shape[1], rails_uv, bin_s)
        self._saved = envelope
        self.saturated = saturated
        self.samples = samples
        return self


def bins_for(rec: Recording) -> EnvelopeBins:
    """Empty :class:`EnvelopeBins` for ``rec`` at the report's rate (:data:`REPORT_BIN_S`)."""
    return EnvelopeBins(rec.fs, rec.n_samples, len(rec.channels), rec.rails_uv, REPORT_BIN_S)


class BinsCollector:
    """``observe=`` for :func:`emgfeedback.app.analyze.analyze`: one :func:`bins_for` per pass
    of the analysis over ``rec``; :attr:`last` is the one that has seen the whole file."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.made: list[EnvelopeBins] = []

    def __call__(self) -> EnvelopeBins:
        self.made.append(bins_for(self.rec))
        return self.made[-1]

    @property
    def last(self) -> EnvelopeBins | None:
        return self.made[-1] if self.made and self.made[-1].samples else None


def _bins_shape(rec: Recording) -> tuple[int, int]:
    """``(bins, channels)`` of :func:`bins_for` ``(rec)``."""
    return -(-rec.n_samples // bin_samples(rec.fs)), len(rec.channels)


#: ``format`` and ``version`` of :func:`save_report_data`'s files.
REPORT_DATA_FORMAT = "emgfeedback-report-data"
REPORT_DATA_VERSION = 1


def _report_data_meta(rec: Recording, content_id: str, analysis_text: bytes) -> dict[str, Any]:
    """What ties saved bins to their recording, its chain and its analysis."""
    return {"format": REPORT_DATA_FORMAT, "version": REPORT_DATA_VERSION,
            "content_id": content_id,
            "analysis_sha256": hashlib.sha256(analysis_text).hexdigest(),
            "fs": float(rec.fs), "n_samples": int(rec.n_samples),
            "channels": list(rec.channels), "bin_s": REPORT_BIN_S,
            "rails_uv": list(rec.rails_uv) if rec.rails_uv is not None else None,
            "chain": "default"}


def save_report_data(path: Path, rec: Recording, bins: EnvelopeBins, content_id: str,
                     analysis_text: str | bytes) -> bool:
    """Save the bins of the analysis' pass over ``rec`` (the default chain, its whole file) to
    ``path`` (:func:`emgfeedback.io.edf.sidecar.report_data_path` of the analysis JSON), with the
    recording's ``content_id`` and the SHA-256 of ``analysis_text``, the analysis JSON as written
    beside it.  ``0600``, written to a temporary name and renamed.  A failure to write is logged
    and returns ``False``: the report then runs its own pass, as without the file."""
    text = analysis_text.encode("utf-8") if isinstance(analysis_text, str) else analysis_text
    if not bins.samples or bins.acc.shape != _bins_shape(rec):
        log.warning("%s: no pass of the analysis over the file; report data not saved", rec.path)
        return False
    from emgfeedback.validate import private_file

    meta = json.dumps(_report_data_meta(rec, content_id, text), allow_nan=False)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with private_file(tmp, "wb") as f:  # patient data: owner only
            np.savez(f, meta=np.array(meta), envelope=np.ascontiguousarray(bins.envelope()),
                     saturated=np.asarray(bins.saturated, dtype=np.int64),
                     samples=np.array(int(bins.samples), dtype=np.int64))
        os.replace(tmp, path)
    except BaseException as exc:
        # patient data: no partial file is left behind (an error, Ctrl-C)
        try:
            tmp.unlink()
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
        log.warning("%s: report data not saved (%s); the report will read the signal", path, exc)
        return False
    return True


def save_with_analysis(analysis: Path, rec: Recording, bins: EnvelopeBins,
                       content_id: Callable[[Recording], str]) -> bool:
    """Save ``bins`` beside the analysis JSON just written at ``analysis``
    (:func:`emgfeedback.io.edf.sidecar.report_data_path`), tied to the recording's content id
    (``content_id(rec)``: :func:`.load.content_id`, passed in, as ``load`` imports this
    module) and to that JSON's bytes: the one way the CLI and the window save them.  A cache:
    any failure is logged and returns ``False``; the analysis as written, and whatever the
    caller does next (the window stores the session in the history), are never affected."""
    from emgfeedback.io.edf.sidecar import report_data_path

    try:
        return save_report_data(report_data_path(analysis), rec, bins, content_id(rec),
                                Path(analysis).read_bytes())
    except Exception as exc:
        log.warning("%s: the report's envelopes were not saved (%s: %s); a report reads the "
                    "signal", analysis, type(exc).__name__, exc)
        return False


def load_report_data(path: Path, rec: Recording, content_id: str,
                     analysis_text: bytes) -> EnvelopeBins | None:
    """The bins :func:`save_report_data` saved at ``path``, when they were made from this
    recording's content (``content_id``) with the default chain and saved with this analysis
    (``analysis_text``, the JSON's bytes); ``None`` (the report runs its pass) when there is no
    such file or it belongs to another recording or analysis, or is not a file of ours."""
    nbins, nch = _bins_shape(rec)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size > nbins * nch * 8 + nch * 8 + (1 << 20):  # bounded: never a big foreign file read
        log.info("%s: not the report data of %s; ignored", path, rec.path)
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"][()]))
            if meta != _report_data_meta(rec, content_id, analysis_text):
                log.info("%s: saved for another recording or analysis; ignored", path)
                return None
            env = z["envelope"]
            sat = z["saturated"]
            samples = int(z["samples"][()])
    except Exception as exc:  # a cache: whatever a damaged file raises (zipfile, the .npy
        # header's parser, zlib), the report runs its own pass
        log.info("%s: unreadable report data (%s: %s); ignored", path, type(exc).__name__, exc)
        return None
    if (env.shape != (nbins, nch) or env.dtype != np.float64 or sat.shape != (nch,)
            or sat.dtype != np.int64 or np.isinf(env).any() or not 0 < samples <= rec.n_samples):
        log.info("%s: report data of the wrong shape; ignored", path)
        return None
    return EnvelopeBins.saved(rec.fs, samples, rec.rails_uv, env, sat)


def _rest_period(rec: Recording) -> tuple[int, int]:
    """``(start, stop)`` of the first ``rest`` period (the first 10 s without one)."""
    rest = [m for m in rec.markers if parse_annotation(m.text).kind == REST]
    a, cut = (rest[0].sample, rest[0].sample + rest[0].duration) if rest else (0, int(10 * rec.fs))
    cut = max(1, min(rec.n_samples, cut))
    return min(a, cut - 1), cut


def _median_quality(snaps: Sequence[Quality]) -> Quality:
    """Per channel and measure, the median of quality snapshots: a blink or a swallow during
    the rest period lifts a few snapshots of the running measures, not their median."""
    def med(f: str) -> np.ndarray:
        return np.asarray(np.median(np.stack([getattr(q, f) for q in snaps]), axis=0))

    return Quality(at=snaps[-1].at, rms_uv=med("rms_uv"), mains_ratio=med("mains_ratio"),
                   mains_uv=med("mains_uv"), diff_rms_uv=med("diff_rms_uv"),
                   clip_fraction=med("clip_fraction"))


class PassStopped(Exception):
    """A :func:`chain_pass` stopped before its end by its ``stop`` event."""


def chain_pass(rec: Recording, cfg: DspConfig | None, qcfg: QualityConfig | None,
               bins: EnvelopeBins | None, block_s: float = 10.0,
               stop: threading.Event | None = None) -> Quality:
    """The recording through the live chain, stretch by stretch between gaps, ``block_s``
    seconds at a time (a quarter of a second during the rest period); returns the quality at
    rest (see :class:`SignalScan`) and feeds ``bins`` every block.  Without ``bins`` the pass
    stops once the rest period is over: the quality at rest is all it is for (the chain is
    chunk-invariant, so its measures there are the same as in a whole pass).  ``stop``, once
    set, ends the pass at the next block with :class:`PassStopped`."""
    chain = Chain(rec.fs, len(rec.channels), cfg, qcfg, adc_range_uv=rec.rails_uv)
    # the blocks' grid is the bins' whether or not bins are filled: the quality snapshots at
    # rest (their median is the report's table) are taken at the same samples either way
    k = bins.k if bins is not None else bin_samples(rec.fs)
    rest_a, cut = _rest_period(rec)
    # settled: 3 time constants of the running measures after the rest period starts
    settled = rest_a + int(3 * (qcfg or QualityConfig()).window_s * rec.fs)
    blk = max(k, int(block_s * rec.fs) // k * k)
    small = max(k, int(0.25 * rec.fs) // k * k)  # snapshots 4 per second during rest
    rest_snaps: list[Quality] = []
    rest_q: Quality | None = None
    last_q: Quality | None = None
    prev = 0
    for a, b in rec.segments():
        s = a
        while s < b:
            if bins is None and rest_q is not None:
                return rest_q
            if stop is not None and stop.is_set():
                raise PassStopped(f"{rec.path}: signal pass stopped")
            e = min(b, s + blk)
            if rest_q is None and s < cut:
                e = min(e, cut, s + small) if s >= rest_a else min(e, rest_a)
            x = rec.read(s, e)
            p = chain.process(Chunk(x, s, rec.fs, rec.channels,
                                    Status(lost_samples=max(0, s - prev))))
            prev = e
            last_q = p.quality
            if rest_q is None and e >= settled and s >= rest_a:
                rest_snaps.append(p.quality)
            if rest_q is None and e >= cut:
                rest_q = _median_quality(rest_snaps or [p.quality])
            if bins is not None:
                bins.add(s, p.envelope, x)
            s = e
    if last_q is None:
        raise FileFormatError(f"{rec.path}: the recording holds no samples")
    return rest_q or last_q


class SignalPass:
    """The report's pass of the chain over a recording (:func:`chain_pass` into
    :func:`bins_for`, default settings), started now in a background thread: the filter kernels
    release the GIL, so it runs on the second core while the caller imports and prepares the
    report.  :meth:`result` waits for it; :meth:`wait` before closing the recording."""

    def __init__(self, rec: Recording) -> None:
        self.bins = bins_for(rec)
        self._stop = threading.Event()
        pool = ThreadPoolExecutor(1, thread_name_prefix="report-signal")
        self._future = pool.submit(chain_pass, rec, None, None, self.bins, stop=self._stop)
        pool.shutdown(wait=False)  # the thread ends with its one task

    def result(self) -> tuple[EnvelopeBins, Quality]:
        """The bins and the quality at rest (raises what the pass raised)."""
        return self.bins, self._future.result()

    def wait(self) -> None:
        """Wait until the pass has stopped reading the recording (its error, if any, is raised
        by :meth:`result`)."""
        self._future.exception()

    def cancel(self) -> None:
        """Stop the pass within one block if it is still running (the report failed or was
        interrupted); :meth:`result` then raises :class:`PassStopped`."""
        self._stop.set()
