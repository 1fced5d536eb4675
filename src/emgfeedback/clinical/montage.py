"""Montage: which facial region and side each recorded channel is on, and the affected side.

Channels map to regions from their labels (``EMG L-ZYG``, docs/domain.md "Regions and codes")
or, when a file uses other labels (``EMG 1``, ``A0``), from a montage TOML::

    affected_side = "L"          # optional: "L" or "R"

    [channels]                   # file label = "<side>-<code>"
    "EMG 1" = "L-ZYG"
    "EMG 2" = "L-OOC"

    [sites]                      # optional: site description overrides for the placement guide
    "L-ZYG" = "2 cm lateral to the mouth corner (scar)"

Labels not listed in ``[channels]`` must themselves be region labels.  Every channel carries its
electrode site description from :data:`~emgfeedback.vocabulary.REGIONS` (or the override),
which the placement guide prints.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emgfeedback.vocabulary import REGIONS, SIDES, ChannelId, parse_label
from emgfeedback.config import read_toml
from emgfeedback.errors import ConfigError

__all__ = ["Montage", "MontageChannel", "load_montage", "montage_from_mapping"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MontageChannel:
    """One recorded channel: its label in the file and the region it is on."""

    label: str  # label in the recording (e.g. "EMG L-ZYG" or "EMG 1")
    side: str  # "L" or "R"
    code: str  # region code, key of REGIONS
    site: str  # electrode site description

    @property
    def short(self) -> str:
        """``L-ZYG``: the channel name used in JSON output."""
        return f"{self.side}-{self.code}"

    @property
    def muscle(self) -> str:
        return REGIONS[self.code].muscle


@dataclass(frozen=True)
class Montage:
    """The channels of a recording in file order, and the affected side (``None`` if unknown)."""

    channels: tuple[MontageChannel, ...]
    affected_side: str | None = None

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for c in self.channels:
            if c.short in seen:
                raise ConfigError(
                    f"montage: channels {seen[c.short]!r} and {c.label!r} are both on {c.short}; "
                    "each region and side may be recorded once"
                )
            seen[c.short] = c.label
        if self.affected_side is not None and self.affected_side not in SIDES:
            raise ConfigError(f"montage: affected_side must be \"L\" or \"R\", got "
                              f"{self.affected_side!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """Short names (``L-ZYG``) in channel order."""
        return tuple(c.short for c in self.channels)

    def index(self, side: str, code: str) -> int | None:
        """Channel index of region ``code`` on ``side``, or ``None`` if not recorded."""
        for i, c in enumerate(self.channels):
            if c.side == side and c.code == code:
                return i
        return None

    def sides(self) -> tuple[str, ...]:
        """Sides present, ``("L", "R")`` order."""
        return tuple(s for s in SIDES if any(c.side == s for c in self.channels))

    def other_side(self, side: str) -> str:
        return "R" if side == "L" else "L"

    def with_affected(self, side: str | None) -> "Montage":
        """A copy with ``affected_side`` set (``None`` keeps the current value)."""
        if side is None:
            return self
        return Montage(self.channels, side.upper())

    @classmethod
    def from_labels(cls, labels: Sequence[str], affected_side: str | None = None) -> "Montage":
        """Map each label (``EMG L-ZYG``, any case) to its region; raise on other labels."""
        return montage_from_mapping({}, labels, affected_side=affected_side)


def _parse_target(value: Any, key: str) -> ChannelId:
    if not isinstance(value, str):
        raise ConfigError(f"montage: channels.{key!r} must be text like \"L-ZYG\", got {value!r}")
    try:
        return parse_label(value)
    except ConfigError:
        raise ConfigError(
            f"montage: channels.{key!r} = {value!r} is not '<L|R>-<code>' with a code from "
            f"{', '.join(REGIONS)}"
        ) from None


def montage_from_mapping(
    data: Mapping[str, Any], labels: Sequence[str], affected_side: str | None = None,
    where: str = "montage",
) -> Montage:
    """Build a :class:`Montage` for ``labels`` from a parsed montage TOML mapping.

    Raises :class:`ConfigError` naming the key for unknown keys, bad region codes, mapped labels
    missing from the recording and unmapped labels that are not region labels.
    """
    known = ("affected_side", "channels", "sites")
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    mapping = data.get("channels", {})
    sites = data.get("sites", {})
    if not isinstance(mapping, Mapping) or not isinstance(sites, Mapping):
        raise ConfigError(f"{where}: [channels] and [sites] must be tables")
    for side in (data.get("affected_side", None), affected_side):  # the file's is checked too
        if side is not None and (not isinstance(side, str) or side.upper() not in SIDES):
            raise ConfigError(f"{where}: affected_side must be \"L\" or \"R\", got {side!r}")
    side = data.get("affected_side", None) if affected_side is None else affected_side
    side = side.upper() if side is not None else None
    lower = {lab.strip().lower(): lab for lab in labels}
    for key in mapping:
        if key.strip().lower() not in lower:
            raise ConfigError(
                f"{where}: channels.{key!r} is not a channel of the recording "
                f"(channels: {', '.join(labels)})"
            )
    by_label = {k.strip().lower(): v for k, v in mapping.items()}
    out: list[MontageChannel] = []
    for lab in labels:
        key = lab.strip().lower()
        if key in by_label:
            cid = _parse_target(by_label[key], lab)
        else:
            try:
                cid = parse_label(lab)
            except ConfigError:
                raise ConfigError(
                    f"{where}: channel {lab!r} is not named 'EMG <L|R>-<code>' and the montage "
                    f"does not map it; add  \"{lab}\" = \"L-ZYG\"  (say) under [channels]"
                ) from None
        site = sites.get(cid.short, REGIONS[cid.code].site)
        if not isinstance(site, str):
            raise ConfigError(f"{where}: sites.{cid.short!r} must be text")
        out.append(MontageChannel(lab, cid.side, cid.code, site))
    for key in sites:
        if key not in {c.short for c in out}:
            raise ConfigError(f"{where}: sites.{key!r} names no channel of the montage")
    return Montage(tuple(out), side)


def load_montage(path: str | Path, labels: Sequence[str], affected_side: str | None = None
                 ) -> Montage:
    """Read a montage TOML for a recording with channel ``labels``.

    ``affected_side`` (if given) overrides the file's value.
    """
    p = Path(path)
    data = read_toml(p, "montage")
    m = montage_from_mapping(data, labels, affected_side, where=str(p))
    log.debug("montage %s: %s (affected %s)", p, m.names, m.affected_side)
    return m
