"""Fuzz suite of every input the command line reads (issue 14): mutated EDF headers, sidecars,
CSVs, configurations, programs, montages, options and special files.  No internal error, no
hang, no exit 0 on an invalid input, no refused patient id shown.  The cases are those of the
fuzz campaign (bench/bench_fuzz.py, tests/fuzzcases.py); hypothesis picks and damages them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzcases as F


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("fuzz")
    F.make_base(w)
    return w


def _check(case: F.Case, work: Path) -> F.Outcome:
    o = F.run_case(case, work, limit_s=10.0)
    assert o.verdict in ("clean", "ok"), f"{case.family}: {case.name}: {o.verdict}: {o.err}"
    return o


@pytest.mark.parametrize("family", ["EDF header", "sidecar", "CSV", "options", "special files",
                                    "history", "program", "montage"])
def test_every_invalid_input_of_a_family_is_a_clean_error(work: Path, family: str) -> None:
    builders = {"EDF header": F.edf_header_cases, "sidecar": F.sidecar_cases,
                "CSV": F.csv_cases, "options": F.option_cases, "special files": F.special_cases,
                "history": F.special_cases, "program": F.config_cases,
                "montage": F.config_cases}
    cases = [c for c in builders[family](work) if c.family == family]
    assert cases
    # a deterministic sample keeps the test short; the campaign runs them all
    for case in random.Random(family).sample(cases, min(len(cases), 40)):
        o = _check(case, work)
        if case.expect == "error":
            assert o.rc not in (0, None) and "\n" not in o.err.strip(), (case.name, o.err)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_bad_config_value_is_refused_by_name(work: Path, data: st.DataObject) -> None:
    cases = F.config_cases(work)
    case = data.draw(st.sampled_from([c for c in cases if c.family == "config"]))
    o = _check(case, work)
    assert o.verdict == "clean", case.name
    key = case.name.split("=")[0]
    if "." in key and not key.startswith("'"):
        assert key in o.err, (key, o.err)  # the message names the key


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**30), cmd=st.sampled_from(F.COMMANDS),
       n=st.integers(1, 16), region=st.sampled_from(["header", "data", "sidecar"]))
def test_random_damage_never_crashes_or_hangs(work: Path, seed: int, cmd: list[str], n: int,
                                              region: str) -> None:
    name = f"hyp-{seed}-{n}-{region}"

    def make(w: Path) -> None:
        edf, side = F._copy_base(w, name)
        target = side if region == "sidecar" else edf
        d = bytearray(target.read_bytes())
        r = random.Random(seed)
        hb = int(bytes(edf.read_bytes()[184:192]).decode().strip())
        for _ in range(n):
            if region == "header":
                pos = r.randrange(hb)
            elif region == "data":
                pos = r.randrange(hb, len(d))
            else:
                pos = r.randrange(len(d))
            d[pos] = r.choice(b"0123456789-+.eE \x00\x14\x15[]{}\",:nanif")
        target.write_bytes(bytes(d))

    _check(F.Case("random", name, F._argv(cmd, work / f"{name}.edf", work, name), "any",
                  make), work)


def test_refused_patient_ids_are_never_shown(work: Path) -> None:
    for case in F.sidecar_cases(work):
        if case.forbidden:
            o = _check(case, work)
            assert o.verdict == "ok"  # the recording stays readable; the id is withheld
