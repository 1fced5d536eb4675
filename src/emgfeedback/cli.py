"""Command line: ``emgfeedback <command> ...`` (also ``python -m emgfeedback``).

Every user error ends as one line on stderr (``emgfeedback: error: ...``) and a non-zero exit
status; never a traceback.  ``--debug`` shows the traceback of unexpected errors for bug reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from emgfeedback import __version__
from emgfeedback.config import Config, load_config
from emgfeedback.errors import ConfigError, EmgError

log = logging.getLogger("emgfeedback")

EXIT_USAGE = 2
EXIT_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------- shared options
def _add_board_options(p: argparse.ArgumentParser, default_speed: str = "1") -> None:
    g = p.add_argument_group("signal source")
    g.add_argument("--board", default="simulated",
                   help="simulated (default), simavr, serial:PORT, replay:FILE, brainflow:BOARD, "
                        "lsl:NAME")
    g.add_argument("--scenario", default=None,
                   help="simulated board scenario (rest, smile-clean, smile-synkinesis, "
                        "eye-closure-synkinesis, asymmetric-smile, session)")
    g.add_argument("--seed", type=int, default=0, help="simulated board random seed")
    g.add_argument("--fs", type=float, default=None, help="sample rate in Hz (where settable)")
    g.add_argument("--mains", type=float, choices=(50.0, 60.0), default=None,
                   help="simulated mains frequency (the filter detects it; see --notch)")
    g.add_argument("--speed", default=default_speed,
                   help="pacing: 1 = real time, N = N times faster, max = as fast as possible")
    p.add_argument("--config", type=Path, default=None, help="configuration TOML file")
    p.add_argument("--notch", choices=("50", "60", "auto", "off"), default=None,
                   help="mains notch (default from config: auto-detect)")


def _speed(value: str) -> float | None:
    if value in ("max", "inf"):
        return None
    try:
        v = float(value)
    except ValueError:
        raise ConfigError(f"--speed must be a number or 'max', got {value!r}") from None
    if v <= 0:
        raise ConfigError(f"--speed must be positive, got {value}")
    return v


def _config(args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "notch", None):
        overrides["dsp"] = {"mains": args.notch}
    return load_config(args.config, overrides)


def make_source(args: argparse.Namespace, duration: float | None = None) -> Any:
    """The source named by ``--board`` and the board options."""
    from emgfeedback.sources import open_source

    opts: dict[str, Any] = {"speed": _speed(args.speed)}
    kind = args.board.partition(":")[0]
    if kind == "simulated":
        opts.update(scenario=args.scenario, seed=args.seed, fs=args.fs, mains=args.mains,
                    duration=duration)
    elif args.fs:
        opts["fs"] = args.fs
    return open_source(args.board, **opts)


# ---------------------------------------------------------------------------- demo
def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="live biofeedback (GUI when a display is present, else console)")
    _add_board_options(p)
    p.add_argument("--console", action="store_true", help="terminal dashboard even with a display")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds of signal")
    p.set_defaults(func=cmd_demo)


def _display_available() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_demo(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.scenario is None and args.board == "simulated":
        args.scenario = "session"
    gui = None
    if not args.console and _display_available():
        try:
            from emgfeedback.views import gui  # type: ignore[attr-defined,no-redef]
        except ImportError:
            gui = None
    if gui is not None:
        return int(gui.run_demo(args, cfg))
    return _run_console(args, cfg)


def _run_console(args: argparse.Namespace, cfg: Config) -> int:
    from emgfeedback.session import Session
    from emgfeedback.views.console import ConsoleView

    source = make_source(args, duration=args.duration)
    session = Session(source, cfg)
    chain = session.open()
    view = ConsoleView(chain, title=f"emgfeedback demo: {source.info.name}", quality=cfg.quality)
    session.add(view)
    try:
        session.run(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
    view.draw()
    print(f"stopped after {session.samples / chain.fs:.1f} s of signal "
          f"({session.lost} samples lost)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- simulate
def _add_simulate(sub: Any) -> None:
    p = sub.add_parser("simulate", help="write a simulated session to a file")
    p.add_argument("--scenario", default="session")
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fs", type=float, default=None)
    p.add_argument("--mains", type=float, choices=(50.0, 60.0), default=None)
    p.add_argument("--noise", type=float, default=None,
                   help="baseline noise RMS upper bound in µV (default 5)")
    p.add_argument("--synkinesis-prob", type=float, default=None,
                   help="probability that a rep carries synkinesis (scenario default otherwise)")
    p.add_argument("--out", type=Path, required=True, help="output file (.csv)")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from emgfeedback.io.csvfile import write_csv
    from emgfeedback.sources.simulated import _factory

    if args.duration <= 0:
        raise ConfigError(f"--duration must be positive, got {args.duration}")
    extra: dict[str, Any] = {}
    if args.noise is not None:
        extra["noise_uv"] = (min(1.0, args.noise), args.noise)
    if args.synkinesis_prob is not None:
        extra["synkinesis_prob"] = args.synkinesis_prob
    src = _factory(scenario=args.scenario, duration=args.duration, seed=args.seed, speed=None,
                   fs=args.fs, mains=args.mains, **extra)
    with src:
        chunk = src.read_all()
    suffix = args.out.suffix.lower()
    if suffix not in (".csv", ".tsv", ".txt"):
        raise ConfigError(f"{args.out}: unsupported output format {suffix!r}; use .csv")
    write_csv(args.out, chunk, markers=[m for m in chunk.markers])
    truth = args.out.with_suffix(args.out.suffix + ".truth.json")
    truth.write_text(json.dumps(script_to_json(src), indent=1))
    print(f"wrote {args.out} ({len(chunk)} samples, {len(chunk.channels)} channels, "
          f"{chunk.fs:g} Hz) and ground truth {truth}")
    return 0


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
                    "exercise": e.exercise, "onset_s": e.start / fs, "offset_s": e.stop / fs,
                    "peak_pct_mvc": e.peak_pct} for e in s.events],
    }



# ---------------------------------------------------------------------------- analyze
def _add_analyze(sub: Any) -> None:
    p = sub.add_parser("analyze", help="calibration, reps, synkinesis events and symmetry of a "
                                       "recording (JSON + table)")
    p.add_argument("file", type=Path, help="recording (.csv; .edf when the EDF reader is merged)")
    p.add_argument("--montage", type=Path, default=None, help="montage TOML (labels -> regions)")
    p.add_argument("--program", type=Path, default=None, help="exercise program TOML")
    p.add_argument("--exercise", default=None,
                   help="the whole file is one rep of this exercise (no annotations needed)")
    p.add_argument("--affected", choices=("L", "R"), default=None, help="affected side")
    p.add_argument("--calibration", choices=("annotations", "auto"), default="annotations",
                   help="rest/mvc annotations (default; automatic fallback where missing) or "
                        "the automatic estimate only")
    p.add_argument("--json", type=Path, default=None, help="write the analysis JSON here")
    p.add_argument("--config", type=Path, default=None, help="configuration TOML file")
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from emgfeedback.clinical.analysis import analyze, format_table, load_for_analysis
    from emgfeedback.clinical.exercises import default_program, load_program
    from emgfeedback.clinical.montage import Montage, load_montage

    cfg = load_config(args.config)
    rec = load_for_analysis(args.file)
    program = load_program(args.program) if args.program else default_program()
    affected = args.affected or program.affected_side
    montage = (load_montage(args.montage, rec.channels, affected) if args.montage
               else Montage.from_labels(rec.channels, affected))
    result = analyze(rec, montage, program, exercise=args.exercise,
                     calibration=args.calibration, config=cfg)
    print(format_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


# ---------------------------------------------------------------------------- entry point
COMMANDS: list[Callable[[Any], None]] = [_add_demo, _add_simulate, _add_analyze]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emgfeedback",
                     description="Surface-EMG biofeedback for facial paralysis rehabilitation.")
    parser.add_argument("--version", action="version", version=f"emgfeedback {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details; tracebacks on bugs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
