"""A policy set, validated once and prepared for fast evaluation.

Preparing means three things, each of which must never change a decision:

1. **Validation** against the Cedar schema (strict mode), so no policy reads an
   attribute the request lacks; evaluation errors still deny (see ``_cedar``).
2. **Slicing** by (principal type, action): a policy whose scope cannot match a
   request's principal type or action is never satisfied by it, so leaving it
   out of that slice's :class:`cedarpy.PolicySet` gives the same answer faster.
3. **Which request facts the policies can see.** Cedar cannot read an entity
   id as a string; ids matter only through ``==``/``in`` against another
   request entity or an entity literal. So unless a policy names a literal of
   the type, ids are replaced by placeholders that keep exactly the equalities
   (see ``_cedar.facts_of``), and ``context.justification`` enters the cache
   key only when some policy reads an attribute of that name.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import cedarpy
from cedarpy import pst

from trustfeed.custody._access import Action, Role
from trustfeed.custody.policy._errors import InvalidPolicy

NAMESPACE = "Trustfeed"

#: Cedar entity type (without namespace) of each role's principals.
ROLE_TYPES: Mapping[Role, str] = {
    Role.CUSTODIAN: "Custodian",
    Role.OPERATOR: "Operator",
    Role.LICENSOR: "Licensor",
    Role.AUDITOR: "Auditor",
    Role.USER: "User",
    Role.MODERATOR: "Moderator",
    Role.SERVICE: "Service",
}
_PRINCIPAL_TYPES = frozenset(ROLE_TYPES.values())


def schema_text() -> str:
    """The shipped Cedar schema (package data)."""
    return _package_file("trustfeed.cedarschema")


def base_policies() -> str:
    """The shipped base policies (package data): the parties of ARCHITECTURE.md."""
    return _package_file("base.cedar")


#: The base set's forbids that hold under every policy set a custodian activates:
#: a new set may repeat them unchanged or leave them out, never weaken them
#: (ARCHITECTURE invariant 2 must not depend on who edits the policies).
HARD_LIMITS = (
    "licensor-no-personal-data",
    "licensor-release-only",
    "transfer-needs-grant",
    "train-domestic-only",
    "auditor-read-only",
)
_HARD_LIMITS: dict[str, pst.Template] | None = None


def hard_limits() -> dict[str, pst.Template]:
    """``@id`` → policy of each hard limit, taken from the shipped base set."""
    global _HARD_LIMITS
    if _HARD_LIMITS is None:
        policies = _parse(base_policies()).static_policies
        by_name = {p.annotations.get("id", ""): p for p in policies.values()}
        _HARD_LIMITS = {name: by_name[name] for name in HARD_LIMITS}
    return _HARD_LIMITS


def _package_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def policy_hash(text: str) -> str:
    """SHA-256 of the canonical policy text: what decision records name.

    Canonical = line endings normalised to LF and surrounding whitespace stripped,
    so the same file checked out on any platform has the same hash.
    """
    canonical = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_SCHEMA: cedarpy.Schema | None = None


def schema() -> cedarpy.Schema:
    """The parsed schema, parsed once per process."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = cedarpy.Schema.from_str(schema_text())
    return _SCHEMA


@dataclass(frozen=True)
class Sees:
    """Which request facts beyond types, actions and attributes the policies can read."""

    principal_ids: bool = False
    owner_ids: bool = False
    resource_ids: bool = False
    justification: bool = False


@dataclass(frozen=True)
class CompiledPolicies:
    """One validated policy set: its text, hash, full set, slices and what it sees."""

    text: str
    hash: str
    full: cedarpy.PolicySet
    slices: Mapping[tuple[str, str], cedarpy.PolicySet]
    ids: Mapping[str, str]  # Cedar's positional policy id → @id annotation
    sees: Sees
    size: int = field(default=0)

    def policies_for(self, principal_type: str, action: str, *, sliced: bool) -> cedarpy.PolicySet:
        """The policies that can match this principal type and action."""
        if not sliced:
            return self.full
        return self.slices[(principal_type, action)]


def compile_policies(text: str) -> CompiledPolicies:
    """Validate ``text`` against the schema and prepare it; InvalidPolicy if it fails.

    The :data:`HARD_LIMITS` always apply, whether ``text`` repeats them or not.
    An empty text is valid: with only the limits (all forbids) it denies everything.
    The set's hash is that of ``text``; the limits are fixed by the code version.
    """
    tree = _parse(text)
    if tree.templates or tree.template_links:
        raise InvalidPolicy("policy templates are not supported; write static policies")
    _validate(text)
    policies = _with_hard_limits(dict(tree.static_policies))
    ids = _annotation_ids(policies)
    slices = {
        (ptype, action.value): _subset(policies, ptype, action.value)
        for ptype in _PRINCIPAL_TYPES
        for action in Action
    }
    return CompiledPolicies(
        text=text,
        hash=policy_hash(text),
        full=cedarpy.PolicySet.from_pst(
            pst.PolicySet(templates={}, static_policies=policies, template_links=())
        ),
        slices=slices,
        ids=ids,
        sees=_sees(policies.values()),
        size=len(policies),
    )


def _with_hard_limits(policies: dict[str, pst.Template]) -> dict[str, pst.Template]:
    """Add every hard limit the set leaves out; refuse a set that changes one."""
    named = {p.annotations.get("id", ""): p for p in policies.values()}
    for name, limit in hard_limits().items():
        if name not in named:
            key = f"hard-limit:{name}"
            policies[key] = dataclasses.replace(limit, id=key)
        elif dataclasses.replace(named[name], id=limit.id) != limit:
            raise InvalidPolicy(f"hard limit @id({name!r}) cannot be changed, only kept or omitted")
    return policies


def _parse(text: str) -> pst.PolicySet:
    try:
        return cedarpy.PolicySet.from_str(text).to_pst()
    except ValueError as exc:
        raise InvalidPolicy(f"policy text does not parse: {_first_line(exc)}") from exc


def _validate(text: str) -> None:
    if not text.strip():
        return
    try:
        result = cedarpy.validate_policies(text, schema())
    except ValueError as exc:
        raise InvalidPolicy(f"policy text cannot be validated: {_first_line(exc)}") from exc
    if not result.validation_passed:
        names = result.id_annotations_by_policy_id
        problems = [
            f"{names.get(err.policy_id, err.policy_id) or '?'}: {err.error}"
            for err in result.errors
        ]
        raise InvalidPolicy("policy set does not match the schema: " + "; ".join(problems))


def _annotation_ids(policies: Mapping[str, pst.Template]) -> dict[str, str]:
    """Every policy must carry a unique ``@id``: decision reasons name policies by it."""
    ids: dict[str, str] = {}
    seen: set[str] = set()
    for cedar_id, policy in policies.items():
        name = policy.annotations.get("id", "")
        if not name:
            raise InvalidPolicy(f'policy {cedar_id} ({policy.effect}) has no @id("…") annotation')
        if name in seen:
            raise InvalidPolicy(f"two policies share @id({name!r})")
        seen.add(name)
        ids[cedar_id] = name
    return ids


def _subset(policies: Mapping[str, pst.Template], ptype: str, action: str) -> cedarpy.PolicySet:
    chosen = {
        cedar_id: policy
        for cedar_id, policy in policies.items()
        if _principal_may_match(policy.principal, ptype)
        and _action_may_match(policy.action, action)
    }
    tree = pst.PolicySet(templates={}, static_policies=chosen, template_links=())
    return cedarpy.PolicySet.from_pst(tree)


def _principal_may_match(scope: pst.PrincipalOrResourceConstraint, ptype: str) -> bool:
    """Conservative: False only when the scope can never hold for this type.

    trustfeed entities have no parents, so ``principal in E`` holds only for E itself.
    """
    if isinstance(scope, pst.ScopeIs | pst.ScopeIsIn):
        return _is_ours(scope.entity_type, ptype)
    if isinstance(scope, pst.ScopeEq | pst.ScopeIn) and isinstance(scope.entity, pst.EntityUid):
        return _is_ours(scope.entity.type, ptype)
    return True


def _action_may_match(scope: pst.ActionConstraint, action: str) -> bool:
    if isinstance(scope, pst.ActionEq):
        return scope.entity.id == action
    if isinstance(scope, pst.ActionIn):
        return any(uid.id == action for uid in scope.entities)
    return True


def _is_ours(entity_type: pst.EntityType, basename: str) -> bool:
    return entity_type.basename == basename and entity_type.namespace == (NAMESPACE,)


def _sees(policies: Iterable[pst.Template]) -> Sees:
    policies = tuple(policies)
    literal_types = {uid.type.basename for uid in pst.entity_uids(policies)} - {"Action"}
    return Sees(
        principal_ids=bool(literal_types & _PRINCIPAL_TYPES),
        owner_ids="User" in literal_types,
        resource_ids="Resource" in literal_types,
        justification="justification" in _attribute_names(policies),
    )


def _attribute_names(policies: tuple[pst.Template, ...]) -> set[str]:
    """Every attribute name read (``.x`` or ``has x``) anywhere in the policies."""
    names: set[str] = set()
    stack: list[object] = list(policies)
    while stack:
        node = stack.pop()
        if isinstance(node, pst.GetAttr):
            names.add(node.attr)
        elif isinstance(node, pst.HasAttr):
            names.update(node.attrs)
        elif isinstance(node, pst.Record):
            names.update(node.fields)  # a record literal compared with context.grant
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, tuple):
            stack.extend(node)
        elif hasattr(node, "__dataclass_fields__") and not isinstance(node, type):
            stack.extend(getattr(node, name) for name in node.__dataclass_fields__)
    return names


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
