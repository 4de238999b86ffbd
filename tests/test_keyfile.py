"""The custodian key file: created private, loaded strictly, every problem one clear error."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from trustfeed.custody import KeyedHasher
from trustfeed.custody._keyfile import (
    KeyfileError,
    add_kek,
    generate_keyfile,
    load_keyfile,
)

#: A version-1 key file exactly as written by the first release: it must keep loading.
V1_FIXTURE = """{
  "current_kek": "kek-1",
  "current_pseudonym": 1,
  "format": "trustfeed.custodian-keys",
  "keks": {"kek-1": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
  "pseudonym_keys": {"1": "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="},
  "version": 1
}
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_generate_then_load_round_trips_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "custodian.json"
    keys = generate_keyfile(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_keyfile(path)
    assert loaded == keys
    assert len(loaded.keks["kek-1"]) == 32 and loaded.current_pseudonym == 1
    assert isinstance(loaded.hasher(), KeyedHasher)
    key_text = base64.b64encode(keys.keks["kek-1"]).decode()
    assert key_text not in repr(loaded) and "kek-1" in repr(loaded)


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = generate_keyfile(path)
    with pytest.raises(KeyfileError, match="already exists"):
        generate_keyfile(path)
    assert load_keyfile(path) == first


def test_the_v1_fixture_still_loads(tmp_path: Path) -> None:
    keys = load_keyfile(write(tmp_path / "k.json", V1_FIXTURE))
    assert keys.keks == {"kek-1": bytes(range(32))}
    assert keys.pseudonym_keys == {1: bytes(range(32, 64))}
    assert keys.hasher().digest("user-42").startswith("k1:")


def test_add_kek_makes_a_new_current_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = generate_keyfile(path)
    assert add_kek(path) == "kek-2"
    keys = load_keyfile(path)
    assert keys.current_kek == "kek-2" and keys.keks["kek-1"] == first.keks["kek-1"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyfileError, match="already exists"):
        add_kek(path, "kek-1")


def _mutated(**changes: object) -> str:
    document = json.loads(V1_FIXTURE)
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a trustfeed key file"),
        (_mutated(format="other"), "not a trustfeed key file"),
        (_mutated(version=2), "unsupported key file version 2"),
        (_mutated(keks={}), "'keks' must be a non-empty object"),
        (_mutated(keks={"kek-1": "c2hvcnQ="}), "5 bytes; keys must be 32"),
        (_mutated(keks={"kek-1": "***"}), "not valid base64"),
        (_mutated(keks={"kek-1": 7}), "must be a base64 string"),
        (_mutated(current_kek="kek-9"), "current_kek 'kek-9' is not one of the KEKs"),
        (_mutated(pseudonym_keys={"one": V1_FIXTURE[0]}), "not a positive integer"),
        (_mutated(current_pseudonym="1"), "current_pseudonym '1'"),
    ],
)
def test_bad_key_files_get_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "k.json", text)
    with pytest.raises(KeyfileError, match=message) as info:
        load_keyfile(path)
    assert str(path) in str(info.value)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyfileError, match="not found"):
        load_keyfile(tmp_path / "absent.json")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "k.json", V1_FIXTURE, mode)
    with pytest.raises(KeyfileError, match=f"mode {mode:04o}.*chmod 600"):
        load_keyfile(path)


def test_paths_may_be_given_as_strings(tmp_path) -> None:
    from trustfeed.custody._keyfile import add_kek, generate_keyfile, load_keyfile

    path = str(tmp_path / "keys.json")
    generate_keyfile(path)
    assert add_kek(path) == "kek-2"
    assert load_keyfile(path).current_kek == "kek-2"
