"""The custody boundary: audit ledger, policy point, vault and pseudonyms.

Every personal-data access is decided by the policy point and recorded in the
ledger; the vault acts only on an allowed decision; training sees only keyed
pseudonyms. See ARCHITECTURE.md (invariants 1, 2, 3 and 7).
"""

from trustfeed.custody._access import (
    AccessRequest,
    Action,
    Authorizer,
    Category,
    DataClass,
    Decision,
    Principal,
    Resource,
    Role,
)
from trustfeed.custody._errors import AccessDenied, CustodyError, LedgerError, VerificationError
from trustfeed.custody._keyed import KeyedHasher
from trustfeed.custody._records import EntrySink, MemorySink, decode_record, encode_record
from trustfeed.custody.ledger import Ledger, verify_consistency, verify_inclusion

__all__ = [
    "AccessDenied",
    "AccessRequest",
    "Action",
    "Authorizer",
    "Category",
    "CustodyError",
    "DataClass",
    "Decision",
    "EntrySink",
    "KeyedHasher",
    "Ledger",
    "LedgerError",
    "MemorySink",
    "Principal",
    "Resource",
    "Role",
    "VerificationError",
    "decode_record",
    "encode_record",
    "verify_consistency",
    "verify_inclusion",
]
