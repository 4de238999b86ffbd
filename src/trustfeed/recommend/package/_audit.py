"""Tracing a model back through the ledger: the auditor's ``trustfeed audit lineage``.

Reads only the ledger (what an auditor can verify), never the custodian's
tables: the training run that produced the model hash, the package approval
it names, the policy decisions it names, and an inclusion proof of each of
those entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trustfeed.custody import VerificationError, decode_record
from trustfeed.custody.ledger import Ledger, Verifier, open_checkpoint, verify_inclusion
from trustfeed.recommend.package._errors import LineageError
from trustfeed.recommend.package._lineage import RUN_KIND, LineageRecord
from trustfeed.recommend.package._review import when

DECISION_KIND = "package_decision"
_CHUNK = 10_000


@dataclass
class LineageReport:
    """What ``audit lineage`` found; ``problems`` lists every check that failed."""

    run: LineageRecord
    runs_with_hash: int
    approval: dict[str, Any] | None
    later_decisions: list[tuple[int, dict[str, Any]]]
    parent_index: int | None
    manifest_hash_ok: bool
    proved_size: int
    proved_root: bytes
    proved_against: str
    included: list[int] = field(default_factory=list)
    uncovered: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def trace_lineage(
    ledger: Ledger, model_hash: str, *, checkpoint_key: Verifier | None = None
) -> LineageReport:
    """Find and check the lineage of ``model_hash``; LineageError when there is none.

    1. Find the latest ``training_run`` record with this model hash.
    2. Its ``package_approval`` entry must approve the same package, earlier.
    3. Its data manifest must hash to the recorded hash and be all domestic.
    4. Every referenced entry (run, approval, policy decisions, parent run)
       must be included in the tree: against the current root, or with
       ``checkpoint_key`` against the latest checkpoint it signed.
    """
    size = ledger.size()
    runs, decisions = _scan(ledger, size, model_hash)
    if not runs:
        raise LineageError(f"no training run in the ledger produced model {model_hash}")
    index, record = runs[-1]
    run = LineageRecord.from_record(index, record)
    report = _report(ledger, run, len(runs), decisions, size)
    _check_approval(report, ledger)
    _check_manifest(report)
    if run.parent_model is not None and report.parent_index is None:
        report.problems.append(f"no earlier training run produced the parent {run.parent_model}")
    _prove(report, ledger, size, checkpoint_key)
    return report


def _scan(
    ledger: Ledger, size: int, model_hash: str
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, Any]]]]:
    runs, decisions = [], []
    needle = model_hash.encode()
    for index, entry in _entries(ledger, size):
        # A cheap byte test first: most entries are access decisions.
        if b'"kind":"training_run"' in entry and needle in entry:
            record = _decode(entry)
            if record.get("kind") == RUN_KIND and record.get("model_hash") == model_hash:
                runs.append((index, record))
        elif b'"kind":"package_decision"' in entry:
            decisions.append((index, _decode(entry)))
    return runs, decisions


def _decode(entry: bytes) -> dict[str, Any]:
    try:
        return decode_record(entry)
    except ValueError:  # not one of our records: it cannot be what we look for
        return {}


def _entries(ledger: Ledger, size: int) -> Iterator[tuple[int, bytes]]:
    for start in range(0, size, _CHUNK):
        stop = min(size, start + _CHUNK)
        yield from enumerate(ledger.entries(start, stop), start)


def _report(
    ledger: Ledger,
    run: LineageRecord,
    count: int,
    decisions: list[tuple[int, dict[str, Any]]],
    size: int,
) -> LineageReport:
    mine = [(i, d) for i, d in decisions if d.get("package") == run.package_id]
    return LineageReport(
        run=run,
        runs_with_hash=count,
        approval=None,
        later_decisions=[(i, d) for i, d in mine if i > (run.package_approval or -1)],
        parent_index=_parent_index(ledger, run, size),
        manifest_hash_ok=run.data_manifest.digest() == run.data_manifest_hash,
        proved_size=size,
        proved_root=b"",
        proved_against="",
    )


def _parent_index(ledger: Ledger, run: LineageRecord, size: int) -> int | None:
    if run.parent_model is None:
        return None
    parents, _ = _scan(ledger, min(size, run.ledger_index), run.parent_model)
    return parents[-1][0] if parents else None


def _check_approval(report: LineageReport, ledger: Ledger) -> None:
    run = report.run
    where = run.package_approval
    if where is None:
        report.problems.append("the run names no package approval")
        return
    if not 0 <= where < run.ledger_index:
        report.problems.append(f"the approval it names (entry {where}) is not before the run")
        return
    record = _decode(ledger.entry(where))
    if record.get("kind") != DECISION_KIND or record.get("package") != run.package_id:
        report.problems.append(f"entry {where} is not a decision on package {run.package_id}")
    elif record.get("decision") != "approved":
        report.problems.append(f"entry {where} records a {record.get('decision')}, not approval")
    else:
        report.approval = record


def _check_manifest(report: LineageReport) -> None:
    manifest = report.run.data_manifest
    if not report.manifest_hash_ok:
        report.problems.append("the data manifest does not hash to the recorded manifest hash")
    for part in manifest.foreign():
        report.problems.append(
            f"partition {part.label()} resides in {part.residency!r}, not {manifest.domestic!r}"
        )


def _prove(report: LineageReport, ledger: Ledger, size: int, key: Verifier | None) -> None:
    run = report.run
    wanted = [run.ledger_index, *run.policy_decisions]
    for extra in (run.package_approval, report.parent_index):
        if extra is not None and 0 <= extra < size:
            wanted.append(extra)
    report.proved_size, report.proved_root = size, ledger.root_hash(size)
    report.proved_against = "the current root"
    if key is not None:
        _use_checkpoint(report, ledger, key)
    for index in sorted(set(wanted)):
        if not 0 <= index < size:
            raise VerificationError(
                f"the run refers to entry {index}, outside the ledger", index=index
            )
        if index >= report.proved_size:
            report.uncovered.append(index)
            continue
        proof = ledger.inclusion_proof(index, report.proved_size)
        entry = ledger.entry(index)
        try:
            verify_inclusion(entry, index, report.proved_size, proof, report.proved_root)
        except VerificationError as exc:
            raise VerificationError(f"entry {index} is not included: {exc}", index=index) from exc
        report.included.append(index)


def _use_checkpoint(report: LineageReport, ledger: Ledger, key: Verifier) -> None:
    note = ledger.latest_checkpoint()
    if note is None:
        raise VerificationError("the ledger has no signed checkpoint to prove against")
    checkpoint, _ = open_checkpoint(note, [key])
    report.proved_size, report.proved_root = checkpoint.size, checkpoint.root
    report.proved_against = f"the checkpoint signed by {key.name}"


# ----------------------------------------------------------------------------- rendering


def render_lineage(report: LineageReport) -> str:
    """The report as ``trustfeed audit lineage`` prints it."""
    run = report.run
    lines = [
        f"model            {run.model_hash}",
        f"training run     ledger entry {run.ledger_index}, {when(run.at)}"
        + (
            f" ({report.runs_with_hash} runs recorded this hash)"
            if report.runs_with_hash > 1
            else ""
        ),
        f"package          {run.package_id}",
        *_approval_lines(report),
        *_manifest_lines(report),
        f"code version     {run.code_version}",
        *_evaluation_lines(run.evaluation),
        f"parent model     {_parent(report)}",
    ]
    if run.policy_decisions:
        lines.append(f"policy decisions ledger entries {_indexes(run.policy_decisions)}")
    lines += _inclusion_lines(report)
    if report.problems:
        lines += ["PROBLEMS:", *(f"  - {p}" for p in report.problems)]
    return "\n".join(lines) + "\n"


def _approval_lines(report: LineageReport) -> list[str]:
    approval = report.approval
    if approval is None:
        return ["  approved       NO (see problems)"]
    lines = [
        f"  name           {approval.get('name')} {approval.get('version')}",
        f"  approved       by {approval.get('by')} at {when(approval.get('at', 0))} "
        f"(ledger entry {report.run.package_approval})",
        f"  signed by      {', '.join(approval.get('signed_by') or []) or '-'}",
    ]
    later = [(i, d) for i, d in report.later_decisions if i != report.run.package_approval]
    if not later:
        return [*lines, "  since then     no later decision: still approved"]
    index, last = later[-1]
    reason = f": {last.get('reason')}" if last.get("reason") else ""
    return [
        *lines,
        f"  since then     {last.get('decision')} by {last.get('by')} at "
        f"{when(last.get('at', 0))} (ledger entry {index}){reason}",
    ]


def _manifest_lines(report: LineageReport) -> list[str]:
    manifest = report.run.data_manifest
    check = "recomputed: matches" if report.manifest_hash_ok else "recomputed: MISMATCH"
    foreign = manifest.foreign()
    residency = "all domestic" if not foreign else f"{len(foreign)} NOT domestic"
    lines = [
        f"data manifest    sha256 {report.run.data_manifest_hash} ({check})",
        f"  partitions     {len(manifest.partitions)}, {manifest.rows} rows, "
        f"{residency} ({manifest.domestic})",
    ]
    for p in manifest.partitions:
        key = f"  key v{p.key_version}" if p.key_version is not None else ""
        lines.append(f"  {p.label():<14} {p.residency}  rows {p.rows}  sha256 {p.sha256}{key}")
    return lines


def _evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return ["evaluation       none recorded"]
    items = sorted(evaluation.items())
    first, *rest = (f"{k}: {_value(v)}" for k, v in items)
    return [f"evaluation       {first}", *(f"                 {r}" for r in rest)]


def _value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _parent(report: LineageReport) -> str:
    parent = report.run.parent_model
    if parent is None:
        return "none (trained from the package)"
    where = report.parent_index
    return f"{parent} (ledger entry {where})" if where is not None else f"{parent} (NOT FOUND)"


def _inclusion_lines(report: LineageReport) -> list[str]:
    lines = [
        f"inclusion        entries {_indexes(report.included)} included in the tree of size "
        f"{report.proved_size}, root {report.proved_root.hex()} ({report.proved_against})"
    ]
    if report.uncovered:
        lines.append(
            f"                 entries {_indexes(report.uncovered)} are newer than that "
            "checkpoint; prove them against a later one"
        )
    return lines


def _indexes(indexes: Any) -> str:
    return ", ".join(str(i) for i in indexes) or "none"
