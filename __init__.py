"""LTX-2 Anywhere: ComfyUI nodes for LTX-2 audio+video generation, locally or on hosted APIs.

ComfyUI imports this folder at start-up, so nothing heavy is imported here: the nodes import torch, diffusers and
friends inside their execute methods.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
