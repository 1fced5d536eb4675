"""Files at the boundary: the one check that a path names a regular file of bounded size.

At the bottom of the layers (it imports only :mod:`emgfeedback.errors`) so that both the
configuration reader and the input validation (:mod:`emgfeedback.validate`) use it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from emgfeedback.errors import FileFormatError

__all__ = ["input_file"]


def input_file(path: str | Path, what: str = "file", max_bytes: int | None = None) -> Path:
    """``path`` if it names an existing regular file (of at most ``max_bytes``), else a
    :class:`FileFormatError` naming it.  Refusing FIFOs and devices keeps a reader from blocking
    forever; streaming from them is what the ``serial:``/``lsl:`` sources are for."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileFormatError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileFormatError(f"{p}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = "named pipe" if stat.S_ISFIFO(st.st_mode) else (
            "device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "special file")
        raise FileFormatError(f"{p}: is a {kind}, not a regular {what} (stream from a board with "
                              "--board serial:PORT or lsl:NAME instead)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileFormatError(f"{p}: {st.st_size} bytes is too large for a {what} "
                              f"(at most {max_bytes})")
    return p
