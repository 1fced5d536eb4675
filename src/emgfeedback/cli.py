"""Command line: ``emgfeedback <command> ...`` (also ``python -m emgfeedback``).

Every user error ends as one line on stderr (``emgfeedback: error: ...``) and a non-zero exit
status; never a traceback.  ``--debug`` shows the traceback of unexpected errors for bug reports.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from emgfeedback.config import Config, DspConfig, load_config
from emgfeedback.errors import ConfigError, EmgError, FileFormatError
from emgfeedback.validate import MAX_FS, write_private
from emgfeedback.vocabulary import SIDES

log = logging.getLogger("emgfeedback")

EXIT_USAGE = 2
EXIT_ERROR = 1

#: ``main()`` runs as the program of its own process (the console script, ``python -m``), not
#: called in-process with an argument list (tests): see :func:`_start_up`.
_OWN_PROCESS = False


@contextmanager
def _start_up() -> Iterator[None]:
    """A command's start-up imports with the cyclic garbage collector paused: they create some
    10^5 objects (modules, classes, functions, NumPy's too) that live as long as the process,
    and the collector would traverse them again and again while they accumulate (7 % of a
    10 s ``analyze``; issue 13).  In a process of its own they are then frozen
    (``gc.freeze``): later collections, the live loop's included, skip them."""
    enabled = gc.isenabled() or _OWN_PROCESS  # (python -m emgfeedback pauses it from the start)
    gc.disable()
    try:
        yield
    finally:
        if _OWN_PROCESS:
            gc.freeze()
        if enabled:
            gc.enable()


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------- option types
# Every number an option takes is checked here, at the boundary, by the schema's check_number
# (config.py): finite, of the right kind, in a range that also bounds memory and time.
MAX_SIM_S = 3600.0  # s: simulate holds the whole session in memory
MAX_LIVE_S = 86_400.0  # s: a live session streams, one day at most
SPEED_RANGE = (0.01, 10_000.0)


def _num(name: str, *, integer: bool = False, unit: str = "", **bounds: float) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses a number and checks it (usage error otherwise)."""
    from emgfeedback.config import check_number

    def convert(text: str) -> Any:
        try:
            value: Any = int(text, 10) if integer else float(text)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            check_number(name, value, integer=integer, unit=unit, **bounds)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(name + " ")) from None
        return value

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def _speed_arg(text: str) -> str:
    """``--speed``: ``max`` or a factor in :data:`SPEED_RANGE` (kept as text for :func:`_speed`)."""
    try:
        _speed(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--speed ")) from None
    return text


_FS = _num("--fs", gt=0, le=MAX_FS, unit="Hz")
_SEED = _num("--seed", integer=True, ge=0, le=2**32 - 1)


# ---------------------------------------------------------------------------- shared options
def _add_board_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("signal source")
    g.add_argument("--board", default="simulated",
                   help="simulated (default), simavr, serial:PORT, chords:PORT (Upside Down Labs "
                        "Chords firmware), spikershield:PORT (Backyard Brains), replay:FILE, "
                        "brainflow:BOARD, lsl:NAME; PORT e.g. /dev/ttyUSB0, COM3, "
                        "/dev/cu.usbmodem1101")
    g.add_argument("--scenario", default=None,
                   help="simulated board scenario (rest, smile-clean, smile-synkinesis, "
                        "eye-closure-synkinesis, asymmetric-smile, session)")
    g.add_argument("--seed", type=_SEED, default=None, help="simulated board random seed (0)")
    g.add_argument("--fs", type=_FS, default=None, help="sample rate in Hz (where settable)")
    g.add_argument("--mains", type=_num("--mains", ge=45, le=65, unit="Hz"), default=None,
                   metavar="HZ",
                   help="simulated mains frequency, 45-65 Hz, e.g. 50, 49.9, 60, 59.8 (the "
                        "filter detects it; see --notch)")
    _add_confounder_option(g)
    g.add_argument("--speed", default=None, type=_speed_arg,
                   help="pacing of simulated boards and replays: 1 = real time (default), "
                        "N = N times faster, max = as fast as possible")
    g.add_argument("--port", default=None, help="serial port for BrainFlow boards")
    g.add_argument("--baud", type=_num("--baud", integer=True, ge=300, le=4_000_000),
                   default=None, help="serial baud rate (default 500000)")
    g.add_argument("--channels", type=_num("--channels", integer=True, ge=1, le=16),
                   default=None,
                   help="channel count to ask the board for (firmware boards, spikershield)")
    g.add_argument("--gain", type=_num("--gain", gt=0, le=1e6), default=None,
                   help="front-end gain V/V for boards that do not report it (chords: 2420, "
                        "spikershield: assumed 1000)")
    p.add_argument("--config", type=Path, default=None, help="configuration TOML file")
    p.add_argument("--notch", choices=("50", "60", "auto", "off"), default=None,
                   help="mains notch (default from config: auto-detect)")
    p.add_argument("--program", default=None,
                   help="exercise program: a name (see the GUI's list) or a TOML file "
                        "(default: the shipped default program)")


def _add_confounder_option(g: Any) -> None:
    g.add_argument("--confounder", action="append", default=None, metavar="NAME",
                   help="simulated board: add a confounder preset (repeat or comma-separate): "
                        "all, blinks, hypertonic, crosstalk, crosstalk-strong, motion, pops, "
                        "electrode-off, "
                        "electrode-off-mains, gaps, mains-49.9, mains-59.8, ecg, fs-500, "
                        "fs-2000, synkinesis-lag, synkinesis-mid (docs/simulator.md)")


def _add_video_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("camera beside the EMG (needs the video extra: "
                             "pip install emgfeedback[video])")
    v = g.add_mutually_exclusive_group()
    v.add_argument("--camera", type=_num("--camera", integer=True, ge=0, le=63), default=None,
                   metavar="N", help="the camera with OpenCV index N (0: the first)")
    v.add_argument("--video", type=Path, default=None, metavar="FILE",
                   help="a video file instead of a camera, played in a loop in step with the "
                        "EMG (demos, tests)")
    g.add_argument("--no-mirror", action="store_true",
                   help="show the image as the camera sees it, not flipped as a mirror")


def video_spec(args: argparse.Namespace) -> Any:
    """The :class:`~emgfeedback.video.live.VideoSpec` of ``--camera``/``--video`` (``None``
    without them); without the video extra one line says how to install it."""
    camera, video = getattr(args, "camera", None), getattr(args, "video", None)
    if camera is None and video is None:
        return None
    from emgfeedback.video import missing

    why = missing()
    if why is not None:
        raise EmgError(why)
    if video is not None and not Path(video).is_file():
        raise FileFormatError(f"{video}: no such video file")
    from emgfeedback.video.live import VideoSpec

    return VideoSpec(path=Path(video) if video is not None else None,
                     camera=int(camera) if camera is not None else None,
                     mirror=not getattr(args, "no_mirror", False), loop=video is not None)


def _speed(value: str) -> float | None:
    if value in ("max", "inf"):
        return None
    try:
        v = float(value)
    except ValueError:
        raise ConfigError(f"--speed must be a number or 'max', got {value!r}") from None
    lo, hi = SPEED_RANGE
    if not lo <= v <= hi:  # also refuses nan
        raise ConfigError(f"--speed must be 'max' or a factor in [{lo:g}, {hi:g}], got {value}")
    return v


def _config(args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "notch", None):
        overrides["dsp"] = {"mains": args.notch}
    return load_config(args.config, overrides)


def source_options(args: argparse.Namespace, duration: float | None = None) -> dict[str, Any]:
    """The typed options of the source named by ``--board``, from the options the user gave.

    An option the board does not take is passed on anyway, so that the source registry rejects
    it by name (``--scenario`` with a serial board is a mistake, not something to ignore)."""
    kind = args.board.partition(":")[0]
    confounders = ",".join(getattr(args, "confounder", None) or []) or None
    given: dict[str, Any] = {"scenario": args.scenario, "seed": args.seed, "fs": args.fs,
                             "mains": args.mains, "port": args.port, "baud": args.baud,
                             "n_channels": args.channels, "confounders": confounders,
                             "gain": getattr(args, "gain", None)}
    opts = {k: v for k, v in given.items() if v is not None}
    if args.speed is not None:
        opts["speed"] = _speed(args.speed)
    if kind == "simulated":
        opts["duration"] = duration
    elif kind == "simavr":
        # The real firmware in simavr, its ADC fed with the facial model through the front end.
        from emgfeedback.sources.facesim import DEFAULT_CHANNELS
        from emgfeedback.sources.simulated import facial_signal

        speed = opts.pop("speed", 1.0)
        opts["speed"] = speed or 1.0
        opts["realtime"] = speed is not None
        labels = DEFAULT_CHANNELS[: args.channels or len(DEFAULT_CHANNELS)]
        opts["labels"] = labels
        opts["signal"] = facial_signal(opts.pop("scenario", None) or "smile-synkinesis",
                                       labels, seed=opts.pop("seed", 0),
                                       mains=opts.pop("mains", None),
                                       confounders=opts.pop("confounders", None))
    return opts


def make_source(args: argparse.Namespace, duration: float | None = None) -> Any:
    """The (unopened) source named by ``--board`` and the board options."""
    from emgfeedback.sources.registry import open_source

    return open_source(args.board, **source_options(args, duration))


def _program(args: argparse.Namespace, cfg: Config) -> Any:
    from emgfeedback.app.program import resolve_program

    choice = getattr(args, "program", None)
    return resolve_program(choice, cfg.detection) if choice else None


# ---------------------------------------------------------------------------- demo
def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="live biofeedback (GUI when a display is present, else console)")
    _add_board_options(p)
    p.add_argument("--console", action="store_true", help="terminal dashboard even with a display")
    p.add_argument("--record", type=Path, default=None, metavar="FILE.edf",
                   help="record the session to EDF+ (needs --patient)")
    p.add_argument("--patient", default=None, help="pseudonymous patient id, e.g. P-0001")
    p.add_argument("--connect", action="store_true",
                   help="GUI: connect at once instead of waiting on the Connect / Start screen "
                        "(needs --patient)")
    p.add_argument("--lsl", action="store_true", help="publish raw/envelope/markers on LSL")
    p.add_argument("--lsl-scope", default="localhost", metavar="WHERE",
                   help="with --lsl: localhost (default: this machine only), an IPv4 address or "
                        "interface of this machine (e.g. eth0), or all (every interface)")
    p.add_argument("--duration", type=_num("--duration", gt=0, le=MAX_LIVE_S, unit="s"),
                   default=None, help="stop after S seconds of signal")
    p.add_argument("--patient-mode", action="store_true",
                   help="GUI: large and simple, only the exercise screen (home use)")
    p.add_argument("--screenshot", type=Path, default=None, metavar="OUT.png",
                   help="GUI: save a picture of the window after --after seconds and exit")
    p.add_argument("--after", type=_num("--after", gt=0, le=3600, unit="s"), default=5.0,
                   metavar="S",
                   help="seconds before --screenshot is taken (default 5)")
    _add_video_options(p)
    p.set_defaults(func=cmd_demo)


def _display_available() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_demo(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.scenario is None and args.board == "simulated":
        args.scenario = "session"
    args.video_spec = video_spec(args)  # a bad camera/file: one line, before any window
    gui = None
    if not args.console and _display_available():
        try:
            from emgfeedback.views import gui  # type: ignore[assignment]
        except ImportError:
            gui = None
    if gui is not None:
        # A simulated script of 24 h takes seconds to build: the demo runs 2 h unless told so.
        duration = args.duration if args.duration else (
            7200.0 if args.board == "simulated" else None)
        opts = source_options(args, duration)
        from emgfeedback.sources.registry import check_options, open_source

        check_options(args.board.partition(":")[0], opts)  # a wrong option: one line, no window
        return int(gui.run_demo(args, cfg, lambda: open_source(args.board, **opts)))
    return run_live(args, cfg, record_to=args.record, patient=args.patient, lsl=args.lsl,
                    console=True)


def _console(title: str | None, cfg: Config) -> list[Any]:
    """The console view of a session (built once the source is open); it reads the cue, %MVC
    and the alerts from the session's snapshot."""
    from emgfeedback.views.console import ConsoleView

    def console_view(s: Any) -> ConsoleView:
        assert s.chain is not None
        return ConsoleView(s.chain, title=title or f"emgfeedback: {s.source.info.name}",
                           quality=cfg.quality, snapshot=s.snapshot)

    return [console_view]


def run_live(args: argparse.Namespace, cfg: Config, *, record_to: Path | None,
             patient: str | None, lsl: bool, console: bool) -> int:
    """A live session on ``--board`` (:class:`emgfeedback.app.session.Session`): optional
    EDF+ recording from the first sample and LSL outlets, the program's cues when the board
    brings none, live calibration and detection on facial channels, the console view.

    Used by ``demo`` (console) and ``record``.  SIGTERM and Ctrl-C stop the session cleanly; the
    recording is closed either way.
    """
    import time

    from emgfeedback.app.session import Session, SessionSpec, run_in_foreground

    spec = SessionSpec(source=args.board, source_options=source_options(args, args.duration),
                       config=cfg, program=_program(args, cfg), record_to=record_to,
                       patient=patient, lsl=lsl, lsl_scope=getattr(args, "lsl_scope", "localhost"),
                       duration_s=args.duration, auto_program=True,
                       video=getattr(args, "video_spec", None) or video_spec(args))
    session = Session(spec, views=_console(None, cfg) if console else [])
    if record_to is not None:
        until = f"for {args.duration:g} s of signal" if args.duration else "until stopped"
        print(f"recording to {record_to} {until}: Ctrl-C (or SIGTERM) stops and closes the file",
              file=sys.stderr, flush=True)
    t0 = time.monotonic()
    run_in_foreground(session)
    pl = session.pipeline
    fs = pl.chain.fs if pl.chain is not None else 0.0
    print(f"stopped after {pl.samples / fs if fs else 0.0:.1f} s of signal "
          f"({pl.lost} samples lost)", file=sys.stderr)
    _video_line(session)
    rec = session.recording.last if session.recording is not None else None
    if rec is not None:
        print(f"wrote {record_to} and {rec.sidecar_path.name}: {rec.samples / fs:.1f} s, "
              f"{len(rec.channels)} channels at {fs:g} Hz, "
              f"{rec.n_annotations} annotations, {rec.lost_samples} samples lost "
              f"({time.monotonic() - t0:.1f} s wall)")
    return 0


def _video_line(session: Any) -> None:
    """What the session's video did (stderr), when it had one."""
    if session.video_error:
        print(f"video: {session.video_error}", file=sys.stderr)
    v = session.video
    if v is None:
        return
    st = v.stats()
    evs = v.events
    err = f"; {v.error}" if v.error else ""
    print(f"video: {st['measured']} frames measured, {st['dropped']} dropped, "
          f"{len(evs)} video synkinesis event(s)"
          + "".join(f"; {e.side} {e.pattern} at sample {e.onset}-{e.offset}" for e in evs)
          + err, file=sys.stderr)


# ---------------------------------------------------------------------------- ports
def _add_ports(sub: Any) -> None:
    p = sub.add_parser("ports", help="list serial ports and identify emgfeedback boards on them")
    p.add_argument("--no-probe", action="store_true",
                   help="only list the ports; do not send the identify command")
    p.add_argument("extra", nargs="*", help="more device paths to probe (e.g. a pty)")
    p.set_defaults(func=cmd_ports)


def cmd_ports(args: argparse.Namespace) -> int:
    from emgfeedback.sources.serial import format_ports, list_ports

    print(format_ports(list_ports(extra=args.extra, identify=not args.no_probe)))
    return 0


# ---------------------------------------------------------------------------- simulate
def _add_simulate(sub: Any) -> None:
    p = sub.add_parser("simulate", help="write a simulated session to a file")
    p.add_argument("--scenario", default="session")
    p.add_argument("--duration", type=_num("--duration", gt=0, le=MAX_SIM_S, unit="s"),
                   default=None,
                   help=f"seconds, at most {MAX_SIM_S:g} (default: the calibration protocol plus "
                        "60 s of exercises; rest: 60 s)")
    p.add_argument("--no-calibration", action="store_true",
                   help="exercise reps from the start, without the rest and MVC periods")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--fs", type=_FS, default=None)
    p.add_argument("--mains", type=_num("--mains", ge=45, le=65, unit="Hz"), default=None,
                   metavar="HZ",
                   help="mains frequency, 45-65 Hz (50, 49.9, 60, 59.8 ...)")
    p.add_argument("--mains-uv", type=_num("--mains-uv", ge=0, le=10_000, unit="µV"),
                   default=None, metavar="UV",
                   help="typical mains amplitude, µV RMS of the fundamental (default 4)")
    p.add_argument("--noise", type=_num("--noise", ge=0, le=1000, unit="µV"), default=None,
                   help="baseline noise RMS upper bound in µV (default 5)")
    p.add_argument("--crosstalk", type=_num("--crosstalk", ge=0, le=100, unit="%"),
                   default=None, metavar="PCT",
                   help="share of a neighbour's muscle signal in each channel, %% (default 4)")
    _add_confounder_option(p)
    p.add_argument("--synkinesis-prob", type=_num("--synkinesis-prob", ge=0, le=1),
                   default=None,
                   help="probability that a rep carries synkinesis (scenario default otherwise)")
    p.add_argument("--out", type=Path, required=True, help="output file (.edf, .bdf or .csv)")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from emgfeedback.sources.simulated import create

    from emgfeedback.sources.facesim import ModelParams, calibration_s

    suffix = args.out.suffix.lower()
    if suffix not in (".edf", ".bdf", ".csv", ".tsv", ".txt"):
        raise ConfigError(f"{args.out}: unsupported output format {suffix!r}; use .csv or .edf")
    extra: dict[str, Any] = {}
    if args.no_calibration:
        extra["calibration"] = False
    cal_s = 0.0 if args.no_calibration or args.scenario == "rest" else calibration_s(ModelParams())
    if args.duration is None:
        args.duration = cal_s + 60.0
    if args.duration <= 0:
        raise ConfigError(f"--duration must be positive, got {args.duration}")
    if cal_s and args.duration < cal_s + 10.0:
        raise ConfigError(f"--duration {args.duration:g} s leaves no exercise after the "
                          f"calibration protocol ({cal_s:g} s): give at least {cal_s + 10:g} s, "
                          "or --no-calibration")
    if args.noise is not None:
        extra["noise_uv"] = (min(1.0, args.noise), args.noise)
    if args.synkinesis_prob is not None:
        extra["synkinesis_prob"] = args.synkinesis_prob
    if args.mains_uv is not None:
        extra["mains_uv"] = args.mains_uv
    if args.crosstalk is not None:
        extra["crosstalk"] = args.crosstalk / 100.0
    src = create(scenario=args.scenario, duration=args.duration, seed=args.seed, speed=None,
                   fs=args.fs, mains=args.mains,
                   confounders=",".join(args.confounder or []) or None, **extra)
    with src:
        parts = src.read_segments()
    if suffix in (".edf", ".bdf"):
        _simulate_edf(args.out, src, parts)
    else:
        from emgfeedback.io.exporters import write_csv

        write_csv(src.recording(parts), args.out)
    truth = args.out.with_suffix(args.out.suffix + ".truth.json")
    write_private(truth, json.dumps(script_to_json(src), indent=1, allow_nan=False))
    n = sum(len(c) for c in parts)
    lost = sum(c.status.lost_samples for c in parts)
    print(f"wrote {args.out} ({n} samples" + (f", {lost} lost in {len(parts) - 1} gaps"
                                               if lost else "") +
          f", {len(src.info.channels)} channels, {src.params.fs:g} Hz) and ground truth {truth}")
    return 0


SIMULATED_PATIENT = "SIM-0000"  # the pseudonym of simulated sessions


def _simulate_edf(path: Path, src: Any, parts: Any) -> None:
    """EDF+/BDF+ of simulated chunks (gaps stay gaps), written by the same recorder as a live
    session."""
    from emgfeedback.io.edf.recorder import Recorder

    rec = Recorder(path, src.info, patient=SIMULATED_PATIENT,
                   sidecar={"patient": SIMULATED_PATIENT, "simulated": True})
    for chunk in parts:
        rec.write(chunk)
    rec.close()


def script_to_json(src: Any) -> dict[str, Any]:
    s = src.script
    fs = s.fs
    return {
        "scenario": src.scenario,
        "seed": src.seed,
        "fs": fs,
        "channels": list(s.channels),
        "cues": [{"text": c.text, "onset_s": c.start / fs, "offset_s": c.stop / fs} for c in s.cues],
        "activations": [{"channel": a.channel, "onset_s": a.start / fs, "offset_s": a.stop / fs,
                         "level_pct_mvc": a.level_pct, "kind": a.kind} for a in s.activations],
        "events": [{"type": e.type, "channel": e.channel, "trigger": e.trigger,
                    "exercise": e.exercise, "rep": e.rep, "onset_s": e.start / fs,
                    "offset_s": e.stop / fs, "peak_pct_mvc": e.peak_pct} for e in s.events],
        "truth": [t.to_json(fs) for t in s.truth],
        "ecg_beats_s": [b / fs for b in s.ecg_beats],
        "params": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in vars(src.params).items()},
    }


# ---------------------------------------------------------------------------- report, history
def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="HTML (and PDF) report of a recorded session")
    p.add_argument("session", type=Path, help="session recording (.edf with its sidecar)")
    p.add_argument("--analysis", type=Path, default=None,
                   help="JSON of 'emgfeedback analyze' to use instead of analysing again")
    p.add_argument("--out", type=Path, default=None, help="HTML file (default SESSION.report.html)")
    p.add_argument("--pdf", action="store_true", help="also write a PDF beside the HTML")
    p.add_argument("--db", type=Path, default=None,
                   help="history database for the comparison with earlier sessions (default "
                        "$EMGFEEDBACK_DB or the user data folder, when it exists)")
    _add_identity_options(p)
    p.add_argument("--montage", type=Path, default=None,
                   help="montage TOML naming the region of each channel (files of other tools)")
    _add_import_options(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from emgfeedback.views.history.progress import context_from_db
    from emgfeedback.views.report import close_session, load_session, write_report

    out = args.out or args.session.with_suffix(".report.html")
    pdf = out.with_suffix(".pdf") if args.pdf else None
    # The report builds a few hundred thousand short-lived objects (matplotlib's artists, the
    # PDF's pages) over a heap of imported modules: the cyclic collector's passes over that
    # heap took about a fifth of the command's time (measured, issue 13), for garbage that is
    # freed when the command ends.  Paused for the command (reference counting still frees
    # almost everything), restored after (main() also runs in-process).
    paused = gc.isenabled()
    gc.disable()
    try:
        # prefetch: the report's pass over the signal starts now (unless the envelopes were
        # saved with the analysis), beside the imports of the report
        session = load_session(args.session, args.analysis, opener=_opener(args), prefetch=True)
        try:
            # (a second process draws some figures: this process has no Qt, no other work)
            write_report(session, out, pdf, history=context_from_db(session, args.db),
                         workers=2)
        finally:
            close_session(session)
    finally:
        if _OWN_PROCESS:  # the command ends with the report: what is left of its objects (in
            gc.freeze()  # cycles) is freed by the exit, not searched by two collections first
        if paused:
            gc.enable()
    print(f"wrote {out}" + (f" and {pdf}" if pdf else ""))
    return 0


def _add_progress(sub: Any) -> None:
    p = sub.add_parser("progress", help="a patient's trends across stored sessions (HTML)")
    p.add_argument("patient", help="pseudonymous patient id")
    p.add_argument("--out", type=Path, default=None, help="HTML file (default PATIENT-progress.html)")
    p.add_argument("--db", type=Path, default=None,
                   help="history database (default $EMGFEEDBACK_DB or the user data folder)")
    p.set_defaults(func=cmd_progress)


def cmd_progress(args: argparse.Namespace) -> int:
    from emgfeedback.views.history import write_progress

    out = args.out or Path(f"{args.patient}-progress.html")
    sessions = write_progress(args.patient, out, args.db)
    print(f"wrote {out} ({len(sessions)} sessions)")
    return 0


def _add_history(sub: Any) -> None:
    p = sub.add_parser("history", help="the patient history database")
    hs = p.add_subparsers(dest="history_command", metavar="ACTION", parser_class=_Parser,
                          required=True)
    imp = hs.add_parser("import", help="analyse and store every session file under FOLDER")
    imp.add_argument("folder", type=Path)
    imp.add_argument("--db", type=Path, default=None)
    _add_identity_options(imp)
    imp.add_argument("--montage", type=Path, default=None,
                     help="montage TOML naming the region of each channel (files of other tools)")
    _add_import_options(imp)
    _add_batch_options(imp)
    imp.set_defaults(func=cmd_history_import)
    ls = hs.add_parser("list", help="patients and their number of sessions")
    ls.add_argument("--db", type=Path, default=None)
    ls.set_defaults(func=cmd_history_list)


def cmd_history_import(args: argparse.Namespace) -> int:
    from emgfeedback.views.history import import_folder

    r = import_folder(args.folder, args.db, pattern=args.pattern, progress=sys.stderr,
                      opener=_opener(args), jobs=args.jobs, scheduler=args.scheduler)
    for path, reason in r.failed:
        print(f"emgfeedback: skipped {path.name}: {reason}", file=sys.stderr)
    print(f"imported {len(r.imported)} sessions, {len(r.skipped)} already stored, "
          f"{len(r.failed)} failed")
    return EXIT_ERROR if r.failed else 0


def cmd_history_list(args: argparse.Namespace) -> int:
    from emgfeedback.views.history import History

    with History(args.db, create=False) as h:
        for pid in h.patients():
            ss = h.sessions(pid)
            print(f"{pid}\t{len(ss)} sessions\t{ss[0].recorded_at:%Y-%m-%d} .. "
                  f"{ss[-1].recorded_at:%Y-%m-%d}")
    return 0


# ---------------------------------------------------------------------------- analyze
def _add_analyze(sub: Any) -> None:
    p = sub.add_parser("analyze", help="calibration, reps, synkinesis events and symmetry of a "
                                       "recording (JSON + table)")
    p.add_argument("file", type=Path, help="recording (EDF+/BDF+, or any file 'info' reads)")
    p.add_argument("--montage", type=Path, default=None, help="montage TOML (labels -> regions)")
    p.add_argument("--program", type=Path, default=None, help="exercise program TOML")
    p.add_argument("--exercise", default=None,
                   help="the whole file is one rep of this exercise (no annotations needed)")
    p.add_argument("--affected-side", "--affected", dest="affected", choices=SIDES,
                   default=None, help="affected side (when the file does not state it)")
    p.add_argument("--patient", default=None,
                   help="pseudonymous patient id (when the file carries none), kept in the JSON")
    p.add_argument("--calibration", choices=("annotations", "auto"), default="annotations",
                   help="rest/mvc annotations (default; automatic fallback where missing) or "
                        "the automatic estimate only")
    p.add_argument("--json", type=Path, default=None,
                   help="write the analysis JSON here (for a folder: a folder, one "
                        "<name>.analysis.json per recording)")
    p.add_argument("--config", type=Path, default=None, help="configuration TOML file")
    _add_batch_options(p)
    _add_import_options(p)
    p.set_defaults(func=cmd_analyze)


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    """Options of commands that take a folder of recordings (``analyze``, ``history import``)."""
    g = p.add_argument_group("a folder of recordings")
    g.add_argument("--pattern", default="*.edf",
                   help="with a folder: file glob, searched recursively (default *.edf)")
    g.add_argument("--jobs", type=_num("--jobs", integer=True, ge=1, le=256), default=None,
                   metavar="N", help="with a folder: N worker processes on this machine "
                                     "(default: one per core)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with a folder: run on this Dask cluster (tcp://HOST:8786) instead; its "
                        "workers need emgfeedback and the files at the same paths")


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.file.is_dir():
        return _analyze_folder(args)
    if args.jobs is not None or args.scheduler is not None:
        raise ConfigError("--jobs and --scheduler are for a folder of recordings; "
                          f"{args.file} is one file")
    return _write_analysis(args, load_config(args.config), table=True)


def _analysis_job(job: tuple[str, dict[str, Any], Config]) -> str:
    """One file of a folder analysis, in a worker: the strict analysis JSON text."""
    from emgfeedback.app.analyze import analyze_file

    path, options, cfg = job
    result = analyze_file(path, config=cfg, **options)
    return json.dumps(result.to_json(), indent=1, allow_nan=False)


def _folder_files(folder: Path, pattern: str) -> list[Path]:
    files = sorted(p for p in folder.rglob(pattern) if p.is_file())
    if not files:
        raise ConfigError(f"{folder}: no files matching {pattern!r} (use --pattern, e.g. "
                          "--pattern '*.bdf')")
    return files


def _batch_progress(done: int, total: int, item: Any) -> None:
    name = Path(item[0] if isinstance(item, tuple) else item).name
    print(f"[{done}/{total}] {name}", file=sys.stderr, flush=True)


def _analyze_folder(args: argparse.Namespace) -> int:
    """``analyze FOLDER``: every recording, on a process pool or a Dask cluster; the same JSON as
    one ``analyze FILE --json`` per file (tests/test_batch.py)."""
    from emgfeedback.app.batch import run_many

    cfg = load_config(args.config)
    files = _folder_files(args.file, args.pattern)
    if args.json is not None:
        if args.json.exists() and not args.json.is_dir():
            raise ConfigError(f"{args.json}: for a folder of recordings --json names a folder")
        args.json.mkdir(mode=0o700, parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "montage": args.montage, "program": args.program, "exercise": args.exercise,
        "affected": args.affected, "calibration": args.calibration, "fs": args.fs,
        "unit": args.unit, "board": args.brainflow_board}
    jobs = [(str(f), options, cfg) for f in files]
    outcomes = run_many(_analysis_job, jobs, jobs=args.jobs, scheduler=args.scheduler,
                        progress=_batch_progress)
    failed = 0
    for f, o in zip(files, outcomes):
        if not o.ok:
            failed += 1
            print(f"emgfeedback: error: {o.error}", file=sys.stderr)
            continue
        assert o.result is not None
        doc = json.loads(o.result)
        n_syn = sum(1 for e in doc["events"] if e.get("type", "synkinesis") == "synkinesis")
        reps = len({r["rep"] for r in doc["reps"]})
        print(f"{f}: {doc['duration_s']:.1f} s, {reps} reps, {n_syn} synkinesis event(s)")
        if args.json is not None:
            out = args.json / (f.relative_to(args.file).with_suffix("").as_posix()
                               .replace("/", "__") + ".analysis.json")
            write_private(out, o.result)
    print(f"analysed {len(files) - failed} of {len(files)} recordings"
          + (f", {failed} failed" if failed else "")
          + (f"; JSON in {args.json}" if args.json is not None else ""))
    return EXIT_ERROR if failed else 0


def _write_analysis(args: argparse.Namespace, cfg: Config, table: bool) -> int:
    """Analyse ``args.file`` (the live pipeline replayed at full speed) and write the JSON."""
    with _start_up():
        from emgfeedback.app.analyze import analyze_file
        from emgfeedback.clinical.analysis import format_table

    def open_(path: Path) -> Any:
        """The file with the import options; ``--patient`` for a file without an id and the
        protocol of a BIDS events.tsv beside it (``--affected-side`` here overrides the
        file's side: a re-analysis with another side, as before)."""
        from emgfeedback.app.analyze import load_for_analysis
        from emgfeedback.io.identity import apply_identity

        rec = load_for_analysis(path, fs=args.fs, unit=args.unit, board=args.brainflow_board)
        try:
            apply_identity(rec, getattr(args, "patient", None))
            _beside_events(rec)
        except BaseException:
            rec.close()
            raise
        return rec

    # an analysis saved beside its recording (where the report looks for it, with the chain
    # the report draws): the report's envelopes collected from its pass are saved with it
    collectors: list[Any] = []
    observe_for = None
    if args.json is not None and cfg.dsp == DspConfig() and _beside_recording(args.json,
                                                                             args.file):
        from emgfeedback.views.report.bins import BinsCollector

        def observe_for(rec: Any) -> Any:
            collectors.append(BinsCollector(rec))
            return collectors[-1]

    result = analyze_file(args.file, montage=args.montage, program=args.program,
                          exercise=args.exercise, affected=args.affected,
                          calibration=args.calibration, config=cfg, opener=open_,
                          observe_for=observe_for)
    if table:
        print(format_table(result))
    if args.json is not None:
        doc = result.to_json()
        if getattr(args, "patient", None):  # given for a file without one: kept with it
            doc["patient"] = str(args.patient)
        write_private(args.json, json.dumps(doc, indent=1, allow_nan=False))
        if collectors and collectors[-1].last is not None:  # a cache: never an error here
            from emgfeedback.views.report.bins import save_with_analysis
            from emgfeedback.views.report.load import content_id

            save_with_analysis(args.json, collectors[-1].rec, collectors[-1].last, content_id)
        print(f"wrote {args.json}")
    return 0


def _beside_recording(out: Path, recording: Path) -> bool:
    """Whether ``out`` is the analysis saved beside ``recording``
    (:func:`emgfeedback.io.edf.sidecar.analysis_path`, where ``report`` finds it)."""
    from emgfeedback.io.edf.sidecar import analysis_path

    try:
        return Path(out).resolve() == analysis_path(Path(recording).resolve())
    except (OSError, RuntimeError):
        return False


# ---------------------------------------------------------------------------- entry point
COMMANDS: list[Callable[[Any], None]] = [_add_demo, _add_ports, _add_simulate, _add_report,
                                         _add_progress, _add_history]

# ---------------------------------------------------------------------------- recording & files
def _add_record(sub: Any) -> None:
    p = sub.add_parser("record", help="record a session to EDF+/BDF+ with a JSON sidecar")
    _add_board_options(p)
    p.add_argument("--duration", type=_num("--duration", gt=0, le=MAX_LIVE_S, unit="s"),
                   default=None,
                   help="seconds of signal (default: until Ctrl-C or SIGTERM, or the source ends)")
    p.add_argument("--patient", required=True, help="pseudonymous patient id, e.g. P-0001")
    p.add_argument("--out", type=Path, required=True, help="output .edf (or .bdf)")
    p.add_argument("--lsl", action="store_true", help="also publish raw/envelope/markers on LSL")
    p.add_argument("--lsl-scope", default="localhost", metavar="WHERE",
                   help="with --lsl: localhost (default: this machine only), an IPv4 address or "
                        "interface of this machine (e.g. eth0), or all (every interface)")
    _add_video_options(p)
    p.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in (".edf", ".bdf"):
        raise ConfigError(f"{args.out}: record writes .edf or .bdf")
    if args.board == "simulated" and args.scenario is None:
        args.scenario = "session"
    return run_live(args, _config(args), record_to=args.out, patient=args.patient,
                    lsl=args.lsl, console=False)


def _add_replay(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay a recording (any supported file) through the "
                                      "live pipeline")
    p.add_argument("file", type=Path)
    p.add_argument("--speed", default="1", type=_speed_arg,
                   help="1 = real time, N = N times faster, max")
    p.add_argument("--start", type=_num("--start", ge=0, le=1e7, unit="s"), default=0.0,
                   help="start at this second")
    p.add_argument("--json", type=Path, default=None,
                   help="run headless at --speed max and write the analysis JSON (as 'analyze')")
    _add_import_options(p)
    p.add_argument("--lsl", action="store_true", help="also publish on LSL")
    p.add_argument("--lsl-scope", default="localhost", metavar="WHERE",
                   help="with --lsl: localhost (default: this machine only), an IPv4 address or "
                        "interface of this machine (e.g. eth0), or all (every interface)")
    p.add_argument("--affected-side", "--affected", dest="affected", choices=SIDES,
                   default=None, help="affected side for --json (as analyze)")
    p.add_argument("--patient", default=None,
                   help="pseudonymous patient id for --json (as analyze)")
    p.add_argument("--config", type=Path, default=None, help="configuration TOML file")
    p.add_argument("--notch", choices=("50", "60", "auto", "off"), default=None)
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    """The file through the live pipeline at ``--speed``, with the live clinical engine: the
    console shows the events the live session raised (replay gives exactly the live events)."""
    from emgfeedback.app.session import Session, SessionSpec, run_in_foreground

    cfg = _config(args)
    if args.json is not None:
        return _replay_json(args, cfg)
    opts: dict[str, Any] = {"speed": _speed(args.speed), "start": args.start, "fs": args.fs,
                            "unit": args.unit, "board": args.brainflow_board}
    if opts["speed"] is None:  # --speed max: large blocks (chunk-invariant: the same events)
        from emgfeedback.app.analyze import OFFLINE_BLOCK_S

        opts["block_ms"] = 1000.0 * OFFLINE_BLOCK_S
    spec = SessionSpec(source=f"replay:{args.file}", source_options=opts, config=cfg,
                       affected_side=args.affected, lsl=args.lsl, lsl_scope=args.lsl_scope)
    session = Session(spec, views=_console(f"emgfeedback replay: {args.file.name}", cfg))
    run_in_foreground(session)
    pl = session.pipeline
    fs = pl.chain.fs if pl.chain is not None else 0.0
    print(f"replayed {pl.samples / fs if fs else 0.0:.1f} s of {args.file} "
          f"({pl.lost} samples lost)", file=sys.stderr)
    _video_line(session)
    return 0


def _replay_json(args: argparse.Namespace, cfg: Config) -> int:
    """Headless replay at full speed through the live pipeline and the clinical engine: the
    same code path, options and JSON document as ``emgfeedback analyze``."""
    args.montage = args.program = args.exercise = None
    args.calibration = "annotations"
    return _write_analysis(args, cfg, table=False)


def _add_import_options(p: argparse.ArgumentParser) -> None:
    """What a file may need to be read (``io.importers.load``): rate, unit, BrainFlow board."""
    g = p.add_argument_group("reading other tools' files")
    g.add_argument("--fs", type=_FS, default=None, help="rate for files without one")
    g.add_argument("--unit", default=None, help="unit of generic CSV values (uV, mV, V)")
    g.add_argument("--brainflow-board", default=None, help="board of a BrainFlow CSV file")


def _add_identity_options(p: argparse.ArgumentParser) -> None:
    """``--patient`` and ``--affected-side`` for files that do not carry them."""
    g = p.add_argument_group("files without a patient id or affected side")
    g.add_argument("--patient", default=None,
                   help="pseudonymous patient id, e.g. P-0001 (files of other tools carry none)")
    g.add_argument("--affected-side", choices=SIDES, default=None,
                   help="affected side when the file does not state it")


@dataclass(frozen=True)
class _Opener:
    """Opens a session file with the import options, ``--patient``/``--affected-side``
    (:func:`emgfeedback.io.identity.apply_identity`) and ``--montage`` (channels relabelled
    ``EMG <side>-<code>``, the labels every later step reads).  Picklable: batch workers (a
    process pool, a Dask cluster) open their files with it."""

    fs: float | None = None
    unit: str | None = None
    board: str | None = None
    patient: str | None = None
    side: str | None = None
    montage: Path | None = None

    def __call__(self, path: Path) -> Any:
        from emgfeedback.io.identity import apply_identity
        from emgfeedback.io.importers import load

        rec = load(path, fs=self.fs, unit=self.unit, board=self.board)
        try:
            apply_identity(rec, self.patient, self.side)
            _beside_events(rec)
            if self.montage is not None:
                _relabel(rec, self.montage)
        except BaseException:
            rec.close()
            raise
        return rec


def _opener(args: argparse.Namespace) -> _Opener:
    """The :class:`_Opener` of the command's options (``--patient`` checked before any file is
    read)."""
    from emgfeedback.io.identity import validate_side

    patient = getattr(args, "patient", None)
    side = validate_side(getattr(args, "affected_side", None))
    if patient:
        from emgfeedback.io.edf import validate_patient_id

        validate_patient_id(patient)  # refused before any file is read
    return _Opener(getattr(args, "fs", None), getattr(args, "unit", None),
                   getattr(args, "brainflow_board", None), patient, side,
                   getattr(args, "montage", None))


def _beside_events(rec: Any) -> None:
    """A file of another tool with a BIDS ``<stem>_events.tsv`` beside it (and no protocol
    annotations of its own) takes its annotation rows as markers (``io.bids.read_events_tsv``)."""
    if any(not m.text.startswith("marker") for m in rec.markers):
        return
    from emgfeedback.io.bids import events_path_for, read_events_tsv

    ev = events_path_for(rec.path)
    if ev is not None:
        rec.markers = sorted([*rec.markers, *read_events_tsv(ev, rec.fs)],
                             key=lambda m: m.sample)
        rec.notes.append(f"annotations from {ev.name}")


def _relabel(rec: Any, montage_path: Path) -> None:
    """Give the recording's channels the region labels of a montage TOML."""
    import dataclasses

    from emgfeedback.clinical.montage import load_montage
    from emgfeedback.vocabulary import format_label
    from emgfeedback.io.edf import sidecar_affected_side

    m = load_montage(montage_path, rec.channels, sidecar_affected_side(rec.sidecar) or None)
    labels = tuple(format_label(c.side, c.code) for c in m.channels)
    rec.channels = labels
    if rec.info is not None:
        rec.info = dataclasses.replace(rec.info, channels=labels)
    if m.affected_side and not sidecar_affected_side(rec.sidecar):
        rec.sidecar["affected_side"] = m.affected_side
    rec.notes.append(f"channels relabelled by the montage {montage_path.name}")


def _add_convert(sub: Any) -> None:
    p = sub.add_parser("convert", help="convert between formats (to .edf, .bdf or .csv)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    _add_import_options(p)
    p.add_argument("--patient", default="X", help="pseudonymous patient id for EDF output")
    p.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from emgfeedback.io.exporters import export
    from emgfeedback.io.importers import load

    if args.input.resolve() == args.output.resolve():
        raise ConfigError("convert: input and output are the same file")
    with load(args.input, fs=args.fs, unit=args.unit, board=args.brainflow_board) as rec:
        fmt = export(rec, args.output, patient=args.patient)
        print(f"wrote {args.output} ({fmt}): {len(rec.channels)} channels, {rec.fs:g} Hz, "
              f"{rec.duration_s:.1f} s, {len(rec.markers)} markers, {len(rec.gaps)} gaps")
    return 0


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="channels, rate, duration, annotations, quality of a file")
    p.add_argument("file", type=Path)
    _add_import_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from emgfeedback.app.info import summarise

    doc = summarise(args.file, fs=args.fs, unit=args.unit, board=args.brainflow_board)
    if args.json:
        print(json.dumps(doc, indent=1, allow_nan=False))
        return 0
    print(f"{doc['file']}: {doc['format']}, {len(doc['channels'])} channels at {doc['fs']:g} Hz, "
          f"{doc['duration_s']:.2f} s")
    def num(v: float | None, w: int) -> str:
        return f"{v:{w}.2f}" if v is not None else f"{'n/a':>{w}}"

    for c in doc["channels"]:
        print(f"  {c['label']:<16} RMS {num(c['rms_uv'], 9)} µV (20-450 Hz)  mains "
              f"{num(c['mains_uv'], 8)} µV  saturated {c['saturated']}")
    print(f"  gaps: {doc['gaps']} ({doc['lost_samples']} samples lost)")
    ann = doc["annotations"]
    print(f"  annotations: {len(ann)}")
    for a in ann[:20]:
        print(f"    {a['onset_s']:9.3f} s  {a['duration_s']:7.3f} s  {a['text']}")
    if len(ann) > 20:
        print(f"    ... {len(ann) - 20} more")
    if doc.get("patient"):
        print(f"  patient: {doc['patient']}  board: {doc.get('board', '')}")
    for n in doc["notes"]:
        print(f"  note: {n}")
    return 0


def _add_repair(sub: Any) -> None:
    p = sub.add_parser("repair", help="fix an EDF/BDF recording after a crash")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_repair)


def cmd_repair(args: argparse.Namespace) -> int:
    from emgfeedback.io.edf.repair import repair

    print(repair(args.file))
    return 0


def _add_export_bids(sub: Any) -> None:
    p = sub.add_parser("export-bids", help="write sessions as a BIDS-EMG dataset")
    p.add_argument("sessions", nargs="+", type=Path, metavar="SESSION",
                   help="recordings (EDF+ with sidecar, or any file 'info' reads)")
    p.add_argument("--out", type=Path, required=True, help="dataset folder (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.add_argument("--montage", type=Path, default=None,
                   help="montage TOML naming the region of each channel (files of other tools)")
    _add_identity_options(p)
    _add_import_options(p)
    p.set_defaults(func=cmd_export_bids)


def cmd_export_bids(args: argparse.Namespace) -> int:
    """Each session with its analysis (the one saved beside it, else analyze) and the electrode
    sites of its channels, written by :func:`emgfeedback.io.bids.export_bids`."""
    from emgfeedback.vocabulary import REGIONS, parse_label
    from emgfeedback.io.bids import BidsSession, export_bids
    from emgfeedback.views.report import analysis_of

    opener = _opener(args)
    recs: list[Any] = []
    sessions = []
    try:
        for path in args.sessions:
            if not path.is_file():
                raise ConfigError(f"{path}: no such session file")
            rec = opener(path)
            recs.append(rec)
            analysis, _ = analysis_of(rec)
            placement: dict[str, tuple[str, str]] = {}
            for label in rec.channels:
                try:
                    cid = parse_label(label)
                except ConfigError:
                    continue
                region = REGIONS[cid.code]
                placement[label] = (f"{'left' if cid.side == 'L' else 'right'} {region.muscle}",
                                    region.site)
            sessions.append(BidsSession(rec, analysis, placement))
        written = export_bids(sessions, args.out, overwrite=args.overwrite)
    finally:
        for rec in recs:
            rec.close()
    print(f"wrote {args.out}: {len(written)} sessions of "
          f"{len({w.parts[-4] for w in written})} participants (BIDS {_bids_version()})")
    return 0


def _bids_version() -> str:
    from emgfeedback.io.bids import BIDS_VERSION

    return BIDS_VERSION


COMMANDS += [_add_record, _add_replay, _add_convert, _add_info, _add_repair, _add_export_bids]
COMMANDS += [_add_analyze]



# ---------------------------------------------------------------------------- video
def _finite(kind: str, lo: float, hi: float) -> Callable[[str], float]:
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} must be a number, got {text!r}") from None
        if not (lo <= v <= hi):  # also refuses nan
            raise argparse.ArgumentTypeError(f"{kind} must be in [{lo:g}, {hi:g}], got {text}")
        return v

    return conv


def _add_video(sub: Any) -> None:
    p = sub.add_parser("video", help="face measures and video synkinesis of a video file "
                                     "(needs the video extra)")
    p.add_argument("file", type=Path, help="video file (MP4/H.264, AVI, ...)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write per-frame measures, summary and events")
    p.add_argument("--fs", type=_finite("--fs", 100.0, 20000.0), default=1000.0,
                   help="EMG sample rate of the sample axis (default 1000 Hz)")
    p.add_argument("--offset", type=_finite("--offset", 0.0, 1e9), default=0.0,
                   metavar="SAMPLES", help="EMG sample index of the first frame (default 0)")
    p.add_argument("--rest", type=_finite("--rest", 0.05, 60.0), default=0.5, metavar="S",
                   help="seconds of relaxed face at the start used as rest (default 0.5)")
    p.add_argument("--mirror", action="store_true", help="the frames are a mirror view")
    p.add_argument("--analysis", type=Path, default=None, metavar="A.json",
                   help="the session's EMG analysis (emgfeedback analyze --json): per-rep video "
                        "measures and agreement of the two detectors")
    p.add_argument("--eye-narrowing", type=_finite("--eye-narrowing", 0.05, 0.95), default=0.30,
                   metavar="F", help="narrowing of the eye, fraction of rest (default 0.30)")
    p.set_defaults(func=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    from emgfeedback.video import missing

    why = missing()
    if why is not None:
        raise EmgError(why)
    from emgfeedback.video.analysis import analyze_video, emg_reps, rep_table
    from emgfeedback.video.detect import VideoRules

    emg = None
    if args.analysis is not None:
        try:
            emg = json.loads(args.analysis.read_text(encoding="utf-8"))
            fs = float(emg["fs"])
            reps = emg_reps(emg)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise FileFormatError(f"{args.analysis}: not an emgfeedback analysis JSON "
                                  f"({type(exc).__name__}: {exc}); make one with "
                                  "'emgfeedback analyze FILE --json OUT'") from None
        if fs != args.fs:
            args.fs = fs  # the video goes on the analysed recording's sample axis
    a = analyze_video(args.file, fs=args.fs, offset_samples=args.offset, rest_s=args.rest,
                      rules=VideoRules(eye_narrowing=args.eye_narrowing), mirror=args.mirror,
                      reps=reps if emg is not None else None)
    s = a.summary()
    print(f"{args.file}: {s['frames']} frames at {a.fps:g} fps, {a.size[0]}x{a.size[1]}, face in "
          f"{100 * s['face_fraction']:.0f} % (frontal {100 * s['frontal_fraction']:.0f} %)")
    for side in ("L", "R"):
        d = s[side]
        print(f"  {side}: eye down to {d['eye_min_pct_of_rest']} % of rest, mouth corner up to "
              f"{d['mouth_peak_excursion']} IOD, brow up to {d['brow_peak_pct_of_rest']} % of rest")
    print(f"  {len(a.events)} video synkinesis event(s)")
    for e in a.events:
        print(f"    {e.side} {e.pattern}: {e.onset / a.fs:.2f}-{e.offset / a.fs:.2f} s, eye "
              f"{e.eye_pct_of_rest:.0f} % of rest")
    doc = a.to_json()
    if emg is not None:
        table = rep_table(a, emg)
        doc["per_rep"] = table
        print(f"  per rep side with frames ({table['judged']}): camera and EMG "
              f"agree on {table['agreement']} of them, kappa {table['kappa']}")
        for r in table["reps"]:
            print(f"    rep {r['rep']:>3} {r['side']} {r['exercise']:<14} eye min "
                  f"{r['eye_min_pct_of_rest']} %  mouth {r['mouth_peak_excursion']}  video "
                  f"{'SYNK' if r['video_synkinesis'] else '-':<4} EMG "
                  f"{'SYNK' if r['emg_synkinesis'] else '-'}")
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


COMMANDS += [_add_video]

class _Version(argparse.Action):
    """``--version``, looked up only when asked (``importlib.metadata`` is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str = "show the version and exit") -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        import emgfeedback

        print(f"emgfeedback {emgfeedback.__version__}")
        parser.exit()


def command_name(add: Callable[[Any], None]) -> str:
    """The command an entry of :data:`COMMANDS` adds: ``_add_export_bids`` -> ``export-bids``
    (tests/test_cli.py checks every entry)."""
    return add.__name__.removeprefix("_add_").replace("_", "-")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``argv`` about to be parsed, only the command it names
    is built with its options (each costs its ``add_argument`` calls at every start-up, 10 ms
    for all of them; issue 13).  The others then remain unknown to this parser, which parses
    ``argv`` exactly as the whole one would: the command is the first word after the top-level
    options (which take no value); without one, or with another word, everything is built."""
    parser = _Parser(prog="emgfeedback",
                     description="Surface-EMG biofeedback for facial paralysis rehabilitation.")
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--debug", action="store_true", help="log details; tracebacks on bugs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    args = list(argv or ())
    at = next((i for i, a in enumerate(args) if a == "--" or not a.startswith("-")), len(args))
    first = args[at] if at < len(args) else None
    # a help option before the command shows the top-level help: it lists every command
    helping = any(a == "-h" or (a.startswith("--h") and "--help".startswith(a))
                  for a in args[:at])
    chosen = [] if helping else [add for add in COMMANDS if command_name(add) == first]
    for add in chosen or COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Everything this process writes may hold patient data: owner-only files (0600) and
    # folders (0700), whatever the caller's umask; the writers also set 0600 explicitly.
    global _OWN_PROCESS
    outer, _OWN_PROCESS = _OWN_PROCESS, argv is None
    old_umask = os.umask(0o077)
    try:
        return _main(argv)
    finally:
        os.umask(old_umask)  # main() called in-process (tests) leaves the caller's umask
        _OWN_PROCESS = outer


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    with _start_up():
        parser = build_parser(argv)
        args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EmgError as exc:
        print(f"emgfeedback: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("emgfeedback: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"emgfeedback: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line, and the traceback with --debug
        if args.debug:
            raise
        print(f"emgfeedback: internal error: {type(exc).__name__}: {exc} "
              "(run with --debug and report it)", file=sys.stderr)
        return EXIT_ERROR
