"""emgfeedback: surface-EMG biofeedback for facial paralysis rehabilitation.

The package is organised by the direction data flows in (see docs/architecture.md):

``sources`` -> ``dsp`` -> ``clinical`` -> ``io`` / ``views``.

Core packages (everything except ``views.gui``) import no Qt.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emgfeedback")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
