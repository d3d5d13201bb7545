"""Crash-safe collections: one generation per commit, readers pinned to theirs, cut-short writers
undone or rolled forward, one writer at a time, servers that follow new generations, read-only
collections. Collections here index the colour histogram only (cheap: no neural network loads)."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO, draw_picture

from artlens.catalog.db import Catalog
from artlens.collection import Collection
from artlens.config import AspectConfig, CollectionConfig
from artlens.errors import CollectionError
from artlens.search import SearchEngine
from artlens.storage import WriterLock, read_generation

CHEAP = CollectionConfig(
    aspects={"colour": AspectConfig("colour-hist"), "style": AspectConfig("colour-hist", pca_dims=8)},
    weights={"colour": 0.5, "style": 0.5}, text_columns=("title",))
ASPECTS = {"colour", "style"}


def pictures(folder: Path, n: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ("stripes", "dots", "rings")
    rows = ["path,title,style"]
    for i in range(start, start + n):
        kind = kinds[i % 3]
        draw_picture(kind, seed=1000 + i, size=48).save(folder / f"{kind}_{i}.png")
        rows.append(f"{kind}_{i}.png,{kind} {i},{kind}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def cheap(root: Path) -> Collection:
    return Collection.open(root, create=True, config=CHEAP)


def cli(*args, fault: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("ARTLENS_CRASH_AT", None)
    if fault:
        env["ARTLENS_CRASH_AT"] = fault
    return subprocess.run([sys.executable, "-m", "artlens", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def hidden(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for d in (root, root / "index", root / "heads") if d.is_dir()
                  for p in d.iterdir() if p.name.startswith(".") and p.name != ".lock")


def test_a_commit_is_one_generation_and_leaves_nothing_temporary(tmp_path):
    folder = pictures(tmp_path / "a", 9)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    assert coll.generation == read_generation(coll.root).number == 1
    assert hidden(coll.root) == []
    for path in (coll.root / "index").rglob("*"):
        assert oct(path.stat().st_mode & 0o777) == ("0o755" if path.is_dir() else "0o644"), path
    coll.ingest(folder, folder / "labels.csv")  # nothing changed: no new generation
    assert coll.generation == 1
    assert set(coll.indexed_aspects()) == ASPECTS and len(coll.index("style")) == len(coll.catalog) == 9


def test_a_reader_keeps_its_generation_while_a_writer_commits_the_next(tmp_path):
    folder = pictures(tmp_path / "a", 9)
    writer = cheap(tmp_path / "c")
    writer.ingest(folder, folder / "labels.csv")
    reader = Collection.open(writer.root)
    old_ids = reader.catalog.ids()
    gone = next(i for i in old_ids if reader.catalog.get(i).path.endswith("rings_2.png"))
    pictures(folder, 6, start=9)
    (folder / "rings_2.png").unlink()
    writer.ingest(folder, folder / "labels.csv")
    assert len(writer.catalog) == 14 and writer.generation == 2
    # the reader still sees generation 1 whole, its indexes (loaded only now) included
    assert reader.catalog.ids() == old_ids and len(reader.catalog) == 9
    assert set(reader.index("colour").ids().tolist()) == set(old_ids) and len(reader.index("style")) == 9
    assert reader.catalog.get(gone) is not None  # removed in generation 2, still there in 1
    fresh = Collection.open(writer.root)
    assert len(fresh.catalog) == 14 and set(fresh.index("colour").ids().tolist()) == set(fresh.catalog.ids())
    assert gone not in fresh.catalog.ids()


def test_catalog_rows_belong_to_the_generations_that_add_and_remove_them(tmp_path):
    folder = pictures(tmp_path / "a", 3)
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.pending_generation = 1
    ids = [catalog.add_file(str(p), f"{i:032x}", 1, 1, 8, 8)[0] for i, p in enumerate(sorted(folder.glob("*.png")))]
    catalog.conn.commit()
    catalog.pending_generation = 2
    with catalog.transaction():
        catalog.remove_files([str(sorted(folder.glob("*.png"))[0])])
    assert len(catalog) == 2  # the writer sees what generation 2 will hold
    catalog.pin(1)
    assert catalog.ids() == ids  # generation 1 still has the removed work
    catalog.pin(0)
    assert catalog.ids() == []  # and generation 0 had nothing yet
    catalog.pin(None)
    assert catalog.purge(1) == 0 and catalog.purge(2) == 1  # deleted once no reader can see it
    catalog.pin(1)
    assert catalog.ids() == ids[1:]


def test_a_writer_that_fails_leaves_the_previous_generation_and_no_staged_files(tmp_path):
    folder = pictures(tmp_path / "a", 6)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    before = (coll.generation, sorted(coll.index("colour").ids().tolist()))
    pictures(folder, 3, start=6)
    with pytest.raises(RuntimeError), coll.writing():
        coll.ingest(folder, folder / "labels.csv")
        assert hidden(coll.root)  # staged, not committed
        raise RuntimeError("cut short")
    assert hidden(coll.root) == []
    again = Collection.open(coll.root)
    assert (again.generation, sorted(again.index("colour").ids().tolist())) == before and len(again.catalog) == 6
    coll.ingest(folder, folder / "labels.csv")  # the catalogued works of the failed run come in now
    assert len(Collection.open(coll.root).catalog) == 9


@pytest.mark.parametrize("point", [pytest.param("commit#1", marks=pytest.mark.slow), "retired#1"])
def test_a_kill_at_a_write_boundary_leaves_a_whole_generation(tmp_path, point):
    """Killed before the pointer: the previous generation; between the renames of an index swap:
    the new one (from its staged copy), rolled forward by the next writer."""
    folder = pictures(tmp_path / "a", 6)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    pictures(folder, 4, start=6)
    run = cli("ingest", folder, "--labels", folder / "labels.csv", "-c", coll.root, "-q", fault=point)
    assert run.returncode == -9, run.stderr
    reader = Collection.open(coll.root)
    expected = 6 if point == "commit#1" else 10
    assert set(reader.indexed_aspects()) == ASPECTS and len(reader.catalog) == expected
    for aspect in ASPECTS:
        assert set(reader.index(aspect).ids().tolist()) == set(reader.catalog.ids())
    result = SearchEngine(reader).search(artwork_id=reader.catalog.ids()[0], k=3)
    assert set(result.weights) == ASPECTS and all(set(h.aspects) == ASPECTS for h in result.hits)
    writer = Collection.open(coll.root)
    writer.ingest(folder, folder / "labels.csv")
    assert len(writer.catalog) == 10 and all(".new-" not in n and ".tmp-" not in n for n in hidden(coll.root))


def test_a_second_writer_is_refused_naming_the_first_or_waits_for_it(tmp_path):
    first, second = pictures(tmp_path / "a", 6), pictures(tmp_path / "b", 5, start=50)
    coll = cheap(tmp_path / "c")
    with coll.writing():
        refused = cli("ingest", second, "-c", coll.root, "-q")
        assert refused.returncode == 2
        assert f"is being written by process {os.getpid()}" in refused.stderr and "--wait" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 2 and "Traceback" not in refused.stderr
        waiting = subprocess.Popen([sys.executable, "-m", "artlens", "ingest", str(second), "-c", str(coll.root), "-q",
                                    "--wait"], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        coll.ingest(first, first / "labels.csv")  # re-entrant for the holder
    _, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    done = Collection.open(coll.root)
    assert len(done.catalog) == 11  # nobody's works lost
    assert all(set(done.index(a).ids().tolist()) == set(done.catalog.ids()) for a in ASPECTS)


@pytest.mark.slow
def test_two_concurrent_ingests_lose_no_work(tmp_path):
    folders = [pictures(tmp_path / "a", 8), pictures(tmp_path / "b", 7, start=50)]
    root = tmp_path / "c"
    cheap(root).close()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen([sys.executable, "-m", "artlens", "ingest", str(f), "-c", str(root), "-q", "--wait",
                               "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in folders]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert sorted(json.loads(o)["ingest"]["added"] for o, _ in outs) == [7, 8]
    done = Collection.open(root)
    assert len(done.catalog) == 15 and done.generation == 2
    assert all(set(done.index(a).ids().tolist()) == set(done.catalog.ids()) for a in ASPECTS)


def test_stale_temporaries_are_removed_by_the_next_writer(tmp_path):
    folder = pictures(tmp_path / "a", 4)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    junk = [coll.root / "index" / ".style.tmp-abc", coll.root / "index" / ".content.old-x1",
            coll.root / "heads" / ".learned.pt.tmp-1234", coll.root / "index" / ".colour.new-9"]
    for path in junk:
        path.parent.mkdir(exist_ok=True)
        path.mkdir() if "tmp-abc" in path.name or "new-" in path.name else path.write_bytes(b"x" * 100)
    Collection.open(coll.root).close()  # readers remove nothing
    assert all(p.exists() for p in junk)
    with Collection.open(coll.root).writing():
        pass
    assert not any(p.exists() for p in junk)


def test_a_server_follows_an_ingest_whole_and_within_two_seconds(tmp_path):
    """A search loop beside an ingest never sees catalog and indexes disagree, and the new works are
    searchable within 2 s of the ingest's end, without a restart."""
    from artlens.api import ApiSettings, create_app
    from artlens.api.server import BackgroundServer
    from artlens.api.settings import AccessSettings

    folder = pictures(tmp_path / "a", 12)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    first_id = coll.catalog.ids()[0]
    # the loop asks as fast as it can: no rate limit, which would answer it 429 on a fast machine
    app = create_app(ApiSettings(collection=coll.root, thumbnail_dir=tmp_path / "thumbs",
                                 access=AccessSettings(rate_limit=0)))
    problems: list[str] = []
    counts: set[int] = set()
    stop = threading.Event()

    def search_loop(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                stats = http.get("api/stats").json()
                n = stats["artworks"]
                counts.add(n)
                indexes = {a: i["count"] for a, i in stats["indexes"].items()}
                if set(indexes) != ASPECTS or set(indexes.values()) != {n}:
                    problems.append(f"stats: {n} artworks, indexes {indexes}")
                answer = http.post("api/search", data={"id": first_id, "k": 100})
                if answer.status_code != 200:
                    problems.append(f"search answered {answer.status_code}: {answer.text[:200]}")
                    continue
                found = answer.json()
                if set(found["weights"]) != ASPECTS or len(found["results"]) + 1 not in (12, 52) or \
                        any(set(r["aspects"]) != ASPECTS for r in found["results"]):  # every other work of one generation
                    problems.append(f"search: {len(found['results'])} results, weights {found['weights']}")
                page = http.get("api/artworks", params={"offset": 0, "limit": 200}).json()
                last = max(r["id"] for r in page["results"])
                if set(http.get(f"api/artworks/{last}").json()["aspects"]) != ASPECTS:
                    problems.append(f"artwork {last} listed but not in every index")

    with BackgroundServer(app) as url:
        loop = threading.Thread(target=search_loop, args=(url,), daemon=True)
        loop.start()
        time.sleep(0.3)
        pictures(folder, 40, start=12)
        writer = Collection.open(coll.root)
        writer.ingest(folder, folder / "labels.csv")
        ended = time.monotonic()
        new_id = max(writer.catalog.ids())
        with httpx.Client(base_url=url, timeout=30) as http:
            while True:
                answer = http.post("api/search", data={"id": new_id, "k": 5})
                if answer.status_code == 200 or time.monotonic() - ended > 10:
                    break
                time.sleep(0.05)
        latency = time.monotonic() - ended
        time.sleep(0.3)
        stop.set()
        loop.join(timeout=30)
    assert answer.status_code == 200 and latency <= 2.0, (answer.status_code, latency)
    assert problems == []
    assert counts >= {12, 52}  # the loop saw both generations


def test_a_read_only_collection_searches_and_serves_writing_nothing(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from artlens.api import ApiSettings, create_app

    folder = pictures(tmp_path / "a", 6)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    coll.close()
    for path in (coll.root / "index" / "style").glob("*codes.npz"):  # fast search will want to add them
        path.unlink()

    def snapshot():  # SQLite's reader files (-wal, -shm) appear only where the folder lets them (not on a read-only mount)
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in coll.root.rglob("*")
                if not p.name.endswith(("-wal", "-shm"))}

    before = snapshot()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode == os.W_OK and str(coll.root) in str(p)
                        else real_access(p, mode, **kw))
    ro = Collection.open(coll.root)
    assert ro.read_only and ro.stats()["read_only"] and ro.stats()["artworks"] == 6
    result = SearchEngine(ro).search(artwork_id=ro.catalog.ids()[0], k=3, fast=True)
    assert len(result.hits) == 3 and set(result.weights) == ASPECTS
    with pytest.raises(CollectionError, match="read-only"):
        ro.ingest(folder)
    with TestClient(create_app(ApiSettings(collection=coll.root))) as client:
        assert client.post("/api/search", data={"id": ro.catalog.ids()[0], "k": 3}).status_code == 200
        assert client.get(f"/api/artworks/{ro.catalog.ids()[0]}/thumbnail").status_code == 200
    assert snapshot() == before


def test_the_lock_names_its_holder_and_is_free_after(tmp_path):
    lock, other = WriterLock(tmp_path), WriterLock(tmp_path)
    lock.acquire()
    with pytest.raises(CollectionError, match=f"process {os.getpid()}"):
        other.acquire()
    assert not other.try_acquire()
    lock.release()
    assert other.try_acquire()
    other.release()
    assert (tmp_path / ".lock").read_text() == ""


def test_stats_counts_the_skipped_files_ingest_reported_and_csv_conflicts_are_reported(tmp_path, capsys):
    from artlens.cli import main

    folder = pictures(tmp_path / "a", 4)
    (folder / "empty.png").write_bytes(b"")
    (folder / "broken.jpg").write_text("not an image")
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    (folder / "notes.xyz").write_text("?")
    with open(folder / "labels.csv", "a") as fh:
        fh.write("stripes_0.png,stripes 0,dots\n")  # the same image again, another style
    cheap(tmp_path / "c").close()
    assert main(["ingest", str(folder), "--labels", str(folder / "labels.csv"), "-c", str(tmp_path / "c"), "-q",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["ingest"]
    assert len(report["skipped"]) == 4
    assert any("different metadata" in n and "stripes_0.png" in n and "'stripes' vs 'dots'" in n for n in report["notes"])
    assert main(["stats", "-c", str(tmp_path / "c"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 4


def test_cli_writers_take_wait():
    from typer.main import get_command

    from artlens.cli import app

    commands = get_command(app).commands
    for name in ("ingest", "train"):
        assert "--wait" in {o for p in commands[name].params for o in p.opts}


def test_shutil_copies_of_collections_still_open(tmp_path):
    """Copies made with the usual tools (without heads or an aspect's index) open and search."""
    folder = pictures(tmp_path / "a", 6)
    coll = cheap(tmp_path / "c")
    coll.ingest(folder, folder / "labels.csv")
    shutil.copytree(coll.root, tmp_path / "copy", ignore=shutil.ignore_patterns("style"))
    copy = Collection.open(tmp_path / "copy")
    assert copy.indexed_aspects() == ["colour"]
    assert len(SearchEngine(copy).search(artwork_id=copy.catalog.ids()[0], k=2).hits) == 2
