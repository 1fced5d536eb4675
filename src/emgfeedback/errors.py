"""One exception family for the whole project.

Hard faults (a port that cannot be opened, a file that cannot be read, a bad configuration key)
raise a subclass of :class:`EmgError`.  The command line catches :class:`EmgError` at its edge and
prints ``str(exc)`` as one line; so every message must say *what happened* and *what to do*.

Soft faults (lost samples, CRC errors, saturation) are not exceptions: they travel with each
:class:`~emgfeedback.stream.Chunk` in its :class:`~emgfeedback.stream.Status`.
"""

from __future__ import annotations


class EmgError(Exception):
    """Base class of every error the user should see as one clear line."""


class ConfigError(EmgError):
    """A configuration file or option is invalid (unknown key, wrong type, out of range)."""


class SourceError(EmgError):
    """A signal source could not be opened or failed while streaming."""


class DeviceNotFound(SourceError):
    """The named serial port or board does not exist."""


class DeviceBusy(SourceError):
    """The port is in use by another program."""


class PermissionDenied(SourceError):
    """The user may not open the port (on Linux: not in the ``dialout`` group)."""


class Disconnected(SourceError):
    """The board went away while streaming (cable unplugged, board reset)."""


class ProtocolError(SourceError):
    """The board answers, but not in a protocol or version this software speaks."""


class SourceStateError(SourceError):
    """A source was used out of order (``read`` before ``open`` or after ``close``): the one
    error every source raises for it (:class:`emgfeedback.stream.SourceBase`)."""


class SourceTimeout(SourceError):
    """No data arrived within the allowed time."""


class FileFormatError(EmgError):
    """A recording or import file is unknown, damaged or truncated.

    The message names the file and, where known, the line or byte where the problem is.
    """


class CalibrationError(EmgError):
    """A calibration segment was refused (clipping, flat line, mains surviving the notches, too
    short)."""


class DatabaseError(EmgError):
    """The patient history database is unreadable or corrupt."""
