import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from artlens.collection import Collection

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARTLENS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory):
    """A user cache of the test run's own (``$ARTLENS_CACHE``): what a developer has built in
    ~/.cache/artlens (a general copy head, say) never changes what the tests do."""
    before = os.environ.get("ARTLENS_CACHE")
    os.environ["ARTLENS_CACHE"] = str(tmp_path_factory.mktemp("user-cache"))
    yield Path(os.environ["ARTLENS_CACHE"])
    if before is None:
        os.environ.pop("ARTLENS_CACHE", None)
    else:
        os.environ["ARTLENS_CACHE"] = before


def data_dir(name: str) -> Path:
    """A shared artwork set, or skip the test with the reason."""
    path = DATA / name
    if not (path / "labels.csv").exists():
        pytest.skip(f"artwork set {name} not found under {DATA} (set ARTLENS_DATA)")
    return path


def draw_picture(kind: str, seed: int, size: int = 96) -> Image.Image:
    """Small pictures of three clearly different kinds."""
    rng = np.random.default_rng(seed)
    base = tuple(int(v) for v in rng.integers(0, 255, 3))
    img = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(img)
    if kind == "stripes":
        for x in range(0, size, 8):
            draw.rectangle([x, 0, x + 3, size], fill=(20, 20, 120))
    elif kind == "dots":
        for _ in range(120):
            x, y = rng.integers(0, size, 2)
            draw.ellipse([x, y, x + 4, y + 4], fill=(200, 40, 40))
    else:
        for r in range(size, 0, -10):
            draw.ellipse([size / 2 - r / 2, size / 2 - r / 2, size / 2 + r / 2, size / 2 + r / 2],
                         outline=(30, 140, 30), width=3)
    return img


KINDS = ("stripes", "dots", "rings")
TITLES = {"stripes": "Blue stripes on a field", "dots": "Red dots scattered", "rings": "Green rings, concentric"}


def make_folder(root: Path, per_kind: int = 4) -> tuple[Path, Path]:
    """A folder of small pictures with a labels.csv (path, title, style, artist)."""
    images = root / "images"
    images.mkdir(parents=True)
    rows = []
    for k, kind in enumerate(KINDS):
        for i in range(per_kind):
            name = f"{kind}_{i}.png"
            draw_picture(kind, seed=10 * k + i).save(images / name)
            rows.append({"path": f"images/{name}", "title": f"{TITLES[kind]} {i}", "style": kind,
                         "artist": f"artist {i % 2}"})
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return images.parent, labels


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> tuple[Path, Path]:
    return make_folder(tmp_path_factory.mktemp("pictures"))


@pytest.fixture(scope="session")
def tiny_collection(tiny_folder, tmp_path_factory):
    """A collection of the tiny folder, ingested with all default extractors (shared, read-only)."""
    folder, labels = tiny_folder
    coll = Collection.open(tmp_path_factory.mktemp("coll") / "c", create=True)
    coll.ingest(folder, labels)
    return coll


def unlabelled_copy(collection, root: Path):
    """A copy of ``collection`` at ``root`` whose only metadata are titles, one artist for every work
    and numbered editions: nothing to annotate, and a numeric facet."""
    shutil.copytree(collection.root, root)
    coll = Collection.open(root)
    arts = coll.catalog.get_many(coll.catalog.ids())
    with coll.catalog.transaction():
        for n, (i, art) in enumerate(sorted(arts.items()), start=1):
            coll.catalog.set_metadata(i, {"title": art.metadata["title"], "artist": "Hokusai", "edition": str(n)})
    return coll


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one browser test module (see browser_support)."""
    from browser_support import launch_chromium

    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser, url):
    """The test module's ``url`` fixture in a desktop-sized page; the test fails on any uncaught
    JavaScript error."""
    from browser_support import open_page

    with open_page(browser, url) as opened:
        yield opened


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server with pgvector (see tests/postgres_support.py), for the whole run."""
    from postgres_support import PostgresServer

    server = PostgresServer()
    server.start()
    if server.url is None:
        print(f"\nPostgreSQL tests skipped: {server.skip_reason}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server):
    """The URL of a new, empty schema on the test server (dropped afterwards)."""
    from postgres_support import drop_schema, new_schema_url

    url, schema = new_schema_url(postgres_server)
    yield url
    drop_schema(postgres_server, schema)
