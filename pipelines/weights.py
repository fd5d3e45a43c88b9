"""Safetensors files at the lowest level: header checks, atomic writes, modules without memory, dtypes and devices.

Every loader (checkpoints, the Gemma single file, upsamplers, LoRAs) and writer (the tiny model) stands on these,
so this module imports nothing of the pack but its errors and output checks: no loader ever needs another loader to
read a header.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import L2AError
from .outputs import check_output_file, make_folder, publish, remove_empty_folders, write_error

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
DTYPE_CHOICES = ("bf16", "fp16", "fp32")
_MAX_HEADER_BYTES = 100 * 1024 * 1024
REDOWNLOAD = "The file is damaged or was not fully downloaded: download it again."


def config_section(metadata: Mapping[str, str], section: str) -> dict:
    """One component's settings from an official file's `config` metadata (JSON); {} when it has none."""
    try:
        found = json.loads(metadata.get("config") or "{}").get(section, {})
    except (ValueError, AttributeError):
        return {}
    return found if isinstance(found, dict) else {}


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str]]:
    """(tensor entries, metadata) from the header only; a truncated or corrupt file, or another format renamed
    .safetensors, raises L2AError."""
    header, metadata, _raw = read_safetensors_header_bytes(path)
    return header, metadata


def read_safetensors_header_bytes(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str], bytes]:
    """`read_safetensors_header` and the header's bytes as stored (what identifies a LoRA's content)."""
    path = Path(path)
    if not path.is_file():
        raise L2AError(f"'{path}' is not a file: give the path of a .safetensors file.")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(32)
        _refuse_other_format(path, head)
        prefix = head[:8]
        f.seek(len(prefix))
        if len(prefix) < 8:
            raise L2AError(f"'{path.name}' is only {size} bytes, too short for a safetensors file. {REDOWNLOAD}")
        length = int.from_bytes(prefix, "little")
        if length > size - 8:
            raise L2AError(
                f"'{path.name}' is truncated: its safetensors header claims {length} bytes but the file has only "
                f"{size - 8} after the length field. {REDOWNLOAD}"
            )
        if length > _MAX_HEADER_BYTES:
            raise L2AError(f"'{path.name}' has an implausible {length}-byte safetensors header. {REDOWNLOAD}")
        raw = f.read(length)
    try:
        header = json.loads(raw)
        metadata = header.pop("__metadata__", None) or {}
        end = max((int(entry["data_offsets"][1]) for entry in header.values()), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise L2AError(f"'{path.name}' does not have a valid safetensors header ({exc}). {REDOWNLOAD}") from exc
    if 8 + length + end > size:
        raise L2AError(
            f"'{path.name}' is truncated: the header describes {end} bytes of tensor data but only "
            f"{size - 8 - length} are present. {REDOWNLOAD}"
        )
    return header, {str(k): str(v) for k, v in metadata.items()}, raw


# File kinds recognised by their first bytes, for files renamed .safetensors: (test on the first 32 bytes, name).
_OTHER_FORMATS = (
    (lambda head: head.startswith(b"PK\x03\x04"), "a zip archive (a PyTorch .pt/.ckpt/.bin pickle checkpoint, or "
     "a zipped download)"),
    (lambda head: len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5, "a Python pickle (.pt/.ckpt/.bin)"),
    (lambda head: head.startswith(b"GGUF"), "a GGUF file (llama.cpp format)"),
    (lambda head: head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml")), "a web page, not a model "
     "(the download saved an error or login page)"),
    (lambda head: head.startswith(b"version https://git-lfs"), "a Git LFS pointer, not the file itself (clone "
     "with git lfs, or download the file)"),
)


def _refuse_other_format(path: Path, head: bytes) -> None:
    """A pickle, zip, GGUF, web page or LFS pointer renamed .safetensors is named for what it is (not 'truncated'),
    and never unpickled. A real safetensors file (its JSON header starting at byte 8) is never taken for one."""
    if head[8:9] == b"{":
        return
    for test, kind in _OTHER_FORMATS:
        if test(head):
            raise L2AError(
                f"'{path.name}' is {kind}, not a safetensors file, although it is named like one. Only safetensors "
                "are loaded (pickle formats can run code): get the .safetensors release of this file."
            )


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
                      ) -> Path:
    """Write `tensors` as a safetensors file atomically: a hidden temporary file beside `path`, renamed when
    complete, so a crash or a full disk never leaves a half-written model where a loader would find it; only a
    regular file is ever replaced."""
    from safetensors.torch import save_file

    path = check_output_file(path, "safetensors file")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"format": "pt", **{str(k): str(v) for k, v in (metadata or {}).items()}}
    created = make_folder(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        save_file(tensors, tmp, metadata=meta)
        publish(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        remove_empty_folders(created)
        if isinstance(error, OSError):
            raise write_error(error, path) from error
        raise
    return path


def file_stamp(path: str | os.PathLike) -> tuple[str, int, int]:
    """(path, size, modification time): changes whenever the file is replaced or rewritten."""
    stat = Path(path).stat()
    return str(path), stat.st_size, stat.st_mtime_ns


_meta_lock = threading.Lock()


@contextmanager
def parameters_on_meta():
    """Create parameters on the meta device (no memory, no random init) but keep buffers real.

    Buffers stay real because non-persistent ones (the BWE vocoder's resampler filter) are never in a checkpoint.
    """
    import torch

    original = torch.nn.Module.register_parameter

    def register(module, name, param):
        if param is not None and not param.is_meta:
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    with _meta_lock:
        torch.nn.Module.register_parameter = register
        try:
            yield
        finally:
            torch.nn.Module.register_parameter = original


def resolve_dtype(dtype: Any):
    """'bf16' | 'fp16' | 'fp32' (or a torch floating dtype) to a torch dtype."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if isinstance(dtype, torch.dtype) and dtype in table.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in table:
        return table[dtype.lower()]
    raise L2AError(f"Unknown dtype {dtype!r}: choose one of {', '.join(DTYPE_CHOICES)}.")


def resolve_device(device: Any):
    import torch

    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise L2AError(f"Unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise L2AError(f"Device {str(device)!r} was requested but CUDA is not available: use device='cpu'.")
    return device
