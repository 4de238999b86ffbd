"""The only path between plaintext and ciphertext, and it needs an allowed decision.

The vault asks the policy point, then hands the :class:`Decision` to the
gate; the gate holds the key ring and will seal or open nothing unless the
decision allows an action of the right kind about exactly the owner, record
and class in hand. A read without a decision is impossible by construction:
there is no other function in the vault that turns ciphertext into plaintext.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trustfeed.custody._access import AccessRequest, Action, Decision
from trustfeed.custody._errors import AccessDenied
from trustfeed.custody.vault._crypto import KeyRing, RecordMeta, open_record, seal_record
from trustfeed.custody.vault._errors import VaultError
from trustfeed.custody.vault._requests import user_scope


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """One owner's data key as stored: wrapped under ``kek_id``."""

    owner: str
    kek_id: str
    wrapped: bytes


def check_decision(decision: Decision, request: AccessRequest) -> None:
    """Fail closed unless ``decision`` is an allow for exactly ``request``.

    1. The decision must answer this very request (a decision for another
       request, user or purpose is refused even if it says allowed).
    2. It must allow; an ``enforce`` that returned a deny is still a deny.
    """
    if decision.request != request:
        raise VaultError("the decision answers a different request; refusing to act on it")
    if not decision.allowed:
        raise AccessDenied(decision)


class Gate:
    """Seals and opens records for an allowed decision, and for nothing else."""

    def __init__(self, keyring: KeyRing, owner_hash: Callable[[str], str]) -> None:
        self._keyring = keyring
        self._owner_hash = owner_hash

    def seal(
        self, decision: Decision, key: WrappedKey, meta: RecordMeta, plaintext: bytes
    ) -> bytes:
        """Seal one record for an allowed WRITE of exactly that record."""
        self._require(decision, (Action.WRITE,), key)
        resource = decision.request.resource
        if (resource.id, resource.data_class.value) != (meta.id, meta.data_class):
            raise VaultError("the decision allows writing a different record or class")
        data_key = self._keyring.unwrap(key.wrapped, owner=key.owner, kek_id=key.kek_id)
        return seal_record(data_key, meta, plaintext)

    def open(
        self, decision: Decision, key: WrappedKey, rows: Sequence[tuple[RecordMeta, bytes]]
    ) -> list[bytes]:
        """Open records that lie inside what ``decision`` allows, or refuse them all.

        1. The decision allows a READ or an EXPORT, and names the key's owner.
        2. Every row belongs to that owner.
        3. A READ of one record covers that record and class only; a READ of
           the user scope covers the named class; an EXPORT covers the user.
        4. Only then is the data key unwrapped and each record opened.
        """
        self._require(decision, (Action.READ, Action.EXPORT), key)
        for meta, _ in rows:
            self._check_in_scope(decision, key.owner, meta)
        data_key = self._keyring.unwrap(key.wrapped, owner=key.owner, kek_id=key.kek_id)
        return [open_record(data_key, meta, sealed) for meta, sealed in rows]

    def _require(self, decision: Decision, actions: tuple[Action, ...], key: WrappedKey) -> None:
        request = decision.request
        if not decision.allowed:
            raise AccessDenied(decision)
        if request.action not in actions:
            raise VaultError(f"a decision to {request.action.value} does not allow this")
        owner = request.resource.owner
        if owner is None or self._owner_hash(owner) != key.owner:
            raise VaultError("the decision is about a different owner")

    @staticmethod
    def _check_in_scope(decision: Decision, owner_hash: str, meta: RecordMeta) -> None:
        resource = decision.request.resource
        if meta.owner != owner_hash:
            raise VaultError(f"record {meta.id!r} belongs to another owner")
        if resource.owner is not None and resource.id == user_scope(resource.owner):
            if decision.request.action is Action.EXPORT:
                return
            if meta.data_class == resource.data_class.value:
                return
        elif decision.request.action is Action.READ and (
            (resource.id, resource.data_class.value) == (meta.id, meta.data_class)
        ):
            return
        raise VaultError(f"record {meta.id!r} lies outside what the decision allows")
