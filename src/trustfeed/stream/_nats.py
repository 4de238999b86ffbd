"""The scale-out event log: a NATS JetStream stream behind the same sync interface.

Idempotency: every event is published with the ``Nats-Msg-Id`` header set to its
key, and JetStream refuses a repeat within the stream's ``duplicate_window``
(24 h here), answering with the original sequence and ``duplicate: true``.
Past the window a retry is stored again, so a consumer that must count each
event once across longer gaps also checks keys itself (the local log needs no
such check: it remembers every key).

Durability: an append returns after JetStream's PubAck, i.e. after the server
stored the message in its file store. A single server writes it to the OS
before acking (it survives the server process dying) but fsyncs only every
``sync_interval``; for power-loss safety run a three-node cluster with
``replicas=3`` (or ``sync_interval: always`` on nats-server ≥ 2.10).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from trustfeed.stream._base import (
    Ack,
    EventLog,
    Record,
    check_batch,
    check_commit,
    check_consumer,
    check_read,
)
from trustfeed.stream._errors import (
    CorruptLogError,
    InvalidInputError,
    LogClosedError,
    StreamError,
    StreamUnavailableError,
)
from trustfeed.stream._loop import LoopThread
from trustfeed.stream._positions import decode_position, encode_position

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_SERVERS = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "trustfeed-events"
DAY = 24 * 3600.0
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MSG_ID = "Nats-Msg-Id"
_STREAM_NAME_IN_USE = 10058


class NatsLog(EventLog):
    """An event log on the JetStream stream ``stream`` (file storage), created if absent.

    Offsets are the stream's sequence numbers. Consumer positions live in the
    key-value bucket ``<stream>-positions``. nats-py is asyncio; this class
    runs it on a private loop thread, so its methods are plain blocking calls,
    safe from many threads (they share one connection).
    """

    def __init__(
        self,
        servers: str = DEFAULT_SERVERS,
        stream: str = DEFAULT_STREAM,
        *,
        duplicate_window: float = DAY,
        replicas: int = 1,
        timeout: float = 10.0,
    ) -> None:
        if not _STREAM_NAME.fullmatch(stream):
            raise InvalidInputError(f"stream name {stream!r}: use 1-64 letters, digits, '_', '-'")
        self._servers = servers
        self._stream = stream
        self._subject = f"trustfeed.stream.{stream}"
        self._timeout = timeout
        self._closed = False
        self._closing = threading.Lock()
        self._loop = LoopThread(f"trustfeed-nats-{stream}")
        try:
            self._nc, self._js, self._kv = self._call(
                self._connect(duplicate_window, replicas), f"connect to {self!r}"
            )
        except BaseException:
            self._loop.stop()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> NatsLog:
        """``nats://[user:password@]host:port/<stream>`` (the stream name is required)."""
        parts = urlsplit(url)
        stream = parts.path.strip("/")
        if not stream or parts.query:
            raise InvalidInputError(f"event log URL {url!r}: use nats://host:4222/<stream-name>")
        servers = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return cls(servers, stream, **options)

    def __repr__(self) -> str:
        host = urlsplit(self._servers).hostname
        return f"NatsLog(host={host!r}, stream={self._stream!r})"

    @property
    def stream(self) -> str:
        return self._stream

    def append(self, batch: Sequence[tuple[str, bytes]]) -> list[Ack]:
        items = check_batch(batch)
        if not items:
            return []
        return self._call(self._publish(items), "publish")

    def read(self, after: int, limit: int) -> list[Record]:
        check_read(after, limit)
        return self._call(self._read(after, limit), "read")

    def last_offset(self) -> int:
        return self._call(self._last_offset(), "stream info")

    def commit(self, consumer: str, offset: int) -> None:
        check_consumer(consumer)
        check_commit(offset, self.last_offset())
        self._call(self._kv.put(consumer, encode_position(consumer, offset)), "commit")

    def position(self, consumer: str) -> int:
        check_consumer(consumer)
        return self._call(self._position(consumer), "position")

    def close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
        try:
            self._loop.run(self._nc.close(), self._timeout)
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            log.warning("event log: closing the NATS connection failed: %r", exc)
        finally:
            self._loop.stop()

    # -- on the loop thread --

    def _call(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coro`` on the loop; translate NATS's errors at this boundary."""
        if self._closed:
            coro.close()
            raise LogClosedError(f"{self!r} is closed")
        try:
            # The coroutine has its own timeouts; this one only stops a hung call.
            return self._loop.run(coro, self._timeout * 3)
        except concurrent.futures.CancelledError as exc:
            raise LogClosedError(f"{self!r} was closed during {what}") from exc
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise StreamUnavailableError(
                f"NATS {what}: no answer in time; an append may or may not be stored "
                "(retry it with the same keys)"
            ) from exc
        except nats.js.errors.APIError as exc:
            raise StreamError(f"JetStream refused {what}: {exc}") from exc
        except (nats.errors.Error, OSError) as exc:
            raise StreamUnavailableError(f"NATS {what} failed: {exc!r}") from exc

    async def _connect(
        self, duplicate_window: float, replicas: int
    ) -> tuple[Client, JetStreamContext, KeyValue]:
        # Reconnect forever once connected (a NATS restart must not kill the
        # service), but bound the first connect: nats-py would retry it forever too.
        connecting = nats.connect(
            self._servers,
            connect_timeout=max(1, int(self._timeout)),
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            error_cb=_log_error,
            name="trustfeed.stream",
        )
        try:
            nc = await asyncio.wait_for(connecting, self._timeout)
        except TimeoutError:
            raise StreamUnavailableError(
                f"cannot reach NATS at {self!r} within {self._timeout:g} s"
            ) from None
        try:
            js = nc.jetstream(timeout=self._timeout)
            await self._ensure_stream(js, duplicate_window, replicas)
            kv = await _positions_bucket(js, f"{self._stream}-positions", replicas)
        except BaseException:
            await nc.close()
            raise
        return nc, js, kv

    async def _ensure_stream(
        self, js: JetStreamContext, duplicate_window: float, replicas: int
    ) -> None:
        config = api.StreamConfig(
            name=self._stream,
            subjects=[self._subject],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            duplicate_window=duplicate_window,
            num_replicas=replicas,
        )
        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            try:
                info = await js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != _STREAM_NAME_IN_USE:  # lost a race to create it: use theirs
                    raise
                info = await js.stream_info(self._stream)
        if self._subject not in (info.config.subjects or []):
            raise StreamError(
                f"JetStream stream {self._stream!r} exists without subject {self._subject!r}; "
                "it belongs to something else"
            )
        if (info.config.duplicate_window or 0) < duplicate_window:
            log.warning(
                "event log: stream %s dedupes only %.0f s (asked %.0f s)",
                self._stream,
                info.config.duplicate_window or 0,
                duplicate_window,
            )

    async def _publish(self, items: list[tuple[str, bytes]]) -> list[Ack]:
        # Publish the whole batch before awaiting any PubAck: one connection keeps
        # the order, so offsets follow the batch and a repeated key within it
        # meets its original already stored.
        pending = [
            await self._js.publish_async(
                self._subject, payload, stream=self._stream, headers={_MSG_ID: key}
            )
            for key, payload in items
        ]
        acks = await asyncio.wait_for(asyncio.gather(*pending), self._timeout)
        return [Ack(ack.seq, bool(ack.duplicate)) for ack in acks]

    async def _read(self, after: int, limit: int) -> list[Record]:
        """Pull ``limit`` messages from ``after + 1`` through a throwaway consumer.

        One request delivers the whole batch (a get per message would be one
        round trip each); the consumer's ``num_pending`` says how many exist, so
        the pull never waits for messages that are not there.
        """
        name = self._nc._nuid.next().decode()
        info = await self._js.add_consumer(
            self._stream,
            api.ConsumerConfig(
                name=name,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after + 1,
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=max(self._timeout, 5.0),
                mem_storage=True,
                num_replicas=1,
            ),
        )
        try:
            wanted = min(limit, info.num_pending or 0)
            return await self._pull(name, wanted) if wanted else []
        finally:
            await self._js.delete_consumer(self._stream, name)

    async def _pull(self, consumer: str, wanted: int) -> list[Record]:
        # A callback, not next_msg(): next_msg makes a task per message, which
        # cut the read rate to a third in bench_stream.py.
        records: list[Record] = []
        done = asyncio.get_running_loop().create_future()

        async def take(msg: Msg) -> None:
            if done.done():
                return
            try:
                records.append(self._record(msg, len(records), wanted))
            except StreamError as exc:
                done.set_exception(exc)
                return
            if len(records) == wanted:
                done.set_result(None)

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=take, pending_msgs_limit=wanted + 16)
        try:
            request = json.dumps({"batch": wanted, "no_wait": True}).encode()
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{consumer}", request, reply=inbox
            )
            await asyncio.wait_for(done, self._timeout)
            return records
        finally:
            await sub.unsubscribe()

    def _record(self, msg: Msg, got: int, wanted: int) -> Record:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status:
            raise StreamError(f"JetStream ended a read with status {status} after {got}/{wanted}")
        key = headers.get(_MSG_ID)
        seq = msg.metadata.sequence.stream
        if not key:
            raise CorruptLogError(
                f"stream {self._stream!r} message {seq} has no {_MSG_ID} header; "
                "it was not written by trustfeed.stream"
            )
        return Record(seq, key, msg.data)

    async def _last_offset(self) -> int:
        info = await self._js.stream_info(self._stream)
        return int(info.state.last_seq)

    async def _position(self, consumer: str) -> int:
        try:
            entry = await self._kv.get(consumer)
        except nats.js.errors.KeyNotFoundError:  # also a deleted key
            return 0
        if not entry.value:
            return 0
        return decode_position(entry.value, where=f"position {consumer!r} in {self._stream}")


async def _positions_bucket(js: JetStreamContext, bucket: str, replicas: int) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        config = api.KeyValueConfig(
            bucket=bucket, history=1, storage=api.StorageType.FILE, replicas=replicas
        )
        return await js.create_key_value(config)


async def _log_error(exc: Exception) -> None:
    log.warning("event log: NATS connection error: %r", exc)
