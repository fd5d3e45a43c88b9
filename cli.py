"""The ltx2-anywhere command line: the same pipelines/ code the ComfyUI nodes run.

  ltx2-anywhere demo                      text- and image-to-video on the built-in tiny model
  ltx2-anywhere generate --prompt ...     one clip from your model files (or the tiny model)
  ltx2-anywhere extend --video clip.mp4   continue a clip, video and audio together
  ltx2-anywhere audio-to-video --audio a.wav   video for given audio (--backend fal|ltx: hosted)
  ltx2-anywhere retake --video clip.mp4 --start 1 --end 2   regenerate a time window (--backend ltx: hosted)
  ltx2-anywhere generate --backend fal ... the same on a hosted API (fal, wavespeed, vibedream, bytecompute, ltx)
  ltx2-anywhere resume --backend fal --job-id ID --out clip.mp4   fetch a hosted job submitted earlier
  ltx2-anywhere tiny --models-dir DIR     write the tiny model into a ComfyUI models folder
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_PROMPT = "a robot dancing in the rain, music plays"


def _device_and_dtype(dtype: str | None):
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return device, dtype or ("bf16" if device.type == "cuda" else "fp32")


def _models(args) -> tuple[Path, Path, Path]:
    """(models folder, checkpoint, text encoder): the tiny model's cache when no --model is given."""
    from .pipelines import tiny

    if args.model is None:
        root = tiny.ensure_cached()
        return root, root / "checkpoints" / tiny.CHECKPOINT_NAMES["dev"], root / "text_encoders" / tiny.TEXT_ENCODER_NAME
    if args.text_encoder is None:
        raise SystemExit("--text-encoder is required with --model: the Gemma 3 folder or file LTX-2 uses.")
    root = Path(args.models_dir) if args.models_dir else Path(args.model).resolve().parent.parent
    return root, Path(args.model), Path(args.text_encoder)


def _load(checkpoint, text_encoder, dtype):
    from transformers.utils import logging as transformers_logging

    from .pipelines.loading import load_model, load_text_encoder

    transformers_logging.disable_progress_bar()
    device, dtype = _device_and_dtype(dtype)
    return load_model(checkpoint, dtype=dtype, device=device), load_text_encoder(text_encoder, dtype=dtype,
                                                                               device=device)


def _with_loras(model, args, root: Path):
    """The model with --camera and --lora adapters; they apply only while sampling."""
    from .pipelines.lora import add_lora, camera_lora_file

    if args.camera != "none" and args.camera_scale > 0:
        model = add_lora(model, camera_lora_file(args.camera, [root / "loras"]), args.camera_scale)
    for spec in args.lora:
        path, _, strength = spec.partition(":")
        model = add_lora(model, path, float(strength or 1.0))
    return model


def _multiscale(model, args, root: Path, dtype):
    """(upsampler, stage-2 model): the official recipe adds the distilled LoRA to a dev model for stage 2."""
    from .pipelines.lora import DISTILLED_LORA, DISTILLED_LORA_REPO, add_lora, require_lora_file
    from .pipelines.upsampler import UPSAMPLER_FILE, load_upsampler

    upsampler_path = Path(args.upsampler) if args.upsampler else root / "latent_upscale_models" / UPSAMPLER_FILE
    if not upsampler_path.is_file():
        raise SystemExit(f"--multiscale needs the latent upsampler: put {UPSAMPLER_FILE} (Lightricks/LTX-2) at "
                         f"{upsampler_path} or pass --upsampler.")
    upsampler = load_upsampler(upsampler_path, dtype=_device_and_dtype(dtype)[1], device=model.device)
    refine = model
    if model.variant == "dev" and args.distilled_lora_strength > 0:
        lora = require_lora_file(DISTILLED_LORA, DISTILLED_LORA_REPO, [root / "loras"], "multiscale stage 2")
        refine = add_lora(model, lora, args.distilled_lora_strength)
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
    from .pipelines import tiny
    from .pipelines.sampling import SamplerSettings

    out = Path(args.out)
    print("LTX-2 Anywhere demo on the built-in tiny model (random weights: expect coloured noise with sound).")
    root = tiny.ensure_cached()
    model, encoder = _load(root / "checkpoints" / tiny.CHECKPOINT_NAMES["dev"],
                           root / "text_encoders" / tiny.TEXT_ENCODER_NAME, None)
    print(f"  model: {model.describe()}")
    settings = SamplerSettings(width=192, height=128, num_frames=25, fps=24.0, seed=args.seed)
    _run(model, encoder, DEMO_PROMPT, out / "demo_text_to_video.mp4", settings)
    _run(model, encoder, DEMO_PROMPT, out / "demo_image_to_video.mp4", settings, image=ASSETS / "sample.png")
    return 0


def _geometry(args) -> tuple[int, int, int]:
    """Width, height and frames from --resolution/--aspect-ratio/--duration when given, else the explicit values."""
    from .pipelines.sizing import MULTISCALE_MULTIPLE, resolve_frames, resolve_size

    width, height, frames = args.width, args.height, args.frames
    if args.resolution:
        image_size = None
        if args.aspect_ratio == "auto" and args.image:
            from PIL import Image

            with Image.open(args.image) as opened:
                image_size = opened.size
        multiple = MULTISCALE_MULTIPLE if args.multiscale else 32
        width, height, note = resolve_size(args.resolution, args.aspect_ratio, width, height, image_size, multiple)
        print(f"  size: {note}")
    if args.duration:
        frames, note = resolve_frames(args.duration, frames, args.fps)
        print(f"  length: {note}")
    return width, height, frames


def _hosted_backend(args):
    """A hosted backend for the CLI: keys from the environment or the user keys file, results kept in the cache."""
    import os

    from .pipelines import tiny
    from .pipelines.backend import HostedBackend

    return HostedBackend(
        provider=args.backend, endpoint=getattr(args, "endpoint", None), base_url=args.base_url,
        user_dir=Path.home() / ".config" / "ltx2-anywhere", store_dir=tiny.cache_root() / "hosted",
        max_cost_usd=getattr(args, "max_cost", None), reuse=not getattr(args, "no_reuse", False),
        allow_loopback=os.environ.get("LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK") == "1",
    )


def _deliver(outcome, out) -> int:
    """Put a hosted result at --out (copied when it is a stored result that is reused)."""
    import shutil

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(outcome.path, out)
    print(f"  {outcome.report}")
    print(f"  wrote {_describe(out)}")
    return 0


def cmd_generate_hosted(args) -> int:
    from .pipelines.backend import Hooks
    from .pipelines.hosted.pricing import format_usd
    from .pipelines.hosted.types import GenerationRequest
    from .pipelines.sampling import resolve_seed

    custom = not args.resolution or args.resolution == "custom"
    request = GenerationRequest(
        mode="i2v" if args.image else "t2v", prompt=args.prompt, seed=resolve_seed(args.seed),
        negative_prompt=args.negative_prompt, image=Path(args.image) if args.image else None,
        end_image=Path(args.end_image) if args.end_image else None,
        width=args.width if custom else None, height=args.height if custom else None,
        resolution=None if custom else args.resolution, aspect_ratio=args.aspect_ratio,
        duration=args.duration, num_frames=None if args.duration else args.frames, fps=args.fps,
        generate_audio=not args.no_audio, guidance_scale=args.cfg, num_inference_steps=args.steps or None,
        camera=args.camera, camera_scale=args.camera_scale, image_strength=args.image_strength,
        end_image_strength=args.end_image_strength, multiscale=args.multiscale or None,
        acceleration=None if args.acceleration == "none" else args.acceleration,
        prompt_expansion=args.expand_prompt or None,
    )
    backend = _hosted_backend(args)
    prepared = backend.prepare(request)
    if prepared.cost:
        print(f"  {args.backend}: estimated {format_usd(prepared.cost.usd)} ({prepared.cost.formula})")
    outcome = backend.generate(request, Path(args.out).resolve().parent, Hooks(on_status=lambda t: print(f"  {t}")))
    return _deliver(outcome, args.out)


def cmd_resume(args) -> int:
    from .pipelines.hosted.jobs import resume_job
    from .pipelines.hosted.store import ResultStore
    from .pipelines.hosted.types import JobRef

    backend = _hosted_backend(args)
    job = JobRef(provider=args.backend, endpoint=args.endpoint or "", job_id=args.job_id)
    outcome = resume_job(backend.client(), job, Path(args.out).resolve(), store=ResultStore(backend.store_dir),
                         on_status=lambda text: print(f"  {text}"))
    print(f"  {args.backend}: job {job.job_id} fetched")
    print(f"  wrote {_describe(outcome.path)}")
    return 0


def cmd_generate(args) -> int:
    from .pipelines.families import Guidance

    if args.backend != "local":
        return cmd_generate_hosted(args)
    from .pipelines.sampling import SamplerSettings, check_settings

    guidance = None
    if args.guidance == "off":
        guidance = Guidance.off()
    elif args.cfg is not None:
        guidance = Guidance(video_cfg=args.cfg, audio_cfg=args.audio_cfg or args.cfg)
    width, height, frames = _geometry(args)
    settings = SamplerSettings(width=width, height=height, num_frames=frames, fps=args.fps, steps=args.steps,
                               seed=args.seed, guidance=guidance, schedule=args.schedule,
                               generate_audio=not args.no_audio, acceleration=args.acceleration)
    check_settings(settings)
    root, checkpoint, text_encoder = _models(args)
    model, encoder = _load(checkpoint, text_encoder, args.dtype)
    print(f"  model: {model.describe()}")
    model = _with_loras(model, args, root)
    upsampler, refine = _multiscale(model, args, root, args.dtype) if args.multiscale else (None, None)
    write_options = {"format": args.format, "quality": args.quality, "write_mode": args.write_mode}
    _run(model, encoder, args.prompt, Path(args.out), settings, negative_prompt=args.negative_prompt,
         image=args.image, image_strength=args.image_strength, end_image=args.end_image,
         end_image_strength=args.end_image_strength, direction=args.direction, crf=args.crf,
         expand_prompt=args.expand_prompt, upsampler=upsampler, refine_model=refine, write_options=write_options)
    return 0


def _edit_setup(args):
    """Model, text conditioning and sampler settings shared by extend, audio-to-video and retake."""
    from .pipelines.conditioning import encode_text
    from .pipelines.families import Guidance
    from .pipelines.sampling import SamplerSettings

    settings = SamplerSettings(width=getattr(args, "width", 768), height=getattr(args, "height", 512),
                               fps=getattr(args, "fps", 24.0), steps=args.steps, seed=args.seed,
                               guidance=Guidance.off() if args.guidance == "off" else None)
    _root, checkpoint, text_encoder = _models(args)
    model, encoder = _load(checkpoint, text_encoder, args.dtype)
    print(f"  model: {model.describe()}")
    conditioning = encode_text(encoder, args.prompt, args.negative_prompt, settings.fps)
    if getattr(args, "image", None):
        from .pipelines.conditioning import image_condition
        from .pipelines.media import load_image

        conditioning = conditioning.with_image(image_condition(load_image(args.image), 1.0, args.crf))
    return model, conditioning, settings


def _read_clip(args):
    from .pipelines.av_edit import Clip, fit_clip
    from .pipelines.media import read_clip

    frames, fps, audio, note = read_clip(args.video)
    waveform, rate = (audio["waveform"][0], audio["sample_rate"]) if audio else (None, None)
    clip, size_note = fit_clip(Clip(frames, float(fps), waveform, rate), args.size_mode)
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
    from .pipelines.av_edit import extend

    clip = _read_clip(args)
    model, conditioning, settings = _edit_setup(args)
    frames = args.frames or round(args.seconds * clip.fps)
    result = extend(model, conditioning, clip, frames, args.overlap, settings, _edit_hooks(Path(args.out).name))
    return _write_result(result, args.out)


def cmd_audio_to_video(args) -> int:
    from .pipelines.av_edit import audio_to_video
    from .pipelines.media import read_audio

    if args.backend != "local":
        return _hosted_edit(args, mode="a2v", audio=Path(args.audio), image=Path(args.image) if args.image else None,
                            width=args.width, height=args.height, fps=args.fps)
    waveform, rate = read_audio(args.audio)
    model, conditioning, settings = _edit_setup(args)
    result = audio_to_video(model, conditioning, waveform, rate, settings, _edit_hooks(Path(args.out).name))
    return _write_result(result, args.out)


def cmd_retake(args) -> int:
    from .pipelines.av_edit import retake

    if args.backend != "local":
        return _hosted_edit(args, mode="retake", video=Path(args.video), window_start=args.start,
                            window_end=args.end, retake_part=args.part)
    clip = _read_clip(args)
    model, conditioning, settings = _edit_setup(args)
    result = retake(model, conditioning, clip, args.start, args.end, args.part, settings,
                    _edit_hooks(Path(args.out).name))
    return _write_result(result, args.out)


def _hosted_edit(args, **fields) -> int:
    """Audio-to-video or retake on a provider: the estimate is printed before anything is sent; an audio-to-video
    result carries the given audio (encoded once, cut to the video), not the provider's copy of it."""
    from .pipelines.backend import Hooks
    from .pipelines.hosted.pricing import format_usd
    from .pipelines.hosted.types import GenerationRequest
    from .pipelines.media import read_audio, replace_audio_track
    from .pipelines.sampling import resolve_seed

    request = GenerationRequest(prompt=args.prompt, seed=resolve_seed(args.seed), **fields)
    backend = _hosted_backend(args)
    prepared = backend.prepare(request)
    if prepared.cost:
        print(f"  {args.backend}: estimated {format_usd(prepared.cost.usd)} ({prepared.cost.formula})")
    outcome = backend.generate(request, Path(args.out).resolve().parent, Hooks(on_status=lambda t: print(f"  {t}")))
    if request.mode != "a2v":
        return _deliver(outcome, args.out)
    waveform, rate = read_audio(request.audio)
    path = replace_audio_track(outcome.path, waveform, rate, Path(args.out), metadata={"comment": outcome.report})
    print(f"  {outcome.report}")
    print(f"  wrote {_describe(path)} (the given audio, encoded once)")
    return 0


def cmd_tiny(args) -> int:
    from .pipelines import tiny

    for role, path in tiny.write_models_dir(args.models_dir).items():
        print(f"  {role}: {path}")
    return 0


def cmd_doctor(args) -> int:
    """0 only when every model file of the workflows is present, in its folder, and the right LTX-2 file."""
    import os

    from .pipelines import doctor

    models_dir = Path(args.models_dir or os.environ.get("LTX2_ANYWHERE_MODELS_DIR") or "models")
    paths = args.workflow or doctor.shipped_workflows()
    results = doctor.diagnose_workflows(paths, doctor.folders_under(models_dir))
    absent = "" if models_dir.is_dir() else " (this folder does not exist)"
    print(f"Model folders under {models_dir.resolve()}{absent}\n")
    print(doctor.report_text(results))
    return 0 if doctor.all_right(results) else 1


PROVIDERS = ["fal", "wavespeed", "vibedream", "bytecompute", "ltx"]


def add_hosted_arguments(parser, with_local: bool) -> None:
    choices = ["local", *PROVIDERS] if with_local else PROVIDERS
    parser.add_argument("--backend", choices=choices, default="local" if with_local else None,
                        required=not with_local,
                        help="where to generate; hosted keys come from FAL_KEY, WAVESPEED_API_KEY, ... or the "
                        "keys file")
    parser.add_argument("--endpoint", default=None, help="the provider's endpoint (default: chosen for the mode)")
    parser.add_argument("--base-url", default=None, help="the provider's API base URL (default: the public one)")


def add_spending_arguments(parser) -> None:
    parser.add_argument("--max-cost", type=float, default=None,
                        help="refuse a hosted submit estimated above this (USD)")
    parser.add_argument("--no-reuse", action="store_true",
                        help="submit again even when an identical result is stored")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltx2-anywhere", description="LTX-2 video with synchronized audio.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="text- and image-to-video on the built-in tiny model")
    demo.add_argument("--out", default="ltx2-demo", help="output folder (default: ./ltx2-demo)")
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=cmd_demo)

    gen = sub.add_parser("generate", help="generate one clip")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--negative-prompt", default=None, help="default: the official LTX-2 negative prompt")
    gen.add_argument("--expand-prompt", action="store_true", help="expand the prompt with Gemma first")
    gen.add_argument("--image", default=None, help="first-frame image (image-to-video)")
    gen.add_argument("--image-strength", type=float, default=1.0)
    gen.add_argument("--end-image", default=None, help="last-frame image")
    gen.add_argument("--end-image-strength", type=float, default=1.0)
    gen.add_argument("--direction", choices=["forward", "backward"], default="forward",
                     help="backward: the video runs towards --image (the images swap ends)")
    gen.add_argument("--crf", type=int, default=33, help="training-style H.264 re-encode of images (0 = off)")
    gen.add_argument("--out", required=True, help="the video file to write")
    gen.add_argument("--model", default=None, help="all-in-one .safetensors or diffusers folder (default: tiny)")
    gen.add_argument("--text-encoder", default=None, help="Gemma 3 transformers folder or single .safetensors")
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
    gen.add_argument("--duration", type=float, default=None, help="seconds; overrides --frames (nearest 8k+1)")
    gen.add_argument("--fps", type=float, default=24.0)
    gen.add_argument("--steps", type=int, default=0, help="0 = the model's default")
    gen.add_argument("--seed", type=int, default=-1, help="-1 = random (reported)")
    gen.add_argument("--guidance", choices=["auto", "off"], default="auto")
    gen.add_argument("--cfg", type=float, default=None, help="video CFG (default: the model's)")
    gen.add_argument("--audio-cfg", type=float, default=None, help="audio CFG (default: the model's)")
    gen.add_argument("--schedule", choices=["official", "diffusers"], default="official")
    gen.add_argument("--acceleration", choices=["none", "regular", "high", "full"], default="none")
    gen.add_argument("--no-audio", action="store_true", help="silent audio (no sound is kept)")
    gen.add_argument("--multiscale", action="store_true", help="two stages: half size, x2 upsample, refine")
    gen.add_argument("--upsampler", default=None, help="latent upsampler file (default: from --models-dir)")
    gen.add_argument("--distilled-lora-strength", type=float, default=1.0,
                     help="multiscale stage 2 on a dev model: the distilled LoRA's strength (0 = without)")
    gen.add_argument("--camera", choices=["none", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up",
                                          "jib_down", "static"], default="none", help="camera-control LoRA preset")
    gen.add_argument("--camera-scale", type=float, default=1.0)
    gen.add_argument("--lora", action="append", default=[], metavar="PATH[:STRENGTH]", help="any LTX-2 LoRA (repeatable)")
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
        command.add_argument("--text-encoder", default=None)
        command.add_argument("--models-dir", default=None)
        command.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None)
        command.add_argument("--steps", type=int, default=0)
        command.add_argument("--seed", type=int, default=-1)
        command.add_argument("--guidance", choices=["auto", "off"], default="auto")
        command.set_defaults(func=func)
        return command

    ext = edit_command("extend", "continue a clip, video and audio together", cmd_extend)
    ext.add_argument("--video", required=True, help="the clip to continue")
    ext.add_argument("--seconds", type=float, default=5.0, help="how much to add")
    ext.add_argument("--frames", type=int, default=0, help="how much to add in frames (instead of --seconds)")
    ext.add_argument("--overlap", type=int, default=25, help="frames (8k+1) of the clip the continuation starts from")
    ext.add_argument("--size-mode", choices=["crop", "resize"], default="crop")

    a2v = edit_command("audio-to-video", "video for given audio (lip-sync, music video)", cmd_audio_to_video)
    a2v.add_argument("--audio", required=True, help="2-20 s of audio (wav, mp3, flac, or a video's sound; hosted: "
                     "converted to WAV where the provider cannot take the format)")
    a2v.add_argument("--image", default=None, help="first frame")
    a2v.add_argument("--crf", type=int, default=33)
    a2v.add_argument("--width", type=int, default=768)
    a2v.add_argument("--height", type=int, default=512)
    a2v.add_argument("--fps", type=float, default=24.0)

    ret = edit_command("retake", "regenerate a time window of a clip", cmd_retake)
    ret.add_argument("--video", required=True)
    ret.add_argument("--start", type=float, required=True, help="window start, seconds")
    ret.add_argument("--end", type=float, required=True, help="window end, seconds")
    ret.add_argument("--part", choices=["both", "video", "audio"], default="both")
    ret.add_argument("--size-mode", choices=["crop", "resize"], default="crop")
    for command in (a2v, ret):
        add_hosted_arguments(command, with_local=True)
        add_spending_arguments(command)

    tiny_cmd = sub.add_parser("tiny", help="write the tiny model into a ComfyUI models folder")
    tiny_cmd.add_argument("--models-dir", required=True, help="e.g. ComfyUI/models")
    tiny_cmd.set_defaults(func=cmd_tiny)

    doctor_cmd = sub.add_parser("doctor", help="check the model files the example workflows need")
    doctor_cmd.add_argument("--models-dir", default=None,
                            help="a ComfyUI models folder (default: $LTX2_ANYWHERE_MODELS_DIR or ./models)")
    doctor_cmd.add_argument("--workflow", nargs="+", action="extend", default=None, metavar="FILE",
                            help="workflow JSON files to check (default: every shipped workflow)")
    doctor_cmd.set_defaults(func=cmd_doctor)
    return parser


def main(argv=None) -> int:
    from .pipelines.errors import L2AError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (L2AError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
