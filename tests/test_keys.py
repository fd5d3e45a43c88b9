"""API keys: environment first, then the 0600 keys file in ComfyUI's user directory; status and errors never
show a key; redact scrubs every known key from text."""

import json
import os
import stat
import sys

import pytest

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted import keys

FAL = "0b1c2d3e-aaaa-bbbb:f00dfeedcafebabe1234"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for env in keys.KEY_ENVS.values():
        monkeypatch.delenv(env, raising=False)


def test_key_envs_match_the_design():
    assert keys.KEY_ENVS == {"fal": "FAL_KEY", "wavespeed": "WAVESPEED_API_KEY", "vibedream": "VIBEDREAM_API_KEY",
                             "bytecompute": "BYTECOMPUTE_API_KEY", "ltx": "LTX_API_KEY"}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_keys_file_is_0600_atomic_and_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = keys.save_key("fal", FAL, tmp_path / "user")
    finally:
        os.umask(old)
    assert path == tmp_path / "user" / "ltx2_anywhere_keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys.save_key("ltx", "ltx-key-abcdef", tmp_path / "user")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"fal": FAL, "ltx": "ltx-key-abcdef"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["ltx2_anywhere_keys.json"]  # no temp left


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    keys.save_key("wavespeed", "from-file-123456", tmp_path)
    assert keys.resolve_key("wavespeed", tmp_path) == "from-file-123456"
    monkeypatch.setenv("WAVESPEED_API_KEY", "  from-env-654321 \n")
    assert keys.resolve_key("wavespeed", tmp_path) == "from-env-654321"
    assert keys.key_status(tmp_path)["wavespeed"] == "env"


def test_missing_key_says_what_to_set_and_echoes_nothing(tmp_path):
    keys.save_key("fal", FAL, tmp_path)
    with pytest.raises(L2AError) as err:
        keys.resolve_key("vibedream", tmp_path)
    text = str(err.value)
    assert "VIBEDREAM_API_KEY" in text and "ltx2_anywhere_keys.json" in text and "widget" in text
    assert FAL not in text
    with pytest.raises(L2AError, match="LTX_API_KEY"):
        keys.resolve_key("ltx")
    with pytest.raises(L2AError, match="provider = 'nope' is unknown"):
        keys.resolve_key("nope")


def test_key_status_never_contains_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_API_KEY", "ltx-env-key-999")
    keys.save_key("fal", FAL, tmp_path)
    status = keys.key_status(tmp_path)
    assert status == {"fal": "file", "wavespeed": "missing", "vibedream": "missing", "bytecompute": "missing",
                      "ltx": "env"}
    assert "f00dfeed" not in json.dumps(status) and "ltx-env" not in json.dumps(status)
    assert keys.key_status() == {**status, "fal": "missing"}


def test_delete_key(tmp_path):
    keys.save_key("fal", FAL, tmp_path)
    keys.save_key("bytecompute", "bytecompute_abc123", tmp_path)
    assert keys.delete_key("fal", tmp_path) is True
    assert keys.delete_key("fal", tmp_path) is False
    assert keys.key_status(tmp_path)["fal"] == "missing" and keys.resolve_key("bytecompute", tmp_path)


def test_bad_keys_are_refused_without_being_echoed(tmp_path):
    with pytest.raises(L2AError, match="empty"):
        keys.save_key("fal", "   ", tmp_path)
    with pytest.raises(L2AError, match="spaces or control characters") as err:
        keys.save_key("fal", "abc\r\nX-Injected: 1", tmp_path)
    assert "Injected" not in str(err.value)
    assert not (tmp_path / keys.KEYS_FILE).exists()


def test_a_broken_keys_file_is_reported_not_shown(tmp_path):
    (tmp_path / keys.KEYS_FILE).write_text('{"fal": "half-a-secret-value')
    with pytest.raises(L2AError, match="cannot be read") as err:
        keys.resolve_key("fal", tmp_path)
    assert "half-a-secret" not in str(err.value)
    assert keys.redact("nothing to hide", tmp_path) == "nothing to hide"  # redact never raises


def test_redact_scrubs_env_file_and_fal_halves(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESPEED_API_KEY", "ws-0123456789")
    keys.save_key("fal", FAL, tmp_path)
    text = f"bad key {FAL}; secret f00dfeedcafebabe1234; ws ws-0123456789; Bearer ws-0123456789."
    assert keys.redact(text, tmp_path) == "bad key ***; secret ***; ws ***; Bearer ***."
    # a file key is also known without naming the folder again once this process has used it
    assert keys.redact(f"x {FAL} y") == "x *** y"
    assert keys.redact("short words stay") == "short words stay"
