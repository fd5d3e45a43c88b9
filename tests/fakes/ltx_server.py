"""A local stand-in for Lightricks' LTX API (spec hosted-apis.md §7, §10.6; LTX-2.5: ltx2.5.md §11), on 127.0.0.1.

v2 (async): submit `POST /v2/{text-to-video|image-to-video|audio-to-video}` → `202 {"id", "created_at"}`; poll
`GET /v2/{op}/{id}` going `pending` → `processing` → `completed` (`result.video_url`, a signed-looking URL on a
"storage" path serving a real mp4) | `failed` (`error: {type, message}`), 404 after the (configurable) 24 h
retention. Audio-to-video answers a clip as long as the uploaded audio, with that audio as its sound.
v1 (synchronous): `POST /v1/retake` answers the retaken clip itself (`video/mp4`): the uploaded clip with the window
regenerated (a new picture for replace_video, a new tone for replace_audio, both for replace_audio_and_video), or
an error envelope; nothing can be fetched later.
Upload is `POST /v1/upload` → `{upload_url, storage_uri, expires_at, required_headers}`, then a PUT of the bytes to
`upload_url` with those headers and no API key (docs.ltx.video). Errors use `{"type": "error", "error": {"type",
"message"}}`; every answer carries `x-request-id`.

Fields are checked per model and unknown ones refused: LTX-2 (ltx-2-fast / ltx-2-pro: 1920x1080, 2560x1440,
3840x2160; 25 or 50 fps; 6, 8 or 10 s, up to 20 s in even steps for ltx-2-fast at 1920x1080 and 25 fps), LTX-2.5
(ltx-2-5-fast: 720p-4K in 16:9 and 9:16, 24/25/48/50 fps; ltx-2-5-pro: 720p/1080p, 24/25/50 fps; 2-6, 8, 10 s, and
12-20 s for ltx-2-5-fast at 720p/1080p and 24/25 fps; last_frame_uri; audio-to-video at 1920x1080 or 1080x1920
with 2-20 s of audio), retake (a clip of at least 73 frames, start_time >= 0, duration >= 2 inside the clip, one of
the three modes); prompts up to 5000 characters.

Failure modes: a prompt keyword `[ltx:<scenario>]`, the submit header `X-Fake-Scenario`, or `fake.scenario`.
"""

from __future__ import annotations

import math
import re
import secrets
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from fakes.server import COMMON_SCENARIOS, FakeApi, Handler, Recorded, clip_for_audio, iso_now
from ltx2_anywhere.pipelines.media import probe_video, read_video, write_video

OPS = ("text-to-video", "image-to-video", "audio-to-video")
LTX2 = ("ltx-2-fast", "ltx-2-pro")
LTX25 = ("ltx-2-5-fast", "ltx-2-5-pro")
MODELS = LTX2 + LTX25
RESOLUTIONS = ("1920x1080", "2560x1440", "3840x2160")
RESOLUTIONS_25 = {"ltx-2-5-fast": ("1280x720", "720x1280", "1920x1080", "1080x1920", "2560x1440", "1440x2560",
                                   "3840x2160", "2160x3840"),
                  "ltx-2-5-pro": ("1280x720", "720x1280", "1920x1080", "1080x1920")}
FPS_25 = {"ltx-2-5-fast": (24, 25, 48, 50), "ltx-2-5-pro": (24, 25, 50)}
SHORT_25 = (2, 3, 4, 5, 6, 8, 10)
LONG = (12, 14, 16, 18, 20)
FIELDS = {"prompt", "model", "duration", "resolution", "fps", "generate_audio", "camera_motion"}
A2V_FIELDS = {"prompt", "model", "resolution", "audio_uri", "image_uri", "guidance_scale"}
RETAKE_FIELDS = {"video_uri", "start_time", "duration", "prompt", "mode", "resolution", "model"}
RETAKE_MODES = ("replace_audio", "replace_video", "replace_audio_and_video")
SIZE_HEADER = "x-goog-content-length-range"
SUFFIXES = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/mpeg": ".mp3", "audio/ogg": ".ogg",
            "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "image/png": ".png",
            "image/jpeg": ".jpg"}
SUBMIT_ERRORS = {  # scenario -> (HTTP status, error.type, message, extra headers)
    "submit-400": (400, "invalid_request_error", "The request is invalid (fake)", {}),
    "submit-402": (402, "insufficient_funds_error", "Insufficient funds. Required: 120 credits", {}),
    "submit-413": (413, "request_too_large", "Request entity too large", {}),
    "submit-429": (429, "concurrency_limit_error", "Concurrency limit of 2 reached", {"Retry-After": "1"}),
    "submit-500": (500, "api_error", "Internal server error", {}),
    "submit-503": (503, "service_unavailable", "Service unavailable", {}),
    "submit-504": (504, "gateway_timeout", "Gateway timeout", {}),
    "filtered-submit": (400, "content_filtered_error", "The prompt was flagged by the content filter", {}),
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
        "never": "stays running forever (v2); holds the synchronous answer until the server stops (v1 retake)",
        "wrong-type": "the video is served as text/html (v1 retake: the answer itself)",
        "oversized": "the video claims 16 GiB (Content-Length) and streams zeros (v1 retake: the answer itself)",
        "drop-download": "the first download sends half the bytes and drops the connection (v1 retake: the answer "
                         "itself, which is then lost)",
    }
    SUBMIT = ("POST", r"/v2/[\w-]+|/v1/retake")
    POLL = ("GET", r"/v2/.+")
    DOWNLOAD = ("GET", r"/results/.+")

    def __init__(self, key: str = "ltx-test-key-0123456789"):
        super().__init__(key)
        self.uploads: dict[str, bytes | None] = {}  # token -> bytes once PUT
        self.upload_mimes: dict[str, str] = {}  # token -> the Content-Type it was PUT with
        self.upload_types: dict[str, str] = {}  # token -> the file suffix that type means

    def routes(self):
        return [
            ("POST", r"/v1/upload", self._upload_ticket),
            ("POST", r"/v1/retake", self._retake),
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
            mime = h.headers.get("Content-Type", "")
            with self.lock:
                self.uploads[token] = rec.body
                self.upload_mimes[token] = mime
                self.upload_types[token] = SUFFIXES.get(mime, ".bin")
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
        if op == "audio-to-video":
            job.extra["video"] = clip_for_audio(*self._stored(rec.json["audio_uri"]))
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
        job = self.find_job(job_id)
        self.serve_video(h, job, job.extra.get("video") if job else None)

    # -- v1 retake (synchronous) -----------------------------------------------------------------------------------

    def _retake(self, h: Handler, rec: Recorded) -> None:
        if not h.authorized(envelope("authentication_error", "Invalid API key")):
            return
        problem = self._retake_problem(rec.json)
        if problem:
            h.send_json(400, envelope("invalid_request_error", problem))
            return
        scenario = self.pick_scenario(h, rec.json.get("prompt", ""))
        if scenario is None:
            return
        if scenario in SUBMIT_ERRORS:
            status, kind, message, headers = SUBMIT_ERRORS[scenario]
            h.send_json(status, envelope(kind, message), headers)
            return
        job = self.new_job("retake", rec.json, scenario)
        if scenario == "never":
            self.stopping.wait()
            h.drop()
            return
        if scenario == "fail":
            h.send_json(500, envelope("api_error", "Generation failed (fake)"))
            return
        if scenario == "filtered":
            h.send_json(400, envelope("content_filtered_error", "The prompt was flagged by the content filter"))
            return
        video = self._retaken(rec.json)
        if self.withhold_answer(h, job):
            return
        self.serve_video(h, job, video)

    def _retaken(self, body: dict) -> bytes:
        """The clip with its window regenerated: new frames and/or a new tone inside [start, start + duration)."""
        data, suffix = self._stored(body["video_uri"])
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / f"clip{suffix}"
            source.write_bytes(data)
            frames, fps, audio = read_video(source)
            frames = (frames.numpy() * 255).round().astype(np.uint8)
            start, end = body["start_time"], body["start_time"] + body["duration"]
            mode = body.get("mode", "replace_audio_and_video")
            if mode != "replace_audio":
                first, last = math.floor(start * float(fps)), math.ceil(end * float(fps))
                frames[first:last, ..., 0] = 255 - frames[first:last, ..., 0]
            waveform = rate = None
            if audio is not None:
                waveform, rate = audio["waveform"][0].numpy().copy(), audio["sample_rate"]
                if mode != "replace_video":
                    a, b = round(start * rate), round(end * rate)
                    t = np.arange(b - a) / rate
                    waveform[:, a:b] = 0.25 * np.sin(2 * np.pi * 660 * t)
            return write_video(Path(folder) / "retaken.mp4", frames, fps, audio=waveform,
                               sample_rate=rate).read_bytes()

    def _retake_problem(self, body) -> str | None:
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        unknown = sorted(set(body) - RETAKE_FIELDS)
        if unknown:
            return f"Unknown field(s): {', '.join(unknown)}"
        problem = self._uri_problem(body.get("video_uri"), "video_uri", ("video/",))
        if problem:
            return problem
        start, duration = body.get("start_time"), body.get("duration")
        if not _number(start) or start < 0:
            return "start_time must be a number >= 0"
        if not _number(duration) or duration < 2:
            return "duration must be a number >= 2"
        if "prompt" in body and (not isinstance(body["prompt"], str) or len(body["prompt"]) > 5000):
            return "prompt must be at most 5000 characters"
        if body.get("mode", "replace_audio_and_video") not in RETAKE_MODES:
            return f"mode must be one of {', '.join(RETAKE_MODES)}"
        if body["video_uri"].startswith("gs://"):
            data, suffix = self._stored(body["video_uri"])
            with tempfile.TemporaryDirectory() as folder:
                clip = Path(folder) / f"clip{suffix}"
                clip.write_bytes(data)
                info = probe_video(clip)
            if (info["frames"] or 0) < 73:
                return f"The input video has {info['frames']} frames; at least 73 are required"
            if start >= (info["video_duration"] or 0):
                return "start_time is beyond the end of the input video"
        return None

    # -- checks ----------------------------------------------------------------------------------------------------

    def _stored(self, uri: str) -> tuple[bytes, str]:
        """The bytes of an uploaded file (storage URI) and its suffix, from the Content-Type it was PUT with."""
        token = re.fullmatch(r"gs://ltx-api-uploads/(\w+)", uri).group(1)
        return self.uploads[token], self.upload_types.get(token, ".bin")

    def _uri_problem(self, uri, name: str, types: tuple[str, ...]) -> str | None:
        if not isinstance(uri, str):
            return f"{name} is required"
        stored = re.fullmatch(r"gs://ltx-api-uploads/(\w+)", uri)
        if stored:
            token = stored.group(1)
            if not self.uploads.get(token):
                return f"{name} names no uploaded file"
            kind = self.upload_mimes.get(token, "")
            return None if kind.startswith(types) else f"{name} is a {kind or 'typeless'} file, not {' or '.join(types)}"
        if re.match(r"https?://", uri) or any(re.match(rf"data:{t}[\w.+-]*;base64,", uri) for t in types):
            return None
        return f"{name} must be a URL, a data URI or a storage_uri from /v1/upload"

    def _problem(self, op: str, body) -> str | None:
        """The first problem with a v2 submit body; None when valid."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if op == "audio-to-video":
            return self._audio_problem(body)
        allowed = FIELDS | ({"image_uri"} if op == "image-to-video" else set())
        if body.get("model") in LTX25 and op == "image-to-video":
            allowed = allowed | {"last_frame_uri"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            return f"Unknown field(s): {', '.join(unknown)}"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 5000:
            return "prompt must be 1-5000 characters"
        model = body.get("model")
        if model not in MODELS:
            return f"model must be one of {', '.join(MODELS)}"
        if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
            return "generate_audio must be a boolean"
        problem = self._ltx25_problem(body) if model in LTX25 else self._ltx2_problem(body)
        if problem:
            return problem
        if op == "image-to-video":
            return self._uri_problem(body.get("image_uri"), "image_uri", ("image/",)) or (
                self._uri_problem(body["last_frame_uri"], "last_frame_uri", ("image/",))
                if "last_frame_uri" in body else None)
        return None

    @staticmethod
    def _ltx2_problem(body: dict) -> str | None:
        if body.get("resolution") not in RESOLUTIONS:
            return f"resolution must be one of {', '.join(RESOLUTIONS)}"
        fps = body.get("fps", 25)
        if fps not in (25, 50) or type(fps) is not int:
            return "fps must be 25 or 50"
        long_ok = body["model"] == "ltx-2-fast" and body["resolution"] == "1920x1080" and fps == 25
        durations = (6, 8, 10) + (LONG if long_ok else ())
        if type(body.get("duration")) is not int or body["duration"] not in durations:
            return f"duration must be one of {', '.join(map(str, durations))} for this model, resolution and fps"
        return None

    @staticmethod
    def _ltx25_problem(body: dict) -> str | None:
        model = body["model"]
        if body.get("resolution") not in RESOLUTIONS_25[model]:
            return f"resolution must be one of {', '.join(RESOLUTIONS_25[model])} for {model}"
        fps = body.get("fps", 25)
        if type(fps) is not int or fps not in FPS_25[model]:
            return f"fps must be one of {', '.join(map(str, FPS_25[model]))} for {model}"
        short = min(map(int, body["resolution"].split("x")))
        long_ok = model == "ltx-2-5-fast" and short <= 1080 and fps <= 25
        durations = SHORT_25 + (LONG if long_ok else ())
        if type(body.get("duration")) is not int or body["duration"] not in durations:
            return f"duration must be one of {', '.join(map(str, durations))} for this model, resolution and fps"
        return None

    def _audio_problem(self, body: dict) -> str | None:
        unknown = sorted(set(body) - A2V_FIELDS)
        if unknown:
            return f"Unknown field(s): {', '.join(unknown)}"
        if body.get("model") not in LTX25:
            return f"model must be one of {', '.join(LTX25)} for audio-to-video"
        if body.get("resolution", "1920x1080") not in ("1920x1080", "1080x1920"):
            return "resolution must be 1920x1080 or 1080x1920 for audio-to-video"
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > 5000 or (not prompt and "image_uri" not in body):
            return "prompt must be at most 5000 characters, and given unless image_uri is"
        problem = self._uri_problem(body.get("audio_uri"), "audio_uri", ("audio/",))
        if problem or "image_uri" in body and self._uri_problem(body["image_uri"], "image_uri", ("image/",)):
            return problem or self._uri_problem(body["image_uri"], "image_uri", ("image/",))
        if body["audio_uri"].startswith("gs://"):
            data, suffix = self._stored(body["audio_uri"])
            with tempfile.TemporaryDirectory() as folder:
                sound = Path(folder) / f"audio{suffix}"
                sound.write_bytes(data)
                seconds = probe_video(sound)["audio_duration"] or 0.0
            if not 2.0 <= seconds <= 20.0:
                return f"Audio duration must be between 2 and 20 seconds, got {seconds:.2f}"
        return None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
