"""Batch erasure: many identities from one job file (``guide batch JOBS.yaml --out DIR``).

* job files and their schema -- :mod:`guide.batch.schema` (documented there and in docs/batch.md)
* modes -- ``independent`` (:mod:`~guide.batch.independent`: one model per identity via run_erase),
  ``joint`` (:mod:`~guide.batch.joint`: all identities in one model, one run; optional per-step
  identity sampling in :mod:`~guide.batch.sampling`), ``sequential``
  (:mod:`~guide.batch.sequential`: one after another into the same model, evaluated after each)
* where the work runs -- :mod:`~guide.batch.executors` (in-process, a process per device, Ray)
* state, resume and results -- :mod:`~guide.batch.status`, :mod:`~guide.batch.runner`,
  :mod:`~guide.batch.evaluation`, :mod:`~guide.batch.report`
* ``guide batch-bench`` -- :mod:`~guide.batch.bench`

Names are imported lazily so ``import guide.batch`` stays cheap.
"""
from guide.lazy import lazy_getattr

_EXPORTS = {
    "BatchJob": "schema",
    "JobIdentity": "schema",
    "JobFileError": "schema",
    "load_job": "schema",
    "parse_job": "schema",
    "run_batch": "runner",
    "BatchSummary": "runner",
    "Resources": "resources",
    "StatusBook": "status",
    "SampledLTUTrainer": "sampling",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
