"""DIR/status.json: the state of every identity of a batch, rewritten atomically on each change.

States: ``pending`` (not started), ``queued`` (handed to a worker process or a Ray task that has
not begun it yet; no device), ``running`` (started, with its device; after an interruption it
resumes from its own checkpoint), ``done``, ``failed`` (with ``reason``). A resumed batch skips
``done`` identities and retries the others (``queued`` ones like ``pending`` ones).
"""
from __future__ import annotations

import datetime as _dt
import json
import threading
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from guide.io.atomic import write_text_atomic

STATUS_FILE = "status.json"
STATES = ("pending", "queued", "running", "done", "failed")
# what a new attempt clears: the device, times and reason of an earlier one
_ATTEMPT_KEYS = ("device", "started", "finished", "seconds", "reason")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class StatusBook:
    """Per-identity states of one batch folder; every update is persisted before it returns."""

    def __init__(self, out_dir: Path, mode: str, entries: Dict[str, dict], order: List[str]):
        self.path = Path(out_dir) / STATUS_FILE
        self.mode = mode
        self.entries = entries
        self.order = order
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, out_dir: Path, mode: str, identities: Iterable) -> "StatusBook":
        ids = list(identities)
        entries = {i.id: {"state": "pending", "identity": {"kind": i.kind, "value": i.value, "name": i.name}}
                   for i in ids}
        book = cls(out_dir, mode, entries, [i.id for i in ids])
        book.save()
        return book

    @classmethod
    def load(cls, out_dir: Path) -> Optional["StatusBook"]:
        path = Path(out_dir) / STATUS_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(out_dir, data.get("mode", ""), data["identities"], data.get("order", list(data["identities"])))

    def add(self, identities: Iterable) -> None:
        """Identities of the job that the book does not know yet (a resumed, extended job)."""
        with self._lock:
            for i in identities:
                if i.id not in self.entries:
                    self.entries[i.id] = {"state": "pending",
                                          "identity": {"kind": i.kind, "value": i.value, "name": i.name}}
                    self.order.append(i.id)
        self.save()

    # ------------------------------------------------------------------- updates
    def save(self) -> None:
        counts = self.counts()
        data = {"mode": self.mode, "updated": _now(), "counts": counts, "order": self.order,
                "identities": self.entries}
        write_text_atomic(self.path, json.dumps(data, indent=2, default=str) + "\n")

    def mark(self, ident: str, state: str, **info) -> None:
        """Set an identity's state (and e.g. reason=, device=, seconds=) and persist."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        with self._lock:
            entry = self.entries[ident]
            entry["state"] = state
            if state == "queued":
                for key in _ATTEMPT_KEYS:
                    entry.pop(key, None)
            if state == "running":
                entry["started"] = _now()
                entry.pop("reason", None)
            if state in ("done", "failed"):
                entry["finished"] = _now()
            entry.update({k: v for k, v in info.items() if v is not None})
            self.save()

    # ------------------------------------------------------------------- queries
    def state(self, ident: str) -> str:
        return self.entries[ident]["state"]

    def ids(self, *states: str) -> List[str]:
        return [i for i in self.order if not states or self.entries[i]["state"] in states]

    def counts(self) -> Dict[str, int]:
        counts = {s: 0 for s in STATES}
        for entry in self.entries.values():
            counts[entry["state"]] += 1
        return counts
