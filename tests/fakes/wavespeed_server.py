"""A local stand-in for WaveSpeedAI's v3 API (spec hosted-apis.md §4, §10.1, §10.3), on 127.0.0.1 only.

It speaks the wire protocol the official SDK (`wavespeed==2.0.5`) and our client use: the `{code, message, data}`
envelope, submit → `created` → `processing` → `completed` | `failed` by poll count, both upload flows (ticket +
unauthenticated presigned PUT, and the legacy multipart), outputs on a separate "CDN" path serving a real tiny
mp4, sync mode, and the documented error shapes. Every request is recorded so tests can assert e.g. "exactly one
submit" or "no Authorization on the PUT".

Failure modes are chosen per job by a prompt keyword `[ws:<scenario>]`, the header `X-Fake-Scenario` on the
submit or `fake.scenario` (see SCENARIOS), so one server drives every test. Where the real service is
undocumented the fake picks a plausible shape and says so ([UNK] below). It is stricter than the real API is known
to be in one place on purpose: unknown input fields are refused with 400, so a client sending a wrong field name
fails here.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from fakes.server import FakeApi, Handler, Job, Recorded, Settings

SCENARIOS = {
    "ok": "created → processing → completed with one mp4 URL",
    "slow-queue": "stays `created` for `slow_queue_polls` polls",
    "fail": "ends `failed` with an error string",
    "never": "stays `processing` forever",
    "poll-503": "the first `burst` polls answer 503 (gateway text body) with Retry-After: 0",
    "poll-429": "the first `burst` polls answer 429 (envelope body) with Retry-After: 0",
    "malformed": "every poll answers HTTP 200 with truncated JSON",
    "malformed-once": "the first poll answers HTTP 200 with truncated JSON (one corrupted body), then as ok",
    "drop-poll": "the first `burst` polls drop the connection without an answer",
    "drop-submit": "the submit creates the job (it bills), then drops the connection",
    "hold-submit": "the submit creates the job (it bills), holds its answer `hold_s` seconds, then drops the "
                   "connection: a client killed in that window never learns the job id",
    "submit-500": "the submit answers 500 and creates nothing",
    "malformed-submit": "the submit creates the job (it bills), then answers HTTP 200 with truncated JSON",
    "no-output": "ends `completed` with `outputs: []`",
    "oversized": "the output claims 16 GiB (Content-Length) and streams zeros",
    "endless": "the output has no Content-Length and streams zeros until the client hangs up",
    "oversized-chunked": "the output has no Content-Length and streams 4 MiB of zeros, then closes",
    "slow-download": "the output sends 1 KiB, then stalls",
    "wrong-type": "the output is served as text/html",
    "redirect-file": "the output URL redirects to file:///etc/passwd",
    "redirect-private": "the output URL redirects to http://10.0.0.7/ (a private address)",
    "redirect-metadata": "the output URL redirects to http://169.254.169.254/ (link-local cloud metadata)",
    "expired": "the output URL answers 403 with the S3 'Request has expired' XML",
}

_RESOLUTIONS = ("480p", "720p", "1080p")
_ASPECTS = ("16:9", "9:16")
_SEED = (-1, 2147483647)
_FLAGS = {"enable_sync_mode", "enable_base64_output"}
# The documented input fields per model (spec §4.2). [INF] ltx-2.3 text-to-video takes aspect_ratio like the 19B one.
_MODELS = {
    "wavespeed-ai/ltx-2-19b/image-to-video": {"required": {"image", "prompt"}, "optional": {"resolution", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2-19b/text-to-video": {"required": {"prompt"}, "optional": {"resolution", "aspect_ratio", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2.3/image-to-video": {"required": {"image", "prompt"}, "optional": {"resolution", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2.3/text-to-video": {"required": {"prompt"}, "optional": {"resolution", "aspect_ratio", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2.3/extend": {"required": {"video"}, "optional": {"prompt", "duration"}, "duration": (1, 20)},
}

# [UNK] the exact 401 text; the hint mirrors the docs (keys work only after the first top-up).
DENY = {"code": 401, "message": "Unauthorized: invalid API key, or the account has not been topped up yet", "data": None}


@dataclass
class Upload:
    filename: str
    size: int
    content_type: str | None
    data: bytes | None = None


@dataclass
class WaveSpeedSettings(Settings):
    ticket_uploads: bool = True  # False: POST /media/uploads answers 404 (an older gateway), only multipart works
    upload_error: str | None = None  # answer uploads HTTP 200 with envelope code 400 and this message


class WaveSpeedServer(FakeApi):
    """The fake, as a context manager: `with WaveSpeedServer(tmp_path) as ws: ws.url ...`."""

    tag = "ws"
    SCENARIOS = SCENARIOS
    SUBMIT = ("POST", r"/api/v3/(?!media/).+")
    POLL = ("GET", r"/api/v[23]/predictions/\w+(?:/result)?")
    DOWNLOAD = ("GET", r"/cdn/outputs/.+")

    def __init__(self, workdir: Path, key: str = "ws-test-key"):
        super().__init__(key)
        self.settings = WaveSpeedSettings()
        self.uploads: dict[str, Upload] = {}
        self.video_path = Path(workdir) / "wavespeed-result.mp4"  # the result clip as a file, for tests that upload it
        self.video_path.parent.mkdir(parents=True, exist_ok=True)
        self.video_path.write_bytes(self.video)

    def routes(self):
        return [
            ("POST", r"/api/v3/media/uploads", self._ticket),
            ("POST", r"/api/v[23]/media/upload/binary", self._multipart),
            ("PUT", r"/s3/(\w+)", self._presigned_put),
            ("GET", r"/files/(\w+)/[^/]+", self._uploaded_file),
            ("GET", r"/cdn/outputs/(\w+)\.mp4", self._output),
            ("GET", r"/api/v[23]/predictions/(\w+)(?:/result)?", self._poll),
            ("POST", r"/api/v3/(.+)", self._submit),
        ]

    def not_found(self, h: Handler, rec: Recorded) -> None:
        _error(h, 404, f"Not found: {rec.method} {rec.path}")

    def _prediction(self, job: Job, status: str, outputs=(), error: str = "") -> dict:
        return {
            "id": job.id,
            "model": job.endpoint,
            "status": status,
            "outputs": list(outputs),
            "urls": {"get": f"{self.url}/api/v3/predictions/{job.id}/result"},
            "has_nsfw_contents": [False] * len(outputs),
            "created_at": job.created_at,
            "error": error,
            "timings": {"inference": 4200 if status == "completed" else 0},
        }

    def _finished(self, job: Job) -> dict:
        if job.scenario == "fail":
            return self._prediction(job, "failed", error="Content policy violation: the prompt was flagged (fake)")
        if job.scenario == "no-output":
            return self._prediction(job, "completed")
        return self._prediction(job, "completed", [f"{self.url}/cdn/outputs/{job.id}.mp4"])

    # ------------------------------------------------------------------------------------------------ submit

    def _submit(self, h: Handler, rec: Recorded, model: str) -> None:
        if not h.authorized(DENY):
            return
        spec = _MODELS.get(model)
        if spec is None:
            _error(h, 404, f"model {model} not found")
            return
        if not isinstance(rec.json, dict):
            _error(h, 400, "request body must be a JSON object")
            return
        problem = _validate(rec.json, spec)
        if problem:
            _error(h, 400, problem)
            return
        body = rec.json
        if body.get("enable_base64_output") and "webhook" in rec.query:
            h.send_json(400, {"error": "webhook callback does not support base64 output, please disable it"})
            return
        scenario = self.pick_scenario(h, body.get("prompt"))
        if scenario is None:
            return
        if scenario == "submit-500":
            h.send_json(500, {"error": "internal server error (fake)"})
            return
        job = self.new_job(model, body, scenario, secrets.token_hex(16))
        if self.withhold_answer(h, job):
            return
        if scenario == "malformed-submit":
            h.send(200, b'{"code": 200, "message": "success", "data": {"id": "' + job.id.encode(), "application/json")
            return
        if body.get("enable_sync_mode"):
            if scenario == "never":  # the server-side sync wait ran out; the task goes on [SRC, SDK tests]
                data = self._prediction(job, "processing", error="Sync mode timed out after 90 seconds. "
                                        "The prediction is still processing asynchronously.")
                data["code"] = 5004
            else:
                job.polls = 10**6
                data = self._finished(job)
            h.send_json(200, _envelope(data))
            return
        h.send_json(200, _envelope(self._prediction(job, "created")))

    # -------------------------------------------------------------------------------------------------- poll

    def _poll(self, h: Handler, rec: Recorded, job_id: str) -> None:
        if not h.authorized(DENY):
            return
        job = self.find_job(job_id)
        if job is None:
            _error(h, 404, f"prediction {job_id} not found")
            return
        if self.poll_misbehaves(h, job, _envelope(None, 429, "Too many requests: rate limit exceeded")):
            return
        phase = self.phase(job)
        if phase == "done":
            data = self._finished(job)
        else:
            data = self._prediction(job, "created" if phase == "queued" else "processing")
        h.send_json(200, _envelope(data))

    # ------------------------------------------------------------------------------------------------ upload

    def _ticket(self, h: Handler, rec: Recorded) -> None:
        """SDK 2.x flow step 1: a presigned PUT and the public URL the file will have (spec §4.5)."""
        if not h.authorized(DENY):
            return
        if not self.settings.ticket_uploads:
            _error(h, 404, "Not found: POST /api/v3/media/uploads")
            return
        if self.settings.upload_error:
            h.send_json(200, _envelope(None, 400, self.settings.upload_error))
            return
        body = rec.json if isinstance(rec.json, dict) else {}
        name, size = body.get("filename"), body.get("size")
        if not isinstance(name, str) or not name or not isinstance(size, int) or size < 0:
            h.send_json(200, _envelope(None, 400, "filename and size are required"))
            return
        token = secrets.token_hex(12)
        content_type = body.get("content_type")
        with self.lock:
            self.uploads[token] = Upload(Path(name).name, size, content_type)
        headers = {"Content-Type": content_type} if content_type else {}
        h.send_json(200, _envelope({
            "upload": {"method": "PUT", "url": f"{self.url}/s3/{token}?X-Amz-Signature={secrets.token_hex(8)}",
                       "headers": headers},
            "download_url": f"{self.url}/files/{token}/{Path(name).name}",
        }))

    def _presigned_put(self, h: Handler, rec: Recorded, token: str) -> None:
        """Step 2, S3-like: no Authorization allowed, the signed Content-Type must match."""
        upload = self.uploads.get(token)
        if upload is None:
            _s3_error(h, 403, "AccessDenied", "Invalid or expired upload URL")
        elif "Authorization" in h.headers:
            _s3_error(h, 400, "InvalidArgument", "Only one auth mechanism allowed")
        elif upload.content_type and h.headers.get("Content-Type") != upload.content_type:
            _s3_error(h, 403, "SignatureDoesNotMatch", "Content-Type does not match the signed request")
        else:
            upload.data = rec.body
            h.send(200, b"", "text/plain", {"ETag": f'"{secrets.token_hex(8)}"'})

    def _multipart(self, h: Handler, rec: Recorded) -> None:
        """The legacy flow: multipart field `file` → `{type, download_url, filename, size}` (spec §4.5)."""
        if not h.authorized(DENY):
            return
        if self.settings.upload_error:
            h.send_json(200, _envelope(None, 400, self.settings.upload_error))
            return
        part = _multipart_file(h.headers.get("Content-Type", ""), rec.body)
        if part is None:
            h.send_json(200, _envelope(None, 400, "multipart field 'file' is required"))
            return
        name, content_type, data = part
        token = secrets.token_hex(12)
        with self.lock:
            self.uploads[token] = Upload(name, len(data), content_type, data)
        kind = (content_type or "application/octet-stream").split("/")[0]
        h.send_json(200, _envelope({"type": kind if kind in ("image", "video", "audio") else "file",
                                    "download_url": f"{self.url}/files/{token}/{name}",
                                    "filename": name, "size": len(data)}))

    def _uploaded_file(self, h: Handler, rec: Recorded, token: str) -> None:
        upload = self.uploads.get(token)
        if upload is None or upload.data is None:
            _s3_error(h, 404, "NoSuchKey", "The specified key does not exist.")
        else:
            h.send(200, upload.data, upload.content_type or "application/octet-stream")

    def _output(self, h: Handler, rec: Recorded, job_id: str) -> None:
        """The result file on the "CDN": no auth needed; the job's scenario picks how it misbehaves."""
        self.serve_video(h, self.find_job(job_id))


def _envelope(data, code: int = 200, message: str = "success") -> dict:
    return {"code": code, "message": message, "data": data}


def _error(h: Handler, status: int, message: str) -> None:
    """The documented error body `{"code": 4xx, "message", "data": null}` [DOC][INF]."""
    h.send_json(status, _envelope(None, status, message))


def _s3_error(h: Handler, status: int, code: str, message: str) -> None:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    h.send(status, body.encode(), "application/xml")


def _validate(body: dict, spec: dict) -> str | None:
    """The first problem with a submit body, as WaveSpeed-style 400 text; None when valid."""
    allowed = spec["required"] | spec["optional"] | _FLAGS
    unknown = sorted(set(body) - allowed)
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    for name in sorted(spec["required"]):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return f"{name} is required"
    for name in ("image", "video"):
        if name in body and not re.match(r"https?://", body[name]):
            return f"{name} must be an http(s) URL"
    if "resolution" in body and body["resolution"] not in _RESOLUTIONS:
        return f"resolution must be one of {', '.join(_RESOLUTIONS)}"
    if "aspect_ratio" in body and body["aspect_ratio"] not in _ASPECTS:
        return f"aspect_ratio must be one of {', '.join(_ASPECTS)}"
    lo, hi = spec["duration"]
    if "duration" in body and (type(body["duration"]) is not int or not lo <= body["duration"] <= hi):
        return f"duration must be an integer from {lo} to {hi}"
    if "seed" in body and (type(body["seed"]) is not int or not _SEED[0] <= body["seed"] <= _SEED[1]):
        return f"seed must be an integer from {_SEED[0]} to {_SEED[1]}"
    for flag in _FLAGS:
        if flag in body and not isinstance(body[flag], bool):
            return f"{flag} must be a boolean"
    return None


def _multipart_file(content_type: str, body: bytes) -> tuple[str, str | None, bytes] | None:
    """The `file` part of a multipart/form-data body: (filename, content type, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_filename() or "upload", part.get_content_type(), part.get_payload(decode=True) or b""
    return None
