"""End to end: the real firmware in simavr, read through its pty by the real serial source."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from emgfeedback.sources import simavr as SIM

MISSING = SIM.toolchain_missing()
pytestmark = [
    pytest.mark.firmware,
    pytest.mark.skipif(MISSING is not None, reason=f"{MISSING} (CI installs them)"),
]


def test_firmware_builds_and_reports_size() -> None:
    out = subprocess.run(
        ["make", "-C", str(SIM.FIRMWARE_DIR), "report-size"], capture_output=True, text=True,
        check=True,
    ).stdout
    assert "emg_acquire (nano): flash" in out and "RAM" in out


@pytest.mark.slow
def test_every_sample_equals_injected_adc_value_8ch_1khz_10s() -> None:
    src = SIM.SimavrSource(fs=1000, n_channels=8, realtime=False, input_seconds=3.7)
    chunks = []
    with src:
        assert src.info.fs == 1000 and len(src.info.channels) == 8
        assert src.info.firmware == "1.0.0" and src.info.extra["gain"] == 2000
        n = 0
        while n < 10_000:
            c = src.read(5.0)
            assert c is not None, "the simulated board stopped sending"
            chunks.append(c)
            n += len(c)
        serial_stats = dict(src.serial.stats) if src.serial else {}
    stats = src.harness_stats()
    assert chunks[0].start == 0
    for a, b in zip(chunks, chunks[1:]):
        assert b.start == a.stop and b.status.lost_samples == 0
    assert sum(c.status.crc_errors + c.status.bytes_skipped for c in chunks) == 0
    data = np.concatenate([c.data for c in chunks])
    counts = np.rint(data / src.info.extra["uv_per_count"] + 512).astype(np.int64)
    assert src.input_mv is not None
    rows = np.arange(len(counts)) % len(src.input_mv)
    assert np.array_equal(counts, SIM.expected_counts(src.input_mv)[rows])
    assert serial_stats["lost_samples"] == 0
    # rate exact in simulated time: Timer1 period 16000 cycles, start jitter < 100 cycles
    conv = int(stats["conv0"])
    assert conv >= 10_000
    span = stats["conv0_last_cycle"] - stats["conv0_first_cycle"]
    assert abs(span - (conv - 1) * 16_000) < 100
    # (bytes sent after the host closed the port at the end are dropped by design)
    assert stats["uart_bytes_out"] >= len(counts) * 26


def test_missing_toolchain_message_names_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SIM.shutil, "which", lambda name: None)
    msg = SIM.toolchain_missing()
    assert msg is not None and SIM.APT_PACKAGES in msg and "avr-gcc" in msg
