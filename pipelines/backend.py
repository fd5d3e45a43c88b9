"""One interface for where a video is made: a local LTX-2 model, a hosted provider, or one with the other as
fallback. Every backend turns a GenerationRequest into an mp4 on disk and says what it did; `run_on` runs any
work (an edit that needs the local model's own pipeline) on whichever backend a graph connected.

Local backends load their files on first use (and keep them), so a fallback can catch missing weights, a
missing GPU or an out-of-memory error and move on to the next backend, saying why. A hosted backend set to match
the local model's family takes the family of the local backend it stands in for, and refuses (never swaps) when its
provider has no endpoint of that family for the mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, TypeVar

from .errors import L2AError
from .families import FAMILIES, Guidance, declared_by_name
from .hosted import PROVIDER_CLASSES, provider_class
from .hosted.types import GenerationRequest

T = TypeVar("T")


class BackendUnavailable(L2AError):
    """The backend cannot run here (no weights, no GPU, out of memory): a fallback may take over."""


def family_label(family: str | None) -> str:
    known = FAMILIES.get(family or "")
    return known.label if known else (f"LTX-{family}" if family else "an unknown family")


@dataclass
class Outcome:
    path: Path
    report: str
    seed: int | None = None
    cost_usd: float | None = None
    job: Any = None


@dataclass
class Hooks:
    on_step: Callable | None = None  # local progress (step, total, preview)
    on_status: Callable[[str], None] | None = None  # hosted status text and fallback notices
    check_interrupt: Callable[[], None] | None = None


@dataclass
class HostedBackend:
    """A provider and endpoint; the key comes from the environment or the keys file, never from the graph."""

    provider: str
    endpoint: str | None = None
    match_family: bool = False  # "auto (match the local model's family)": the endpoint follows `family`
    family: str | None = None  # the local model family to match, given by the fallback this backend stands in for
    options: dict = field(default_factory=dict)
    base_url: str | None = None
    user_dir: Path | None = None
    store_dir: Path | None = None
    reuse: bool = True
    max_cost_usd: float | None = None
    deadline_s: float = 1800.0
    poll: tuple[float, float] = (1.0, 5.0)  # seconds between status calls: first, then at most
    allow_loopback: bool = False  # test servers only

    def label(self) -> str:
        if self.match_family:
            return f"{self.provider} (the {family_label(self.family)} endpoint)" if self.family else \
                f"{self.provider} (matching the local model's family)"
        return f"{self.provider}" + (f" ({self.endpoint})" if self.endpoint else "")

    def endpoint_for(self, mode: str) -> str | None:
        """The endpoint for a mode: the chosen one (None: the provider's default), or the local family's."""
        if not self.match_family:
            return self.endpoint
        if self.family is None:
            raise L2AError(f"{self.provider}: the endpoint 'auto (match the local model's family)' needs a local model "
                           "to match: connect this Hosted Backend as the fallback of LTX-2 Fallback with a Local Backend "
                           "primary, or pick an endpoint. Nothing was sent.")
        endpoint = provider_class(self.provider).FAMILY_ENDPOINTS.get(self.family, {}).get(mode)
        if endpoint is None:
            raise L2AError(family_refusal(self.provider, self.family, mode))
        return endpoint

    def client(self):
        from .hosted.base import HttpClient
        from .hosted.keys import resolve_key

        http = HttpClient(allow_loopback=self.allow_loopback)
        return provider_class(self.provider)(http, resolve_key(self.provider, self.user_dir), self.base_url)

    def prepare(self, request: GenerationRequest):
        """Validate and price without any network traffic (so bad input fails before anything is sent)."""
        request = replace(request, options={**self.options, **request.options})
        return provider_class(self.provider)(None, "", self.base_url).prepare(request, self.endpoint_for(request.mode))

    def generate(self, request: GenerationRequest, out_dir: Path, hooks: Hooks) -> Outcome:
        from .hosted.jobs import run_job
        from .hosted.pricing import format_usd
        from .hosted.store import ResultStore

        endpoint = self.endpoint_for(request.mode)
        provider = self.client()
        prepared = provider.prepare(replace(request, options={**self.options, **request.options}), endpoint)
        store = ResultStore(self.store_dir) if self.store_dir else None
        # Paid results are kept in the store folder (reused by identical requests), not wherever the caller asked.
        dest = Path(self.store_dir or out_dir) / f"{self.provider}_{request.mode}_{request.seed}.mp4"
        outcome = run_job(provider, prepared, dest, deadline_s=self.deadline_s, poll=self.poll, on_status=hooks.on_status,
                          check_interrupt=hooks.check_interrupt, store=store, reuse=self.reuse,
                          max_cost_usd=self.max_cost_usd)
        cost = outcome.cost.usd if outcome.cost else None
        how = " (stored result reused)" if outcome.reused else " (resumed, not submitted again)" if outcome.resumed \
            else ""
        matched = f" (matched the local {family_label(self.family)} model)" if self.match_family else ""
        parts = [f"{self.provider} {prepared.endpoint}{matched}: job {outcome.job.job_id}{how}"]
        if outcome.cost:
            parts.append(f"estimated cost {format_usd(outcome.cost.usd)} ({outcome.cost.formula})")
        parts += list(prepared.notes) + list(outcome.notes)
        return Outcome(outcome.path, " | ".join(parts), outcome.result.seed or request.seed, cost, outcome.job)


@dataclass
class LocalBackend:
    """Model files (loaded on first use) or already loaded components, and whether a CPU may run them.

    `multiscale` is what a request that does not say (`request.multiscale` None) gets: the official two-stage recipe,
    with the family's upsampler (unless `upsampler_path` names one) and, for a dev model, its distilled LoRA.
    `folders` maps ComfyUI folder keys ("loras", "latent_upscale_models", "vae") to the folders searched for the
    family's official files (camera LoRAs, LTX-2.5's VAE files, and for multiscale the upsampler and the distilled
    LoRA); by default the folders beside the checkpoint's.
    """

    checkpoint: Path | None = None
    text_encoder_path: Path | None = None
    checkpoint_name: str = ""  # the file asked for, kept when it is missing here (its name states its family)
    upsampler_path: Path | None = None
    dtype: str = "bf16"
    allow_cpu: bool = False
    model: Any = None
    text_encoder: Any = None
    upsampler: Any = None
    device: Any = None
    folders: dict = field(default_factory=dict)
    multiscale: bool = False

    def folders_for(self, key: str) -> list[Path]:
        if key in self.folders:
            return [Path(f) for f in self.folders[key]]
        return [Path(self.checkpoint).resolve().parent.parent / key] if self.checkpoint else []

    def _multiscale(self, model):
        """(upsampler, stage-2 model) of the official recipe, found through the model's family record before any
        sampling; a missing file makes the backend unavailable (a fallback may take over), naming the file."""
        from .lora import with_distilled_lora
        from .upsampler import load_upsampler, upsampler_file

        try:
            upsampler = self.upsampler or load_upsampler(
                upsampler_file(model.family, self.folders_for("latent_upscale_models")), dtype=self.dtype,
                device=model.device)
            return upsampler, with_distilled_lora(model, self.folders_for("loras"))
        except L2AError as error:
            raise BackendUnavailable(str(error)) from None

    def label(self) -> str:
        source = self.model.describe() if self.model is not None else str(self.checkpoint or self.checkpoint_name)
        return f"local {source}"

    def require_available(self):
        """The device to run on, or BackendUnavailable when this machine cannot run it (no GPU, files missing)."""
        import torch

        device = self.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if torch.device(device).type == "cpu" and not self.allow_cpu:
            raise BackendUnavailable("local generation needs a GPU and none was found (allow CPU to run it anyway, "
                                     "slowly).")
        if self.model is None and not (self.checkpoint and Path(self.checkpoint).exists()):
            raise BackendUnavailable(f"the local model file is missing ({self.checkpoint or self.checkpoint_name}).")
        if self.text_encoder is None and not (self.text_encoder_path and Path(self.text_encoder_path).exists()):
            raise BackendUnavailable(f"the local text encoder is missing ({self.text_encoder_path}).")
        if self.model is None:
            self._check_files()
        return device

    def _check_files(self):
        """The checkpoint, its parts and the text encoder checked from their headers, as a pair: a missing part
        makes the backend unavailable; a wrong file is the user's to fix."""
        from .loading import check_text_encoder_for, inspect_checkpoint, inspect_text_encoder
        from .model_files import MissingModelFile

        try:
            info = inspect_checkpoint(self.checkpoint, folders=self._model_folders())
        except MissingModelFile as error:
            raise BackendUnavailable(str(error)) from None
        if self.text_encoder is None:
            check_text_encoder_for(info, inspect_text_encoder(self.text_encoder_path))

    def _find_duration_head(self) -> None:
        """Auto duration needs the family's duration head: a family without one is the user's to fix; a missing
        file makes the backend unavailable, naming it (before the model loads)."""
        from .extras import find_extra
        from .model_files import MissingModelFile

        family = self.family()
        if "duration_head" not in family.extras:
            raise L2AError(f"duration 'auto' needs LTX-2.5's duration head, and the local model is {family.label}: "
                           "set duration_seconds or frames.")
        source = self.model.source if self.model is not None else self.checkpoint
        folders = self.model.extra_folders if self.model is not None else self._model_folders()
        try:
            find_extra(family, source, folders, "duration_head", "duration 'auto'")
        except MissingModelFile as error:
            raise BackendUnavailable(str(error)) from None

    def _model_folders(self) -> dict:
        return {key: self.folders_for(key) for key in ("vae", "model_patches")}

    def load(self):
        from .loading import load_model, load_text_encoder

        device = self.require_available()
        if self.model is None:
            self.model = load_model(self.checkpoint, dtype=self.dtype, device=device, folders=self._model_folders())
        if self.text_encoder is None:
            self.text_encoder = load_text_encoder(self.text_encoder_path, dtype=self.dtype, device=device)
        if self.upsampler is None and self.upsampler_path is not None:
            from .upsampler import load_upsampler

            self.upsampler = load_upsampler(self.upsampler_path, dtype=self.dtype, device=device)

    def family(self):
        """The model's family record: the loaded model's, else read from the checkpoint's header (no weights)."""
        from .loading import inspect_checkpoint

        return self.model.family if self.model is not None else inspect_checkpoint(self.checkpoint,
                                                                                     with_parts=False).family

    def check(self, request: GenerationRequest) -> tuple[Any, tuple, list[str], bool]:
        """Everything about a request that needs no model, checked before anything loads: (sampler settings,
        (image pixels, end image pixels), notes, multiscale). A mistake here is an L2AError, never a reason to fall
        back."""
        from .checks import check_guidance, check_number
        from .media import load_image
        from .sampling import SamplerSettings, check_settings
        from .sizing import MULTISCALE_MULTIPLE, SPATIAL

        if request.mode not in ("t2v", "i2v"):
            raise L2AError(f"the local backend makes {request.mode} with LTX-2 Extend, not LTX-2 Generate.")
        if request.image_url or request.end_image_url:
            raise L2AError("the local backend needs image files, not URLs: load the image with LoadImage.")
        if not request.prompt.strip():
            raise L2AError("prompt is empty: describe the scene, the motion and the sound you want.")
        images = tuple(None if path is None else load_image(path) for path in (request.image, request.end_image))
        for name, value in (("image strength", request.image_strength),
                            ("end image strength", request.end_image_strength)):
            check_number(name, value, 0.0, 1.0, "0 = ignore, 1 = keep the frame exactly")
        check_number("camera_scale", request.camera_scale, 0.0, 1.0, "0 = off, 1 = as trained")
        multiscale = self.multiscale if request.multiscale is None else request.multiscale
        first = images[0] if images[0] is not None else images[1]
        width, height, frames, fps, notes = request_geometry(
            request, None if first is None else (int(first.shape[1]), int(first.shape[0])),
            MULTISCALE_MULTIPLE if multiscale else SPATIAL)
        guidance = None
        if request.guidance_scale is not None:
            guidance = Guidance(video_cfg=request.guidance_scale)
            check_guidance(guidance)
        settings = SamplerSettings(width=width, height=height, num_frames=frames, fps=fps,
                                   steps=request.num_inference_steps or 0, seed=request.seed, guidance=guidance,
                                   generate_audio=request.generate_audio,
                                   acceleration=request.acceleration or "none")
        check_settings(settings, auto_frames=request.auto_duration)
        return settings, images, notes, multiscale

    def generate(self, request: GenerationRequest, out_dir: Path, hooks: Hooks) -> Outcome:
        import torch

        from .generate import generate_to_file

        settings, (image, end_image), notes, multiscale = self.check(request)
        self.require_available()
        if request.auto_duration:
            self._find_duration_head()
        camera = None
        if request.camera != "none" and request.camera_scale > 0:
            from .lora import camera_lora_file

            camera = camera_lora_file(self.family(), request.camera, self.folders_for("loras"))
        self.load()
        model = self.model
        if settings.guidance is not None:  # the asked CFG on the model's own guidance: none on distilled models
            base = Guidance.off() if model.variant == "distilled" else model.family.guidance
            settings = replace(settings, guidance=replace(base, video_cfg=settings.guidance.video_cfg))
        if camera is not None:
            from .lora import add_lora

            model = add_lora(model, camera, request.camera_scale)
        upsampler, refine = self._multiscale(model) if multiscale else (None, None)
        out = Path(out_dir) / f"local_{request.mode}_{request.seed}.mp4"
        try:
            path, latent, _ = generate_to_file(
                model, self.text_encoder, request.prompt, out, settings, negative_prompt=request.negative_prompt,
                image=image, image_strength=request.image_strength, end_image=end_image,
                end_image_strength=request.end_image_strength, crf=model.family.image_crf, upsampler=upsampler,
                refine_model=refine, on_step=hooks.on_step, check_interrupt=hooks.check_interrupt,
                image_names=(request.image, request.end_image),
            )
        except torch.cuda.OutOfMemoryError as error:
            raise BackendUnavailable(f"out of GPU memory ({error}).") from error
        return Outcome(path, " | ".join([self.label(), *notes, latent.report]), latent.seed)


def request_geometry(request: GenerationRequest, image_size: tuple[int, int] | None = None, multiple: int = 32
                     ) -> tuple[int, int, int, float, list[str]]:
    """Width, height, frames, fps and notes of a request, the way users give them (tier + ratio, or WxH; s or
    frames); a tier's sides are multiples of `multiple` (64 for multiscale). Aspect ratio auto follows `image_size`
    (width, height of the start image); without an image it reads 16:9, as the hosted providers and the cost badge
    read it."""
    from .checks import check_number
    from .sampling import AUTO_FRAMES
    from .sizing import backend_aspect_ratio, resolve_frames, resolve_size

    fps = check_number("fps", request.fps, 1.0, 60.0) if request.fps is not None else 24.0
    notes = []
    if request.width and request.height:
        width, height = request.width, request.height
    else:
        aspect, note = backend_aspect_ratio(request.aspect_ratio, image_size is not None)
        width, height, size_note = resolve_size(request.resolution or "720p", aspect, image_size=image_size,
                                                multiple=multiple)
        notes += [n for n in (note, size_note) if n]
    if request.auto_duration:
        return width, height, AUTO_FRAMES, fps, notes
    duration = 0.0 if request.duration is None else check_number("duration", request.duration, 0.0)
    frames, frames_note = resolve_frames(duration, request.num_frames or 121, fps)
    return width, height, frames, fps, [*notes, frames_note]


@dataclass
class FallbackBackend:
    """Try `primary`; when it cannot run here, use `fallback` and say why."""

    primary: Any
    fallback: Any

    def label(self) -> str:
        return f"{self.primary.label()}, else {self.fallback.label()}"

    def generate(self, request: GenerationRequest, out_dir: Path, hooks: Hooks) -> Outcome:
        def make(backend):
            return backend.generate(request, out_dir, hooks)

        outcome, notices = run_on(self, make, make, hooks.on_status)
        outcome.report = " | ".join([*notices, outcome.report])
        return outcome


def run_on(backend, local: Callable[[LocalBackend], T], hosted: Callable[[HostedBackend], T],
           on_status: Callable[[str], None] | None = None) -> tuple[T, list[str]]:
    """Run work on `backend`: `local(backend)` for a LocalBackend, `hosted(backend)` for a HostedBackend, and for a
    FallbackBackend its primary, else (the primary unavailable here: BackendUnavailable, or out of GPU memory) its
    fallback, matched to the primary's model family where it is set to. Returns the work's result and the notices
    of fallbacks taken (also sent to `on_status`)."""
    if isinstance(backend, FallbackBackend):
        try:
            return run_on(backend.primary, local, hosted, on_status)
        except BackendUnavailable as reason:
            fallback = _matched(backend.fallback, backend.primary)
            notice = f"{backend.primary.label()} unavailable: {reason} Using {fallback.label()}."
            if on_status:
                on_status(notice)
            try:
                result, notices = run_on(fallback, local, hosted, on_status)
            except L2AError as error:  # say why the primary was skipped as well as why the fallback failed
                kind = BackendUnavailable if isinstance(error, BackendUnavailable) else L2AError
                raise kind(f"{notice} {error}") from error
            return result, [notice, *notices]
    if isinstance(backend, HostedBackend):
        return hosted(backend), []
    if isinstance(backend, LocalBackend):
        import torch

        try:
            return local(backend), []
        except torch.cuda.OutOfMemoryError as error:
            raise BackendUnavailable(f"out of GPU memory ({error}).") from error
    raise L2AError(f"backend {type(backend).__name__} is not one this pack knows: connect LTX-2 Local Backend, "
                   "LTX-2 Hosted Backend or LTX-2 Fallback.")


def _matched(fallback, primary):
    """The fallback with the family of the primary's local model, where it is set to match it."""
    if isinstance(fallback, HostedBackend) and fallback.match_family and fallback.family is None:
        local = _first_local(primary)
        family = local_family(local) if local is not None else None
        if family is None:
            what = "there is no local backend before it" if local is None else \
                f"the family of the local model ({local.checkpoint_name or local.checkpoint}) is unknown"
            raise L2AError(f"{fallback.provider}: 'auto (match the local model's family)' cannot pick an endpoint: "
                           f"{what}. Pick the endpoint on LTX-2 Hosted Backend. Nothing was sent.")
        return replace(fallback, family=family)
    if isinstance(fallback, FallbackBackend):
        return replace(fallback, primary=_matched(fallback.primary, primary),
                       fallback=_matched(fallback.fallback, primary))
    return fallback


def _first_local(backend) -> LocalBackend | None:
    if isinstance(backend, LocalBackend):
        return backend
    if isinstance(backend, FallbackBackend):
        return _first_local(backend.primary) or _first_local(backend.fallback)
    return None


def local_family(backend: LocalBackend) -> str | None:
    """The family of a local backend's model ("2.0", "2.3", "2.5", the family record's name): the loaded model's,
    else its checkpoint header's, else the one its official file name states; None when nothing tells."""
    if backend.model is not None or (backend.checkpoint and Path(backend.checkpoint).exists()):
        try:
            return backend.family().name
        except L2AError:
            pass  # a file this version cannot load may still say its family in its name
    declared = declared_by_name(Path(str(backend.checkpoint_name or backend.checkpoint or "")).name)
    return declared.name if declared is not None else None


def family_refusal(provider: str, family: str, mode: str) -> str:
    """Why a provider cannot match a local family for a mode, naming the providers that can."""
    from .hosted.types import MODE_NAMES

    others = [name for name in PROVIDER_CLASSES if name != provider
              and mode in provider_class(name).FAMILY_ENDPOINTS.get(family, {})]
    where = f"use {' or '.join(others)}, " if others else ""
    return (f"{provider} has no {family_label(family)} endpoint for {MODE_NAMES.get(mode, mode)}, the local model's "
            f"family, and the endpoint is never swapped for another family's: {where}or pick an endpoint on LTX-2 "
            "Hosted Backend. Nothing was sent.")
