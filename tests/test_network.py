"""Nothing listens on the network without --lsl; with it, only loopback (an ``ss`` check from
/proc/net of the app's process tree), and a consumer on this machine still receives the data."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        i += 1
    return out


def _addr(hexaddr: str) -> tuple[str, int]:
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(ip, 16))), int(port, 16)
    words = struct.unpack("<4I", raw)
    return socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words)), int(port, 16)


def sockets(pids: list[int]) -> list[tuple[str, str, int, str]]:
    """``(proto, local address, port, state)`` of every inet socket the processes hold."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            f = line.split()
            if f[9] in inodes:
                ip, port = _addr(f[1])
                state = {"0A": "LISTEN", "07": "UNCONN", "01": "ESTAB"}.get(f[3], f[3])
                found.append((proto, ip, port, state))
    return found


def _run_demo(*extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen([sys.executable, "-m", "emgfeedback", "demo", "--console",
                             "--duration", "12", *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.terminate()
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def _watch(proc: subprocess.Popen[str], until: float, want_listen: bool) -> list:
    seen: list = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline and proc.poll() is None:
        seen = sorted(set(seen) | set(sockets(_tree(proc.pid))))
        if want_listen and any(s[3] == "LISTEN" for s in seen):
            time.sleep(0.5)  # let every outlet come up
            seen = sorted(set(seen) | set(sockets(_tree(proc.pid))))
            break
        time.sleep(0.2)
    return seen


@pytest.mark.slow
def test_nothing_listens_without_lsl() -> None:
    proc = _run_demo()
    try:
        seen = _watch(proc, 6.0, want_listen=False)
        alive = proc.poll() is None
    finally:
        rc, err = _finish(proc)
    assert alive, err
    assert seen == [], f"sockets without --lsl: {seen}"


@pytest.mark.slow
def test_lsl_outlets_listen_on_loopback_only_and_deliver() -> None:
    pylsl = pytest.importorskip("pylsl")
    proc = _run_demo("--lsl")
    try:
        seen = _watch(proc, 15.0, want_listen=True)
        assert any(s[3] == "LISTEN" for s in seen), seen
        assert all(s[1] == "127.0.0.1" for s in seen), f"not loopback: {seen}"
        assert not any(s[0].endswith("6") for s in seen)
        # a consumer on this machine (default liblsl configuration) still gets the data
        found = pylsl.resolve_byprop("name", "emgfeedback-raw", timeout=5.0)
        assert found, "the raw stream is not discoverable on this machine"
        inlet = pylsl.StreamInlet(found[0])
        sample, ts = inlet.pull_sample(timeout=5.0)
        assert sample is not None and len(sample) == found[0].channel_count()
        inlet.close_stream()
    finally:
        rc, err = _finish(proc)
    assert rc == 0, err


def test_lsl_scope_is_validated() -> None:
    from emgfeedback.errors import ConfigError
    from emgfeedback.io.lsl import resolve_scope

    assert resolve_scope(None) == resolve_scope("localhost") == "127.0.0.1"
    assert resolve_scope("all") is None
    assert resolve_scope("lo") == "127.0.0.1"
    for bad in ("::1", "10.255.255.254", "no-such-if0", "300.1.1.1"):
        with pytest.raises(ConfigError, match="--lsl-scope"):
            resolve_scope(bad)
