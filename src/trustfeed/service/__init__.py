"""The running platform behind ``trustfeed serve`` and ``trustfeed demo``.

:class:`Platform` assembles custody, content security, the durable event log
and the live model, and owns every operation a party can perform (each with
its policy check); ``trustfeed.api`` puts HTTP in front of it.
"""

from trustfeed.service._bulk import PrescoredClassifier, Upload, import_catalog, prescored
from trustfeed.service._catalog import Catalog, CatalogItem
from trustfeed.service._errors import Conflict, Forbidden, NotFound, ServiceError, Unauthenticated
from trustfeed.service._events import MAX_BATCH, Event, EventBatch
from trustfeed.service._platform import IngestResult, Platform, PlatformConfig
from trustfeed.service._tokens import TokenInfo, TokenStore

__all__ = [
    "MAX_BATCH",
    "Catalog",
    "CatalogItem",
    "Conflict",
    "Event",
    "EventBatch",
    "Forbidden",
    "IngestResult",
    "NotFound",
    "Platform",
    "PlatformConfig",
    "PrescoredClassifier",
    "ServiceError",
    "TokenInfo",
    "TokenStore",
    "Unauthenticated",
    "Upload",
    "import_catalog",
    "prescored",
]
