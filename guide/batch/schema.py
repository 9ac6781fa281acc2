"""Batch job files: the schema, its validation and the :class:`BatchJob` they become.

A job file is YAML (``.yaml``/``.yml``) or JSON (``.json``) holding one mapping. Relative paths
are relative to the job file's folder. Every key is optional except ``identities`` (or
``random_identities``)::

    mode: joint                # independent | joint | sequential            [independent]
    method: guide              # guide | baseline (preset of target + losses) [guide]
    seed: 0                    # RNG seed of every erasure                   [0]
    iters: 1000                # Adam steps (per identity / per stage / of the joint run)
    lr: 1.0e-4                 # learning rate
    target_distance: 30        # UFO extrapolation distance d
    losses:                    # any field of guide.config.LossConfig, e.g.
      local_id: 0.1            #   local_mse local_lpips local_id adjacency adj_mse adj_lpips adj_id
      adj_batch: 2             #   adj_batch adj_weight adj_alpha_min adj_alpha_max
      global_batch: 2          #   global_preservation global_weight global_batch local
    identity_chunk: 2          # identities rendered per forward pass (joint/sequential memory)
    sample_identities: null    # joint only: identities per step (random subset); null = all
    truncation_psi: 1.0        # of the random latents of the adjacency/global terms (and random identities)
    truncation_cutoff: 14      # layers truncated (null: all)
    camera:                    # any field of guide.config.CameraConfig:
      fov_degrees: 18.837      #   fov_degrees pitch_offset yaw_range radius pivot
    eg3d_pivot: false          # cameras look at EG3D's FFHQ pivot [0,0,0.2]
    aligned: false             # photos are already aligned crops: fed to GOAE as is (the reference's inputs)
    inversion: deterministic   # deterministic | stochastic (GOAE's live dropout as the reference runs it, seeded)
    w_avg: file                # file (w_avg_ffhqrebalanced512-128.pt, required for photos/latents) | mapping
    generator: path/to/G.pkl   # EG3D .pkl or our .json; `builtin:toy` = the toy world's trained head
                               # generator (guide.toy); `builtin:tiny` = tiny random model (unit tests)
                               # [<checkpoints>/ffhqrebalanced512-128.pkl]
    checkpoints: ./checkpoints # checkpoint folder [$GUIDE_CHECKPOINTS, else ./checkpoints]
    networks: checkpoints      # checkpoints | toy (the toy world's networks, with builtin:toy) |
                               # random (LPIPS/ArcFace with RANDOM weights: tests)
    device: auto               # auto (CUDA when available) | cpu | cuda | cuda:N; or devices: [cuda:0, cuda:1]
                               # (independent mode: one worker each)
    executor: auto             # auto | serial | processes | ray
    ray: {address: null, num_gpus: 1, num_cpus: 1}   # Ray cluster and resources per task
    checkpoint_every: 100      # resumable state every N steps (0: only at the end)
    export_pkl: false          # also write generator.pkl in EG3D's format (needs a .pkl source)
    identities:                # who to erase; exactly one of photo / latent / random each
      - {id: alice, name: "Alice A.", photo: photos/alice.jpg}
      - {id: bob, latent: latents/bob.pt}
      - {random: 7}            # id defaults to random-7 (photo/latent: the file's stem)
    random_identities: {count: 200, first_seed: 1000}  # adds random-1000 ... random-1199
    retain:                    # identities that must survive (ID_others, retain pixel metrics)
      - {random: 100}
    evaluation:
      views: 11                # renders per identity (before / after / target)
      id: auto                 # auto | true | false: ID / ID_others via guide.evaluate
      fid: false               # FID_pre / ΔFID_real via guide.evaluate
      fid_samples: 1000
      fid_seed: 0
      real: null               # real Inception statistics (default <checkpoints>/ffhq_real_feat.npy)
      audit: false             # true: `guide audit` every identity once the batch is done (sequential:
                               # after the last stage); or settings {steps, lr, radii, directions,
                               # impostors, far, threshold} (guide.audit.batch)

Identity ids name the output folders (DIR/<id>/): letters, digits, ``.``, ``_``, ``-``; unique;
not one of the folder's own names (model, source, retain, logs, status.json, report.json,
report.md, job.json). Problems raise :class:`JobFileError` with one line naming the field.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from guide import limits
from guide.config import INVERSION_MODES, W_AVG_SOURCES, CameraConfig, EraseConfig, LossConfig, method_preset
from guide.errors import GuideError

MODES = ("independent", "joint", "sequential")
EXECUTORS = ("auto", "serial", "processes", "ray")
NETWORKS = ("checkpoints", "random", "toy")
BUILTIN_GENERATORS = ("builtin:tiny", "builtin:toy")
RESERVED_IDS = frozenset({"model", "source", "retain", "logs", "status.json", "report.json", "report.md",
                          "job.json"})
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
IDENTITY_KINDS = ("photo", "latent", "random")

# the keys that make an EraseConfig (job files, and `guide erase --set`)
ERASE_KEYS = ("method", "seed", "iters", "lr", "target_distance", "losses", "identity_chunk", "truncation_psi",
              "truncation_cutoff", "camera", "eg3d_pivot", "aligned", "inversion", "w_avg")
TOP_KEYS = ERASE_KEYS + ("version", "mode", "sample_identities", "generator", "checkpoints", "networks", "device",
                         "devices", "executor", "ray", "checkpoint_every", "export_pkl", "identities",
                         "random_identities", "retain", "evaluation")


class JobFileError(GuideError):
    """The job file cannot be used (the message names the file and the field)."""


def _auto_device() -> str:
    """`auto`: cuda when available, else cpu (guide.devices.resolve_device)."""
    from guide.devices import resolve_device

    return str(resolve_device("auto"))


@dataclass
class JobIdentity:
    """One identity of the job: its folder id, optional display name, and what to erase."""

    id: str
    kind: str  # 'photo' | 'latent' | 'random'
    value: Any  # path text (photo/latent) or seed (random)
    name: Optional[str] = None

    def to_identity(self):
        from guide.erase import Identity

        return Identity(self.kind, self.value)

    def describe(self) -> str:
        return f"{self.id} ({self.to_identity().describe()})"


@dataclass
class RayOptions:
    """Where Ray runs and what each task reserves (Ray schedules tasks onto free resources)."""

    address: Optional[str] = None  # None: connect to a running cluster if any, else start one here
    num_gpus: float = 1.0  # per task; 0 on CPU-only clusters
    num_cpus: float = 1.0


@dataclass
class EvaluationOptions:
    views: int = 11
    id: str = "auto"  # 'auto' | 'true' | 'false'
    fid: bool = False
    fid_samples: int = 1000
    fid_seed: int = 0
    real: Optional[str] = None
    audit: Optional[dict] = None  # None: no audit; {} or settings: guide.audit.batch.audit_config


@dataclass
class BatchJob:
    """A validated job file."""

    identities: List[JobIdentity]
    mode: str = "independent"
    erase: EraseConfig = field(default_factory=EraseConfig)
    generator: Optional[str] = None
    checkpoints: Optional[str] = None
    networks: str = "checkpoints"
    devices: List[str] = field(default_factory=lambda: [_auto_device()])
    executor: str = "auto"
    ray: RayOptions = field(default_factory=RayOptions)
    sample_identities: Optional[int] = None
    checkpoint_every: int = 100
    export_pkl: bool = False
    retain: List[JobIdentity] = field(default_factory=list)
    evaluation: EvaluationOptions = field(default_factory=EvaluationOptions)
    source: Optional[str] = None  # the job file

    def to_dict(self) -> dict:
        return asdict(self)

    def settings(self) -> dict:
        """What must not change when an interrupted batch resumes."""
        return {"mode": self.mode, "erase": self.erase.to_dict(), "generator": self.generator,
                "networks": self.networks, "sample_identities": self.sample_identities,
                "views": self.evaluation.views}

    def resolved_executor(self) -> str:
        """`auto`: a process per device for independent jobs on several devices, else in-process."""
        if self.executor != "auto":
            return self.executor
        return "processes" if self.mode == "independent" and len(self.devices) > 1 else "serial"


# ------------------------------------------------------------------------------ loading


class _JobDocumentError(JobFileError):
    """A job file that is not a readable, bounded document (the message names the file)."""

    def __init__(self, message: str):
        super().__init__(f"job file {message}")


def read_job_file(path: Path) -> dict:
    """The raw mapping of a YAML/JSON job file (one-line errors; size, nesting and YAML alias
    expansion bounded by :mod:`guide.limits`)."""
    from guide.io.documents import load_json, load_yaml

    path = Path(path)
    if not path.is_file():
        raise JobFileError(f"job file {path} not found")
    load = load_json if path.suffix.lower() == ".json" else load_yaml
    data = load(path, error=_JobDocumentError)
    if not isinstance(data, dict):
        raise JobFileError(f"job file {path}: expected a mapping of options at the top, got "
                           f"{type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """`KEY=VALUE` overrides (`--set`): VALUE is parsed as YAML; dotted keys reach into mappings."""
    from guide.io.documents import parse_yaml

    data = json.loads(json.dumps(data, default=str))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise JobFileError(f"--set {item!r}: expected KEY=VALUE (e.g. iters=1 or evaluation.views=2)")
        try:
            value = parse_yaml(text, f"--set {key.strip()}", error=JobFileError)
        except JobFileError as exc:
            if "not valid YAML" not in str(exc):
                raise
            value = text
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise JobFileError(f"--set {item!r}: {part} is not a mapping")
        node[parts[-1]] = value
    return data


def load_job(path, overrides: Sequence[str] = ()) -> BatchJob:
    """Read, override and validate a job file."""
    path = Path(path)
    data = apply_overrides(read_job_file(path), overrides)
    return parse_job(data, base=path.parent, name=str(path))


# ----------------------------------------------------------------------------- validation


class _Checker:
    """Typed accessors that raise JobFileError naming the file and the field."""

    def __init__(self, name: str):
        self.name = name

    def fail(self, where: str, message: str) -> JobFileError:
        return JobFileError(f"job file {self.name}: {where}: {message}")

    def unknown(self, mapping: Mapping, allowed: Sequence[str], where: str = "") -> None:
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(allowed)})"
                raise self.fail(f"{where}{key}", f"unknown option{hint}")

    def integer(self, value, where: str, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(where, f"must be at most {maximum}, got {value}")
        return value

    def seed(self, value, where: str) -> int:
        return self.integer(value, where, minimum=0, maximum=limits.MAX_SEED)

    def number(self, value, where: str, positive: bool = False, minimum: Optional[float] = None) -> float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 1e-4 (no dot) as text
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {value!r}")
        if positive and not value > 0:
            raise self.fail(where, f"must be positive, got {value}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be at least {minimum}, got {value}")
        return float(value)

    def boolean(self, value, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}")
        return value

    def text(self, value, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected text, got {value!r}")
        return value.strip()

    def choice(self, value, where: str, choices: Sequence[str]) -> str:
        if isinstance(value, bool):
            value = str(value).lower()
        if value not in choices:
            raise self.fail(where, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def mapping(self, value, where: str) -> Mapping:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping (key: value), got {type(value).__name__}")
        return value


def _resolve(base: Path, text: str) -> str:
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else (base / path))


def _identity(check: _Checker, entry, where: str, base: Path) -> JobIdentity:
    if not isinstance(entry, dict):
        raise check.fail(where, f"expected a mapping such as {{id: alice, photo: alice.jpg}}, got {entry!r}")
    check.unknown(entry, ("id", "name") + IDENTITY_KINDS, f"{where}.")
    given = [k for k in IDENTITY_KINDS if k in entry]
    if len(given) != 1:
        got = f" (got {', '.join(given)})" if given else ""
        raise check.fail(where, f"give exactly one of photo, latent, random{got}")
    kind = given[0]
    if kind == "random":
        value = check.seed(entry["random"], f"{where}.random")
        default_id = f"random-{value}"
    else:
        value = _resolve(base, check.text(entry[kind], f"{where}.{kind}"))
        default_id = Path(value).stem
    ident = entry.get("id", default_id)
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    ident = check.text(ident, f"{where}.id")
    if not ID_PATTERN.match(ident) or ident in RESERVED_IDS:
        raise check.fail(f"{where}.id", f"{ident!r} cannot name a folder: use letters, digits, '.', '_', '-' "
                                        f"(starting with a letter or digit), not one of {', '.join(sorted(RESERVED_IDS))}")
    name = entry.get("name")
    if name is not None:
        name = check.text(name, f"{where}.name")
    return JobIdentity(ident, kind, value, name)


def _identities(check: _Checker, data: dict, base: Path) -> List[JobIdentity]:
    entries = data.get("identities", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise check.fail("identities", f"expected a list of identities, got {type(entries).__name__}")
    if len(entries) > limits.MAX_IDENTITIES:
        raise check.fail("identities", f"{len(entries)} identities, more than {limits.MAX_IDENTITIES}")
    out = [_identity(check, e, f"identities[{i}]", base) for i, e in enumerate(entries)]
    where = [f"identities[{i}]" for i in range(len(out))]
    if data.get("random_identities") is not None:
        spec = check.mapping(data["random_identities"], "random_identities")
        check.unknown(spec, ("count", "first_seed"), "random_identities.")
        count = check.integer(spec.get("count"), "random_identities.count", minimum=1,
                              maximum=limits.MAX_IDENTITIES - len(out))
        first = check.integer(spec.get("first_seed", 0), "random_identities.first_seed", minimum=0,
                              maximum=limits.MAX_SEED - count)
        out += [JobIdentity(f"random-{s}", "random", s) for s in range(first, first + count)]
        where += ["random_identities"] * count
    if not out:
        raise check.fail("identities", "no identities to erase (list them under identities:, or use "
                                       "random_identities: {count: N})")
    _unique_ids(check, out, where)
    return out


def _unique_ids(check: _Checker, entries: List[JobIdentity], where: List[str]) -> None:
    """Ids are unique, ignoring case (they name folders, and file systems may ignore case)."""
    seen: Dict[str, str] = {}
    for ident, here in zip(entries, where):
        key = ident.id.lower()
        if key in seen:
            field_name = f"{here}.id" if here.endswith("]") else here
            raise check.fail(field_name, f"{ident.id!r} is used twice (also {seen[key]}); "
                                         "give each identity its own id")
        seen[key] = here


def _erase_config(check: _Checker, data: dict) -> EraseConfig:
    method = check.choice(data.get("method", "guide"), "method", ("guide", "baseline"))
    config = method_preset(method)
    config.seed = check.seed(data.get("seed", 0), "seed")
    if "iters" in data:
        config.ltu.iters = check.integer(data["iters"], "iters", minimum=1, maximum=limits.MAX_ITERS)
    if "lr" in data:
        config.ltu.lr = check.number(data["lr"], "lr", positive=True)
    if "target_distance" in data:
        config.target.distance = check.number(data["target_distance"], "target_distance", positive=True)
    if "identity_chunk" in data:
        config.ltu.identity_chunk = check.integer(data["identity_chunk"], "identity_chunk", minimum=1,
                                                  maximum=limits.MAX_LATENT_BATCH)
    if "truncation_psi" in data:
        config.ltu.truncation_psi = check.number(data["truncation_psi"], "truncation_psi")
    if "truncation_cutoff" in data:
        cutoff = data["truncation_cutoff"]
        config.ltu.truncation_cutoff = None if cutoff is None else check.integer(cutoff, "truncation_cutoff", minimum=0)
    _camera(check, data, config.ltu.camera)
    config.inversion.aligned = check.boolean(data.get("aligned", False), "aligned")
    config.inversion.mode = check.choice(data.get("inversion", "deterministic"), "inversion", INVERSION_MODES)
    config.inversion.w_avg = check.choice(data.get("w_avg", "file"), "w_avg", W_AVG_SOURCES)
    losses = check.mapping(data.get("losses") or {}, "losses")
    names = [f.name for f in fields(LossConfig)]
    check.unknown(losses, names, "losses.")
    for f in fields(LossConfig):
        if f.name not in losses:
            continue
        where, value = f"losses.{f.name}", losses[f.name]
        default = getattr(LossConfig, f.name)
        if isinstance(default, bool):
            value = check.boolean(value, where)
        elif isinstance(default, int):
            value = check.integer(value, where, minimum=1, maximum=limits.MAX_LATENT_BATCH)
        else:
            value = check.number(value, where, minimum=0.0)
        setattr(config.ltu.losses, f.name, value)
    return config


def _camera(check: _Checker, data: dict, camera: CameraConfig) -> None:
    """`camera:` (any CameraConfig field) and the `eg3d_pivot` shorthand, into `camera`."""
    raw = check.mapping(data.get("camera") or {}, "camera")
    names = [f.name for f in fields(CameraConfig)]
    check.unknown(raw, names, "camera.")
    pivot_flag = check.boolean(data.get("eg3d_pivot", False), "eg3d_pivot")
    if pivot_flag and "pivot" in raw:
        raise check.fail("eg3d_pivot", "give eg3d_pivot or camera.pivot, not both")
    if pivot_flag:
        camera.pivot = (0.0, 0.0, 0.2)
    for name in names:
        if name not in raw:
            continue
        where = f"camera.{name}"
        if name == "pivot":
            value = raw[name]
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                raise check.fail(where, f"expected three numbers [x, y, z], got {value!r}")
            camera.pivot = tuple(check.number(v, f"{where}[{i}]") for i, v in enumerate(value))
        elif name in ("fov_degrees", "radius"):
            setattr(camera, name, check.number(raw[name], where, positive=True))
        elif name == "yaw_range":
            setattr(camera, name, check.number(raw[name], where, minimum=0.0))
        else:
            setattr(camera, name, check.number(raw[name], where))


class _OptionsChecker(_Checker):
    """Errors of settings from the command line (`guide erase` options and --set): they name the
    key, not a job file."""

    def fail(self, where: str, message: str) -> JobFileError:
        return JobFileError(f"setting {where}: {message}")


def erase_config_from(data: Mapping, name: Optional[str] = None) -> EraseConfig:
    """An EraseConfig from job-file keys (:data:`ERASE_KEYS`; e.g. what `guide erase` builds from
    its options and `--set KEY=VALUE`); one-line JobFileError naming the key. `name`: the job file
    the keys come from (None: command-line overrides)."""
    check = _Checker(name) if name is not None else _OptionsChecker("command line")
    check.unknown(data, ERASE_KEYS)
    return _erase_config(check, dict(data))


def _devices(check: _Checker, data: dict) -> List[str]:
    if "device" in data and "devices" in data:
        raise check.fail("devices", "give device or devices, not both")
    raw = data.get("devices", data.get("device", "auto"))
    key = "devices" if "devices" in data else "device"
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise check.fail(key, "expected at least one device")
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(raw, list) else key
        text = check.text(item, where)
        if not DEVICE_PATTERN.match(text):
            raise check.fail(where, f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}")
        out.append(_auto_device() if text == "auto" else text)
    return out


def _evaluation(check: _Checker, data: dict, base: Path) -> EvaluationOptions:
    raw = check.mapping(data.get("evaluation") or {}, "evaluation")
    check.unknown(raw, [f.name for f in fields(EvaluationOptions)], "evaluation.")
    opts = EvaluationOptions()
    if "views" in raw:
        opts.views = check.integer(raw["views"], "evaluation.views", minimum=1, maximum=limits.MAX_VIEWS)
    if "id" in raw:
        opts.id = check.choice(raw["id"], "evaluation.id", ("auto", "true", "false"))
    if "fid" in raw:
        opts.fid = check.boolean(raw["fid"], "evaluation.fid")
    if "fid_samples" in raw:
        opts.fid_samples = check.integer(raw["fid_samples"], "evaluation.fid_samples", minimum=2,
                                         maximum=limits.MAX_FID_SAMPLES)
    if "fid_seed" in raw:
        opts.fid_seed = check.seed(raw["fid_seed"], "evaluation.fid_seed")
    if raw.get("real") is not None:
        opts.real = _resolve(base, check.text(raw["real"], "evaluation.real"))
    if "audit" in raw:
        opts.audit = _audit(check, raw["audit"])
    return opts


AUDIT_INTEGERS = {"steps": 1, "directions": 1, "impostors": 0}  # key: minimum
AUDIT_NUMBERS = {"lr": True, "far": True, "threshold": False}  # key: positive


def _audit(check: _Checker, value) -> Optional[dict]:
    """evaluation.audit: true/false, or a mapping of audit settings."""
    if isinstance(value, bool):
        return {} if value else None
    spec = check.mapping(value, "evaluation.audit")
    check.unknown(spec, (*AUDIT_INTEGERS, *AUDIT_NUMBERS, "radii"), "evaluation.audit.")
    out: dict = {k: check.integer(spec[k], f"evaluation.audit.{k}", minimum=m) for k, m in AUDIT_INTEGERS.items()
                 if k in spec}
    out.update({k: check.number(spec[k], f"evaluation.audit.{k}", positive=p) for k, p in AUDIT_NUMBERS.items()
                if k in spec})
    if "radii" in spec:
        radii = spec["radii"]
        if not isinstance(radii, list) or not radii:
            raise check.fail("evaluation.audit.radii", f"expected a list of radii such as [0, 5, 15], got {radii!r}")
        out["radii"] = [check.number(r, f"evaluation.audit.radii[{i}]", minimum=0.0) for i, r in enumerate(radii)]
    if out.get("far", 0.5) >= 1:
        raise check.fail("evaluation.audit.far", f"a false accept rate lies below 1, got {out['far']}")
    return out


def _ray(check: _Checker, data: dict) -> RayOptions:
    raw = check.mapping(data.get("ray") or {}, "ray")
    check.unknown(raw, [f.name for f in fields(RayOptions)], "ray.")
    opts = RayOptions()
    if raw.get("address") is not None:
        opts.address = check.text(raw["address"], "ray.address")
    if "num_gpus" in raw:
        opts.num_gpus = check.number(raw["num_gpus"], "ray.num_gpus", minimum=0.0)
    if "num_cpus" in raw:
        opts.num_cpus = check.number(raw["num_cpus"], "ray.num_cpus", minimum=0.0)
    return opts


def parse_job(data: dict, base: Path = Path("."), name: str = "<job>") -> BatchJob:
    """Validate a raw job mapping into a BatchJob (JobFileError names the offending field)."""
    check = _Checker(name)
    check.unknown(data, TOP_KEYS)
    if "version" in data and data["version"] != 1:
        raise check.fail("version", f"this toolkit reads job files of version 1, got {data['version']!r}")
    mode = check.choice(data.get("mode", "independent"), "mode", MODES)
    job = BatchJob(identities=_identities(check, data, base), mode=mode, erase=_erase_config(check, data),
                   source=name)
    generator = data.get("generator")
    if generator is not None:
        generator = check.text(generator, "generator")
        if generator.startswith("builtin:"):
            if generator not in BUILTIN_GENERATORS:
                raise check.fail("generator", f"unknown built-in generator {generator!r} "
                                              f"(known: {', '.join(BUILTIN_GENERATORS)})")
        else:
            generator = _resolve(base, generator)
    job.generator = generator
    if data.get("checkpoints") is not None:
        job.checkpoints = _resolve(base, check.text(data["checkpoints"], "checkpoints"))
    job.networks = check.choice(data.get("networks", "checkpoints"), "networks", NETWORKS)
    job.devices = _devices(check, data)
    job.executor = check.choice(data.get("executor", "auto"), "executor", EXECUTORS)
    job.ray = _ray(check, data)
    if data.get("sample_identities") is not None:
        if mode != "joint":
            raise check.fail("sample_identities", f"only applies to mode joint (this job is {mode})")
        job.sample_identities = check.integer(data["sample_identities"], "sample_identities", minimum=1,
                                             maximum=limits.MAX_IDENTITIES)
    job.checkpoint_every = check.integer(data.get("checkpoint_every", 100), "checkpoint_every", minimum=0)
    job.export_pkl = check.boolean(data.get("export_pkl", False), "export_pkl")
    retain = data.get("retain") or []
    if not isinstance(retain, list):
        raise check.fail("retain", f"expected a list of identities, got {type(retain).__name__}")
    if len(retain) > limits.MAX_IDENTITIES:
        raise check.fail("retain", f"{len(retain)} identities, more than {limits.MAX_IDENTITIES}")
    job.retain = [_identity(check, e, f"retain[{i}]", base) for i, e in enumerate(retain)]
    _unique_ids(check, job.retain, [f"retain[{i}]" for i in range(len(job.retain))])  # they key the report
    job.evaluation = _evaluation(check, data, base)
    if job.mode != "independent" and len(job.devices) > 1:
        raise check.fail("devices", f"mode {job.mode} trains one model on one device; give one device "
                                    "(several devices are for mode independent)")
    return job
