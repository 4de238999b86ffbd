"""Named review queues: rules route to a queue by name; moderators claim from their own."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from typer.testing import CliRunner

import trustfeed.moderation._cli_review  # noqa: F401  (adds the review commands)
from trustfeed.custody.ledger import Ledger
from trustfeed.moderation import (
    Actor,
    Gate,
    Moderation,
    ModerationError,
    PDQSignal,
    RuleSet,
    Status,
    moderation_app,
)
from trustfeed.moderation import _workflow_tables as w
from trustfeed.moderation._review import DEFAULT_QUEUE, ReviewQueue
from trustfeed.moderation._taxonomy import Taxonomy
from trustfeed.storage import ROW_ID, open_engine

RULE = Actor("rule", "r")


@dataclass
class World:
    gate: Gate
    queue: ReviewQueue
    ledger: Ledger


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    gate = Gate(engine, sink=ledger, clock=lambda: 1000.0)
    queue = ReviewQueue(
        engine, gate=gate, taxonomy=Taxonomy.load(), sink=ledger, clock=lambda: 1000.0
    )
    try:
        yield World(gate, queue, ledger)
    finally:
        ledger.close()
        engine.dispose()


def _quarantined(world: World, *items: int) -> None:
    for item in items:
        world.gate.upload(item, actor=Actor("uploader", "creator-1"))
        world.gate.decide(item, Status.QUARANTINED, reason="flagged", actor=RULE)


def test_jobs_sit_in_named_queues_and_moderators_claim_from_theirs(world: World) -> None:
    _quarantined(world, 1, 2, 3, 4)
    plain = world.queue.enqueue(1, reason="r", detected_by=RULE)
    csam = world.queue.enqueue(2, reason="r", detected_by=RULE, queue="csam-hash", priority=90)
    hate = world.queue.named("hate-text").enqueue(3, reason="r", detected_by=RULE, priority=5)
    hate2 = world.queue.enqueue(4, reason="r", detected_by=RULE, queue="hate-text")
    assert world.queue.job(plain).queue == DEFAULT_QUEUE == "default"
    assert [j.id for j in world.queue.pending()] == [csam, hate, plain, hate2]  # all queues
    assert [j.id for j in world.queue.pending(queue="hate-text")] == [hate, hate2]
    assert [j.id for j in world.queue.pending(queue="default")] == [plain]
    assert world.queue.pending(queue="nobody-uses-this") == []
    taken = world.queue.claim_next("hate-team-1", queue="hate-text")
    assert taken is not None and taken.job.id == hate  # the most urgent of that queue only
    taken = world.queue.claim_next("hate-team-2", queue="hate-text")
    assert taken is not None and taken.job.id == hate2
    assert world.queue.claim_next("hate-team-3", queue="hate-text") is None  # csam not offered
    assert [j.id for j in world.queue.pending()] == [csam, plain]


def test_an_item_is_in_one_open_job_and_a_more_urgent_route_moves_it(world: World) -> None:
    _quarantined(world, 1)
    job = world.queue.enqueue(1, reason="r", detected_by=RULE, queue="hate-text", priority=5)
    same = world.queue.enqueue(1, reason="r", detected_by=RULE, queue="spam", priority=5)
    assert same == job and world.queue.job(job).queue == "hate-text"  # a tie keeps its queue
    urgent = world.queue.enqueue(1, reason="r", detected_by=RULE, queue="csam-hash", priority=90)
    assert urgent == job  # never two teams deciding one item at once
    assert (world.queue.job(job).queue, world.queue.job(job).priority) == ("csam-hash", 90)
    assert world.queue.pending(queue="hate-text") == []


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_queue_names_are_bounded(world: World, name: str) -> None:
    _quarantined(world, 1)
    with pytest.raises(ModerationError, match="queue name"):
        world.queue.enqueue(1, reason="r", detected_by=RULE, queue=name)
    with pytest.raises(ModerationError, match="queue name"):
        world.queue.named(name)


#: ``moderation_review_jobs`` as stores written before queues had names hold it.
def _old_review_jobs(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "moderation_review_jobs",
        metadata,
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("media_key", sa.String(160), nullable=False, index=True),
        sa.Column("pdq", sa.String(64), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("detected_by", sa.String(130), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(130), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("decided_at", sa.Float, nullable=True),
    )


def test_a_store_from_before_named_queues_still_opens(database_url: str) -> None:
    engine = open_engine(database_url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    try:
        old = _old_review_jobs(sa.MetaData())
        old.create(engine)
        w.review_job_items.create(engine)
        row = {"media_key": "item:1", "priority": 3, "reason": "r", "detected_by": "rule:r"}
        with engine.begin() as conn:
            conn.execute(old.insert().values(**row, state="open", created_at=1.0))
            conn.execute(w.review_job_items.insert().values(job_id=1, item_id=1, added_at=1.0))
        gate = Gate(engine, sink=ledger)
        queue = ReviewQueue(engine, gate=gate, taxonomy=Taxonomy.load(), sink=ledger)
        assert queue.job(1).queue == "default" and queue.job(1).items == (1,)
        assert [j.id for j in queue.pending(queue="default")] == [1]
        columns = {c["name"] for c in sa.inspect(engine).get_columns("moderation_review_jobs")}
        assert "queue" in columns
        ReviewQueue(engine, gate=gate, taxonomy=Taxonomy.load(), sink=ledger)  # idempotent
    finally:
        ledger.close()
        engine.dispose()


def _image(seed: int) -> bytes:
    """A textured image whose PDQ has full quality (random blocks, seeded)."""
    blocks = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize((256, 256), Image.Resampling.BILINEAR).save(out, "PNG")
    return out.getvalue()


def test_rules_route_each_signal_to_its_named_queue(database_url: str) -> None:
    rules = RuleSet.model_validate(
        {
            "version": 1,
            "rules": [
                {
                    "id": "csam",
                    "when": [{"match": {"bank": "csam"}}],
                    "status": "removed",
                    "queue": "csam-hash",
                    "priority": 90,
                },
                {"id": "watch", "when": [{"match": {"bank": "watch"}}], "queue": "default"},
            ],
        }
    )
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    m = Moderation.open(database_url, sink=ledger, text_classifiers=[], rules=rules)
    try:
        assert m.queue is not None
        m.banks.create("csam", action=Status.QUARANTINED)
        m.banks.create("watch", action=Status.AGE_RESTRICTED)
        m.banks.add("csam", "pdq", PDQSignal().hash_bytes(_image(1))[0].value)
        m.banks.add("watch", "pdq", PDQSignal().hash_bytes(_image(2))[0].value)
        assert m.submit(1, _image(1), uploader="c1") is Status.REMOVED
        assert m.submit(2, _image(2), uploader="c1") is Status.AGE_RESTRICTED
        assert [j.items for j in m.queue.pending(queue="csam-hash")] == [(1,)]
        assert [j.items for j in m.queue.pending(queue="default")] == [(2,)]
    finally:
        m.close()
        ledger.close()


def test_cli_queue_lists_one_named_queue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mod.db'}"
    engine = open_engine(url)
    ledger = Ledger.open("sqlite://", origin="test/ledger")
    try:
        world = World(
            gate := Gate(engine, sink=ledger),
            ReviewQueue(engine, gate=gate, taxonomy=Taxonomy.load(), sink=ledger),
            ledger,
        )
        _quarantined(world, 1, 2)
        world.queue.enqueue(1, reason="r", detected_by=RULE, queue="hate-text")
        world.queue.enqueue(2, reason="r", detected_by=RULE)
    finally:
        ledger.close()
        engine.dispose()
    done = CliRunner().invoke(moderation_app, ["queue", "--store", url, "--queue", "hate-text"])
    assert done.exit_code == 0, done.output
    assert [(j["items"], j["queue"]) for j in json.loads(done.stdout)] == [([1], "hate-text")]
