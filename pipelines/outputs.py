"""Where outputs go: checks that an output path can be written before any heavy work, and the atomic publish that
only ever replaces a regular file.

Every writer of the pack (videos, safetensors files, hosted results) writes a hidden temporary beside its target and
renames it over the target when complete. A rename replaces whatever has the name, so the target is checked first,
and again right before the rename: a directory, a FIFO, a socket or a device node (as root, /dev/null) is refused,
never replaced. OS errors of writing (a full disk, a read-only folder) become one L2AError naming the folder and the
fix. Light module: no heavy import.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import L2AError

MIN_FREE_BYTES = 1024 * 1024  # below this a folder is full for any video or model file
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse_special(target: Path) -> None:
    """An existing target must be a regular file (a symlink counts as what it points to)."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise write_error(error, target) from error
    if not stat.S_ISREG(mode):
        raise L2AError(f"'{target}' is {_kind(mode)}, not a file: outputs only replace regular files. Choose a file "
                       "path, e.g. clip.mp4 in a folder you own.")


def _existing_ancestor(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output_file(path, what: str = "output") -> Path:
    """Check, without writing anything that stays, that `path` can be (re)written: an existing target is a regular
    file, its folder is (or can be made under) a writable folder, and that folder's disk is not full."""
    target = Path(path)
    if not target.name or target.name in (".", ".."):
        raise L2AError(f"The {what} path '{path}' names no file: give a file name, e.g. clip.mp4.")
    _refuse_special(target)
    folder = _existing_ancestor(target.parent.absolute())
    if not folder.is_dir():
        raise L2AError(f"The {what} '{target}' cannot be made: '{folder}' is a file, not a folder. Choose another "
                       "path.")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise write_error(error, target) from error
    if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
        raise write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), target)
    return target


def make_folder(folder: Path) -> list[Path]:
    """mkdir -p, with the OS error told as an L2AError; returns the folders it created, deepest first, so a failed
    write can take them away again (remove_empty_folders)."""
    folder = Path(folder).absolute()
    created = []
    while not folder.exists() and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    try:
        for path in reversed(created):
            path.mkdir(exist_ok=True)
    except OSError as error:
        remove_empty_folders(created)
        raise write_error(error, created[0] / "x") from error
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove folders a failed write created, deepest first, as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def publish(temp, target) -> None:
    """Rename a finished temporary over `target`; refuses (and removes the temporary) when `target` became anything
    but a regular file meanwhile."""
    target = Path(target)
    try:
        _refuse_special(target)
        os.replace(temp, target)
    except OSError as error:
        raise write_error(error, target) from error


def write_error(error: OSError, target) -> L2AError:
    """The user's words for an OS error met while writing `target`."""
    folder = Path(target).parent
    code = getattr(error, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return L2AError(f"No space left to write '{target}': the disk of {folder} is full (or over quota). Free some "
                        "space or write to another folder; nothing was written.")
    if code == errno.EFBIG:
        return L2AError(f"'{target}' is too large for its file system (or the process's file-size limit): write to "
                        "another disk; nothing was written.")
    if code == errno.EROFS:
        return L2AError(f"Cannot write '{target}': {folder} is on a read-only file system. Write to another folder.")
    if code in (errno.EACCES, errno.EPERM):
        return L2AError(f"Cannot write '{target}': no permission to write in {folder}. Write to a folder you own, or "
                        "fix its permissions.")
    if code == errno.ENOTDIR:
        return L2AError(f"Cannot write '{target}': a part of {folder} is a file, not a folder. Choose another path.")
    if code == errno.EISDIR:
        return L2AError(f"Cannot write '{target}': it is a folder. Give a file name, e.g. clip.mp4.")
    reason = getattr(error, "strerror", None) or str(error)
    return L2AError(f"Cannot write '{target}': {reason}. Check the folder, or write to another one.")
