"""The peer for bench/fanout: a bare Starlette WebSocket route under uvicorn that
holds sockets and broadcasts one message to all of them on POST /broadcast."""

from __future__ import annotations

import asyncio
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

sockets: set[WebSocket] = set()


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    sockets.add(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(ws)


async def broadcast(request: Request) -> JSONResponse:
    message = f'{{"sent": {time.time()}}}'
    await asyncio.gather(*(ws.send_text(message) for ws in list(sockets)), return_exceptions=True)
    return JSONResponse({"sent": len(sockets)})


async def count(request: Request) -> JSONResponse:
    return JSONResponse({"sockets": len(sockets)})


app = Starlette(
    routes=[WebSocketRoute("/ws", endpoint), Route("/broadcast", broadcast, methods=["POST"]), Route("/count", count)]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
