"""What LTX-2.5's diffusion video decoder costs next to the conv decoder, counted from the models' sizes and steps.

No GPU has measured the 417 M-parameter diffusion decoder for this pack, so its cost is counted instead, for one
decode of a latent of each size, both decoders at full size on the meta device (no memory, no arithmetic):

* the conv decoder under torch's FlopCounterMode, which adds up every convolution and matmul from its shapes;
* the diffusion decoder as the pack runs it (one step, as LTX-2.5 ships it): every Linear layer's FLOPs from its
  input shape (hooks), and every neighborhood attention's from its grid with `neighborhood.attention_flops`, the
  work SDPA does over the key boxes of `neighborhood_attention` (its actual call shapes; a test checks the formula
  against them) and, beside it, the work NATTEN's kernel does on the windows alone. The attention itself is not
  executed here (FlopCounterMode neither counts masked SDPA on the CPU nor runs full-size grids quickly).

Seconds are lower bounds: FLOPs over an H100's bf16 dense peak (989 TFLOP/s); real kernels reach a fraction of it.

The weights of the two decoders are also counted (parameters x 2 bytes in bf16), and the largest activation of the
untiled diffusion decode (the stage-5 token grid, 256 channels) is computed from the output size.

    python bench/diffusion_decode_cost.py [--sizes 768x512x121 1280x704x121 1920x1088x121] [--quick]

`--quick` counts the tiny decoders at a toy size: it checks the script, not the figures.
"""

from __future__ import annotations

import argparse
import math

import torch
from _common import footer, header, say, table

from ltx2_anywhere.pipelines import tiny, tiny_extras
from ltx2_anywhere.pipelines.families import LTX23_22B
from ltx2_anywhere.pipelines.neighborhood import NeighborhoodSDPAProcessor, attention_flops
from ltx2_anywhere.pipelines.weights import parameters_on_meta

H100_BF16_TFLOPS = 989.4
FULL_SIZES = ["768x512x121", "1280x704x121", "1920x1088x121"]
QUICK_SIZES = ["96x96x17"]


def parse_size(text: str) -> tuple[int, int, int]:
    width, height, frames = (int(part) for part in text.lower().split("x"))
    return width, height, frames


def build(quick: bool):
    """(conv decoder, diffusion decoder), parameters on the meta device: the shipped 2.3/2.5 conv VAE config and
    the diffusion decoder's released layout (diffusers' defaults: ltx2.5.md section 5), or the tiny ones."""
    from diffusers import AutoencoderKLLTX2Video, LTX2VideoDiffusionDecoderModel

    vae_config = tiny.tiny_config("2.3")["vae"] if quick else LTX23_22B.config()["vae"]
    decoder_config = tiny_extras.TINY_DIFFUSION_DECODER if quick else {}
    with parameters_on_meta():
        conv = AutoencoderKLLTX2Video(**vae_config).eval()
        diffusion = LTX2VideoDiffusionDecoderModel(**decoder_config).eval()
    conv.to("meta")
    diffusion.to("meta")
    diffusion.set_attn_processor(NeighborhoodSDPAProcessor())
    return conv, diffusion


def diffusion_flops(diffusion, latent) -> tuple[int, int, int]:
    """(total FLOPs as the pack runs it, of which attention, attention on the windows alone) of one decode."""
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttention

    totals = {"linear": 0, "attention": 0, "windows": 0}

    def linear(module, args):
        totals["linear"] += 2 * math.prod(args[0].shape[:-1]) * module.in_features * module.out_features

    class Counted:
        """The pack's processor with the attention counted, not run: projections, then the output layer."""

        def __call__(self, attn, hidden, block_mask=None):
            attn.project_qkv(hidden)
            boxes, windows = attention_flops(tuple(hidden.shape[1:4]), attn.kernel_size, attn.heads, attn.head_dim)
            totals["attention"] += boxes * hidden.shape[0]
            totals["windows"] += windows * hidden.shape[0]
            return attn.to_out[0](hidden)

    handles = [m.register_forward_pre_hook(linear) for m in diffusion.modules() if isinstance(m, torch.nn.Linear)]
    attentions = [m for m in diffusion.modules() if isinstance(m, LTX2VideoVaeNeighborhoodAttention)]
    for module in attentions:
        module.set_processor(Counted())
    try:
        with torch.no_grad():
            diffusion.decoder(latent)
    finally:
        for handle in handles:
            handle.remove()
        for module in attentions:
            module.set_processor(NeighborhoodSDPAProcessor())
    return totals["linear"] + totals["attention"], totals["attention"], totals["windows"]


def count_flops(run) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        run()
    return counter.get_total_flops()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", help="WIDTHxHEIGHTxFRAMES each (default 768x512x121 1280x704x121 "
                        "1920x1088x121)")
    parser.add_argument("--quick", action="store_true", help="the tiny decoders at a toy size")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))]
    header("LTX-2.5 video decode cost: diffusion decoder vs conv decoder, FLOPs counted on the meta device"
           + (" (tiny, --quick)" if args.quick else ""))
    conv, diffusion = build(args.quick)
    conv_params = sum(p.numel() for p in conv.decoder.parameters())
    diffusion_params = sum(p.numel() for p in diffusion.parameters())
    steps = int(diffusion.config.decoder_num_inference_steps)
    say(f"conv decoder: {conv_params:,} parameters ({conv_params * 2 / 1e9:.2f} GB bf16); diffusion decoder: "
        f"{diffusion_params:,} ({diffusion_params * 2 / 1e9:.2f} GB bf16), {steps} step(s), "
        f"{diffusion.config.decoder_model_output_type} prediction")
    latent_channels = diffusion.config.latent_channels
    rows, ratios = [], []
    for width, height, frames in sizes:
        latent = torch.empty(1, latent_channels, (frames - 1) // 8 + 1, height // 32, width // 32, device="meta")
        conv_flops = count_flops(lambda: conv.decode(latent, None, return_dict=False))  # noqa: B023
        total, attention, windows = diffusion_flops(diffusion, latent)
        tokens = frames * (height // diffusion.config.patch_size) * (width // diffusion.config.patch_size)
        activation = tokens * diffusion.config.decoder_stage_channels[-1] * 2 / 1e9
        ratio = total / conv_flops
        ratios.append(ratio)
        with_natten = total - attention + windows
        rows.append([f"{width}x{height}x{frames}", f"{conv_flops / 1e12:.1f}", f"{total / 1e12:.1f}",
                     f"{attention / 1e12:.1f}", f"{with_natten / 1e12:.1f}", f"{ratio:.1f}x",
                     f"{conv_flops / (H100_BF16_TFLOPS * 1e12):.2f}", f"{total / (H100_BF16_TFLOPS * 1e12):.2f}",
                     f"{activation:.2f}"])
    table(["size", "conv TFLOP", "diffusion TFLOP (pack)", "of it attention", "diffusion with NATTEN TFLOP",
           "pack / conv", "conv s (H100 bound)", "diffusion s (H100 bound)", "stage-5 activation GB (bf16)"], rows)
    footer()
    say(f"diffusion decoder / conv decoder: {min(ratios):.1f}x to {max(ratios):.1f}x the FLOPs over "
        f"{len(sizes)} size(s)")


if __name__ == "__main__":
    main()
