"""A local stand-in for fal.ai's queue API and storage (spec hosted-apis.md §3, §10.1, §10.2), on 127.0.0.1 only.

It speaks what `fal-client==1.0.3` and our client send: submit `POST /{owner}/{alias}[/{path}]` answering
`request_id` + `status_url`/`response_url`/`cancel_url` under `/{owner}/{alias}/requests/{id}` (the sub-path
dropped), the status machine IN_QUEUE (a counting-down `queue_position`) → IN_PROGRESS (growing logs) → COMPLETED
(`logs`, `metrics`; a failure is COMPLETED + `error`/`error_type`, never another status string), the result JSON
with `video.url` on a separate "CDN" path serving a real tiny mp4, cancel (202 / 400 ALREADY_COMPLETED / 404),
the CDN token + `/files/upload` upload, multipart, and the storage-initiate fallback. Every request is recorded.

Failure modes are chosen per job by a prompt keyword `[fal:<scenario>]`, the submit header `X-Fake-Scenario` or
`fake.scenario` (see SCENARIOS), so one server drives every test; `settings` holds server-wide switches. Where fal is
undocumented the fake picks a plausible shape and says so ([UNK] below). It is stricter than fal is known to be in
one place on purpose: input fields an endpoint does not document are refused with 422, so a client sending a
wrong field name fails here.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

from fakes.server import FakeApi, Handler, Job, Recorded, Settings, clip_bytes, clip_for_audio
from ltx2_anywhere.pipelines.media import probe_video

SCENARIOS = {
    "ok": "IN_QUEUE (positions counting down) → IN_PROGRESS → COMPLETED; the result names the mp4",
    "slow-queue": "stays IN_QUEUE for `slow_queue_polls` polls",
    "fail": "COMPLETED + error; the result answers 422 with a pydantic `detail` list and X-Fal-Retryable",
    "fail-5xx": "COMPLETED + error; the result answers 503 `{detail, error_type}` with X-Fal-Error-Type",
    "never": "stays IN_PROGRESS forever",
    "status-503": "the first `burst` status polls answer an ingress 503 (nginx HTML, no x-fal-request-id)",
    "status-429": "the first `burst` status polls answer 429 with Retry-After",
    "drop-status": "the first `burst` status polls drop the connection without an answer",
    "malformed": "status polls answer HTTP 200 with truncated JSON",
    "malformed-once": "the first status poll answers HTTP 200 with truncated JSON (one corrupted body), then as ok",
    "malformed-result": "the result answers HTTP 200 with truncated JSON",
    "no-video": "the result JSON has no `video`",
    "drop-submit": "the submit creates the job (it bills), then drops the connection",
    "hold-submit": "the submit creates the job (it bills), holds its answer `hold_s` seconds, then drops the "
                   "connection: a client killed in that window never learns the job id",
    "submit-503": "the submit answers an ingress 503 and creates nothing",
    "balance": "the submit answers 403 with an exhausted-balance detail and creates nothing",
    "oversized": "the video claims 16 GiB (Content-Length) and streams zeros",
    "oversized-chunked": "the video has no Content-Length and streams 4 MiB of zeros, then closes",
    "endless": "the video has no Content-Length and streams zeros until the client hangs up",
    "larger-than-declared": "the result's file_size is the video's, but the file served is 2 MiB longer "
                            "(Content-Length says so)",
    "larger-than-declared-chunked": "as larger-than-declared, without a Content-Length",
    "slow-download": "the video sends 1 KiB, then stalls",
    "wrong-type": "the video is served as text/html",
    "redirect-file": "the video URL redirects to file:///etc/passwd",
    "redirect-private": "the video URL redirects to http://10.0.0.7/ (a private address)",
    "redirect-metadata": "the video URL redirects to http://169.254.169.254/ (link-local cloud metadata)",
    "expired": "the video URL answers 404 (the CDN object's lifecycle ended)",
}
BURSTS = ("status-503", "status-429", "drop-status")

# The documented input fields per endpoint (spec §3.7). [INF] the open extend endpoints take the image-to-video
# fields with video_url in place of image_url, as the 22B extend-video/lora page lists.
_OPEN = {"prompt", "num_frames", "video_size", "generate_audio", "use_multiscale", "fps", "guidance_scale",
         "num_inference_steps", "acceleration", "camera_lora", "camera_lora_scale", "negative_prompt", "seed",
         "enable_prompt_expansion", "enable_safety_checker", "video_output_type", "video_quality",
         "video_write_mode", "sync_mode", "interpolation_direction"}
_I2V = _OPEN | {"image_url", "end_image_url", "image_strength", "end_image_strength"}
_EXTEND = _OPEN | {"video_url", "end_image_url", "end_image_strength"}
_PROXY = {"prompt", "duration", "resolution", "aspect_ratio", "fps", "generate_audio"}
ENDPOINTS = {
    "fal-ai/ltx-2-19b/text-to-video": (_OPEN, {"prompt"}),
    "fal-ai/ltx-2-19b/image-to-video": (_I2V, {"prompt", "image_url"}),
    "fal-ai/ltx-2-19b/extend-video": (_EXTEND, {"prompt", "video_url"}),
    "fal-ai/ltx-2.3-22b/text-to-video": (_OPEN, {"prompt"}),
    "fal-ai/ltx-2.3-22b/image-to-video": (_I2V, {"prompt", "image_url"}),
    "fal-ai/ltx-2.3-22b/extend-video": (_EXTEND, {"prompt", "video_url"}),
    "fal-ai/ltx-2.3/text-to-video": (_PROXY, {"prompt"}),
    "fal-ai/ltx-2.3/text-to-video/fast": (_PROXY, {"prompt"}),
    "fal-ai/ltx-2.3/image-to-video": (_PROXY | {"image_url", "end_image_url"}, {"prompt", "image_url"}),
    "fal-ai/ltx-2.3/image-to-video/fast": (_PROXY | {"image_url", "end_image_url"}, {"prompt", "image_url"}),
    "fal-ai/ltx-2.3/extend-video": ({"video_url", "prompt", "duration", "mode", "context"}, {"video_url"}),
    # fal's model page of the distilled 19B audio-to-video (its /lora sibling lists the same fields)
    "fal-ai/ltx-2-19b/distilled/audio-to-video": ({"prompt", "audio_url", "image_url", "end_image_url",
                                                   "match_audio_length", "num_frames", "video_size"},
                                                  {"prompt", "audio_url"}),
}
_RANGES = {"num_frames": (9, 481), "fps": (1, 60), "guidance_scale": (1, 10), "num_inference_steps": (8, 50),
           "camera_lora_scale": (0, 1), "image_strength": (0, 1), "end_image_strength": (0, 1)}
_CHOICES = {
    "acceleration": ("none", "regular", "high", "full"),
    "camera_lora": ("dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static", "none"),
    "video_output_type": ("X264 (.mp4)", "VP9 (.webm)", "PRORES4444 (.mov)", "GIF (.gif)"),
    "video_quality": ("low", "medium", "high", "maximum"),
    "video_write_mode": ("fast", "balanced", "small"),
    "interpolation_direction": ("forward", "backward"),
    "resolution": ("1080p", "1440p", "2160p"),
    "aspect_ratio": ("16:9", "9:16"),
    "mode": ("start", "end"),
}
_PROXY_CHOICES = {"duration": (6, 8, 10), "fps": (24, 25, 48, 50)}
_FAST_DURATIONS = (6, 8, 10, 12, 14, 16, 18, 20)
_URL_FIELDS = ("image_url", "end_image_url", "video_url", "audio_url")
DENY = {"detail": "No user found for Key ID and Secret"}  # [UNK] the exact 401 body; fal answers a flat detail
INGRESS_503 = b"<html><body><h1>503 Service Temporarily Unavailable</h1><hr><center>nginx</center></body></html>"


@dataclass
class FalJob(Job):
    start_deadline: float | None = None  # X-Fal-Request-Timeout: monotonic time by which it must leave the queue
    logs: list = field(default_factory=list)
    outcome: str | None = None  # None while running; "ok", "error", "cancelled" or "timeout" once COMPLETED

    @property
    def app(self) -> str:
        """owner/alias: where status, result and cancel live."""
        return "/".join(self.endpoint.split("/")[:2])


@dataclass
class FalSettings(Settings):
    queue_polls: int = 3  # polls answered IN_QUEUE (queue_position counts down to 0)
    run_polls: int = 2  # then polls answered IN_PROGRESS
    slow_queue_polls: int = 8
    retry_after: str = "0"  # the Retry-After sent with 429/503 bursts
    cdn_upload_status: int | None = None  # make POST /files/upload answer this HTTP status
    storage_upload_status: int | None = None  # make the storage-initiate fallback answer this HTTP status


class FalServer(FakeApi):
    """The fake, as a context manager: `with FalServer(tmp_path) as fal: fal.url ...` (the key must be sent as
    `Authorization: Key <key>`)."""

    tag = "fal"
    SCENARIOS = SCENARIOS
    auth_scheme = "Key"
    job_type = FalJob
    SUBMIT = ("POST", r"/[^/]+/[^/]+(/.+)?")  # less the storage and queue paths: see submits()
    POLL = ("GET", r"/[^/]+/[^/]+/requests/[\w-]+/status")
    DOWNLOAD = ("GET", r"/cdn/files/.+")

    def __init__(self, workdir: Path, key: str = "fal-test-key:secret"):
        super().__init__(key)
        self.settings = FalSettings()
        self.files: dict[str, bytes] = {}  # uploaded bytes by their access path
        self.tokens: set[str] = set()
        self.video = clip_bytes(fps=25)
        self.video_path = Path(workdir) / "fal-result.mp4"  # the result clip as a file, for tests that upload it
        self.video_path.parent.mkdir(parents=True, exist_ok=True)
        self.video_path.write_bytes(self.video)
        self._multipart: dict[str, dict] = {}

    def submits(self) -> list[Recorded]:
        return [r for r in super().submits() if _route_kind(r.path) == "submit"]

    def routes(self):
        return [
            ("POST", r"/storage/auth/token", self._token),
            ("POST", r"/storage/upload/initiate", self._initiate),
            ("PUT", r"/gcs/(\w+)/([^/]+)", self._gcs_put),
            ("POST", r"/files/upload", self._cdn_upload),
            ("POST", r"/files/upload/multipart", self._multipart_create),
            ("PUT", r"/files/(\w+)/([^/]+)/multipart/(\w+)/(\d+)", self._multipart_part),
            ("POST", r"/files/(\w+)/([^/]+)/multipart/(\w+)/complete", self._multipart_complete),
            ("GET", r"/files/(\w+)/([^/]+)", self._uploaded_file),
            ("GET", r"/cdn/files/([\w-]+)/output\.mp4", self._video),
            ("GET", r"/([^/]+/[^/]+)/requests/([\w-]+)/status", self._status),
            ("GET", r"/([^/]+/[^/]+)/requests/([\w-]+)", self._result),
            ("PUT", r"/([^/]+/[^/]+)/requests/([\w-]+)/cancel", self._cancel),
            ("POST", r"/(.+)", self._submit),
        ]

    def not_found(self, h: Handler, rec: Recorded) -> None:
        h.send_json(404, {"detail": "Not Found"})

    def _ingress_503(self, h: Handler) -> None:
        h.send(503, INGRESS_503, "text/html", {"Retry-After": self.settings.retry_after})

    def _urls(self, job: FalJob) -> dict:
        base = f"{self.url}/{job.app}/requests/{job.id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def _advance(self, job: FalJob, with_logs: bool) -> dict:
        """One status poll (under the lock): the job's state after `polls` polls, by scenario."""
        queue = self.queue_polls(job)
        if job.outcome is None and job.polls < queue and job.start_deadline and time.monotonic() > job.start_deadline:
            job.outcome = "timeout"
        phase = self.phase(job) if job.outcome is None else "done"
        if phase == "queued":
            return {"status": "IN_QUEUE", "queue_position": queue - job.polls, **self._urls(job)}
        if phase == "running":
            job.logs.append({"message": f"step {len(job.logs) + 1}", "level": "INFO", "source": "user",
                             "timestamp": _now()})
            return {"status": "IN_PROGRESS", "logs": list(job.logs) if with_logs else None, **self._urls(job)}
        if job.outcome is None:
            job.outcome = "error" if job.scenario in ("fail", "fail-5xx") else "ok"
        data = {"status": "COMPLETED", "logs": list(job.logs) if with_logs else None,
                "metrics": {"inference_time": 1.25}, **self._urls(job)}
        errors = {
            "error": ("Unprocessable input: the image could not be read (fake)", "image_load_error"),
            "cancelled": ("Request was cancelled (fake)", "request_cancelled"),  # [UNK] the exact words and type
            "timeout": ("Request timed out", "request_timeout"),
        }
        if job.outcome in errors:
            if job.scenario == "fail-5xx" and job.outcome == "error":
                data.update(error="Runner disconnected (fake)", error_type="runner_disconnected")
            else:
                data.update(zip(("error", "error_type"), errors[job.outcome]))
        return data

    def _result_json(self, job: FalJob) -> dict:
        frames = job.extra.get("frames", 9)
        video = {"url": f"{self.url}/cdn/files/{job.id}/output.mp4", "content_type": "video/mp4",
                 "file_name": "output.mp4", "file_size": len(self._video_of(job)), "width": 96, "height": 64,
                 "fps": 25.0, "num_frames": frames, "duration": frames / 25.0}
        result = {"video": video, "seed": job.input.get("seed", 1234567), "prompt": job.input.get("prompt", "")}
        if job.scenario == "no-video":
            del result["video"]
        return result

    # ------------------------------------------------------------------------------------------------- queue

    def _submit(self, h: Handler, rec: Recorded, endpoint: str) -> None:
        if _route_kind(rec.path) != "submit":
            self.not_found(h, rec)
            return
        if not h.authorized(DENY):
            return
        if endpoint not in ENDPOINTS:
            h.send_json(404, {"detail": f"Application '{endpoint}' not found"})
            return
        problems = _validate(endpoint, rec.json)
        if problems:
            h.send_json(422, {"detail": problems}, {"X-Fal-Retryable": "false"})
            return
        scenario = self.pick_scenario(h, rec.json.get("prompt"))
        if scenario is None:
            return
        if scenario == "submit-503":
            self._ingress_503(h)
            return
        if scenario == "balance":  # [UNK] fal's exact balance error; this shape is assumed
            h.send_json(403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
                                        "fal.ai/dashboard/billing."})
            return
        job = self.new_job(endpoint, rec.json, scenario)
        if "audio_url" in rec.json:
            self._render_audio(job)
        timeout = h.headers.get("X-Fal-Request-Timeout")
        if timeout:
            job.start_deadline = time.monotonic() + float(timeout)
        if self.withhold_answer(h, job):
            return
        _queue_json(h, 200, {"status": "IN_QUEUE", "request_id": job.id,
                             "queue_position": max(self.queue_polls(job) - 1, 0), **self._urls(job)}, job)

    def _job(self, h: Handler, app: str, job_id: str) -> FalJob | None:
        """The job, when the path names its owner/alias (a sub-path in a status URL is a 404, as at fal)."""
        if not h.authorized(DENY):
            return None
        job = self.find_job(job_id)
        if job is None or job.app != app:
            h.send_json(404, {"detail": f"Request {job_id} not found"})
            return None
        return job

    def _status(self, h: Handler, rec: Recorded, app: str, job_id: str) -> None:
        job = self._job(h, app, job_id)
        if job is None:
            return
        with self.lock:
            burst = job.scenario in BURSTS and job.burst_left > 0
            if burst:
                job.burst_left -= 1
            else:
                with_logs = parse_qs(rec.query).get("logs", ["false"])[0].lower() in ("true", "1")
                data = self._advance(job, with_logs)
        if burst and job.scenario == "drop-status":
            h.drop()
        elif burst and job.scenario == "status-503":
            self._ingress_503(h)
        elif burst:
            h.send_json(429, {"detail": "Too many requests (fake)"}, {"Retry-After": self.settings.retry_after})
        elif job.scenario == "malformed" or self.glitch_once(job):
            h.send(200, b'{"status": "IN_PROG', "application/json", {"x-fal-request-id": job.id})
        else:
            _queue_json(h, 200, data, job)

    def _result(self, h: Handler, rec: Recorded, app: str, job_id: str) -> None:
        job = self._job(h, app, job_id)
        if job is None:
            return
        if job.outcome is None:  # [UNK] the answer before COMPLETED; fal-client never asks then
            _queue_json(h, 400, {"detail": "Request is still in progress"}, job)
        elif job.outcome == "timeout":
            _queue_json(h, 504, {"detail": "Request timed out", "error_type": "request_timeout"}, job,
                        {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"})
        elif job.outcome == "cancelled":
            _queue_json(h, 400, {"detail": "Request was cancelled"}, job)  # [UNK] shape
        elif job.scenario == "fail":
            _queue_json(h, 422, {"detail": [{"loc": ["body", "image_url"], "msg": "Could not load the image (fake)",
                                             "type": "image_load_error"}]}, job, {"X-Fal-Retryable": "false"})
        elif job.scenario == "fail-5xx":
            _queue_json(h, 503, {"detail": "Runner disconnected (fake)", "error_type": "runner_disconnected"}, job,
                        {"X-Fal-Error-Type": "runner_disconnected"})
        elif job.scenario == "malformed-result":
            h.send(200, b'{"video": {"url": "', "application/json", {"x-fal-request-id": job.id})
        else:
            _queue_json(h, 200, self._result_json(job), job)

    def _cancel(self, h: Handler, rec: Recorded, app: str, job_id: str) -> None:
        if not h.authorized(DENY):
            return
        with self.lock:
            job = self.find_job(job_id)
            if job is None or job.app != app:
                answer = (404, {"status": "NOT_FOUND"})
            elif job.outcome is not None:
                answer = (400, {"status": "ALREADY_COMPLETED"})
            else:
                job.outcome = "cancelled"
                answer = (202, {"status": "CANCELLATION_REQUESTED"})
        h.send_json(*answer)

    def _video(self, h: Handler, rec: Recorded, job_id: str) -> None:
        job = self.find_job(job_id)
        if job is None or job.scenario == "expired":  # the CDN object's lifecycle ended
            h.send(404, b"Not Found", "text/plain")
        else:
            self.serve_video(h, job, self._video_of(job))

    def _video_of(self, job: FalJob) -> bytes:
        return job.extra.get("video", self.video)

    def _render_audio(self, job: FalJob) -> None:
        """Audio-to-video: the answer follows the uploaded audio (match_audio_length), with it as the sound."""
        url = job.input.get("audio_url", "")
        audio = self.files.get(url[len(self.url):]) if url.startswith(self.url) else None
        if audio is not None:
            job.extra["video"] = clip_for_audio(audio, Path(url).suffix or ".wav")
            with tempfile.TemporaryDirectory() as folder:
                clip = Path(folder) / "clip.mp4"
                clip.write_bytes(job.extra["video"])
                job.extra["frames"] = probe_video(clip)["frames"]

    # ------------------------------------------------------------------------------------------------ upload

    def _token(self, h: Handler, rec: Recorded) -> None:
        """Step 1 of fal-client's default upload: a CDN token for `fal-cdn-v3` (spec §3.10)."""
        if not h.authorized(DENY):
            return
        if parse_qs(rec.query).get("storage_type") != ["fal-cdn-v3"]:
            h.send_json(422, {"detail": "storage_type must be fal-cdn-v3 (fake)"})
            return
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        expires = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        h.send_json(200, {"token": token, "token_type": "Bearer", "base_url": self.url, "expires_at": expires})

    def _cdn_authorized(self, h: Handler) -> bool:
        kind, _, token = (h.headers.get("Authorization") or "").partition(" ")
        if kind == "Bearer" and token in self.tokens:
            return True
        h.send_json(401, {"detail": "Invalid or expired CDN token"})
        return False

    def _store(self, h: Handler, data: bytes) -> str:
        name = re.sub(r"[^\w.-]", "_", h.headers.get("X-Fal-File-Name") or "upload.bin")
        path = f"/files/{secrets.token_hex(8)}/{name}"
        with self.lock:
            self.files[path] = data
        return path

    def _cdn_upload(self, h: Handler, rec: Recorded) -> None:
        if not self._cdn_authorized(h):
            return
        status = self.settings.cdn_upload_status
        if status:
            h.send_json(status, {"detail": f"CDN upload failed (fake {status})"})
            return
        h.send_json(200, {"access_url": self.url + self._store(h, rec.body)})

    def _multipart_create(self, h: Handler, rec: Recorded) -> None:
        if not self._cdn_authorized(h):
            return
        path, upload_id = self._store(h, b""), secrets.token_hex(8)
        with self.lock:
            self._multipart[upload_id] = {"path": path, "parts": {}}
        h.send_json(200, {"access_url": self.url + path, "uploadId": upload_id})

    def _multipart_part(self, h: Handler, rec: Recorded, file_id: str, name: str, upload_id: str,
                        number: str) -> None:
        if not self._cdn_authorized(h):
            return
        upload = self._multipart.get(upload_id)
        if upload is None or upload["path"] != f"/files/{file_id}/{name}":
            h.send_json(404, {"detail": "Upload not found"})
            return
        etag = f'"{hashlib.md5(rec.body, usedforsecurity=False).hexdigest()}"'
        upload["parts"][int(number)] = (etag, rec.body)
        h.send(200, b"", "text/plain", {"ETag": etag})

    def _multipart_complete(self, h: Handler, rec: Recorded, file_id: str, name: str, upload_id: str) -> None:
        if not self._cdn_authorized(h):
            return
        upload = self._multipart.get(upload_id)
        parts = rec.json.get("parts") if isinstance(rec.json, dict) else None
        if upload is None or not isinstance(parts, list):
            h.send_json(400, {"detail": "Unknown upload or no parts"})
            return
        stored = upload["parts"]
        numbers = [p.get("partNumber") for p in parts]
        if numbers != list(range(1, len(stored) + 1)) or any(stored[p["partNumber"]][0] != p.get("etag")
                                                              for p in parts):
            h.send_json(400, {"detail": "Parts do not match the uploaded ones (fake)"})
            return
        with self.lock:
            self.files[upload["path"]] = b"".join(stored[n][1] for n in numbers)
        h.send_json(200, {"access_url": self.url + upload["path"]})

    def _initiate(self, h: Handler, rec: Recorded) -> None:
        """fal-client's fallback repository `fal`: a signed PUT URL and the file's public URL."""
        if not h.authorized(DENY):
            return
        status = self.settings.storage_upload_status
        if status:
            h.send_json(status, {"detail": f"storage initiate failed (fake {status})"})
            return
        body = rec.json if isinstance(rec.json, dict) else {}
        name = re.sub(r"[^\w.-]", "_", str(body.get("file_name") or "upload.bin"))
        file_id = secrets.token_hex(8)
        h.send_json(200, {"upload_url": f"{self.url}/gcs/{file_id}/{name}?X-Goog-Signature=fake",
                          "file_url": f"{self.url}/files/{file_id}/{name}"})

    def _gcs_put(self, h: Handler, rec: Recorded, file_id: str, name: str) -> None:
        if "Authorization" in h.headers:  # a signed URL: a second credential is an error at GCS
            h.send(400, b"<Error><Code>InvalidAuthentication</Code></Error>", "application/xml")
            return
        with self.lock:
            self.files[f"/files/{file_id}/{name}"] = rec.body
        h.send(200, b"", "text/plain")

    def _uploaded_file(self, h: Handler, rec: Recorded, file_id: str, name: str) -> None:
        data = self.files.get(f"/files/{file_id}/{name}")
        if data is None:
            h.send(404, b"Not Found", "text/plain")
        else:
            h.send(200, data, "application/octet-stream")


def _queue_json(h: Handler, status: int, payload, job: FalJob, headers: dict | None = None) -> None:
    """A queue answer: it carries x-fal-request-id (ingress errors do not: that is how fal-client tells them apart)."""
    h.send_json(status, payload, {"x-fal-request-id": job.id, **(headers or {})})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _route_kind(path: str) -> str:
    if path.startswith(("/storage/", "/files/", "/cdn/", "/gcs/")):
        return "storage"
    if "/requests/" in path:
        return "queue"
    return "submit"


def _validate(endpoint: str, body) -> list[dict]:
    """pydantic-style `detail` items for what the endpoint would refuse (unknown fields too: see the docstring)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    allowed, required = ENDPOINTS[endpoint]
    problems = [{"loc": ["body", name], "msg": "Field required", "type": "missing"}
                for name in sorted(required - set(body))]
    for name, value in body.items():
        problem = _field_problem(endpoint, name, value) if name in allowed else (
            "Extra inputs are not permitted", "extra_forbidden")
        if problem:
            problems.append({"loc": ["body", name], "msg": problem[0], "type": problem[1]})
    return problems


def _field_problem(endpoint: str, name: str, value) -> tuple[str, str] | None:
    """(msg, type) when a documented field's value is out of its range or list."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name in _URL_FIELDS:
        return None if isinstance(value, str) and value.startswith(("http", "data:")) else (
            "Input should be a valid URL", "url_parsing")
    if endpoint == "fal-ai/ltx-2.3/extend-video":
        limits = {"duration": (2, 20), "context": (0, 20)}.get(name)
        ok = limits is None or number and limits[0] <= value <= limits[1]
        return None if ok else (f"Input should be between {limits[0]} and {limits[1]}", "range")
    if endpoint.startswith("fal-ai/ltx-2.3/"):
        choices = _PROXY_CHOICES.get(name) or _CHOICES.get(name)
        if name == "duration" and endpoint.endswith("/fast"):
            choices = _FAST_DURATIONS
        return None if not choices or value in choices else (f"Input should be one of {choices}", "enum")
    if name in _RANGES:
        low, high = _RANGES[name]
        if not (number and low <= value <= high):
            return f"Input should be between {low} and {high}", "range"
        if name == "num_frames" and (value - 1) % 8:
            return "num_frames must be 8n+1 (fake: LTX's rule)", "value_error"
    if name in _CHOICES and value not in _CHOICES[name]:
        return f"Input should be one of {_CHOICES[name]}", "enum"
    if name == "video_size" and not (value == "auto" or isinstance(value, dict) and set(value) == {"width", "height"}
                                     and all(isinstance(v, int) and v > 0 and v % 32 == 0 for v in value.values())):
        return "video_size must be auto or {width, height} (fake: multiples of 32)", "value_error"
    if name == "sync_mode" and value is not False:
        return "fake: the pack never asks for sync_mode (it inlines the video)", "value_error"
    return None
