"""What every node of the pack shares: the category root and socket type names."""

CATEGORY = "LTX-2 Anywhere"

MODEL = "L2A_MODEL"
TEXT_ENCODER = "L2A_TEXT_ENCODER"
CONDITIONING = "L2A_CONDITIONING"
LATENT = "L2A_LATENT"
UPSAMPLER = "L2A_UPSAMPLER"

DTYPES = ["bf16", "fp16", "fp32"]
