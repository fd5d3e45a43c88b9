"""The model doctor node: which model files the shipped workflows need, and what is wrong with the ones here."""

from . import _comfy
from .common import CATEGORY


class L2A_ModelDoctor:
    DESCRIPTION = (
        "Checks the model files of the pack's example workflows in your ComfyUI model folders: which are present, "
        "missing, or in the wrong folder (e.g. the latent upsampler in upscale_models instead of "
        "latent_upscale_models), and whether each file really is LTX-2 of the right family, from its header alone. "
        "The report says what to download from where, and what to move where."
    )
    CATEGORY = f"{CATEGORY}/utils"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("report",)
    OUTPUT_TOOLTIPS = ("The report: one line per model file and workflow, with the fix below each problem.",)
    OUTPUT_NODE = True
    FUNCTION = "check"

    @classmethod
    def INPUT_TYPES(cls):
        from ..pipelines.choices import ALL_WORKFLOWS, shipped_workflows

        return {
            "required": {
                "workflow": ([ALL_WORKFLOWS, *(p.stem for p in shipped_workflows())], {
                    "default": ALL_WORKFLOWS,
                    "tooltip": "Which example workflow's model files to check, or all of them.",
                }),
            }
        }

    @classmethod
    def IS_CHANGED(cls, **_):
        """Files come and go between runs, so the check always runs again."""
        return float("nan")

    def check(self, workflow):
        from ..pipelines.choices import ALL_WORKFLOWS, shipped_workflows
        from ..pipelines.doctor import FOLDER_KEYS, diagnose_workflows, report_text

        paths = [p for p in shipped_workflows() if workflow == ALL_WORKFLOWS or p.stem == workflow]
        folders = {key: _comfy.folder_paths_for(key) for key in FOLDER_KEYS}
        report = report_text(diagnose_workflows(paths, folders))
        return {"ui": {"text": [report]}, "result": (report,)}


NODE_CLASS_MAPPINGS = {"L2A_ModelDoctor": L2A_ModelDoctor}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_ModelDoctor": "LTX-2 Model Doctor"}
