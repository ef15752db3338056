"""Serving one admitted request: pick a replica, call it (retrying once elsewhere before the first byte),
relay the answer (streams chunk by chunk) and meter exactly what the engine served.

A client that disconnects is noticed wherever the request waits (`ClientWatch` cancels the request's
task): in the queue it just leaves; once a stream is dispatched (a streamed or assembled request), the
upstream connection is closed, which makes the engine abort, and the usage the engine reported so far
is billed as `aborted`. A request sent as the client sent it is read to its end and billed whole.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from modelplex.billing.contracts import Outcome
from modelplex.gateway.asgi import (
    ClientDisconnected,
    ClientWatch,
    Scope,
    Send,
    end_stream,
    send_bytes,
    send_chunk,
    send_error,
    start_stream,
)
from modelplex.gateway.assembly import Assembler
from modelplex.gateway.errors import GatewayError, engine_error, upstream_failed
from modelplex.gateway.inference import InferenceRequest, Kind
from modelplex.gateway.metering import Meter, Recorder
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.pool import Lease, Pool
from modelplex.gateway.routing.base import RouteRequest
from modelplex.gateway.settings import GatewaySettings
from modelplex.gateway.sse import DONE, EventSplitter, StreamFilter, event_data
from modelplex.gateway.upstream import Answer, AttemptFailed, StreamBroken, Upstream

log = logging.getLogger(__name__)

JSON = b"application/json"

# How long a stream whose client left is still read for what the engine had already sent (it closes
# its side as soon as it has seen the gateway close the request's).
DRAIN_SECONDS = 1.0

STREAM_ERROR = (
    b'data: {"error":{"message":"The model failed mid-stream.","type":"server_error",'
    b'"param":null,"code":"upstream_error"}}\n\n'
)


class Proxy:
    def __init__(
        self,
        settings: GatewaySettings,
        upstream: Upstream,
        pool: Pool,
        recorder: Recorder,
        metrics: GatewayMetrics,
    ) -> None:
        self._settings = settings
        self._upstream = upstream
        self._pool = pool
        self._recorder = recorder
        self._metrics = metrics

    async def serve(
        self, request: InferenceRequest, route: RouteRequest, meter: Meter, scope: Scope, send: Send
    ) -> int:
        """Serve the request and record its usage event; returns the status the client got.

        Raises ClientDisconnected when the client left before the answer was complete.
        """
        watch = ClientWatch(scope)
        try:
            lease = await self._pool.acquire(request.model, route)
            if not request.upstream_streams:
                # A whole answer cannot be billed in part: once sent, it is read to its end and billed
                # whole, whether the client waits for it or not (settings.assemble_above_tokens).
                watch.detach()
            lease, answer = await self._dispatch(request, route, meter, lease)
            if answer.stream is None:
                watch.stop()
                return await self._whole(meter, lease, answer, send, watch.left)
            if request.assembled:
                return await self._assemble(request, meter, lease, answer, send, watch)
            return await self._relay(request, meter, lease, answer, send, watch)
        except asyncio.CancelledError:
            if not watch.left:
                raise
            watch.forgive()
            self._recorder.record(meter, Outcome.ABORTED)
            raise ClientDisconnected from None
        except ClientDisconnected:
            self._recorder.record(meter, Outcome.ABORTED)
            raise
        except BaseException:
            self._recorder.record(meter, Outcome.FAILED)
            raise
        finally:
            watch.stop()

    async def _dispatch(
        self, request: InferenceRequest, route: RouteRequest, meter: Meter, lease: Lease
    ) -> tuple[Lease, Answer]:
        """First bytes from one replica; on failure, from one other replica. Keeps the lease it returns."""
        tried: frozenset[str] = frozenset()
        while True:
            replica = lease.replica
            meter.replica = replica.endpoint.id
            self._recorder.dispatched(meter)
            try:
                answer = await self._upstream.call(
                    replica.endpoint.url,
                    request,
                    meter.request_id,
                    self._settings.first_byte_timeout_seconds,
                )
            except AttemptFailed as exc:
                self._attempt_failed(lease, exc.kind)
                tried |= {replica.endpoint.id}
                if len(tried) > 1:
                    raise upstream_failed(request.model) from None
                lease = await self._retry_lease(request, route, tried)
                continue
            except BaseException:
                self._pool.release(lease, None)
                raise
            meter.first_byte()
            return lease, answer

    async def _retry_lease(
        self, request: InferenceRequest, route: RouteRequest, tried: frozenset[str]
    ) -> Lease:
        try:
            return await self._pool.acquire(request.model, route, exclude=tried, wait=False)
        except Exception:
            raise upstream_failed(request.model) from None

    def _attempt_failed(self, lease: Lease, kind: str) -> None:
        replica = lease.replica
        self._metrics.upstream_errors.labels(replica.model, replica.endpoint.id, kind).inc()
        log.warning(
            "Failed upstream attempt model=%s replica=%s kind=%s", replica.model, replica.endpoint.id, kind
        )
        self._pool.release(lease, True)

    async def _whole(self, meter: Meter, lease: Lease, answer: Answer, send: Send, left: bool) -> int:
        self._pool.release(lease, False)
        if answer.status == 200:
            _read_usage(answer.body, meter)
            self._recorder.progressed(meter)  # should the process die while answering
        headers = {"x-request-id": meter.request_id}
        try:
            await send_bytes(send, answer.status, answer.body, answer.content_type.encode(), headers)
        finally:  # journaling and counting after the answer is out: off the client's latency
            outcome = Outcome.COMPLETED if answer.status == 200 else Outcome.FAILED
            self._recorder.record(meter, Outcome.ABORTED if left else outcome)
        return 499 if left else answer.status

    async def _relay(
        self,
        request: InferenceRequest,
        meter: Meter,
        lease: Lease,
        answer: Answer,
        send: Send,
        watch: ClientWatch,
    ) -> int:
        sse = StreamFilter(request.client_include_usage, request.client_continuous_usage, meter.usage)
        splitter = EventSplitter()
        outcome = Outcome.ABORTED  # unless the pump says otherwise: the client left
        try:
            outcome = await self._pump(answer, splitter, sse, meter, send)
            watch.stop()
            await end_stream(send)
        except asyncio.CancelledError:
            if not (watch.left and sse.done and not sse.failed):
                raise
            # The client had the whole answer and hung up before the engine closed its end: a normal
            # close, not an abort.
            watch.forgive()
            outcome = Outcome.COMPLETED
        except ClientDisconnected:
            if not (sse.done and not sse.failed):
                raise
            outcome = Outcome.COMPLETED
        except Exception as exc:
            log.error("Failed relaying stream replica=%s error=%r", meter.replica, exc)
            outcome = Outcome.FAILED
        finally:
            assert answer.stream is not None
            try:
                if outcome is Outcome.ABORTED:  # bill what the engine sent before it learnt to stop
                    for event in splitter.feed(await answer.stream.drain(DRAIN_SECONDS)):
                        sse.process(event)
            finally:
                answer.stream.close()  # a closed connection is how the engine learns to stop generating
                self._pool.release(lease, _replica_failed(outcome))
                self._recorder.record(meter, outcome)
        return 200

    async def _assemble(
        self,
        request: InferenceRequest,
        meter: Meter,
        lease: Lease,
        answer: Answer,
        send: Send,
        watch: ClientWatch,
    ) -> int:
        """Read the engine's stream to its end, then answer with the whole JSON. A client leaving
        meanwhile cancels this task: the stream is closed and what it reported so far is billed."""
        assembler = Assembler(chat=request.kind is Kind.CHAT)
        splitter = EventSplitter()
        outcome, error = Outcome.ABORTED, None  # unless the stream ends first: the client left
        try:
            outcome, error = await self._collect(answer, splitter, assembler, meter)
            watch.stop()
        finally:
            assert answer.stream is not None
            try:
                if outcome is Outcome.ABORTED:  # bill what the engine sent before it learnt to stop
                    for event in splitter.feed(await answer.stream.drain(DRAIN_SECONDS)):
                        if (payload := event_data(event)) and payload != DONE:
                            self._take(payload, assembler, meter)
            finally:
                answer.stream.close()  # a closed connection is how the engine learns to stop generating
            refused = error is not None and error.status < 500  # the request's fault, not the replica's
            self._pool.release(lease, _replica_failed(outcome) and not refused)
        headers = {"x-request-id": meter.request_id}
        try:
            if outcome is Outcome.COMPLETED:
                await send_bytes(send, 200, assembler.render(), JSON, headers)
                return 200
            failure = error or upstream_failed(request.model)
            await send_error(send, failure)
            return failure.status
        finally:
            self._recorder.record(meter, outcome)

    async def _collect(
        self, answer: Answer, splitter: EventSplitter, assembler: Assembler, meter: Meter
    ) -> tuple[Outcome, GatewayError | None]:
        """Feed every chunk to the assembler; COMPLETED once `[DONE]` came, FAILED otherwise."""
        assert answer.stream is not None
        stream = answer.stream
        chunk = answer.body
        try:
            while chunk:
                for event in splitter.feed(chunk):
                    payload = event_data(event)
                    if payload == DONE:
                        return Outcome.COMPLETED, None
                    if payload and (error := self._take(payload, assembler, meter)) is not None:
                        return Outcome.FAILED, error
                chunk = await stream.read()
        except (StreamBroken, TimeoutError) as exc:
            log.warning("Failed upstream stream replica=%s error=%s", meter.replica, type(exc).__name__)
        return Outcome.FAILED, None

    def _take(self, payload: bytes, assembler: Assembler, meter: Meter) -> GatewayError | None:
        try:
            chunk = orjson.loads(payload)
        except ValueError:
            return None
        if not isinstance(chunk, dict):
            return None
        if "error" in chunk:
            return engine_error(chunk["error"])
        assembler.add(chunk)
        if isinstance(usage := chunk.get("usage"), dict):
            meter.usage.update(usage)
            self._recorder.progressed(meter)
        return None

    async def _pump(
        self, answer: Answer, splitter: EventSplitter, sse: StreamFilter, meter: Meter, send: Send
    ) -> Outcome:
        """Relay the stream until it ends; the outcome is decided by what the engine sent."""
        assert answer.stream is not None
        stream = answer.stream
        await start_stream(send, 200, meter.request_id)
        chunk = answer.body
        try:
            while chunk:
                out = [e for e in map(sse.process, splitter.feed(chunk)) if e is not None]
                if sse.usage.seen:
                    self._recorder.progressed(meter)
                if out:
                    await send_chunk(send, b"".join(out))
                chunk = await stream.read()
        except (StreamBroken, TimeoutError) as exc:
            log.warning("Failed upstream stream replica=%s error=%s", meter.replica, type(exc).__name__)
        failed = sse.failed or not sse.done
        if failed and not sse.failed:
            await send_chunk(send, STREAM_ERROR)
        return Outcome.FAILED if failed else Outcome.COMPLETED


def _replica_failed(outcome: Outcome) -> bool | None:
    return {Outcome.FAILED: True, Outcome.COMPLETED: False}.get(outcome)


def _read_usage(body: bytes, meter: Meter) -> None:
    try:
        usage = orjson.loads(body).get("usage")
    except (ValueError, AttributeError):
        return
    if isinstance(usage, dict):
        meter.usage.update(usage)
