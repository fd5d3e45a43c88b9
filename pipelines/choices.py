"""The options of the nodes' combo widgets, apart from the code that uses them: listing the nodes (ComfyUI's
start-up) then imports no sampling, encoding or memory code."""

from pathlib import Path

ACCELERATIONS = ("none", "regular", "high", "full")
STAGE_2_OPTIONS = ("distilled LoRA", "without LoRA")
TEXT_ENCODER_DEVICES = ("default", "cpu")
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
