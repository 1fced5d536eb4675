"""Shared pieces of the screens: styled labels and the placement figure (GUI thread)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel

from emgfeedback.views.gui.widgets import COLOURS

def _label(text: str = "", size: float = 0.0, bold: bool = False, muted: bool = False,
           wrap: bool = False) -> QLabel:
    lab = QLabel(text)
    # Style sheets, not setFont: the window's style sheet would override a widget font.
    css = []
    if size:
        css.append(f"font-size: {size:g}pt;")
    if bold:
        css.append("font-weight: bold;")
    if muted:
        css.append(f"color: {COLOURS['muted'].name()};")
    if css:
        lab.setStyleSheet(" ".join(css))
    lab.setWordWrap(wrap)
    return lab


def _title(text: str) -> QLabel:
    return _label(text, 20, bold=True)


def placement_figure_path() -> Path | None:
    """The electrode placement figure: the package's ``data/placement.svg`` (the only copy, see
    :func:`emgfeedback.views.summary.placement_svg_path`), or ``None`` when not installed."""
    from emgfeedback.views.summary import placement_svg_path

    return placement_svg_path()
