"""Evaluating an erasure with the paper's four numbers, and a report a person can read.

* ID, ID_others -- :mod:`guide.evaluate.identity` (CurricularFace IR-101 + MTCNN; protocol there)
* FID_pre, ΔFID_real -- :mod:`guide.evaluate.fid` (pytorch-fid Inception; protocol and the
  reference script's bugs there), samples in :mod:`~guide.evaluate.sampling`, Fréchet distance and
  real statistics in :mod:`~guide.evaluate.frechet`, the feature cache in :mod:`~guide.evaluate.cache`
* ``report.html`` -- :mod:`guide.evaluate.report`; the paper's values in :mod:`~guide.evaluate.reference`
* an erase output folder -- :mod:`guide.evaluate.erase_output`; the CLI's entry points --
  :mod:`guide.evaluate.pipeline`

Names are imported lazily so ``import guide.evaluate`` stays cheap.
"""
from guide.lazy import lazy_getattr

_EXPORTS = {
    "EraseOutput": "erase_output",
    "NotAnEraseOutputError": "erase_output",
    "Statistics": "frechet",
    "StatisticsError": "frechet",
    "statistics_of": "frechet",
    "frechet_distance": "frechet",
    "fid_from_features": "frechet",
    "delta_fid": "frechet",
    "load_real_statistics": "frechet",
    "InceptionFeatures": "inception",
    "inception_features": "inception",
    "SampleSettings": "sampling",
    "render_samples": "sampling",
    "FeatureCache": "cache",
    "generator_fingerprint": "cache",
    "resolve_cache_dir": "cache",
    "FIDResult": "fid",
    "evaluate_fid": "fid",
    "fid_scores": "fid",
    "generator_features": "fid",
    "IDResult": "identity",
    "IdentityScorer": "identity",
    "Others": "identity",
    "evaluate_identity": "identity",
    "identity_scorer": "identity",
    "EvalNetworks": "pipeline",
    "Generators": "pipeline",
    "eval_all": "pipeline",
    "eval_fid": "pipeline",
    "eval_id": "pipeline",
    "render_report": "report",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
