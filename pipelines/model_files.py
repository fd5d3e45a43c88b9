"""A family's official files in ComfyUI model folders: found the way users keep them, or named when missing.

Users rename folders, nest files in sub-folders and keep earlier releases, so a file is looked for by any of its
official names, case-insensitively, in any sub-folder (symlinks followed, as ComfyUI lists them), the shallowest
first. A missing one is reported with its name, the folder it belongs in and where to download it, before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import L2AError
from .families import ModelFile


def find_file(names: str | Iterable[str], folders: Iterable[str | os.PathLike]) -> Path | None:
    """The first folder's shallowest file with one of `names` (case-insensitive, any sub-folder), or None."""
    wanted = {Path(n).name.lower() for n in ([names] if isinstance(names, str) else names)}
    for folder in folders:
        found = []
        for root, _dirs, files in os.walk(folder, followlinks=True):
            found += [Path(root) / f for f in files if f.lower() in wanted]
        if found:
            return min(found, key=lambda p: (len(p.parts), str(p)))
    return None


class MissingModelFile(L2AError):
    """An official file is not where it belongs (a backend can fall back to another)."""


def require_file(model_file: ModelFile, folders: Iterable[str | os.PathLike], purpose: str) -> Path:
    """find_file, or a MissingModelFile that says which file to download from where, and where to put it."""
    folders = [Path(f) for f in folders]
    path = find_file(model_file.names, folders)
    if path is None:
        where = " or ".join(str(f) for f in folders) or f"models/{model_file.folder}"
        raise MissingModelFile(
            f"{purpose} needs '{model_file.name}', which is not in {where}. Download it from {model_file.url} and "
            f"put it in {folders[0] if folders else f'models/{model_file.folder}'} (a sub-folder is fine)."
        )
    return path
