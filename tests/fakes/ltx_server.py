"""A local stand-in for Lightricks' LTX API v2 (spec hosted-apis.md §7, §10.6), on 127.0.0.1 only.

Submit `POST /v2/{text-to-video|image-to-video}` → `202 {"id", "created_at"}`; poll `GET /v2/{op}/{id}` going
`pending` → `processing` → `completed` (`result.video_url`, a signed-looking URL on a "storage" path serving a real
tiny mp4) | `failed` (`error: {type, message}`), 404 after the (configurable) 24 h retention. Upload is
`POST /v1/upload` → `{upload_url, storage_uri, expires_at, required_headers}`, then a PUT of the bytes to
`upload_url` with those headers and no API key (docs.ltx.video). Errors use `{"type": "error", "error": {"type",
"message"}}`; every answer carries `x-request-id`. Fields are checked against the LTX-2 rules (models ltx-2-fast /
ltx-2-pro; 1920x1080, 2560x1440, 3840x2160; 25 or 50 fps; 6, 8 or 10 s, up to 20 s in even steps for ltx-2-fast at
1920x1080 and 25 fps; prompts up to 5000 characters); unknown fields are refused. The v1 synchronous endpoints are
not emulated: the client never uses them.

Failure modes: a prompt keyword `[ltx:<scenario>]`, the submit header `X-Fake-Scenario`, or `fake.scenario`.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta, timezone

from fakes.server import COMMON_SCENARIOS, FakeApi, Handler, Recorded, iso_now

OPS = ("text-to-video", "image-to-video")
MODELS = ("ltx-2-fast", "ltx-2-pro")
RESOLUTIONS = ("1920x1080", "2560x1440", "3840x2160")
FIELDS = {"prompt", "model", "duration", "resolution", "fps", "generate_audio", "camera_motion"}
SIZE_HEADER = "x-goog-content-length-range"
SUBMIT_ERRORS = {  # scenario -> (HTTP status, error.type, message, extra headers)
    "submit-402": (402, "insufficient_funds_error", "Insufficient funds. Required: 120 credits", {}),
    "submit-413": (413, "request_too_large", "Request entity too large", {}),
    "submit-429": (429, "concurrency_limit_error", "Concurrency limit of 2 reached", {"Retry-After": "1"}),
    "submit-500": (500, "api_error", "Internal server error", {}),
}


def envelope(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


class LtxServer(FakeApi):
    tag = "ltx"
    SCENARIOS = {
        **COMMON_SCENARIOS,
        **{name: f"the submit answers {status} {kind} and creates nothing"
           for name, (status, kind, _m, _h) in SUBMIT_ERRORS.items()},
        "poll-529": "the first `burst` polls answer 529 overloaded_error with Retry-After: 0",
        "filtered": "ends failed with content_filtered_error",
    }
    SUBMIT = ("POST", r"/v2/[\w-]+")
    POLL = ("GET", r"/v2/.+")
    DOWNLOAD = ("GET", r"/results/.+")

    def __init__(self, key: str = "ltx-test-key-0123456789"):
        super().__init__(key)
        self.uploads: dict[str, bytes | None] = {}  # token -> bytes once PUT

    def routes(self):
        return [
            ("POST", r"/v1/upload", self._upload_ticket),
            ("PUT", r"/storage/(\w+)", self._upload_put),
            ("POST", r"/v2/([\w-]+)", self._submit),
            ("GET", r"/v2/([\w-]+)/([\w-]+)", self._poll),
            ("GET", r"/results/([\w-]+)\.mp4", self._result_file),
        ]

    def response_headers(self) -> dict:
        return {"x-request-id": str(uuid.uuid4())}

    # -- upload ------------------------------------------------------------------------------------------------

    def _upload_ticket(self, h: Handler, rec: Recorded) -> None:
        if not h.authorized(envelope("authentication_error", "Invalid API key")):
            return
        token = secrets.token_hex(12)
        with self.lock:
            self.uploads[token] = None
        expires = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="seconds")
        h.send_json(200, {"upload_url": f"{self.url}/storage/{token}?X-Goog-Signature={secrets.token_hex(16)}",
                          "storage_uri": f"gs://ltx-api-uploads/{token}", "expires_at": expires,
                          "required_headers": {SIZE_HEADER: "0,104857600"}})

    def _upload_put(self, h: Handler, rec: Recorded, token: str) -> None:
        """The pre-signed PUT, GCS-like: no Authorization allowed, the signed size header required."""
        if token not in self.uploads or "X-Goog-Signature" not in rec.query:
            h.send(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
        elif "Authorization" in h.headers or h.headers.get(SIZE_HEADER) != "0,104857600" or not rec.body:
            h.send(400, b"<Error><Code>InvalidArgument</Code></Error>", "application/xml")
        else:
            with self.lock:
                self.uploads[token] = rec.body
            h.send(200, b"", "text/plain")

    # -- jobs --------------------------------------------------------------------------------------------------

    def _submit(self, h: Handler, rec: Recorded, op: str) -> None:
        if not h.authorized(envelope("authentication_error", "Invalid API key")):
            return
        if op not in OPS:
            h.send_json(404, envelope("not_found_error", f"Unknown endpoint /v2/{op}"))
            return
        problem = self._problem(op, rec.json)
        if problem:
            h.send_json(400, envelope("invalid_request_error", problem))
            return
        scenario = self.pick_scenario(h, rec.json["prompt"])
        if scenario is None:
            return
        if scenario in SUBMIT_ERRORS:
            status, kind, message, headers = SUBMIT_ERRORS[scenario]
            h.send_json(status, envelope(kind, message), headers)
            return
        job = self.new_job(op, rec.json, scenario)
        if self.withhold_answer(h, job):
            return
        h.send_json(202, {"id": job.id, "created_at": job.created_at})

    def _poll(self, h: Handler, rec: Recorded, op: str, job_id: str) -> None:
        if not h.authorized(envelope("authentication_error", "Invalid API key")):
            return
        job = self.find_job(job_id)
        if job is None or job.endpoint != op:
            h.send_json(404, envelope("not_found_error", f"Job {job_id} not found"))
            return
        with self.lock:
            overloaded = job.scenario == "poll-529" and job.burst_left > 0
            if overloaded:
                job.burst_left -= 1
        if overloaded:
            h.send_json(529, envelope("overloaded_error", "Overloaded"), {"Retry-After": "0"})
            return
        if self.poll_misbehaves(h, job, envelope("rate_limit_error", "Too many requests")):
            return
        phase = self.phase(job)
        data = {"id": job.id, "status": {"queued": "pending", "running": "processing"}.get(phase, "completed"),
                "created_at": job.created_at, "completed_at": None, "result": None, "error": None}
        if phase == "done" and job.scenario in ("fail", "filtered"):
            error = (envelope("content_filtered_error", "The prompt was flagged by the content filter")
                     if job.scenario == "filtered" else envelope("api_error", "Generation failed (fake)"))
            data.update(status="failed", completed_at=iso_now(), error=error["error"])
        elif phase == "done":
            signature = secrets.token_hex(16)
            data.update(completed_at=iso_now(),
                        result={"video_url": f"{self.url}/results/{job.id}.mp4?X-Goog-Signature={signature}"})
        h.send_json(200, data)

    def _result_file(self, h: Handler, rec: Recorded, job_id: str) -> None:
        self.serve_video(h, self.find_job(job_id))

    def _problem(self, op: str, body) -> str | None:
        """The first problem with a submit body (LTX-2 rules); None when valid."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        allowed = FIELDS | ({"image_uri"} if op == "image-to-video" else set())
        unknown = sorted(set(body) - allowed)
        if unknown:
            return f"Unknown field(s): {', '.join(unknown)}"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 5000:
            return "prompt must be 1-5000 characters"
        if body.get("model") not in MODELS:
            return f"model must be one of {', '.join(MODELS)}"
        if body.get("resolution") not in RESOLUTIONS:
            return f"resolution must be one of {', '.join(RESOLUTIONS)}"
        fps = body.get("fps", 25)
        if fps not in (25, 50) or type(fps) is not int:
            return "fps must be 25 or 50"
        long_ok = body["model"] == "ltx-2-fast" and body["resolution"] == "1920x1080" and fps == 25
        durations = (6, 8, 10, 12, 14, 16, 18, 20) if long_ok else (6, 8, 10)
        if type(body.get("duration")) is not int or body["duration"] not in durations:
            return f"duration must be one of {', '.join(map(str, durations))} for this model, resolution and fps"
        if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
            return "generate_audio must be a boolean"
        if op == "image-to-video":
            return self._image_problem(body.get("image_uri"))
        return None

    def _image_problem(self, uri) -> str | None:
        if not isinstance(uri, str):
            return "image_uri is required"
        stored = re.fullmatch(r"gs://ltx-api-uploads/(\w+)", uri)
        if stored:
            return None if self.uploads.get(stored.group(1)) else "image_uri names no uploaded file"
        if re.match(r"https?://", uri) or re.match(r"data:image/(png|jpeg|webp);base64,", uri):
            return None
        return "image_uri must be a URL, a data URI or a storage_uri from /v1/upload"
