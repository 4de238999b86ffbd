"""From an :class:`AccessRequest` to a Cedar request, and back to allow/deny.

Everything Cedar is shown is a function of one tuple, the request's
:data:`Facts`. That makes the decision cache safe by construction: the cache key
*is* the input of the evaluation, so a cached answer is the answer the engine
would give. Ids the policies cannot tell apart (see ``_compiled``) are replaced
by placeholders that keep the one relation policies can test, "the resource's
owner is the requesting user".
"""

from __future__ import annotations

import json
from typing import NamedTuple

import cedarpy

from trustfeed.custody._access import AccessRequest, DataClass, Role
from trustfeed.custody.policy._compiled import NAMESPACE, ROLE_TYPES, CompiledPolicies

_PRINCIPAL_PLACEHOLDER = "~principal"
_RESOURCE_PLACEHOLDER = "~resource"
_OTHER_OWNER_SUFFIX = "~other-owner"

#: Reason recorded when evaluation failed: the request is denied (fail closed).
EVALUATION_ERROR = "evaluation-error"


class Facts(NamedTuple):
    """The whole input of one evaluation; also the decision cache key."""

    principal_type: str
    principal: str
    action: str
    resource: str
    data_class: str
    residency: str
    owner: str | None
    purpose: str
    jurisdiction: str
    justification: str
    grant_active: bool
    grant_transfer: bool


class Outcome(NamedTuple):
    allowed: bool
    reasons: tuple[str, ...]


def facts_of(
    request: AccessRequest,
    policies: CompiledPolicies,
    *,
    grant_active: bool,
    grant_transfer: bool,
    exact_ids: bool,
) -> Facts:
    """The facts of ``request`` that ``policies`` can read.

    ``exact_ids`` keeps every real id (the uncached reference path).
    """
    sees = policies.sees
    principal = request.principal
    resource = request.resource
    principal_id = principal.id if exact_ids or sees.principal_ids else _PRINCIPAL_PLACEHOLDER
    return Facts(
        principal_type=ROLE_TYPES[principal.role],
        principal=principal_id,
        action=request.action.value,
        resource=resource.id if exact_ids or sees.resource_ids else _RESOURCE_PLACEHOLDER,
        data_class=resource.data_class.value,
        residency=resource.residency,
        owner=_owner_id(request, principal_id, exact=exact_ids or sees.owner_ids),
        purpose=request.purpose,
        jurisdiction=principal.jurisdiction,
        justification=request.justification if exact_ids or sees.justification else "",
        grant_active=grant_active,
        grant_transfer=grant_transfer,
    )


def _owner_id(request: AccessRequest, principal_id: str, *, exact: bool) -> str | None:
    owner = request.resource.owner
    if owner is None or exact:
        return owner
    if request.principal.role is Role.USER and owner == request.principal.id:
        return principal_id
    # Differs from principal_id by construction, and no policy names a User literal.
    return principal_id + _OTHER_OWNER_SUFFIX


def evaluate(facts: Facts, policies: CompiledPolicies, *, domestic: str, sliced: bool) -> Outcome:
    """Ask Cedar. Any evaluation error denies: an erroring forbid must not fail open."""
    policy_set = policies.policies_for(facts.principal_type, facts.action, sliced=sliced)
    request, entities = _cedar_request(facts, domestic)
    result = cedarpy.is_authorized(request, policy_set, entities)
    diagnostics = result.diagnostics
    names = diagnostics.id_annotations_by_reason
    reasons = tuple(sorted(names.get(r) or r for r in diagnostics.reasons))
    if diagnostics.errors:
        return Outcome(False, (EVALUATION_ERROR, *reasons))
    return Outcome(result.allowed, reasons)


def _cedar_request(facts: Facts, domestic: str) -> tuple[dict[str, object], str]:
    resource_uid = {"type": f"{NAMESPACE}::Resource", "id": facts.resource}
    attrs: dict[str, object] = {
        "data_class": facts.data_class,
        "category": _category(facts.data_class),
        "personal": _personal(facts.data_class),
        "residency": facts.residency,
    }
    if facts.owner is not None:
        attrs["owner"] = {"__entity": {"type": f"{NAMESPACE}::User", "id": facts.owner}}
    request = {
        "principal": {"type": f"{NAMESPACE}::{facts.principal_type}", "id": facts.principal},
        "action": {"type": f"{NAMESPACE}::Action", "id": facts.action},
        "resource": resource_uid,
        "context": {
            "purpose": facts.purpose,
            "jurisdiction": facts.jurisdiction,
            "domestic": domestic,
            "justification": facts.justification,
            "grant": {"active": facts.grant_active, "transfer": facts.grant_transfer},
        },
    }
    entities = json.dumps([{"uid": resource_uid, "attrs": attrs, "parents": []}])
    return request, entities


def _category(data_class: str) -> str:
    return DataClass(data_class).category.value


def _personal(data_class: str) -> bool:
    return DataClass(data_class).personal
