"""Safetensors files at the lowest level: header checks, atomic writes, modules without memory, dtypes and devices.

Every loader (checkpoints, the Gemma single file, upsamplers, LoRAs) and writer (the tiny model) stands on these, so
this module imports nothing of the pack but its errors: no loader ever needs another loader to read a header.
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

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
DTYPE_CHOICES = ("bf16", "fp16", "fp32")
_MAX_HEADER_BYTES = 100 * 1024 * 1024
REDOWNLOAD = "The file is damaged or was not fully downloaded: download it again."


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str]]:
    """(tensor entries, metadata) from the header only; a truncated or corrupt file raises L2AError."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
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
    return header, {str(k): str(v) for k, v in metadata.items()}


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
                      ) -> Path:
    """Write `tensors` as a safetensors file atomically: a hidden temporary file beside `path`, renamed when
    complete, so a crash or a full disk never leaves a half-written model where a loader would find it."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"format": "pt", **{str(k): str(v) for k, v in (metadata or {}).items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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
