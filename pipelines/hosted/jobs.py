"""The life of a hosted job, the same for every provider: budget check, reuse, upload, one submit, polling with
status text, Cancel, deadline, fetch.

The rules come from spec/hosted-apis.md §11: a submit is sent exactly once and its job id is recorded at once (a
lost answer or a crash must never lead to paying twice, and the job can be resumed); polls start fast and back
off; waits are sliced so a ComfyUI Cancel is honoured within a second and, where the provider can, cancels the
job there; where it cannot, the user is told the job still runs and bills, with the id to resume it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import keys
from .base import HostedError
from .pricing import is_unknown
from .store import ResultStore
from .types import CostEstimate, JobRef, JobResult, JobStatus, Prepared, Provider

RESUME_HINT = "resume it with the LTX-2 Resume Job node (provider {provider}, endpoint {endpoint}, job id {job_id})"


@dataclass(frozen=True)
class HostedOutcome:
    path: Path  # the video file (on reuse: the stored file of the earlier identical request)
    job: JobRef
    result: JobResult
    cost: CostEstimate | None
    reused: bool
    notes: tuple[str, ...] = ()  # what happened at run time (reuse, provider adjustments); Prepared.notes not repeated


def _resume_hint(job: JobRef) -> str:
    return RESUME_HINT.format(provider=job.provider, endpoint=job.endpoint, job_id=job.job_id)


class _Run:
    """One job being followed: status text, sliced waits, interrupts and error wording in one place."""

    def __init__(self, provider: Provider, *, cost, deadline_s, poll, on_status, check_interrupt, sleep, clock):
        self.provider = provider
        self.name = provider.name or "provider"
        self.cost = cost
        self.poll = poll
        self.on_status = on_status
        self._check = check_interrupt
        self.sleep = sleep
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + deadline_s
        self.deadline_s = deadline_s
        self.interrupt: BaseException | None = None  # the exception check_interrupt raised, once it has
        self.state_text = "starting"

    # -- hooks ---------------------------------------------------------------------------------------------------

    def check_interrupt(self) -> None:
        """Call the caller's hook, remembering what it raised so the same exception is recognised later even when
        it surfaces from inside a provider call (the HTTP client checks it during retry waits and downloads)."""
        if self._check is None:
            return
        try:
            self._check()
        except BaseException as exc:
            self.interrupt = exc
            raise

    def say(self, state_text: str | None = None) -> None:
        if state_text is not None:
            self.state_text = state_text
        if self.on_status is None:
            return
        parts = [f"{self.name}: {self.state_text}", f"{int(self.clock() - self.started)} s"]
        if self.cost is not None:
            parts.append("price unknown" if is_unknown(self.cost) else f"est. ${self.cost.usd:.2f}")
        self.on_status(keys.redact(" · ".join(parts)))

    def http_hooks(self):
        """While a provider call runs, its HTTP client's waits and downloads check for an interrupt too."""
        hook = getattr(self.provider.http, "interruptible", None)
        return hook(self.check_interrupt if self._check else None) if hook else contextlib.nullcontext()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds` (never past the deadline) in slices of at most a second, checking for an
        interrupt and refreshing the elapsed time between slices."""
        end = min(self.clock() + seconds, self.deadline)
        while True:
            self.check_interrupt()
            left = end - self.clock()
            if left <= 0:
                return
            self.sleep(min(1.0, left))
            self.say()

    # -- following a submitted job ---------------------------------------------------------------------------------

    def call(self, job: JobRef, fn: Callable, *args):
        """A provider call on a submitted job; a HostedError gains the job id so the job can be resumed."""
        try:
            with self.http_hooks():
                return fn(*args)
        except HostedError as err:
            if err.status in (404, 410):
                after = (f"The {self.name} job {job.job_id} may have expired at the provider (results are kept "
                         "a limited time).")
            else:
                after = f"The {self.name} job was submitted and may still run: {_resume_hint(job)}."
            raise HostedError(f"{err} {after}", status=err.status) from err

    def interrupted(self, job: JobRef, exc: BaseException, fetching: bool) -> None:
        """Cancel the job where the provider can (not once it has finished), and tell the user what became of it,
        through on_status and as a note on the interrupt exception."""
        if fetching:
            text = (f"interrupted while downloading; job {job.job_id} has finished and was billed: "
                    f"{_resume_hint(job)} to fetch the video.")
        else:
            try:
                cancelled, why = bool(self.provider.cancel(job)), ""
            except Exception as err:  # the interrupt is what the user asked for: report the cancel error, go on
                cancelled, why = False, f" (cancelling failed: {err})"
            if cancelled:
                text = f"interrupted; job {job.job_id} was cancelled at the provider."
            elif why:
                text = (f"interrupted; job {job.job_id} could not be cancelled{why}, so it may still run and bill: "
                        f"{_resume_hint(job)}.")
            else:
                text = (f"interrupted; {self.name} has no cancel, so job {job.job_id} will still run and bill: "
                        f"{_resume_hint(job)}.")
        self.say(text)
        if hasattr(exc, "add_note"):  # Python 3.11+: the note is printed with the traceback
            exc.add_note(keys.redact(f"{self.name}: {text}"))

    def follow(self, job: JobRef, dest: Path) -> tuple[JobResult, Path]:
        """Poll until the job ends, then fetch its video to `dest`; an interrupt is handled as `interrupted` says
        and then re-raised unchanged."""
        fetching = False
        try:
            self._poll(job)
            fetching = True  # from here on the job is finished: nothing to cancel, only to fetch
            self.say("finished, fetching the result")
            result = self.call(job, self.provider.result, job)
            self.say("downloading the video")
            path = Path(self.call(job, self.provider.fetch, job, result, dest))
        except BaseException as exc:
            if exc is self.interrupt:
                self.interrupted(job, exc, fetching)
            raise
        self.say("done")
        return result, path

    def _poll(self, job: JobRef) -> None:
        """Return once the job has completed; raise when it failed, was cancelled or the deadline passed."""
        interval = self.poll[0]
        while True:
            self.check_interrupt()
            status: JobStatus = self.call(job, self.provider.status, job)
            if status.state == "completed":
                return
            if status.state == "failed":
                raise HostedError(f"The {self.name} job {job.job_id} failed: "
                                  f"{status.message or 'the provider gave no reason'}.")
            if status.state == "cancelled":
                raise HostedError(f"The {self.name} job {job.job_id} was cancelled by the provider"
                                  + (f": {status.message}." if status.message else "."))
            self.say(self._describe(status))
            if self.clock() >= self.deadline:
                raise HostedError(
                    f"The {self.name} job {job.job_id} did not finish within {self.deadline_s:g} s (last state: "
                    f"{self.state_text}). It may still be running and billing at {self.name}: {_resume_hint(job)} "
                    "later.")
            self.wait(interval * random.uniform(0.9, 1.1))
            interval = min(self.poll[1], interval * 1.5)

    @staticmethod
    def _describe(status: JobStatus) -> str:
        if status.state == "queued":
            text = "in queue" + (f" (position {status.queue_position})" if status.queue_position is not None else "")
        else:
            text = "running" if status.state == "running" else status.state
        message = " ".join(status.message.split())
        return f"{text} ({message[:80]})" if message else text


def _adjustment_notes(name: str, result: JobResult) -> tuple[str, ...]:
    if not result.adjustments:
        return ()
    return (f"{name} adjusted the request: {json.dumps(result.adjustments, sort_keys=True, default=str)[:300]}",)


def run_job(provider: Provider, prepared: Prepared, dest: Path, *, deadline_s: float = 1800.0,
            poll: tuple[float, float] = (1.0, 5.0), on_status: Callable[[str], None] | None = None,
            check_interrupt: Callable[[], None] | None = None, store: ResultStore | None = None, reuse: bool = True,
            max_cost_usd: float | None = None, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic) -> HostedOutcome:
    """Run `prepared` on `provider` and fetch the video to `dest`.

    In order: refuse when the estimate exceeds `max_cost_usd` (or is unknown while a limit is set); with a
    `store` and `reuse`, return the stored file of an identical earlier request without any network call; upload
    `prepared.uploads` and fill their payload fields; submit exactly once and record the job in the store at once;
    poll every poll[0]..poll[1] s until done, failed, cancelled, interrupted or past `deadline_s`; fetch.
    `check_interrupt` raises to interrupt (e.g. ComfyUI's InterruptProcessingException): the job is cancelled
    where the provider can, the user is told otherwise, and that same exception is re-raised.
    """
    name = provider.name or prepared.provider
    cost = prepared.cost
    if max_cost_usd is not None:
        if is_unknown(cost):
            why = cost.formula if cost is not None else "no estimate was made"
            raise HostedError(f"{name} {prepared.endpoint}: the spend limit ${max_cost_usd:.2f} cannot be checked "
                              f"because the price is unknown ({why}). Remove the limit to run it anyway.")
        if cost.usd > max_cost_usd:
            raise HostedError(f"{name} {prepared.endpoint}: the estimated cost ${cost.usd:.2f} ({cost.formula}) is "
                              f"over the spend limit ${max_cost_usd:.2f}; nothing was sent. Raise the limit or "
                              "make the video shorter or smaller.")
    fp = store.fingerprint(prepared.provider, prepared.endpoint, prepared.payload, prepared.uploads) if store else None
    run = _Run(provider, cost=cost, deadline_s=deadline_s, poll=poll, on_status=on_status,
               check_interrupt=check_interrupt, sleep=sleep, clock=clock)
    if store is not None and reuse:
        stored = store.lookup(fp)
        if stored is not None:
            run.say("reused the stored result of an identical request")
            job = store.job(fp) or JobRef(prepared.provider, prepared.endpoint, "")
            result = store.result(fp) or JobResult(video_url=None)
            return HostedOutcome(stored, job, result, CostEstimate(0.0, "reused a stored result: nothing billed"), True,
                                 (f"identical to job {job.job_id or '?'}: its stored video was reused, nothing was "
                                  "sent or billed",))

    payload = dict(prepared.payload)
    for field, path in prepared.uploads.items():
        run.check_interrupt()
        run.say(f"uploading {Path(path).name}")
        with run.http_hooks():
            payload[field] = provider.upload(Path(path))
    run.check_interrupt()
    prepared = dataclasses.replace(prepared, payload=payload, uploads={})
    run.say("submitting")
    job = provider.submit(prepared)
    if store is not None:
        store.remember_job(fp, job)
    run.say(f"submitted job {job.job_id}")
    result, path = run.follow(job, Path(dest))
    if store is not None:
        store.remember_result(fp, path, result)
    return HostedOutcome(path, job, result, cost, False, _adjustment_notes(name, result))


def resume_job(provider: Provider, job: JobRef, dest: Path, *, deadline_s: float = 1800.0,
               poll: tuple[float, float] = (1.0, 5.0), on_status: Callable[[str], None] | None = None,
               check_interrupt: Callable[[], None] | None = None, store: ResultStore | None = None,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> HostedOutcome:
    """Follow a job submitted earlier (after a deadline, a restart or an interrupt) and fetch it; nothing is
    submitted. With a `store` that recorded the job, the result is remembered for reuse as usual."""
    run = _Run(provider, cost=None, deadline_s=deadline_s, poll=poll, on_status=on_status,
               check_interrupt=check_interrupt, sleep=sleep, clock=clock)
    run.say(f"resuming job {job.job_id}")
    result, path = run.follow(job, Path(dest))
    fp = store.find(job.provider, job.job_id) if store is not None else None
    if fp is not None:
        store.remember_result(fp, path, result)
    return HostedOutcome(path, job, result, None, False, _adjustment_notes(provider.name or job.provider, result))
