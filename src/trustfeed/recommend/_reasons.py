"""Why an item is in a feed: the basis of "why am I seeing this"."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Candidate sources, in the order reasons are listed.
SOURCES = ("item2item", "ann", "following", "trending", "fresh", "popular")


@dataclass(frozen=True)
class Reason:
    """One reason an item was recommended.

    ``source`` names the candidate source, ``text`` says it to a person,
    ``weight`` is that source's contribution to the score, and ``because_item``
    is the history item that contributed most (item-to-item reasons only).
    """

    source: str
    text: str
    weight: float
    because_item: int | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
