"""The vault: users' personal records, encrypted per user, opened only on an allowed decision.

Envelope encryption (AES-256-GCM data keys per user, wrapped by the
custodian's KEKs), owners stored as keyed hashes, one policy decision per
call, crypto-shredding erasure and a machine-readable export. The ``user``
commands of the CLI live in ``trustfeed.custody.vault._cli`` (``user_app``).
"""

from trustfeed.custody.vault._errors import ErasedError, RecordNotFound, VaultError
from trustfeed.custody.vault._export import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, VaultRecord
from trustfeed.custody.vault._requests import (
    PURPOSE_ERASURE,
    PURPOSE_SUBJECT_ACCESS,
    SUBJECT_SCOPE_CLASS,
    record_request,
    user_request,
    user_scope,
)
from trustfeed.custody.vault._vault import DEFAULT_MEDIA_TYPE, ErasureReceipt, Vault

__all__ = [
    "DEFAULT_MEDIA_TYPE",
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "PURPOSE_ERASURE",
    "PURPOSE_SUBJECT_ACCESS",
    "SUBJECT_SCOPE_CLASS",
    "ErasedError",
    "ErasureReceipt",
    "RecordNotFound",
    "Vault",
    "VaultError",
    "VaultRecord",
    "record_request",
    "user_request",
    "user_scope",
]
