"""Publish a session on the Lab Streaming Layer: raw, envelope and event-marker streams.

**Off by default**: nothing listens on the network unless ``--lsl`` is given.  **Loopback by
default**: with ``--lsl`` the outlets are reachable from this machine only (127.0.0.1), unless
the user names an interface with ``--lsl-scope ADDRESS|INTERFACE`` (then that address only) or
``--lsl-scope all`` (liblsl's own behaviour: every interface, IPv4 and IPv6).

liblsl has no setting for the address its sockets bind to, so for ``localhost`` or a named
interface the outlets run in a helper process (``python -m emgfeedback.io.lsl``) that

* reads a liblsl configuration the app writes (``LSLAPICFG``: IPv6 disabled, discovery scope
  ``machine`` for loopback or ``link`` for an interface, multicast listener on the address), and
* preloads ``emgfeedback/data/lsl_bind.c`` (compiled on first use with the system C compiler
  into the user cache folder), which turns liblsl's ``bind()`` to the wildcard address into a
  bind to the chosen address.

What is exposed, then: three outlets (below) on TCP/UDP ports from 16572 up and the discovery
port 16571, all on the chosen address.  The session thread hands each chunk to the helper over a
pipe; a helper that dies is an error of the session (one line), not a silent loss.

Streams (``NAME`` defaults to ``emgfeedback``):

==================  ==============  ================================================
name                type            content
==================  ==============  ================================================
``NAME-raw``        ``EMG``         raw µV, one channel per electrode pair, double64
``NAME-envelope``   ``EMG-envelope`` envelope µV, same channels and rate
``NAME-markers``    ``Markers``     one string per marker/annotation (irregular rate)
==================  ==============  ================================================

Channel labels and the unit (``microvolts``) are in each stream's description.  Lost samples are
not pushed (LSL timestamps show the gap); a marker's text is sent with the timestamp of its
sample, counted from the chunk's own timestamp.

Threads: :meth:`LslPublisher.feed` is called by the session thread; liblsl sends in its own thread
(in the helper process, or in this one with ``--lsl-scope all``).
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import IO, Any

import numpy as np

from emgfeedback.errors import ConfigError, SourceError
from emgfeedback.stream import SourceInfo

__all__ = ["LslPublisher", "import_pylsl", "resolve_scope"]

log = logging.getLogger(__name__)

BIND_ENV = "EMGFEEDBACK_LSL_BIND"
_SIOCGIFADDR = 0x8915


def import_pylsl() -> Any:
    try:
        import pylsl
    except ImportError:
        raise SourceError("LSL needs the 'pylsl' package: pip install emgfeedback[lsl]") from None
    return pylsl


def resolve_scope(scope: str | None) -> str | None:
    """The IPv4 address the outlets bind to for ``--lsl-scope`` (``None`` = every interface).

    ``localhost`` (default) -> ``127.0.0.1``; an IPv4 address of this machine; an interface name
    (``eth0``) -> its address; ``all`` -> ``None``.
    """
    s = (scope or "localhost").strip()
    if s in ("localhost", "loopback", "lo"):
        return "127.0.0.1"
    if s == "all":
        return None
    try:
        addr = ipaddress.ip_address(s)
    except ValueError:
        addr = None
    if addr is not None:
        if addr.version != 4:
            raise ConfigError(f"--lsl-scope {s}: name an IPv4 address or interface (the app "
                              "disables liblsl's IPv6 to keep its sockets on one address)")
        if not addr.is_loopback:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind((s, 0))
            except OSError:
                raise ConfigError(f"--lsl-scope {s}: no interface of this machine has that "
                                  "address (see `ip -4 addr`)") from None
        return s
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sk:
            req = struct.pack("256s", s.encode()[:15])
            res = fcntl.ioctl(sk.fileno(), _SIOCGIFADDR, req)
        return socket.inet_ntoa(res[20:24])
    except OSError:
        raise ConfigError(f"--lsl-scope {s!r}: not 'localhost', 'all', an IPv4 address or an "
                          "interface with an IPv4 address (see `ip -4 addr`)") from None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "emgfeedback"


def _bind_library() -> Path:
    """The compiled ``lsl_bind`` preload library (built on first use, cached by source hash)."""
    src = resources.files("emgfeedback").joinpath("data/lsl_bind.c").read_bytes()
    tag = hashlib.sha256(src).hexdigest()[:12]
    out = _cache_dir() / f"lsl_bind-{tag}.so"
    if out.is_file():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SourceError("--lsl keeps LSL on one address with a small preload library that "
                          "needs a C compiler (sudo apt-get install build-essential); or pass "
                          "--lsl-scope all to publish on every interface")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        c = Path(tmp) / "lsl_bind.c"
        c.write_bytes(src)
        so = Path(tmp) / "lsl_bind.so"
        proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(c), "-ldl"],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise SourceError(f"cannot build the LSL bind library: {proc.stderr.strip()[:300]}")
        os.replace(so, out)
    return out


def _lsl_config(address: str) -> str:
    scope = "machine" if ipaddress.ip_address(address).is_loopback else "link"
    return ("; written by emgfeedback (io/lsl.py): sockets on one address, no IPv6\n"
            "[log]\nlevel = -2\n[ports]\nIPv6 = disable\n"
            f"[multicast]\nResolveScope = {scope}\nListenAddress = {address}\n"
            f"Interfaces = {{{address}}}\n")


def _stream_info(pylsl: Any, name: str, kind: str, channels: tuple[str, ...], fs: float,
                 source_id: str) -> Any:
    si = pylsl.StreamInfo(name, kind, len(channels), fs, pylsl.cf_double64, source_id)
    chans = si.desc().append_child("channels")
    for lab in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", lab)
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "EMG")
    si.desc().append_child_value("manufacturer", "emgfeedback")
    return si


class _Outlets:
    """The three outlets, in whichever process liblsl runs."""

    def __init__(self, name: str, channels: tuple[str, ...], fs: float) -> None:
        pylsl = import_pylsl()
        self.raw = pylsl.StreamOutlet(_stream_info(pylsl, f"{name}-raw", "EMG", channels, fs,
                                                   f"{name}-raw"))
        self.envelope = pylsl.StreamOutlet(
            _stream_info(pylsl, f"{name}-envelope", "EMG-envelope", channels, fs,
                         f"{name}-envelope"))
        mi = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                              pylsl.cf_string, f"{name}-markers")
        self.markers = pylsl.StreamOutlet(mi)

    def data(self, raw: np.ndarray, env: np.ndarray, ts: float) -> None:
        self.raw.push_chunk(raw, ts)
        self.envelope.push_chunk(env, ts)

    def marker(self, text: str, ts: float) -> None:
        self.markers.push_sample([text], ts)


_HEAD = struct.Struct("<cId")  # kind, count (samples or text bytes), timestamp


class LslPublisher:
    """Session consumer pushing every processed chunk to three LSL outlets.

    Parameters
    ----------
    info:
        The source's info (rate, channel labels).
    name:
        Stream name prefix.
    scope:
        ``--lsl-scope``: ``localhost`` (default), an IPv4 address or interface name, or ``all``
        (see the module docstring).
    """

    def __init__(self, info: SourceInfo, name: str = "emgfeedback",
                 scope: str | None = "localhost") -> None:
        self._pylsl = import_pylsl()
        self.name = name
        self.fs = float(info.fs)
        self.channels = tuple(info.channels)
        self.address = resolve_scope(scope)
        self.pushed = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._local: _Outlets | None = None
        if self.address is None:
            self._local = _Outlets(name, self.channels, self.fs)
            log.warning("LSL outlets %s-* on every interface (--lsl-scope all)", name)
        else:
            self._start_helper(self.address)
            log.info("LSL outlets %s-raw, %s-envelope, %s-markers on %s", name, name, name,
                     self.address)

    def _start_helper(self, address: str) -> None:
        lib = _bind_library()
        self._cfgdir = tempfile.TemporaryDirectory(prefix="emgfeedback-lsl-")
        cfg = Path(self._cfgdir.name) / "lsl_api.cfg"
        cfg.write_text(_lsl_config(address), encoding="utf-8")
        env = dict(os.environ, LSLAPICFG=str(cfg), **{BIND_ENV: address})
        env["LD_PRELOAD"] = " ".join(x for x in (str(lib), env.get("LD_PRELOAD", "")) if x)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[2])] + sys.path)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "emgfeedback.io.lsl"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._pipe = self._proc.stdin
        self._pipe.write(json.dumps({"name": self.name, "fs": self.fs,
                                     "channels": list(self.channels)}).encode() + b"\n")
        self._pipe.flush()
        line = self._proc.stdout.readline()  # the helper answers once its outlets exist
        if line.strip() != b"ready":
            self._proc.kill()
            self._proc.wait(5)
            raise SourceError(f"the LSL helper did not start (exit {self._proc.returncode}): "
                              "see the messages above")

    def _send(self, data: bytes) -> None:
        assert self._pipe is not None
        try:
            self._pipe.write(data)
        except (BrokenPipeError, ValueError):
            raise SourceError("the LSL helper process stopped: LSL outlets are gone") from None

    def feed(self, p: Any) -> None:
        """Push one processed chunk (session thread)."""
        n = len(p.raw)
        if not n:
            return
        now = self._pylsl.local_clock()  # the same steady clock in the helper process
        raw = np.ascontiguousarray(p.raw, dtype=np.float64)
        env = np.ascontiguousarray(p.envelope, dtype=np.float64)
        marks = [(m.text, now - (p.stop - 1 - m.sample) / self.fs) for m in p.markers]
        if self._local is not None:
            self._local.data(raw, env, now)
            for text, ts in marks:
                self._local.marker(text, ts)
        else:
            self._send(_HEAD.pack(b"D", n, now) + raw.tobytes() + env.tobytes())
            for text, ts in marks:
                b = text.encode("utf-8")
                self._send(_HEAD.pack(b"M", len(b), ts) + b)
            assert self._pipe is not None
            try:
                self._pipe.flush()
            except BrokenPipeError:
                raise SourceError("the LSL helper process stopped: LSL outlets are gone") from None
        self.pushed += n

    def close(self) -> None:
        """Drop the outlets (consumers see the streams end)."""
        self._local = None
        if self._proc is not None:
            try:
                if self._pipe is not None:
                    self._pipe.close()
            except OSError:
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
            self._cfgdir.cleanup()


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The helper process: outlets from the first line, then data until the pipe closes."""
    spec = json.loads(stdin.readline())
    channels = tuple(spec["channels"])
    nch = len(channels)
    outlets = _Outlets(str(spec["name"]), channels, float(spec["fs"]))
    stdout.write(b"ready\n")
    stdout.flush()
    while True:
        head = stdin.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return 0
        kind, count, ts = _HEAD.unpack(head)
        if kind == b"D":
            size = count * nch * 8
            body = stdin.read(2 * size)
            if len(body) < 2 * size:
                return 0
            raw = np.frombuffer(body[:size], np.float64).reshape(count, nch)
            env = np.frombuffer(body[size:], np.float64).reshape(count, nch)
            outlets.data(raw, env, ts)
        elif kind == b"M":
            outlets.marker(stdin.read(count).decode("utf-8", "replace"), ts)
        else:
            return 1


if __name__ == "__main__":  # the helper: python -m emgfeedback.io.lsl
    if not os.environ.get(BIND_ENV):
        sys.exit("emgfeedback.io.lsl is the LSL helper of emgfeedback, started by LslPublisher")
    sys.exit(_serve(sys.stdin.buffer, sys.stdout.buffer))
