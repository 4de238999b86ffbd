"""The custody boundary assembled: one store, one ledger, one policy point, one vault.

The CLI and (later) the service build custody through :meth:`Custody.open` so
that the vault can only ever sit behind the real policy point, and the policy
point can only ever write to the real ledger of the same store.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from trustfeed._closeable import Closeable
from trustfeed.custody._keyfile import CustodianKeys
from trustfeed.custody.ledger import Ledger
from trustfeed.custody.policy import PolicyPoint
from trustfeed.custody.pseudonym import PseudonymStream
from trustfeed.custody.vault import Vault
from trustfeed.storage import open_engine


@dataclass
class Custody(Closeable):
    """The four custody components over one store URL."""

    engine: sa.Engine
    ledger: Ledger
    policy: PolicyPoint
    vault: Vault
    pseudonyms: PseudonymStream

    @classmethod
    def open(
        cls,
        url: str,
        *,
        keys: CustodianKeys,
        domestic: str,
        signing_key: str | None = None,
        origin: str | None = None,
    ) -> Custody:
        """Open (creating on first use) the custody store at ``url``.

        ``signing_key`` (signed-note signer text) is needed only to sign checkpoints.
        """
        hasher = keys.hasher()
        ledger = Ledger.open(url, signing_key=signing_key, origin=origin)
        engine = open_engine(url)
        try:
            policy = PolicyPoint(sink=ledger, hasher=hasher, domestic=domestic, engine=engine)
        except BaseException:
            engine.dispose()
            ledger.close()
            raise
        vault = Vault(
            engine,
            authorizer=policy,
            sink=ledger,
            keks=keys.keks,
            current_kek=keys.current_kek,
            owner_hasher=hasher,
        )
        return cls(engine, ledger, policy, vault, PseudonymStream(hasher, domestic=domestic))

    def close(self) -> None:
        self.policy.close()
        self.ledger.close()
        self.engine.dispose()
