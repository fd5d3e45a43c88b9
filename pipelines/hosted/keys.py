"""API keys: from the environment, else from a keys file in ComfyUI's user directory; never from the graph.

Widget values end up in workflow JSON, PNG metadata and /history, so no key may ever be a node input
(spec/hosted-apis.md §11.1, §12). The keys file lives outside the graph and outside git, is written atomically
with mode 0600, and nothing here returns or prints a key except `resolve_key`, whose caller puts it in a header.
`redact` scrubs every key this process knows of from any text shown to the user.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from ..errors import L2AError

KEY_ENVS = {
    "fal": "FAL_KEY",
    "wavespeed": "WAVESPEED_API_KEY",
    "vibedream": "VIBEDREAM_API_KEY",
    "bytecompute": "BYTECOMPUTE_API_KEY",
    "ltx": "LTX_API_KEY",
}
KEYS_FILE = "ltx2_anywhere_keys.json"
_MIN_REDACT = 4  # shorter "keys" cannot be real, and scrubbing them would garble every message
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: safe in an HTTP header

_seen_keys: set[str] = set()  # every key resolved or saved in this process, for redact
_seen_dirs: set[Path] = set()  # every user directory used, so redact also covers their keys files


def keys_path(user_dir: Path) -> Path:
    return Path(user_dir) / KEYS_FILE


def _check_provider(provider: str) -> str:
    if provider not in KEY_ENVS:
        raise L2AError(f"provider = {provider!r} is unknown: use one of {', '.join(KEY_ENVS)}.")
    return KEY_ENVS[provider]


def _read(user_dir: Path | None) -> dict[str, str]:
    """The keys file as {provider: key}; missing file -> {}; unreadable -> L2AError (never showing contents)."""
    if user_dir is None:
        return {}
    _seen_dirs.add(Path(user_dir))
    path = keys_path(user_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise L2AError(f"The keys file {path} cannot be read ({type(err).__name__}): fix or delete it, then store "
                       "the keys again.") from err
    if not isinstance(data, dict):
        raise L2AError(f"The keys file {path} is not a JSON object: delete it and store the keys again.")
    return {name: value for name, value in data.items() if isinstance(value, str) and value.strip()}


def _write(user_dir: Path, data: dict[str, str]) -> None:
    """Replace the keys file atomically; the file is created with mode 0600 and never exists with wider mode."""
    folder = Path(user_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{KEYS_FILE}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if hasattr(os, "fchmod"):  # exactly 0600 whatever the umask (Windows has no such bits)
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, keys_path(folder))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def resolve_key(provider: str, user_dir: Path | None = None) -> str:
    """The provider's key: its environment variable first, then the keys file in `user_dir`."""
    env = _check_provider(provider)
    key = os.environ.get(env, "").strip() or _read(user_dir).get(provider, "").strip()
    if not key:
        where = f" (saved in {keys_path(user_dir)})" if user_dir is not None else ""
        raise L2AError(f"No API key for {provider}: set the environment variable {env} before starting ComfyUI, or "
                       f"store the key in the LTX-2 Anywhere key settings{where}. Keys never go in a node widget.")
    _seen_keys.add(key)
    return key


def save_key(provider: str, key: str, user_dir: Path) -> Path:
    """Store (or replace) a key in the keys file; returns the file's path."""
    _check_provider(provider)
    key = (key or "").strip()
    if not key:
        raise L2AError(f"The {provider} key is empty: paste the key itself.")
    if not _KEY_CHARS.fullmatch(key):
        raise L2AError(f"The {provider} key contains spaces or control characters: paste it again without them.")
    data = _read(user_dir)
    data[provider] = key
    _write(user_dir, data)
    _seen_keys.add(key)
    return keys_path(user_dir)


def delete_key(provider: str, user_dir: Path) -> bool:
    """Remove a stored key; True when one was there (the environment variable, if set, is left alone)."""
    _check_provider(provider)
    data = _read(user_dir)
    if provider not in data:
        return False
    del data[provider]
    _write(user_dir, data)
    return True


def key_status(user_dir: Path | None = None) -> dict[str, str]:
    """{provider: "env" | "file" | "missing"} for the UI; says where a key comes from, never what it is."""
    stored = _read(user_dir)
    return {name: "env" if os.environ.get(env, "").strip() else "file" if name in stored else "missing"
            for name, env in KEY_ENVS.items()}


def _known_keys(user_dir: Path | None) -> set[str]:
    found = {os.environ.get(env, "").strip() for env in KEY_ENVS.values()} | _seen_keys
    for folder in _seen_dirs | ({Path(user_dir)} if user_dir is not None else set()):
        try:
            found.update(value.strip() for value in _read(folder).values())
        except L2AError:  # a broken keys file must not turn an error report into a different error
            continue
    parts = {part for key in found for part in key.split(":")}  # fal keys are "id:secret": scrub each half too
    return {key for key in found | parts if len(key) >= _MIN_REDACT}


def redact(text: str, user_dir: Path | None = None) -> str:
    """`text` with every known key (environment, keys files, keys used in this process) replaced by ***."""
    for key in sorted(_known_keys(user_dir), key=len, reverse=True):
        text = text.replace(key, "***")
    return text
