"""The licensor's signature: an Ed25519 C2SP signed note over the package id.

Signing the id (the manifest's SHA-256) signs the manifest, hence every file
it lists; it is the same design as OpenSSF model signing (sign a manifest of
file digests). Keys use the ledger's signed-note text forms, so one tool
(Go's ``note`` package included) reads both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from trustfeed.custody import VerificationError
from trustfeed.custody.ledger import (
    KeyFormatError,
    Verifier,
    generate_signing_key,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
)
from trustfeed.recommend.package._errors import SignatureError
from trustfeed.recommend.package._package import PACKAGE_FORMAT, SIGNATURE, Package


def generate_licensor_key(name: str) -> tuple[str, str]:
    """A new (signer text, verifier text) pair; the verifier goes to the custodian."""
    try:
        return generate_signing_key(name)
    except KeyFormatError as exc:
        raise SignatureError(str(exc)) from exc


def signature_body(package: Package) -> str:
    """What the licensor signs: format, name and version, and the package id."""
    return f"{PACKAGE_FORMAT}\n{package.name} {package.version}\n{package.id}\n"


def sign_package(path: str | Path, signer_text: str) -> Package:
    """Sign the package at ``path`` (its bytes are checked first); return it re-read."""
    root = Path(path)
    package = Package.open(root)
    try:
        signer = parse_signer(signer_text.strip())
    except KeyFormatError as exc:
        raise SignatureError(f"not a signing key: {exc}") from exc
    note = sign_note(signature_body(package), [signer])
    tmp = root / (SIGNATURE + ".tmp")
    tmp.write_text(note, encoding="utf-8")
    os.replace(tmp, root / SIGNATURE)
    return Package.open(root)


def parse_licensor_key(text: str) -> Verifier:
    """A licensor's public key in verifier-note form; SignatureError when it is not one."""
    try:
        return parse_verifier(text.strip())
    except KeyFormatError as exc:
        raise SignatureError(f"not a licensor public key: {exc}") from exc


def verify_signature(package: Package, trusted: Sequence[Verifier]) -> list[str]:
    """The names of trusted keys that signed ``package``; SignatureError when none did.

    1. The package carries a signature note.
    2. At least one signature on it is by a trusted key, and every signature
       by a trusted key verifies (``open_note``).
    3. The signed body names this package's id, name and version.
    """
    if package.signature is None:
        raise SignatureError(f"package {package.id} is not signed ({SIGNATURE} is missing)")
    if not trusted:
        raise SignatureError("no licensor key is trusted yet (`trustfeed package trust-key`)")
    try:
        note = open_note(package.signature, trusted)
    except VerificationError as exc:
        raise SignatureError(f"package {package.id}: signature refused: {exc}") from exc
    if note.body != signature_body(package):
        raise SignatureError(f"the signature is for another package than {package.id}")
    return note.verified_names
