"""The policy point: the one door every personal-data access goes through.

Deny by default, forbid over permit (Cedar), fail closed (any error denies),
and every decision, allow and deny, is in the ledger before it is returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from trustfeed._closeable import Closeable
from trustfeed.custody._access import AccessRequest, Decision, Principal, Role
from trustfeed.custody._errors import AccessDenied
from trustfeed.custody._keyed import KeyedHasher
from trustfeed.custody._records import EntrySink, encode_record
from trustfeed.custody.policy._cedar import EVALUATION_ERROR, Facts, Outcome, evaluate, facts_of
from trustfeed.custody.policy._compiled import CompiledPolicies, base_policies, compile_policies
from trustfeed.custody.policy._errors import PolicyError
from trustfeed.custody.policy._grants import Grant, GrantStore
from trustfeed.custody.policy._versions import PolicyStore, PolicyVersion
from trustfeed.storage import open_engine

#: Default bound on cached outcomes; the cache is emptied when it fills.
DEFAULT_CACHE_SIZE = 65_536
_DIGEST_MEMO = 131_072


@dataclass(frozen=True)
class _State:
    """What one decision reads; swapped as a whole, so a decision never mixes versions."""

    policies: CompiledPolicies
    version: PolicyVersion
    cache: dict[Facts, Outcome]


class PolicyPoint(Closeable):
    """Implements :class:`~trustfeed.custody.Authorizer` over Cedar policies.

    Give either ``engine`` (the caller keeps ownership) or ``url`` (the point
    opens and closes the engine). ``policy_text=None`` loads the active stored
    version, installing the shipped base policies on first use; explicit text
    is installed (and recorded) unless it is already the active version.
    ``cache_size=0`` and ``slice_policies=False`` give the plain reference path.
    """

    def __init__(
        self,
        *,
        sink: EntrySink,
        hasher: KeyedHasher,
        domestic: str,
        engine: sa.Engine | None = None,
        url: str | None = None,
        policy_text: str | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
        slice_policies: bool = True,
    ) -> None:
        if (engine is None) == (url is None):
            raise PolicyError("give exactly one of engine= or url=")
        if not domestic:
            raise PolicyError("the domestic jurisdiction must be named")
        self._owned_engine = open_engine(url) if url is not None else None
        self._engine = self._owned_engine or engine
        if self._engine is None:  # for mypy; ruled out above
            raise PolicyError("no storage engine")
        self._sink = sink
        self._hasher = hasher
        self._domestic = domestic
        self._clock = clock
        self._cache_size = max(0, cache_size)
        self._sliced = slice_policies
        self._lock = threading.Lock()
        self._digests: dict[str, str] = {}
        try:
            self.grants = GrantStore(
                engine=self._engine, sink=sink, clock=clock, on_change=self._drop_cache
            )
            self.versions = PolicyStore(engine=self._engine, sink=sink, clock=clock)
            self._state = self._initial_state(policy_text)
        except BaseException:
            self.close()  # an invalid stored or given policy set must not leak the engine
            raise

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Dispose of the engine if this point opened it."""
        if self._owned_engine is not None:
            self._owned_engine.dispose()

    @property
    def policy_hash(self) -> str:
        return self._state.policies.hash

    @property
    def version(self) -> PolicyVersion:
        return self._state.version

    def activate(self, policy_text: str, actor: Principal) -> PolicyVersion:
        """Validate, record and atomically swap in a new policy set (custodians only)."""
        with self._lock:
            version, compiled = self.versions.activate(policy_text, actor)
            self._state = _State(compiled, version, {})
        return version

    def refresh(self) -> bool:
        """Swap in the stored active version if another process activated one."""
        with self._lock:
            stored = self.versions.active()
            if stored is None or stored.hash == self._state.policies.hash:
                return False
            self._state = _State(compile_policies(stored.text), stored, {})
        return True

    # -- decisions ---------------------------------------------------------

    def decide(self, request: AccessRequest) -> Decision:
        """Decide and record; the record is durable before this returns."""
        return self.decide_many([request])[0]

    def enforce(self, request: AccessRequest) -> Decision:
        """Decide and record; raise :class:`AccessDenied` on a deny."""
        decision = self.decide(request)
        if not decision.allowed:
            raise AccessDenied(decision)
        return decision

    def decide_many(self, requests: Sequence[AccessRequest]) -> list[Decision]:
        """Decide a batch and record it with one durable ``append_many``.

        Results equal deciding each request alone at the same instant.
        """
        state = self._state
        now = self._clock()
        grants = self._grants_for(requests)
        outcomes = [self._outcome(request, state, grants, now) for request in requests]
        records = [self._record(r, o, state, now) for r, o in zip(requests, outcomes, strict=True)]
        indices = self._append(records)
        return [
            Decision(
                request=request,
                allowed=outcome.allowed,
                reasons=outcome.reasons,
                policy_hash=state.policies.hash,
                ledger_index=index,
                decided_at=now,
            )
            for request, outcome, index in zip(requests, outcomes, indices, strict=True)
        ]

    # -- internals ---------------------------------------------------------

    def _initial_state(self, policy_text: str | None) -> _State:
        if policy_text is None:
            stored = self.versions.active()
            if stored is not None:
                return _State(compile_policies(stored.text), stored, {})
            policy_text = base_policies()
        version, compiled = self.versions.bootstrap(policy_text)
        return _State(compiled, version, {})

    def _drop_cache(self) -> None:
        # Grant state is part of every cache key, so this is belt and braces.
        self._state.cache.clear()

    def _grants_for(self, requests: Sequence[AccessRequest]) -> Mapping[str, Grant] | None:
        """The named grants, read fresh (a revoke elsewhere counts at once); None on error."""
        named = [r.grant_id for r in requests if r.grant_id]
        if not named:
            return {}
        try:
            return self.grants.get_many(named)
        except Exception:  # fail closed: requests naming a grant are denied below
            return None

    def _outcome(
        self,
        request: AccessRequest,
        state: _State,
        grants: Mapping[str, Grant] | None,
        now: float,
    ) -> Outcome:
        try:
            return self._evaluate(request, state, grants, now)
        except Exception as exc:  # fail closed: any error is a (recorded) deny
            return Outcome(False, (f"{EVALUATION_ERROR}:{type(exc).__name__}",))

    def _evaluate(
        self,
        request: AccessRequest,
        state: _State,
        grants: Mapping[str, Grant] | None,
        now: float,
    ) -> Outcome:
        active = transfer = False
        if request.grant_id:
            if grants is None:
                raise PolicyError("grant store unavailable")
            grant = grants.get(request.grant_id)
            active = grant is not None and grant.covers(request, now)
            transfer = active and grant is not None and grant.allow_transfer
        exact = self._cache_size == 0
        facts = facts_of(
            request, state.policies, grant_active=active, grant_transfer=transfer, exact_ids=exact
        )
        if exact:
            return evaluate(facts, state.policies, domestic=self._domestic, sliced=self._sliced)
        cached = state.cache.get(facts)
        if cached is None:
            cached = evaluate(facts, state.policies, domestic=self._domestic, sliced=self._sliced)
            if len(state.cache) >= self._cache_size:
                state.cache.clear()
            state.cache[facts] = cached
        return cached

    def _record(self, request: AccessRequest, outcome: Outcome, state: _State, now: float) -> bytes:
        """The ledger entry: ids of resources and owners only as keyed hashes."""
        resource = request.resource
        principal = request.principal
        owner = resource.owner
        return encode_record(
            "decision",
            # End users are data subjects: keyed hash. Staff and services stay
            # named, because accountability is the point of the record.
            principal=self._digest(principal.id) if principal.role is Role.USER else principal.id,
            role=str(principal.role),
            action=str(request.action),
            purpose=request.purpose,
            justification=request.justification,
            jurisdiction=principal.jurisdiction,
            resource=self._digest(resource.id),
            owner=None if owner is None else self._digest(owner),
            data_class=str(resource.data_class),
            decision="allow" if outcome.allowed else "deny",
            reasons=list(outcome.reasons),
            grant=request.grant_id,
            policy=state.policies.hash,
            at=now,
        )

    def _digest(self, value: str) -> str:
        """Keyed hash of an id, memoised (bounded): an HMAC per id is a third of a hit's cost."""
        digest = self._digests.get(value)
        if digest is None:
            digest = self._hasher.digest(value)
            if len(self._digests) >= _DIGEST_MEMO:
                self._digests.clear()
            self._digests[value] = digest
        return digest

    def _append(self, records: list[bytes]) -> list[int]:
        try:
            if len(records) == 1:
                return [self._sink.append(records[0])]
            return list(self._sink.append_many(records))
        except Exception as exc:
            raise PolicyError("the decision could not be recorded; nothing may proceed") from exc
