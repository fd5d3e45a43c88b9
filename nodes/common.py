"""What every node of the pack shares: the category root and socket type names."""

CATEGORY = "LTX-2 Anywhere"

MODEL = "L2A_MODEL"
TEXT_ENCODER = "L2A_TEXT_ENCODER"
CONDITIONING = "L2A_CONDITIONING"
LATENT = "L2A_LATENT"
UPSAMPLER = "L2A_UPSAMPLER"
PROMPT_ENHANCER = "L2A_PROMPT_ENHANCER"

DTYPES = ["bf16", "fp16", "fp32"]


MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF


def seed_input(tooltip: str) -> tuple:
    """The seed widget every generating node has: -1 draws a random seed, which the node reports."""
    return ("INT", {"default": -1, "min": -1, "max": MAX_SEED, "control_after_generate": True, "tooltip": tooltip})


def rerun_when_seed_is_random(cls, seed=0, **_):
    """Seed -1 draws a new seed every run, so ComfyUI must not reuse the cached result (IS_CHANGED)."""
    return float("nan") if seed == -1 else seed
