"""Write a :class:`~emgfeedback.recording.Recording` as EDF+, BDF+ or CSV.

:func:`export` chooses the format from the suffix: ``.edf`` (EDF+, 16 bit), ``.bdf`` (BDF+,
24 bit), ``.csv``/``.tsv``/``.txt`` (the emgfeedback CSV: ``# fs=`` and ``# marker`` comment lines,
then a ``sample`` column and one column per channel).  Gaps stay gaps: in EDF/BDF as ``gap``
annotations over digital-minimum fill (see :mod:`emgfeedback.io.edf.writer`), in CSV as missing rows
(the ``sample`` column jumps); no value is ever made up.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from emgfeedback.errors import ConfigError
from emgfeedback.io.edf.writer import write_edf
from emgfeedback.recording import Recording

__all__ = ["export", "write_csv"]

log = logging.getLogger(__name__)


def write_csv(rec: Recording, path: Path | str, block: int = 1 << 16) -> None:
    """emgfeedback CSV of ``rec`` (read back by :func:`emgfeedback.io.importers.load`)."""
    path = Path(path)
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    from emgfeedback.validate import private_file

    with private_file(path, "w") as f:  # 0600: patient data
        f.write("# emgfeedback csv v1\n")
        f.write(f"# fs={rec.fs:g}\n")
        for m in rec.markers:
            text = m.text.replace("\n", " ")
            f.write(f"# marker sample={m.sample} duration={m.duration} text={text}\n")
        f.write(sep.join(["sample", *rec.channels]) + "\n")
        for a in range(0, rec.n_samples, block):
            x = rec.read(a, a + block)
            idx = np.arange(a, a + len(x))
            ok = np.all(np.isfinite(x), axis=1)
            np.savetxt(f, np.hstack([idx[ok, None], x[ok]]), delimiter=sep,
                       fmt=["%d"] + ["%.6g"] * len(rec.channels))


def export(rec: Recording, path: Path | str, *, patient: str = "X") -> str:
    """Write ``rec`` to ``path`` in the format its suffix names; returns the format name."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".edf", ".bdf"):
        write_edf(rec, path, bdf=suffix == ".bdf", patient=patient)
        return "BDF+" if suffix == ".bdf" else "EDF+"
    if suffix in (".csv", ".tsv", ".txt"):
        write_csv(rec, path)
        return "CSV"
    raise ConfigError(f"{path}: unsupported output format {suffix!r}; use .edf, .bdf or .csv")
