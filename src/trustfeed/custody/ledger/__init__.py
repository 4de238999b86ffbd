"""The audit ledger: an RFC 6962 Merkle tree in SQL, signed checkpoints, proofs, audits.

>>> from trustfeed.custody.ledger import Ledger, verify_inclusion
>>> led = Ledger.open("sqlite://", origin="example.org/ledger")
>>> led.append_many([b"a", b"b", b"c"])
[0, 1, 2]
>>> verify_inclusion(b"b", 1, 3, led.inclusion_proof(1), led.root_hash())
True
>>> led.close()

Proof hashes are raw 32-byte ``bytes`` in RFC 9162 order; the CLI's JSON
renders them as lowercase hex. See ``_merkle`` (tree), ``_note`` (keys,
signed notes, checkpoints), ``_witness`` (cosigning), ``_verify`` (audit).
"""

from trustfeed.custody.ledger._ledger import Ledger
from trustfeed.custody.ledger._merkle import (
    EMPTY_ROOT,
    MemoryTree,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_leaf_hash,
)
from trustfeed.custody.ledger._note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Checkpoint,
    KeyFormatError,
    Note,
    NoteSignature,
    Signer,
    Verifier,
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
from trustfeed.custody.ledger._verify import AuditReport, audit_store
from trustfeed.custody.ledger._witness import Witness, WitnessRefusal

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "EMPTY_ROOT",
    "AuditReport",
    "Checkpoint",
    "KeyFormatError",
    "Ledger",
    "MemoryTree",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "Witness",
    "WitnessRefusal",
    "add_signature_lines",
    "audit_store",
    "generate_cosigner_key",
    "generate_signing_key",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_signer",
    "parse_verifier",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_leaf_hash",
    "verify_note",
]
