"""Decode and save nodes: latents to IMAGE frames and AUDIO, and an atomic mp4 writer with a ComfyUI preview."""

import json

from . import _comfy
from .common import CATEGORY, LATENT, MODEL


class L2A_DecodeVideo:
    DESCRIPTION = (
        "Decodes LTX-2 video latents to frames (IMAGE). Spatial tiling cuts the memory of large frames, temporal "
        "tiling the memory of long clips; overlapping tiles are blended. For LTX-2.5, decoder = diffusion runs its "
        "diffusion decoder (ltx-2.5-video-vae-bf16.safetensors in models/vae) instead of the conv decoder: the "
        "official default, about 1.4-1.5x the conv decoder's compute, with progress and Cancel."
    )
    CATEGORY = f"{CATEGORY}/decode"
    RETURN_TYPES = ("IMAGE", "FLOAT")
    RETURN_NAMES = ("images", "fps")
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The model that made the latent (its video VAE decodes it)."}),
                "latent": (LATENT, {"tooltip": "From LTX-2 Sampler."}),
                "spatial_tiling": ("BOOLEAN", {"default": False, "tooltip": "Decode in overlapping spatial tiles."}),
                "tile_size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                      "tooltip": "Tile width and height in pixels."}),
                "tile_overlap": ("INT", {"default": 64, "min": 0, "max": 2048, "step": 32,
                                         "tooltip": "Overlap between spatial tiles in pixels (smaller than the tile)."}),
                "temporal_tiling": ("BOOLEAN", {"default": False,
                                                "tooltip": "Decode in overlapping chunks of frames."}),
                "tile_frames": ("INT", {"default": 16, "min": 8, "max": 1024, "step": 8,
                                        "tooltip": "Frames per temporal tile."}),
                "frame_overlap": ("INT", {"default": 8, "min": 0, "max": 512, "step": 8,
                                          "tooltip": "Overlap between temporal tiles in frames."}),
            },
            "optional": {
                "decoder": (["conv", "diffusion"], {
                    "default": "conv",
                    "tooltip": "conv: the model's VAE decoder (default). diffusion: LTX-2.5's one-step diffusion "
                    "decoder from ltx-2.5-video-vae-bf16.safetensors in models/vae (the official default; no "
                    "download, no kernel). It costs about 1.4-1.5x the conv decoder's compute (170 vs 118 TFLOP at "
                    "768x512x121, computed, not timed) and 1.5 GB per stage-5 activation at that size: tile it below "
                    "24 GB. Its tiles meet without a seam, so the overlaps are not used.",
                }),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def decode(self, model, latent, spatial_tiling, tile_size, tile_overlap, temporal_tiling, tile_frames,
               frame_overlap, decoder="conv", unique_id=None):
        from ..pipelines.decoding import Tiling, decode_video

        tiling = Tiling(spatial_tiling, tile_size, tile_overlap, temporal_tiling, tile_frames, frame_overlap)
        bar = None

        def on_progress(done, total):
            nonlocal bar
            bar = bar or _comfy.Progress(total, unique_id)
            bar.update(done)
            _comfy.throw_if_interrupted()

        return (decode_video(model, latent, tiling, decoder, on_progress), float(latent.fps))


class L2A_DecodeAudio:
    DESCRIPTION = "Decodes LTX-2 audio latents to a stereo waveform (AUDIO) at the vocoder's rate (24 kHz for 19B)."
    CATEGORY = f"{CATEGORY}/decode"
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The model that made the latent (its audio VAE and vocoder decode it)."}),
                "latent": (LATENT, {"tooltip": "From LTX-2 Sampler."}),
            }
        }

    def decode(self, model, latent):
        from ..pipelines.decoding import decode_audio
        from ..pipelines.media import comfy_audio

        waveform, sample_rate = decode_audio(model, latent)
        return (comfy_audio(waveform, sample_rate),)


class L2A_SaveVideo:
    DESCRIPTION = (
        "Saves frames and audio in the output folder as mp4 (H.264 + AAC), webm (VP9 + Opus), mov (ProRes 4444 + "
        "PCM) or gif (no audio), written atomically, with the workflow in its metadata (except gif); shows it in "
        "ComfyUI and returns a VIDEO that core video nodes accept."
    )
    CATEGORY = f"{CATEGORY}/output"
    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("video",)
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        # The choices are pipelines.media's FORMATS, QUALITIES and WRITE_MODES, spelled out so that loading the
        # node does not import PyAV.
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames, e.g. from LTX-2 Decode Video."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 120.0, "step": 0.001,
                                  "tooltip": "Frame rate of the file; connect the decoder's fps output."}),
                "filename_prefix": ("STRING", {"default": "LTX-2/video",
                                               "tooltip": "File name prefix; may contain a subfolder."}),
                "format": (["mp4", "webm", "mov", "gif"], {
                    "default": "mp4",
                    "tooltip": "mp4: H.264 + AAC, plays everywhere. webm: VP9 + Opus, smaller at the same "
                    "quality. mov: ProRes 4444 + PCM, for editing (large; browsers cannot preview it). gif: no "
                    "audio and no metadata, at most 50 fps."}),
                "quality": (["low", "medium", "high", "maximum"], {
                    "default": "high",
                    "tooltip": "How close the file stays to the frames: higher is larger. mp4: CRF 28/23/18/12; "
                    "webm: CRF 36/27/18/10; mov: ProRes 4444 at the data rate of 422 LT/422 HQ/4444/4444 XQ; "
                    "gif: 32/64/128/256 colours."}),
                "write_mode": (["fast", "balanced", "small"], {
                    "default": "balanced",
                    "tooltip": "Encoding time against compression. mp4: x264 preset veryfast/medium/slower; "
                    "webm: VP9 cpu-used 5/2/0; mov: no effect; gif: first-frame palette / clip palette with "
                    "dithering / clip palette without dithering."}),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "The soundtrack, e.g. from LTX-2 Decode Audio. Without it the "
                                    "file has no audio track; gif never has one."}),
                "comment": ("STRING", {"forceInput": True,
                                       "tooltip": "Stored as the file's human-readable comment tag; connect LTX-2 "
                                       "Sampler's report to record the generation settings."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def save(self, images, fps, filename_prefix, format="mp4", quality="high", write_mode="balanced", audio=None,
             comment=None, prompt=None, extra_pnginfo=None):
        from ..pipelines.checks import check_number
        from ..pipelines.media import format_notes, write_video

        check_number("fps", fps, 1.0, 1000.0)
        metadata = {"comment": comment} if comment else {}
        if prompt is not None:
            metadata["prompt"] = json.dumps(prompt)
        for key, value in (extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        path, filename, subfolder = _comfy.save_path(filename_prefix, images.shape[2], images.shape[1], format)
        waveform = sample_rate = None
        if audio is not None:
            from ..pipelines.audio import pad_to_video
            from ..pipelines.media import audio_sample_rate

            sample_rate = audio_sample_rate(audio)
            waveform = pad_to_video(audio["waveform"][0], images.shape[0], fps, sample_rate)
        write_video(path, images, fps, audio=waveform, sample_rate=sample_rate, metadata=metadata, format=format,
                    quality=quality, write_mode=write_mode)
        ui = {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}], "animated": (True,)}
        notes = format_notes(format, fps, has_audio=audio is not None, has_metadata=bool(metadata))
        if notes:
            ui["text"] = notes
        return {"ui": ui, "result": (_comfy.video_from_file(path),)}


NODE_CLASS_MAPPINGS = {
    "L2A_DecodeVideo": L2A_DecodeVideo,
    "L2A_DecodeAudio": L2A_DecodeAudio,
    "L2A_SaveVideo": L2A_SaveVideo,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_DecodeVideo": "LTX-2 Decode Video",
    "L2A_DecodeAudio": "LTX-2 Decode Audio",
    "L2A_SaveVideo": "LTX-2 Save Video",
}
