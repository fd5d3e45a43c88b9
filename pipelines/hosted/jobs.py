"""The life of a hosted job, the same for every provider: budget check, reuse, upload, one submit, polling with
status text, Cancel, deadline, fetch.

The rules come from spec/hosted-apis.md §11: a submit is sent exactly once, recorded before it leaves and its job
id recorded at once (a lost answer or a crash must never lead to paying twice: the same request queued again
resumes the recorded job, or is refused when the answer never arrived); polls start fast and back off; waits are
sliced so a ComfyUI Cancel is honoured within a second and, where the provider can, cancels the job there (and so
does a deadline); where it cannot, the user is told the job still runs and bills, with the id to resume it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import keys
from .base import HostedError
from .pricing import format_usd, is_unknown
from .store import ResultStore
from .types import CostEstimate, JobRef, JobResult, JobStatus, Prepared, Provider

RESUME_HINT = ("resume it with the LTX-2 Resume Job node or `ltx2-anywhere resume` (provider {provider}, endpoint "
               "{endpoint}, job id {job_id})")
SYNC_WAIT = ("sent once; waiting for the synchronous answer, which is the video itself (if it is lost it cannot be "
             "resumed, and the request is not resent)")
SYNC_INTERRUPTED = ("interrupted while waiting for the synchronous answer: the request was sent, still renders and "
                    "bills, and its answer cannot be resumed; it is recorded as sent, so the identical request is not "
                    "sent again by itself")
RESUBMIT = ("To submit it again on purpose (it may bill twice), turn off reuse_results on LTX-2 Hosted Backend "
            "(CLI: --no-reuse) or use another seed.")


@dataclass(frozen=True)
class HostedOutcome:
    path: Path  # the video file (on reuse: the stored file of the earlier identical request)
    job: JobRef
    result: JobResult
    cost: CostEstimate | None
    reused: bool
    notes: tuple[str, ...] = ()  # what happened at run time (reuse, provider adjustments); Prepared.notes not repeated
    resumed: bool = False  # the job of an identical earlier request (e.g. before a crash) was followed, not resent


def _resume_hint(job: JobRef) -> str:
    return RESUME_HINT.format(provider=job.provider, endpoint=job.endpoint, job_id=job.job_id)


class _Run:
    """One job being followed: status text, sliced waits, interrupts and error wording in one place."""

    def __init__(self, provider: Provider, *, cost, deadline_s, poll, on_status, check_interrupt, sleep, clock,
                 forget: Callable[[], None] = lambda: None):
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
        self.job: JobRef | None = None  # once submitted: shown in every status text, as Resume needs it
        self.forget = forget  # drops the stored record of a job that is over without a result

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
            parts.append("price unknown" if is_unknown(self.cost) else f"est. {format_usd(self.cost.usd)}")
        if self.job is not None:
            parts.append(f"{self.job.endpoint} job {self.job.job_id}")
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

    def call(self, job: JobRef, fn: Callable, *args, finished: bool = False):
        """A provider call on a submitted (or `finished`) job; a HostedError gains the job id so the job can be
        resumed, except where the provider no longer knows it (404/410: its record is dropped)."""
        try:
            with self.http_hooks():
                return fn(*args)
        except HostedError as err:
            if err.status in (404, 410):
                self.forget()
                after = (f"The {self.name} job {job.job_id} may have expired at the provider (results are kept "
                         "a limited time).")
            elif finished:
                after = f"The {self.name} job has finished and was billed: {_resume_hint(job)} to fetch it again."
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
            cancelled, why = self.cancel(job)
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

    def cancel(self, job: JobRef) -> tuple[bool, str]:
        """Cancel the job where the provider can: (cancelled, why not). A cancelled job's record is dropped."""
        try:
            cancelled, why = bool(self.provider.cancel(job)), ""
        except Exception as err:  # the caller is stopping anyway: report the cancel error, go on
            cancelled, why = False, f" (cancelling failed: {err})"
        if cancelled:
            self.forget()
        return cancelled, why

    def follow(self, job: JobRef, dest: Path) -> tuple[JobResult, Path]:
        """Poll until the job ends, then fetch its video to `dest`; an interrupt is handled as `interrupted` says
        and then re-raised unchanged."""
        fetching = False
        self.job = job
        try:
            self._poll(job)
            fetching = True  # from here on the job is finished: nothing to cancel, only to fetch
            self.say("finished, fetching the result")
            result = self.call(job, self.provider.result, job)
            self.say("downloading the video")
            path = Path(self.call(job, self.provider.fetch, job, result, dest, finished=True))
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
            if status.state in ("failed", "cancelled"):
                self.forget()
            if status.state == "failed":
                raise HostedError(f"The {self.name} job {job.job_id} failed: "
                                  f"{status.message or 'the provider gave no reason'}.")
            if status.state == "cancelled":
                raise HostedError(f"The {self.name} job {job.job_id} was cancelled by the provider"
                                  + (f": {status.message}." if status.message else "."))
            self.say(self._describe(status))
            if self.clock() >= self.deadline:
                late = f"The {self.name} job {job.job_id} did not finish within {self.deadline_s:g} s (last state: " \
                       f"{self.state_text})"
                cancelled, why = self.cancel(job)
                if cancelled:
                    raise HostedError(f"{late}, so it was cancelled at {self.name} (work already done may still be "
                                      "billed). Give it a later deadline and run it again.")
                raise HostedError(f"{late}{why}. It may still be running and billing at {self.name}: "
                                  f"{_resume_hint(job)} later, or queue the identical request again.")
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

    In order: refuse when the estimate exceeds `max_cost_usd` (or is unknown while a limit is set). With a `store`
    and `reuse`, an identical earlier request (same provider, endpoint, payload, seed and input files) is never
    sent again: its stored file is returned without any network call; its recorded job, left unfinished by a
    crash, a deadline or an interrupt, is followed instead of submitting; and if it was sent but its answer never
    recorded (a crash between the two), it is refused with what to check and how to resubmit on purpose. A seed
    below 0 (random at the provider) makes every run a distinct request. Then: upload `prepared.uploads` and fill
    their payload fields; record the request as sent, submit exactly once and record the job at once; poll every
    poll[0]..poll[1] s until done, failed, cancelled, interrupted or past `deadline_s` (then cancelled where the
    provider can); fetch, within the size the provider declared or the request implies. A synchronous endpoint
    (`provider.synchronous`) answers the one submit with the video itself: it is waited for until the deadline
    (an interrupt stops the wait; the request stays recorded as sent) and recorded with its file, nothing polled.
    `check_interrupt` raises to interrupt (e.g. ComfyUI's InterruptProcessingException): the job is cancelled
    where the provider can, the user is told otherwise, and that same exception is re-raised.
    """
    name = provider.name or prepared.provider
    cost = prepared.cost
    _check_budget(name, prepared, max_cost_usd)
    fp = None
    if store is not None:
        fp = store.fingerprint(prepared.provider, prepared.endpoint, prepared.payload, prepared.uploads, prepared.seed)
        if prepared.seed is not None and prepared.seed < 0:
            fp += f"-{secrets.token_hex(8)}"  # a random seed: never the same request twice
    run = _Run(provider, cost=cost, deadline_s=deadline_s, poll=poll, on_status=on_status,
               check_interrupt=check_interrupt, sleep=sleep, clock=clock,
               forget=(lambda: store.forget(fp)) if store is not None else (lambda: None))
    if store is not None and reuse:
        earlier = _earlier(run, store, fp, prepared, Path(dest))
        if earlier is not None:
            return earlier

    payload = dict(prepared.payload)
    for field, path in prepared.uploads.items():
        run.check_interrupt()
        run.say(f"uploading {Path(path).name}")
        with run.http_hooks():
            payload[field] = provider.upload(Path(path))
    run.check_interrupt()
    prepared = dataclasses.replace(prepared, payload=payload, uploads={})
    synchronous = provider.synchronous(prepared)
    run.say("submitting")
    if store is not None:
        store.remember_sent(fp, prepared.provider, prepared.endpoint, prepared.seed)
    try:
        with run.http_hooks():
            if synchronous:
                run.say(SYNC_WAIT)
                job, result, path = provider.submit_sync(prepared, Path(dest), max(1.0, run.deadline - run.clock()))
            else:
                job = provider.submit(prepared)
    except HostedError as err:
        if not err.maybe_accepted:
            run.forget()  # refused or never sent: nothing bills, an identical request may be sent again
            raise
        if store is None:
            raise
        raise HostedError(f"{err} This request is recorded as sent: queueing the identical request again will not "
                          f"send it again. {RESUBMIT}", status=err.status, maybe_accepted=True) from err
    except Exception as exc:
        if exc is run.interrupt:  # only a synchronous request waits: it was sent, and its answer is now lost
            run.say(SYNC_INTERRUPTED)
            if hasattr(exc, "add_note"):
                exc.add_note(keys.redact(f"{name}: {SYNC_INTERRUPTED}"))
            raise
        run.forget()  # refused before sending (a missing key, an upload not done)
        raise
    if synchronous:
        run.job = job
        if store is not None:  # the file first: a crash in between leaves a reusable result, not a job to poll
            store.remember_result(fp, path, result)
            store.remember_job(fp, job)
        run.say("done")
        return HostedOutcome(path, job, result, cost, False)
    job = dataclasses.replace(job, max_bytes=prepared.max_bytes)
    if store is not None:
        store.remember_job(fp, job)
    run.job = job
    run.say("submitted")
    result, path = run.follow(job, Path(dest))
    if store is not None:
        store.remember_result(fp, path, result)
    return HostedOutcome(path, job, result, cost, False, _adjustment_notes(name, result))


def _check_budget(name: str, prepared: Prepared, max_cost_usd: float | None) -> None:
    cost = prepared.cost
    if max_cost_usd is None:
        return
    if is_unknown(cost):
        why = cost.formula if cost is not None else "no estimate was made"
        raise HostedError(f"{name} {prepared.endpoint}: the spend limit {format_usd(max_cost_usd)} cannot be checked "
                          f"because the price is unknown ({why}). Remove the limit to run it anyway.")
    if cost.usd > max_cost_usd:
        raise HostedError(f"{name} {prepared.endpoint}: the estimated cost {_exact_usd(cost.usd)} ({cost.formula}) "
                          f"is over the spend limit {_exact_usd(max_cost_usd)}; nothing was sent. Raise the limit or "
                          "make the video shorter or smaller.")


def _exact_usd(usd: float) -> str:
    """Every digit of a price (to a millionth), so an estimate just over a limit never reads equal to it."""
    text = f"{usd:.6f}".rstrip("0")
    return "$" + text + "0" * (2 - len(text.partition(".")[2]))


def _earlier(run: _Run, store: ResultStore, fp: str, prepared: Prepared, dest: Path) -> HostedOutcome | None:
    """What an identical earlier request left: its stored file (reused), its unfinished job (followed), or a send
    whose answer never came (refused); None when there is nothing."""
    stored = store.lookup(fp)
    job = store.job(fp)
    if stored is not None:
        run.say("reused the stored result of an identical request")
        job = job or JobRef(prepared.provider, prepared.endpoint, "")
        result = store.result(fp) or JobResult(video_url=None)
        return HostedOutcome(stored, job, result, CostEstimate(0.0, "reused a stored result: nothing billed"), True,
                             (f"identical to job {job.job_id or '?'}: its stored video was reused, nothing was "
                              "sent or billed",))
    if job is not None:
        run.job = job
        run.say("resuming the job of an identical earlier request (not submitted again)")
        result, path = run.follow(job, dest)
        store.remember_result(fp, path, result)
        notes = (f"identical to job {job.job_id}, submitted earlier and left unfinished: it was resumed, not "
                 "submitted again",)
        return HostedOutcome(path, job, result, prepared.cost, False,
                             notes + _adjustment_notes(run.name, result), resumed=True)
    sent = store.unanswered(fp)
    if sent is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sent.get("at", 0)))
        where = (f"its answer was the video itself and cannot be fetched again: see your {run.name} console"
                 if run.provider.synchronous(prepared) else
                 f"Check your {run.name} dashboard: if the job is there, fetch it by its id (provider {run.name}, "
                 f"endpoint {prepared.endpoint}) with the LTX-2 Resume Job node or `ltx2-anywhere resume`")
        raise HostedError(
            f"{run.name} {prepared.endpoint}: an identical request (seed {sent.get('seed')}) was sent at {when}, but "
            "its answer was never recorded (the process stopped, or the connection broke, between sending it and "
            f"reading the answer). {run.name} may have accepted it and may bill it, so it was not sent again. "
            f"{where}. {RESUBMIT}", maybe_accepted=True)
    return None


def resume_job(provider: Provider, job: JobRef, dest: Path, *, deadline_s: float = 1800.0,
               poll: tuple[float, float] = (1.0, 5.0), on_status: Callable[[str], None] | None = None,
               check_interrupt: Callable[[], None] | None = None, store: ResultStore | None = None,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> HostedOutcome:
    """Follow a job submitted earlier (after a deadline, a restart or an interrupt) and fetch it; nothing is
    submitted. With a `store` that recorded the job, its record completes what the caller did not give (the
    endpoint, the provider's URLs, the download limit) and the result is remembered for reuse as usual."""
    fp = store.find(job.provider, job.job_id) if store is not None else None
    recorded = store.job(fp) if fp is not None else None
    if recorded is not None and job.endpoint in ("", recorded.endpoint):
        job = recorded
    run = _Run(provider, cost=None, deadline_s=deadline_s, poll=poll, on_status=on_status,
               check_interrupt=check_interrupt, sleep=sleep, clock=clock,
               forget=(lambda: store.forget(fp)) if fp is not None else (lambda: None))
    run.job = job
    run.say("resuming")
    result, path = run.follow(job, Path(dest))
    if fp is not None:
        store.remember_result(fp, path, result)
    return HostedOutcome(path, job, result, None, False, _adjustment_notes(provider.name or job.provider, result),
                         resumed=True)
