"""One line per attack: how close it came to the source ceiling, and whether the acceptance level
would take its result for the person."""
from __future__ import annotations

from typing import Dict, List, Optional

HOLDS = "holds"
LEAKS = "LEAKS"


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _against_level(value: Optional[float], level: Optional[float]) -> str:
    if value is None or level is None:
        return ""
    if value < level:
        return f"; below the acceptance level {level:.3f}: {HOLDS}"
    return f"; at or above the acceptance level {level:.3f}: {LEAKS} (a verifier would accept it as the person)"


def attack_line(title: str, unlearned: Optional[float], source: Optional[float], level: Optional[float]) -> str:
    """``title: u through the unlearned generator vs s through the source (x% of the ceiling); ...``"""
    share = f" ({unlearned / source:.0%} of the ceiling)" if unlearned is not None and source else ""
    return (f"{title}: ID similarity {_fmt(unlearned)} through the unlearned generator vs {_fmt(source)} through "
            f"the source{share}{_against_level(unlearned, level)}")


def _radii_at_or_above(radii: List[float], curve: List[Optional[float]], level: float) -> List[float]:
    return [r for r, v in zip(radii, curve) if v is not None and v >= level]


def _kept_up_to(radii: List[float], curve: List[Optional[float]], level: float) -> Optional[float]:
    """The largest radius up to which every point of the curve is at or above the level."""
    kept = None
    for r, v in zip(radii, curve):
        if v is None or v < level:
            break
        kept = r
    return kept


def _radius_text(r: Optional[float]) -> str:
    return "no radius" if r is None else f"r = {r:g}"


def leakage_line(radii: List[float], unlearned: List[Optional[float]], source: List[Optional[float]],
                 level: Optional[float]) -> str:
    """Where the erased identity's neighbourhood is still accepted as the person."""
    peak = max((v for v in unlearned if v is not None), default=None)
    head = f"Leakage radius: the unlearned generator's renders around w_u reach at most {_fmt(peak)}"
    if level is None:
        return head + f" (source: {_fmt(source[0] if source else None)} at r = 0)"
    leaking = _radii_at_or_above(radii, unlearned, level)
    natural = _kept_up_to(radii, source, level)
    where = (f"; accepted as the person at r = {', '.join(f'{r:g}' for r in leaking)}: {LEAKS}" if leaking
             else f"; below the acceptance level {level:.3f} at every radius: {HOLDS}")
    return head + where + f" (the source keeps the person up to {_radius_text(natural)})"


def retained_line(radii: List[float], unlearned: List[Optional[float]], source: List[Optional[float]],
                  level: Optional[float], count: int) -> str:
    """Whether the retained identities (ID_others style) survive the erasure and their neighbourhoods."""
    if count == 0:
        return "Neighbours kept: no retained identities were audited"
    at_zero = unlearned[0] if unlearned else None
    who = "1 retained identity scores" if count == 1 else f"{count} retained identities score"
    head = f"Neighbours kept: {who} {_fmt(at_zero)} at r = 0 (1.000 would be untouched)"
    if level is None:
        return head
    kept, natural = _kept_up_to(radii, unlearned, level), _kept_up_to(radii, source, level)
    if at_zero is None or at_zero < level:
        return head + f"; below the acceptance level {level:.3f}: the erasure is TOO BROAD"
    return (head + f"; recognised up to {_radius_text(kept)} (through the source: up to {_radius_text(natural)})")


def verdicts(record: dict) -> Dict[str, str]:
    """The verdict lines of an audit record (see :func:`guide.audit.pipeline.audit_generators`)."""
    level = (record.get("threshold") or {}).get("value")
    out = {}
    reinversion, attack = record.get("reinversion") or {}, record.get("attack") or {}
    if "skipped" in reinversion:
        out["reinversion"] = f"Re-inversion: skipped ({reinversion['skipped']})"
    else:
        out["reinversion"] = attack_line("Re-inversion", reinversion["unlearned"]["mean"],
                                         reinversion["source"]["mean"], level)
    if "skipped" in attack:
        out["attack"] = f"Optimisation attack: skipped ({attack['skipped']})"
    else:
        out["attack"] = attack_line("Optimisation attack (best start)", attack["unlearned"]["mean"],
                                    attack["source"]["mean"], level)
    leakage = record["leakage"]
    radii = leakage["radii"]
    target = leakage["target"]
    out["leakage"] = leakage_line(radii, target["unlearned"]["mean"], target["source"]["mean"], level)
    retained = leakage["retained"]
    out["retained"] = retained_line(radii, retained["unlearned"], retained["source"], level, retained["count"])
    return out
