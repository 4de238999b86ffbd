"""One object for a deployment: the gate, the banks and the default screening pipeline."""

from __future__ import annotations

import time
from collections.abc import Sequence

from trustfeed.custody._records import EntrySink
from trustfeed.moderation._banks import Banks, HashMatchScreener
from trustfeed.moderation._gate import Clock, EligibilityFeed, Gate, ScreeningStep
from trustfeed.moderation._status import Actor, Status
from trustfeed.storage import open_engine


class Moderation:
    """Opens one store by URL; uploads go through :meth:`submit`.

    >>> from trustfeed.custody.ledger import Ledger
    >>> ledger = Ledger.open("sqlite://", origin="example.org/ledger")
    >>> mod = Moderation.open("sqlite://", sink=ledger)
    >>> mod.submit(1, b"not an image", uploader="creator-7")
    <Status.NOT_RECOMMENDABLE: 'not_recommendable'>
    >>> mod.gate.is_eligible(1)
    False
    >>> mod.close(); ledger.close()
    """

    def __init__(
        self,
        gate: Gate,
        banks: Banks,
        *,
        steps: Sequence[ScreeningStep] | None = None,
        engine_owned: object = None,
    ) -> None:
        self.gate = gate
        self.banks = banks
        self.steps: list[ScreeningStep] = (
            list(steps) if steps is not None else [HashMatchScreener(banks)]
        )
        self._owned = engine_owned

    @classmethod
    def open(cls, url: str, *, sink: EntrySink, clock: Clock = time.time) -> Moderation:
        """Open (creating the tables if needed) the moderation store at ``url``."""
        engine = open_engine(url)
        gate = Gate(engine, sink=sink, clock=clock)
        return cls(gate, Banks(engine, gate=gate, clock=clock), engine_owned=engine)

    def submit(self, item_id: int, media: bytes, *, uploader: str) -> Status:
        """Upload then screen: the item ends ``eligible`` only if every step passed."""
        self.gate.upload(item_id, actor=Actor("uploader", uploader))
        return self.gate.screen(item_id, media, self.steps)

    def feed(self) -> EligibilityFeed:
        """A fresh eligibility feed for a recommender to poll."""
        return EligibilityFeed(self.gate)

    def close(self) -> None:
        """Release the database connections (only if :meth:`open` made them)."""
        dispose = getattr(self._owned, "dispose", None)
        if dispose is not None:
            dispose()
