"""fal.ai queue client: LTX-2 19B and LTX-2.3 22B open weights, and the LTX-2.3 Pro/Fast proxies (spec §3).

A job is submitted once (`POST {queue}/{endpoint}`), polled at the status URL the submit answer names (under
`/{owner}/{alias}/requests/{id}`: the endpoint's sub-path is dropped there), read from the response URL and
cancelled with `PUT …/cancel`. fal has no FAILED status: a failure is COMPLETED with an `error`. Local files go to
fal's CDN (a storage token, then the bytes; multipart above 100 MB), with fal's storage-initiate route and, for a
small image, a data URI as fallbacks. The key travels only in the `Authorization` header of fal's own hosts.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..errors import L2AError
from . import pricing
from .base import HostedError
from .limits import download_cap
from .mapping import audio_input, tier_cap
from .types import MODE_NAMES, GenerationRequest, JobRef, JobResult, JobStatus, Prepared, Provider

# 19B / 22B open weights (frames, size and sampler knobs; billed per output megapixel), then Lightricks' hosted
# LTX-2.3 Pro/Fast behind fal (`fal-ai/ltx-2.3/…`: duration, resolution, aspect ratio; billed per second).
ENDPOINTS = {
    "fal-ai/ltx-2-19b/text-to-video": "t2v",
    "fal-ai/ltx-2-19b/image-to-video": "i2v",
    "fal-ai/ltx-2-19b/extend-video": "extend",
    "fal-ai/ltx-2.3-22b/text-to-video": "t2v",
    "fal-ai/ltx-2.3-22b/image-to-video": "i2v",
    "fal-ai/ltx-2.3-22b/extend-video": "extend",
    "fal-ai/ltx-2.3/text-to-video": "t2v",
    "fal-ai/ltx-2.3/text-to-video/fast": "t2v",
    "fal-ai/ltx-2.3/image-to-video": "i2v",
    "fal-ai/ltx-2.3/image-to-video/fast": "i2v",
    "fal-ai/ltx-2.3/extend-video": "extend",
    "fal-ai/ltx-2-19b/distilled/audio-to-video": "a2v",
}
DEFAULT_ENDPOINTS = {"t2v": "fal-ai/ltx-2-19b/text-to-video", "i2v": "fal-ai/ltx-2-19b/image-to-video",
                     "extend": "fal-ai/ltx-2-19b/extend-video", "a2v": "fal-ai/ltx-2-19b/distilled/audio-to-video"}
# The endpoint "auto (match the local model's family)" picks per family and mode.
FAMILY_ENDPOINTS = {
    "2.0": {"t2v": "fal-ai/ltx-2-19b/text-to-video", "i2v": "fal-ai/ltx-2-19b/image-to-video",
            "extend": "fal-ai/ltx-2-19b/extend-video", "a2v": "fal-ai/ltx-2-19b/distilled/audio-to-video"},
    "2.3": {"t2v": "fal-ai/ltx-2.3-22b/text-to-video", "i2v": "fal-ai/ltx-2.3-22b/image-to-video",
            "extend": "fal-ai/ltx-2.3-22b/extend-video"},
}
PROXY_PREFIX = "fal-ai/ltx-2.3/"

# Open-weights schema (§3.7): ranges and choices.
FRAMES = (9, 481)  # and 8n+1
SIZE_STEP = 32
FPS_RANGE = (1.0, 60.0)
GUIDANCE_RANGE = (1.0, 10.0)
STEPS_RANGE = (8, 50)
UNIT_RANGE = (0.0, 1.0)  # camera_lora_scale, image_strength, end_image_strength
ACCELERATIONS = ("none", "regular", "high", "full")
CAMERAS = ("none", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static")
DEFAULT_FRAMES = 121
DEFAULT_FPS = 25.0
# Documented fields passed through from `request.options` unchanged, after checking the value.
OPEN_OPTIONS = {
    "video_output_type": ("X264 (.mp4)", "VP9 (.webm)", "PRORES4444 (.mov)", "GIF (.gif)"),
    "video_quality": ("low", "medium", "high", "maximum"),
    "video_write_mode": ("fast", "balanced", "small"),
    "interpolation_direction": ("forward", "backward"),
    "enable_safety_checker": (True, False),
}
# Option keys that name GenerationRequest fields (the hosted backend node sends these two).
REQUEST_OPTIONS = ("multiscale", "prompt_expansion")

# Lightricks proxy schema (§3.7, last two bullets).
PROXY_RESOLUTIONS = {"1080p": 1080, "1440p": 1440, "2160p": 2160}
PROXY_FPS = (24, 25, 48, 50)
PROXY_DURATIONS = (6, 8, 10)
FAST_DURATIONS = (6, 8, 10, 12, 14, 16, 18, 20)  # above 10 s only at 1080p and 25 fps
PROXY_DEFAULTS = {"duration": 6, "resolution": "1080p"}
EXTEND_DURATION = (2.0, 20.0)
EXTEND_DEFAULT_DURATION = 5.0
EXTEND_MODES = ("start", "end")
EXTEND_CONTEXT_MAX = 20.0

# Distilled 19B audio-to-video (fal's model page): prompt, audio_url, image_url, end_image_url, match_audio_length
# (frames follow the audio), num_frames, video_size. Only those are sent.
AUDIO_FORMATS = ("wav", "mp3", "ogg", "m4a", "aac")  # the audio files fal's LTX audio-to-video pages accept
# [INF] the frame rate fal renders audio-to-video at (its open endpoints' default): frames = seconds x 25, within
#       9-481 frames, so the audio may be at most 19.2 s.
AUDIO_FPS = 25.0
AUDIO_MAX_SECONDS = (FRAMES[1] - 1) / AUDIO_FPS

CODECS = {"X264 (.mp4)": "h264", "VP9 (.webm)": "vp9", "PRORES4444 (.mov)": "prores", "GIF (.gif)": "gif"}
SHORT_SIDES = {"480p": 480, "540p": 540, "720p": 720, "1080p": 1080, "1440p": 1440, "2160p": 2160, "4k": 2160}
DATA_URI_MAX_BYTES = 1 << 20  # §3.10: data URIs are fine for one small image; larger files are uploaded
CONTENT_TYPES = ("video/", "image/gif", "application/octet-stream", "binary/octet-stream")  # GIF output is image/gif
JOB_SUFFIXES = {"response_url": "", "status_url": "/status", "cancel_url": "/cancel"}

# ---- Assumptions where spec §3 says [INF] or [UNK], kept in this one place --------------------------------------
# [INF] LTX needs 8n+1 frames and sizes in multiples of 32: snapped here (with a note) rather than left to fal.
# [INF] fal documents no largest video_size; billed per megapixel, a typo of a size would bill many times over, so
#       sizes are fitted within 4K (the LTX API's largest), keeping the aspect ratio, with a note.
MAX_SIZE = (3840, 2160)  # long side, short side
# [INF] The open extend endpoints (19B/22B `extend-video`) take the image-to-video fields with `video_url` in place
#       of `image_url` (an end frame, no start image, no image strength), like the 22B `extend-video/lora` page.
# [UNK] The size fal renders when none is sent (text-to-video) or for a remote image with `video_size: "auto"`:
#       the cost estimate assumes ASSUMED_SIZE and says so.
ASSUMED_SIZE = (1280, 720)
# [INF] `video_size: "auto"` follows a local input image or video snapped to multiples of 32 (estimate only).
# [UNK] fal's seed range: the resolved seed is sent as it is.
# [UNK] A cancelled job's later status: read like any other answer (COMPLETED with an error is a failure).
# [2ND] Cancel answers 202 CANCELLATION_REQUESTED (True), 400 ALREADY_COMPLETED and 404 NOT_FOUND (both False).
# [SRC] fal-client posts single uploads to the fixed CDN host and multipart uploads to the token's `base_url`;
#       this client does the same. Without an explicit rest/cdn URL, a base_url override (a proxy or a local test
#       server) serves the uploads too, so a test never reaches fal's real storage.
DEFAULT_REST_URL = "https://rest.fal.ai"
DEFAULT_CDN_URL = "https://v3.fal.media"
# -----------------------------------------------------------------------------------------------------------------


class FalProvider(Provider):
    name = "fal"
    label = "fal"
    key_env = "FAL_KEY"
    default_base_url = "https://queue.fal.run"
    modes = ("t2v", "i2v", "extend", "a2v")
    largest_output = (3840, 2160, 20.0, 60.0, "prores")  # fal's results declare their size: this rarely applies
    ENDPOINTS = ENDPOINTS
    FAMILY_ENDPOINTS = FAMILY_ENDPOINTS
    MULTIPART_THRESHOLD = 100 * 2**20  # bytes; fal-client's threshold
    MULTIPART_CHUNK = 10 * 2**20

    def __init__(self, http, key: str, base_url: str | None = None, *, rest_base_url: str | None = None,
                 cdn_base_url: str | None = None):
        super().__init__(http, key, base_url)
        self.rest_base_url = (rest_base_url or (base_url and self.base_url) or DEFAULT_REST_URL).rstrip("/")
        self.cdn_base_url = (cdn_base_url or (base_url and self.base_url) or DEFAULT_CDN_URL).rstrip("/")
        self._token: tuple[str, str, datetime] | None = None  # (Authorization value, base_url, expiry)

    # ------------------------------------------------------------------------------------------------ prepare

    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        endpoint = endpoint or DEFAULT_ENDPOINTS[request.mode]
        if endpoint not in ENDPOINTS:
            raise L2AError(f"fal endpoint {endpoint!r} is not one this pack drives: use one of "
                           f"{', '.join(ENDPOINTS)}.")
        if ENDPOINTS[endpoint] != request.mode:
            raise L2AError(f"fal endpoint {endpoint} does {MODE_NAMES[ENDPOINTS[endpoint]]}, but this request is "
                           f"{MODE_NAMES[request.mode]}: pick a {MODE_NAMES[request.mode]} endpoint, or auto.")
        options = dict(request.options)
        aliased = {key: options.pop(key) for key in REQUEST_OPTIONS if key in options}
        request = replace(request, **{key: value for key, value in aliased.items() if getattr(request, key) is None})
        notes: list[str] = []
        if options.pop("sync_mode", False):
            notes.append("sync_mode is never sent: it would return the whole video inside the JSON answer.")
        mapping = _prepare_proxy if endpoint.startswith(PROXY_PREFIX) else _prepare_open
        if request.mode == "a2v":
            mapping = _prepare_audio
        payload, uploads, cost_args = mapping(request, endpoint, options, notes)
        cost = pricing.estimate(self.name, endpoint, **cost_args)
        return Prepared(self.name, endpoint, payload, uploads, tuple(notes), cost,
                        max_bytes=_output_cap(request.mode, payload, cost_args))

    # ----------------------------------------------------------------------------------------------- the queue

    def submit(self, prepared: Prepared) -> JobRef:
        missing = sorted(set(prepared.uploads) - set(prepared.payload))
        if missing:
            raise L2AError(f"fal: {', '.join(missing)} must be uploaded before submitting (run_job does this).")
        data = self.http.json("POST", f"{self.base_url}/{prepared.endpoint}", retry=False, headers=self._headers(),
                              json=prepared.payload)
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise HostedError("fal accepted the request but its answer has no request_id; check "
                              "https://fal.ai/dashboard/requests before submitting again (the job may bill).",
                              maybe_accepted=True)
        urls = {key: data[key] for key in JOB_SUFFIXES if isinstance(data.get(key), str)}
        return JobRef(self.name, prepared.endpoint, request_id, urls=urls, submitted_at=time.time())

    def status(self, job: JobRef) -> JobStatus:
        data = self._job_json("GET", job, "status_url", params={"logs": "0"})
        state = data.get("status")
        if state == "IN_QUEUE":
            position = data.get("queue_position")
            known = isinstance(position, int) and not isinstance(position, bool)
            return JobStatus("queued", position if known else None, raw=data)
        if state == "IN_PROGRESS":
            return JobStatus("running", raw=data)
        if state == "COMPLETED":
            if data.get("error"):
                kind = f" ({data['error_type']})" if data.get("error_type") else ""
                return JobStatus("failed", message=f"{data['error']}{kind}", raw=data)
            return JobStatus("completed", raw=data)
        raise HostedError(f"fal answered an unknown status {str(state)[:40]!r} for job {job.job_id}; resume the job "
                          "later by its id, or check https://fal.ai/dashboard/requests.")

    def result(self, job: JobRef) -> JobResult:
        data = self._job_json("GET", job, "response_url")
        video = data.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            raise HostedError(f"fal job {job.job_id} finished without a video URL in its result; check "
                              "https://fal.ai/dashboard/requests.")
        seed, prompt, size = data.get("seed"), data.get("prompt"), video.get("file_size")
        return JobResult(url, seed if _whole(seed) else None, prompt if isinstance(prompt, str) else None, raw=data,
                         declared_bytes=size if _whole(size) and size > 0 else None)

    def cancel(self, job: JobRef) -> bool:
        """True when fal took the cancellation; False when the job had already finished or is unknown there."""
        try:
            self.http.request("PUT", self._job_url(job, "cancel_url"), retry=True, headers=self._headers())
        except HostedError as error:
            if getattr(error, "status", None) in (400, 404):  # ALREADY_COMPLETED / NOT_FOUND
                return False
            raise
        return True

    def fetch(self, job: JobRef, result: JobResult, dest: Path) -> Path:
        limit, why = self.download_limit(job, result)
        return self.http.download(result.video_url, dest, content_types=CONTENT_TYPES, max_bytes=limit,
                                  limit_reason=why)

    def _headers(self) -> dict:
        key = (self.key or "").strip()
        if not key:
            raise L2AError("No fal key: set FAL_KEY, or add it to the keys file (https://fal.ai/dashboard/keys).")
        if any(ch.isspace() or not ch.isprintable() for ch in key):
            raise L2AError("The fal key contains spaces or control characters: copy it again from "
                           "https://fal.ai/dashboard/keys (it looks like key_id:key_secret).")
        return {"Authorization": f"Key {key}"}

    def _job_url(self, job: JobRef, kind: str) -> str:
        """The URL fal returned at submit, if it is on the queue host (the key goes there); else the documented
        `/{owner}/{alias}/requests/{id}` form, which drops the endpoint's sub-path (§3.3)."""
        url = job.urls.get(kind)
        if isinstance(url, str) and _origin(url) == _origin(self.base_url):
            return url
        parts = job.endpoint.strip("/").split("/")
        if len(parts) < 2 or not all(parts[:2]):
            raise L2AError(f"fal needs the endpoint the job was submitted to (owner/alias/…), e.g. "
                           f"{DEFAULT_ENDPOINTS['i2v']}; got {job.endpoint!r}.")
        return f"{self.base_url}/{parts[0]}/{parts[1]}/requests/{quote(job.job_id, safe='')}{JOB_SUFFIXES[kind]}"

    def _job_json(self, method: str, job: JobRef, kind: str, **kwargs) -> dict:
        data = self.http.json(method, self._job_url(job, kind), retry=True, headers=self._headers(), **kwargs)
        if not isinstance(data, dict):
            raise HostedError(f"fal answered job {job.job_id} with JSON that is not an object; try again later.")
        return data

    # -------------------------------------------------------------------------------------------------- upload

    def upload(self, path: Path) -> str:
        """fal's CDN (§3.10); its storage-initiate route if that fails; a data URI for a small image last."""
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as error:
            raise L2AError(f"fal: cannot read {path} to upload it ({error.strerror}).") from error
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            if size > self.MULTIPART_THRESHOLD:
                return self._upload_multipart(path, mime)
            return self._upload_cdn(path, mime)
        except HostedError as cdn_error:
            if size > self.MULTIPART_THRESHOLD:
                raise
            try:
                return self._upload_storage(path, mime)
            except HostedError:
                if mime.startswith("image/") and size <= DATA_URI_MAX_BYTES:
                    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
                raise cdn_error from None

    def _cdn_token(self) -> tuple[str, str, datetime]:
        now = datetime.now(timezone.utc)
        if self._token is None or self._token[2] <= now:
            data = self.http.json("POST", f"{self.rest_base_url}/storage/auth/token", retry=True,
                                  headers=self._headers(), params={"storage_type": "fal-cdn-v3"}, json={})
            fields = [data.get(key) if isinstance(data, dict) else None for key in ("token", "token_type", "base_url")]
            if not all(isinstance(value, str) and value for value in fields):
                raise HostedError("fal's storage token answer has no token, token_type or base_url; try again later.")
            token, kind, base = fields
            self._token = (f"{kind} {token}", base.rstrip("/"), _expiry(data.get("expires_at")) or now)
        return self._token

    def _upload_cdn(self, path: Path, mime: str) -> str:
        auth, _base, _expiry_at = self._cdn_token()
        data = self.http.json("POST", f"{self.cdn_base_url}/files/upload", retry=True, data=path.read_bytes(),
                              headers={"Authorization": auth, "Content-Type": mime, "X-Fal-File-Name": _name(path)})
        return _access_url(data, "CDN upload")

    def _upload_multipart(self, path: Path, mime: str) -> str:
        auth, base, _expiry_at = self._cdn_token()
        created = self.http.json("POST", f"{base}/files/upload/multipart", retry=True,
                                 headers={"Authorization": auth, "Content-Type": mime, "X-Fal-File-Name": _name(path)})
        access, upload_id = _access_url(created, "multipart upload"), created.get("uploadId")
        if not isinstance(upload_id, str) or not upload_id:
            raise HostedError("fal's multipart upload answer has no uploadId; try again later.")
        parts = []
        with path.open("rb") as file:
            for number in range(1, math.ceil(path.stat().st_size / self.MULTIPART_CHUNK) + 1):
                response = self.http.request("PUT", f"{access}/multipart/{upload_id}/{number}", retry=True,
                                             data=file.read(self.MULTIPART_CHUNK),
                                             headers={"Authorization": auth, "Content-Type": mime,
                                                      "Accept-Encoding": "identity"})
                etag = response.headers.get("ETag")
                if not etag:
                    raise HostedError(f"fal's CDN answered part {number} of the upload without an ETag; try again.")
                parts.append({"partNumber": number, "etag": etag})
        self.http.request("POST", f"{access}/multipart/{upload_id}/complete", retry=True,
                          headers={"Authorization": auth}, json={"parts": parts})
        return access

    def _upload_storage(self, path: Path, mime: str) -> str:
        data = self.http.json("POST", f"{self.rest_base_url}/storage/upload/initiate", retry=True,
                              headers=self._headers(), params={"storage_type": "gcs"},
                              json={"file_name": _name(path), "content_type": mime})
        upload_url = data.get("upload_url") if isinstance(data, dict) else None
        file_url = data.get("file_url") if isinstance(data, dict) else None
        if not (isinstance(upload_url, str) and isinstance(file_url, str)):
            raise HostedError("fal's storage answer has no upload_url or file_url; try again later.")
        self.http.request("PUT", upload_url, retry=True, data=path.read_bytes(), headers={"Content-Type": mime})
        return file_url


# ---------------------------------------------------------------------------------------------- request mapping

def _prepare_open(request: GenerationRequest, endpoint: str, options: dict, notes: list[str]):
    """The 19B / 22B schema (§3.7): every field in fal's names, ranges checked, sizes and frames snapped."""
    mode = request.mode
    payload: dict = {"prompt": _prompt(request)}
    uploads: dict[str, Path] = {}
    if mode == "i2v":
        _media(request, "image", "image_url", payload, uploads, required=True)
    elif request.image is not None or request.image_url:
        raise L2AError(f"fal {MODE_NAMES[mode]} takes no start image: use an image-to-video endpoint.")
    if mode == "extend":
        _media(request, "video", "video_url", payload, uploads, required=True)
    elif request.video is not None or request.video_url:
        raise L2AError(f"fal {MODE_NAMES[mode]} takes no input video: use mode extend.")
    if mode == "t2v" and (request.end_image is not None or request.end_image_url):
        raise L2AError("fal text-to-video takes no end frame: give a start image too (image-to-video).")
    end = _media(request, "end_image", "end_image_url", payload, uploads, required=False)

    fps = None if request.fps is None else _clamp("fps", request.fps, FPS_RANGE, notes)
    frames = _frames(request, fps or DEFAULT_FPS, notes)
    size = _open_size(request, notes)
    if frames is not None:
        payload["num_frames"] = frames
    if size is not None:  # none: fal's default (auto: the input's size)
        payload["video_size"] = {"width": size[0], "height": size[1]}
    payload["generate_audio"] = bool(request.generate_audio)
    if request.multiscale is not None:
        payload["use_multiscale"] = bool(request.multiscale)
    if fps is not None:
        payload["fps"] = fps
    if request.guidance_scale is not None:
        payload["guidance_scale"] = _clamp("guidance_scale", request.guidance_scale, GUIDANCE_RANGE, notes)
    if request.num_inference_steps is not None:
        payload["num_inference_steps"] = int(_clamp("num_inference_steps", request.num_inference_steps,
                                                     STEPS_RANGE, notes, whole=True))
    if request.acceleration is not None:
        payload["acceleration"] = _choice("acceleration", request.acceleration, ACCELERATIONS)
    camera = _choice("camera", request.camera or "none", CAMERAS)
    if camera != "none":
        payload["camera_lora"] = camera
        payload["camera_lora_scale"] = _clamp("camera_lora_scale", request.camera_scale, UNIT_RANGE, notes)
    if request.negative_prompt is not None:
        payload["negative_prompt"] = request.negative_prompt
    payload["seed"] = int(request.seed)
    if request.prompt_expansion is not None:
        payload["enable_prompt_expansion"] = bool(request.prompt_expansion)
    if mode == "i2v":
        payload["image_strength"] = _clamp("image_strength", request.image_strength, UNIT_RANGE, notes)
    if end:
        payload["end_image_strength"] = _clamp("end_image_strength", request.end_image_strength, UNIT_RANGE, notes)
    for key, value in options.items():
        if key in payload or key in ("image_url", "end_image_url", "video_url", "num_frames", "video_size", "fps"):
            raise L2AError(f"fal option {key!r} is set through the request's own field, not options.")
        if key not in OPEN_OPTIONS:
            raise L2AError(f"fal option {key!r} is unknown: use {', '.join(OPEN_OPTIONS)}.")
        payload[key] = _choice(key, value, OPEN_OPTIONS[key])

    billed = size or _auto_size(request, notes)
    cost_args = dict(width=billed[0], height=billed[1], num_frames=frames or DEFAULT_FRAMES, fps=fps or DEFAULT_FPS,
                     generate_audio=bool(request.generate_audio))
    return payload, uploads, cost_args


def _not_sent(request: GenerationRequest, *more: tuple[str, bool]) -> list[str]:
    """The request's settings that fal's fixed-recipe endpoints (LTX-2.3 Pro/Fast, distilled audio-to-video) have no
    field for, where the request sets them: each (name, unset) pair, then `more` of the endpoint's own."""
    return [name for name, unset in (
        ("negative_prompt", request.negative_prompt is None), ("seed", False),
        ("guidance_scale", request.guidance_scale is None),
        ("num_inference_steps", request.num_inference_steps is None),
        ("camera", (request.camera or "none") == "none"), ("multiscale", request.multiscale is None),
        ("acceleration", request.acceleration is None), ("prompt_expansion", request.prompt_expansion is None),
        ("image_strength", request.image_strength == 1.0), ("end_image_strength", request.end_image_strength == 1.0),
        *more,
    ) if not unset]


def _prepare_proxy(request: GenerationRequest, endpoint: str, options: dict, notes: list[str]):
    """Lightricks' LTX-2.3 Pro/Fast (§3.7): duration, resolution, aspect ratio and fps from short lists."""
    payload: dict = {}
    uploads: dict[str, Path] = {}
    ignored = _not_sent(request)
    if ignored:
        notes.append(f"fal's LTX-2.3 Pro/Fast ({endpoint}) has no {', '.join(ignored)}: not sent.")
    if request.mode == "extend":
        return _prepare_proxy_extend(request, options, payload, uploads, notes)
    if request.video is not None or request.video_url:
        raise L2AError(f"fal {MODE_NAMES[request.mode]} takes no input video: use mode extend.")
    if options:
        raise L2AError(f"{endpoint} takes no extra options; got {', '.join(sorted(options))}.")
    payload["prompt"] = _prompt(request)
    if request.mode == "i2v":
        _media(request, "image", "image_url", payload, uploads, required=True)
        _media(request, "end_image", "end_image_url", payload, uploads, required=False)
    elif request.image is not None or request.image_url or request.end_image is not None or request.end_image_url:
        raise L2AError("fal text-to-video takes no image: use an image-to-video endpoint.")

    fps = _nearest("fps", request.fps, PROXY_FPS, notes) if request.fps is not None else None
    resolution = _proxy_resolution(request, notes)
    aspect = _proxy_aspect(request, notes)
    seconds = request.duration
    if seconds is None and request.num_frames is not None:
        seconds = request.num_frames / (fps or DEFAULT_FPS)
    duration = None
    if seconds is not None:
        choices = FAST_DURATIONS if endpoint.endswith("/fast") else PROXY_DURATIONS
        duration = _nearest("duration", seconds, choices, notes, unit=" s")
        if duration > 10 and ((resolution or "1080p") != "1080p" or (fps or 25) != 25):
            notes.append(f"fal renders more than 10 s only at 1080p and 25 fps: duration {duration} s was sent as "
                         "10 s.")
            duration = 10
    for key, value in (("duration", duration), ("resolution", resolution), ("aspect_ratio", aspect), ("fps", fps)):
        if value is not None:
            payload[key] = value
    payload["generate_audio"] = bool(request.generate_audio)
    cost_args = dict(duration=duration or PROXY_DEFAULTS["duration"],
                     resolution=resolution or PROXY_DEFAULTS["resolution"], fps=fps,
                     generate_audio=bool(request.generate_audio))
    return payload, uploads, cost_args


def _prepare_proxy_extend(request, options, payload, uploads, notes):
    """`fal-ai/ltx-2.3/extend-video`: the clip, an optional prompt, the seconds to add, where, and the context."""
    if request.image is not None or request.image_url or request.end_image is not None or request.end_image_url:
        raise L2AError("fal-ai/ltx-2.3/extend-video takes no image: use fal-ai/ltx-2-19b/extend-video for an end "
                       "frame.")
    _media(request, "video", "video_url", payload, uploads, required=True)
    if request.prompt and request.prompt.strip():
        payload["prompt"] = request.prompt
    seconds = request.duration
    if seconds is None and request.num_frames is not None:
        seconds = request.num_frames / (request.fps or DEFAULT_FPS)
    if seconds is not None:
        payload["duration"] = _clamp("duration", seconds, EXTEND_DURATION, notes)
    unknown = sorted(set(options) - {"mode", "context"})
    if unknown:
        raise L2AError(f"fal-ai/ltx-2.3/extend-video options are mode and context; got {', '.join(unknown)}.")
    if "mode" in options:
        payload["mode"] = _choice("mode", options["mode"], EXTEND_MODES)
    if "context" in options:
        context = _number("context", options["context"], f"0-{EXTEND_CONTEXT_MAX:g} s")
        if context <= 0:
            raise L2AError(f"context = {options['context']!r} s: use more than 0 and at most {EXTEND_CONTEXT_MAX:g}.")
        payload["context"] = _clamp("context", context, (0.0, EXTEND_CONTEXT_MAX), notes)
    if request.fps is not None or request.resolution or request.aspect_ratio not in (None, "auto") or request.width:
        notes.append("fal-ai/ltx-2.3/extend-video keeps the input clip's size and frame rate: the requested ones "
                     "are not sent.")
    if not request.generate_audio:
        notes.append("fal-ai/ltx-2.3/extend-video has no generate_audio switch: the extension has sound.")
    cost_args = dict(duration=payload.get("duration", EXTEND_DEFAULT_DURATION),
                     generate_audio=bool(request.generate_audio))
    return payload, uploads, cost_args


def _prepare_audio(request: GenerationRequest, endpoint: str, options: dict, notes: list[str]):
    """`fal-ai/ltx-2-19b/distilled/audio-to-video`: the audio (its length sets the frame count), an optional first
    and last frame, and a size; only the fields fal documents for it are sent."""
    if options:
        raise L2AError(f"{endpoint} takes no extra options; got {', '.join(sorted(options))}.")
    if request.video is not None or request.video_url:
        raise L2AError("fal audio-to-video takes no input video: give the audio (and a first frame, if any).")
    payload: dict = {"prompt": _prompt(request)}
    uploads: dict[str, Path] = {}
    seconds = audio_input(request, "audio_url", payload, uploads, "fal", AUDIO_MAX_SECONDS, AUDIO_FORMATS, notes)
    image = _media(request, "image", "image_url", payload, uploads, required=False)
    _media(request, "end_image", "end_image_url", payload, uploads, required=False)
    payload["match_audio_length"] = True
    framing = replace(request, mode="i2v" if image else "t2v")  # auto sizing follows a first frame, if any
    size = _open_size(framing, notes)
    if size is not None:
        payload["video_size"] = {"width": size[0], "height": size[1]}
    if seconds is None:
        seconds = AUDIO_MAX_SECONDS
        notes.append(f"the audio's length is unknown (a URL without duration): the cost assumes the longest, "
                     f"{AUDIO_MAX_SECONDS:g} s.")
    frames = min(max(8 * math.ceil(seconds * AUDIO_FPS / 8) + 1, FRAMES[0]), FRAMES[1])
    ignored = _not_sent(request, ("fps", request.fps in (None, AUDIO_FPS)), ("num_frames", request.num_frames is None))
    if ignored:
        notes.append(f"fal's distilled audio-to-video ({endpoint}) has no {', '.join(ignored)}: not sent (its frames "
                     f"follow the audio at {AUDIO_FPS:g} fps).")
    billed = size or _auto_size(framing, notes)
    cost_args = dict(width=billed[0], height=billed[1], num_frames=frames, fps=AUDIO_FPS,
                     generate_audio=bool(request.generate_audio))
    return payload, uploads, cost_args


def _prompt(request: GenerationRequest) -> str:
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise L2AError("fal needs a prompt: describe the scene, the motion and the sound.")
    return request.prompt


def _media(request, attr: str, field: str, payload: dict, uploads: dict, *, required: bool) -> bool:
    """A local file goes to `uploads` (sent to fal's CDN before submit); a URL or data URI goes in the payload."""
    path, url = getattr(request, attr), getattr(request, f"{attr}_url")
    if path is not None and url:
        raise L2AError(f"give either {attr} (a file) or {attr}_url, not both.")
    if path is not None:
        if not Path(path).is_file():
            raise L2AError(f"{attr} file {path} does not exist.")
        uploads[field] = Path(path)
        return True
    if url:
        if not str(url).lower().startswith(("https://", "http://", "data:")):
            raise L2AError(f"{attr}_url must be an http(s) URL or a data: URI; got {str(url)[:40]!r}.")
        payload[field] = url
        return True
    if required:
        raise L2AError(f"fal {MODE_NAMES[request.mode]} needs {'a video' if attr == 'video' else 'an image'}: give "
                       f"{attr} (a file) or {attr}_url.")
    return False


def _number(name: str, value, allowed: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise L2AError(f"{name} = {value!r} is not a number: use {allowed}.")
    return number


def _clamp(name: str, value, bounds: tuple, notes: list[str], *, whole: bool = False) -> float:
    """The nearest value inside fal's range, with a note when it differs."""
    low, high = bounds
    number = _number(name, value, f"{low:g}-{high:g}")
    snapped = min(max(round(number) if whole else number, low), high)
    if snapped != number:
        notes.append(f"fal takes {name} {low:g}-{high:g}: {number:g} was sent as {snapped:g}.")
    return snapped


def _nearest(name: str, value, choices: tuple, notes: list[str], unit: str = ""):
    number = _number(name, value, ", ".join(map(str, choices)))
    best = min(choices, key=lambda choice: (abs(choice - number), -choice))
    if best != number:
        notes.append(f"fal takes {name} {', '.join(map(str, choices))}{unit}: {number:g}{unit} was sent as "
                     f"{best}{unit}.")
    return best


def _choice(name: str, value, choices: tuple):
    if isinstance(value, bool) != isinstance(choices[0], bool) or value not in choices:
        raise L2AError(f"{name} = {value!r} is not one fal takes: use one of {', '.join(map(str, choices))}.")
    return value


def _frames(request: GenerationRequest, fps: float, notes: list[str]) -> int | None:
    """num_frames (or duration x fps) snapped to LTX's 8n+1 inside fal's 9-481."""
    if request.num_frames is not None:
        wanted = _number("num_frames", request.num_frames, f"{FRAMES[0]}-{FRAMES[1]}")
        what = f"num_frames {wanted:g}"
    elif request.duration is not None:
        seconds = _number("duration", request.duration, "seconds above 0")
        wanted = seconds * fps
        what = f"{seconds:g} s at {fps:g} fps"
    else:
        return None
    frames = min(max(8 * math.floor((wanted - 1) / 8 + 0.5) + 1, FRAMES[0]), FRAMES[1])  # ties go up
    if frames != wanted:
        notes.append(f"fal takes {FRAMES[0]}-{FRAMES[1]} frames, 8n+1 for LTX: {what} was sent as num_frames "
                     f"{frames} ({frames / fps:.2f} s).")
    return frames


def _snap(value: float) -> int:
    """The nearest multiple of 32, ties down (720 -> 704, as fal's own example output is 1248x704)."""
    return max(SIZE_STEP, math.ceil(value / SIZE_STEP - 0.5) * SIZE_STEP)


def _open_size(request: GenerationRequest, notes: list[str]) -> tuple[int, int] | None:
    """Explicit width x height (snapped to 32), or one made from resolution + aspect ratio; None means auto."""
    if request.width is not None or request.height is not None:
        if request.width is None or request.height is None:
            raise L2AError("give both width and height (or neither, for fal's automatic size).")
        width = _number("width", request.width, "a whole number of pixels")
        height = _number("height", request.height, "a whole number of pixels")
        scale = min(1.0, MAX_SIZE[0] / max(width, height), MAX_SIZE[1] / min(width, height))
        size = (_snap(width * scale), _snap(height * scale))
        if scale < 1:
            notes.append(f"fal's LTX-2 renders up to {MAX_SIZE[0]}x{MAX_SIZE[1]}, in multiples of {SIZE_STEP}: "
                         f"{width:g}x{height:g} was sent as {size[0]}x{size[1]}.")
        elif size != (width, height):
            notes.append(f"LTX renders sizes in multiples of {SIZE_STEP}: {width:g}x{height:g} was sent as "
                         f"{size[0]}x{size[1]}.")
        return size
    if not request.resolution:
        return None
    short = _short_side(request.resolution)
    ratio = _ratio(request.aspect_ratio)
    if ratio is None and request.mode != "t2v":
        local = _local_size(request)
        if local is None:
            notes.append(f"resolution {request.resolution} is not sent: fal sizes the video from the input (auto).")
            return None
        ratio = local[0] / local[1]
    if ratio is None:
        ratio = 16 / 9
        notes.append("text-to-video has no input to follow: aspect ratio 16:9 is used.")
    size = (_snap(short * ratio), _snap(short)) if ratio >= 1 else (_snap(short), _snap(short / ratio))
    notes.append(f"{request.resolution} at {ratio:.3g}:1 was sent as video_size {size[0]}x{size[1]} (multiples of "
                 f"{SIZE_STEP}).")
    return size


def _short_side(resolution: str) -> int:
    text = str(resolution).strip().lower()
    if text in SHORT_SIDES:
        return SHORT_SIDES[text]
    raise L2AError(f"resolution {resolution!r} is unknown: use one of {', '.join(SHORT_SIDES)}, or width and height.")


def _ratio(aspect: str | None) -> float | None:
    """Width / height from "16:9"-style text; None for auto."""
    if aspect in (None, "", "auto"):
        return None
    left, sep, right = str(aspect).partition(":")
    try:
        ratio = float(left) / float(right) if sep else math.nan
    except (ValueError, ZeroDivisionError):
        ratio = math.nan
    if not math.isfinite(ratio) or ratio <= 0:
        raise L2AError(f"aspect_ratio {aspect!r} is not width:height (e.g. 16:9) or auto.")
    return ratio


def _local_size(request: GenerationRequest) -> tuple[int, int] | None:
    """The pixel size of a local start image (i2v) or input video (extend); None for a URL."""
    if request.mode == "i2v" and request.image is not None:
        from PIL import Image

        with Image.open(request.image) as image:
            return image.size
    if request.mode == "extend" and request.video is not None:
        from ..media import probe_video

        info = probe_video(request.video)
        return (info["width"], info["height"]) if info["width"] and info["height"] else None
    return None


def _auto_size(request: GenerationRequest, notes: list[str]) -> tuple[int, int]:
    """What an `auto` size is expected to bill: the input snapped to 32, or ASSUMED_SIZE when it is unknown."""
    local = _local_size(request)
    if local is not None:
        return _snap(local[0]), _snap(local[1])
    notes.append(f"the cost is estimated at {ASSUMED_SIZE[0]}x{ASSUMED_SIZE[1]}: fal picks the size (auto), and "
                 "bills the size it renders.")
    return ASSUMED_SIZE


def _proxy_resolution(request: GenerationRequest, notes: list[str]) -> str | None:
    if request.resolution:
        short, what = _short_side(request.resolution), request.resolution
    elif request.width and request.height:
        short, what = min(request.width, request.height), f"{request.width}x{request.height}"
    else:
        return None
    name = min(PROXY_RESOLUTIONS, key=lambda key: abs(PROXY_RESOLUTIONS[key] - short))
    if name != what:
        notes.append(f"fal's LTX-2.3 Pro/Fast renders {', '.join(PROXY_RESOLUTIONS)}: {what} was sent as {name}.")
    return name


def _proxy_aspect(request: GenerationRequest, notes: list[str]) -> str | None:
    ratio = _ratio(request.aspect_ratio)
    if ratio is None and request.width and request.height and not request.resolution:
        ratio = request.width / request.height
    if ratio is None:
        return None
    name = "16:9" if ratio >= 1 else "9:16"
    if request.aspect_ratio != name:
        what = request.aspect_ratio or f"{request.width}x{request.height}"
        notes.append(f"fal's LTX-2.3 Pro/Fast renders 16:9 or 9:16: {what} was sent as {name}.")
    return name


# ------------------------------------------------------------------------------------------------------ helpers

def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _output_cap(mode: str, payload: dict, cost_args: dict) -> int | None:
    """The most bytes the asked video can take (limits.download_cap); None for an extension, whose length
    depends on the input clip (the provider's largest output then applies, unless fal declares the size)."""
    if mode == "extend":
        return None
    codec = CODECS.get(payload.get("video_output_type", "X264 (.mp4)"), "h264")
    if "resolution" in cost_args:  # LTX-2.3 Pro/Fast: a tier, 16:9 or 9:16
        return tier_cap(PROXY_RESOLUTIONS[cost_args["resolution"]], cost_args["duration"],
                        cost_args["fps"] or PROXY_FPS[-1])
    frames, fps = cost_args["num_frames"], cost_args["fps"]
    return download_cap(cost_args["width"], cost_args["height"], frames / fps, fps, codec)


def _expiry(text) -> datetime | None:
    """fal's ISO 8601 `expires_at` (a trailing Z too, which Python 3.10 cannot parse)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _name(path: Path) -> str:
    """The file name for fal's `X-Fal-File-Name` header (headers are Latin-1: anything else becomes `upload`)."""
    return path.name if path.name.isascii() and path.name.isprintable() else "upload" + "".join(
        ch for ch in path.suffix if ch.isascii() and ch.isalnum() or ch == ".")


def _access_url(data, what: str) -> str:
    url = data.get("access_url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        raise HostedError(f"fal's {what} answer has no access_url; try again later.")
    return url.rstrip("/")
