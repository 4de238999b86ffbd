"""Signed notes, keys, checkpoints and the witness (fork and rollback refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfeed.custody import VerificationError
from trustfeed.custody.ledger import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    KeyFormatError,
    Ledger,
    Witness,
    WitnessRefusal,
    add_signature_lines,
    generate_cosigner_key,
    generate_signing_key,
    open_checkpoint,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
    verify_note,
)
from trustfeed.custody.ledger._merkle import EMPTY_ROOT

# golang.org/x/mod/sumdb/note's documented example: Ed25519 is deterministic,
# so signing the same text with the same key must give the same bytes.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# A cosignature/v1 (0x04) verifier key of transparency-dev/formats' tests.
GO_COSIGNER_VERIFIER = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
ORIGIN = "trustfeed.example/ledger"


def test_we_sign_exactly_like_go_note() -> None:
    signer = parse_signer(GO_SIGNER)
    assert signer.verifier.text() == GO_VERIFIER
    assert signer.text() == GO_SIGNER
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    assert open_note(GO_NOTE, [parse_verifier(GO_VERIFIER)]).body == GO_TEXT


def test_go_cosigner_key_parses_with_matching_key_id() -> None:
    verifier = parse_verifier(GO_COSIGNER_VERIFIER)
    assert verifier.algorithm == ALG_COSIGNATURE_V1
    assert verifier.text() == GO_COSIGNER_VERIFIER


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumanX+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong name
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # bad base64
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_verifier_keys_are_rejected(bad: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_verifier(bad)


def test_bad_signer_keys_are_rejected() -> None:
    with pytest.raises(KeyFormatError):
        parse_signer(GO_VERIFIER)
    with pytest.raises(KeyFormatError):
        parse_signer(GO_SIGNER.replace("c74f20a3", "00000000"))


def test_generated_keys_round_trip() -> None:
    signer_text, verifier_text = generate_signing_key(ORIGIN)
    signer, verifier = parse_signer(signer_text), parse_verifier(verifier_text)
    assert signer.verifier == verifier
    note = sign_note("hello\n", [signer])
    assert verify_note(note, [verifier]).verified_names == [ORIGIN]
    with pytest.raises(KeyFormatError):
        generate_signing_key("has space")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("cryptography", "cryptographY"),  # edited body
        lambda n: n.replace("x08go/", "x08gp/"),  # edited key id
        lambda n: n.replace("pLLr8", "pLLr9"),  # edited signature bytes
        lambda n: n.replace("\n\n", "\n"),  # no blank line
        lambda n: n.rstrip("\n"),  # no final newline
        lambda n: n.replace("— ", "- "),  # not an em dash
        lambda n: n + n.split("\n\n")[1],  # same signature twice
        lambda n: GO_TEXT + "\n",  # no signatures
        lambda n: n.replace("problem,\n", "problem,\r\n"),  # control character
    ],
)
def test_malformed_or_tampered_notes_are_rejected(mangle) -> None:
    with pytest.raises(VerificationError):
        open_note(mangle(GO_NOTE), [parse_verifier(GO_VERIFIER)])


def test_unknown_signatures_are_kept_but_a_known_one_is_required() -> None:
    other_signer, other_verifier = generate_signing_key("someone.else")
    doubly = add_signature_lines(GO_NOTE, [parse_signer(other_signer).signature_line(b"x\n")])
    note = open_note(doubly, [parse_verifier(GO_VERIFIER)])
    assert [s.verified for s in note.signatures] == [True, False]
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_note(GO_NOTE, [parse_verifier(other_verifier)])
    with pytest.raises(VerificationError, match=r"lacks a valid signature by someone\.else"):
        verify_note(GO_NOTE, [parse_verifier(GO_VERIFIER), parse_verifier(other_verifier)])


def test_checkpoint_body_round_trips_and_rejects_bad_fields() -> None:
    cp = Checkpoint(ORIGIN, 20852163, bytes(range(32)))
    assert Checkpoint.parse(cp.body()) == cp
    for bad in [
        f"{ORIGIN}\n012\nAAAA\n",
        f"{ORIGIN}\n-1\n{cp.body().split()[2]}\n",
        f"{ORIGIN}\n12\nAAAA\n",
        f"{ORIGIN}\n12\n",
        "\n12\nAAAA\n",
    ]:
        with pytest.raises(VerificationError):
            Checkpoint.parse(bad)


# ----------------------------------------------------------------------------- witness


@pytest.fixture
def keys() -> dict[str, str]:
    log_signer, log_verifier = generate_signing_key(ORIGIN)
    w_signer, w_verifier = generate_cosigner_key("witness.example/w1")
    return {"log": log_signer, "log_pub": log_verifier, "w": w_signer, "w_pub": w_verifier}


def _witness(tmp_path: Path, keys: dict[str, str]) -> Witness:
    url = f"sqlite:///{tmp_path / 'witness.db'}"
    return Witness.open(
        url, signing_key=keys["w"], logs={ORIGIN: keys["log_pub"]}, clock=lambda: 1700000000
    )


def test_witness_cosigns_consistent_checkpoints_and_keeps_state(
    tmp_path: Path, keys: dict[str, str]
) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", signing_key=keys["log"])
    with _witness(tmp_path, keys) as witness:
        led.append_many([b"a", b"b", b"c"])
        first = led.checkpoint(witnesses=[witness])
        led.append_many([b"d", b"e"])
        second = led.checkpoint(witnesses=[witness])
    cp, note = open_checkpoint(
        second, [parse_verifier(keys["log_pub"]), parse_verifier(keys["w_pub"])]
    )
    assert cp.size == 5 and note.signatures[1].timestamp == 1700000000
    assert open_checkpoint(first, [parse_verifier(keys["w_pub"])])[0].size == 3
    with _witness(tmp_path, keys) as reopened:  # the state is durable
        assert reopened.latest(ORIGIN) == (5, led.root_hash())
    led.close()


def test_witness_refuses_forks_rollbacks_and_strangers(
    tmp_path: Path, keys: dict[str, str]
) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", signing_key=keys["log"])
    fork = Ledger.open(f"sqlite:///{tmp_path / 'fork.db'}", signing_key=keys["log"])
    with _witness(tmp_path, keys) as witness:
        led.append_many([b"a", b"b", b"c", b"d"])
        led.checkpoint(witnesses=[witness])
        fork.append_many([b"a", b"b", b"X", b"d", b"e"])  # same key, different history
        with pytest.raises(WitnessRefusal, match="not consistent"):
            fork.checkpoint(witnesses=[witness])
        old = Ledger.open(f"sqlite:///{tmp_path / 'old.db'}", signing_key=keys["log"])
        old.append_many([b"a", b"b"])  # an honest prefix, but older: a rollback
        with pytest.raises(WitnessRefusal, match="rollback"):
            old.checkpoint(witnesses=[witness])
        same_size_fork = sign_note(
            Checkpoint(ORIGIN, 4, EMPTY_ROOT).body(), [parse_signer(keys["log"])]
        )
        with pytest.raises(WitnessRefusal, match="fork"):
            witness.cosign(same_size_fork, old_size=4, proof=[])
        stranger_signer, _ = generate_signing_key(ORIGIN)
        forged = sign_note(
            Checkpoint(ORIGIN, 9, EMPTY_ROOT).body(), [parse_signer(stranger_signer)]
        )
        with pytest.raises(WitnessRefusal, match="no signature from a known key"):
            witness.cosign(forged, old_size=4, proof=[])
        with pytest.raises(WitnessRefusal, match="witness is at 4"):
            witness.cosign(led.checkpoint(), old_size=0, proof=[])
        assert witness.latest(ORIGIN) == (4, led.root_hash())
        old.close()
    led.close()
    fork.close()


def test_checkpoint_needs_a_signing_key(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", origin=ORIGIN) as led:
        led.append(b"x")
        assert led.latest_checkpoint() is None
        with pytest.raises(Exception, match="without a signing key"):
            led.checkpoint()
