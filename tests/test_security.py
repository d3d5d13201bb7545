"""A server that can face a network: tokens, rate limits, the image queue, security headers, CORS,
participants of a study who answer only as themselves, and the warning when exposed."""

import contextvars
import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from artlens.api import ApiSettings, create_app  # noqa: E402
from artlens.api.errors import ApiError  # noqa: E402
from artlens.api.limits import EncodingQueue  # noqa: E402
from artlens.api.security import (  # noqa: E402
    AccessSettings,
    RateLimiter,
    TokenFile,
    add_token,
    hash_token,
    parse_tokens,
)
from artlens.api.server import exposure_warning, url_of  # noqa: E402
from artlens.errors import ArtlensError  # noqa: E402
from artlens.study import AnswerLog, create_study  # noqa: E402


def app_with(collection, tmp_path, **access):
    settings = ApiSettings(collection=collection.root, thumbnail_dir=tmp_path / "thumbs", access=AccessSettings(**access))
    return create_app(settings, collection=collection, warm_up=False)


def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (seed % 255, 80, 160)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "tokens.txt"
    return path, add_token(path, "alice"), add_token(path, "bob")


# -- tokens -------------------------------------------------------------------------------------
def test_a_tokens_file_holds_only_hashes_and_revokes_by_deleting_a_line(tokens):
    path, alice, bob = tokens
    text = path.read_text()
    assert alice not in text and bob not in text and hash_token(alice) in text
    assert (path.stat().st_mode & 0o777) == 0o600
    assert parse_tokens(text, "t") == {hash_token(alice): "alice", hash_token(bob): "bob"}
    file = TokenFile(path)
    assert file.identify(alice) == "alice" and file.identify(bob) == "bob" and file.identify("guess") is None
    path.write_text("\n".join(line for line in text.splitlines() if "bob" not in line) + "\n")
    assert file.identify(bob) is None and file.identify(alice) == "alice"  # re-read when it changes
    with pytest.raises(ArtlensError, match="already has a token named 'alice'"):
        add_token(path, "alice")
    with pytest.raises(ArtlensError, match="line 1"):
        parse_tokens("artlens_plaintext-token alice\n", "t")
    with pytest.raises(ArtlensError, match="cannot read the tokens file"):
        TokenFile(path.parent / "missing.txt")


def test_token_command_prints_the_token_once_and_keeps_its_hash(tmp_path, capsys):
    from artlens.cli import main

    path = tmp_path / "t" / "tokens.txt"
    assert main(["token", "--tokens", str(path), "--name", "frontend", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "frontend" and out["sha256"] == hash_token(out["token"]) and out["token"].startswith("artlens_")
    assert out["sha256"] in path.read_text() and out["token"] not in path.read_text()
    assert main(["token", "--tokens", str(path), "--name", "second"]) == 0
    captured = capsys.readouterr()
    assert TokenFile(path).identify(captured.out.strip()) == "second" and "shown only now" in captured.err
    assert main(["token", "--tokens", str(path), "--name", "bad name!"]) == 2


def test_reads_are_open_unless_private_and_a_bad_token_is_refused(tiny_collection, tmp_path, tokens):
    path, alice, _ = tokens
    with TestClient(app_with(tiny_collection, tmp_path, tokens=path)) as c:
        assert c.get("/api/stats").status_code == 200  # public: reads need no token
        refused = c.get("/api/stats", headers={"Authorization": "Bearer artlens_revoked"})
        assert refused.status_code == 401 and "not valid" in refused.json()["error"]
        assert c.get("/api/stats", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
    with TestClient(app_with(tiny_collection, tmp_path, tokens=path, private=True)) as c:
        anonymous = c.post("/api/search", data={"text": "dots"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert set(anonymous.json()) == {"error", "hint", "status"}
        assert c.get("/api/artworks/1/thumbnail").status_code == 401
        assert c.get("/api/health").status_code == 200  # health checks stay open
        assert c.get("/").status_code == 200 and c.get("/app.js").status_code == 200  # the page holds no data
        answer = c.post("/api/search", data={"text": "dots", "k": "3"}, headers={"Authorization": f"Bearer {alice}"})
        assert answer.status_code == 200 and len(answer.json()["results"]) == 3
        # the page signs in once: an HttpOnly, SameSite=Strict cookie then carries the token
        assert c.post("/api/session", json={"token": "artlens_wrong"}).status_code == 401
        signed = c.post("/api/session", json={"token": alice})
        assert signed.status_code == 200 and signed.json() == {"name": "alice"}
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and alice.lower() not in signed.text.lower()
        assert c.get("/api/artworks/1/thumbnail").status_code == 200
        assert c.post("/api/session/end").status_code == 200
        assert c.get("/api/stats").status_code == 401
    with pytest.raises(ArtlensError, match="private server needs tokens"):
        app_with(tiny_collection, tmp_path, private=True)


# -- rate limits and the image queue ------------------------------------------------------------
def test_rate_limiter_refills_at_its_rate():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.take("b", now=0.0) == 0.0  # per client
    assert limiter.take("a", now=0.5) == 0.0 and limiter.take("a", now=0.5) == pytest.approx(0.5)
    assert limiter.take("a", now=100.0) == 0.0  # refilled, up to the burst only
    assert sum(limiter.take("a", now=100.0) == 0.0 for _ in range(5)) == 2


def test_a_client_over_its_limit_gets_429_with_retry_after(tiny_collection, tmp_path, tokens):
    path, alice, bob = tokens
    with TestClient(app_with(tiny_collection, tmp_path, tokens=path, rate_limit=0.5, rate_burst=3)) as c:
        assert [c.get("/api/health").status_code for _ in range(3)] == [200, 200, 200]
        limited = c.get("/api/health")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["status"] == 429 and "retry after" in limited.json()["hint"]
        assert c.get("/").status_code == 200  # the page's files are not counted
        # a token is a client of its own, whatever the address
        assert c.get("/api/health", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
        assert c.get("/api/health", headers={"Authorization": f"Bearer {bob}"}).status_code == 200


def test_the_image_queue_answers_429_when_full(tiny_collection, tmp_path):
    settings = ApiSettings(collection=tiny_collection.root, thumbnail_dir=tmp_path / "thumbs",
                           max_concurrent_encodes=1, max_queued_encodes=0)
    app = create_app(settings, collection=tiny_collection, warm_up=False)
    with TestClient(app) as c:
        with app.state.service.encoding.slot():  # an encoding in progress fills the queue
            busy = c.post("/api/search", files={"image": ("q.png", png(1), "image/png")})
            assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
            assert "busy encoding images" in busy.json()["error"]
            assert c.post("/api/search", data={"text": "dots"}).status_code == 200  # no image: no queue
        assert c.post("/api/search", files={"image": ("q.png", png(1), "image/png")}).status_code == 200


def test_encoding_queue_lets_the_bounded_number_wait():
    queue = EncodingQueue(workers=1, waiting=2)
    release, inside, outcomes = threading.Event(), threading.Event(), []

    def encode():
        try:
            with queue.slot():
                inside.set()
                release.wait(10)
            outcomes.append("done")
        except Exception as exc:  # noqa: BLE001
            outcomes.append(getattr(exc, "status", exc))

    workers = [threading.Thread(target=encode) for _ in range(3)]
    workers[0].start()
    inside.wait(5)
    for w in workers[1:]:
        w.start()
    deadline = time.monotonic() + 5
    while queue.queued < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    encode()  # the fourth finds one running and two waiting
    release.set()
    for w in workers:
        w.join(10)
    assert sorted(map(str, outcomes)) == ["429", "done", "done", "done"] and queue.queued == 0


def test_a_reservation_is_the_place_its_encoding_then_uses():
    queue = EncodingQueue(workers=1, waiting=0)
    seen = []

    def encode():
        with queue.slot():
            seen.append(queue.queued)

    with queue.reserve():  # a request, before it reaches a worker thread
        assert queue.queued == 1
        with pytest.raises(ApiError, match="busy encoding"):  # another request finds the queue full at once
            contextvars.Context().run(lambda: queue.reserve().__enter__())
        worker = threading.Thread(target=contextvars.copy_context().run, args=(encode,))  # as run_in_threadpool
        worker.start()
        worker.join(10)
    assert seen == [1] and queue.queued == 0


# -- headers and CORS ---------------------------------------------------------------------------
def test_every_answer_carries_the_security_headers(tiny_collection, tmp_path):
    with TestClient(app_with(tiny_collection, tmp_path, rate_limit=1, rate_burst=2)) as c:
        answers = [c.get("/"), c.get("/api/stats"), c.get("/api/artworks/999999"), c.get("/nowhere"), c.get("/api/stats")]
        assert answers[-1].status_code == 429  # limits' answers too
        for response in answers:
            csp = response.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp and response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY" and "strict-transport-security" not in response.headers
        swagger = c.get("/docs/swagger").headers["content-security-policy"]
        assert "https://cdn.jsdelivr.net" in swagger and "'sha256-" in swagger and "frame-ancestors 'none'" in swagger
        assert "https://cdn.jsdelivr.net" not in answers[0].headers["content-security-policy"]
    with TestClient(app_with(tiny_collection, tmp_path, frame_ancestors=("https://museum.example",))) as c:
        response = c.get("/")
        assert "frame-ancestors https://museum.example" in response.headers["content-security-policy"]
        assert "x-frame-options" not in response.headers


def test_the_pages_have_no_inline_script_or_style():
    from importlib import resources

    static = resources.files("artlens.web") / "static"
    for name in ("index.html", "study.html", "docs.html"):
        html = (static / name).read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name  # every script from a file
        assert "<style" not in html and not re.search(r"\sstyle=", html), name
        assert not re.search(r"\son[a-z]+=", html), name  # no inline event handlers
    for name in ("app.js", "study.js", "docs.js"):
        code = (static / name).read_text()
        assert 'setAttribute("style"' not in code and "innerHTML" not in code and "eval(" not in code, name


def test_cors_is_same_origin_unless_origins_are_named(tiny_collection, tmp_path):
    other = {"Origin": "https://elsewhere.example"}
    with TestClient(app_with(tiny_collection, tmp_path)) as c:
        response = c.get("/api/stats", headers=other)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        preflight = c.options("/api/search", headers={**other, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers
    with TestClient(app_with(tiny_collection, tmp_path, cors_origins=("https://museum.example",))) as c:
        museum = {"Origin": "https://museum.example"}
        assert c.get("/api/stats", headers=museum).headers["access-control-allow-origin"] == "https://museum.example"
        assert "access-control-allow-origin" not in c.get("/api/stats", headers=other).headers
        preflight = c.options("/api/search", headers={**museum, "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200 and "authorization" in preflight.headers["access-control-allow-headers"].lower()


# -- the study ----------------------------------------------------------------------------------
def test_nobody_answers_for_another_participant(tiny_collection, tmp_path):
    app = app_with(tiny_collection, tmp_path, rate_limit=0)
    study = create_study(tiny_collection, "style", 3, 4, out=tmp_path / "study")
    app.state.study_dir = study.root
    with TestClient(app) as c:
        pair = [a["id"] for a in c.get("/api/study").json()["questions"][0]["artworks"][:2]]
        alice, mallory = c.post("/api/study/participants").json(), c.post("/api/study/participants").json()
        assert alice["participant"] != mallory["participant"] and alice["token"] != mallory["token"]
        answer = {"participant": alice["participant"], "question": 0, "pair": pair}
        assert c.post("/api/study/answers", json={**answer, "token": alice["token"]}).status_code == 201
        forged = c.post("/api/study/answers", json={**answer, "pair": pair[::-1], "token": mallory["token"]})
        assert forged.status_code == 403 and alice["participant"] in forged.json()["error"]
        assert c.post("/api/study/answers", json=answer).status_code == 422  # no token at all
        guessed = c.post("/api/study/answers", json={**answer, "participant": "p-1", "token": alice["token"]})
        assert guessed.status_code == 403
    answers = AnswerLog(study.answers_path).read(latest_only=False)
    assert [(a.participant, a.question) for a in answers] == [(alice["participant"], 0)]
    key = study.root / "participants.key"
    assert (key.stat().st_mode & 0o777) == 0o600 and alice["token"] not in key.read_text()


# -- exposure -----------------------------------------------------------------------------------
def test_binding_beyond_loopback_without_tokens_or_tls_warns():
    assert exposure_warning("127.0.0.1", False, False) is None and exposure_warning("::1", False, False) is None
    assert exposure_warning("localhost", False, False) is None
    assert "without tokens and without TLS" in exposure_warning("0.0.0.0", False, False)
    assert "without TLS" in exposure_warning("192.168.1.5", True, False)
    assert exposure_warning("0.0.0.0", True, True) is None
    assert url_of("0.0.0.0", 8000) == "http://0.0.0.0:8000/" and url_of("::", 8000, tls=True) == "https://[::]:8000/"


def test_serve_announces_the_address_bound_and_warns(tiny_collection, monkeypatch, tmp_path, capsys):
    from artlens.api import server
    from artlens.cli import main, serve_cmd

    seen = {}
    monkeypatch.setattr(server, "serve_app", lambda app, host, port, on_ready, threads, **tls: seen.update(
        app=app, tls=tls, on_ready=on_ready))
    path = tmp_path / "tokens.txt"
    add_token(path, "alice")
    assert main(["serve", "-c", str(tiny_collection.root), "--host", "0.0.0.0", "--thumbnails", str(tmp_path),
                 "--tokens", str(path), "--private", "--rate-limit", "5", "--cors-origin", "https://museum.example"]) == 0
    access = seen["app"].state.settings.access
    assert access == AccessSettings(tokens=path, private=True, rate_limit=5.0, cors_origins=("https://museum.example",))
    assert "warning:" in capsys.readouterr().err  # tokens, but no TLS
    seen["on_ready"]("http://0.0.0.0:8000/")
    assert "serving at http://0.0.0.0:8000/" in capsys.readouterr().err
    assert main(["serve", "-c", str(tiny_collection.root), "--thumbnails", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err and seen["tls"] == {}
    assert main(["serve", "-c", str(tiny_collection.root), "--thumbnails", str(tmp_path), "--private"]) == 2
    assert (serve_cmd.DEFAULT_RATE_LIMIT, serve_cmd.DEFAULT_RATE_BURST) == (AccessSettings.rate_limit, AccessSettings.rate_burst)


@pytest.mark.slow
def test_serve_over_https_announces_https(tiny_collection, tmp_path):
    """A real `artlens serve` with a self-signed certificate, stopped by its process id."""
    import os
    import signal

    import httpx

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    proc = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "-c", str(tiny_collection.root), "--port", "0",
                             "--thumbnails", str(tmp_path / "thumbs"), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).parents[1])
    try:
        url, deadline = None, time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"serving at (\S+/)", line)
            url = match.group(1) if match else None
        assert url and url.startswith("https://127.0.0.1:"), url
        response = httpx.get(url + "api/health", verify=False, timeout=30)
        assert response.status_code == 200 and "max-age" in response.headers["strict-transport-security"]
    finally:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
