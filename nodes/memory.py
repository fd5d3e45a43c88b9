"""Memory and speed option nodes: offload, attention, compile and VAE tiling for the model; device, fp8 storage and
release for Gemma. Each passes its input through with the options applied, so it slots in after a loader."""

from ..pipelines.choices import ATTENTION_BACKENDS, OFFLOAD_MODES, TEXT_ENCODER_DEVICES, VAE_TILING
from .common import CATEGORY, MODEL, TEXT_ENCODER


class L2A_MemoryOptions:
    DESCRIPTION = (
        "Fits LTX-2 on smaller cards or makes it faster: offload (model: one component on the GPU at a time; group: "
        "a few transformer blocks at a time; sequential: one layer at a time), the attention kernel, torch.compile "
        "of the transformer blocks, and VAE tiling. The options change the loaded model for every branch that uses "
        "it; the last options node run wins."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader (or a LoRA node)."}),
                "offload": (list(OFFLOAD_MODES), {
                    "default": "none",
                    "tooltip": "Where weights wait between uses. none: all on the GPU (fastest). model: each "
                    "component on the GPU only while it runs (peak = the transformer). group: a few transformer "
                    "blocks at a time (see blocks per group). sequential: one layer at a time (least memory, "
                    "slowest). model and sequential need a GPU.",
                }),
                "offload_blocks_per_group": ("INT", {
                    "default": 1, "min": 1, "max": 64,
                    "tooltip": "Group offload: transformer blocks on the GPU at a time (LTX-2 19B has 48, each "
                    "0.77 GB in bf16). More is faster and uses more memory.",
                }),
                "use_cuda_streams": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Group / sequential offload: load the next weights while the current ones compute. "
                    "Faster; needs a GPU and pins the offloaded weights in system memory. Without it, each group is "
                    "also copied back to system memory after use.",
                }),
                "attention_backend": (list(ATTENTION_BACKENDS), {
                    "default": "native",
                    "tooltip": "Attention kernel. native lets PyTorch pick (the right choice almost always); "
                    "_native_efficient / _native_cudnn / xformers need a GPU; flash and sage kernels are not "
                    "offered because they cannot take LTX-2's text attention mask.",
                }),
                "compile_blocks": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "torch.compile each transformer block (regional compile): the first run compiles "
                    "(minutes), later runs are faster. Needs a working compiler toolchain (Triton on GPU).",
                }),
                "vae_tiling": (list(VAE_TILING), {
                    "default": "off",
                    "tooltip": "Forces tiled video decoding for this model, on top of LTX-2 Decode Video's own "
                    "switches (whose tile sizes are used): spatial for large frames, temporal for long clips.",
                }),
            }
        }

    def apply(self, model, offload, offload_blocks_per_group, use_cuda_streams, attention_backend, compile_blocks,
              vae_tiling):
        from ..pipelines.memory import MemoryPolicy, with_policy

        policy = MemoryPolicy(offload=offload, blocks_per_group=offload_blocks_per_group,
                              cuda_streams=use_cuda_streams, attention_backend=attention_backend,
                              compile_blocks=compile_blocks, vae_tiling=vae_tiling)
        return (with_policy(model, policy),)


class L2A_TextEncoderOptions:
    DESCRIPTION = (
        "Gemma 3 12B needs about 24 GB in bf16 but only for a moment: run it on the CPU, store it in fp8 (about "
        "half), and move it off the GPU right after encoding. Encoded prompts are cached either way, so a re-run "
        "with the same prompt skips Gemma entirely."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": (TEXT_ENCODER, {"tooltip": "From LTX-2 Text Encoder Loader."}),
                "device": (list(TEXT_ENCODER_DEVICES), {
                    "default": "default",
                    "tooltip": "default: where the loader put Gemma. cpu: run Gemma on the CPU (slow, keeps the "
                    "GPU free for the video model).",
                }),
                "fp8_storage": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Store Gemma's linear weights in fp8 and compute in the loader's dtype: about 13 GB "
                    "instead of 24. Changes the loaded Gemma in place: turning it off again needs a reload.",
                }),
                "release_after_encode": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Move Gemma to system memory right after encoding, so the video model has the GPU; "
                    "it comes back by itself when it is needed again.",
                }),
            }
        }

    def apply(self, text_encoder, device, fp8_storage, release_after_encode):
        from ..pipelines.conditioning import text_encoder_options

        return (text_encoder_options(text_encoder, device, fp8_storage, release_after_encode),)


NODE_CLASS_MAPPINGS = {
    "L2A_MemoryOptions": L2A_MemoryOptions,
    "L2A_TextEncoderOptions": L2A_TextEncoderOptions,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_MemoryOptions": "LTX-2 Memory Options",
    "L2A_TextEncoderOptions": "LTX-2 Text Encoder Options",
}
