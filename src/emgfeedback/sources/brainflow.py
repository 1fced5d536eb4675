"""A BrainFlow board as a source: ``brainflow:BOARD`` (``SYNTHETIC_BOARD``, ``CYTON_BOARD``, ...
or a numeric board id), with ``port=`` for boards on a serial port (``--port /dev/ttyUSB0``).

BrainFlow runs its own acquisition thread and buffers samples; :meth:`BrainFlowSource.read` polls
``get_board_data`` every few milliseconds until data arrive or ``timeout`` passes.  The EMG (or,
lacking those, EXG) rows become channels in µV, which is BrainFlow's unit for them; the board's
package counter (0-255) reveals lost samples, which make the next chunk's ``start`` jump and set
``status.lost_samples``; the marker row becomes markers.  ``brainflow`` is imported lazily.

Threads: all methods are called from the session thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError, SourceError
from emgfeedback.stream import Chunk, Marker, SourceBase, SourceInfo, Status

__all__ = ["BrainFlowSource"]

log = logging.getLogger(__name__)


def _bf() -> Any:
    try:
        from brainflow import board_shim
    except ImportError:
        raise SourceError("this board needs the 'brainflow' package: "
                          "pip install emgfeedback[brainflow]") from None
    return board_shim


class BrainFlowSource(SourceBase):
    """Stream a BrainFlow board.

    Parameters
    ----------
    board:
        Board name from ``BoardIds`` (case-insensitive, ``_BOARD`` optional) or numeric id.
    port:
        Serial port for boards that need one.
    """

    def __init__(self, board: str, port: str = "") -> None:
        bs = _bf()
        name = board.strip().upper()
        try:
            if name.lstrip("-").isdigit():
                self.board_id = int(name)
            else:
                key = name if name in bs.BoardIds.__members__ else f"{name}_BOARD"
                self.board_id = bs.BoardIds[key].value
        except KeyError:
            raise ConfigError(f"unknown BrainFlow board {board!r} (e.g. SYNTHETIC_BOARD, "
                              "CYTON_BOARD, GANGLION_BOARD)") from None
        self.port = port
        shim = bs.BoardShim
        self.fs = float(shim.get_sampling_rate(self.board_id))
        try:
            self.rows = list(shim.get_emg_channels(self.board_id))
        except Exception:
            self.rows = list(shim.get_exg_channels(self.board_id))
        self.pkg_row = shim.get_package_num_channel(self.board_id)
        try:
            self.marker_row: int | None = shim.get_marker_channel(self.board_id)
        except Exception:
            self.marker_row = None
        bname = bs.BoardIds(self.board_id).name
        self.info = SourceInfo(name=f"brainflow:{bname}", fs=self.fs,
                               channels=tuple(f"EXG {k}" for k in range(len(self.rows))),
                               board=bname, adc_bits=24, adc_range_uv=(-187500.0, 187500.0),
                               extra={"brainflow_board": self.board_id})
        self._shim: Any = None
        self._count = 0
        self._last_pkg: int | None = None
        self._pending: np.ndarray | None = None

    def open(self) -> None:
        bs = _bf()
        params = bs.BrainFlowInputParams()
        params.serial_port = self.port
        bs.BoardShim.disable_board_logger()
        shim = bs.BoardShim(self.board_id, params)
        try:
            shim.prepare_session()
        except bs.BrainFlowError as exc:
            raise SourceError(f"{self.info.name}: cannot open the board"
                              f"{' on ' + self.port if self.port else ''}: {exc}") from None
        self._shim = shim

    def start(self) -> None:
        assert self._shim is not None
        self._shim.start_stream()

    def stop(self) -> None:
        if self._shim is not None and self._shim.is_prepared():
            try:
                self._shim.stop_stream()
            except _bf().BrainFlowError:
                pass

    def close(self) -> None:
        if self._shim is not None and self._shim.is_prepared():
            self._shim.release_session()
        self._shim = None

    def read(self, timeout: float | None = None) -> Chunk | None:
        if self._shim is None:
            raise SourceError(f"{self.info.name} is not open")
        if self._pending is not None:
            d, self._pending = self._pending, None
        else:
            # timeout None: block until data (stream.py, the source contract)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                d = self._shim.get_board_data()
                if d.shape[1]:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                time.sleep(0.005)
        pkg = np.rint(d[self.pkg_row]).astype(np.int64)
        prev = self._last_pkg if self._last_pkg is not None else int(pkg[0]) - 1
        steps = np.diff(np.concatenate([[prev], pkg])) % 256
        steps[steps == 0] = 256
        lost_before = int(steps[0] - 1)
        self._last_pkg = int(pkg[-1])
        start = self._count + lost_before
        # lost samples inside this block: split at the first one, keep the rest for next time
        inner = np.flatnonzero(steps[1:] > 1)
        x = d[self.rows].T.astype(np.float64)
        markers: tuple[Marker, ...] = ()
        pos = start + np.concatenate([[0], np.cumsum(steps[1:])])
        if inner.size:  # rows after a loss inside the block become the next chunk
            k = int(inner[0]) + 1
            self._pending = d[:, k:]
            x = x[:k]
            pos = pos[:k]
            self._last_pkg = int(pkg[k - 1])
        if self.marker_row is not None:
            mv = d[self.marker_row][: len(x)]
            markers = tuple(Marker(int(pos[i]), 0, f"marker {mv[i]:g}")
                            for i in np.flatnonzero(mv != 0))
        self._count = int(pos[-1]) + 1
        return Chunk(x, start, self.fs, self.info.channels,
                     Status(lost_samples=lost_before,
                            saturated=tuple(0 for _ in self.rows)), markers)


def create(arg: str = "", *, port: str = "") -> BrainFlowSource:
    """``brainflow:BOARD`` (registry factory)."""
    if not arg:
        raise ConfigError("brainflow needs a board: --board brainflow:SYNTHETIC_BOARD")
    return BrainFlowSource(arg, port=port or "")

