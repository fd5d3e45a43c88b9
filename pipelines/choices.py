"""The options of the nodes' combo widgets, apart from the code that uses them: listing the nodes (ComfyUI's
start-up) then imports no sampling, encoding or memory code."""

from pathlib import Path

# Acceleration presets. regular: half the steps; high: a quarter of the steps with classifier-free guidance only
# (batched); full: the 8 distilled sigmas without guidance (distilled models, or dev models with the distilled
# LoRA). regular and high change nothing on a distilled model.
ACCELERATIONS = ("none", "regular", "high", "full")
# Multiscale stage 2 on a dev model: the official recipe (the family's distilled LoRA), or explicitly without it.
STAGE_2_OPTIONS = ("distilled LoRA", "without LoRA")
TEXT_ENCODER_DEVICES = ("default", "cpu")
RETAKE_PARTS = ("both", "video", "audio")  # what a retake regenerates inside its window
# LTX-2.5's prompt enhancer, Gemma 4 E2B: its transformers folder's model type (the encoder's is gemma4_unified)
# and the folder name Lightricks' recipe gives it in models/text_encoders.
ENHANCER_KIND = "gemma4"
ENHANCER_FOLDER = "gemma-4-E2B-it"
OFFLOAD_MODES = ("none", "model", "group", "sequential")
VAE_TILING = ("off", "spatial", "temporal", "both")
# The diffusers 0.42 attention backends that take the float mask LTX-2 passes to its text cross-attention. The
# others refuse or misread a float mask (flash, sage, their varlen forms, _native_flash), and the *_hub backends
# download kernels at first use, which an offline pack does not do.
ATTENTION_BACKENDS = ("native", "_native_math", "flex", "_native_efficient", "_native_cudnn", "xformers")
# The example workflows the doctor checks: all, or one by name.
WORKFLOWS_DIR = Path(__file__).resolve().parents[1] / "workflows"
ALL_WORKFLOWS = "all shipped workflows"


def shipped_workflows() -> list[Path]:
    return sorted(WORKFLOWS_DIR.glob("*.json"))
