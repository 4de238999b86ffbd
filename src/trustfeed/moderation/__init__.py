"""Content security: the eligibility gate, media signals, hash banks and their index.

Only ``eligible`` items may reach candidate retrieval (ARCHITECTURE invariant
5). :class:`Gate` holds every item's status and refuses moves its transition
table does not allow; every move is recorded in SQL and in the audit ledger.
:class:`Banks` match uploads (MD5, SHA-256, PDQ with its 8 rotations/flips)
and re-scan published items when a hash is added. :class:`EligibilityFeed`
tells the recommender what became (in)eligible. Videos match through
vPDQ (:class:`VideoBank`, the ``video`` extra); captions through
:mod:`trustfeed.moderation.text`. :class:`RuleEngine` maps signals to
actions and named review queues (with a dry run); :class:`ReviewQueue`,
:class:`Appeals` and :class:`Strikes` are the human side, and every
restriction gets a DSA statement of reasons (:class:`StatementsOfReasons`).
"""

from trustfeed.moderation._appeals import Appeal, Appeals, Outcome
from trustfeed.moderation._banks import (
    Bank,
    BankMatch,
    Banks,
    HashMatchScreener,
    MatchResult,
    RescanReport,
)
from trustfeed.moderation._cli import moderation_app
from trustfeed.moderation._dsa import StatementsOfReasons, validate_statement
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
from trustfeed.moderation._metrics import FloodRule, MatchLog, overturn_rate, time_in_queue
from trustfeed.moderation._moderation import Moderation
from trustfeed.moderation._pdq import DIHEDRAL, PDQSignal, hex_to_bytes, load_image
from trustfeed.moderation._review import Job, JobView, NamedQueue, ReviewQueue
from trustfeed.moderation._rules import RuleEngine, RuleScreener, RuleSet, StoredFacts, dry_run
from trustfeed.moderation._signals import (
    Comparison,
    MD5Signal,
    SHA256Signal,
    SignalType,
    SignalValue,
)
from trustfeed.moderation._status import SEVERITY, TABLE, Actor, Status, check_transition
from trustfeed.moderation._strikes import Consequence, StrikePolicy, Strikes
from trustfeed.moderation._taxonomy import Policy, Taxonomy
from trustfeed.moderation._vpdq import VideoBank, VideoMatchScreener, VPDQHash, VPDQSignal

__all__ = [
    "DIHEDRAL",
    "SEVERITY",
    "SIGNAL_TYPES",
    "TABLE",
    "Actor",
    "Appeal",
    "Appeals",
    "Bank",
    "BankMatch",
    "Banks",
    "BruteForceIndex",
    "Comparison",
    "Consequence",
    "EligibilityChanges",
    "EligibilityFeed",
    "FloodRule",
    "Gate",
    "HammingIndex",
    "HashMatchScreener",
    "Hits",
    "IllegalTransition",
    "InvalidSignal",
    "Job",
    "JobView",
    "MD5Signal",
    "MatchLog",
    "MatchResult",
    "Moderation",
    "ModerationError",
    "MultiIndexHash",
    "NamedQueue",
    "Outcome",
    "PDQSignal",
    "Policy",
    "RescanReport",
    "ReviewQueue",
    "RuleEngine",
    "RuleScreener",
    "RuleSet",
    "SHA256Signal",
    "ScreeningStep",
    "SignalType",
    "SignalValue",
    "StatementsOfReasons",
    "Status",
    "StoredFacts",
    "StrikePolicy",
    "Strikes",
    "Taxonomy",
    "Transition",
    "UnknownBank",
    "UnknownItem",
    "UnsupportedMedia",
    "VPDQHash",
    "VPDQSignal",
    "Verdict",
    "VideoBank",
    "VideoMatchScreener",
    "build_index",
    "check_transition",
    "dry_run",
    "hash_media",
    "hex_to_bytes",
    "load_hashes",
    "load_image",
    "moderation_app",
    "overturn_rate",
    "save_hashes",
    "signal_type",
    "time_in_queue",
    "validate_statement",
]
