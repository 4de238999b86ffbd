"""The policy point: Cedar policies, deny by default, every decision in the ledger.

One door for every personal-data access (ARCHITECTURE.md, invariants 1 and 2):
:class:`PolicyPoint` decides with Cedar (forbid beats permit; nothing is
allowed unless a policy permits it), records each decision, allow and deny,
in the audit ledger before returning, and takes just-in-time
:class:`Grant`\\ s that two custodians approved.
"""

from trustfeed.custody.policy._compiled import (
    CompiledPolicies,
    base_policies,
    compile_policies,
    policy_hash,
    schema_text,
)
from trustfeed.custody.policy._errors import GrantError, InvalidPolicy, PolicyError
from trustfeed.custody.policy._grants import (
    MAX_GRANT_SECONDS,
    REQUIRED_APPROVALS,
    Grant,
    GrantStatus,
    GrantStore,
)
from trustfeed.custody.policy._point import DEFAULT_CACHE_SIZE, PolicyPoint
from trustfeed.custody.policy._versions import PolicyStore, PolicyVersion

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "MAX_GRANT_SECONDS",
    "REQUIRED_APPROVALS",
    "CompiledPolicies",
    "Grant",
    "GrantError",
    "GrantStatus",
    "GrantStore",
    "InvalidPolicy",
    "PolicyError",
    "PolicyPoint",
    "PolicyStore",
    "PolicyVersion",
    "base_policies",
    "compile_policies",
    "policy_hash",
    "schema_text",
]
