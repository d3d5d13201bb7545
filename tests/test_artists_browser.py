"""The "find an artist" view in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), against the app served by uvicorn on a free localhost port, with profiles published
from the tiny collection (its styles stand in for artists)."""

import dataclasses
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WAIT_MS = 60_000

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)", allow_module_level=True)

from artlens.api import ApiSettings, create_app  # noqa: E402
from artlens.api.server import BackgroundServer  # noqa: E402


@pytest.fixture(scope="module")
def url(tiny_collection, tmp_path_factory):
    from artlens.artists.portfolio import artist_labels, learned_space
    from artlens.artists.profiles import build_profiles
    from artlens.train.loop import TrainConfig
    from artlens.train.run import train_collection_head

    folder = tmp_path_factory.mktemp("artists")
    config = dataclasses.replace(TrainConfig(), epochs=3, hidden=(32,), dim=16)
    head = train_collection_head(tiny_collection, "style", ["content", "style"], config, progress=False).head
    head_file = head.save(folder / "head.pt")
    labels = artist_labels(tiny_collection, "style")
    space = learned_space(tiny_collection, head, labels)
    profiles = build_profiles(space.vectors, space.artists, head.id).save(folder / "profiles.json")
    patch = pytest.MonkeyPatch()
    patch.setenv("ARTLENS_ARTIST_PROFILES", str(profiles))
    patch.setenv("ARTLENS_ARTIST_HEAD", str(head_file))
    settings = ApiSettings(collection=tiny_collection.root, thumbnail_dir=tmp_path_factory.mktemp("thumbs"))
    app = create_app(settings, collection=tiny_collection)
    with BackgroundServer(app) as base:
        yield base
    patch.undo()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    yield page
    context.close()
    assert not errors, errors


def test_find_an_artist_from_reference_pictures(page, tiny_folder):
    images = tiny_folder[0] / "images"
    page.get_by_test_id("artists-open").click()
    view = page.get_by_test_id("artists-view")
    expect(view).to_be_visible()
    expect(page.get_by_test_id("artists-status")).to_contain_text("3 artists have published a style profile")
    find = page.locator("#artists-go")
    expect(find).to_be_disabled()
    expect(page.locator("#artists-text")).to_be_hidden()  # the head reads no text
    page.set_input_files("#artists-files", [str(images / "dots_1.png"), str(images / "dots_2.png")])
    expect(page.get_by_test_id("artists-refs").locator("img")).to_have_count(2)
    expect(find).to_be_enabled()
    find.click()
    results = page.get_by_test_id("artist-results").locator("li")
    expect(results).to_have_count(3)
    assert sorted(results.evaluate_all("items => items.map(i => i.dataset.artist)")) == ["dots", "rings", "stripes"]
    why = results.first.locator(".why").inner_text()
    assert "ref 1 → style" in why and "ref 2 → style" in why and "works" in why
    scores = [float(s) for s in results.locator(".score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    # removing a reference and clearing work, and the view closes
    page.get_by_role("button", name="Remove reference 2").click()
    expect(page.get_by_test_id("artists-refs").locator("img")).to_have_count(1)
    page.locator("#artists-reset").click()
    expect(results).to_have_count(0)
    expect(find).to_be_disabled()
    view.get_by_role("button", name="Close").click()
    expect(view).to_be_hidden()
