"""emgfeedback: surface-EMG biofeedback for facial paralysis rehabilitation.

The package is organised by the direction data flows in (see docs/architecture.md):

``sources`` -> ``dsp`` -> ``clinical`` -> ``io`` / ``views``.

Core packages (everything except ``views.gui``) import no Qt.
"""

__all__ = ["__version__"]

__version__: str  # looked up on first use: importlib.metadata costs ~50-150 ms of start-up


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'emgfeedback' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("emgfeedback")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        v = "0.0.0+unknown"
    globals()["__version__"] = v
    return v
