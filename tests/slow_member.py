"""A member that answers late: a proxy that waits ``--delay`` seconds, then forwards the request to
``--target`` and returns its answer. Run as its own process by the federation's process tests:

    python tests/slow_member.py --port 8123 --target http://127.0.0.1:8001/ --delay 3
"""

from __future__ import annotations

import argparse
import asyncio

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response


def slow_proxy(target: str, delay: float) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(base_url=target, timeout=60)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request):
        await asyncio.sleep(delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        answer = await client.request(request.method, "/" + path, params=request.query_params,
                                      content=await request.body(), headers=headers)
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type"))

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--delay", type=float, required=True)
    args = parser.parse_args()
    uvicorn.run(slow_proxy(args.target, args.delay), host="127.0.0.1", port=args.port, log_level="warning")
