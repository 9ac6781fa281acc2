"""The "Audit" section of report.html, from the folder's audit.json (nothing when there is none)."""
from __future__ import annotations

import html
import json

from guide.evaluate.erase_output import EraseOutput

EXPLAIN = (
    "Could someone holding the unlearned generator still make this face? Each attack runs through the unlearned "
    "generator and, as the ceiling, through the source generator. Numbers are CurricularFace ID similarities (the "
    "evaluation protocol): to the photo for the re-inversion and the optimisation attack; to the source's renders "
    "of the identity for the leakage curves, whose value at r = 0 is the evaluation's ID (erased identity) and "
    "ID<sub>others</sub> (retained identities).")


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table(record: dict) -> str:
    rows = []
    for key, label in (("reinversion", "re-inversion (GOAE)"), ("attack", "optimisation attack, best start")):
        part = record.get(key) or {}
        if "skipped" in part:
            rows.append(f"<tr><td class=l>{label}</td><td colspan=3 class=l>skipped: {html.escape(part['skipped'])}"
                        "</td></tr>")
            continue
        unl, src = (part.get("unlearned") or {}).get("mean"), (part.get("source") or {}).get("mean")
        share = f"{unl / src:.0%}" if unl is not None and src else "n/a"
        rows.append(f"<tr><td class=l>{label}</td><td data-audit='{key}'>{_cell(unl)}</td><td>{_cell(src)}</td>"
                    f"<td>{share}</td></tr>")
    leakage = record["leakage"]
    target, retained = leakage["target"], leakage["retained"]
    if 0.0 in leakage["radii"]:
        at = leakage["radii"].index(0.0)
        rows.append(f"<tr><td class=l>leakage at r = 0 (the evaluation's ID)</td>"
                    f"<td>{_cell(target['unlearned']['mean'][at])}</td><td>{_cell(target['source']['mean'][at])}</td>"
                    "<td></td></tr>")
    return ("<table><tr><th class=l>attack</th><th>unlearned generator</th><th>source (ceiling)</th>"
            "<th>share of the ceiling</th></tr>" + "".join(rows) + "</table>"
            + (f"<p class=muted>Retained identities: {html.escape(str(retained['identities']))}.</p>"
               if retained["count"] else ""))


def _level(record: dict) -> str:
    threshold = record.get("threshold")
    if threshold is None:
        return "<p>No acceptance level was set; the verdicts compare with the source ceiling only.</p>"
    where = html.escape(threshold.get("how", ""))
    origin = "given by the user" if threshold["source"] == "user" else "calibrated by this audit"
    return (f"<p>Acceptance level {threshold['value']:.3f} ({origin}): {where}. A similarity at or above it is what "
            "a face verifier using that level would accept as the same person.</p>")


def audit_section(run: EraseOutput) -> str:
    """HTML of the Audit section, or "" when the folder holds no audit.json."""
    from guide.audit.pipeline import ATTACK_PNG, AUDIT_JSON, AUDIT_PNG
    from guide.audit.plot import ATTACK_ROWS_CAPTION
    from guide.evaluate.report import figure

    path = run.root / AUDIT_JSON
    if not path.is_file():
        return ""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        verdict_lines = record["verdicts"]
        table = _table(record)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"<h2>Audit</h2><div class=warn>{AUDIT_JSON} is unreadable: {html.escape(str(exc))}</div>"
    warnings = "".join(f"<div class=warn>{html.escape(w)}</div>" for w in record.get("warnings", []))
    verdicts = "".join(f"<li>{html.escape(line)}</li>" for line in verdict_lines.values())
    figures = figure(run.optional_file(AUDIT_PNG), "leakage curves: unlearned (solid) vs source (dashed)")
    if run.optional_file(ATTACK_PNG) is not None:
        figures += figure(run.optional_file(ATTACK_PNG), ATTACK_ROWS_CAPTION)
    return (f"<h2>Audit</h2>{warnings}<p>{EXPLAIN}</p><ul class=verdicts>{verdicts}</ul>{_level(record)}{table}"
            f"{figures}<p class=muted>Every number, setting, seed and checkpoint hash: {AUDIT_JSON}.</p>")
