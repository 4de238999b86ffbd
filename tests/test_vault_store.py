"""The vault on both backends: envelope encryption, policy on every call, erasure, export.

The authorizers here are small stand-ins for the policy point that still
return proper Decisions; a list stands in for the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
import sqlalchemy as sa

from trustfeed.custody import (
    AccessDenied,
    AccessRequest,
    Action,
    DataClass,
    Decision,
    KeyedHasher,
    Principal,
    Role,
    decode_record,
)
from trustfeed.custody.vault import (
    EXPORT_FORMAT,
    ErasedError,
    RecordNotFound,
    Vault,
    VaultError,
    record_request,
    user_request,
)
from trustfeed.custody.vault._crypto import RecordMeta, open_record
from trustfeed.storage import open_engine

ALICE, BOB = "alice-7f3a", "bob-19c2"
CUSTODIAN = Principal("custodian-ops", Role.CUSTODIAN, "US")


class ListSink:
    """The ledger's two calls, kept in a list."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []

    def append(self, entry: bytes) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        return [self.append(entry) for entry in entries]


class CountingAuthorizer:
    """Allows (or denies) everything, returning proper Decisions, and keeps them."""

    def __init__(self, *, allow: bool = True) -> None:
        self.allow = allow
        self.decisions: list[Decision] = []

    def decide(self, request: AccessRequest) -> Decision:
        reason = "test: allow all" if self.allow else "test: deny all"
        decision = Decision(request, self.allow, (reason,), "0" * 64, len(self.decisions))
        self.decisions.append(decision)
        return decision

    def enforce(self, request: AccessRequest) -> Decision:
        decision = self.decide(request)
        if not decision.allowed:
            raise AccessDenied(decision)
        return decision


class SoftDenier(CountingAuthorizer):
    """A faulty policy point whose ``enforce`` returns a deny instead of raising."""

    def enforce(self, request: AccessRequest) -> Decision:
        return replace(super().decide(request), allowed=False)


class LyingAuthorizer(CountingAuthorizer):
    """A faulty policy point that answers "allowed" for a different request (Bob's)."""

    def enforce(self, request: AccessRequest) -> Decision:
        other = replace(request.resource, owner=BOB)
        return super().decide(replace(request, resource=other))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


KEKS = {"kek-1": bytes(range(32)), "kek-2": bytes(range(32, 64))}
HASHER_KEYS = {1: b"h" * 32, 2: b"i" * 32}


def make_vault(
    engine: sa.Engine,
    authorizer: CountingAuthorizer | None = None,
    *,
    sink: ListSink | None = None,
    keks: dict[str, bytes] | None = None,
    current_kek: str = "kek-1",
    hasher_version: int = 1,
) -> Vault:
    return Vault(
        engine,
        authorizer=authorizer or CountingAuthorizer(),
        sink=sink or ListSink(),
        keks=KEKS if keks is None else keks,
        current_kek=current_kek,
        owner_hasher=KeyedHasher(HASHER_KEYS, current=hasher_version),
    )


def put_req(owner: str, record_id: str, data_class: DataClass = DataClass.MESSAGES):
    return record_request(
        CUSTODIAN,
        Action.WRITE,
        owner=owner,
        record_id=record_id,
        data_class=data_class,
        residency="US",
        purpose="ingest",
    )


def get_req(owner: str, record_id: str, data_class: DataClass = DataClass.MESSAGES):
    return replace(put_req(owner, record_id, data_class), action=Action.READ)


def user_req(owner: str, action: Action, data_class: DataClass | None = None):
    extra = {} if data_class is None else {"data_class": data_class}
    return user_request(CUSTODIAN, action, owner=owner, residency="US", purpose="support", **extra)


def seed(vault: Vault) -> None:
    vault.put(put_req(ALICE, "a-msg-1"), b"hello bob")
    vault.put(put_req(ALICE, "a-msg-2"), b"see you at 8")
    vault.put(
        put_req(ALICE, "a-loc-1", DataClass.PRECISE_LOCATION),
        b'{"lat": 52.52, "lon": 13.40}',
        media_type="application/json",
    )
    vault.put(put_req(BOB, "b-msg-1"), b"bob's secret")


def meta_of(row: sa.Row) -> RecordMeta:
    return RecordMeta(row.id, row.owner, row.data_class, row.residency, row.media_type)


def dump_tables(engine: sa.Engine) -> dict[str, list[tuple]]:
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(tuple(row) for row in conn.execute(sa.select(table)))
            for name, table in meta.tables.items()
        }


# -- envelope encryption ------------------------------------------------------


def test_records_round_trip_and_rest_only_as_ciphertext(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    seed(vault)
    assert vault.get(get_req(ALICE, "a-msg-1")).data == b"hello bob"
    messages = vault.records_of(user_req(ALICE, Action.READ, DataClass.MESSAGES))
    assert [r.id for r in messages] == ["a-msg-1", "a-msg-2"]
    assert {r.data_class for r in messages} == {DataClass.MESSAGES}
    stored = repr(dump_tables(engine))
    for secret in ("hello bob", "see you", "52.52", "bob's secret", ALICE, BOB):
        assert secret not in stored


def test_records_carry_class_residency_and_time(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    created = vault.put(put_req(ALICE, "a-1"), b"x")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM vault_records")).one()
    assert (row.data_class, row.residency) == ("messages", "US")
    assert row.created_at == created.created_at
    assert row.owner == vault.owner_digest(ALICE) and row.owner.startswith("k1:")


def test_each_user_has_their_own_data_key(engine: sa.Engine) -> None:
    seed(make_vault(engine))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT owner, kek_id, wrapped FROM vault_data_keys")).all()
    assert len(rows) == 2 and len({r.wrapped for r in rows}) == 2
    assert {r.kek_id for r in rows} == {"kek-1"}


@pytest.mark.parametrize(
    ("move", "read"),
    [
        # Another record's ciphertext pasted into a-msg-1 (same owner, same class).
        (
            "UPDATE vault_records SET sealed = (SELECT sealed FROM vault_records "
            "WHERE id = 'a-msg-2') WHERE id = 'a-msg-1'",
            get_req(ALICE, "a-msg-1"),
        ),
        # a-msg-1 relabelled as location data.
        (
            "UPDATE vault_records SET data_class = 'precise_location' WHERE id = 'a-msg-1'",
            get_req(ALICE, "a-msg-1", DataClass.PRECISE_LOCATION),
        ),
        # Alice's message handed to Bob's record.
        (
            "UPDATE vault_records SET sealed = (SELECT sealed FROM vault_records "
            "WHERE id = 'a-msg-1') WHERE id = 'b-msg-1'",
            get_req(BOB, "b-msg-1"),
        ),
        # Alice's record given to Bob as its owner.
        (
            "UPDATE vault_records SET owner = (SELECT owner FROM vault_records "
            "WHERE id = 'b-msg-1') WHERE id = 'a-msg-1'",
            get_req(BOB, "a-msg-1"),
        ),
        # Residency rewritten to move the record abroad on paper.
        (
            "UPDATE vault_records SET residency = 'XX' WHERE id = 'a-msg-1'",
            get_req(ALICE, "a-msg-1"),
        ),
    ],
    ids=["other-record", "other-class", "other-owner-ciphertext", "other-owner-row", "residency"],
)
def test_moved_ciphertext_does_not_decrypt(
    engine: sa.Engine, move: str, read: AccessRequest
) -> None:
    vault = make_vault(engine)
    seed(vault)
    with engine.begin() as conn:
        conn.execute(sa.text(move))
    with pytest.raises(VaultError, match="does not decrypt"):
        vault.get(read)


def test_swapped_wrapped_keys_do_not_unwrap(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    seed(vault)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE vault_data_keys SET wrapped = (SELECT wrapped FROM vault_data_keys "
                "WHERE owner = :bob) WHERE owner = :alice"
            ),
            {"bob": vault.owner_digest(BOB), "alice": vault.owner_digest(ALICE)},
        )
    with pytest.raises(VaultError, match="does not unwrap"):
        vault.get(get_req(ALICE, "a-msg-1"))


def test_rotate_kek_rewraps_keys_and_leaves_records_byte_identical(engine: sa.Engine) -> None:
    sink = ListSink()
    vault = make_vault(engine, sink=sink)
    seed(vault)
    before = dump_tables(engine)
    assert vault.rotate_kek("kek-2") == 2
    after = dump_tables(engine)
    assert after["vault_records"] == before["vault_records"]
    assert {row[1] for row in after["vault_data_keys"]} == {"kek-2"}
    assert {row[2] for row in after["vault_data_keys"]}.isdisjoint(
        {row[2] for row in before["vault_data_keys"]}
    )
    assert decode_record(sink.entries[-1])["kind"] == "kek_rotation"
    # The old KEK can now be retired: a vault holding only kek-2 reads everything.
    only_new = make_vault(engine, keks={"kek-2": KEKS["kek-2"]}, current_kek="kek-2")
    assert only_new.get(get_req(ALICE, "a-msg-1")).data == b"hello bob"
    assert vault.current_kek == "kek-2"
    vault.put(put_req(ALICE, "a-msg-3"), b"new key for new users too")


def test_a_data_key_under_an_unloaded_kek_is_a_clear_error(engine: sa.Engine) -> None:
    seed(make_vault(engine))
    without = make_vault(engine, keks={"kek-2": KEKS["kek-2"]}, current_kek="kek-2")
    with pytest.raises(VaultError, match="no KEK 'kek-1' loaded"):
        without.get(get_req(ALICE, "a-msg-1"))
    with pytest.raises(VaultError, match="no KEK 'kek-9'"):
        without.rotate_kek("kek-9")


def test_owner_hash_version_is_pinned_when_the_pseudonym_key_rotates(engine: sa.Engine) -> None:
    seed(make_vault(engine, hasher_version=1))
    rotated = make_vault(engine, hasher_version=2)
    assert rotated.get(get_req(ALICE, "a-msg-1")).data == b"hello bob"
    assert rotated.owner_digest(ALICE).startswith("k1:")


# -- the policy point decides every call --------------------------------------


def every_call(vault: Vault) -> list[tuple[str, object]]:
    return [
        ("put", lambda: vault.put(put_req(ALICE, "a-new"), b"new")),
        ("get", lambda: vault.get(get_req(ALICE, "a-msg-1"))),
        ("records_of", lambda: vault.records_of(user_req(ALICE, Action.READ, DataClass.MESSAGES))),
        ("export", lambda: vault.export(user_req(ALICE, Action.EXPORT))),
        ("erase", lambda: vault.erase(user_req(ALICE, Action.ERASE))),
    ]


def test_a_counting_authorizer_sees_exactly_one_decision_per_call(engine: sa.Engine) -> None:
    authorizer = CountingAuthorizer()
    vault = make_vault(engine, authorizer)
    seed(vault)
    for name, call in every_call(vault):
        before = len(authorizer.decisions)
        call()  # type: ignore[operator]
        assert len(authorizer.decisions) == before + 1, name


@pytest.mark.parametrize("authorizer_type", [CountingAuthorizer, SoftDenier, LyingAuthorizer])
def test_without_an_allow_for_that_request_nothing_is_returned_or_changed(
    engine: sa.Engine, authorizer_type: type[CountingAuthorizer]
) -> None:
    seed(make_vault(engine))
    authorizer = authorizer_type(allow=authorizer_type is not CountingAuthorizer)
    sink = ListSink()
    vault = make_vault(engine, authorizer, sink=sink)
    before = dump_tables(engine)
    for name, call in every_call(vault):
        with pytest.raises((AccessDenied, VaultError)) as info:
            call()  # type: ignore[operator]
        if authorizer_type is LyingAuthorizer:
            assert "different request" in str(info.value), name
        else:
            assert isinstance(info.value, AccessDenied), name
    assert dump_tables(engine) == before
    assert sink.entries == []
    assert len(authorizer.decisions) == 5


def test_the_gate_refuses_a_forged_decision_for_another_request(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    seed(vault)
    gate = vault._gate
    with engine.connect() as conn:
        key = vault._data_key(conn, vault.owner_digest(ALICE))
        rows = conn.execute(sa.text("SELECT * FROM vault_records WHERE id = 'a-msg-1'")).all()
    assert key is not None
    sealed = [(meta_of(r), r.sealed) for r in rows]
    forged = [
        Decision(get_req(BOB, "a-msg-1"), True, ("forged",), "f" * 64, 0),  # another owner
        Decision(get_req(ALICE, "a-msg-2"), True, ("forged",), "f" * 64, 0),  # another record
        Decision(get_req(ALICE, "a-msg-1", DataClass.CONTACT_DETAILS), True, (), "f" * 64, 0),
        Decision(put_req(ALICE, "a-msg-1"), True, ("forged",), "f" * 64, 0),  # a write
        Decision(user_req(ALICE, Action.ERASE), True, ("forged",), "f" * 64, 0),  # an erase
        Decision(user_req(ALICE, Action.READ, DataClass.PRECISE_LOCATION), True, (), "f" * 64, 0),
    ]
    for decision in forged:
        with pytest.raises(VaultError):
            gate.open(decision, key, sealed)
    denied = Decision(get_req(ALICE, "a-msg-1"), False, ("no",), "f" * 64, 0)
    with pytest.raises(AccessDenied):
        gate.open(denied, key, sealed)
    allowed = Decision(get_req(ALICE, "a-msg-1"), True, ("ok",), "f" * 64, 0)
    assert gate.open(allowed, key, sealed) == [b"hello bob"]


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v: v.get(put_req(ALICE, "a-msg-1")), "needs a read request"),
        (lambda v: v.put(get_req(ALICE, "x"), b"x"), "needs a write request"),
        (lambda v: v.export(user_req(ALICE, Action.READ)), "needs a export request"),
        (lambda v: v.get(get_req("", "a-msg-1")), "must name the owner"),
        (lambda v: v.put(put_req(ALICE, "x", DataClass.AGGREGATE_METRICS), b"x"), "personal"),
        (lambda v: v.put(put_req(ALICE, "vault/user/x"), b"x"), "record ids"),
        (lambda v: v.put(put_req(ALICE, "x" * 201), b"x"), "record ids"),
        (lambda v: v.put(put_req(ALICE, "x"), "text"), "bytes"),
        (
            lambda v: v.get(
                replace(
                    get_req(ALICE, "x"),
                    resource=replace(get_req(ALICE, "x").resource, residency=""),
                )
            ),
            "residency",
        ),
        (lambda v: v.erase(get_req(ALICE, "a-msg-1")), "needs a erase request"),
        (
            lambda v: v.erase(
                AccessRequest(CUSTODIAN, Action.ERASE, get_req(ALICE, "a").resource, "support")
            ),
            "user scope",
        ),
    ],
)
def test_malformed_requests_are_refused_before_any_decision(
    engine: sa.Engine, call: object, message: str
) -> None:
    authorizer = CountingAuthorizer()
    vault = make_vault(engine, authorizer)
    with pytest.raises(VaultError, match=message):
        call(vault)  # type: ignore[operator]
    assert authorizer.decisions == []


def test_record_ids_are_never_reused(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    vault.put(put_req(ALICE, "a-1"), b"first")
    with pytest.raises(VaultError, match="already exists"):
        vault.put(put_req(ALICE, "a-1"), b"second")
    assert vault.get(get_req(ALICE, "a-1")).data == b"first"


def test_unknown_records_and_users(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    seed(vault)
    with pytest.raises(RecordNotFound):
        vault.get(get_req(ALICE, "b-msg-1"))  # Bob's record is not Alice's
    with pytest.raises(RecordNotFound):
        vault.get(get_req("nobody", "x"))
    assert vault.records_of(user_req("nobody", Action.READ, DataClass.MESSAGES)) == []
    assert vault.export(user_req("nobody", Action.EXPORT))["records"] == []


# -- erasure -----------------------------------------------------------------------


def test_erase_shreds_the_key_logs_and_leaves_others(engine: sa.Engine) -> None:
    sink = ListSink()
    vault = make_vault(engine, sink=sink)
    seed(vault)
    owner = vault.owner_digest(ALICE)
    with engine.connect() as conn:
        backup = conn.execute(
            sa.text("SELECT * FROM vault_records WHERE owner = :o"), {"o": owner}
        ).all()
    receipt = vault.erase(user_req(ALICE, Action.ERASE))
    assert (receipt.owner, receipt.records) == (owner, 3)
    assert receipt.data_classes == ("messages", "precise_location")
    entry = decode_record(sink.entries[receipt.ledger_index])
    assert entry["kind"] == "erasure" and entry["owner"] == owner and entry["records"] == 3
    assert ALICE not in sink.entries[receipt.ledger_index].decode()
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT owner, wrapped FROM vault_data_keys")).all()
        left = conn.execute(sa.text("SELECT owner FROM vault_records")).scalars().all()
    assert owner not in {k.owner for k in keys} and owner not in left
    # Crypto-shredding: the backed-up ciphertext opens under no data key that is left.
    remaining = [vault._keyring.unwrap(k.wrapped, owner=k.owner, kek_id="kek-1") for k in keys]
    assert len(remaining) == 1
    for row in backup:
        for data_key in remaining:
            with pytest.raises(VaultError, match="does not decrypt"):
                open_record(data_key, meta_of(row), row.sealed)
    assert vault.get(get_req(BOB, "b-msg-1")).data == b"bob's secret"


def test_after_erasure_every_access_says_erased(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    seed(vault)
    owner = vault.owner_digest(ALICE)
    with engine.connect() as conn:
        backup = [
            dict(r._mapping)
            for r in conn.execute(
                sa.text("SELECT * FROM vault_records WHERE owner = :o"), {"o": owner}
            )
        ]
    vault.erase(user_req(ALICE, Action.ERASE))
    # Restoring Alice's ciphertext from a backup brings nothing back.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO vault_records (id, owner, data_class, residency, media_type, "
                "created_at, sealed) VALUES (:id, :owner, :data_class, :residency, :media_type, "
                ":created_at, :sealed)"
            ),
            backup,
        )
    for name, call in every_call(vault):
        with pytest.raises(ErasedError, match="erased"):
            call()  # type: ignore[operator]
        assert name


def test_a_failing_ledger_does_not_undo_erasure_and_a_retry_logs_it(engine: sa.Engine) -> None:
    class BrokenSink(ListSink):
        def append(self, entry: bytes) -> int:
            raise OSError("ledger disk full")

    seed(make_vault(engine))
    with pytest.raises(OSError, match="ledger"):
        make_vault(engine, sink=BrokenSink()).erase(user_req(ALICE, Action.ERASE))
    sink = ListSink()
    vault = make_vault(engine, sink=sink)
    with pytest.raises(ErasedError):
        vault.get(get_req(ALICE, "a-msg-1"))
    receipt = vault.erase(user_req(ALICE, Action.ERASE))  # completes the missing entry
    assert receipt.records == 3 and len(sink.entries) == 1
    assert decode_record(sink.entries[0])["records"] == 3
    with pytest.raises(ErasedError, match="already erased"):
        vault.erase(user_req(ALICE, Action.ERASE))


# -- export ------------------------------------------------------------------------


def test_export_is_a_complete_machine_readable_bundle(engine: sa.Engine) -> None:
    vault = make_vault(engine)
    seed(vault)
    vault.put(put_req(ALICE, "a-raw", DataClass.PRIVATE_VIDEO), b"\x00\xffvideo")
    vault.put(put_req(ALICE, "a-text", DataClass.SEARCH_HISTORY), b"cats", media_type="text/plain")
    bundle = json.loads(json.dumps(vault.export(user_req(ALICE, Action.EXPORT))))
    assert bundle["format"] == EXPORT_FORMAT and bundle["format_version"] == 1
    assert bundle["subject"] == ALICE and bundle["generated_at"].endswith("+00:00")
    assert bundle["data_classes"] == [
        "messages",
        "precise_location",
        "private_video",
        "search_history",
    ]
    by_id = {r["id"]: r for r in bundle["records"]}
    assert set(by_id) == {"a-msg-1", "a-msg-2", "a-loc-1", "a-raw", "a-text"}
    assert by_id["a-loc-1"]["data"] == {"lat": 52.52, "lon": 13.40}
    assert by_id["a-text"]["data"] == "cats"
    assert by_id["a-raw"]["data_base64"] == "AP92aWRlbw=="
    assert by_id["a-msg-1"]["category"] == "restricted" and by_id["a-msg-1"]["residency"] == "US"
    assert "bob's secret" not in json.dumps(bundle)
