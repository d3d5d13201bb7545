"""A federation in one process: three member servers (real uvicorn on 127.0.0.1, in threads) over a
split of the tiny collection, and a portal over them. Fan-out, merge, member statuses, what travels,
parity with the whole collection on the shared head's aspect, and the files' one-line errors."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from conftest import KINDS
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from federation_support import (
    EXPOSE,
    make_head,
    running_members,
    search_image,
    write_members_toml,
)

from artlens.api.portal import create_portal_app
from artlens.api.server import BackgroundServer
from artlens.api.settings import PortalSettings
from artlens.cli import main
from artlens.errors import ArtlensError
from artlens.federation import (
    MemberEntry,
    Portal,
    load_member_settings,
    load_members,
    token_sha256,
)
from artlens.search import SearchEngine

TOKEN = "portal-token-1"


@pytest.fixture(scope="module")
def federation(tiny_folder, tiny_collection, tmp_path_factory):
    """Three members (the third shares liked works' vectors), their collections, the head, the whole."""
    folder, labels = tiny_folder
    with running_members(folder, labels, tiny_collection, tmp_path_factory.mktemp("federation"), TOKEN) as running:
        yield {**running, "folder": folder}


def run(coro):
    return asyncio.run(coro)


def test_an_image_search_merges_hits_from_every_member_by_score(federation):
    portal = Portal(federation["entries"], head=federation["head"])
    answer = run(search_image(portal, federation["folder"] / "images" / "dots_1.png", k=12))
    assert [m["status"] for m in answer["members"]] == ["ok"] * 3
    assert {h["institution"] for h in answer["results"]} == {"Museum 0", "Museum 1", "Museum 2"}
    assert sum(m["count"] for m in answer["members"]) == 12 and answer["line"] == "3 of 3 institutions answered"
    scores = [h["score"] for h in answer["results"]]
    assert scores == sorted(scores, reverse=True) and answer["weights"] == {"learned": 1.0}
    top = answer["results"][0]
    assert top["metadata"]["title"] == "Red dots scattered 1" and top["score"] == pytest.approx(1.0, abs=1e-4)
    for hit in answer["results"]:
        assert set(hit) >= {"id", "score", "aspects", "institution", "metadata"}
        assert set(hit["metadata"]) <= set(EXPOSE) and "learned" in hit["aspects"]
        member, local = portal.member_of(hit["id"])
        assert member.name == hit["institution"] and local == hit["member_id"]


def test_learned_top_k_equals_the_whole_collections(federation):
    """Parity: the same head, exact indexes: the portal's top-10 is the whole collection's, up to ties."""
    engine = SearchEngine(federation["whole"])
    portal = Portal(federation["entries"], head=federation["head"])
    for kind in KINDS:
        image = federation["folder"] / "images" / f"{kind}_2.png"
        answer = run(search_image(portal, image, k=10, aspect="learned"))
        expected = engine.search(image=str(image), k=10, aspect="learned")
        np.testing.assert_allclose([h["score"] for h in answer["results"]], [h.score for h in expected.hits], atol=1e-4)
        assert {h["metadata"]["title"] for h in answer["results"]} == {h.metadata["title"] for h in expected.hits}


def test_mixed_pretrained_rankings_come_close_to_the_whole_collections(federation):
    """Each member fits its own PCA to its pretrained aspects, so mixed rankings differ a little."""
    whole = federation["whole"]
    engine = SearchEngine(whole)
    portal = Portal(federation["entries"], head=federation["head"])
    weights = {"content": 0.25, "style": 0.65, "colour": 0.1}
    overlaps = []
    for kind in KINDS:
        image = federation["folder"] / "images" / f"{kind}_0.png"
        answer = run(search_image(portal, image, k=5, weights=weights))
        expected = engine.search(image=str(image), k=5, weights=weights)
        overlaps.append(len({h["metadata"]["title"] for h in answer["results"]} & {h.metadata["title"] for h in expected.hits}) / 5)
        assert answer["results"][0]["metadata"]["title"] == expected.hits[0].metadata["title"]  # the image itself
    assert np.mean(overlaps) >= 0.6, overlaps


def test_nothing_but_vectors_leaves_the_portal_and_only_exposed_columns_come_back(federation):
    log: list[dict] = []
    portal = Portal(federation["entries"], head=federation["head"], observer=log.append)
    image = federation["folder"] / "images" / "rings_0.png"
    image_bytes = image.read_bytes()
    answer = run(search_image(portal, image, k=6))
    assert answer["answered"] == 3 and len(log) == 6  # an info and a search per member
    md5s = set()
    for coll in federation["collections"]:
        md5s |= set(coll.catalog.md5s().values())
    for exchange in log:
        request, response = exchange["request"], exchange["response"]
        assert image_bytes[:64] not in request and b"\x89PNG" not in request and b"\xff\xd8\xff" not in request
        text = response.decode()
        assert not any(m in text for m in md5s) and "/images/" not in text and "path" not in json.loads(text)
        body = json.loads(text)
        if "results" in body:
            assert all(set(h["metadata"]) <= set(EXPOSE) and set(h) == {"id", "score", "aspects", "metadata"}
                       for h in body["results"])
            assert "vectors" not in body and "raw" not in body and "learned" not in body
            assert all("artist" not in h["metadata"] for h in body["results"])


def test_a_member_refuses_a_missing_or_wrong_token_and_another_head(federation):
    url = federation["entries"][0].url + "api/federation/"
    assert httpx.get(url + "info").status_code == 401
    assert httpx.get(url + "info", headers={"Authorization": "Bearer nope"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    info = httpx.get(url + "info", headers=auth).json()
    assert info["name"] == "Museum 0" and info["head_id"] == federation["head"].id and info["artworks"] == 4
    assert {f["column"] for f in info["facets"]} <= set(EXPOSE)
    refused = httpx.post(url + "search", headers=auth, json={"head_id": "fusion-000000000000", "k": 3, "weights": {"learned": 1}})
    assert refused.status_code == 409 and "head" in refused.json()["error"]
    hidden = httpx.post(url + "search", headers=auth, json={"head_id": info["head_id"], "k": 3, "weights": {"learned": 1},
                                                            "filters": {"artist": ["artist 0"]}})
    assert hidden.status_code == 422 and "not exposed" in hidden.json()["error"]
    assert httpx.post(url + "vectors", headers=auth, json={"head_id": info["head_id"], "ids": [1]}).status_code == 403
    artwork = httpx.get(url + "artworks/1", headers=auth).json()
    assert set(artwork["metadata"]) <= set(EXPOSE)
    thumb = httpx.get(url + "artworks/1/thumbnail", headers=auth)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"


def test_wrong_token_unreachable_and_garbage_members_never_fail_the_search(federation):
    garbage_app = FastAPI()

    @garbage_app.api_route("/api/federation/{rest:path}", methods=["GET", "POST"])
    def garbage(rest: str):
        return PlainTextResponse("<html>not a member</html>")

    with BackgroundServer(garbage_app) as garbage_url:
        entries = list(federation["entries"])
        entries[1] = MemberEntry(entries[1].name, entries[1].url, "stolen")
        entries.append(MemberEntry("Closed", "http://127.0.0.1:9/", TOKEN))
        entries.append(MemberEntry("Garbage", garbage_url, TOKEN))
        portal = Portal(entries, head=federation["head"], timeout=1.0)
        answer = run(search_image(portal, federation["folder"] / "images" / "dots_0.png", k=6))
    status = {m["name"]: m["status"] for m in answer["members"]}
    assert status == {"Museum 0": "ok", "Museum 1": "unauthorized", "Museum 2": "ok", "Closed": "unreachable",
                      "Garbage": "error"}
    assert {h["institution"] for h in answer["results"]} == {"Museum 0", "Museum 2"}
    assert answer["line"].startswith("2 of 5 institutions answered; Museum 1 refused the portal's token")


def test_the_portal_api_answers_like_a_member_and_recommends_from_several_institutions(federation, tmp_path):
    members = write_members_toml(tmp_path / "MEMBERS.toml", [(e.name, e.url, e.token) for e in federation["entries"]])
    portal = Portal(load_members(members), head=federation["head"])
    app = create_portal_app(PortalSettings(members=members), portal, warm_up=False)
    with BackgroundServer(app) as url:
        image = federation["folder"] / "images" / "stripes_1.png"
        with open(image, "rb") as fh:
            answer = httpx.post(url + "api/search", files={"image": ("q.png", fh, "image/png")}, data={"k": "6"}, timeout=60).json()
        assert len(answer["results"]) == 6 and [m["status"] for m in answer["members"]] == ["ok"] * 3
        assert all(set(m) >= {"name", "status", "ms", "count"} for m in answer["members"])
        again = httpx.post(url + "api/search", data={"upload_id": answer["query"]["upload_id"], "weights": "learned=0.5,style=0.5"}).json()
        assert again["weights"] == {"learned": 0.5, "style": 0.5}
        stats = httpx.get(url + "api/stats").json()
        assert stats["artworks"] == 12 and "learned" in stats["aspects"] and stats["portal"]["timeout_s"] == 2.0
        facets = httpx.get(url + "api/facets").json()["facets"]
        assert {f["column"] for f in facets} == {"style"}
        assert sum(v["count"] for v in facets[0]["values"]) == 12
        page = httpx.get(url + "api/artworks", params={"limit": 6, "seed": 3}).json()
        assert page["total"] == 12 and len({h["institution"] for h in page["results"]}) == 3
        hit = answer["results"][0]
        detail = httpx.get(url + f"api/artworks/{hit['id']}").json()
        assert detail["institution"] == hit["institution"] and set(detail["metadata"]) <= set(EXPOSE)
        thumb = httpx.get(url + f"api/artworks/{hit['id']}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        filtered = httpx.post(url + "api/search", data={"upload_id": answer["query"]["upload_id"],
                                                        "filters": '{"style": ["DOTS"]}'}).json()
        assert filtered["results"] and {h["metadata"]["style"] for h in filtered["results"]} == {"dots"}
        # liked works of two institutions: Museum 2 shares vectors, Museum 0 only thumbnails (encoded on the portal)
        liked = [next(h["id"] for h in answer["results"] if h["institution"] == name) for name in ("Museum 0", "Museum 2")]
        recs = httpx.post(url + "api/search", data={"liked": ",".join(map(str, liked)), "k": "4"}, timeout=60).json()
        assert recs["results"] and not set(liked) & {h["id"] for h in recs["results"]} and "notes" not in recs
        assert httpx.get(url + "api/search").status_code == 405
        bad = httpx.post(url + "api/search", data={"text": "x", "id": "1"})
        assert bad.status_code == 422


def test_search_members_on_the_command_line_prints_the_portals_answer(federation, tmp_path, capsys):
    members = write_members_toml(tmp_path / "MEMBERS.toml", [(e.name, e.url, e.token) for e in federation["entries"]])
    image = federation["folder"] / "images" / "rings_1.png"
    code = main(["search", "--members", str(members), "--head", str(federation["root"] / "head.pt"), "-i", str(image),
                 "-k", "5", "--json"])
    out = capsys.readouterr().out
    answer = json.loads(out)
    assert code == 0 and len(answer["results"]) == 5 and {m["status"] for m in answer["members"]} == {"ok"}
    assert all("institution" in h for h in answer["results"])
    code = main(["portal", "--members", str(members), "--head", str(federation["root"] / "head.pt"), "--check", "--json"])
    rows = json.loads(capsys.readouterr().out)["members"]
    assert code == 0 and [r["artworks"] for r in rows] == [4, 4, 4] and all(r["head_matches"] for r in rows)


def test_portal_check_reports_a_member_on_another_head_and_searches_skip_it(federation, tmp_path, capsys):
    other = make_head(federation["whole"], tmp_path / "other.pt", seed=7)
    members = write_members_toml(tmp_path / "MEMBERS.toml", [(e.name, e.url, e.token) for e in federation["entries"]])
    code = main(["portal", "--members", str(members), "--head", str(tmp_path / "other.pt"), "--check"])
    out = capsys.readouterr().out
    assert code == 1 and "NO" in out and "skipped in searches" in out
    portal = Portal(load_members(members), head=other)
    answer = run(search_image(portal, federation["folder"] / "images" / "dots_0.png", k=4))
    assert answer["results"] == [] and {m["status"] for m in answer["members"]} == {"error"}
    assert all("skipped" in m["detail"] for m in answer["members"])


# -- the files -----------------------------------------------------------------------------------
def test_member_token_prints_a_token_and_its_hash(capsys):
    assert main(["member", "token", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert token_sha256(made["token"]) == made["sha256"] and len(made["sha256"]) == 64


@pytest.mark.parametrize("text, field", [
    ('head = "head.pt"\ntokens_sha256 = ["%s"]\n' % ("a" * 64), "name"),
    ('name = "X"\ntokens_sha256 = ["%s"]\n' % ("a" * 64), "head"),
    ('name = "X"\nhead = "head.pt"\ntokens_sha256 = ["abc123"]\n', "tokens_sha256[0]"),
    ('name = "X"\nhead = "missing.pt"\ntokens_sha256 = ["%s"]\n' % ("a" * 64), "head"),
    ('name = "X"\nhead = "head.pt"\ntokens_sha256 = ["%s"]\nexpose = ["md5"]\n' % ("a" * 64), "expose"),
    ('name = "X"\nhead = "head.pt"\ntokens_sha256 = ["%s"]\ncolour = true\n' % ("a" * 64), "colour"),
])
def test_a_malformed_member_toml_is_one_line_naming_file_and_field(text, field, tmp_path, capsys, tiny_collection):
    (tmp_path / "head.pt").write_bytes(b"")
    path = tmp_path / "MEMBER.toml"
    path.write_text(text)
    with pytest.raises(ArtlensError) as caught:
        load_member_settings(path)
    assert str(path) in caught.value.message and field in caught.value.message
    code = main(["serve", "-c", str(tiny_collection.root), "--member", str(path), "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("text, field", [
    ('[[member]]\nurl = "http://127.0.0.1:1"\ntoken = "t"\n', "name"),
    ('[[member]]\nname = "A"\ntoken = "t"\n', "url"),
    ('[[member]]\nname = "A"\nurl = "ftp://x"\ntoken = "t"\n', "url"),
    ('[[member]]\nname = "A"\nurl = "http://x"\n', "token"),
    ('[[member]]\nname = "A"\nurl = "http://x"\ntoken = "t"\n[[member]]\nname = "A"\nurl = "http://y"\ntoken = "t"\n', "A"),
    ("title = 'x'\n", "title"),
])
def test_a_malformed_members_toml_is_one_line_naming_file_and_field(text, field, tmp_path, capsys):
    path = tmp_path / "MEMBERS.toml"
    path.write_text(text)
    code = main(["portal", "--members", str(path), "--check"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and str(path) in err and field in err.splitlines()[0]
