"""``Vault.put_many``: one policy batch, one transaction, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from tests.test_custody_invariants import DOMESTIC, KEYS, SIGNER

from trustfeed.custody import AccessDenied, Action, DataClass, Principal, Role
from trustfeed.custody._boundary import Custody
from trustfeed.custody.vault import record_request, user_request

OPERATOR = Principal("ingest-svc", Role.OPERATOR, DOMESTIC)
LICENSOR = Principal("licensor-co", Role.LICENSOR, DOMESTIC)


@pytest.fixture
def custody(database_url: str) -> Iterator[Custody]:
    with Custody.open(database_url, keys=KEYS, domestic=DOMESTIC, signing_key=SIGNER) as opened:
        yield opened


def write(owner: str, record_id: str, who: Principal = OPERATOR):
    return record_request(
        who, Action.WRITE, owner=owner, record_id=record_id,
        data_class=DataClass.WATCH_HISTORY, residency=DOMESTIC, purpose="ingest",
    )  # fmt: skip


def records(custody: Custody, owner: str) -> list[bytes]:
    me = Principal(owner, Role.USER, DOMESTIC)
    request = user_request(
        me, Action.READ, owner=owner, residency=DOMESTIC, purpose="self",
        data_class=DataClass.WATCH_HISTORY,
    )  # fmt: skip
    return [r.data for r in custody.vault.records_of(request)]


def test_writes_every_record_and_runs_the_hook_in_the_same_transaction(custody: Custody) -> None:
    seen: list[int] = []
    custody.vault.put_many(
        [(write("ann", "e/1"), b"a1"), (write("bob", "e/2"), b"b1"), (write("ann", "e/3"), b"a2")],
        in_transaction=lambda conn: seen.append(conn.execute(sa.text("select 1")).scalar_one()),
    )
    assert seen == [1]
    assert records(custody, "ann") == [b"a1", b"a2"] and records(custody, "bob") == [b"b1"]


def test_one_denied_write_stores_nothing(custody: Custody) -> None:
    before = custody.ledger.size()
    with pytest.raises(AccessDenied):
        custody.vault.put_many(
            [(write("ann", "e/1"), b"a1"), (write("bob", "e/2", LICENSOR), b"x")]
        )
    assert custody.ledger.size() == before + 2  # both decisions, allow and deny, are recorded
    assert records(custody, "ann") == []


def test_a_failing_hook_rolls_every_record_back(custody: Custody) -> None:
    def fail(conn: sa.Connection) -> None:
        raise RuntimeError("crash between the records and the position")

    with pytest.raises(RuntimeError):
        custody.vault.put_many([(write("ann", "e/1"), b"a1")], in_transaction=fail)
    assert records(custody, "ann") == []


def test_an_erased_owners_writes_are_dropped(custody: Custody) -> None:
    custody.vault.put_many([(write("ann", "e/1"), b"a1")])
    ann = Principal("ann", Role.USER, DOMESTIC)
    custody.vault.erase(
        user_request(ann, Action.ERASE, owner="ann", residency=DOMESTIC, purpose="erasure")
    )
    stored = custody.vault.put_many([(write("ann", "e/2"), b"late"), (write("bob", "e/3"), b"b")])
    assert [r.id for r in stored] == ["e/3"]
    assert custody.vault.is_erased("ann") and not custody.vault.is_erased("bob")
