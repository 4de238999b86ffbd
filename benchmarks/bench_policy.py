"""Policy decision latency and logged throughput, 200 policies, side by side.

Usage: ``python benchmarks/bench_policy.py [--policies 200] [--requests 20000]
[--batch 1024] [--threads 4] [--seed 0] [--store DIR]``

Rows, all in the same run and on the same requests:

* ``cedarpy text/call``: ``cedarpy.is_authorized`` parsing the policy text every call;
* ``cedarpy pre-parsed``: a ``PolicySet`` and an ``Entities`` handle parsed once;
* ``PolicyPoint reference``: no cache, full policy set, exact ids;
* ``PolicyPoint uncached``: no cache, policies sliced by principal type and action;
* ``PolicyPoint cached``: the default (slices + decision cache);
* ``PyCasbin ABAC``: a Casbin model with the same rules (role, action, category,
  purpose; deny overrides), for scale.

Latency rows record to an in-memory sink, so they time the decision. The
``decisions/s`` rows record to the real ledger on an SQLite file: one ``decide``
after another (a durable commit each), ``decide`` from several threads (the
ledger's group commit), and ``decide_many`` batches (one commit per batch).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cedarpy

from trustfeed.custody import (
    AccessRequest,
    Action,
    DataClass,
    KeyedHasher,
    Principal,
    Resource,
    Role,
)
from trustfeed.custody.policy import PolicyPoint, base_policies
from trustfeed.custody.policy._cedar import _cedar_request, facts_of
from trustfeed.custody.policy._compiled import compile_policies

DOMESTIC = "US"
PURPOSES = ["feed_serving", "ingest", "training", "ranking", "moderation", "self", "watch",
            "metrics_release", "transparency_report", "audit"]  # fmt: skip
A = "Trustfeed::Action"


def extra_policies(count: int) -> str:
    """``count`` realistic extra policies: per-team service permits, per-purpose
    operator permits and forbids, per-campaign export bans, regional holds."""
    out = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            out.append(
                f'@id("team-{i}-analytics")\n'
                f'permit (principal == Trustfeed::Service::"team-{i}-svc",\n'
                f'        action == {A}::"read", resource)\n'
                f'when {{ resource.category == "pseudonymous"\n'
                f'       && context.purpose == "team_{i}_analytics" }};'
            )
        elif kind == 1:
            out.append(
                f'@id("ops-purpose-{i}")\n'
                f"permit (principal is Trustfeed::Operator,\n"
                f'        action in [{A}::"read", {A}::"write"], resource)\n'
                f'when {{ resource.data_class == "public_profile"\n'
                f'       && context.purpose == "ops_task_{i}" }};'
            )
        elif kind == 2:
            out.append(
                f'@id("no-export-campaign-{i}")\n'
                f'forbid (principal, action == {A}::"export", resource)\n'
                f'when {{ context.purpose == "campaign_{i}" }};'
            )
        else:
            out.append(
                f'@id("regional-hold-{i}")\n'
                f"forbid (principal is Trustfeed::Operator, action, resource)\n"
                f'when {{ resource.residency == "R{i}" && resource.personal }};'
            )
    return "\n\n".join(out)


def policy_text(total: int) -> str:
    base = base_policies()
    return base + "\n\n" + extra_policies(total - compile_policies(base).size)


def workload(n: int, seed: int) -> list[AccessRequest]:
    rng = random.Random(seed)
    principals = [Principal(f"user-{i}", Role.USER, DOMESTIC) for i in range(40)]
    principals += [Principal(f"op-{i}", Role.OPERATOR, DOMESTIC) for i in range(5)]
    principals += [Principal(f"team-{4 * i}-svc", Role.SERVICE, DOMESTIC) for i in range(5)]
    principals += [Principal("custodian-1", Role.CUSTODIAN, DOMESTIC)]
    principals += [Principal("licensor-1", Role.LICENSOR, "XX")]
    principals += [
        Principal("auditor-1", Role.AUDITOR, DOMESTIC),
        Principal("mod-1", Role.MODERATOR, DOMESTIC),
    ]
    requests = []
    for _ in range(n):
        who = rng.choice(principals)
        owner = rng.choice([who.id, f"user-{rng.randrange(1000)}", None])
        resource = Resource(
            f"res-{rng.randrange(100_000)}", rng.choice(list(DataClass)), DOMESTIC, owner
        )
        requests.append(
            AccessRequest(who, rng.choice(list(Action)), resource, rng.choice(PURPOSES))
        )
    return requests


class NullSink:
    def __init__(self) -> None:
        self.n = 0

    def append(self, entry: bytes) -> int:
        self.n += 1
        return self.n - 1

    def append_many(self, entries: Sequence[bytes]) -> list[int]:
        start = self.n
        self.n += len(entries)
        return list(range(start, self.n))


def latencies(
    fn: Callable[[AccessRequest], object], requests: Sequence[AccessRequest]
) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for request in requests:
        start = clock()
        fn(request)
        out.append((clock() - start) / 1000.0)
    return out


def row(name: str, samples: list[float] | None, rate: float | None) -> str:
    if samples:
        cut = statistics.quantiles(samples, n=100)
        p50, p99 = f"{statistics.median(samples):9.1f}", f"{cut[98]:9.1f}"
    else:
        p50 = p99 = f"{'-':>9}"
    per_s = f"{rate:12,.0f}" if rate else f"{'-':>12}"
    return f"{name:<52} {p50} {p99} {per_s}"


def cedar_inputs(point: PolicyPoint, request: AccessRequest) -> tuple[dict, str]:
    facts = facts_of(request, point._state.policies, grant_active=False, grant_transfer=False,
                     exact_ids=True)  # fmt: skip
    return _cedar_request(facts, DOMESTIC)


def bench_raw_cedar(text: str, point: PolicyPoint, requests: Sequence[AccessRequest]) -> list[str]:
    inputs = [cedar_inputs(point, r) for r in requests]
    slow = inputs[: max(200, len(inputs) // 20)]
    text_times = latencies(lambda i: cedarpy.is_authorized(i[0], text, i[1]), slow)  # type: ignore[arg-type]
    policy_set = cedarpy.PolicySet.from_str(text)
    import json

    all_entities = {json.dumps(json.loads(e)[0]["uid"]): json.loads(e)[0] for _, e in inputs}
    entities = cedarpy.Entities.from_json_str(json.dumps(list(all_entities.values())))
    parsed = latencies(lambda i: cedarpy.is_authorized(i[0], policy_set, entities), inputs)  # type: ignore[arg-type]
    return [
        row("cedarpy text/call", text_times, None),
        row("cedarpy pre-parsed PolicySet+Entities", parsed, None),
    ]


def casbin_enforcer(text_rules: int):
    import casbin

    conf = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = role, act, category, purpose, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.sub.role == p.role && (p.act == "*" || r.act == p.act) \
  && (p.category == "*" || r.obj.category == p.category) \
  && (p.purpose == "*" || r.sub.purpose == p.purpose)
"""
    m = casbin.model.Model()
    m.load_model_from_text(conf)
    enforcer = casbin.Enforcer(m)
    rules = [
        ("licensor", "*", "restricted", "*", "deny"), ("licensor", "*", "allowable", "*", "deny"),
        ("licensor", "*", "pseudonymous", "*", "deny"),
        ("licensor", "release", "aggregate", "metrics_release", "allow"),
        ("operator", "read", "allowable", "feed_serving", "allow"),
        ("operator", "read", "pseudonymous", "feed_serving", "allow"),
        ("operator", "write", "allowable", "ingest", "allow"),
        ("operator", "write", "pseudonymous", "ingest", "allow"),
        ("custodian", "train", "pseudonymous", "training", "allow"),
        ("custodian", "approve", "*", "*", "allow"), ("auditor", "read", "aggregate", "*", "allow"),
        ("moderator", "read", "allowable", "moderation", "allow"),
        ("service", "read", "pseudonymous", "ranking", "allow"),
        ("user", "read", "allowable", "watch", "allow"),
    ]  # fmt: skip
    i = 0
    while len(rules) < text_rules:
        rules.append(("service", "read", "pseudonymous", f"team_{i}_analytics", "allow"))
        rules.append(("operator", "export", "*", f"campaign_{i}", "deny"))
        i += 1
    enforcer.add_policies(rules[:text_rules])
    return enforcer


class Sub:
    def __init__(self, role: str, purpose: str) -> None:
        self.role, self.purpose = role, purpose


class Obj:
    def __init__(self, category: str) -> None:
        self.category = category


def bench_casbin(n_rules: int, requests: Sequence[AccessRequest]) -> str:
    enforcer = casbin_enforcer(n_rules)
    sample = requests[: max(200, len(requests) // 20)]
    inputs = [(Sub(r.principal.role.value, r.purpose), Obj(r.resource.data_class.category.value),
               r.action.value) for r in sample]  # fmt: skip
    return row(
        "PyCasbin ABAC (same rules)", latencies(lambda i: enforcer.enforce(*i), inputs), None
    )


def open_point(text: str, sink: object, url: str = "sqlite://", **kwargs) -> PolicyPoint:
    return PolicyPoint(url=url, sink=sink, hasher=KeyedHasher.generate(), domestic=DOMESTIC,  # type: ignore[arg-type]
                       policy_text=text, **kwargs)  # fmt: skip


def bench_points(text: str, requests: Sequence[AccessRequest]) -> list[str]:
    lines = []
    some = requests[: max(500, len(requests) // 10)]
    with open_point(text, NullSink(), cache_size=0, slice_policies=False) as p:
        lines.append(row("PolicyPoint reference (no cache/slice)", latencies(p.decide, some), None))
    with open_point(text, NullSink(), cache_size=0) as p:
        lines.append(row("PolicyPoint uncached (sliced)", latencies(p.decide, some), None))
    with open_point(text, NullSink()) as p:
        latencies(p.decide, requests)  # warm the cache: steady state
        lines.append(row("PolicyPoint cached", latencies(p.decide, requests), None))
    return lines


def bench_logged(
    text: str, requests: Sequence[AccessRequest], batch: int, threads: int, store: Path
) -> list[str]:
    from trustfeed.custody.ledger import Ledger

    lines = []
    for name, run in (
        ("decide, 1 thread", lambda p, rs: [p.decide(r) for r in rs]),
        (f"decide, {threads} threads", lambda p, rs: _threaded(p, rs, threads)),
        (f"decide_many(batch={batch})", lambda p, rs: _batched(p, rs, batch)),
    ):  # fmt: skip
        url = f"sqlite:///{store / (name.replace(' ', '_').replace(',', '') + '.db')}"
        ledger = Ledger.open(url, origin="bench.local/ledger")
        try:
            with open_point(text, ledger, url=url) as point:
                point.decide_many(requests)  # warm the cache (logged, not timed): steady state
                subset = requests if "many" in name else requests[: max(500, len(requests) // 10)]
                start = time.perf_counter()
                run(point, subset)
                elapsed = time.perf_counter() - start
                lines.append(
                    row(f"PolicyPoint cached + Ledger: {name}", None, len(subset) / elapsed)
                )
        finally:
            ledger.close()
    return lines


def _batched(point: PolicyPoint, requests: Sequence[AccessRequest], batch: int) -> None:
    for start in range(0, len(requests), batch):
        point.decide_many(requests[start : start + batch])


def _threaded(point: PolicyPoint, requests: Sequence[AccessRequest], threads: int) -> None:
    chunks = [requests[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda c=c: [point.decide(r) for r in c]) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, default=None, help="directory for the SQLite ledgers")
    args = parser.parse_args()
    text = policy_text(args.policies)
    requests = workload(args.requests, args.seed)
    print(f"{compile_policies(text).size} policies, {len(requests)} requests, seed {args.seed}")
    print(f"{'':<52} {'p50 µs':>9} {'p99 µs':>9} {'decisions/s':>12}")
    with open_point(text, NullSink()) as point:
        lines = bench_raw_cedar(text, point, requests)
    lines += bench_points(text, requests)
    lines.append(bench_casbin(args.policies, requests))
    for line in lines:
        print(line)
    with tempfile.TemporaryDirectory() as tmp:
        for line in bench_logged(text, requests, args.batch, args.threads, args.store or Path(tmp)):
            print(line)


if __name__ == "__main__":
    main()
