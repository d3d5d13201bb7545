"""The PostgreSQL backend on a real server (tests/postgres_support.py): locations and their errors,
ingest / stats / search through the same Collection, copies in both directions with the same
search results, the writers' advisory lock, and readers that see each commit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from artlens.cli import main
from artlens.collection import Collection, PostgresCollection, copy_collection
from artlens.errors import ArtlensError, CollectionError
from artlens.postgres import is_postgres, parse_location
from artlens.search.engine import SearchEngine

pytestmark = pytest.mark.postgres


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def hits(result) -> list[tuple[int, float]]:
    return [(h.id, round(h.score, 4)) for h in result.hits]


@pytest.fixture(scope="module")
def pg_copy(tiny_collection, postgres_server):
    """The tiny collection copied into a schema of its own (shared by the module, read only)."""
    from postgres_support import drop_schema, new_schema_url

    url, schema = new_schema_url(postgres_server)
    report = copy_collection(tiny_collection.root, url)
    coll = Collection.open(url)
    yield coll, report
    coll.close()
    drop_schema(postgres_server, schema)


# -- locations and their errors -------------------------------------------------------------------
def test_a_location_is_parsed_with_its_schema_and_survives_pathlib():
    loc = parse_location("postgresql://art:secret@db.example:5433/museum?schema=prints&sslmode=require")
    assert loc.schema == "prints"
    assert "schema" not in loc.conninfo and "sslmode=require" in loc.conninfo
    assert "secret" not in str(loc) and "***" in str(loc)
    folded = Path("postgresql://art@db.example/museum")  # what a typer Path option makes of it
    assert is_postgres(folded) and parse_location(folded).conninfo.startswith("postgresql://art@db.example/")
    assert parse_location("postgresql://a@h/db").schema == "artlens"
    assert not is_postgres(Path("some/folder"))


@pytest.mark.parametrize("url, message", [
    ("postgresql://art@db.example:5432/", "names no database"),
    ("postgresql://art@db.example/db?schema=Bad-Name", "bad schema name"),
])
def test_a_bad_url_is_a_one_line_error(url, message):
    with pytest.raises(ArtlensError, match=message):
        parse_location(url)


def test_an_unreachable_server_is_a_one_line_error_exit_2_and_nothing_written(capsys, tiny_folder, tmp_path):
    folder, labels = tiny_folder
    code, out, err = run_cli(capsys, "ingest", folder, "--labels", labels, "-c",
                             "postgresql://art@127.0.0.1:1/museum", "-q")
    assert code == 2 and out == ""
    assert "cannot reach the PostgreSQL server" in err and len(err.strip().splitlines()) <= 2
    code, out, err = run_cli(capsys, "stats", "-c", "postgresql://art@127.0.0.1:1/")
    assert code == 2 and "names no database" in err
    assert not (tmp_path / "postgresql:").exists() and not Path("postgresql:").exists()


def test_a_missing_schema_a_newer_schema_and_a_missing_extension_say_what_to_do(pg_url, postgres_server):
    with pytest.raises(CollectionError, match="no artlens collection"):
        Collection.open(pg_url)
    Collection.open(pg_url, create=True).close()
    schema = parse_location(pg_url).schema
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"UPDATE {schema}.info SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(CollectionError, match="newer than this artlens"):
        Collection.open(pg_url)
    # a database without pgvector, opened by a role that may not install it
    name = schema.replace("t_", "noext_")
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"GRANT ALL ON DATABASE {name} TO {name}")
    try:
        base = postgres_server.url.replace("postgresql://postgres", f"postgresql://{name}", 1)
        url = base.replace("/postgres?", f"/{name}?", 1) if "/postgres?" in base else base.rsplit("/", 1)[0] + f"/{name}"
        with pytest.raises(CollectionError, match="CREATE EXTENSION vector"):
            Collection.open(url, create=True)
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {name}")


# -- the same use cases ---------------------------------------------------------------------------
def test_ingest_stats_and_search_work_on_a_postgres_collection(capsys, tiny_folder, pg_url):
    folder, labels = tiny_folder
    code, out, err = run_cli(capsys, "ingest", folder, "--labels", labels, "-c", pg_url, "-q", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ingest"]["added"] == 12 and set(report["indexes"].values()) == {12}
    code, out, _ = run_cli(capsys, "stats", "-c", pg_url, "--json")
    stats = json.loads(out)
    assert stats["artworks"] == 12 and stats["backend"] == "postgresql" and stats["generation"] == 1
    assert {i["kind"] for i in stats["indexes"].values()} == {"pgvector-hnsw"}
    code, out, err = run_cli(capsys, "search", "-c", pg_url, "-t", "red dots", "-k", "3", "--json")
    assert code == 0, err
    assert {r["metadata"]["style"] for r in json.loads(out)["results"]} == {"dots"}
    code, out, err = run_cli(capsys, "search", "-c", pg_url, "-i", folder / "images" / "rings_1.png", "-k", "4",
                             "-f", "artist=artist 1", "--fast", "--json")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert results and {r["metadata"]["artist"] for r in results} == {"artist 1"}
    assert results[0]["metadata"]["style"] == "rings"
    # again: nothing changed, so no new generation
    code, out, _ = run_cli(capsys, "ingest", folder, "--labels", labels, "-c", pg_url, "-q", "--json")
    assert json.loads(out)["ingest"]["unchanged"] == 12
    assert Collection.open(pg_url).generation == 1


def test_a_copy_to_postgres_searches_like_the_folder(tiny_collection, pg_copy):
    coll, report = pg_copy
    assert isinstance(coll, PostgresCollection)
    assert report["same"] and report["artworks"] == len(tiny_collection.catalog)
    assert set(report["aspects"]) == set(tiny_collection.indexed_aspects())
    assert all(c["overlap"] == 1.0 for c in report["aspects"].values())
    folder, pg = SearchEngine(tiny_collection), SearchEngine(coll)
    for query in ({"artwork_id": 1}, {"text": "green rings"}, {"artwork_id": 5, "filters": {"style": ["dots"]}},
                  {"liked": [1, 2]}, {"artwork_id": 3, "fast": True}):
        a, b = folder.search(k=5, **query), pg.search(k=5, **query)
        assert hits(a) == hits(b), query
        assert [h.metadata for h in a.hits] == [h.metadata for h in b.hits]
    assert coll.catalog.facet_counts("style") == tiny_collection.catalog.facet_counts("style")


def test_a_rare_filter_still_returns_k_results(pg_copy):
    coll, _ = pg_copy
    index = coll.index("colour")
    allowed = coll.catalog.filter_ids({"style": ["rings"]})
    _, ids = index.search(index.vectors([1]), 4, allowed_ids=allowed)
    assert sorted(ids[0].tolist()) == sorted(allowed)


def test_a_copy_back_to_a_folder_searches_the_same(pg_copy, tmp_path):
    coll, _ = pg_copy
    report = copy_collection(coll.location, tmp_path / "back")
    assert report["same"]
    back = Collection.open(tmp_path / "back")
    for query in ({"artwork_id": 2}, {"text": "blue stripes"}):
        assert hits(SearchEngine(back).search(k=5, **query)) == hits(SearchEngine(coll).search(k=5, **query))
    with pytest.raises(CollectionError, match="already holds"):
        copy_collection(coll.location, tmp_path / "back")


def test_collection_copy_command_reports_the_check(capsys, tiny_collection, pg_url):
    code, out, err = run_cli(capsys, "collection", "copy", tiny_collection.root, pg_url, "-q", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["same"] and report["target"].endswith(parse_location(pg_url).schema)


# -- many processes, one collection ---------------------------------------------------------------
def test_a_second_writer_is_refused_naming_the_first(tiny_folder, pg_copy, pg_url):
    folder, labels = tiny_folder
    first = Collection.open(pg_url, create=True)
    second = Collection.open(pg_url)
    with first.writing():
        with pytest.raises(CollectionError, match="is being written by .*--wait"):
            second.ingest(folder, labels)
    second.ingest(folder, labels, features=False)  # free again
    assert len(second.catalog) == 12


def test_readers_see_each_commit_without_reopening(tiny_collection, pg_url, tmp_path):
    copy_collection(tiny_collection.root, pg_url)  # features included: only the new work is extracted below
    writer = Collection.open(pg_url)
    reader = Collection.open(pg_url, read_only=True)
    seen = reader.signature()
    n = len(reader.catalog)
    extra = tmp_path / "more"
    extra.mkdir()
    from conftest import draw_picture

    draw_picture("dots", seed=999).save(extra / "new.png")
    with writer.writing():
        writer.ingest(extra)
        assert len(reader.catalog) == n  # not committed yet: invisible
    assert reader.signature() != seen and len(reader.catalog) == n + 1
    new_id = max(reader.catalog.ids())
    assert new_id in SearchEngine(Collection.open(pg_url, read_only=True)).collection.index("content").ids()


def test_index_rebuild_refits_and_incremental_ingest_keeps_the_transform(tiny_collection, tiny_folder, pg_url, tmp_path,
                                                                          capsys):
    folder, labels = tiny_folder
    copy_collection(tiny_collection.root, pg_url)
    coll = Collection.open(pg_url)
    coll.ingest(folder, labels)  # the same folder again: nothing new
    assert coll.generation == 1
    before = coll.index("content")
    extra = tmp_path / "more"
    extra.mkdir()
    from conftest import draw_picture

    for i in range(3):
        draw_picture("rings", seed=500 + i).save(extra / f"r{i}.png")
    coll.ingest(extra)
    after = Collection.open(pg_url).index("content")
    assert len(after) == 15 and after.table == before.table
    assert np.array_equal(after.components, before.components)  # new works projected with the stored PCA
    code, out, err = run_cli(capsys, "index", "rebuild", "-c", pg_url, "--json")
    assert code == 0, err
    assert json.loads(out)["indexes"]["content"] == 15
    rebuilt = Collection.open(pg_url).index("content")
    assert rebuilt.table != before.table and rebuilt.manifest.pca_fitted_on == 15
