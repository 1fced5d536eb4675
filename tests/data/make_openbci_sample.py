"""Write ``openbci_cyton_v5.txt``: a small file in the OpenBCI GUI v5 raw format (Cyton, 8 EXG
channels at 250 Hz), written for this project from the format's published layout.

It holds 2 s of synthetic signal with one dropped packet (sample index 100 -> 102) and a marker
(value 1.0 in ``Marker Channel``) at row 50.  Run ``python tests/data/make_openbci_sample.py`` to
regenerate.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

COLUMNS = (["Sample Index"] + [f"EXG Channel {k}" for k in range(8)]
           + ["Accel Channel 0", "Accel Channel 1", "Accel Channel 2", "Not Used",
              "Digital Channel 0 (D11)", "Digital Channel 1 (D12)", "Digital Channel 2 (D13)",
              "Digital Channel 3 (D17)", "Not Used", "Digital Channel 4 (D18)",
              "Analog Channel 0", "Analog Channel 1", "Analog Channel 2", "Timestamp",
              "Marker Channel", "Timestamp (Formatted)"])


def main() -> None:
    rng = np.random.default_rng(7)
    fs = 250
    n = 500
    t0 = dt.datetime(2024, 3, 5, 10, 15, 0)
    lines = ["%OpenBCI Raw EXG Data", "%Number of channels = 8", "%Sample Rate = 250 Hz",
             "%Board = OpenBCI_GUI$BoardCytonSerial", ", ".join(COLUMNS)]
    k = 0
    for i in range(n):
        if i == 101:
            k += 1  # one packet lost on the radio link
        idx = k % 256
        exg = -24000.0 + 1500.0 * np.arange(8) + rng.normal(0, 8.0, 8)
        ts = t0.timestamp() + k / fs
        marker = 1.0 if i == 50 else 0.0
        vals = ([f"{idx:.1f}"] + [f"{v:.6f}" for v in exg]
                + ["0.000000"] * 3 + ["0.0"] * 7 + ["0.0"] * 3
                + [f"{ts:.6f}", f"{marker:.1f}",
                   dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]])
        lines.append(", ".join(vals))
        k += 1
    Path(__file__).with_name("openbci_cyton_v5.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
