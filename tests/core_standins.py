"""Stand-ins for the core ComfyUI nodes the example workflows use that need ComfyUI itself to run.

CI has no ComfyUI checkout, so loaders, savers, previews and the VIDEO plumbing (``CreateVideo`` /
``GetVideoComponents``) are re-implemented here on the pack's own media code. Each stand-in declares the node's
inputs and outputs, and construction compares them (and the signature of ``run``) with the node's definition in
the core ``/object_info`` snapshot: a stand-in that drifts from the real node fails loudly instead of letting a
workflow pass that ComfyUI would reject.
"""

from __future__ import annotations

import inspect
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.pipelines import media


class StandInDrift(AssertionError):
    """A stand-in's inputs or outputs differ from the core node it replaces."""


@dataclass
class Folders:
    """ComfyUI's input folder (uploads the loaders read) and temp folder (previews); outputs go to
    ``_comfy.output_directory()`` as the pack's own savers do."""

    input: Path
    temp: Path


class ComponentsVideo:
    """A VIDEO made of frames, rate and audio, as core's ``VideoFromComponents`` (what ``CreateVideo`` returns)."""

    def __init__(self, parts: _comfy.VideoParts):
        self.parts = parts

    def get_components(self) -> _comfy.VideoParts:
        return self.parts

    def get_dimensions(self) -> tuple[int, int]:
        return int(self.parts.images.shape[2]), int(self.parts.images.shape[1])


def _dimensions(video) -> tuple[int, int]:
    if hasattr(video, "get_dimensions"):
        return video.get_dimensions()
    images = video.get_components().images
    return int(images.shape[2]), int(images.shape[1])


def _hidden_names(definition: dict) -> tuple[str, ...]:
    return tuple((definition.get("input") or {}).get("hidden") or {})


class StandIn:
    """Base: declared inputs/outputs, checked against the core definition when the stand-in is built."""

    NODE = ""
    REQUIRED: tuple[str, ...] = ()
    OPTIONAL: tuple[str, ...] = ()
    HIDDEN: tuple[str, ...] = ()
    RETURN_TYPES: tuple[str, ...] = ()
    OUTPUT_NODE = False

    def __init__(self, definition: dict, folders: Folders):
        problems = self.drift(definition)
        if problems:
            raise StandInDrift(f"stand-in for {self.NODE} differs from the core definition: " + "; ".join(problems))
        self.definition = definition
        self.folders = folders

    def drift(self, definition: dict) -> list[str]:
        order = definition.get("input_order") or {}
        found = {
            "required inputs": (tuple(order.get("required") or ()), self.REQUIRED),
            "optional inputs": (tuple(order.get("optional") or ()), self.OPTIONAL),
            "hidden inputs": (_hidden_names(definition), self.HIDDEN),
            "outputs": (tuple(definition.get("output") or ()), self.RETURN_TYPES),
            "output_node": (bool(definition.get("output_node")), self.OUTPUT_NODE),
        }
        problems = [f"{what}: core has {core!r}, stand-in {mine!r}" for what, (core, mine) in found.items()
                    if core != mine]
        parameters = inspect.signature(self.run).parameters.values()
        required = tuple(p.name for p in parameters if p.default is inspect.Parameter.empty)
        defaulted = tuple(p.name for p in parameters if p.default is not inspect.Parameter.empty)
        if required != self.REQUIRED or defaulted != self.OPTIONAL + self.HIDDEN:
            problems.append(f"run() takes {required} + defaulted {defaulted}, the node "
                            f"{self.REQUIRED} + optional/hidden {self.OPTIONAL + self.HIDDEN}")
        return problems

    def run(self, **inputs):
        raise NotImplementedError

    def input_path(self, name: str) -> Path:
        path = self.folders.input / name
        if not path.is_file():
            raise FileNotFoundError(f"{self.NODE}: '{name}' is not in the input folder {self.folders.input}")
        return path

    def temp_file(self, prefix: str, suffix: str) -> tuple[Path, str]:
        self.folders.temp.mkdir(parents=True, exist_ok=True)
        counter = 1
        while (self.folders.temp / f"{prefix}_{counter:05}_.{suffix}").exists():
            counter += 1
        name = f"{prefix}_{counter:05}_.{suffix}"
        return self.folders.temp / name, name


def _metadata(prompt, extra_pnginfo) -> dict:
    """What core savers embed: the API prompt and every extra_pnginfo entry (the UI workflow)."""
    metadata = dict(extra_pnginfo or {})
    if prompt is not None:
        metadata["prompt"] = prompt
    return metadata


class LoadImage(StandIn):
    """``nodes.LoadImage``: RGB float [1, H, W, 3] and the inverted alpha as MASK (zeros 64x64 without alpha)."""

    NODE = "LoadImage"
    REQUIRED = ("image",)
    RETURN_TYPES = ("IMAGE", "MASK")

    def run(self, image):
        with Image.open(self.input_path(image)) as opened:
            picture = ImageOps.exif_transpose(opened)
            rgb = torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0)[None]
            if "A" in picture.getbands():
                alpha = np.asarray(picture.getchannel("A"), dtype=np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha)[None]
            else:
                mask = torch.zeros((1, 64, 64), dtype=torch.float32)
        return rgb, mask


class LoadVideo(StandIn):
    """``comfy_extras.nodes_video.LoadVideo``: a file-backed VIDEO, decoded only when its components are asked for."""

    NODE = "LoadVideo"
    REQUIRED = ("file",)
    RETURN_TYPES = ("VIDEO",)

    def run(self, file):
        return (_comfy.VideoFile(self.input_path(file)),)


class LoadAudio(StandIn):
    """``comfy_extras.nodes_audio.LoadAudio``: AUDIO ``{"waveform": [1, C, S], "sample_rate"}``."""

    NODE = "LoadAudio"
    REQUIRED = ("audio",)
    RETURN_TYPES = ("AUDIO",)

    def run(self, audio):
        waveform, rate = media.read_audio(self.input_path(audio))
        return ({"waveform": waveform[None], "sample_rate": rate},)


class CreateVideo(StandIn):
    """``comfy_extras.nodes_video.CreateVideo``: frames + fps (+ audio) as a VIDEO."""

    NODE = "CreateVideo"
    REQUIRED = ("images", "fps")
    OPTIONAL = ("audio",)
    RETURN_TYPES = ("VIDEO",)

    def run(self, images, fps, audio=None):
        return (ComponentsVideo(_comfy.VideoParts(images, Fraction(fps), audio)),)


class GetVideoComponents(StandIn):
    """``comfy_extras.nodes_video.GetVideoComponents``: a VIDEO's frames, audio and frame rate."""

    NODE = "GetVideoComponents"
    REQUIRED = ("video",)
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")

    def run(self, video):
        parts = video.get_components()
        return parts.images, parts.audio, float(parts.frame_rate)


class SaveVideo(StandIn):
    """``comfy_extras.nodes_video.SaveVideo``: an mp4 (H.264, AAC where there is audio) in the output folder,
    numbered as ComfyUI numbers outputs, with the prompt and workflow as container tags."""

    NODE = "SaveVideo"
    REQUIRED = ("video", "filename_prefix", "format", "codec")
    HIDDEN = ("prompt", "extra_pnginfo")
    OUTPUT_NODE = True

    def run(self, video, filename_prefix, format, codec, prompt=None, extra_pnginfo=None):
        width, height = _dimensions(video)
        path, filename, subfolder = _comfy.save_path(filename_prefix, width, height, "mp4")
        parts = video.get_components()
        audio = parts.audio
        media.write_video(path, parts.images, parts.frame_rate,
                          audio=None if audio is None else audio["waveform"][0],
                          sample_rate=None if audio is None else int(audio["sample_rate"]),
                          metadata=_metadata(prompt, extra_pnginfo), format="mp4")
        return {"ui": {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}],
                       "animated": (True,)}}


class PreviewAudio(StandIn):
    """``comfy_extras.nodes_audio.PreviewAudio``: the audio as a temp file for the player (16-bit wav here)."""

    NODE = "PreviewAudio"
    REQUIRED = ("audio",)
    HIDDEN = ("prompt", "extra_pnginfo")
    OUTPUT_NODE = True

    def run(self, audio, prompt=None, extra_pnginfo=None):
        path, name = self.temp_file("ComfyUI_temp_audio", "wav")
        samples = media.sanitize_audio(audio["waveform"][0]).T.numpy()
        with wave.open(str(path), "wb") as out:
            out.setnchannels(samples.shape[1])
            out.setsampwidth(2)
            out.setframerate(int(audio["sample_rate"]))
            out.writeframes((samples * 32767).astype("<i2").tobytes())
        return {"ui": {"audio": [{"filename": name, "subfolder": "", "type": "temp"}]}}


def _pngs(images, root: Path, filename_prefix: str, kind: str) -> dict:
    prefix = Path(filename_prefix)
    subfolder = prefix.parent.as_posix() if str(prefix.parent) != "." else ""
    folder = root / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for image in images:
        counter = 1
        while (folder / f"{prefix.name}_{counter:05}_.png").exists():
            counter += 1
        name = f"{prefix.name}_{counter:05}_.png"
        Image.fromarray(media.to_uint8_rgb(image)).save(folder / name)
        saved.append({"filename": name, "subfolder": subfolder, "type": kind})
    return {"ui": {"images": saved}}


class PreviewImage(StandIn):
    """``nodes.PreviewImage``: each image as a temp PNG."""

    NODE = "PreviewImage"
    REQUIRED = ("images",)
    HIDDEN = ("prompt", "extra_pnginfo")
    OUTPUT_NODE = True

    def run(self, images, prompt=None, extra_pnginfo=None):
        return _pngs(images, self.folders.temp, "ComfyUI_temp", "temp")


class SaveImage(StandIn):
    """``nodes.SaveImage``: each image as a PNG in the output folder."""

    NODE = "SaveImage"
    REQUIRED = ("images", "filename_prefix")
    HIDDEN = ("prompt", "extra_pnginfo")
    OUTPUT_NODE = True

    def run(self, images, filename_prefix, prompt=None, extra_pnginfo=None):
        return _pngs(images, _comfy.output_directory(), filename_prefix, "output")


STAND_INS = (LoadImage, LoadVideo, LoadAudio, CreateVideo, GetVideoComponents, SaveVideo, PreviewAudio,
             PreviewImage, SaveImage)


def build(core_defs: dict, folders: Folders) -> dict[str, StandIn]:
    """The stand-ins by core node id, each checked against its definition in ``core_defs``. tests/data holds the
    definitions of the core nodes the shipped workflows use, so a stand-in for a node none uses is not built."""
    return {cls.NODE: cls(core_defs[cls.NODE], folders) for cls in STAND_INS if cls.NODE in core_defs}
