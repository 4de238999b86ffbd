"""Storage backends opened by URL: ``sqlite:///path`` (embedded default),
``sqlite://`` (in memory, for tests) and ``postgresql://…`` (scale-out).

Components take an :class:`sqlalchemy.Engine` from :func:`open_engine` and use
SQLAlchemy Core; none of them imports a database driver directly.
"""

from trustfeed.storage._registry import (
    ROW_ID,
    StorageError,
    open_engine,
    redact_url,
    register_scheme,
)

__all__ = ["ROW_ID", "StorageError", "open_engine", "redact_url", "register_scheme"]
