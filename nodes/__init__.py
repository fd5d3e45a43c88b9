"""ComfyUI glue: one module per node family, collected here. Importing these modules is cheap."""

from . import (
    _comfy,
    av_edit,
    conditioning,
    control,
    doctor,
    hosted,
    loaders,
    lora,
    media,
    memory,
    prompt,
    sampling,
    size,
)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
for _module in (loaders, conditioning, sampling, media, lora, control, size, prompt, av_edit, hosted, doctor, memory):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

_comfy.ensure_model_folders()
_comfy.register_unload_hook()
_comfy.register_key_routes()
_comfy.register_price_route()
