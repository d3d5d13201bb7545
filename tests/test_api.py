"""The REST API in-process (FastAPI TestClient) on the tiny collection."""

import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx")
from conftest import unlabelled_copy  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from registry_support import LICENCE, OWNER, tiny_registry  # noqa: E402

from artlens.annotation import Annotator as CollectionAnnotator  # noqa: E402
from artlens.api import ApiSettings, create_app  # noqa: E402
from artlens.api.facets import FacetIndex  # noqa: E402
from artlens.api.protocols import Annotator, CopyrightChecker  # noqa: E402
from artlens.api.settings import ENVIRONMENT, AccessSettings  # noqa: E402
from artlens.catalog.db import Catalog  # noqa: E402
from artlens.collection import Collection  # noqa: E402
from artlens.copyright.check import CopyrightChecker as RegistryChecker  # noqa: E402
from artlens.copyright.registry import CopyrightRegistry  # noqa: E402
from artlens.recommend import diversify  # noqa: E402
from artlens.search import Hit  # noqa: E402


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def settings(tiny_collection, tmp_path_factory):
    # one client sends every request of this module: no rate limit (tests/test_security.py tests it)
    return ApiSettings(collection=tiny_collection.root, thumbnail_dir=tmp_path_factory.mktemp("thumbs"),
                       access=AccessSettings(rate_limit=0))


@pytest.fixture(scope="module")
def client(settings, tiny_collection):
    with TestClient(create_app(settings, collection=tiny_collection)) as c:
        yield c


@pytest.fixture(scope="module")
def dots(tiny_folder) -> bytes:
    folder, _ = tiny_folder
    return (folder / "images" / "dots_1.png").read_bytes()


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "hint", "status"} and body["status"] == status
    for word in words:
        assert word in body["error"].lower(), body
    return body


def ids_of(answer: dict) -> list[int]:
    return [r["id"] for r in answer["results"]]


# -- collection endpoints -----------------------------------------------------------------------
def test_health_stats_and_facets(client, tiny_collection):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["artworks"] == 12
    assert set(health["aspects"]) == {"content", "style", "colour", "text"}
    stats = client.get("/api/stats")
    assert stats.status_code == 200
    data = stats.json()
    assert data["artworks"] == 12 and data["limits"]["max_k"] >= data["limits"]["default_k"]
    assert str(tiny_collection.root.parent) not in stats.text  # no server paths
    facets = {f["column"]: f for f in client.get("/api/facets").json()["facets"]}
    assert set(facets) == {"artist", "style"}  # title is a text column, not a filter
    assert {v["value"]: v["count"] for v in facets["style"]["values"]} == {"stripes": 4, "dots": 4, "rings": 4}


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    for path in ("/api/search", "/api/artworks/{artwork_id}", "/api/artworks/{artwork_id}/thumbnail", "/api/facets",
                 "/api/health", "/api/stats", "/api/annotate", "/api/copyright/check"):
        assert path in schema["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs.js" in docs.text  # the offline reference
    assert "swagger" in client.get("/docs/swagger").text.lower()


# -- search -------------------------------------------------------------------------------------
def test_search_by_text_answers_results_with_aspects_and_facets(client):
    answer = client.post("/api/search", data={"text": "concentric green rings", "k": 3}).json()
    assert len(answer["results"]) == 3
    first = answer["results"][0]
    assert set(first) == {"id", "score", "aspects", "metadata", "thumbnail"}
    assert first["thumbnail"] == f"/api/artworks/{first['id']}/thumbnail"
    assert all(r["metadata"]["style"] == "rings" for r in answer["results"])
    assert answer["weights"] == {"text": 1.0} and answer["aspects"] == ["text"]
    assert answer["facets"]["style"] == [{"value": "rings", "count": 3}]
    assert "path" not in first and "path" not in first["metadata"]
    fast = client.post("/api/search", data={"text": "concentric green rings", "k": 3, "fast": "true"}).json()
    assert [r["id"] for r in fast["results"]] == [r["id"] for r in answer["results"]]


def test_search_by_upload_finds_itself_and_reranks_by_upload_id(client, dots):
    answer = client.post("/api/search", files={"image": ("q.png", dots, "image/png")}, data={"k": "4"}).json()
    top = answer["results"][0]
    assert top["metadata"]["title"] == "Red dots scattered 1" and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert set(top["aspects"]) == {"content", "style", "colour"}
    upload_id = answer["query"]["upload_id"]
    assert answer["query"]["image"] == "upload" and re.fullmatch(r"[0-9a-f]{32}", upload_id)
    # Moving a slider: the same upload, re-ranked by style only, without sending it again.
    again = client.post("/api/search", data={"upload_id": upload_id, "weights": "content=0,style=1", "k": "4"}).json()
    assert again["weights"] == {"style": 1.0}
    scores = [r["score"] for r in again["results"]]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, [r["aspects"]["style"] for r in again["results"]], atol=1e-5)
    assert client.post("/api/search", data={"upload_id": "0" * 32}).status_code == 404


def test_search_by_id_with_weights_and_filters(client, tiny_collection):
    first = tiny_collection.catalog.ids()[0]
    answer = client.post("/api/search", data={"id": str(first), "weights": json.dumps({"style": 1}), "k": "5"}).json()
    assert first not in ids_of(answer) and answer["weights"] == {"style": 1.0}
    filtered = client.post("/api/search", data={"id": str(first), "filters": "style=dots", "k": "20"}).json()
    assert filtered["results"] and {r["metadata"]["style"] for r in filtered["results"]} == {"dots"}
    both = client.post("/api/search", data={"text": "rings", "filters": ['{"style": ["dots", "stripes"]}', "artist=artist 0"]}).json()
    assert {r["metadata"]["style"] for r in both["results"]} <= {"dots", "stripes"}
    assert {r["metadata"]["artist"] for r in both["results"]} == {"artist 0"}
    none = client.post("/api/search", data={"text": "rings", "filters": "style=cubism"}).json()
    assert none["results"] == []
    # any column matches ignoring case, facet or not (titles are too long to be facets)
    titled = client.post("/api/search", data={"text": "rings", "filters": "title=RED DOTS SCATTERED 1"}).json()
    assert [r["metadata"]["title"] for r in titled["results"]] == ["Red dots scattered 1"]
    # a bounded number of filter values per request
    many = client.post("/api/search", data={"text": "rings", "filters": json.dumps({"style": [f"s{i}" for i in range(500)]})})
    assert many.status_code == 422 and "too many filters" in many.json()["error"]


def test_recommendations_from_liked_ids_spread_over_artists(client, tiny_collection):
    liked = tiny_collection.catalog.ids()[:2]
    answer = client.post("/api/search", data={"liked": [str(i) for i in liked], "k": "4"}).json()
    assert answer["query"] == {"liked": liked}
    assert len(answer["results"]) == 4 and not set(ids_of(answer)) & set(liked)
    artists = [r["metadata"]["artist"] for r in answer["results"]]
    assert artists.count("artist 0") == 2 and artists.count("artist 1") == 2  # capped: no artist fills the page
    same = client.post("/api/search", data={"liked": ",".join(map(str, liked)), "k": "4"}).json()
    assert ids_of(same) == ids_of(answer)


def test_diversify_caps_and_interleaves_groups():
    hits = [Hit(i, 1 - i / 100, {}, "", {"artist": a}) for i, a in enumerate("AAAABBC")]
    by_artist = lambda h: h.metadata["artist"]  # noqa: E731
    assert [h.id for h in diversify(hits, 4, by_artist, 2)] == [0, 1, 4, 5]  # capped, in score order
    assert [h.id for h in diversify(hits, 6, by_artist, 2)] == [0, 1, 4, 5, 6, 2]  # the cap rises to fill up
    assert [h.id for h in diversify(hits, 3, by_artist, 1)] == [0, 4, 6]
    assert [h.id for h in diversify(hits, 4, by_artist, 4, penalty=0.05)] == [0, 4, 1, 6]  # interleaved
    assert [h.id for h in diversify(hits, 7, by_artist, 7)] == list(range(7))


@pytest.mark.parametrize("data, status, word", [
    ({}, 422, "exactly one"),
    ({"text": "dots", "id": "1"}, 422, "exactly one"),
    ({"text": "dots", "k": "0"}, 422, "k"),
    ({"text": "dots", "k": "999"}, 422, "k must be"),
    ({"id": "999999"}, 404, "no artwork"),
    ({"id": str(2**70)}, 422, "id"),
    ({"liked": "999998,999999"}, 404, "liked"),
    ({"liked": "one,two"}, 422, "integers"),
    ({"text": "dots", "weights": "content=abc"}, 422, "weight"),
    ({"text": "dots", "weights": "content=-1"}, 422, ">= 0"),
    ({"text": "dots", "weights": "{bad json"}, 422, "json"),
    ({"id": "1", "weights": "texture=1"}, 422, "unknown aspect"),
    ({"id": "1", "weights": "content=0,style=0,colour=0,text=0"}, 422, "zero"),
    ({"text": "dots", "filters": "nocolumn=1"}, 422, "unknown filter"),
    ({"text": "dots", "filters": "no equals sign"}, 422, "bad filter"),
    ({"text": "dots", "aspect": "texture"}, 422, "aspect"),
    ({"upload_id": "../../etc/passwd"}, 422, "upload_id"),
])
def test_bad_search_parameters_are_json_errors(client, data, status, word):
    assert_error(client.post("/api/search", data=data), status, word)


def test_huge_weights_mix_like_their_ratio(client, tiny_collection):
    first = str(tiny_collection.catalog.ids()[0])
    huge = client.post("/api/search", data={"id": first, "weights": json.dumps({"content": 1e308, "style": 1e308})})
    plain = client.post("/api/search", data={"id": first, "weights": "content=1,style=1"}).json()
    assert huge.status_code == 200 and huge.json()["weights"] == {"content": 0.5, "style": 0.5}
    assert ids_of(huge.json()) == ids_of(plain) and ids_of(plain)
    tiny = client.post("/api/search", data={"id": first, "weights": "content=1e-320,style=3e-320"}).json()
    assert tiny["weights"] == {"content": 0.25, "style": 0.75} and tiny["results"]


def test_the_schema_bounds_k_by_the_servers_limit(client, settings):
    schema = client.get("/openapi.json").json()
    form = next(v for name, v in schema["components"]["schemas"].items() if name.startswith("Body_search"))
    k = next(option for option in form["properties"]["k"]["anyOf"] if option.get("type") == "integer")
    assert k["maximum"] == settings.max_k and k["minimum"] == 1
    assert len(client.post("/api/search", data={"text": "dots", "k": str(settings.max_k)}).json()["results"]) == 12
    assert_error(client.post("/api/search", data={"text": "dots", "k": str(settings.max_k + 1)}), 422,
                 f"k must be less than or equal to {settings.max_k}")


# -- uploads ------------------------------------------------------------------------------------
def test_upload_limits(client, settings, tiny_collection, dots):
    assert_error(client.post("/api/search", files={"image": ("a.txt", b"just some text", "text/plain")}), 415, "not an image")
    assert_error(client.post("/api/search", files={"image": ("a.png", b"<html>hello</html>", "image/png")}), 415)
    broken = b"\xff\xd8\xff\xe0" + b"\x00garbage" * 20
    assert_error(client.post("/api/search", files={"image": ("a.jpg", broken, "image/jpeg")}), 422, "cannot be decoded")
    assert_error(client.post("/api/search", files={"image": ("a.jpg", b"", "image/jpeg")}), 422, "empty")
    small = ApiSettings(collection=settings.collection, thumbnail_dir=settings.thumbnail_dir,
                        max_upload_bytes=2000, max_upload_pixels=50 * 50)
    with TestClient(create_app(small, collection=tiny_collection, warm_up=False)) as strict:
        big = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)))
        assert len(big) > 2000
        assert_error(strict.post("/api/search", files={"image": ("big.png", big, "image/png")}), 413, "larger")
        many_pixels = png_bytes(Image.new("RGB", (60, 60), (1, 2, 3)))
        assert_error(strict.post("/api/search", files={"image": ("p.png", many_pixels, "image/png")}), 413, "pixels")
        # A declared body far over the limit is refused before it is read.
        huge = strict.post("/api/search", content=b"x" * 400_000, headers={"content-type": "multipart/form-data; boundary=x"})
        assert_error(huge, 413, "larger")
        # the artist search takes several references: its body may hold several uploads' worth
        form = {"content-type": "multipart/form-data; boundary=x"}  # limits: 2,000 + 256 KiB; 8 x 2,000 + 256 KiB
        assert_error(strict.post("/api/search", content=b"x" * 270_000, headers=form), 413, "larger")
        assert strict.post("/api/artists/search", content=b"x" * 270_000, headers=form).status_code != 413
        assert_error(strict.post("/api/artists/search", content=b"x" * 300_000, headers=form), 413, "larger")


def test_upload_in_another_format_and_orientation(client, tiny_folder):
    folder, _ = tiny_folder
    image = Image.open(folder / "images" / "rings_2.png").convert("RGB")
    answer = client.post("/api/search", files={"image": ("x.webp", png_bytes(image, "WEBP"), "image/webp")}, data={"k": 3}).json()
    assert answer["results"][0]["metadata"]["style"] == "rings"


# -- artworks and thumbnails --------------------------------------------------------------------
def test_artwork_detail_and_thumbnails(client, tiny_collection):
    first = tiny_collection.catalog.ids()[0]
    detail = client.get(f"/api/artworks/{first}")
    assert detail.status_code == 200
    data = detail.json()
    assert data["id"] == first and data["metadata"]["title"] and data["width"] == 96
    assert set(data["aspects"]) == {"content", "style", "colour", "text"}
    assert str(tiny_collection.root.parent) not in detail.text and "path" not in data
    thumb = client.get(data["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    assert client.get(data["thumbnail"], headers={"If-None-Match": thumb.headers["etag"]}).status_code == 304
    assert client.get(data["image"]).status_code == 200
    assert_error(client.get(f"/api/artworks/{first}/thumbnail?size=huge"), 422)
    assert_error(client.get("/api/artworks/999999"), 404, "no artwork")
    assert_error(client.get("/api/artworks/999999/thumbnail"), 404)
    assert_error(client.get(f"/api/artworks/{2**64}"), 422)


def test_browse_pages_and_filters(client):
    page = client.get("/api/artworks", params={"limit": 5}).json()
    assert page["total"] == 12 and len(page["results"]) == 5
    rest = client.get("/api/artworks", params={"limit": 50, "offset": 5}).json()
    assert not {r["id"] for r in rest["results"]} & {r["id"] for r in page["results"]}
    dots = client.get("/api/artworks", params={"filters": "style=dots"}).json()
    assert dots["total"] == 4 and {r["metadata"]["style"] for r in dots["results"]} == {"dots"}
    shuffled = client.get("/api/artworks", params={"seed": 3}).json()
    assert sorted(r["id"] for r in shuffled["results"]) == sorted(r["id"] for r in client.get("/api/artworks").json()["results"])


@pytest.mark.parametrize("path", ["/api/artworks/..%2F..%2Fetc%2Fpasswd/thumbnail", "/../../etc/passwd", "/app.js/../../x",
                                  "/api/artworks/1/thumbnail?size=../../etc/passwd", "/static/../pyproject.toml"])
def test_no_request_path_reaches_the_file_system(client, path):
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert "root:" not in response.text and "[project]" not in response.text


# -- optional services --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_folder) -> Path:
    return tiny_registry(tmp_path_factory, tiny_folder)


@pytest.fixture(scope="module")
def unlabelled(tiny_collection, tmp_path_factory) -> Collection:
    """The tiny collection with nothing to annotate, and a numeric facet (``edition``)."""
    return unlabelled_copy(tiny_collection, tmp_path_factory.mktemp("unlabelled") / "c")


def noise_png() -> bytes:
    """A picture unlike any of the tiny collection's."""
    return png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)))


def test_the_real_components_implement_the_protocols(tiny_collection, registry):
    assert isinstance(CollectionAnnotator(tiny_collection), Annotator)
    assert isinstance(RegistryChecker(CopyrightRegistry.open(registry), tiny_collection), CopyrightChecker)


def test_optional_services_answer_501_saying_what_is_missing(settings, unlabelled, dots):
    files = {"image": ("q.png", dots, "image/png")}
    plain = ApiSettings(collection=unlabelled.root, thumbnail_dir=settings.thumbnail_dir)
    with TestClient(create_app(plain, collection=unlabelled, warm_up=False)) as c:
        body = assert_error(c.post("/api/annotate", files=files), 501, "annotation", "single value")
        assert "'artist'" in body["error"] and "hokusai" in body["error"].lower() and "--labels" in body["hint"]
        assert_error(c.post("/api/copyright/check", files=files), 501, "not set up")  # no registry given
        assert c.get("/api/stats").json()["features"] == {"annotation": False, "copyright": False, "artists": False}
    with_registry = ApiSettings(collection=settings.collection, thumbnail_dir=settings.thumbnail_dir,
                                copyright_registry=settings.collection.parent / "no-registry")
    with TestClient(create_app(with_registry, collection=unlabelled, warm_up=False)) as c:
        assert_error(c.post("/api/copyright/check", files=files), 501, "no copyright registry")  # the module's own error
        assert c.get("/api/stats").json()["features"]["copyright"] is False


def test_annotate_says_when_the_nearest_labelled_works_are_far(client, dots):
    response = client.post("/api/annotate", files={"image": ("q.png", dots, "image/png")}, data={"top": "2"})
    assert response.status_code == 200, response.text
    answer = response.json()
    labels = answer["labels"]
    assert set(labels) == {"style", "artist"}  # the label columns of the tiny collection
    assert labels["style"][0]["label"] == "dots" and len(labels["style"]) == 2
    assert sum(p["probability"] for p in labels["style"]) <= 1.0 + 1e-6
    assert answer["weak"] is False and answer["columns"]["style"]["method"] == "probe"
    assert answer["columns"]["style"]["nearest"] > answer["columns"]["style"]["threshold"]
    far = client.post("/api/annotate", files={"image": ("noise.png", noise_png(), "image/png")}).json()
    assert far["weak"] is True and far["columns"]["style"]["weak"] is True
    assert far["columns"]["style"]["nearest"] < far["columns"]["style"]["threshold"]
    assert client.get("/api/stats").json()["features"]["annotation"] is True


def test_copyright_check_against_a_real_registry(settings, tiny_collection, tiny_folder, registry, dots):
    folder, _ = tiny_folder
    with_registry = ApiSettings(collection=settings.collection, thumbnail_dir=settings.thumbnail_dir,
                                copyright_registry=registry)
    with TestClient(create_app(with_registry, collection=tiny_collection, warm_up=False)) as c:
        response = c.post("/api/copyright/check", files={"image": ("q.png", dots, "image/png")}, data={"k": "3"})
        assert response.status_code == 200, response.text
        verdict = response.json()
        assert verdict["verdict"] == "registered" and verdict["registered"] and verdict["stage"] == "exact"
        assert verdict["owner"] == OWNER and verdict["score"] == pytest.approx(1.0)
        assert verdict["work"] == {"id": verdict["work"]["id"], "owner": OWNER, "licence": LICENCE,
                                   "title": "Red dots scattered 1"}
        assert set(verdict["evidence"]) == {"detector", "search", "threshold"}
        alternatives = verdict["alternatives"]
        assert len(alternatives) == 3  # from the served collection, so with thumbnails here
        assert all(a["thumbnail"] == f"/api/artworks/{a['id']}/thumbnail" for a in alternatives)
        assert alternatives[0]["title"] == "Red dots scattered 1"  # the upload itself is a free work too
        assert set(alternatives[0]) >= {"id", "score", "title", "artist", "owner", "licence", "thumbnail"}
        assert str(folder) not in response.text and str(registry) not in response.text and "path" not in response.text
        assert_error(c.post("/api/copyright/check", files={"image": ("q.txt", b"text", "text/plain")}), 415)
        assert c.get("/api/stats").json()["features"]["copyright"] is True
        other = c.post("/api/copyright/check", files={"image": ("n.png", noise_png(), "image/png")}).json()
        assert other["verdict"] == "not-registered" and other["work"] is None and other["owner"] is None
        closest = other["closest"]  # the near miss: the nearest registered work, below the threshold
        assert set(closest) >= {"id", "score"} and closest["score"] == other["score"] < other["evidence"]["threshold"]


def test_copyright_check_passes_the_fast_field_to_the_checker(settings, tiny_collection, registry, dots):
    # a shortlist smaller than the registry, so that the fast mode really answers
    checker = RegistryChecker(CopyrightRegistry.open(registry), tiny_collection, alternatives=6, shortlist=4)
    app = create_app(settings, collection=tiny_collection, copyright_checker=checker, warm_up=False)
    with TestClient(app) as c:
        files = {"image": ("q.png", dots, "image/png")}
        exact = c.post("/api/copyright/check", files=files).json()
        fast = c.post("/api/copyright/check", files=files, data={"fast": "true"}).json()
        assert exact["evidence"]["search"] == "exact" and fast["evidence"]["search"] == "fast"
        assert (fast["verdict"], fast["work"]) == (exact["verdict"], exact["work"])
        assert_error(c.post("/api/copyright/check", files=files, data={"fast": "maybe"}), 422)
    schema = app.openapi()["components"]["schemas"]
    form = next(v for name, v in schema.items() if "copyright" in name.lower() and "check" in name.lower())
    assert "fast" in form["properties"]


def test_alternatives_from_another_free_collection_have_thumbnails_here(settings, tiny_collection, unlabelled,
                                                                        registry, dots):
    free = ApiSettings(collection=settings.collection, thumbnail_dir=settings.thumbnail_dir,
                       copyright_registry=registry, copyright_free=unlabelled.root)
    with TestClient(create_app(free, collection=tiny_collection, warm_up=False)) as c:
        response = c.post("/api/copyright/check", files={"image": ("q.png", dots, "image/png")}, data={"k": "2"})
        alternatives = response.json()["alternatives"]
        assert [a["thumbnail"] for a in alternatives] == [f"/api/copyright/free/{a['id']}/thumbnail" for a in alternatives]
        assert alternatives[0]["artist"] in (None, "Hokusai")  # read when the check gives it
        assert str(unlabelled.root) not in response.text
        thumb = c.get(alternatives[0]["thumbnail"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert c.get(alternatives[0]["thumbnail"], headers={"If-None-Match": thumb.headers["etag"]}).status_code == 304
        assert_error(c.get("/api/copyright/free/999999/thumbnail"), 404, "free works")
    with TestClient(create_app(settings, collection=tiny_collection, warm_up=False)) as c:  # the served one is free
        first = tiny_collection.catalog.ids()[0]
        assert c.get(f"/api/copyright/free/{first}/thumbnail").content == c.get(f"/api/artworks/{first}/thumbnail").content


# -- facets -------------------------------------------------------------------------------------
def test_year_columns_become_decade_facets(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    years = [1881, 1885, 1889, 1890, 1899, 1905, 1911, 1923, 1930, 1944, 1950, 1962, 1977, 1988]
    with catalog.transaction():
        for i, year in enumerate(years):
            artwork_id, _ = catalog.add_file(f"/x/{i}.jpg", f"{i:032x}", 1, 1, 1, 1)
            catalog.set_metadata(artwork_id, {"date": f"c. {year}", "title": f"Work {i}", "style": "A" if i % 2 else "B"})
    index = FacetIndex(catalog, text_columns=("title",))
    facets = index.facets()
    assert set(facets) == {"date", "style"} and facets["date"].kind == "decades"
    assert dict(facets["date"].counts)["1880s"] == 3
    assert index.expand({"date": ["1880s"], "style": ["A"]}) == {"date": ["c. 1881", "c. 1885", "c. 1889"], "style": ["A"]}
    assert catalog.filter_ids(index.expand({"date": ["1890s"]})) == [4, 5]
    assert index.expand({"style": ["a", "cubism"]}) == {"style": ["A", "cubism"]}  # any case; no match kept
    catalog.close()


def test_numbers_sort_as_numbers(settings, unlabelled):
    plain = ApiSettings(collection=unlabelled.root, thumbnail_dir=settings.thumbnail_dir)
    with TestClient(create_app(plain, collection=unlabelled, warm_up=False)) as c:
        facets = {f["column"]: f for f in c.get("/api/facets").json()["facets"]}
        assert [v["value"] for v in facets["edition"]["values"]] == [str(n) for n in range(1, 13)]
        answer = c.post("/api/search", data={"text": "dots", "k": "12"}).json()
        assert [v["value"] for v in answer["facets"]["edition"]] == [str(n) for n in range(1, 13)]  # equal counts
    index = FacetIndex(unlabelled.catalog, text_columns=("title",))
    counts = index.counts([{"edition": "10"}, {"edition": "2"}, {"edition": "10"}, {"edition": "9"}, {"edition": "x"}])
    assert [v["value"] for v in counts["edition"]] == ["10", "2", "9", "x"]  # by count, then numbers in order


# -- the page -----------------------------------------------------------------------------------
def test_page_is_served_from_memory_and_needs_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset, kind in (("/app.js", "javascript"), ("/style.css", "text/css"), ("/favicon.svg", "image/svg"),
                        ("/docs", "text/html"), ("/docs.js", "javascript")):
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert not re.search(r"""(src|href|url|import|fetch)\s*[=(]\s*["']?(https?:)?//""", response.text), asset
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    assert 'capture="environment"' in page.text and 'name="viewport"' in page.text


# -- command line -------------------------------------------------------------------------------
def test_serve_command_maps_flags_onto_settings(tiny_collection, monkeypatch, tmp_path):
    from artlens.api import server
    from artlens.cli import main

    seen = {}
    monkeypatch.setattr(server, "serve_app", lambda app, host, port, on_ready, threads: seen.update(app=app, host=host, port=port))
    code = main(["serve", "--collection", str(tiny_collection.root), "--port", "8123", "--host", "0.0.0.0",
                 "--thumbnails", str(tmp_path), "--max-upload-mb", "5"])
    assert code == 0 and seen["host"] == "0.0.0.0" and seen["port"] == 8123
    settings = seen["app"].state.settings
    assert settings.thumbnail_dir == tmp_path and settings.max_upload_bytes == 5 * 2**20
    assert main(["serve", "--collection", str(tmp_path / "missing")]) == 2
    # the environment fills what the flags leave out, and the help names it and the defaults
    monkeypatch.setenv("ARTLENS_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("ARTLENS_STUDY", str(tmp_path / "study"))
    assert main(["serve", "--collection", str(tiny_collection.root), "--thumbnails", str(tmp_path)]) == 0
    settings = seen["app"].state.settings
    assert settings.copyright_registry == tmp_path / "registry" and settings.study_dir == tmp_path / "study"
    assert settings.max_upload_bytes == ApiSettings.max_upload_bytes
    from artlens.cli import serve_cmd

    assert serve_cmd.DEFAULT_UPLOAD_MB * 2**20 == ApiSettings.max_upload_bytes
    help_text = " ".join(p.help or "" for p in serve_cmd.serve.__defaults__ if hasattr(p, "help"))
    assert {v for k, v in ENVIRONMENT.items() if k != "study_dir"} <= set(re.findall(r"\$(\w+)", help_text))


def test_settings_read_the_environment_only_when_asked():
    env = {"ARTLENS_FREE": "/free", "ARTLENS_ARTIST_HEAD": "/head.pt", "ARTLENS_REGISTRY": ""}
    settings = ApiSettings.from_env("/c", env, artist_head=Path("/given.pt"), max_k=None)
    assert settings.copyright_free == Path("/free") and settings.artist_head == Path("/given.pt")
    assert settings.copyright_registry is None and settings.max_k == ApiSettings.max_k
    assert ApiSettings(collection=Path("/c")).copyright_free is None


def test_taken_port_is_a_clear_error():
    from artlens.api.server import bind
    from artlens.errors import ArtlensError

    sock = bind("127.0.0.1", 0)
    sock.listen()
    try:
        with pytest.raises(ArtlensError, match="cannot listen"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


# -- schema fuzzing -----------------------------------------------------------------------------
SCHEMATHESIS_CONFIG = """
[checks.not_a_server_error]
# 501 is the documented answer of /api/annotate and /api/copyright/check while their modules are absent.
expected-statuses = ["2xx", "3xx", "4xx", "501"]
"""


def run_schemathesis(settings, collection, tmp_path, max_examples: int):
    """schemathesis against a real server of ``collection`` (with a study, so that its routes answer
    more than 404); rate limits off, so that the fuzzer reaches the routes. By hand:

        artlens serve --collection C --port 8000 --rate-limit 0 &
        schemathesis --config-file schemathesis.toml run http://127.0.0.1:8000/openapi.json \\
            --checks all --exclude-checks positive_data_acceptance --max-examples 100

    (``positive_data_acceptance`` is left out: the schema cannot say "exactly one of image, text, id,
    liked", nor which columns a filter may name, so some schema-valid requests are rightly 422.)
    """
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    from artlens.api.server import BackgroundServer
    from artlens.study import create_study

    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    study = create_study(collection, "style", 3, 4, out=tmp_path / "study")
    app = create_app(dataclasses.replace(settings, access=AccessSettings(rate_limit=0)), collection=collection)
    app.state.study_dir = study.root
    with BackgroundServer(app) as url:
        run = subprocess.run(
            [str(cli), "--config-file", str(config), "run", f"{url}openapi.json", "--checks", "all",
             "--exclude-checks", "positive_data_acceptance", "--max-examples", str(max_examples), "--seed", "1",
             "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    return run


def test_schemathesis_finds_no_server_errors_nor_undocumented_answers(settings, tiny_collection, tmp_path):
    """0 server errors, answers that match the schema, every status answered documented (bounded)."""
    run = run_schemathesis(settings, tiny_collection, tmp_path, max_examples=10)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


@pytest.mark.slow
def test_schemathesis_at_length(settings, tiny_collection, tmp_path):
    run = run_schemathesis(settings, tiny_collection, tmp_path, max_examples=60)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_demo_serves_its_collection_after_the_example_searches(tmp_path, monkeypatch, capsys):
    from artlens.api import server
    from artlens.cli import main

    seen = {}
    monkeypatch.setattr(server, "serve_app", lambda app, host, port, on_ready: seen.update(app=app, host=host, port=port))
    assert main(["demo", "--out", str(tmp_path / "demo"), "--n", "12", "-q", "--port", "0"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 0
    with TestClient(seen["app"]) as c:
        assert c.get("/api/health").json()["artworks"] == 12
        assert c.post("/api/search", data={"text": "dotted portrait", "k": 3}).json()["results"]
    assert "Serving the web page" in capsys.readouterr().out
    seen.clear()
    assert main(["demo", "--out", str(tmp_path / "demo"), "--n", "12", "-q", "--no-serve"]) == 0
    assert not seen


@pytest.mark.slow
def test_demo_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    import os
    import signal
    import time

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "artlens", "demo", "--out", str(tmp_path / "demo"), "--n", "12", "-q",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, deadline = None, time.monotonic() + 240
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"serving at (http://\S+/)", line)
            url = match.group(1) if match else None
        assert url, "the demo did not print its URL"
        assert httpx.get(url + "api/health", timeout=30).json()["artworks"] == 12
        assert "artlens" in httpx.get(url, timeout=30).text
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
