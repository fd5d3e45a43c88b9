"""Lightricks' own LTX API (`api.ltx.video`, spec §7), through its async v2 endpoints.

v1 holds the connection open for the whole render (timeouts, and a lost answer still bills), so only v2 is used:
submit once, poll `GET /v2/{op}/{id}`, download `result.video_url`. Local images go through the pre-signed upload.
"""

from __future__ import annotations

import mimetypes
import time
from pathlib import Path
from urllib.parse import quote

from ..errors import L2AError
from . import pricing
from .base import HostedError
from .limits import download_cap
from .mapping import ignored_fields, nearest_fps, requested_short_side, start_image
from .types import GenerationRequest, JobRef, JobResult, JobStatus, Prepared, Provider

OPERATIONS = {"t2v": "text-to-video", "i2v": "image-to-video"}
MODELS = ("ltx-2-fast", "ltx-2-pro")
RESOLUTIONS = {1080: "1920x1080", 1440: "2560x1440", 2160: "3840x2160"}  # short side -> the API's value
FPS_CHOICES = (25, 50)
SHORT_DURATIONS = (6, 8, 10)
LONG_DURATIONS = (6, 8, 10, 12, 14, 16, 18, 20)  # ltx-2-fast at 1920x1080 and 25 fps only
MAX_PROMPT = 5000  # characters, the v2 limit (docs.ltx.video)
# Who has the modes this provider lacks, for its refusals.
PROVIDERS_BY_MODE = {"extend": "fal or wavespeed"}
STATES = {"pending": "queued", "processing": "running", "completed": "completed", "failed": "failed"}

# Assumptions, kept in this one place:
# [2ND] durations above 10 s come in even steps (12..20), as ComfyUI's and resellers' duration lists show.
# [DOC, docs.ltx.video] POST /v1/upload takes no body and answers {upload_url, storage_uri, expires_at,
#       required_headers}; the file is PUT to upload_url with required_headers and no API key.
# [UNK] statuses other than pending|processing|completed|failed are read as "still running".


class LtxProvider(Provider):
    name = "ltx"
    key_env = "LTX_API_KEY"
    default_base_url = "https://api.ltx.video"
    modes = ("t2v", "i2v")
    largest_output = (3840, 2160, 20.0, 50.0, "h264")
    ENDPOINTS = {f"{model}/{op}": mode for model in MODELS for mode, op in OPERATIONS.items()}

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def _job_url(self, job: JobRef) -> str:
        op = job.endpoint.split("/", 1)[1]
        return f"{self.base_url}/v2/{op}/{quote(job.job_id, safe='')}"

    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        if request.mode not in self.modes:
            raise L2AError(f"The LTX API has no {_mode_name(request.mode)}: use {PROVIDERS_BY_MODE[request.mode]}.")
        endpoint = endpoint or f"{MODELS[0]}/{OPERATIONS[request.mode]}"
        if self.ENDPOINTS.get(endpoint) != request.mode:
            choices = [key for key, mode in self.ENDPOINTS.items() if mode == request.mode]
            raise L2AError(f"The LTX API endpoint {endpoint!r} does not do {_mode_name(request.mode)}; use one of "
                           f"{', '.join(choices)}.")
        if request.end_image is not None or request.end_image_url:
            raise L2AError("The LTX API's LTX-2 models take no end image: use fal for first-and-last-frame video.")
        if not request.prompt.strip() or len(request.prompt) > MAX_PROMPT:
            raise L2AError(f"The LTX API needs a prompt of 1-{MAX_PROMPT} characters; got {len(request.prompt)}.")
        model = endpoint.split("/", 1)[0]
        notes: list[str] = []
        resolution = _resolution(request, notes)
        fps = nearest_fps(request, FPS_CHOICES, notes, "The LTX API")
        duration = _duration(request, model, resolution, fps, notes)
        payload: dict = {"prompt": request.prompt, "model": model, "duration": duration, "resolution": resolution,
                         "fps": fps, "generate_audio": request.generate_audio}
        uploads: dict[str, Path] = {}
        if request.mode == "i2v":
            start_image(request, "image_uri", payload, uploads, "LTX API")
        ignored = ignored_fields(request, first={"seed (results differ run to run)": True})
        if ignored:
            notes.append(f"The LTX API has no {', '.join(ignored)}: not sent.")
        cost = pricing.estimate(self.name, endpoint, resolution=resolution, duration=duration, fps=fps,
                                generate_audio=request.generate_audio)
        width, height = map(int, resolution.split("x"))
        return Prepared(self.name, endpoint, payload, uploads=uploads, notes=tuple(notes), cost=cost,
                        max_bytes=download_cap(width, height, duration, fps))

    def upload(self, path: Path) -> str:
        """Pre-signed upload: ask for a URL, PUT the file there (without the key), use the returned storage URI."""
        path = Path(path)
        mime = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        ticket = self.http.json("POST", f"{self.base_url}/v1/upload", retry=True, headers=self._headers())
        upload_url, storage_uri = ticket.get("upload_url"), ticket.get("storage_uri")
        if not isinstance(upload_url, str) or not isinstance(storage_uri, str):
            raise HostedError("The LTX API upload answer has no upload_url/storage_uri; try again later, or give a "
                              "public image URL instead of a local file.")
        self.http.check_url(upload_url)
        headers = {"Content-Type": mime, **{str(k): str(v) for k, v in (ticket.get("required_headers") or {}).items()}}
        self.http.request("PUT", upload_url, retry=True, headers=headers, data=path.read_bytes())
        return storage_uri

    def submit(self, prepared: Prepared) -> JobRef:
        op = prepared.endpoint.split("/", 1)[1]
        data = self.http.json("POST", f"{self.base_url}/v2/{op}", retry=False, headers=self._headers(),
                              json=prepared.payload)
        if not data.get("id"):
            raise HostedError("The LTX API accepted the request but returned no job id; check your LTX console "
                              "before submitting again (the job may bill).",
                              maybe_accepted=True)
        return JobRef(self.name, prepared.endpoint, str(data["id"]), submitted_at=time.time())

    def status(self, job: JobRef) -> JobStatus:
        data = self.http.json("GET", self._job_url(job), retry=True, headers=self._headers())
        state = STATES.get(data.get("status"), "running")
        message = _error_text(data.get("error")) if state == "failed" else ""
        if state == "failed" and not message:
            message = "the LTX API reported the job failed without a reason"
        return JobStatus(state, message=message, raw=data)

    def result(self, job: JobRef) -> JobResult:
        data = self.http.json("GET", self._job_url(job), retry=True, headers=self._headers())
        video_url = (data.get("result") or {}).get("video_url")
        if data.get("status") != "completed" or not isinstance(video_url, str) or not video_url:
            raise HostedError(f"LTX API job {job.job_id} has no video (status {data.get('status')!r}); poll it "
                              "again later (results are kept 24 h).")
        return JobResult(video_url, raw=data)


def _mode_name(mode: str) -> str:
    return {"t2v": "text-to-video", "i2v": "image-to-video", "extend": "video extension"}.get(mode, mode)


def _error_text(error) -> str:
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        return f"{message} ({kind})" if kind and message else str(message or kind or "")
    return str(error or "")


def _resolution(request: GenerationRequest, notes: list[str]) -> str:
    short = requested_short_side(request, {"4k": 2160, "uhd": 2160}, "1080p, 1440p or 2160p")
    portrait = (request.aspect_ratio not in (None, "auto", "16:9")
                or bool(request.width and request.height and request.width < request.height))
    if portrait:
        notes.append("The LTX API's LTX-2 models render 16:9 landscape only: the video will be landscape.")
    if short is None:
        return RESOLUTIONS[1080]
    tier = min(RESOLUTIONS, key=lambda side: abs(side - short))
    if tier != short:
        notes.append(f"The LTX API renders 1080p, 1440p or 2160p: {short}p was sent as {RESOLUTIONS[tier]}.")
    return RESOLUTIONS[tier]


def _duration(request: GenerationRequest, model: str, resolution: str, fps: int, notes: list[str]) -> int:
    seconds = request.duration
    if seconds is None and request.num_frames:
        seconds = request.num_frames / fps
    if seconds is None:
        return SHORT_DURATIONS[0]
    long_ok = model == "ltx-2-fast" and resolution == RESOLUTIONS[1080] and fps == 25
    choices = LONG_DURATIONS if long_ok else SHORT_DURATIONS
    snapped = min(choices, key=lambda choice: abs(choice - seconds))
    if snapped != seconds:
        why = "" if long_ok or seconds <= 11 else " (over 10 s needs ltx-2-fast at 1920x1080 and 25 fps)"
        notes.append(f"The LTX API renders {', '.join(map(str, choices))} s{why}: {round(seconds, 2):g} s was sent as "
                     f"{snapped} s.")
    return snapped


