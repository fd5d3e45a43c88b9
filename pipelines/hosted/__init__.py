"""Hosted LTX-2 providers behind one interface: fal.ai, WaveSpeedAI, vibedream, ByteCompute, Lightricks LTX API.

Importing this package is cheap; `requests` is imported by the modules that talk HTTP.
"""

import importlib

from ..errors import L2AError

# provider name -> (module of this package, its provider class); the module is imported when first asked for.
PROVIDER_CLASSES = {
    "fal": ("fal", "FalProvider"),
    "wavespeed": ("wavespeed", "WaveSpeedProvider"),
    "vibedream": ("vibedream", "VibedreamProvider"),
    "bytecompute": ("bytecompute", "ByteComputeProvider"),
    "ltx": ("ltx", "LtxProvider"),
}


def provider_class(name: str):
    """The provider's class, importing its module (and with it the HTTP client) on first use."""
    if name not in PROVIDER_CLASSES:
        raise L2AError(f"provider = {name!r} is unknown: use one of {', '.join(PROVIDER_CLASSES)}.")
    module, attr = PROVIDER_CLASSES[name]
    return getattr(importlib.import_module(f".{module}", __name__), attr)
