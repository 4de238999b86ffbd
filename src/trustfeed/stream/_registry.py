"""``open_log(url)``: one registry from URL scheme to event-log backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from trustfeed.stream._base import EventLog
from trustfeed.stream._errors import InvalidInputError
from trustfeed.stream._local import LocalLog

Opener = Callable[..., EventLog]
_OPENERS: dict[str, Opener] = {}


def register_backend(scheme: str, opener: Opener) -> None:
    """Make ``open_log`` accept ``scheme://…`` URLs; ``opener(url, **options)`` opens one."""
    _OPENERS[scheme] = opener


def open_log(url: str, **options: Any) -> EventLog:
    """Open the event log named by ``url``; ``options`` go to the backend's constructor.

    ``file:///abs/dir`` or a plain directory path: the embedded :class:`LocalLog`.
    ``nats://host:4222/<stream>``: :class:`NatsLog` on NATS JetStream.
    """
    if not isinstance(url, str) or not url:
        raise InvalidInputError(f"event log URL {url!r}: expected file:///dir, a path, or nats://")
    scheme = urlsplit(url).scheme if "://" in url else "file"
    opener = _OPENERS.get(scheme)
    if opener is None:
        known = ", ".join(sorted(_OPENERS))
        raise InvalidInputError(f"unknown event log scheme {scheme!r}; known: {known}")
    return opener(url, **options)


def _open_local(url: str, **options: Any) -> EventLog:
    if "://" not in url:
        return LocalLog(url, **options)
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path or parts.query:
        raise InvalidInputError(f"event log URL {url!r}: use file:///absolute/directory")
    return LocalLog(unquote(parts.path), **options)


def _open_nats(url: str, **options: Any) -> EventLog:
    from trustfeed.stream._nats import NatsLog  # only here: nats-py is slow to import

    return NatsLog.from_url(url, **options)


register_backend("file", _open_local)
register_backend("nats", _open_nats)
