"""Content security: the eligibility gate, media signals, hash banks and their index.

Only ``eligible`` items may reach candidate retrieval (ARCHITECTURE invariant
5). :class:`Gate` holds every item's status and refuses moves its transition
table does not allow; every move is recorded in SQL and in the audit ledger.
:class:`Banks` match uploads (MD5, SHA-256, PDQ with its 8 rotations/flips)
and re-scan published items when a hash is added. :class:`EligibilityFeed`
tells the recommender what became (in)eligible.
"""

from trustfeed.moderation._banks import (
    Bank,
    BankMatch,
    Banks,
    HashMatchScreener,
    MatchResult,
    RescanReport,
)
from trustfeed.moderation._cli import moderation_app
from trustfeed.moderation._errors import (
    IllegalTransition,
    InvalidSignal,
    ModerationError,
    UnknownBank,
    UnknownItem,
    UnsupportedMedia,
)
from trustfeed.moderation._gate import (
    EligibilityChanges,
    EligibilityFeed,
    Gate,
    ScreeningStep,
    Transition,
    Verdict,
)
from trustfeed.moderation._index import (
    BruteForceIndex,
    HammingIndex,
    Hits,
    MultiIndexHash,
    build_index,
    load_hashes,
    save_hashes,
)
from trustfeed.moderation._media import SIGNAL_TYPES, hash_media, signal_type
from trustfeed.moderation._moderation import Moderation
from trustfeed.moderation._pdq import DIHEDRAL, PDQSignal, hex_to_bytes, load_image
from trustfeed.moderation._signals import (
    Comparison,
    MD5Signal,
    SHA256Signal,
    SignalType,
    SignalValue,
)
from trustfeed.moderation._status import SEVERITY, TABLE, Actor, Status, check_transition

__all__ = [
    "DIHEDRAL",
    "SEVERITY",
    "SIGNAL_TYPES",
    "TABLE",
    "Actor",
    "Bank",
    "BankMatch",
    "Banks",
    "BruteForceIndex",
    "Comparison",
    "EligibilityChanges",
    "EligibilityFeed",
    "Gate",
    "HammingIndex",
    "HashMatchScreener",
    "Hits",
    "IllegalTransition",
    "InvalidSignal",
    "MD5Signal",
    "MatchResult",
    "Moderation",
    "ModerationError",
    "MultiIndexHash",
    "PDQSignal",
    "RescanReport",
    "SHA256Signal",
    "ScreeningStep",
    "SignalType",
    "SignalValue",
    "Status",
    "Transition",
    "UnknownBank",
    "UnknownItem",
    "UnsupportedMedia",
    "Verdict",
    "build_index",
    "check_transition",
    "hash_media",
    "hex_to_bytes",
    "load_hashes",
    "load_image",
    "moderation_app",
    "save_hashes",
    "signal_type",
]
