"""One object for a deployment: the gate, the banks and the default screening pipeline.

The default pipeline, in order: media hashes (videos through vPDQ, images
through MD5/SHA-256/PDQ banks), the caption through text screening (which
stores its classifier scores), the rules if any, and the uploader's strikes.
Rules come after both screening steps because they judge what those stored:
bank matches, caption bank matches and caption scores. The gate takes the
most severe verdict; any step's failure leaves the item not recommendable
(a failing text step also means the rules never see a partial picture).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from trustfeed.custody._records import EntrySink
from trustfeed.moderation._banks import Banks, HashMatchScreener
from trustfeed.moderation._gate import Clock, EligibilityFeed, Gate, ScreeningStep
from trustfeed.moderation._review import ReviewQueue
from trustfeed.moderation._rules import RuleEngine, RuleScreener, RuleSet, StoredFacts
from trustfeed.moderation._status import Actor, Status
from trustfeed.moderation._strikes import Strikes, StrikeScreener
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.moderation._vpdq import VideoBank, VideoMatchScreener
from trustfeed.moderation.text import TextBanks, TextClassifier, TextScoreLog, TextScreener
from trustfeed.storage import open_engine


class Moderation:
    """Opens one store by URL; uploads go through :meth:`submit`.

    >>> from trustfeed.custody.ledger import Ledger
    >>> ledger = Ledger.open("sqlite://", origin="example.org/ledger")
    >>> mod = Moderation.open("sqlite://", sink=ledger, text_classifiers=[])
    >>> mod.submit(1, b"not an image", uploader="creator-7", caption="hello")
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
        self._captions: dict[int, str] = {}
        self.videos: VideoBank | None = None
        self.text_banks: TextBanks | None = None
        self.text_scores: TextScoreLog | None = None
        self.strikes: Strikes | None = None
        self.queue: ReviewQueue | None = None

    @classmethod
    def open(
        cls,
        url: str,
        *,
        sink: EntrySink,
        clock: Clock = time.time,
        text_classifiers: Sequence[TextClassifier] | None = None,
        rules: RuleSet | None = None,
    ) -> Moderation:
        """Open (creating the tables if needed) the moderation store at ``url``.

        ``text_classifiers`` default to the models shipped with the installed
        packages (see :func:`trustfeed.moderation.text.default_classifiers`).
        ``rules`` run after the media and text steps, on what they stored; a
        rule's queue is the named queue of :attr:`queue` its jobs go to.
        """
        engine = open_engine(url)
        gate = Gate(engine, sink=sink, clock=clock)
        banks = Banks(engine, gate=gate, clock=clock)
        mod = cls(gate, banks, steps=[], engine_owned=engine)
        mod.videos = VideoBank(engine, banks=banks, gate=gate, clock=clock)
        mod.text_banks = TextBanks(engine, clock=clock, gate=gate)
        mod.strikes = Strikes(engine, gate=gate, sink=sink, clock=clock)
        mod.queue = queue = ReviewQueue(
            engine, gate=gate, taxonomy=Taxonomy.load(), sink=sink, clock=clock,
            banks=banks, strikes=mod.strikes,
        )  # fmt: skip
        mod.text_scores = TextScoreLog(engine, clock=clock)
        mod.steps = [
            VideoMatchScreener(mod.videos, banks, images=HashMatchScreener(banks)),
            TextScreener(
                banks=mod.text_banks,
                classifiers=text_classifiers,
                captions=mod._caption_of,
                score_log=mod.text_scores,
            ),
            *([mod._rule_step(rules, queue)] if rules is not None else []),
            StrikeScreener(mod.strikes, mod.queue),
        ]
        return mod

    def _rule_step(self, rules: RuleSet, queue: ReviewQueue) -> RuleScreener:
        """The rules as a screening step: facts from the store, routes to named queues."""
        facts = StoredFacts(
            self.gate,
            self.banks,
            videos=self.videos,
            strikes=self.strikes,
            text_banks=self.text_banks,
            text_scores=self.text_scores,
        )
        queues = {r.queue: queue.named(r.queue) for r in rules.rules if r.queue is not None}
        return RuleScreener(RuleEngine(rules), facts, queues=queues)

    def submit(
        self, item_id: int, media: bytes, *, uploader: str, caption: str | None = None
    ) -> Status:
        """Upload then screen: the item ends ``eligible`` only if every step passed."""
        self.gate.upload(item_id, actor=Actor("uploader", uploader))
        if caption is not None:
            self._captions[item_id] = caption
            if self.text_banks is not None:
                self.text_banks.store_caption(item_id, caption)
        try:
            return self.gate.screen(item_id, media, self.steps)
        finally:
            self._captions.pop(item_id, None)

    def _caption_of(self, item_id: int, media: bytes) -> str | None:
        return self._captions.get(item_id)

    def feed(self) -> EligibilityFeed:
        """A fresh eligibility feed for a recommender to poll."""
        return EligibilityFeed(self.gate)

    def close(self) -> None:
        """Release the database connections (only if :meth:`open` made them)."""
        dispose = getattr(self._owned, "dispose", None)
        if dispose is not None:
            dispose()
