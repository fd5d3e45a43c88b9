"""What every node of the pack shares: the category root and socket type names."""

CATEGORY = "LTX-2 Anywhere"

MODEL = "L2A_MODEL"
TEXT_ENCODER = "L2A_TEXT_ENCODER"
CONDITIONING = "L2A_CONDITIONING"
LATENT = "L2A_LATENT"
UPSAMPLER = "L2A_UPSAMPLER"

DTYPES = ["bf16", "fp16", "fp32"]


def rerun_when_seed_is_random(cls, seed=0, **_):
    """Seed -1 draws a new seed every run, so ComfyUI must not reuse the cached result (IS_CHANGED)."""
    return float("nan") if seed == -1 else seed
