"""DIR/report.json and DIR/report.md: every identity's state and metrics, and the model's.

Built from what is on disk (status.json, DIR/<id>/metrics.json, DIR/model/metrics.json and,
for sequential batches, DIR/model/evaluations.jsonl), so it is complete after a resume too.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import List, Optional

from guide.batch.outputs import MODEL_DIR, read_json
from guide.batch.schema import BatchJob
from guide.batch.status import StatusBook
from guide.io.atomic import write_text_atomic

IDENTITY_COLUMNS = ("pixel_l1_before_target", "pixel_l1_after_target", "pixel_l1_before_after", "ID", "ID_others",
                    "retain_pixel_l1", "FID_pre", "delta_FID_real")
ALWAYS = 3  # the pixel columns; the others only when some identity has them
MODEL_KEYS = ("FID_pre", "delta_FID_real", "FID_real_pretrained", "FID_real_unlearned", "retain_pixel_l1",
              "steps", "stages", "evaluation", "evaluation_error")


def build_report(job: BatchJob, out_dir: Path, book: StatusBook) -> dict:
    out_dir = Path(out_dir)
    identities = {}
    for ident in book.order:
        entry = book.entries[ident]
        metrics = read_json(out_dir / ident / "metrics.json", {}) if entry["state"] == "done" else {}
        identities[ident] = {"state": entry["state"], "reason": entry.get("reason"),
                             "name": entry.get("identity", {}).get("name"), "folder": ident,
                             "metrics": metrics or {}}
    report = {"mode": job.mode, "job": job.source,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "summary": book.counts() | {"total": len(book.order)}, "identities": identities}
    model = read_json(out_dir / MODEL_DIR / "metrics.json")
    if model:
        report["model"] = model
    if job.mode == "sequential":
        from guide.batch.sequential import read_evaluations

        report["after_each_stage"] = read_evaluations(out_dir / MODEL_DIR)
    return report


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown(report: dict) -> str:
    s = report["summary"]
    columns = [c for k, c in enumerate(IDENTITY_COLUMNS)
               if k < ALWAYS or any(c in e["metrics"] for e in report["identities"].values())]
    lines = [f"# Batch erase report ({report['mode']})", "",
             f"Job: `{report['job']}`  ", f"Created: {report['created']}", "",
             f"**{s['done']} of {s['total']} identities erased**, {s['failed']} failed, "
             f"{s['pending'] + s['running']} not finished.", "",
             "| id | state | " + " | ".join(columns) + " | reason |",
             "|" + "---|" * (len(columns) + 3)]
    for ident, entry in report["identities"].items():
        m = entry["metrics"]
        cells = [_fmt(m.get(c)) for c in columns]
        lines.append(f"| {ident} | {entry['state']} | " + " | ".join(cells) + f" | {entry.get('reason') or ''} |")
    model = report.get("model")
    if model:
        lines += ["", "## Model", ""]
        lines += [f"- {k}: {_fmt(model[k])}" for k in MODEL_KEYS if k in model]
    stages: Optional[List[dict]] = report.get("after_each_stage")
    if stages:
        lines += ["", "## After each stage", "", "| stage | erased | mean pixel L1 after→target (all erased so far) "
                  "| mean pixel L1 before→after | retain pixel L1 |", "|---|---|---|---|---|"]
        for row in stages:
            ids = row["identities"].values()
            mean = lambda k: (sum(v[k] for v in ids if k in v) / max(1, sum(k in v for v in ids)))  # noqa: E731
            lines.append(f"| {row['stage']} | {row['erased']} | {_fmt(mean('pixel_l1_after_target'))} | "
                         f"{_fmt(mean('pixel_l1_before_after'))} | {_fmt(row['model'].get('retain_pixel_l1'))} |")
    lines += ["", "Pixel metrics: mean absolute difference of renders in [-1, 1] (before = source generator, "
              "after = unlearned, target = source's render of the UFO target; retain = source vs unlearned "
              "renders of the retained identities). ID / ID_others / FID come from guide.evaluate when it "
              "was available (see each identity's `evaluation`).", ""]
    return "\n".join(lines)


def write_report(job: BatchJob, out_dir: Path, book: StatusBook) -> dict:
    report = build_report(job, out_dir, book)
    write_text_atomic(Path(out_dir) / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    write_text_atomic(Path(out_dir) / "report.md", markdown(report))
    return report
