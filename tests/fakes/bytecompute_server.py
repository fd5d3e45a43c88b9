"""A local stand-in for ByteCompute's "Lightricks/LTX-2" video API (spec hosted-apis.md §6, §10.5), on 127.0.0.1.

Submit `POST /v1/text-to-video` | `POST /v1/image-to-video` (multipart/form-data with an `image` file or
`image_uri`, or JSON with `image_uri`) → `{"id", "status": "queued", "adjustments", "created_at"}`; status is a
POST to `/v1/jobs/{id}`, answered 409 while the job is queued, then `processing`, then `completed` | `failed`;
the video is `POST /v1/jobs/{id}/download` (409 before completion, 404 for unknown ids and after retention).
Errors use the envelope `{"type": "error", "error": {"type", "message"}}`; a missing prompt or an unsupported
image is a 400. Sizes and durations are never refused: they are adjusted and reported in `adjustments`, and the
served mp4 has the adjusted size and frame rate (9 frames long, to keep tests fast).

ASSUMED, not documented [UNK]/[INF]: the JSON shapes beyond `id` and `adjustments`; the adjustments list shape
`[{"field", "requested", "applied", "reason"}]`; the adjustment order (duration clamped to 4..10, fps to 25/50,
size to multiples of 32 within 1920x1088 either way round, then a pixel x second budget of 1920x1088 x 25 fps x
10 s that shortens the duration, then lowers the fps); 409 on the status call before the job runs.

Failure modes: a prompt keyword `[bc:<scenario>]`, the submit header `X-Fake-Scenario`, or `fake.scenario`.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import math
import re

from PIL import Image

from fakes.server import COMMON_SCENARIOS, FakeApi, Handler, Job, Recorded, clip_bytes, iso_now

MODEL = "Lightricks/LTX-2"
FIELDS = {"model", "prompt", "duration", "resolution", "fps", "image", "image_uri"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_LONG, MAX_SHORT = 1920, 1088
BUDGET = 1920 * 1088 * 25 * 10  # pixels x frames [INF]


def envelope(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


class ByteComputeServer(FakeApi):
    tag = "bc"
    SCENARIOS = {**COMMON_SCENARIOS, "expired": "the download answers 404 not_found (the job expired after 24 h)"}
    SUBMIT = ("POST", r"/v1/(text|image)-to-video")
    POLL = ("POST", r"/v1/jobs/[\w-]+")
    DOWNLOAD = ("POST", r"/v1/jobs/[\w-]+/download")

    def routes(self):
        return [
            ("POST", r"/v1/(text-to-video|image-to-video)", self._submit),
            ("POST", r"/v1/jobs/([\w-]+)/download", self._download),
            ("POST", r"/v1/jobs/([\w-]+)", self._status),
        ]

    # -- protocol ----------------------------------------------------------------------------------------------

    def _submit(self, h: Handler, rec: Recorded, op: str) -> None:
        if not h.authorized(envelope("authentication_error", "Invalid API key")):
            return
        fields = _fields(h.headers.get("Content-Type", ""), rec)
        problem = fields if isinstance(fields, str) else _problem(op, fields)
        if problem:
            h.send_json(400, envelope("invalid_request_error", problem))
            return
        scenario = self.pick_scenario(h, fields["prompt"])
        if scenario is None:
            return
        if scenario == "submit-500":
            h.send_json(500, envelope("api_error", "Internal server error"))
            return
        settings, adjustments = _adjust(fields)
        job = self.new_job(op, {k: v for k, v in fields.items() if k != "image"}, scenario)
        video = clip_bytes(settings["width"], settings["height"], settings["fps"])  # "rendered" at the adjusted size
        job.extra.update(video=video, adjustments=adjustments or None)
        if self.withhold_answer(h, job):
            return
        h.send_json(200, {"id": job.id, "status": "queued", "adjustments": job.extra["adjustments"],
                          "created_at": job.created_at})

    def _known(self, h: Handler, job_id: str) -> Job | None:
        if not h.authorized(envelope("authentication_error", "Invalid API key")):
            return None
        job = self.find_job(job_id)
        if job is None:
            h.send_json(404, envelope("not_found", f"Job '{job_id}' not found"))
        return job

    def _status(self, h: Handler, rec: Recorded, job_id: str) -> None:
        job = self._known(h, job_id)
        if job is None or self.poll_misbehaves(h, job, envelope("rate_limit_error", "Rate limit exceeded")):
            return
        phase = self.phase(job)
        if phase == "queued":
            h.send_json(409, envelope("conflict", f"Job '{job.id}' is not ready yet"))
            return
        data = {"id": job.id, "status": "processing", "adjustments": job.extra["adjustments"],
                "created_at": job.created_at}
        if phase == "done" and job.scenario == "fail":
            data.update(status="failed", error=envelope("api_error", "Generation failed: the GPU worker crashed "
                                                        "(fake)")["error"])
        elif phase == "done":
            job.extra["done"] = True
            data.update(status="completed", completed_at=iso_now())
        h.send_json(200, data)

    def _download(self, h: Handler, rec: Recorded, job_id: str) -> None:
        job = self._known(h, job_id)
        if job is None:
            return
        if job.scenario == "expired":
            h.send_json(404, envelope("not_found", f"Job '{job.id}' not found"))
        elif not job.extra.get("done"):
            h.send_json(409, envelope("conflict", "Job is not completed yet"))
        else:
            self.serve_video(h, job, job.extra["video"])


def _fields(content_type: str, rec: Recorded) -> dict | str:
    """The submit's fields from multipart/form-data (files as (content type, bytes)) or JSON; a str on error."""
    if content_type.startswith("application/json"):
        return rec.json if isinstance(rec.json, dict) else "Request body must be a JSON object"
    if not content_type.startswith("multipart/form-data"):
        return "Content-Type must be multipart/form-data or application/json"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + rec.body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        fields[name] = (part.get_content_type(), data) if part.get_filename() else data.decode()
    return fields


def _problem(op: str, fields: dict) -> str | None:
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}"
    if fields.get("model") != MODEL:
        return f"model must be {MODEL!r}"
    if not str(fields.get("prompt") or "").strip():
        return "prompt is required"
    images = [name for name in ("image", "image_uri") if name in fields]
    if op == "text-to-video" and images:
        return "text-to-video takes no image"
    if op == "image-to-video":
        if len(images) != 1:
            return "exactly one of image or image_uri is required"
        if "image" in fields and not isinstance(fields["image"], tuple):
            return "image must be a file (multipart/form-data); send a URL or data URI as image_uri"
        content_type, data = fields["image"] if "image" in fields else _decode_uri(fields["image_uri"])
        if content_type not in IMAGE_TYPES or not _is_image(data):
            return "Unsupported image format: use PNG, JPEG or WebP"
    try:
        float(fields.get("duration", 5))
        int(fields.get("fps", 25))
    except ValueError:
        return "duration and fps must be numbers"
    if "resolution" in fields and not re.fullmatch(r"\d+x\d+", str(fields["resolution"])):
        return "resolution must be WIDTHxHEIGHT"
    return None


def _decode_uri(uri: str) -> tuple[str, bytes | None]:
    """(content type, bytes) of a data URI; a URL is taken as a PNG (the fake does not fetch it)."""
    if re.match(r"https?://", uri):
        return "image/png", None
    match = re.fullmatch(r"data:([\w/+.-]+);base64,(.*)", uri, re.S)
    if not match:
        return "", b""
    try:
        return match.group(1), base64.b64decode(match.group(2), validate=True)
    except ValueError:
        return "", b""


def _is_image(data: bytes | None) -> bool:
    if data is None:  # a URL: not fetched
        return True
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        return True
    except Exception:
        return False


def _image_size(fields: dict) -> tuple[int, int] | None:
    data = fields["image"][1] if "image" in fields else _decode_uri(fields.get("image_uri", ""))[1]
    if not data:
        return None
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _adjust(fields: dict) -> tuple[dict, list]:
    """The settings ByteCompute renders and the adjustments list, in the assumed order (module docstring)."""
    changes = []

    def change(field, requested, applied, reason):
        if requested != applied:
            changes.append({"field": field, "requested": requested, "applied": applied, "reason": reason})

    duration = float(fields.get("duration", 5))
    applied = min(10, max(4, round(duration)))
    change("duration", duration, applied, "duration must be 4-10 s")
    fps = int(fields.get("fps", 25))
    fps_applied = 50 if fps > 37 else 25
    change("fps", fps, fps_applied, "fps must be 25 or 50")
    if "resolution" in fields:
        width, height = map(int, fields["resolution"].split("x"))
    else:
        width, height = _image_size(fields) or (1280, 704)
    requested = f"{width}x{height}"
    scale = min(1.0, MAX_LONG / max(width, height), MAX_SHORT / min(width, height))
    width, height = (max(32, math.ceil(side * scale / 32 - 0.5) * 32) for side in (width, height))
    if "resolution" in fields:
        change("resolution", requested, f"{width}x{height}", "max resolution 1920x1088, multiples of 32")
    if width * height * fps_applied * applied > BUDGET:
        shorter = max(4, BUDGET // (width * height * fps_applied))
        change("duration", applied, shorter, "GPU budget")
        applied = shorter
        if width * height * fps_applied * applied > BUDGET:
            change("fps", fps_applied, 25, "GPU budget")
            fps_applied = 25
    return {"width": width, "height": height, "fps": fps_applied, "duration": applied}, changes
