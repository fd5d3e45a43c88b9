"""ByteCompute: the 22B "Lightricks/LTX-2" text/image-to-video API (spec §6).

ByteCompute never rejects a size or duration: it fits them to its GPUs and reports what it changed in
`adjustments`. The client snaps to the documented limits first (so the estimate matches what is rendered) and
still passes ByteCompute's own adjustments on, since the output file, not the request, is authoritative.
Status is a POST, answered 409 while the job is not ready; the video is streamed from a POST download.
"""

from __future__ import annotations

import base64
import binascii
import math
import mimetypes
import time
from pathlib import Path
from urllib.parse import quote

from ..errors import L2AError
from . import pricing
from .base import HostedError
from .limits import download_cap
from .mapping import ignored_fields, nearest_fps, start_image
from .types import MODE_NAMES, GenerationRequest, JobRef, JobResult, JobStatus, Prepared, Provider

MODEL = "Lightricks/LTX-2"
DURATION_RANGE = (4, 10)  # seconds
FPS_CHOICES = (25, 50)
MAX_LONG, MAX_SHORT = 1920, 1088
DEFAULT_SIZE = (1280, 704)
ASPECTS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4, "21:9": 21 / 9}
STATES = {"pending": "queued", "queued": "queued", "processing": "running", "running": "running",
          "completed": "completed", "failed": "failed", "error": "failed", "cancelled": "cancelled"}

# Assumptions, kept in this one place (spec §6 marks them [INF]/[UNK]):
# [INF] base URL https://us-01.bytecompute.ai (configurable through base_url).
# [INF] submits are multipart/form-data (documented for `image` and for the 2.3 /v1/generate); a local image
#       travels as the `image` file part, a URL as `image_uri`.
# [INF] sizes snap to multiples of 32 and fit within 1920 on the long side and 1088 on the short side,
#       whatever the orientation; durations are whole seconds.
# [INF] LTX-2 always renders sound here (no documented switch): generate_audio=False is said to be ignored.
# [UNK] response shapes: `id` (else `job_id`), `status` (unknown values = still running), `error` as a string
#       or {"message"}, `adjustments` null, a list of {"field", "requested", "applied", "reason"}, or a dict.


class ByteComputeProvider(Provider):
    name = "bytecompute"
    label = "ByteCompute"
    key_env = "BYTECOMPUTE_API_KEY"
    default_base_url = "https://us-01.bytecompute.ai"
    modes = ("t2v", "i2v")
    largest_output = (1920, 1088, 10.0, 50.0, "h264")
    ENDPOINTS = {"text-to-video": "t2v", "image-to-video": "i2v"}
    # [UNK] ByteCompute's "Lightricks/LTX-2" is a 22B model its page does not place in a family (LTX-2 is 19B,
    # LTX-2.3 22B): no family is matched to it, so "auto (match the local model's family)" is refused here.
    FAMILY_ENDPOINTS: dict = {}

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def _job_url(self, job: JobRef, suffix: str = "") -> str:
        return f"{self.base_url}/v1/jobs/{quote(job.job_id, safe='')}{suffix}"

    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        endpoint = endpoint or next(key for key, mode in self.ENDPOINTS.items() if mode == request.mode)
        if self.ENDPOINTS.get(endpoint) != request.mode:
            raise L2AError(f"ByteCompute endpoint {endpoint!r} does not do {MODE_NAMES[request.mode]}; it has: "
                           f"{', '.join(self.ENDPOINTS)}.")
        if request.end_image is not None or request.end_image_url:
            raise L2AError("ByteCompute's LTX-2 takes no end image: use fal for first-and-last-frame video.")
        if not request.prompt.strip():
            raise L2AError("ByteCompute needs a prompt: describe the video.")
        notes: list[str] = []
        fps = nearest_fps(request, FPS_CHOICES, notes, "ByteCompute")
        duration = _duration(request, fps, notes)
        payload: dict = {"model": MODEL, "prompt": request.prompt, "duration": duration, "fps": fps}
        uploads: dict[str, Path] = {}
        if request.mode == "i2v":
            start_image(request, "image_uri", payload, uploads, "ByteCompute")
        size = _size(request, notes)
        if size:
            payload["resolution"] = f"{size[0]}x{size[1]}"
        else:
            notes.append("ByteCompute renders at the image's own size (fitted to 1920x1088); the estimate assumes "
                         f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}.")
        priced = size or DEFAULT_SIZE
        ignored = ignored_fields(request, first={"seed (results differ run to run)": True}, last={
            "silent mode (audio is always generated)": not request.generate_audio,
        })
        if ignored:
            notes.append(f"ByteCompute has no {', '.join(ignored)}: not sent.")
        cost = pricing.estimate(self.name, endpoint, width=priced[0], height=priced[1], fps=fps, duration=duration)
        rendered = size or (MAX_LONG, MAX_SHORT)  # the image's own size, fitted to the maximum
        return Prepared(self.name, endpoint, payload, uploads=uploads, notes=tuple(notes), cost=cost,
                        max_bytes=download_cap(*rendered, duration, fps))

    def upload(self, path: Path) -> str:
        """A data URI (ByteCompute documents them for `image_uri`); submit sends its bytes as the `image` file."""
        mime = mimetypes.guess_type(str(path))[0] or ""
        if not mime.startswith("image/"):
            raise L2AError(f"ByteCompute takes an image (PNG, JPEG, WebP); {Path(path).name} is not one.")
        return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"

    def submit(self, prepared: Prepared) -> JobRef:
        fields = dict(prepared.payload)
        image = fields.pop("image_uri", None)
        parts = [(key, (None, str(value))) for key, value in fields.items()]
        if image is not None:
            parts.append(_image_part(image))
        url = f"{self.base_url}/v1/{quote(prepared.endpoint, safe='')}"
        data = self.http.json("POST", url, retry=False, headers=self._headers(), files=parts)
        job_id = data.get("id") or data.get("job_id")
        if not job_id:
            raise HostedError("ByteCompute accepted the request but returned no job id; check your ByteCompute "
                              "console before submitting again (the job may bill).",
                              maybe_accepted=True)
        return JobRef(self.name, prepared.endpoint, str(job_id), submitted_at=time.time())

    def _job(self, job: JobRef) -> dict | None:
        """The job's JSON, or None while ByteCompute answers 409 (not ready yet)."""
        try:
            return self.http.json("POST", self._job_url(job), retry=True, headers=self._headers())
        except HostedError as error:
            if getattr(error, "status", None) == 409:
                return None
            raise

    def status(self, job: JobRef) -> JobStatus:
        data = self._job(job)
        if data is None:
            return JobStatus("running", message="ByteCompute: the job is not ready yet")
        state = STATES.get(str(data.get("status", "")).lower(), "running")
        message = ""
        if state == "failed":
            message = _error_text(data.get("error")) or "ByteCompute reported the job failed without a reason"
        adjustments = normalize_adjustments(data.get("adjustments"))
        if adjustments:
            message = "; ".join(filter(None, [message, describe_adjustments(adjustments)]))
        return JobStatus(state, message=message, raw=data)

    def result(self, job: JobRef) -> JobResult:
        data = self._job(job)
        if data is None or STATES.get(str(data.get("status", "")).lower()) != "completed":
            raise HostedError(f"ByteCompute job {job.job_id} is not finished yet; poll it again later.")
        return JobResult(None, adjustments=normalize_adjustments(data.get("adjustments")), raw=data)

    def fetch(self, job: JobRef, result: JobResult, dest: Path) -> Path:
        limit, why = self.download_limit(job, result)
        return self.http.download(self._job_url(job, "/download"), dest, method="POST", headers=self._headers(),
                                  max_bytes=limit, limit_reason=why)


def normalize_adjustments(value) -> dict:
    """ByteCompute's `adjustments` as {field: {"requested", "applied", "reason"}} (empty when nothing changed)."""
    if isinstance(value, dict):
        return {str(key): item if isinstance(item, dict) else {"applied": item} for key, item in value.items()}
    if isinstance(value, list):
        changes = {}
        for item in value:
            if isinstance(item, dict) and item.get("field"):
                changes[str(item["field"])] = {key: item[key] for key in ("requested", "applied", "reason")
                                               if key in item}
        return changes
    return {}


def describe_adjustments(adjustments: dict) -> str:
    parts = []
    for field, change in adjustments.items():
        text = f"{field} {change.get('requested', '?')} -> {change.get('applied', '?')}"
        parts.append(f"{text} ({change['reason']})" if change.get("reason") else text)
    return "ByteCompute adjusted " + ", ".join(parts)




def _error_text(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "")
    return str(error or "")


def _image_part(image: str) -> tuple:
    """The multipart part for the image: the bytes of a data URI as the `image` file, a URL as `image_uri`."""
    if not image.startswith("data:"):
        return ("image_uri", (None, image))
    header, _, encoded = image.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    try:
        content = base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise L2AError("The image for ByteCompute is not a valid base64 data URI.") from error
    suffix = mimetypes.guess_extension(mime) or ""
    return ("image", (f"image{suffix}", content, mime))


def _duration(request: GenerationRequest, fps: int, notes: list[str]) -> int:
    seconds = request.duration
    if seconds is None and request.num_frames:
        seconds = request.num_frames / fps
    if seconds is None:
        return 5
    low, high = DURATION_RANGE
    snapped = min(high, max(low, round(seconds)))
    if snapped != seconds:
        notes.append(f"ByteCompute renders {low}-{high} whole seconds: {round(seconds, 2):g} s was sent as {snapped} s.")
    return snapped


def _requested_size(request: GenerationRequest) -> tuple[int, int] | None:
    """Width and height as asked: explicit pixels, "WxH", or a tier like "720p" with an aspect ratio ("auto" takes
    the local image's). None: image-to-video from a URL image with no size, which ByteCompute sizes itself."""
    if request.width and request.height:
        return request.width, request.height
    text = (request.resolution or "").strip().lower()
    if "x" in text:
        width, _, height = text.partition("x")
        if width.isdigit() and height.isdigit():
            return int(width), int(height)
    short = 0
    if text in ("4k", "2160p"):
        short = 2160
    elif text.endswith("p") and text[:-1].isdigit():
        short = int(text[:-1])
    elif text:
        raise L2AError(f"Unknown resolution {request.resolution!r}: use e.g. 720p or 1280x704.")
    aspect = request.aspect_ratio or "auto"
    if aspect == "auto" and request.mode == "i2v":
        image = _image_size(request.image)
        if image is None or not short:
            return image
        ratio = image[0] / image[1]
    elif aspect == "auto":
        if not short:
            return DEFAULT_SIZE
        ratio = 16 / 9
    elif aspect in ASPECTS:
        ratio = ASPECTS[aspect]
    else:
        raise L2AError(f"Unknown aspect ratio {aspect!r}: use one of {', '.join(ASPECTS)} or auto.")
    short = short or 720
    return (round(short * ratio), short) if ratio >= 1 else (short, round(short / ratio))


def _fit(width: int, height: int) -> tuple[int, int]:
    """Scale down to fit 1920 x 1088 (either orientation) keeping the aspect, then round to multiples of 32 (ties
    down, as ByteCompute's own 1280x704 default for 720p does)."""
    scale = min(1.0, MAX_LONG / max(width, height), MAX_SHORT / min(width, height))
    return tuple(max(32, math.ceil(side * scale / 32 - 0.5) * 32) for side in (width, height))


def _size(request: GenerationRequest, notes: list[str]) -> tuple[int, int] | None:
    asked = _requested_size(request)
    if asked is None:
        return None
    fitted = _fit(*asked)
    if fitted != asked:
        notes.append(f"ByteCompute renders multiples of 32 up to 1920x1088: {asked[0]}x{asked[1]} was sent as "
                     f"{fitted[0]}x{fitted[1]}.")
    return fitted


def _image_size(path) -> tuple[int, int] | None:
    """A local image's width and height (only the header is read); None without a local image."""
    if path is None:
        return None
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except OSError as error:
        raise L2AError(f"Cannot read the image {Path(path).name} for ByteCompute: {error}") from error


