"""LTX-2 Anywhere: ComfyUI nodes for LTX-2 audio+video generation, locally or on hosted APIs.

ComfyUI imports this folder at start-up, so nothing heavy is imported here: the nodes import torch, diffusers and
friends inside their execute methods. The node mappings load on first use: ComfyUI reads them right after importing
the pack, while the command line, which never needs them, starts without them (so Ctrl-C at start-up is as quick
and clean as later).
"""

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]


def __getattr__(name: str):
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        from . import nodes

        return getattr(nodes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
