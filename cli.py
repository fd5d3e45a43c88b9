"""The ltx2-anywhere command line: the same pipelines/ code the ComfyUI nodes run.

  ltx2-anywhere demo                      text- and image-to-video on the built-in tiny model
  ltx2-anywhere generate --prompt ...     one clip from your model files (or the tiny model)
  ltx2-anywhere extend --video clip.mp4   continue a clip, video and audio together
  ltx2-anywhere audio-to-video --audio a.wav   video for given audio (--backend fal|ltx: hosted)
  ltx2-anywhere retake --video clip.mp4 --start 1 --end 2   regenerate a time window (--backend ltx: hosted)
  ltx2-anywhere generate --backend fal ... the same on a hosted API (fal, wavespeed, vibedream, bytecompute, ltx)
  ltx2-anywhere resume --backend fal --job-id ID --out clip.mp4   fetch a hosted job submitted earlier
  ltx2-anywhere tiny --family 2.5 --models-dir DIR   write a tiny family into a ComfyUI models folder
  ltx2-anywhere doctor --family 2.5 --models-dir DIR   check a family's full set of files

--model takes an all-in-one checkpoint (LTX-2 19B, LTX-2.3), an LTX-2.5 transformer file (its VAE files are found
in the models folder's vae/, or given with --video-vae / --audio-vae) or a diffusers folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .pipelines.errors import L2AError

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_PROMPT = "a robot dancing in the rain, music plays"
EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BUG = 2, 130, 1


def _version() -> str:
    """The installed version, or the one in pyproject.toml beside a clone run without installing."""
    from importlib import metadata

    try:
        return metadata.version("ltx2-anywhere")
    except metadata.PackageNotFoundError:
        import re

        text = (Path(__file__).resolve().parent / "pyproject.toml").read_text(encoding="utf-8")
        found = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
        return found.group(1) if found else "unknown"


AUTO_DURATION = "auto"


def duration_option(text: str) -> float | str:
    """argparse type of --duration: seconds, or "auto" (LTX-2.5's duration head picks the length)."""
    return AUTO_DURATION if text.strip().lower() == AUTO_DURATION else finite_float(text)


def finite_float(text: str) -> float:
    """argparse type: a finite number (NaN and infinities are refused when the command line is read)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def lora_spec(text: str) -> tuple[str, float]:
    """argparse type for --lora: PATH or PATH:STRENGTH (a drive letter's colon stays part of the path)."""
    path, sep, strength = text.rpartition(":")
    if not sep or not strength or (len(path) == 1 and path.isalpha() and strength[:1] in "\\/"):
        return text, 1.0
    try:
        return path, finite_float(strength)
    except argparse.ArgumentTypeError:
        if Path(text).exists():
            return text, 1.0
        raise argparse.ArgumentTypeError(
            f"{text!r}: {strength!r} is not a strength; write PATH or PATH:STRENGTH, e.g. my_lora.safetensors:0.8"
        ) from None


def _device_and_dtype(dtype: str | None):
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return device, dtype or ("bf16" if device.type == "cuda" else "fp32")


def _tiny_models(name: str) -> tuple[Path, Path, Path]:
    """(models folder, dev checkpoint, text encoder) of a tiny family, written to the cache once."""
    from .pipelines import tiny

    family = tiny.tiny_family(name)
    root = tiny.ensure_cached(name)
    checkpoint = family.checkpoints["dev"]
    encoder = family.text_encoder.folder or family.text_encoder.files[0]
    return root, root / checkpoint.folder / checkpoint.name, root / encoder.folder / encoder.name


def _models(args) -> tuple[Path, Path, Path]:
    """(models folder, checkpoint, text encoder): the tiny model of --family (in the cache) when no --model is given."""
    if args.model is None:
        return _tiny_models(args.family)
    if args.text_encoder is None:
        raise L2AError("--text-encoder is required with --model: the Gemma 3 folder or file LTX-2 19B and LTX-2.3 "
                       "use, or LTX-2.5's gemma4-12b-with-proj-ltx-2.5-bf16.safetensors.")
    root = Path(args.models_dir) if args.models_dir else Path(args.model).resolve().parent.parent
    return root, Path(args.model), Path(args.text_encoder)


def _load(checkpoint, text_encoder, dtype, parts=None, folders=None):
    from transformers.utils import logging as transformers_logging

    from .pipelines.loading import load_model, load_text_encoder

    transformers_logging.disable_progress_bar()
    device, dtype = _device_and_dtype(dtype)
    return (load_model(checkpoint, dtype=dtype, device=device, parts=parts, folders=folders),
            load_text_encoder(text_encoder, dtype=dtype, device=device))


def _check_model_files(args):
    """(models folder, checkpoint, text encoder, checkpoint info), every file checked from its header, the text
    encoder against the checkpoint's family: a wrong file fails in milliseconds, before gigabytes are read."""
    from .pipelines.loading import check_text_encoder_for, inspect_checkpoint, inspect_text_encoder

    root, checkpoint, text_encoder = _models(args)
    parts = {"vae": getattr(args, "video_vae", None), "audio_vae": getattr(args, "audio_vae", None)}
    info = inspect_checkpoint(checkpoint, parts, {"vae": [root / "vae"]})
    check_text_encoder_for(info, inspect_text_encoder(text_encoder))
    return root, checkpoint, text_encoder, info


def _check_output(out, format=None) -> Path:
    """--out: a known video suffix (agreeing with --format) in a folder that can be written."""
    from .pipelines.media import output_format
    from .pipelines.outputs import check_output_file

    check_output_file(out, "--out")
    output_format(out, format)
    return Path(out)


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise L2AError("--prompt is empty: describe the scene, the motion and the sound you want.")


def _image_input(path, option: str, strength: float | None = None):
    """An image option read and checked now (missing, unreadable, wrong kind), with its strength."""
    from .pipelines.checks import check_number
    from .pipelines.media import load_image

    if strength is not None:
        check_number(f"{option}-strength", strength, 0.0, 1.0, "0 = ignore, 1 = keep the frame exactly")
    return None if path is None else load_image(path)


def _lora_plan(args, root: Path, info) -> list[tuple[Path, float]]:
    """The --camera and --lora adapters as (file, strength), each found and checked against the checkpoint's
    layout from the headers alone (a LoRA of another model family fails here, not after loading)."""
    from types import SimpleNamespace

    from .pipelines.checks import check_number
    from .pipelines.lora import camera_lora_file, check_lora, meta_modules

    plan = []
    if args.camera != "none":
        scale = check_number("--camera-scale", args.camera_scale, 0.0, 1.0, "0 = off, 1 = as trained")
        if scale > 0:
            plan.append((camera_lora_file(info.family, args.camera, [root / "loras"]), scale))
    plan += [(Path(path), strength) for path, strength in args.lora]
    if plan:
        stand_in = SimpleNamespace(family=info.family, **meta_modules(info.config))
        for path, _strength in plan:
            check_lora(path, stand_in)
    return plan


def _with_loras(model, plan):
    """The model with the planned adapters; they apply only while sampling."""
    from .pipelines.lora import add_lora

    for path, strength in plan:
        model = add_lora(model, path, strength)
    return model


def _multiscale_plan(args, root: Path, info) -> tuple[Path, Path | None]:
    """(upsampler file, distilled LoRA file or None) of the checkpoint's family, found and checked before anything
    loads: the official recipe refines a dev model with its family's distilled LoRA; a distilled model needs none."""
    from .pipelines.checks import check_number
    from .pipelines.model_files import require_file
    from .pipelines.upsampler import inspect_upsampler, upsampler_file

    family = info.family
    upsampler = Path(args.upsampler) if args.upsampler else upsampler_file(family, [root / "latent_upscale_models"])
    inspect_upsampler(upsampler)
    strength = check_number("--distilled-lora-strength", args.distilled_lora_strength, 0.0, 2.0, "0 = without")
    if info.variant == "distilled" or strength == 0:
        return upsampler, None
    try:
        lora = require_file(family.distilled_lora, [root / "loras"],
                            f"--multiscale on {family.label} dev (the official recipe)")
    except L2AError as error:
        raise L2AError(f"{error} Or refine without it: --distilled-lora-strength 0.") from None
    return upsampler, lora


def _multiscale(model, args, plan, dtype):
    """(upsampler, stage-2 model) from the checked plan."""
    from .pipelines.lora import add_lora
    from .pipelines.upsampler import load_upsampler

    upsampler_path, lora = plan
    upsampler = load_upsampler(upsampler_path, dtype=_device_and_dtype(dtype)[1], device=model.device)
    refine = add_lora(model, lora, args.distilled_lora_strength) if lora is not None else model
    return upsampler, refine


def _progress(label: str):
    """A step counter that rewrites one line on a terminal and prints only the last step elsewhere."""
    interactive = sys.stdout.isatty()

    def on_step(step, total, _preview):
        if interactive:
            print(f"\r  {label}: step {step}/{total}", end="" if step < total else "\n", flush=True)
        elif step == total:
            print(f"  {label}: {total} steps")

    return on_step


def _describe(path: Path) -> str:
    from .pipelines.media import probe_video

    info = probe_video(path)
    audio = f", {info['audio_codec']} {info['sample_rate']} Hz {info['audio_duration']:.2f} s" if info.get(
        "audio_codec") else ", no audio"
    return (f"{path}  ({info['video_codec']} {info['width']}x{info['height']}, {info['frames']} frames, "
            f"{info['video_duration']:.2f} s{audio})")


def _run(model, encoder, prompt, out, settings, **kwargs) -> Path:
    from .pipelines.generate import generate_to_file

    start = time.perf_counter()
    path, latent, used_prompt = generate_to_file(model, encoder, prompt, out, settings,
                                                 on_step=_progress(Path(out).name), **kwargs)
    if used_prompt != prompt:
        print(f"  expanded prompt: {used_prompt}")
    print(f"  {latent.report}")
    print(f"  wrote {_describe(path)} in {time.perf_counter() - start:.1f} s")
    return path


def cmd_demo(args) -> int:
    from .pipelines.outputs import check_output_file
    from .pipelines.sampling import SamplerSettings

    out = Path(args.out)
    names = ("demo_text_to_video.mp4", "demo_image_to_video.mp4")
    for name in names:
        check_output_file(out / name, "demo output")
    print("LTX-2 Anywhere demo on the built-in tiny model (random weights: expect coloured noise with sound).")
    _root, checkpoint, text_encoder = _tiny_models(args.family)
    model, encoder = _load(checkpoint, text_encoder, None)
    print(f"  model: {model.describe()}")
    settings = SamplerSettings(width=192, height=128, num_frames=25, fps=24.0, seed=args.seed)
    _run(model, encoder, DEMO_PROMPT, out / names[0], settings)
    _run(model, encoder, DEMO_PROMPT, out / names[1], settings, image=ASSETS / "sample.png")
    return 0


def _geometry(args, image=None) -> tuple[int, int, int]:
    """Width, height and frames from --resolution/--aspect-ratio/--duration when given, else the explicit values.
    `image` is the --image pixels ([H, W, 3]) that aspect ratio auto follows; without one auto reads 16:9."""
    from .pipelines.sizing import MULTISCALE_MULTIPLE, backend_aspect_ratio, resolve_frames, resolve_size

    width, height, frames = args.width, args.height, args.frames
    if args.resolution:
        image_size = None if image is None else (int(image.shape[1]), int(image.shape[0]))
        aspect, auto_note = backend_aspect_ratio(args.aspect_ratio, image is not None)
        multiple = MULTISCALE_MULTIPLE if args.multiscale else 32
        width, height, note = resolve_size(args.resolution, aspect, width, height, image_size, multiple)
        print(f"  size: {note}" + (f" ({auto_note})" if auto_note else ""))
    if args.duration == AUTO_DURATION:
        from .pipelines.sampling import AUTO_FRAMES

        frames = AUTO_FRAMES
        print("  length: auto (LTX-2.5's duration head picks 1-20 s from the prompt)")
    elif args.duration is not None:
        frames, note = resolve_frames(args.duration, frames, args.fps)
        print(f"  length: {note}")
    return width, height, frames


def _run_hosted(args, request, out: Path):
    """Map the request (every refusal before anything is sent), check the key, print the estimate, then run the job
    with Ctrl-C cancelling it at the provider."""
    from .pipelines.hosted.pricing import format_usd

    backend = _hosted_backend(args)
    prepared = backend.prepare(request)
    _require_key(args.backend)
    if prepared.cost:
        print(f"  {args.backend}: estimated {format_usd(prepared.cost.usd)} ({prepared.cost.formula})")
    with _CtrlC() as ctrl_c:
        return backend.generate(request, out.resolve().parent, ctrl_c.hooks())


def _hosted_backend(args):
    """A hosted backend for the CLI: keys from the environment or the user keys file, results kept in the cache."""
    from .pipelines import tiny
    from .pipelines.backend import HostedBackend

    return HostedBackend(
        provider=args.backend, endpoint=getattr(args, "endpoint", None), base_url=args.base_url,
        user_dir=USER_DIR, store_dir=tiny.cache_root() / "hosted",
        max_cost_usd=getattr(args, "max_cost", None), reuse=not getattr(args, "no_reuse", False),
        allow_loopback=os.environ.get("LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK") == "1",
    )


USER_DIR = Path.home() / ".config" / "ltx2-anywhere"


def _require_key(provider: str) -> None:
    """The provider's key must be set before anything is submitted; the message speaks of this shell."""
    from .pipelines.hosted.keys import KEY_ENVS, key_status, keys_path

    if key_status(USER_DIR).get(provider) == "missing":
        env = KEY_ENVS[provider]
        raise L2AError(f"No API key for {provider}: set {env} in the environment of this shell (export {env}=...), "
                       f"or store it in {keys_path(USER_DIR)} as {{\"{provider}\": \"...\"}}.")


class _CtrlC:
    """While a hosted job runs, Ctrl-C is turned into the job's own interrupt check, so the job is cancelled at the
    provider where it can be (or its id is said, to resume it) before the command stops."""

    def __enter__(self):
        import signal
        import threading

        self.pressed = threading.Event()
        self.previous = None
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self.previous = signal.signal(signal.SIGINT, lambda *_: self.pressed.set())
        return self

    def __exit__(self, *_exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.pressed.is_set():
            raise KeyboardInterrupt

    def hooks(self):
        from .pipelines.backend import Hooks

        def check():
            if self.pressed.is_set():
                raise KeyboardInterrupt

        return Hooks(on_status=lambda text: print(f"  {text}", flush=True), check_interrupt=check)


def _check_hosted_output(out) -> Path:
    """Hosted results are mp4 files: --out must end in .mp4 and be writable, checked before anything is paid."""
    return _check_output(out, "mp4")


def _deliver(outcome, out) -> int:
    """Put a hosted result at --out, atomically (copied: a stored result stays reusable in the cache)."""
    import shutil

    from .pipelines.outputs import make_folder, publish, write_error

    out = Path(out)
    make_folder(out.parent)
    temp = out.parent / f".{out.name}.{os.getpid()}.part"
    try:
        shutil.copyfile(outcome.path, temp)
        publish(temp, out)
    except OSError as error:
        raise write_error(error, out) from error
    finally:
        temp.unlink(missing_ok=True)
    print(f"  {outcome.report}")
    print(f"  wrote {_describe(out)}")
    return 0


def cmd_generate_hosted(args) -> int:
    from .pipelines.hosted.types import GenerationRequest
    from .pipelines.sampling import resolve_seed

    _check_prompt(args.prompt)
    out = _check_hosted_output(args.out)
    custom = not args.resolution or args.resolution == "custom"
    request = GenerationRequest(
        mode="i2v" if args.image else "t2v", prompt=args.prompt, seed=resolve_seed(args.seed),
        negative_prompt=args.negative_prompt, image=Path(args.image) if args.image else None,
        end_image=Path(args.end_image) if args.end_image else None,
        width=args.width if custom else None, height=args.height if custom else None,
        resolution=None if custom else args.resolution, aspect_ratio=args.aspect_ratio,
        duration=None if args.duration == AUTO_DURATION else args.duration,
        num_frames=None if args.duration else args.frames, auto_duration=args.duration == AUTO_DURATION, fps=args.fps,
        generate_audio=not args.no_audio, guidance_scale=args.cfg, num_inference_steps=args.steps or None,
        camera=args.camera, camera_scale=args.camera_scale, image_strength=args.image_strength,
        end_image_strength=args.end_image_strength, multiscale=args.multiscale or None,
        acceleration=None if args.acceleration == "none" else args.acceleration,
        prompt_expansion=args.expand_prompt or None,
    )
    for option, path in (("--image", args.image), ("--end-image", args.end_image)):
        _image_input(path, option)
    outcome = _run_hosted(args, request, out)
    return _deliver(outcome, out)


def cmd_resume(args) -> int:
    from .pipelines.hosted.jobs import resume_job
    from .pipelines.hosted.store import ResultStore
    from .pipelines.hosted.types import JobRef

    out = _check_hosted_output(args.out)
    _require_key(args.backend)
    backend = _hosted_backend(args)
    job = JobRef(provider=args.backend, endpoint=args.endpoint or "", job_id=args.job_id)
    with _CtrlC() as ctrl_c:
        hooks = ctrl_c.hooks()
        outcome = resume_job(backend.client(), job, out.resolve(), store=ResultStore(backend.store_dir),
                             on_status=hooks.on_status,
                             check_interrupt=hooks.check_interrupt)
    print(f"  {args.backend}: job {job.job_id} fetched")
    print(f"  wrote {_describe(outcome.path)}")
    return 0


def cmd_generate(args) -> int:
    """Everything that can be checked without the model is checked first: prompt, images, numbers, output, every
    model file's header; then the model loads and the clip is made."""
    from .pipelines.families import Guidance

    if args.backend != "local":
        return cmd_generate_hosted(args)
    from .pipelines.checks import check_number
    from .pipelines.sampling import SamplerSettings, check_settings

    _check_prompt(args.prompt)
    out = _check_output(args.out, args.format)
    if args.crf is not None:
        check_number("--crf", args.crf, 0, 51, "0 = no re-encode; the family's official default otherwise")
    image = _image_input(args.image, "--image", args.image_strength)
    end_image = _image_input(args.end_image, "--end-image", args.end_image_strength)
    guidance = None
    if args.guidance == "off":
        guidance = Guidance.off()
    elif args.cfg is not None or args.audio_cfg is not None:
        defaults = Guidance()
        guidance = Guidance(video_cfg=defaults.video_cfg if args.cfg is None else args.cfg,
                            audio_cfg=args.audio_cfg if args.audio_cfg is not None else (
                                defaults.audio_cfg if args.cfg is None else args.cfg))
    width, height, frames = _geometry(args, image if image is not None else end_image)
    settings = SamplerSettings(width=width, height=height, num_frames=frames, fps=args.fps, steps=args.steps,
                               seed=args.seed, guidance=guidance, schedule=args.schedule,
                               generate_audio=not args.no_audio, acceleration=args.acceleration)
    auto = args.duration == AUTO_DURATION
    check_settings(settings, auto_frames=auto)
    root, checkpoint, text_encoder, info = _check_model_files(args)
    folders = {"vae": [root / "vae"], "model_patches": [root / "model_patches"]}
    if auto:
        from .pipelines.extras import find_extra

        find_extra(info.family, checkpoint, folders, "duration_head", "--duration auto")
    loras = _lora_plan(args, root, info)
    multiscale = _multiscale_plan(args, root, info) if args.multiscale else None
    model, encoder = _load(checkpoint, text_encoder, args.dtype, info.parts, folders)
    print(f"  model: {model.describe()}")
    model = _with_loras(model, loras)
    upsampler, refine = _multiscale(model, args, multiscale, args.dtype) if multiscale else (None, None)
    write_options = {"format": args.format, "quality": args.quality, "write_mode": args.write_mode}
    _run(model, encoder, args.prompt, out, settings, negative_prompt=args.negative_prompt,
         image=image, image_strength=args.image_strength, end_image=end_image,
         end_image_strength=args.end_image_strength, direction=args.direction,
         crf=model.family.image_crf if args.crf is None else args.crf, expand_prompt=args.expand_prompt,
         upsampler=upsampler, refine_model=refine, write_options=write_options, image_names=(args.image, args.end_image))
    return 0


def _edit_check(args):
    """What extend, audio-to-video and retake check before loading: prompt, output, model files, first image."""
    from .pipelines.checks import check_number

    _check_prompt(args.prompt)
    out = _check_output(args.out)
    if getattr(args, "crf", None) is not None:
        check_number("--crf", args.crf, 0, 51, "0 = no re-encode; the family's official default otherwise")
    image = _image_input(getattr(args, "image", None), "--image")
    return out, _check_model_files(args), image


def _edit_setup(args, files, image, settings):
    """Model and text conditioning shared by extend, audio-to-video and retake."""
    from .pipelines.conditioning import encode_text

    _root, checkpoint, text_encoder, info = files
    model, encoder = _load(checkpoint, text_encoder, args.dtype, info.parts)
    print(f"  model: {model.describe()}")
    conditioning = encode_text(encoder, args.prompt, args.negative_prompt, settings.fps)
    if image is not None:
        from .pipelines.conditioning import image_condition

        crf = model.family.image_crf if args.crf is None else args.crf
        conditioning = conditioning.with_image(image_condition(image, 1.0, crf))
    return model, conditioning


def _edit_settings(args, **geometry):
    from .pipelines.families import Guidance
    from .pipelines.sampling import SamplerSettings

    return SamplerSettings(steps=args.steps, seed=args.seed, guidance=Guidance.off() if args.guidance == "off"
                           else None, **geometry)


def _read_clip(args):
    from .pipelines.av_edit import Clip, check_clip, fit_clip
    from .pipelines.media import read_clip

    frames, fps, audio, note = read_clip(args.video)
    waveform, rate = (audio["waveform"][0], audio["sample_rate"]) if audio else (None, None)
    clip = Clip(frames, float(fps), waveform, rate)
    check_clip(clip)
    clip, size_note = fit_clip(clip, args.size_mode)
    for line in (note, size_note):
        if line:
            print(f"  {line}")
    return clip


def _write_result(result, out) -> int:
    from .pipelines.media import write_video

    clip = result.clip
    path = write_video(out, clip.frames, clip.fps, audio=clip.audio, sample_rate=clip.sample_rate,
                       metadata={"comment": result.report})
    print(f"  {result.report}")
    print(f"  wrote {_describe(path)}")
    return 0


def _edit_hooks(label):
    return {"on_step": _progress(label)}


def cmd_extend(args) -> int:
    from .pipelines.av_edit import check_extend, extend, frames_to_add

    out, files, _ = _edit_check(args)
    clip = _read_clip(args)
    frames = frames_to_add(args.seconds, args.frames, clip.fps)
    check_extend(clip, frames, args.overlap)
    settings = _edit_settings(args, fps=clip.fps)
    model, conditioning = _edit_setup(args, files, None, settings)
    result = extend(model, conditioning, clip, frames, args.overlap, settings, _edit_hooks(out.name))
    return _write_result(result, out)


def cmd_audio_to_video(args) -> int:
    from .pipelines.av_edit import audio_to_video, check_audio_input
    from .pipelines.geometry import check_side
    from .pipelines.media import read_audio

    if args.backend != "local":
        return _hosted_edit(args, mode="a2v", audio=Path(args.audio), image=Path(args.image) if args.image else None,
                            width=args.width, height=args.height, fps=args.fps)
    out, files, image = _edit_check(args)
    check_side("--width", args.width)
    check_side("--height", args.height)
    waveform, rate = read_audio(args.audio)
    check_audio_input(waveform, rate, args.fps)
    settings = _edit_settings(args, width=args.width, height=args.height, fps=args.fps)
    model, conditioning = _edit_setup(args, files, image, settings)
    result = audio_to_video(model, conditioning, waveform, rate, settings, _edit_hooks(out.name))
    return _write_result(result, out)


def cmd_retake(args) -> int:
    from .pipelines.av_edit import check_window, retake

    if args.backend != "local":
        return _hosted_edit(args, mode="retake", video=Path(args.video), window_start=args.start,
                            window_end=args.end, retake_part=args.part)
    out, files, _ = _edit_check(args)
    clip = _read_clip(args)
    check_window(clip, args.start, args.end, args.part)
    settings = _edit_settings(args, fps=clip.fps)
    model, conditioning = _edit_setup(args, files, None, settings)
    result = retake(model, conditioning, clip, args.start, args.end, args.part, settings, _edit_hooks(out.name))
    return _write_result(result, out)


_TINY_MARKERS = ("l2a_tiny", "l2a_tokenizer_max_length")  # metadata only the pack's tiny writers put in a file


def _is_tiny_or_same(existing: Path, new: Path) -> bool:
    """Whether an existing model file or folder may be replaced by the tiny model's: it is the same, or a tiny file
    written earlier. A real model under the same name (tens of GB to download again) never is."""
    import filecmp

    from .pipelines.loading import read_safetensors_header

    if existing.is_dir() and new.is_dir():
        return filecmp.cmp(existing / "config.json", new / "config.json", shallow=False) if (
            existing / "config.json").is_file() else False
    if not (existing.is_file() and new.is_file()):
        return False
    if existing.stat().st_size == new.stat().st_size and filecmp.cmp(existing, new, shallow=False):
        return True
    try:
        return any(key in read_safetensors_header(existing)[1] for key in _TINY_MARKERS)
    except L2AError:
        return False


def _hosted_edit(args, **fields) -> int:
    """Audio-to-video or retake on a provider: the prompt, output, inputs and key are checked and the estimate is
    printed before anything is sent; an audio-to-video result carries the given audio (encoded once, cut to the
    video), not the provider's copy of it."""
    from .pipelines.hosted.types import GenerationRequest
    from .pipelines.media import read_audio, replace_audio_track
    from .pipelines.sampling import resolve_seed

    _check_prompt(args.prompt)
    out = _check_hosted_output(args.out)
    if fields.get("image") is not None:
        _image_input(fields["image"], "--image")
    request = GenerationRequest(prompt=args.prompt, seed=resolve_seed(args.seed), **fields)
    outcome = _run_hosted(args, request, out)
    if request.mode != "a2v":
        return _deliver(outcome, out)
    waveform, rate = read_audio(request.audio)
    path = replace_audio_track(outcome.path, waveform, rate, out, metadata={"comment": outcome.report})
    print(f"  {outcome.report}")
    print(f"  wrote {_describe(path)} (the given audio, encoded once)")
    return 0


def cmd_tiny(args) -> int:
    """Write the tiny model into a models folder: staged in a hidden folder there, then moved into place; a file of
    the same name that is not the tiny model's (a real checkpoint, LoRA or Gemma) is never replaced."""
    import shutil
    import tempfile

    from transformers.utils import logging as transformers_logging

    from .pipelines import tiny
    from .pipelines.outputs import check_output_file, make_folder, publish, write_error

    transformers_logging.disable_progress_bar()
    root = Path(args.models_dir)
    check_output_file(root / ".l2a-tiny-check", "models folder")
    make_folder(root)
    print(f"{tiny.tiny_family(args.family).label} under the official file names of LTX-{args.family}:")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".l2a-tiny-", dir=root))
    except OSError as error:
        raise write_error(error, root / "tiny") from error
    try:
        written = tiny.write_models_dir(staging, args.family)
        places = {role: root / path.relative_to(staging) for role, path in written.items()}
        taken = [str(places[role]) for role, path in written.items()
                 if os.path.lexists(places[role]) and not _is_tiny_or_same(places[role], path)]
        if taken:
            raise L2AError(
                f"{root} already holds {len(taken)} file(s) under the tiny model's names that are not the tiny "
                f"model's, e.g. {taken[0]}: writing it there would replace them. Use a new folder for the tiny "
                "model, e.g. --models-dir tiny-models."
            )
        for role, path in written.items():
            target = places[role]
            make_folder(target.parent)
            if path.is_dir():
                if target.exists():
                    shutil.rmtree(target)
                os.replace(path, target)
            else:
                publish(path, target)
            print(f"  {role}: {target}")
    except OSError as error:
        raise write_error(error, root / "tiny") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return 0


def cmd_doctor(args) -> int:
    """0 only when every model file of the workflows is present, in its folder, and the right LTX-2 file."""
    from .pipelines import choices, doctor
    from .pipelines.families import FAMILIES

    models_dir = Path(args.models_dir or os.environ.get("LTX2_ANYWHERE_MODELS_DIR") or "models")
    folders = doctor.folders_under(models_dir)
    if args.family:
        results = doctor.diagnose_family(FAMILIES[args.family], folders)
    else:
        results = doctor.diagnose_workflows(args.workflow or choices.shipped_workflows(), folders)
    absent = "" if models_dir.is_dir() else " (this folder does not exist)"
    print(f"Model folders under {models_dir.resolve()}{absent}\n")
    print(doctor.report_text(results))
    return 0 if doctor.all_right(results) else 1


PROVIDERS = ["fal", "wavespeed", "vibedream", "bytecompute", "ltx"]
def add_family_argument(parser, what: str = "of the built-in tiny model used without --model",
                        default: str | None = "2.0") -> None:
    from .pipelines.families import FAMILIES

    names = ", ".join(f"{name} ({family.label})" for name, family in FAMILIES.items())
    parser.add_argument("--family", choices=list(FAMILIES), default=default, help=f"the family {what}: {names}")


def add_part_arguments(parser) -> None:
    """LTX-2.5's VAE files, when not the official ones in the models folder's vae/."""
    for option, what in (("--video-vae", "video VAE"), ("--audio-vae", "audio VAE (with its vocoder)")):
        parser.add_argument(option, default=None, help=f"LTX-2.5: the {what} file (default: the official one in "
                            "--models-dir's vae/)")


def add_hosted_arguments(parser, with_local: bool) -> None:
    choices = ["local", *PROVIDERS] if with_local else PROVIDERS
    parser.add_argument("--backend", choices=choices, default="local" if with_local else None,
                        required=not with_local,
                        help="where to generate; hosted keys come from FAL_KEY, WAVESPEED_API_KEY, ... or the "
                        "keys file")
    parser.add_argument("--endpoint", default=None, help="the provider's endpoint (default: chosen for the mode)")
    parser.add_argument("--base-url", default=None, help="the provider's API base URL (default: the public one)")


def add_spending_arguments(parser) -> None:
    parser.add_argument("--max-cost", type=finite_float, default=None,
                        help="refuse a hosted submit estimated above this (USD)")
    parser.add_argument("--no-reuse", action="store_true",
                        help="submit again even when an identical result is stored")


def build_parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    parser = OneLineParser(prog="ltx2-anywhere", description="LTX-2 video with synchronized audio.", parents=[debug])
    parser.add_argument("--version", action="version", version=f"ltx2-anywhere {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    original_add = sub.add_parser

    def add_parser(name, **kwargs):
        return original_add(name, parents=[debug], **kwargs)

    sub.add_parser = add_parser

    demo = sub.add_parser("demo", help="text- and image-to-video on the built-in tiny model")
    demo.add_argument("--out", default="ltx2-demo", help="output folder (default: ./ltx2-demo)")
    demo.add_argument("--seed", type=int, default=42)
    add_family_argument(demo)
    demo.set_defaults(func=cmd_demo)

    gen = sub.add_parser("generate", help="generate one clip")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--negative-prompt", default=None, help="default: the official LTX-2 negative prompt")
    gen.add_argument("--expand-prompt", action="store_true", help="expand the prompt with Gemma first")
    gen.add_argument("--image", default=None, help="first-frame image (image-to-video)")
    gen.add_argument("--image-strength", type=finite_float, default=1.0)
    gen.add_argument("--end-image", default=None, help="last-frame image")
    gen.add_argument("--end-image-strength", type=finite_float, default=1.0)
    gen.add_argument("--direction", choices=["forward", "backward"], default="forward",
                     help="backward: the video runs towards --image (the images swap ends)")
    gen.add_argument("--crf", type=int, default=None,
                     help="training-style H.264 re-encode of images (0 = off; default: the family's, 33 or 18 on "
                     "LTX-2.5)")
    gen.add_argument("--out", required=True, help="the video file to write")
    gen.add_argument("--model", default=None, help="all-in-one .safetensors, LTX-2.5 transformer .safetensors or "
                     "diffusers folder (default: tiny)")
    add_family_argument(gen)
    gen.add_argument("--text-encoder", default=None, help="the family's text encoder: a Gemma 3 transformers folder "
                     "or single .safetensors, or LTX-2.5's Gemma 4 file")
    add_part_arguments(gen)
    gen.add_argument("--models-dir", default=None,
                     help="ComfyUI models folder holding loras/ and latent_upscale_models/ (default: the model's)")
    gen.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None, help="default: bf16 on GPU, fp32 on CPU")
    gen.add_argument("--width", type=int, default=768)
    gen.add_argument("--height", type=int, default=512)
    gen.add_argument("--resolution", choices=["480p", "720p", "1080p", "custom"], default=None,
                     help="size tier (short side); overrides --width/--height except with custom")
    gen.add_argument("--aspect-ratio", choices=["auto", "16:9", "9:16", "1:1", "4:3", "3:4", "21:9"], default="16:9",
                     help="with --resolution; auto follows --image")
    gen.add_argument("--frames", type=int, default=121)
    gen.add_argument("--duration", type=duration_option, default=None,
                     help="seconds; overrides --frames (nearest 8k+1). auto: LTX-2.5's duration head picks 1-20 s from "
                     "the prompt (needs ltx-2.5-duration-head-bf16.safetensors in <models>/model_patches)")
    gen.add_argument("--fps", type=finite_float, default=24.0)
    gen.add_argument("--steps", type=int, default=0, help="0 = the model's default")
    gen.add_argument("--seed", type=int, default=-1, help="-1 = random (reported)")
    gen.add_argument("--guidance", choices=["auto", "off"], default="auto")
    gen.add_argument("--cfg", type=finite_float, default=None, help="video CFG (default: the model's)")
    gen.add_argument("--audio-cfg", type=finite_float, default=None, help="audio CFG (default: the model's)")
    gen.add_argument("--schedule", choices=["official", "diffusers"], default="official")
    gen.add_argument("--acceleration", choices=["none", "regular", "high", "full"], default="none")
    gen.add_argument("--no-audio", action="store_true",
                     help="video only: no sound is generated and the file has no audio stream")
    gen.add_argument("--multiscale", action="store_true",
                     help="two stages, the official recipe: half size, x2 upsample, refine with the family's "
                     "distilled LoRA (dev models)")
    gen.add_argument("--upsampler", default=None,
                     help="latent upsampler file (default: the family's official one in --models-dir)")
    gen.add_argument("--distilled-lora-strength", type=finite_float, default=1.0,
                     help="multiscale stage 2 on a dev model: the family's distilled LoRA's strength (0 = refine "
                     "without it, not the official recipe)")
    gen.add_argument("--camera", choices=["none", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up",
                                          "jib_down", "static"], default="none", help="camera-control LoRA preset")
    gen.add_argument("--camera-scale", type=finite_float, default=1.0)
    gen.add_argument("--lora", action="append", default=[], type=lora_spec, metavar="PATH[:STRENGTH]",
                     help="any LTX-2 LoRA, strength 1 unless given (repeatable)")
    gen.add_argument("--format", choices=["mp4", "webm", "mov", "gif"], default=None, help="default: from --out's suffix")
    gen.add_argument("--quality", choices=["low", "medium", "high", "maximum"], default="high")
    gen.add_argument("--write-mode", choices=["fast", "balanced", "small"], default="balanced")
    add_hosted_arguments(gen, with_local=True)
    add_spending_arguments(gen)
    gen.set_defaults(func=cmd_generate)

    res = sub.add_parser("resume", help="fetch a hosted job submitted earlier, by its id")
    add_hosted_arguments(res, with_local=False)
    res.add_argument("--job-id", required=True)
    res.add_argument("--out", required=True)
    res.set_defaults(func=cmd_resume)

    def edit_command(name, help_text, func):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--prompt", required=True)
        command.add_argument("--negative-prompt", default=None)
        command.add_argument("--out", required=True)
        command.add_argument("--model", default=None, help="default: the tiny model")
        add_family_argument(command)
        command.add_argument("--text-encoder", default=None)
        add_part_arguments(command)
        command.add_argument("--models-dir", default=None)
        command.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None)
        command.add_argument("--steps", type=int, default=0)
        command.add_argument("--seed", type=int, default=-1)
        command.add_argument("--guidance", choices=["auto", "off"], default="auto")
        command.set_defaults(func=func)
        return command

    ext = edit_command("extend", "continue a clip, video and audio together", cmd_extend)
    ext.add_argument("--video", required=True, help="the clip to continue")
    ext.add_argument("--seconds", type=finite_float, default=5.0, help="how much to add")
    ext.add_argument("--frames", type=int, default=0, help="how much to add in frames (instead of --seconds)")
    ext.add_argument("--overlap", type=int, default=25, help="frames (8k+1) of the clip the continuation starts from")
    ext.add_argument("--size-mode", choices=["crop", "resize"], default="crop")

    a2v = edit_command("audio-to-video", "video for given audio (lip-sync, music video)", cmd_audio_to_video)
    a2v.add_argument("--audio", required=True, help="2-20 s of audio (wav, mp3, flac, or a video's sound; hosted: "
                     "converted to WAV where the provider cannot take the format)")
    a2v.add_argument("--image", default=None, help="first frame")
    a2v.add_argument("--crf", type=int, default=None, help="default: the family's (33, 18 on LTX-2.5)")
    a2v.add_argument("--width", type=int, default=768)
    a2v.add_argument("--height", type=int, default=512)
    a2v.add_argument("--fps", type=finite_float, default=24.0)

    ret = edit_command("retake", "regenerate a time window of a clip", cmd_retake)
    ret.add_argument("--video", required=True)
    ret.add_argument("--start", type=finite_float, required=True, help="window start, seconds")
    ret.add_argument("--end", type=finite_float, required=True, help="window end, seconds")
    ret.add_argument("--part", choices=["both", "video", "audio"], default="both")
    ret.add_argument("--size-mode", choices=["crop", "resize"], default="crop")
    for command in (a2v, ret):
        add_hosted_arguments(command, with_local=True)
        add_spending_arguments(command)

    tiny_cmd = sub.add_parser("tiny", help="write a tiny family's full set into a ComfyUI models folder")
    tiny_cmd.add_argument("--models-dir", required=True, help="e.g. ComfyUI/models")
    add_family_argument(tiny_cmd, "whose official file names and folders to use")
    tiny_cmd.set_defaults(func=cmd_tiny)

    doctor_cmd = sub.add_parser("doctor", help="check the model files the example workflows need")
    doctor_cmd.add_argument("--models-dir", default=None,
                            help="a ComfyUI models folder (default: $LTX2_ANYWHERE_MODELS_DIR or ./models)")
    doctor_cmd.add_argument("--workflow", nargs="+", action="extend", default=None, metavar="FILE",
                            help="workflow JSON files to check (default: every shipped workflow)")
    add_family_argument(doctor_cmd, "whose full set of official files to check, instead of workflows", None)
    doctor_cmd.set_defaults(func=cmd_doctor)
    return parser


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes in one line on stderr (exit 2), pointing to --help instead of repeating the usage."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _say(text: str) -> None:
    """One line on stderr, with any API key this process knows of scrubbed out."""
    from .pipelines.hosted.keys import redact

    print(redact(" ".join(str(text).split())), file=sys.stderr)


def _run_debug(args) -> int:
    """--debug: errors keep their traceback (Ctrl-C still ends quietly)."""
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED


def interrupt(signum, frame) -> None:
    """SIGINT handler: KeyboardInterrupt, as Python's own, except inside an import lock's clean-up callback, where
    CPython would print "Exception ignored" and drop it (the command would go on): there the signal is sent again a
    moment later, once the import has moved on."""
    import signal
    import threading

    while frame is not None:
        if frame.f_code.co_filename == "<frozen importlib._bootstrap>" and frame.f_code.co_name == "cb":
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def main(argv=None) -> int:
    """Run a command. A user's mistake (bad input, a missing or wrong file, an unwritable output) ends in one line
    on stderr and exit status 2, Ctrl-C in exit status 130, an unexpected failure in one line and status 1;
    --debug shows the traceback instead."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return _run_command(argv)
    signal.signal(signal.SIGINT, interrupt)
    try:
        return _run_command(argv)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_command(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    if getattr(args, "debug", False):
        return _run_debug(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _say("interrupted: stopped before finishing; no partly written file was left.")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing more to say to anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BUG
    except (L2AError, OSError) as error:
        _say(f"error: {error}")
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - the last net: one line instead of a traceback
        _say(f"error: unexpected {type(error).__name__}: {error} (run again with --debug for the traceback, and "
             "please report it)")
        return EXIT_BUG
