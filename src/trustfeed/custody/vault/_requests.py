"""Building vault requests: one resource per record, one per whole user.

A record request names the record id as the resource id. A user request
(list, export, erase) names ``vault/user/<owner>``; export and erase cover
every class the user has, so they name :data:`SUBJECT_SCOPE_CLASS`
(``subject_data``, restricted): a policy that allows them allows the most
sensitive data, which is what they touch.
"""

from __future__ import annotations

from trustfeed.custody._access import AccessRequest, Action, DataClass, Principal, Resource

#: Purposes the vault's own callers use (GDPR Art. 15/20 and Art. 17).
PURPOSE_SUBJECT_ACCESS = "subject_access"
PURPOSE_ERASURE = "erasure"
SUBJECT_SCOPE_CLASS = DataClass.SUBJECT_DATA
USER_SCOPE_PREFIX = "vault/user/"
MAX_RECORD_ID = 200


def user_scope(owner: str) -> str:
    """The resource id of everything the vault holds about ``owner``."""
    return f"{USER_SCOPE_PREFIX}{owner}"


def record_request(
    principal: Principal,
    action: Action,
    *,
    owner: str,
    record_id: str,
    data_class: DataClass,
    residency: str,
    purpose: str,
    justification: str = "",
    grant_id: str | None = None,
) -> AccessRequest:
    """A request about one record (``put`` with WRITE, ``get`` with READ)."""
    resource = Resource(record_id, data_class, residency, owner=owner)
    return AccessRequest(principal, action, resource, purpose, justification, grant_id)


def user_request(
    principal: Principal,
    action: Action,
    *,
    owner: str,
    residency: str,
    purpose: str,
    justification: str = "",
    data_class: DataClass = SUBJECT_SCOPE_CLASS,
    grant_id: str | None = None,
) -> AccessRequest:
    """A request about all of a user's records: ``records_of`` (a class), ``export``, ``erase``."""
    resource = Resource(user_scope(owner), data_class, residency, owner=owner)
    return AccessRequest(principal, action, resource, purpose, justification, grant_id)
