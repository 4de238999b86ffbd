"""The custodian's review: what a package changes against the last approved one.

The diff works on the stored JSON of the baseline (not on a re-validated
object), so a baseline approved under an older engine still compares.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trustfeed.recommend._config import RecommenderConfig
from trustfeed.recommend.package._package import WEIGHTS, Package

if TYPE_CHECKING:
    from trustfeed.recommend.package._registry import PackageDecision

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
_MARK = {ADDED: "+", REMOVED: "-", CHANGED: "~"}
_SECTIONS = ("model class", "seed", "hyper-parameters", "ranking weights", "features")


@dataclass(frozen=True)
class Change:
    """One difference: ``section`` (e.g. ``hyper-parameters``), ``key``, and the two values."""

    section: str
    key: str
    kind: str
    old: Any = None
    new: Any = None

    def line(self) -> str:
        mark = _MARK[self.kind]
        if self.kind == CHANGED:
            return f"  {mark} {self.key}: {_show(self.old)} → {_show(self.new)}"
        value = self.new if self.kind == ADDED else self.old
        shown = f": {_show(value)}" if value is not None else ""
        return f"  {mark} {self.key}{shown}{_default_note(self)}"


@dataclass(frozen=True)
class Review:
    """A verified package, who signed it, its baseline and the changes; ``render()`` prints it."""

    package: Package
    signed_by: tuple[str, ...]
    baseline: PackageDecision | None
    status: PackageDecision | None
    changes: tuple[Change, ...]

    def section(self, name: str) -> list[Change]:
        return [c for c in self.changes if c.section == name]

    def render(self) -> str:
        """The human-readable review (what ``trustfeed package review`` prints)."""
        lines = [*self._header(), ""]
        for name in (*_SECTIONS, "initial weights", "description"):
            found = self.section(name)
            if found:
                lines += [f"{name}:", *(c.line() for c in found)]
        unchanged = [n for n in _SECTIONS if not self.section(n)]
        if unchanged:
            lines.append(f"unchanged: {', '.join(unchanged)}")
        lines.append(f"{len(self.changes)} change(s).")
        return "\n".join(lines) + "\n"

    def _header(self) -> list[str]:
        p = self.package
        lines = [
            f"package   {p.id}  {p.name} {p.version}",
            f"signed by {', '.join(self.signed_by)} (trusted licensor key; signature verified)",
            f"status    {_status(self.status)}",
        ]
        if self.baseline is None:
            lines.append("baseline  none: no package is approved yet, so everything is new")
        else:
            b = self.baseline
            lines.append(
                f"baseline  {b.package_id}  {b.name} {b.version}, approved by {b.decided_by} "
                f"at {when(b.decided_at)} (ledger entry {b.ledger_index})"
            )
        return lines


def diff_packages(baseline: PackageDecision | None, package: Package) -> list[Change]:
    """Every change from ``baseline``'s configuration and weights to ``package``'s."""
    old = json.loads(baseline.config) if baseline is not None else {}
    new = json.loads(package.config_text)
    changes = [
        *_diff_value("model class", "model_class", old.get("model_class"), new["model_class"]),
        *_diff_value("seed", "seed", old.get("seed", 42 if old else None), new.get("seed", 42)),
        *_diff_maps("hyper-parameters", old.get("hyperparameters", {}), new["hyperparameters"]),
        *_diff_maps("ranking weights", old.get("ranking_weights", {}), new["ranking_weights"]),
        *_diff_features(old.get("features", []), new["features"]),
        *_diff_maps("initial weights", _weights(baseline), _weight_digests(package.digests())),
    ]
    changes += _diff_value(
        "description", "description", _short(old.get("description")), _short(new["description"])
    )
    return changes


def _short(text: str | None) -> str | None:
    if not text:
        return None
    return text if len(text) <= 80 else text[:79] + "…"


def _diff_value(section: str, key: str, old: Any, new: Any) -> list[Change]:
    if old == new:
        return []
    return [Change(section, key, ADDED if old is None else CHANGED, old, new)]


def _diff_maps(section: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(Change(section, key, ADDED, None, new[key]))
        elif key not in new:
            changes.append(Change(section, key, REMOVED, old[key], None))
        elif old[key] != new[key]:
            changes.append(Change(section, key, CHANGED, old[key], new[key]))
    return changes


def _diff_features(old: list[str], new: list[str]) -> list[Change]:
    changes = [Change("features", f, ADDED) for f in new if f not in old]
    changes += [Change("features", f, REMOVED) for f in old if f not in new]
    if not changes and old != new:
        changes.append(Change("features", "order", CHANGED, ", ".join(old), ", ".join(new)))
    return changes


def _weights(baseline: PackageDecision | None) -> dict[str, str]:
    if baseline is None:
        return {}
    entries = json.loads(baseline.manifest)["files"]
    return _weight_digests({e["path"]: e["sha256"] for e in entries})


def _weight_digests(digests: Mapping[str, str]) -> dict[str, str]:
    # Digests shortened for reading; the full ones are in the manifests.
    return {p: f"sha256 {d[:16]}…" for p, d in digests.items() if p.startswith(WEIGHTS)}


def _default_note(change: Change) -> str:
    """For an added or removed setting, the engine default it replaces or restores."""
    names = {"hyper-parameters": change.key, "ranking weights": f"{change.key}_weight"}
    field = RecommenderConfig.model_fields.get(names.get(change.section, ""))
    if field is None or change.kind == CHANGED:
        return ""
    default = _show(field.default)
    if change.kind == ADDED:
        return f"   (engine default: {default})"
    return f"   (the engine default {default} applies again)"


def _status(decision: PackageDecision | None) -> str:
    if decision is None:
        return "not yet decided"
    reason = f": {decision.reason}" if decision.reason else ""
    return (
        f"{decision.decision} by {decision.decided_by} at {when(decision.decided_at)} "
        f"(ledger entry {decision.ledger_index}){reason}"
    )


def when(timestamp: float) -> str:
    """A UTC time for people (audit output is read across time zones)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
