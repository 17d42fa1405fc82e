"""asyncio websocket server for a ``Policy``, speaking openpi's protocol or BEHAVIOR's.

Common to both (openpi ``serving/websocket_policy_server.py``, OmniGibson ``learning/utils/network_utils.py``):
``compression=None``, ``max_size=None``; ``GET /healthz`` → 200 ``OK\\n``; on connect one binary frame with the
msgpack'd metadata; then lockstep request/reply frames (``msgpack_numpy``); on an error the traceback goes out as a
text frame and the connection closes with 1011 (the server keeps serving other and new clients).

- ``openpi``: observation dict → ``{"actions": [H, D], "policy_timing": {"infer_ms"}, "server_timing": {"infer_ms",
  "prev_total_ms" (from the 2nd call)}}``. A batched client sends ``{"batch": [obs, ...]}`` (openpi PR 941's
  request) and gets every output stacked: ``actions`` [B, H, D], from one ``Policy.infer_batch`` model call.
- ``behavior``: observation dict (OmniGibson keys, see ``behavior.py``) → ``{"action": [D], "server_timing": ...}``
  with the chunk executed on the server (``chunking.ChunkExecutor``, one per connection); ``{"reset": True}``
  resets it and gets no reply. The 2026 client's ``__action_chunk_size__: K`` asks for the executor's next K
  actions: ``{"action": action_chunk[0], "action_chunk": [K, D]}``; K above the model's horizon is an error.

Model calls run in one worker thread, so the event loop keeps answering health checks, handshakes and other
clients while the model runs (openpi issue 938); calls are serialized, the policy need not be thread-safe.
One log line per episode: at every BEHAVIOR reset and at every disconnect.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import http
import logging
import threading
import time
import traceback
from typing import Any
from typing import Literal

import numpy as np
import websockets
from websockets.asyncio import server as _server
from websockets.frames import CloseCode

from openpi.serving import behavior as _behavior
from openpi.serving import chunking as _chunking
from openpi.serving import msgpack_numpy

logger = logging.getLogger("openpi.serving")

Protocol = Literal["openpi", "behavior"]


def _health_check(connection: _server.ServerConnection, request) -> Any:
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


@dataclasses.dataclass
class _Episode:
    """Per-connection counters for the episode log line."""

    number: int = 1
    steps: int = 0
    infer_ms: float = 0.0

    def log(self, peer, why: str, queries: int | None = None) -> None:
        if self.steps == 0:
            return
        calls = f", {queries} policy calls" if queries is not None else ""
        logger.info(
            "episode %d of %s ended (%s): %d requests%s, mean server infer %.1f ms",
            self.number, peer, why, self.steps, calls, self.infer_ms / self.steps,
        )  # fmt: skip
        self.number, self.steps, self.infer_ms = self.number + 1, 0, 0.0


class PolicyServer:
    """Serves ``policy`` on ``host:port``. ``protocol="behavior"`` needs ``observations`` (OmniGibson keys → policy
    inputs) and uses ``chunking`` (default ``ChunkingConfig()``); ``port=0`` picks a free port (``self.port`` after start)."""

    def __init__(
        self,
        policy,
        *,
        protocol: Protocol = "openpi",
        host: str = "0.0.0.0",
        port: int = 8000,
        chunking: _chunking.ChunkingConfig | None = None,
        observations: _behavior.BehaviorObservations | None = None,
        metadata: dict | None = None,
    ):
        chunking = chunking or _chunking.ChunkingConfig()
        if protocol not in ("openpi", "behavior"):
            raise ValueError(f"Unknown protocol {protocol!r}; use 'openpi' or 'behavior'.")
        if protocol == "behavior":
            if observations is None:
                raise ValueError("The behavior protocol needs `observations` (a BehaviorObservations map).")
            chunking.validate(policy.action_horizon)
        self.policy, self.protocol, self.host, self.port = policy, protocol, host, port
        self.chunking, self.observations = chunking, observations
        self.metadata = {**policy.metadata, "protocol": protocol, "action_horizon": policy.action_horizon}
        if protocol == "behavior":
            self.metadata["chunking"] = dataclasses.asdict(chunking)
            self.metadata["max_action_chunk_size"] = policy.action_horizon
        self.metadata.update(metadata or {})
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")

    def serve_forever(self) -> None:
        asyncio.run(self.run())

    async def run(self, started: asyncio.Future | None = None) -> None:
        """Serves until cancelled; sets ``started`` (if given) to the bound port once listening."""
        async with _server.serve(
            self._handler, self.host, self.port, compression=None, max_size=None, process_request=_health_check
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            logger.info("Serving %s protocol on %s:%d", self.protocol, self.host, self.port)
            if started is not None:
                started.set_result(self.port)
            await server.serve_forever()

    async def _in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def _handler(self, websocket: _server.ServerConnection) -> None:
        peer = websocket.remote_address
        logger.info("Connection from %s opened", peer)
        await websocket.send(msgpack_numpy.packb(self.metadata))
        executor = None
        if self.protocol == "behavior":
            executor = _chunking.ChunkExecutor(_chunking.chunk_fn(self.policy), self.chunking)
        episode, prev_total_ms = _Episode(), None
        while True:
            try:
                message = await websocket.recv()
                start = time.monotonic()
                request = self._decode(message)
                if executor is not None and "reset" in request:
                    episode.log(peer, "reset", executor.queries)
                    await self._in_worker(executor.reset)
                    continue
                reply, policy_ms = await self._reply(request, executor)
                infer_ms = (time.monotonic() - start) * 1000
                reply["server_timing"] = {"infer_ms": infer_ms}
                if policy_ms is not None:
                    reply["policy_timing"] = {"infer_ms": policy_ms}
                if prev_total_ms is not None:
                    reply["server_timing"]["prev_total_ms"] = prev_total_ms
                await websocket.send(msgpack_numpy.packb(reply))
                episode.steps += 1
                episode.infer_ms += infer_ms
                prev_total_ms = (time.monotonic() - start) * 1000
            except websockets.ConnectionClosed:
                episode.log(peer, "disconnect", executor.queries if executor else None)
                logger.info("Connection from %s closed", peer)
                return
            except Exception:
                text = traceback.format_exc()
                logger.error("Error serving %s:\n%s", peer, text)
                episode.log(peer, "error", executor.queries if executor else None)
                with contextlib.suppress(websockets.ConnectionClosed):  # the client may be gone already
                    await websocket.send(text)
                    await websocket.close(
                        code=CloseCode.INTERNAL_ERROR,
                        reason="Internal server error. Traceback included in previous frame.",
                    )
                return

    def _decode(self, message: bytes | str) -> dict:
        """The request map of a frame; a text frame or a msgpack value other than a map (a list, a number) is an
        error saying what the protocol expects."""
        expected = (
            "send an observation dict, or {'batch': [observation dict, ...]} for a batch"
            if self.protocol == "openpi"
            else "send an observation dict (OmniGibson keys), or {'reset': True} at the start of an episode"
        )
        if isinstance(message, str):
            raise ValueError(f"A request must be a binary msgpack frame, got a text frame; {expected}.")
        request = msgpack_numpy.unpackb(message)
        if not isinstance(request, dict):
            shown = repr(request)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(
                f"A request must be a msgpack map (an observation dict), got {type(request).__name__} {shown}; "
                f"{expected}."
            )
        return request

    async def _reply(self, request: dict, executor: _chunking.ChunkExecutor | None) -> tuple[dict, float | None]:
        """The reply dict and the policy's own time (ms; None for BEHAVIOR, whose timing is the server's)."""
        if executor is not None:
            size = _behavior.action_chunk_size(request, self.policy.action_horizon)
            sample = self.observations(request)
            if size is None:
                return {"action": await self._in_worker(executor.act, sample)}, None
            chunk = await self._in_worker(lambda: np.stack([executor.act(sample) for _ in range(size)]))
            return {"action": chunk[0].copy(), "action_chunk": chunk}, None

        def infer():
            start = time.monotonic()
            if "batch" in request:
                batch = request["batch"]
                if not isinstance(batch, list) or not batch or not all(isinstance(o, dict) for o in batch):
                    raise ValueError("A batched request must be {'batch': [observation dict, ...]} (non-empty).")
                outputs = self.policy.infer_batch(batch)
            else:
                outputs = self.policy.infer(request)
            return dict(outputs), (time.monotonic() - start) * 1000

        return await self._in_worker(infer)


@contextlib.contextmanager
def running(*servers: PolicyServer):
    """Runs the servers on one event loop in a background thread (tests, benchmarks, in-process evaluators);
    yields their bound ports and stops them on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="policy-servers", daemon=True)
    thread.start()
    tasks = []

    async def start(server: PolicyServer) -> int:
        started = loop.create_future()
        task = asyncio.ensure_future(server.run(started))
        tasks.append(task)
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises why the server could not start (e.g. the port is taken)
        return started.result()

    try:
        yield [asyncio.run_coroutine_threadsafe(start(s), loop).result(timeout=60) for s in servers]
    finally:

        async def stop():
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
