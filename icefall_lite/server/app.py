"""The aiohttp application: the websocket and the page on ``/``, ``/health``, the static files, and the limit on
active connections (a client beyond ``--max-active-connections`` gets HTTP 503 before the websocket opens).

Usage::

    server = StreamingServer(recognizer, ConnectionLimits(), BatchingOptions())
    runner = await server.start("127.0.0.1", 6006)         # serving; server.port is the bound port
    ...
    await server.stop(runner)
"""

from __future__ import annotations

import itertools
import logging
import ssl
from pathlib import Path
from typing import Optional

from aiohttp import web

from icefall_lite.server.connection import Connection, ConnectionLimits
from icefall_lite.server.recognizers import Recognizer
from icefall_lite.server.worker import BatchingOptions, DecodeWorker

STATIC_DIR = Path(__file__).parent / "static"


class StreamingServer:
    def __init__(self, recognizer: Recognizer, limits: ConnectionLimits, batching: BatchingOptions) -> None:
        if limits.max_active_connections < 1:
            raise ValueError(f"--max-active-connections must be at least 1, got {limits.max_active_connections}")
        self.recognizer = recognizer
        self.limits = limits
        self.worker = DecodeWorker(recognizer, batching)
        self.active_connections = 0
        self.port: Optional[int] = None
        self._connection_numbers = itertools.count(1)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.root)
        app.router.add_get("/health", self.health)
        app.router.add_static("/static", STATIC_DIR)
        return app

    async def start(self, host: str, port: int, ssl_context: Optional[ssl.SSLContext] = None) -> web.AppRunner:
        """Start the worker and listen on host:port (0: any free port, then in ``self.port``)."""
        self.worker.start()
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    async def stop(self, runner: web.AppRunner) -> None:
        await runner.cleanup()
        self.worker.stop()

    async def root(self, request: web.Request) -> web.StreamResponse:
        """A websocket upgrade is a client (sherpa-onnx's clients connect to ``/``); anything else gets the page."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.FileResponse(STATIC_DIR / "index.html")
        if self.active_connections >= self.limits.max_active_connections:
            logging.warning(f"refused {request.remote}: {self.active_connections} active connections (--max-active-connections)")
            return web.Response(
                status=503, text=f"the server is busy: {self.active_connections} active connections, try again later"
            )
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_message_size, heartbeat=None)
        await ws.prepare(request)
        name = f"{request.remote}:{request.transport.get_extra_info('peername', ('', ''))[1]} #{next(self._connection_numbers)}"
        self.active_connections += 1
        logging.info(f"{name} connected ({self.active_connections} active)")
        try:
            await Connection(ws, name, self.worker, self.limits).serve()
        finally:
            self.active_connections -= 1
            logging.info(f"{name} done ({self.active_connections} active)")
        return ws

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "backend": self.recognizer.name,
                "connections": self.active_connections,
                "max_active_connections": self.limits.max_active_connections,
                "streams": self.worker.num_streams,
                "chunks_decoded": self.worker.chunks_decoded,
                "batches_decoded": self.worker.batches_decoded,
            }
        )


def ssl_context_for(certificate: Optional[Path]) -> Optional[ssl.SSLContext]:
    """TLS (wss://, https://) from a PEM file holding the certificate and its private key, or None."""
    if certificate is None:
        return None
    if not certificate.is_file():
        raise FileNotFoundError(f"--certificate {certificate} does not exist")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    return context
