"""Serving a PostgreSQL collection: an ingest beside a running server shows up on its next request,
and `artlens serve --workers 2` serves one collection from two processes (a real server on
127.0.0.1, stopped by process id)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import draw_picture

from artlens.api import ApiSettings, create_app
from artlens.api.security import AccessSettings
from artlens.api.server import BackgroundServer
from artlens.collection import Collection, copy_collection

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[1]


def test_an_ingest_beside_a_running_server_is_searchable_without_a_restart(tiny_collection, pg_url, tmp_path):
    copy_collection(tiny_collection.root, pg_url)
    served = Collection.open(pg_url)
    settings = ApiSettings(collection=served.root, thumbnail_dir=tmp_path / "thumbs", access=AccessSettings(rate_limit=0))
    with BackgroundServer(create_app(settings, collection=served)) as url:
        before = httpx.get(url + "api/health", timeout=30).json()["artworks"]
        extra = tmp_path / "more"
        extra.mkdir()
        draw_picture("rings", seed=4242).save(extra / "late.png")
        writer = Collection.open(pg_url)
        writer.ingest(extra)
        new_id = max(writer.catalog.ids())
        assert httpx.get(url + "api/health", timeout=30).json()["artworks"] == before + 1
        answer = httpx.post(url + "api/search", data={"id": new_id, "k": 3}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"]
        found = httpx.post(url + "api/search", data={"id": 1, "k": 20}, timeout=60).json()["results"]
        assert new_id in [r["id"] for r in found]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_with_two_workers_answers_from_both(tiny_collection, pg_url, tmp_path):
    copy_collection(tiny_collection.root, pg_url)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "-c", pg_url, "--port", str(port),
                                 "--workers", "2", "--thumbnails", str(tmp_path / "thumbs")],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(url + "api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) >= 2
        for _ in range(10):
            answer = httpx.post(url + "api/search", data={"id": 2, "k": 3}, timeout=60)
            assert answer.status_code == 200, answer.text
    finally:
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
        for child in children:
            try:
                child.wait(15)
            except psutil.NoSuchProcess:
                pass
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
