"""Lightricks' own LTX API (`api.ltx.video`, spec hosted-apis.md §7; LTX-2.5 in ltx2.5.md §11).

Text-, image- and audio-to-video go through the async v2 endpoints: submit once, poll `GET /v2/{op}/{id}`, download
`result.video_url`. Retake goes through v1, which is synchronous: the answer to its one POST is the video itself,
so it is sent exactly once, waited for as long as the job's deadline allows, streamed to its file and never resent;
an answer lost on the way cannot be fetched again (there is no job to resume). Local images, audio and clips go
through the pre-signed upload.
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import L2AError
from . import pricing
from .base import HostedError
from .limits import download_cap
from .mapping import (
    audio_input,
    check_window,
    clip_info,
    ignored_fields,
    nearest_fps,
    requested_short_side,
    start_image,
)
from .types import MODE_NAMES, GenerationRequest, JobRef, JobResult, JobStatus, Prepared, Provider


@dataclass(frozen=True)
class Model:
    """What one LTX API model renders (ComfyUI's LTX API nodes and docs.ltx.video, see the assumptions below)."""

    name: str
    label: str
    family: str  # the local model family it is ("2.0", "2.5"): the Hosted Backend's family matching uses it
    modes: tuple[str, ...]
    sides: tuple[int, ...]  # short sides, 16:9 (and 9:16 where `portrait`)
    portrait: bool
    fps: tuple[int, ...]
    durations: tuple[int, ...]  # seconds, at any size and rate
    long_durations: tuple[int, ...]  # seconds allowed only at `long_sides` and `long_fps`
    long_sides: tuple[int, ...]
    long_fps: tuple[int, ...]
    end_image: bool


LONG = (12, 14, 16, 18, 20)
MODELS = {
    "ltx-2-fast": Model("ltx-2-fast", "LTX-2 Fast", "2.0", ("t2v", "i2v"), (1080, 1440, 2160), False, (25, 50),
                        (6, 8, 10), LONG, (1080,), (25,), False),
    "ltx-2-pro": Model("ltx-2-pro", "LTX-2 Pro", "2.0", ("t2v", "i2v"), (1080, 1440, 2160), False, (25, 50),
                       (6, 8, 10), (), (), (), False),
    "ltx-2-5-fast": Model("ltx-2-5-fast", "LTX-2.5 Fast", "2.5", ("t2v", "i2v", "a2v"), (720, 1080, 1440, 2160), True,
                          (24, 25, 48, 50), (2, 3, 4, 5, 6, 8, 10), LONG, (720, 1080), (24, 25), True),
    "ltx-2-5-pro": Model("ltx-2-5-pro", "LTX-2.5 Pro", "2.5", ("t2v", "i2v", "a2v"), (720, 1080), True, (24, 25, 50),
                         (2, 3, 4, 5, 6, 8, 10), (), (), (), True),
}
V2_OPERATIONS = {"t2v": "text-to-video", "i2v": "image-to-video", "a2v": "audio-to-video"}
RETAKE = "retake"  # the v1 retake endpoint; it runs the API's own retake model (LTX-2.3 Pro by its docs)
ENDPOINTS = {**{f"{m.name}/{V2_OPERATIONS[mode]}": mode for m in MODELS.values() for mode in m.modes},
             RETAKE: "retake"}
DEFAULT_ENDPOINTS = {"t2v": "ltx-2-fast/text-to-video", "i2v": "ltx-2-fast/image-to-video",
                     "a2v": "ltx-2-5-fast/audio-to-video", "retake": RETAKE}
# The endpoint "auto (match the local model's family)" picks per family and mode: the Fast tier, as plain auto does.
FAMILY_ENDPOINTS = {
    "2.0": {"t2v": "ltx-2-fast/text-to-video", "i2v": "ltx-2-fast/image-to-video"},
    "2.3": {"retake": RETAKE},
    "2.5": {"t2v": "ltx-2-5-fast/text-to-video", "i2v": "ltx-2-5-fast/image-to-video",
            "a2v": "ltx-2-5-fast/audio-to-video"},
}
SIDE_NAMES = {720: "720p", 1080: "1080p", 1440: "1440p", 2160: "2160p"}
MAX_PROMPT = 5000  # characters, the v2 limit (docs.ltx.video)
DEFAULT_DURATION = 6
DEFAULT_FPS = 25  # every model renders it; the API's own default
A2V_SIDE = 1080  # audio-to-video renders 1920x1080 or 1080x1920
A2V_FPS = 25  # "Output video is 25 fps" (docs.ltx.video audio-to-video)
AUDIO_SECONDS = 20.0  # audio 2-20 s sets the video's length
AUDIO_FORMATS = ("wav", "mp3", "ogg")
RETAKE_PARTS = {"both": "replace_audio_and_video", "video": "replace_video", "audio": "replace_audio"}
RETAKE_MIN_WINDOW = 2.0  # seconds, docs.ltx.video
RETAKE_MIN_FRAMES = 73  # input frames, docs.ltx.video ("around 3 seconds at 24fps")
RETAKE_MAX_SIZE = (3840, 2160)
RETAKE_MAX_CLIP = 20.0  # seconds of input
RETAKE_FPS = 50  # the highest rate the download limit allows for a retake's output
STATES = {"pending": "queued", "processing": "running", "completed": "completed", "failed": "failed"}
LOST_ANSWER = ("The LTX API's retake is synchronous: its answer is the video itself, so a lost answer cannot be "
               "fetched again by id (the retake may still bill; see your LTX console).")

# Assumptions, kept in this one place:
# [DOC, docs.ltx.video] LTX-2: 1920x1080/2560x1440/3840x2160, 25 or 50 fps, 6/8/10 s, 12-20 s for ltx-2-fast at
#       1920x1080 and 25 fps. POST /v1/upload takes no body and answers {upload_url, storage_uri, expires_at,
#       required_headers}; the file is PUT to upload_url with required_headers and no API key.
# [SRC, ComfyUI's LTX-2.5 API nodes] ltx-2-5-fast: 720p-2160p in 16:9 and 9:16, 24/25/48/50 fps, 2-6, 8, 10 s and
#       12-20 s at 720p/1080p and 24/25 fps; ltx-2-5-pro: 720p/1080p, 24/25/50 fps, 2-6, 8, 10 s; image-to-video
#       takes last_frame_uri; audio-to-video takes prompt, model, resolution (1920x1080 or 1080x1920), audio_uri
#       (2-20 s) and image_uri, and no duration, fps or audio switch.
# [DOC, docs.ltx.video] v1 retake: video_uri (at most 3840x2160, at least 73 frames), start_time >= 0, duration
#       >= 2, prompt (<= 5000), mode replace_audio | replace_video | replace_audio_and_video; the answer body is
#       the MP4; the output is 1920x1080, or 1080x1920 for a portrait input. `model` is optional and not sent.
# [2ND] a retake's input is at most about 20 s (resellers: 20-21 s); LTX audio inputs are wav, mp3 or ogg.
# [UNK] statuses other than pending|processing|completed|failed are read as "still running".


class LtxProvider(Provider):
    name = "ltx"
    label = "The LTX API"
    key_env = "LTX_API_KEY"
    default_base_url = "https://api.ltx.video"
    modes = ("t2v", "i2v", "a2v", "retake")
    largest_output = (3840, 2160, 20.0, 50.0, "h264")
    ENDPOINTS = ENDPOINTS
    FAMILY_ENDPOINTS = FAMILY_ENDPOINTS

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def _job_url(self, job: JobRef) -> str:
        if job.endpoint == RETAKE:
            raise HostedError(f"LTX API retake {job.job_id} cannot be polled or resumed. {LOST_ANSWER}")
        op = job.endpoint.split("/", 1)[1]
        return f"{self.base_url}/v2/{op}/{quote(job.job_id, safe='')}"

    # -- mapping (no network) --------------------------------------------------------------------------------------

    def map_request(self, request: GenerationRequest, endpoint: str | None) -> Prepared:
        endpoint = endpoint or DEFAULT_ENDPOINTS[request.mode]
        if ENDPOINTS.get(endpoint) != request.mode:
            choices = [key for key, mode in ENDPOINTS.items() if mode == request.mode]
            raise L2AError(f"The LTX API endpoint {endpoint!r} does not do {MODE_NAMES[request.mode]}; use one of "
                           f"{', '.join(choices)}.")
        if len(request.prompt) > MAX_PROMPT:
            raise L2AError(f"The LTX API takes prompts of 1-{MAX_PROMPT} characters; got {len(request.prompt)}.")
        if request.mode == "retake":
            return self._map_retake(request)
        model = MODELS[endpoint.split("/", 1)[0]]
        if request.mode == "a2v":
            return self._map_audio(request, endpoint, model)
        return self._map_generation(request, endpoint, model)

    def _map_generation(self, request: GenerationRequest, endpoint: str, model: Model) -> Prepared:
        if (request.end_image is not None or request.end_image_url) and not model.end_image:
            raise L2AError(f"The LTX API's {model.label} takes no end image (last frame, an LTX-2.5 option): use "
                           "ltx-2-5-fast/image-to-video or ltx-2-5-pro/image-to-video, or fal.")
        if not request.prompt.strip():
            raise L2AError(f"The LTX API needs a prompt of 1-{MAX_PROMPT} characters; got an empty one.")
        notes: list[str] = []
        side, resolution = _resolution(request, model, notes)
        fps = nearest_fps(request, model.fps, notes, "The LTX API") if request.fps is not None else DEFAULT_FPS
        duration = _duration(request, model, side, fps, notes)
        payload: dict = {"prompt": request.prompt, "model": model.name, "duration": duration,
                         "resolution": resolution, "fps": fps, "generate_audio": request.generate_audio}
        uploads: dict[str, Path] = {}
        if request.mode == "i2v":
            start_image(request, "image_uri", payload, uploads, "LTX API")
            if request.end_image is not None:
                uploads["last_frame_uri"] = Path(request.end_image)
            elif request.end_image_url:
                payload["last_frame_uri"] = request.end_image_url
        elif request.end_image is not None or request.end_image_url:
            raise L2AError("The LTX API's text-to-video takes no end image: give a start image too (image-to-video).")
        _note_ignored(request, notes)
        cost = pricing.estimate(self.name, endpoint, resolution=resolution, duration=duration, fps=fps,
                                generate_audio=request.generate_audio)
        width, height = map(int, resolution.split("x"))
        return Prepared(self.name, endpoint, payload, uploads=uploads, notes=tuple(notes), cost=cost,
                        max_bytes=download_cap(width, height, duration, fps))

    def _map_audio(self, request: GenerationRequest, endpoint: str, model: Model) -> Prepared:
        if request.end_image is not None or request.end_image_url:
            raise L2AError("The LTX API's audio-to-video takes a first frame only, no end image: use fal's "
                           "fal-ai/ltx-2-19b/distilled/audio-to-video for a last frame.")
        has_image = request.image is not None or bool(request.image_url)
        if not request.prompt.strip() and not has_image:
            raise L2AError("The LTX API's audio-to-video needs a prompt, or a first frame to animate.")
        notes: list[str] = []
        payload: dict = {"prompt": request.prompt, "model": model.name}
        uploads: dict[str, Path] = {}
        seconds = audio_input(request, "audio_uri", payload, uploads, "The LTX API", AUDIO_SECONDS, AUDIO_FORMATS,
                              notes)
        if seconds is None:
            seconds = AUDIO_SECONDS
            notes.append(f"the audio's length is unknown (a URL without duration): the cost assumes the longest, "
                         f"{AUDIO_SECONDS:g} s.")
        portrait = _portrait(request)
        resolution = "1080x1920" if portrait else "1920x1080"
        short = requested_short_side(request, _ALIASES, "720p, 1080p, 1440p or 2160p")
        if short not in (None, A2V_SIDE):
            notes.append(f"The LTX API's audio-to-video renders 1080p only: {short}p was sent as {resolution}.")
        if has_image:
            start_image(request, "image_uri", payload, uploads, "LTX API")
        payload["resolution"] = resolution
        follows = [name for name, given in (("duration", request.duration is not None and request.audio is not None),
                                            ("frame count", request.num_frames is not None),
                                            ("frame rate", request.fps not in (None, A2V_FPS)),
                                            ("silent mode", not request.generate_audio)) if given]
        if follows:
            notes.append(f"The LTX API's audio-to-video follows the audio (its length, {A2V_FPS} fps, its sound): the "
                         f"{', '.join(follows)} asked for was not sent.")
        _note_ignored(request, notes)
        cost = pricing.estimate(self.name, endpoint, resolution=resolution, duration=seconds)
        return Prepared(self.name, endpoint, payload, uploads=uploads, notes=tuple(notes), cost=cost,
                        max_bytes=download_cap(1920, 1080, seconds, A2V_FPS))

    def _map_retake(self, request: GenerationRequest) -> Prepared:
        if request.video is not None and request.video_url:
            raise L2AError("give either video (a file) or video_url, not both.")
        notes: list[str] = []
        payload: dict = {}
        uploads: dict[str, Path] = {}
        seconds = None
        if request.video is not None:
            info = clip_info(Path(request.video))
            _check_retake_clip(info)
            seconds = info.seconds
            uploads["video_uri"] = Path(request.video)
        elif request.video_url:
            payload["video_uri"] = request.video_url
            notes.append(f"the clip's length is unknown (a URL): the window is not checked against it, and the cost "
                         f"assumes the longest clip a retake takes, {RETAKE_MAX_CLIP:g} s.")
        else:
            raise L2AError("The LTX API's retake needs the clip: connect a video or give a video URL.")
        length = check_window(request, seconds, "the LTX API", RETAKE_MIN_WINDOW, seconds or RETAKE_MAX_CLIP)
        payload.update(start_time=round(float(request.window_start), 3), duration=round(length, 3),
                       mode=RETAKE_PARTS[request.retake_part])
        if request.prompt.strip():
            payload["prompt"] = request.prompt
        asked = [name for name, given in (("size", request.width or request.resolution),
                                          ("frame rate", request.fps), ("length", request.num_frames)) if given]
        if asked:
            notes.append(f"The LTX API's retake keeps the clip's length and renders 1080p in its orientation: the "
                         f"{', '.join(asked)} asked for was not sent.")
        _note_ignored(request, notes)
        billed = seconds if seconds is not None else RETAKE_MAX_CLIP
        cost = pricing.estimate(self.name, RETAKE, duration=round(billed, 3))
        return Prepared(self.name, RETAKE, payload, uploads=uploads, notes=tuple(notes), cost=cost,
                        max_bytes=download_cap(1920, 1080, billed, RETAKE_FPS))

    # -- the network -----------------------------------------------------------------------------------------------

    def upload(self, path: Path) -> str:
        """Pre-signed upload: ask for a URL, PUT the file there (without the key), use the returned storage URI."""
        path = Path(path)
        mime = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        ticket = self.http.json("POST", f"{self.base_url}/v1/upload", retry=True, headers=self._headers())
        upload_url, storage_uri = ticket.get("upload_url"), ticket.get("storage_uri")
        if not isinstance(upload_url, str) or not isinstance(storage_uri, str):
            raise HostedError("The LTX API upload answer has no upload_url/storage_uri; try again later, or give a "
                              "public URL instead of a local file.")
        self.http.check_url(upload_url)
        headers = {"Content-Type": mime, **{str(k): str(v) for k, v in (ticket.get("required_headers") or {}).items()}}
        self.http.request("PUT", upload_url, retry=True, headers=headers, data=path.read_bytes())
        return storage_uri

    def synchronous(self, prepared: Prepared) -> bool:
        return prepared.endpoint == RETAKE

    def submit_sync(self, prepared: Prepared, dest: Path, wait_s: float) -> tuple[JobRef, JobResult, Path]:
        """The v1 retake: one POST, its answer (the MP4) streamed to `dest`; see the module docstring."""
        path, headers = self.http.send_for_file(
            f"{self.base_url}/v1/retake", Path(dest), headers=self._headers(), json=prepared.payload, wait_s=wait_s,
            max_bytes=prepared.max_bytes, limit_reason="the most the retaken clip can take",
            what="LTX API retake (v1, synchronous)", lost=LOST_ANSWER)
        request_id = headers.get("x-request-id") or f"v1-{uuid.uuid4()}"
        job = JobRef(self.name, RETAKE, request_id, submitted_at=time.time(), max_bytes=prepared.max_bytes)
        return job, JobResult(None, raw={"x-request-id": request_id}), path

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


_ALIASES = {"4k": 2160, "uhd": 2160, "2k": 1440, "qhd": 1440, "fhd": 1080, "hd": 720}


def _error_text(error) -> str:
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        return f"{message} ({kind})" if kind and message else str(message or kind or "")
    return str(error or "")


def _note_ignored(request: GenerationRequest, notes: list[str]) -> None:
    ignored = ignored_fields(request, first={"seed (results differ run to run)": True})
    if ignored:
        notes.append(f"The LTX API has no {', '.join(ignored)}: not sent.")


def _ratio(request: GenerationRequest) -> float | None:
    """Width / height asked for (an aspect ratio, else a custom size); None when nothing was asked."""
    aspect = request.aspect_ratio
    if aspect not in (None, "", "auto"):
        left, _, right = str(aspect).partition(":")
        try:
            return float(left) / float(right)
        except (ValueError, ZeroDivisionError) as error:
            raise L2AError(f"aspect_ratio {aspect!r} is not width:height (e.g. 16:9) or auto.") from error
    if request.width and request.height:
        return request.width / request.height
    return None


def _portrait(request: GenerationRequest) -> bool:
    ratio = _ratio(request)
    return ratio is not None and ratio < 1


def _resolution(request: GenerationRequest, model: Model, notes: list[str]) -> tuple[int, str]:
    """(short side, "WxH") the model renders nearest to the request, with notes for what changed."""
    tiers = ", ".join(SIDE_NAMES[side] for side in model.sides[:-1]) + f" or {SIDE_NAMES[model.sides[-1]]}"
    short = requested_short_side(request, _ALIASES, tiers)
    ratio = _ratio(request)
    portrait = ratio is not None and ratio < 1
    if not model.portrait and ratio is not None and abs(ratio - 16 / 9) > 0.01:
        notes.append(f"The LTX API's {model.label} renders 16:9 landscape only: the video will be landscape.")
        portrait = False
    elif model.portrait and ratio is not None and min(abs(ratio - 16 / 9), abs(ratio - 9 / 16)) > 0.01:
        notes.append(f"The LTX API's {model.label} renders 16:9 or 9:16: {request.aspect_ratio or 'the size'} was "
                     f"sent as {'9:16' if portrait else '16:9'}.")
    side = 1080 if short is None else min(model.sides, key=lambda tier: (abs(tier - short), tier))
    long = side * 16 // 9
    resolution = f"{side}x{long}" if portrait else f"{long}x{side}"
    if short is not None and side != short:
        notes.append(f"The LTX API's {model.label} renders {tiers}: {short}p was sent as {resolution}.")
    return side, resolution


def _duration(request: GenerationRequest, model: Model, side: int, fps: int, notes: list[str]) -> int:
    seconds = request.duration
    if seconds is None and request.num_frames:
        seconds = request.num_frames / fps
    if seconds is None:
        return DEFAULT_DURATION
    long_ok = side in model.long_sides and fps in model.long_fps
    choices = model.durations + (model.long_durations if long_ok else ())
    snapped = min(choices, key=lambda choice: abs(choice - seconds))
    if snapped != seconds:
        why = "" if long_ok or seconds <= max(choices) + 1 else f" (over {max(choices)} s needs {_long_hint(model)})"
        notes.append(f"The LTX API renders {', '.join(map(str, choices))} s{why}: {round(seconds, 2):g} s was sent as "
                     f"{snapped} s.")
    return snapped


def _long_hint(model: Model) -> str:
    fast = MODELS["ltx-2-5-fast" if model.family == "2.5" else "ltx-2-fast"]
    sides = " or ".join(f"{side * 16 // 9}x{side}" for side in fast.long_sides)
    rates = " or ".join(map(str, fast.long_fps))
    return f"{fast.name} at {sides} and {rates} fps"


def _check_retake_clip(info) -> None:
    """The LTX API's limits on a retake's input clip (documented), refused before anything is sent."""
    if info.frames and info.frames < RETAKE_MIN_FRAMES:
        raise L2AError(f"the clip has {info.frames} frames: the LTX API retakes clips of at least "
                       f"{RETAKE_MIN_FRAMES} frames (about 3 s at 24 fps). Nothing was sent.")
    if info.seconds > RETAKE_MAX_CLIP + 0.05:
        raise L2AError(f"the clip is {info.seconds:.2f} s long: the LTX API retakes clips of up to "
                       f"{RETAKE_MAX_CLIP:g} s; cut the part around the window first. Nothing was sent.")
    long, short = max(info.width, info.height), min(info.width, info.height)
    if long > RETAKE_MAX_SIZE[0] or short > RETAKE_MAX_SIZE[1]:
        raise L2AError(f"the clip is {info.width}x{info.height}: the LTX API retakes clips up to 3840x2160. Scale it "
                       "down first. Nothing was sent.")
