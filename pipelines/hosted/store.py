"""Remembered hosted requests, jobs and result files, so an identical request is never paid for twice: not after
it finished (its file is reused), not after a crash, a deadline or a Cancel (its job is resumed), not after a crash
between sending it and reading the answer (it is refused, with how to resubmit on purpose).

One small JSON index in `root` maps a request fingerprint (provider, endpoint, payload, seed, input hashes) to the
record of its last send: when it was sent and with which seed, the job once the provider answered, and, once
fetched, the result file (path, size and mtime: a file that was later overwritten or deleted is not reused). The
record of a send is written (and fsynced) before the request leaves. The index is replaced atomically, so a crash
mid-write leaves the previous index intact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path

from .types import JobRef, JobResult

INDEX = "index.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(provider: str, endpoint: str, payload: dict, upload_files: dict[str, Path] | None = None,
                seed: int | None = None) -> str:
    """A stable id of a request: provider, endpoint, payload (JSON, sorted keys), the resolved seed (providers
    without a seed field still get distinct requests per seed) and the sha256 of each file still to upload (so the
    same image under another name, or another image under the same name, is told right)."""
    uploads = {name: _sha256(Path(path)) for name, path in sorted((upload_files or {}).items())}
    text = json.dumps({"provider": provider, "endpoint": endpoint, "payload": payload, "seed": seed,
                       "uploads": uploads}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultStore:
    """The index of jobs and results under `root` (thread-safe within a process)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()

    fingerprint = staticmethod(fingerprint)

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def _load(self) -> dict:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # A damaged index is kept aside for inspection (it may hold job ids) and a fresh one started.
            self.index_path.replace(self.root / f"{INDEX}.damaged-{int(time.time())}")
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def _save(self, entries: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{INDEX}.{secrets.token_hex(6)}.tmp"
        try:
            with open(tmp, "x", encoding="utf-8") as fh:
                json.dump({"version": 1, "entries": entries}, fh, indent=1, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.index_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _update(self, fp: str, **fields) -> None:
        with self._lock:
            entries = self._load()
            entries[fp] = {**entries.get(fp, {}), **fields, "updated": time.time()}
            self._save(entries)

    def forget(self, fp: str) -> None:
        """Drop the record of a request whose job is over without a result (failed, cancelled, expired) or that
        the provider refused: the next identical request is a new one."""
        with self._lock:
            entries = self._load()
            if entries.pop(fp, None) is not None:
                self._save(entries)

    def _entry(self, fp: str) -> dict:
        with self._lock:
            return self._load().get(fp, {})

    def lookup(self, fp: str) -> Path | None:
        """The stored result file of this fingerprint, if it still exists unchanged."""
        entry = self._entry(fp)
        if not entry.get("path"):
            return None
        path = Path(entry["path"])
        try:
            stat = path.stat()
        except OSError:
            return None
        if stat.st_size != entry.get("size") or stat.st_mtime_ns != entry.get("mtime_ns"):
            return None
        return path

    def remember_sent(self, fp: str, provider: str, endpoint: str, seed: int | None) -> None:
        """Record, before sending it, that this request is being submitted: if the process dies before the answer
        is recorded, the next identical request is refused instead of perhaps billing twice."""
        with self._lock:
            entries = self._load()
            entries[fp] = {"sent": {"provider": provider, "endpoint": endpoint, "seed": seed, "at": time.time()},
                           "seed": seed, "updated": time.time()}
            self._save(entries)

    def unanswered(self, fp: str) -> dict | None:
        """The send record ({provider, endpoint, seed, at}) of a request sent whose answer was never recorded."""
        entry = self._entry(fp)
        return entry["sent"] if entry.get("sent") and not entry.get("job") else None

    def remember_job(self, fp: str, job: JobRef) -> None:
        """Record a submitted job at once, so it can be resumed even if this process dies while it runs."""
        self._update(fp, job=dataclasses.asdict(job))

    def remember_result(self, fp: str, path: Path, result: JobResult | None = None) -> None:
        """Record the fetched file (and the provider's result) for reuse by an identical request."""
        path = Path(path).resolve()
        stat = path.stat()
        fields = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if result is not None:
            fields["result"] = dataclasses.asdict(result)
        self._update(fp, **fields)

    def job(self, fp: str) -> JobRef | None:
        data = self._entry(fp).get("job")
        return JobRef(**data) if data else None

    def result(self, fp: str) -> JobResult | None:
        data = self._entry(fp).get("result")
        return JobResult(**data) if data else None

    def find(self, provider: str, job_id: str) -> str | None:
        """The fingerprint under which a job was recorded (for resuming it), or None."""
        with self._lock:
            entries = self._load()
        for fp, entry in entries.items():
            job = entry.get("job") or {}
            if job.get("provider") == provider and job.get("job_id") == job_id:
                return fp
        return None

    def pending(self) -> list[JobRef]:
        """Jobs submitted but never fetched (interrupted, past the deadline, or lost in a crash), oldest first."""
        with self._lock:
            entries = self._load()
        jobs = [(entry.get("updated", 0), JobRef(**entry["job"])) for entry in entries.values()
                if entry.get("job") and not entry.get("path")]
        return [job for _, job in sorted(jobs, key=lambda pair: pair[0])]
