"""A federation as separate processes on 127.0.0.1: three `artlens serve --member` servers, a member
that answers late (a proxy in front of one of them), a wrong token, and an `artlens portal`; one
member is killed mid-test. The test starts and stops exactly these processes, by process id. Slow:
every server loads its extractors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from federation_support import (
    free_port,
    make_head,
    split_collection,
    write_member_toml,
    write_members_toml,
)

from artlens.collection import Collection
from artlens.federated.processes import answers_health, wait_ready

pytestmark = pytest.mark.slow
TOKEN = "process-test-token"
TIMEOUT = 1.5
HERE = Path(__file__).resolve().parent


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(15)


def test_three_members_and_a_portal_as_processes(tiny_folder, tiny_collection, tmp_path):
    folder, labels = tiny_folder
    whole = Collection.open(shutil.copytree(tiny_collection.root, tmp_path / "whole"))
    make_head(whole, tmp_path / "head.pt")
    collections = split_collection(folder, labels, whole, tmp_path)
    for c in collections:
        c.close()
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start(name: str, args: list[str]) -> subprocess.Popen:
        logs[name] = tmp_path / f"{name}.log"
        with open(logs[name], "w") as out:
            procs[name] = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return procs[name]

    try:
        urls = {}
        for i, coll in enumerate(collections):
            port = free_port()
            toml = write_member_toml(tmp_path / f"member-{i}.toml", f"Museum {i}", tmp_path / "head.pt", [TOKEN])
            start(f"Museum {i}", [sys.executable, "-m", "artlens", "serve", "-c", str(coll.root), "--member", str(toml),
                                  "--port", str(port)])
            urls[f"Museum {i}"] = f"http://127.0.0.1:{port}/"
        slow_port = free_port()
        start("slow", [sys.executable, str(HERE / "slow_member.py"), "--port", str(slow_port),
                       "--target", urls["Museum 0"], "--delay", str(TIMEOUT + 2)])
        members = write_members_toml(tmp_path / "MEMBERS.toml", [
            *[(name, url, TOKEN) for name, url in urls.items()],
            ("Late Museum", f"http://127.0.0.1:{slow_port}/", TOKEN),
            ("Stolen Token", urls["Museum 2"], "not-the-token")])
        portal_port = free_port()
        portal_url = f"http://127.0.0.1:{portal_port}/"
        for name, url in urls.items():
            wait_ready(lambda url=url: answers_health(url), f"{name} at {url}", 300, procs[name], logs[name])
        start("portal", [sys.executable, "-m", "artlens", "portal", "--members", str(members), "--head",
                         str(tmp_path / "head.pt"), "--port", str(portal_port), "--timeout", str(TIMEOUT)])
        wait_ready(lambda: answers_health(portal_url), f"the portal at {portal_url}", 300, procs["portal"],
                   logs["portal"])

        def search() -> tuple[dict, float]:
            with open(folder / "images" / "dots_2.png", "rb") as fh:
                t = time.perf_counter()
                answer = httpx.post(portal_url + "api/search", files={"image": ("q.png", fh, "image/png")},
                                    data={"k": "9"}, timeout=60)
                return answer.json(), time.perf_counter() - t

        search()  # the first upload warms the portal's encoders
        answer, seconds = search()
        status = {m["name"]: m["status"] for m in answer["members"]}
        assert status == {"Museum 0": "ok", "Museum 1": "ok", "Museum 2": "ok", "Late Museum": "timeout",
                          "Stolen Token": "unauthorized"}, answer["members"]
        assert {h["institution"] for h in answer["results"]} == {"Museum 0", "Museum 1", "Museum 2"}
        assert seconds <= TIMEOUT + 0.5, seconds
        assert "Late Museum did not answer within 1.5 s" in answer["line"]

        os.kill(procs["Museum 1"].pid, signal.SIGKILL)  # mid-test: a member goes down
        procs["Museum 1"].wait(15)
        answer, seconds = search()
        status = {m["name"]: m["status"] for m in answer["members"]}
        assert status["Museum 1"] == "unreachable" and status["Museum 0"] == status["Museum 2"] == "ok"
        assert {h["institution"] for h in answer["results"]} == {"Museum 0", "Museum 2"} and len(answer["results"]) == 8
        assert answer["line"].startswith("2 of 5 institutions answered") and seconds <= TIMEOUT + 0.5

        check = subprocess.run([sys.executable, "-m", "artlens", "portal", "--members", str(members), "--head",
                                str(tmp_path / "head.pt"), "--check", "--timeout", str(TIMEOUT)],
                               capture_output=True, text=True, env=env, timeout=120)
        assert check.returncode == 1 and "Museum 1" in check.stdout and "NO" in check.stdout
    finally:
        for proc in procs.values():
            stop(proc)
    assert all(p.poll() is not None for p in procs.values())


def test_the_readiness_wait_names_a_process_that_died_and_one_that_never_got_ready(tmp_path):
    from artlens.errors import ArtlensError

    log = tmp_path / "member.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", "print('loading'); print('no such collection'); raise SystemExit(3)"],
                                stdout=out, stderr=subprocess.STDOUT)
    with pytest.raises(ArtlensError, match=r"the member exited with code 3 while starting .*no such collection") as info:
        wait_ready(lambda: False, "the member", 30, proc, log, every=0.05)
    assert str(log) in info.value.hint
    with pytest.raises(ArtlensError, match="was not ready within 0 s"):
        wait_ready(lambda: False, "the portal", 0.2, every=0.05)
    calls = []
    wait_ready(lambda: calls.append(1) or len(calls) > 2, "the portal", 5, every=0.01)
    assert len(calls) == 3
    assert not answers_health(f"http://127.0.0.1:{free_port()}/")  # nothing listens there
