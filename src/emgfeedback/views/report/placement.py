"""The electrode placement figure of a report: its SVG (for the HTML) and its rasterisation by
``rsvg-convert`` (for the PDF), without matplotlib.

:func:`start_placement_png` starts the rasterisation in a background thread (a separate
process, ``rsvg-convert``): :func:`~emgfeedback.views.report.write_report` starts it before the
report's drawing side is imported, so it runs on a core the import leaves idle.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor

from emgfeedback.views.summary import placement_svg_path

__all__ = ["placement_png", "placement_svg", "start_placement_png"]

log = logging.getLogger(__name__)


def placement_svg() -> str | None:
    """The electrode placement figure as inline SVG text, or ``None`` when it is not installed.

    The file is :func:`emgfeedback.views.summary.placement_svg_path`: ``$EMGFEEDBACK_PLACEMENT_SVG``
    or the package data ``emgfeedback/data/placement.svg`` (the project's only copy).
    """
    path = placement_svg_path()
    if path is None:
        return None
    try:
        return _clean_svg(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("placement figure %s unreadable: %s", path, exc)
        return None


def _clean_svg(text: str) -> str | None:
    """The ``<svg>...</svg>`` element of an SVG file (no XML prolog, no scripts), or ``None``."""
    m = re.search(r"<svg\b.*</svg>", text, re.DOTALL | re.IGNORECASE)
    if not m:
        return None
    return re.sub(r"<script\b.*?</script>", "", m.group(0), flags=re.DOTALL | re.IGNORECASE)


_PLACEMENT: dict[tuple[str, int], Future[bytes | None]] = {}


def start_placement_png(svg: str | None, dpi: int = 150) -> None:
    """Start :func:`placement_png` of ``svg`` in a background thread (``rsvg-convert`` runs
    while the report is built); the next :func:`placement_png` of the same figure takes it."""
    if svg and (svg, dpi) not in _PLACEMENT:
        pool = ThreadPoolExecutor(1, thread_name_prefix="report-placement")
        _PLACEMENT[(svg, dpi)] = pool.submit(_placement_png, svg, dpi)
        pool.shutdown(wait=False)


def placement_png(svg: str | None, dpi: int = 150) -> bytes | None:
    """The placement figure rasterised by ``rsvg-convert`` (librsvg) for the PDF, or ``None``
    when there is no figure or no ``rsvg-convert`` (matplotlib cannot draw SVG)."""
    started = _PLACEMENT.pop((svg, dpi), None) if svg else None
    if started is not None:
        return started.result()
    return _placement_png(svg, dpi)


def _placement_png(svg: str | None, dpi: int) -> bytes | None:
    import shutil
    import subprocess

    exe = shutil.which("rsvg-convert")
    if not svg or exe is None:
        return None
    try:
        out = subprocess.run([exe, "--format", "png", "--dpi-x", str(dpi), "--dpi-y", str(dpi)],
                             input=svg.encode("utf-8"), capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("rsvg-convert failed: %s", exc)
        return None
    if out.returncode != 0 or not out.stdout.startswith(b"\x89PNG"):
        log.warning("rsvg-convert failed: %s", out.stderr.decode("utf-8", "replace").strip())
        return None
    return out.stdout
