"""What the pack's node chain costs over calling diffusers' LTX2Pipeline directly, for the same work.

The chain L2A_TextEncode -> L2A_Sampler -> L2A_DecodeVideo -> L2A_DecodeAudio (ComfyUI absent: the `_comfy`
fallbacks) and `LTX2Pipeline.__call__` get the same in-memory modules, prompt, seed, size, steps, full guidance
(CFG, STG, modality, rescale) and the sampler's `schedule="diffusers"`, so both do the same arithmetic; the script
checks that their frames and sound agree. The model is the tiny config with a wider, deeper transformer and a larger
video, so one call takes seconds and per-step Python costs are measured against real work, not against nothing.
Loading is excluded; runs alternate after one warm-up each; gc runs before every timed run. The CPU-time ratio is
printed beside the wall-time one: other processes on the machine move it much less.

Torch runs on one thread by default: on a shared 2-core machine, two OpenMP threads stall on every barrier where
another process holds a core, and run times swing by 2-3x (a median cannot hide that).

    python bench/overhead.py [--runs 11] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

from _common import footer, header, median, say, spread, table, timed, tiny_model

TARGET = 1.05
PROMPT = "a robot dancing in the rain, music plays"
NEGATIVE = "blurry, static"
SEED = 7
FPS = 24.0
STG_BLOCK = 1
# (width, height, frames, steps) and the transformer's size: the full run takes >= 2 s a call on a 2-core EPYC.
FULL = dict(width=320, height=192, frames=33, steps=10, heads=8, head_dim=32, layers=4)
QUICK = dict(width=96, height=64, frames=17, steps=2, heads=2, head_dim=8, layers=2)  # the tiny model itself


def scaled_config(size: dict) -> dict:
    """tiny.json with the transformer's width and depth replaced (cross-attention follows the width)."""
    from ltx2_anywhere.pipelines import tiny

    config = tiny.tiny_config()
    heads, dim = size["heads"], size["head_dim"]
    config["transformer"].update(
        num_attention_heads=heads, attention_head_dim=dim, cross_attention_dim=heads * dim, num_layers=size["layers"],
        audio_num_attention_heads=heads, audio_attention_head_dim=dim // 2, audio_cross_attention_dim=heads * dim // 2,
    )
    return config


def build(config: dict):
    """The pack's model and text encoder containers and a diffusers pipeline, all over the same modules."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2Pipeline

    from ltx2_anywhere.pipelines import tiny
    from ltx2_anywhere.pipelines.components import TextEncoder

    model = tiny_model(config)
    max_length = tiny.tiny_family().max_sequence_length
    gemma, tokenizer = tiny.build_text_encoder(config, max_length)
    encoder = TextEncoder(model=gemma, tokenizer=tokenizer, device=model.device, dtype=torch.float32,
                          source="tiny (in memory)", max_sequence_length=max_length)
    pipe = LTX2Pipeline(scheduler=FlowMatchEulerDiscreteScheduler.from_config(model.scheduler_config),
                        vae=model.vae, audio_vae=model.audio_vae, text_encoder=gemma, tokenizer=tokenizer,
                        connectors=model.connectors, transformer=model.transformer, vocoder=model.vocoder)
    pipe.set_progress_bar_config(disable=True)
    return model, encoder, pipe


def node_chain(model, encoder, size: dict):
    """The graph a ComfyUI user builds, node by node: frames [F, H, W, 3] and waveform [1, 2, S]."""
    from ltx2_anywhere.nodes.conditioning import L2A_TextEncode
    from ltx2_anywhere.nodes.media import L2A_DecodeAudio, L2A_DecodeVideo
    from ltx2_anywhere.nodes.sampling import L2A_Sampler

    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, FPS)
    latent, _, _ = L2A_Sampler().sample(
        model, conditioning, width=size["width"], height=size["height"], frames=size["frames"], fps=FPS,
        steps=size["steps"], seed=SEED, guidance="custom", video_cfg=3.0, audio_cfg=7.0, stg_scale=1.0,
        stg_blocks=str(STG_BLOCK), modality_scale=3.0, rescale=0.7, generate_audio=True, schedule="diffusers",
    )["result"]
    images, _ = L2A_DecodeVideo().decode(model, latent, spatial_tiling=False, tile_size=512, tile_overlap=64,
                                         temporal_tiling=False, tile_frames=16, frame_overlap=8)
    (audio,) = L2A_DecodeAudio().decode(model, latent)
    return images.numpy(), audio["waveform"]


def direct(pipe, encoder, size: dict):
    """The same request as one diffusers call."""
    import torch

    out = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, width=size["width"], height=size["height"],
               num_frames=size["frames"], frame_rate=FPS, num_inference_steps=size["steps"], guidance_scale=3.0,
               stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7, audio_guidance_scale=7.0, audio_stg_scale=1.0,
               audio_modality_scale=3.0, audio_guidance_rescale=0.7, spatio_temporal_guidance_blocks=[STG_BLOCK],
               use_cross_timestep=False, max_sequence_length=encoder.max_sequence_length,
               generator=torch.Generator().manual_seed(SEED), output_type="np")
    return out.frames[0], out.audio


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="timed runs of each (>= 7 for a figure)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1, see above)")
    parser.add_argument("--quick", action="store_true", help="the tiny model, 2 steps, 2 runs: checks the script")
    args = parser.parse_args(argv)
    size, runs = (QUICK, 2) if args.quick else (FULL, args.runs)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    header("node chain vs a direct diffusers LTX2Pipeline call")
    started = time.perf_counter()
    model, encoder, pipe = build(scaled_config(size))
    params = sum(p.numel() for p in model.transformer.parameters()) / 1e6
    say(f"model: tiny config, transformer {size['layers']} layers x {size['heads']} heads x {size['head_dim']} "
        f"({params:.2f} M parameters); {size['width']}x{size['height']}, {size['frames']} frames, {size['steps']} "
        f"steps, full guidance (4 transformer passes a step); torch threads {torch.get_num_threads()}; "
        f"built in {time.perf_counter() - started:.1f} s (not timed)")

    chain, reference = partial(node_chain, model, encoder, size), partial(direct, pipe, encoder, size)
    frames, audio = timed(chain)[2]  # warm-ups, and the check that both do the same work
    ref_frames, ref_audio = timed(reference)[2]
    frame_diff = float(np.abs(frames - ref_frames).max())
    audio_diff = float((audio - ref_audio).abs().max())
    chain_runs, direct_runs = [], []
    for _ in range(runs):
        chain_runs.append(timed(chain))
        direct_runs.append(timed(reference))

    def seconds(sample, kind):  # kind 0: wall, 1: CPU
        return [run[kind] for run in sample]

    table(["run", "median s", "min s", "max s", "median CPU s"], [
        ["node chain (4 nodes)", *spread(seconds(chain_runs, 0), digits=3), f"{median(seconds(chain_runs, 1)):.3f}"],
        ["diffusers LTX2Pipeline (reference)", *spread(seconds(direct_runs, 0), digits=3),
         f"{median(seconds(direct_runs, 1)):.3f}"],
    ])
    chain_s, direct_s = seconds(chain_runs, 0), seconds(direct_runs, 0)
    ratio = median(chain_s) / median(direct_s)
    paired = median([c / d for c, d in zip(chain_s, direct_s)])
    cpu_ratio = median(seconds(chain_runs, 1)) / median(seconds(direct_runs, 1))
    say(f"outputs agree: max |frame diff| {frame_diff:.1e}, max |audio diff| {audio_diff:.1e}")
    best = min(chain_s) / min(direct_s)
    say(f"{runs} runs each, alternating; cross-checks, less moved by other processes: fastest / fastest {best:.3f}, "
        f"median per-pair ratio {paired:.3f}, CPU-time ratio {cpu_ratio:.3f}")
    if not args.quick and median(direct_s) < 2.0:
        say(f"note: one diffusers call took {median(direct_s):.2f} s, under the 2 s the figure is meant for")
    footer()
    verdict = "holds" if ratio <= TARGET else "MISSED"
    say(f"node chain / diffusers = {ratio:.3f}x (target <= {TARGET:g}: {verdict})")


if __name__ == "__main__":
    main()
