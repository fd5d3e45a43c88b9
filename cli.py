"""The ltx2-anywhere command line: the same pipelines/ code the ComfyUI nodes run.

  ltx2-anywhere demo                      text- and image-to-video on the built-in tiny model
  ltx2-anywhere generate --prompt ...     one clip from your model files (or the tiny model)
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


def _load(model_path, text_encoder_path, dtype):
    from transformers.utils import logging as transformers_logging

    from .pipelines import tiny
    from .pipelines.loading import load_model, load_text_encoder

    transformers_logging.disable_progress_bar()
    device, dtype = _device_and_dtype(dtype)
    if model_path is None:
        root = tiny.ensure_cached()
        model_path = root / "checkpoints" / tiny.CHECKPOINT_NAMES["dev"]
        text_encoder_path = text_encoder_path or root / "text_encoders" / tiny.TEXT_ENCODER_NAME
    if text_encoder_path is None:
        raise SystemExit("--text-encoder is required with --model: the Gemma 3 folder LTX-2 uses.")
    return load_model(model_path, dtype=dtype, device=device), load_text_encoder(text_encoder_path, dtype=dtype,
                                                                                 device=device)


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
    path, latent = generate_to_file(model, encoder, prompt, out, settings, on_step=_progress(Path(out).name), **kwargs)
    print(f"  {latent.report}")
    print(f"  wrote {_describe(path)} in {time.perf_counter() - start:.1f} s")
    return path


def cmd_demo(args) -> int:
    from .pipelines.sampling import SamplerSettings

    out = Path(args.out)
    print("LTX-2 Anywhere demo on the built-in tiny model (random weights: expect coloured noise with sound).")
    model, encoder = _load(None, None, None)
    print(f"  model: {model.describe()}")
    settings = SamplerSettings(width=192, height=128, num_frames=25, fps=24.0, seed=args.seed)
    _run(model, encoder, DEMO_PROMPT, out / "demo_text_to_video.mp4", settings)
    _run(model, encoder, DEMO_PROMPT, out / "demo_image_to_video.mp4", settings, image=ASSETS / "sample.png")
    return 0


def cmd_generate(args) -> int:
    from .pipelines.families import Guidance
    from .pipelines.sampling import SamplerSettings, check_settings

    guidance = None
    if args.guidance == "off":
        guidance = Guidance.off()
    elif args.cfg is not None:
        guidance = Guidance(video_cfg=args.cfg, audio_cfg=args.audio_cfg or args.cfg)
    settings = SamplerSettings(width=args.width, height=args.height, num_frames=args.frames, fps=args.fps,
                               steps=args.steps, seed=args.seed, guidance=guidance, schedule=args.schedule)
    check_settings(settings)
    model, encoder = _load(args.model, args.text_encoder, args.dtype)
    print(f"  model: {model.describe()}")
    _run(model, encoder, args.prompt, Path(args.out), settings, negative_prompt=args.negative_prompt,
         image=args.image, image_strength=args.image_strength, crf=args.crf)
    return 0


def cmd_tiny(args) -> int:
    from .pipelines import tiny

    for role, path in tiny.write_models_dir(args.models_dir).items():
        print(f"  {role}: {path}")
    return 0


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
    gen.add_argument("--image", default=None, help="first-frame image (image-to-video)")
    gen.add_argument("--image-strength", type=float, default=1.0)
    gen.add_argument("--crf", type=int, default=33, help="training-style H.264 re-encode of the image (0 = off)")
    gen.add_argument("--out", required=True, help="the mp4 to write")
    gen.add_argument("--model", default=None, help="all-in-one .safetensors or diffusers folder (default: tiny)")
    gen.add_argument("--text-encoder", default=None, help="Gemma 3 transformers folder")
    gen.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None, help="default: bf16 on GPU, fp32 on CPU")
    gen.add_argument("--width", type=int, default=768)
    gen.add_argument("--height", type=int, default=512)
    gen.add_argument("--frames", type=int, default=121)
    gen.add_argument("--fps", type=float, default=24.0)
    gen.add_argument("--steps", type=int, default=0, help="0 = the model's default")
    gen.add_argument("--seed", type=int, default=-1, help="-1 = random (reported)")
    gen.add_argument("--guidance", choices=["auto", "off"], default="auto")
    gen.add_argument("--cfg", type=float, default=None, help="video CFG (default: the model's)")
    gen.add_argument("--audio-cfg", type=float, default=None, help="audio CFG (default: the model's)")
    gen.add_argument("--schedule", choices=["official", "diffusers"], default="official")
    gen.set_defaults(func=cmd_generate)

    tiny_cmd = sub.add_parser("tiny", help="write the tiny model into a ComfyUI models folder")
    tiny_cmd.add_argument("--models-dir", required=True, help="e.g. ComfyUI/models")
    tiny_cmd.set_defaults(func=cmd_tiny)
    return parser


def main(argv=None) -> int:
    from .pipelines.errors import L2AError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (L2AError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
