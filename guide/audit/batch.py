"""Auditing a finished batch (job file ``evaluation: {audit: true}``): every erased identity's folder
DIR/<id>/ is audited once the batch is done -- for sequential and joint batches against the final
model (DIR/model/), i.e. after the last stage. The audit runs in the batch's main process on the
job's first device, with the job's source generator, networks and retained identities (4 random
ones when the job has none). An identity that already has audit.json (a resumed batch) is not
audited again. A failure is recorded in that identity's metrics.json (``audit_error``) and never
stops the batch; each audit's headline numbers are merged there under ``audit``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from guide.config import AttackConfig, AuditConfig, LeakageConfig


def audit_config(job) -> AuditConfig:
    """The audit settings of a job: defaults, the job's seed and evaluation views, and what
    ``evaluation.audit`` overrides (steps, lr, radii, directions, impostors, far, threshold)."""
    spec = dict(job.evaluation.audit or {})
    attack = AttackConfig(**{k: spec[k] for k in ("steps", "lr") if k in spec})
    leakage = LeakageConfig(**{k: (tuple(sorted(spec[k])) if k == "radii" else spec[k])
                               for k in ("radii", "directions") if k in spec})
    extra = {"impostors": spec["impostors"]} if "impostors" in spec else {}
    if "far" in spec:
        extra["false_accept_rate"] = spec["far"]
    if "threshold" in spec:
        extra["threshold"] = spec["threshold"]
    return AuditConfig(seed=job.erase.seed, views=job.evaluation.views, attack=attack, leakage=leakage, **extra)


def summary(record: dict) -> dict:
    """The headline numbers of an audit, for the identity's metrics.json and the batch report."""
    def mean_of(part: str, generator: str) -> Optional[float]:
        return ((record.get(part) or {}).get(generator) or {}).get("mean")

    leakage = record["leakage"]
    return {"reinversion_unlearned": mean_of("reinversion", "unlearned"),
            "reinversion_source": mean_of("reinversion", "source"),
            "attack_unlearned": mean_of("attack", "unlearned"), "attack_source": mean_of("attack", "source"),
            "leakage_radii": leakage["radii"], "leakage_unlearned": leakage["target"]["unlearned"]["mean"],
            "leakage_source": leakage["target"]["source"]["mean"],
            "threshold": (record.get("threshold") or {}).get("value"), "verdicts": record["verdicts"]}


def _merge_metrics(folder: Path, updates: dict) -> None:
    from guide.batch.outputs import merge_json

    merge_json(folder / "metrics.json", updates)


def audit_batch(job, out_dir: Path, book, resources=None, *, progress: bool = False,
                log: Callable[[str], None] = print) -> None:
    """Audit every identity of a finished batch that is done and not audited yet (see module doc)."""
    from guide.audit.networks import load_audit_networks
    from guide.audit.pipeline import AUDIT_JSON, run_audit
    from guide.batch.kit import make_kit
    from guide.batch.latents import failure_reason

    out_dir = Path(out_dir)
    todo = [i for i in book.order if book.state(i) == "done" and not (out_dir / i / AUDIT_JSON).is_file()]
    if not todo:
        return
    log(f"audit: {len(todo)} identities")
    try:
        kit = make_kit(job, job.devices[0], resources, evaluator=None)
        networks = load_audit_networks(kit.resources.checkpoint_dir, kit.device,
                                       random_weights=job.networks == "random", attack_networks=kit.resources.networks)
        config = audit_config(job)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the batch's erasures stand; say why they were not audited
        reason = failure_reason(exc)
        log(f"audit: not run: {reason}")
        for ident in todo:
            _merge_metrics(out_dir / ident, {"audit_error": reason})
        return
    retained = kit.retain.latents if kit.retain.ids else None
    note = f"{len(kit.retain.ids)} retained identities of the job" if kit.retain.ids else None
    for ident in todo:
        folder = out_dir / ident
        try:
            record = run_audit(folder, networks, config, checkpoint_dir=kit.resources.checkpoint_dir,
                               device=kit.device, overwrite=True, photo_models=kit.photo_models, G_src=kit.G_src,
                               retained=retained, retained_note=note, progress=progress, log=log)
            _merge_metrics(folder, {"audit": json.loads(json.dumps(summary(record), default=str))})
            log(f"audit: {ident}: " + "; ".join(record["verdicts"].values()))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - one identity's audit must not stop the others
            _merge_metrics(folder, {"audit_error": failure_reason(exc)})
            log(f"audit: {ident}: FAILED: {failure_reason(exc)}")
