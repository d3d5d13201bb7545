"""The web page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), against
the app served by uvicorn on a free localhost port in a thread this module starts and stops."""

import io
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from browser_support import expect, open_page  # skips this module without Chromium
from conftest import unlabelled_copy  # noqa: E402
from PIL import Image
from registry_support import OWNER, tiny_registry

from artlens.api import ApiSettings, create_app
from artlens.api.server import BackgroundServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(tiny_collection, tiny_folder, tmp_path_factory):
    """The tiny collection with its own annotator and a copyright registry of its pictures."""
    settings = ApiSettings(collection=tiny_collection.root, thumbnail_dir=tmp_path_factory.mktemp("thumbs"),
                           copyright_registry=tiny_registry(tmp_path_factory, tiny_folder))
    app = create_app(settings, collection=tiny_collection)
    with BackgroundServer(app) as base:
        yield base


@pytest.fixture(scope="module")
def plain_url(tiny_collection, tmp_path_factory):
    """A copy of the tiny collection with nothing to annotate (one artist), numbered editions, no
    copyright registry and no artist profiles."""
    root = tmp_path_factory.mktemp("plain") / "c"
    coll = unlabelled_copy(tiny_collection, root)
    settings = ApiSettings(collection=root, thumbnail_dir=tmp_path_factory.mktemp("thumbs"))
    with BackgroundServer(create_app(settings, collection=coll)) as base:
        yield base


@pytest.fixture(scope="module")
def dots_file(tiny_folder) -> Path:
    return tiny_folder[0] / "images" / "dots_1.png"


def card_subtitles(page) -> list[str]:
    return page.locator(".card .sub").all_inner_texts()


def test_upload_weights_filter_detail_and_copyright(page, dots_file):
    expect(page.locator("[data-testid=result-card]")).to_have_count(12)  # browsing the collection
    page.set_input_files("#file-input", str(dots_file))

    # Results with per-aspect score bars; the query picture itself comes first.
    expect(page.locator("#results-title")).to_have_text("Similar to your picture")
    first = page.locator("[data-testid=result-card]").first
    expect(first.locator(".title")).to_have_text("Red dots scattered 1")
    expect(first.locator(".bar")).to_have_count(3)  # content, style, colour

    # Predicted labels (a near match: not marked as a guess) and the copyright verdict with free alternatives.
    expect(page.locator("#labels .label-group[data-column=style] .label").first).to_contain_text("dots")
    expect(page.locator("#labels .label-group[data-column=style] .label").first).to_contain_text(re.compile(r"\d+%"))
    expect(page.locator("[data-testid=weak-labels]")).to_have_count(0)
    verdict = page.locator("[data-testid=verdict]")
    expect(verdict).to_have_attribute("data-verdict", "registered")
    expect(verdict).to_contain_text("Red dots scattered 1")
    expect(verdict).to_contain_text(OWNER)
    alternatives = verdict.locator("[data-testid=alternatives] figure")
    expect(alternatives.locator("img")).to_have_count(6)
    # each alternative: its thumbnail, title and (when the check knows it) artist, never "Artwork 29"
    first_alt = alternatives.first
    expect(first_alt.locator("figcaption .alt-title")).to_have_text("Red dots scattered 1")
    expect(verdict).not_to_contain_text("Artwork ")
    checked = page.request.post(page.url.rstrip("/") + "/api/copyright/check",
                                multipart={"image": {"name": "q.png", "mimeType": "image/png", "buffer": dots_file.read_bytes()}})
    artist = checked.json()["alternatives"][0]["artist"]
    if artist:
        expect(first_alt.locator("figcaption .alt-by")).to_contain_text(artist)
    first_alt.locator("button").click()  # a work of the served collection opens in the detail view
    expect(page.locator("#detail #detail-title")).to_have_text("Red dots scattered 1")
    page.locator("#detail").get_by_role("button", name="Close").click()
    expect(page.locator("#detail")).to_be_hidden()

    # Moving a weight slider re-ranks (by the remembered upload, not a new upload).
    with page.expect_request(lambda r: r.url.endswith("/api/search") and "upload_id" in (r.post_data or "")):
        for aspect, value in (("content", "0"), ("colour", "0"), ("style", "100")):
            page.locator(f"#w-{aspect}").fill(value)
    expect(page.locator("#results-meta")).to_contain_text("style 100%")

    # A facet filter keeps only matching works.
    page.locator(".chip[data-column=style][data-value=rings]").click()
    expect(page.locator(".chip[data-column=style][data-value=rings]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".card .sub").first).to_contain_text("rings")
    page.wait_for_function("Array.from(document.querySelectorAll('.card .sub')).every(s => s.textContent.includes('rings'))")
    assert len(card_subtitles(page)) == 4

    # The detail view, and "more like this" from it.
    page.locator("[data-testid=result-card] .thumb").first.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(detail.locator("#detail-title")).to_contain_text("Green rings, concentric")
    expect(detail.locator(".meta")).to_contain_text("rings")
    detail.locator("[data-testid=detail-more]").click()
    expect(detail).to_be_hidden()
    expect(page.locator("#results-title")).to_contain_text("More like")


def test_text_search_likes_and_recommendations(page):
    page.locator("#text-input").fill("blue stripes on a field")
    page.locator("#text-input").press("Enter")
    expect(page.locator("#results-title")).to_have_text("Results for “blue stripes on a field”")
    expect(page.locator(".card .sub").first).to_contain_text("stripes")
    expect(page.locator(".slider[data-aspect=content]")).to_have_class("slider inactive")  # text query: text only

    cards = page.locator("[data-testid=result-card]")
    cards.nth(0).locator("[data-testid=like]").click()
    cards.nth(1).locator("[data-testid=like]").click()
    expect(page.locator("[data-testid=liked-count]")).to_have_text("2")
    page.locator("#liked-toggle").click()
    expect(page.locator("#liked-list img")).to_have_count(2)
    page.locator("[data-testid=recommend]").click()
    expect(page.locator("#results-title")).to_have_text("Recommended for you")
    expect(cards.first).to_be_visible()

    # "More like this" on a result card.
    cards.first.locator("[data-testid=more-like-this]").click()
    expect(page.locator("#results-title")).to_contain_text("More like")
    expect(page.locator("#query-card")).to_be_visible()

    # Likes survive a reload (kept in this browser).
    page.reload()
    expect(page.locator("[data-testid=liked-count]")).to_have_text("2")


def test_drop_and_paste_an_image(page, dots_file):
    data = list(dots_file.read_bytes())
    page.evaluate("""(bytes) => {
        const file = new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"});
        const dt = new DataTransfer();
        dt.items.add(file);
        window.dispatchEvent(new DragEvent("dragenter", {dataTransfer: dt}));
        window.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, cancelable: true}));
    }""", data)
    expect(page.locator("#query-title")).to_contain_text("dropped.png")
    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(page.locator("[data-testid=result-card] .title").first).to_have_text("Red dots scattered 1")

    page.locator("#query-clear").click()
    expect(page.locator("#results-title")).to_have_text("Explore the collection")
    page.evaluate("""(bytes) => {
        const file = new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"});
        const dt = new DataTransfer();
        dt.items.add(file);
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, cancelable: true}));
    }""", data)
    expect(page.locator("#query-title")).to_contain_text("pasted.png")
    expect(page.locator("[data-testid=result-card] .title").first).to_have_text("Red dots scattered 1")


def test_bad_uploads_show_what_went_wrong(page, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture")
    page.set_input_files("#file-input", str(text_file))
    expect(page.locator("#toast")).to_contain_text("not an image")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00broken" * 50)
    page.set_input_files("#file-input", str(broken))
    expect(page.locator("#notice")).to_contain_text("cannot be decoded")


def test_phone_layout(browser, url, dots_file):
    with open_page(browser, url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True) as page:
        expect(page.locator("#camera-btn")).to_be_hidden()  # inside the collapsed panel
        page.locator("#sidebar-toggle").click()
        expect(page.locator("#camera-btn")).to_be_visible()  # phones get "Take photo" (capture=environment)
        assert page.locator("#camera-input").get_attribute("capture") == "environment"
        page.set_input_files("#camera-input", str(dots_file))
        expect(page.locator("[data-testid=result-card] .bar").first).to_be_visible()
        columns = page.evaluate("getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length")
        assert columns == 2
        expect(page.locator("[data-testid=alternatives] img")).to_have_count(6)
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "artlens-phone.png"), full_page=True)
        wide = page.evaluate("""Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.alternatives'))
            .map(e => e.tagName + '.' + e.className)""")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide  # nothing sticks out sideways


def test_api_reference_renders_offline(page, url):
    operations = sum(len(methods) for methods in page.request.get(url + "openapi.json").json()["paths"].values())
    page.goto(url + "docs")
    docs = page.locator("[data-testid=docs]")
    expect(docs.locator("section.op")).to_have_count(operations)
    expect(docs).to_contain_text("/api/search")
    expect(docs).to_contain_text("/api/copyright/check")


def test_thumbnails_are_real_images(page):
    src = page.locator("[data-testid=result-card] img").first.get_attribute("src")
    response = page.request.get(page.url.rstrip("/") + src)
    assert response.ok and response.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.body())).size) <= 320


def test_a_picture_unlike_the_collection_shows_its_labels_as_guesses(page, tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(noise)
    page.set_input_files("#file-input", str(noise))
    expect(page.locator("[data-testid=weak-labels]").first).to_be_visible()
    expect(page.locator("#labels .label-group[data-column=style]")).to_have_attribute("data-weak", "true")
    expect(page.locator("[data-testid=verdict]")).to_have_attribute("data-verdict", "not-registered")


def test_the_page_calls_only_what_the_server_offers(browser, plain_url, dots_file):
    with open_page(browser, plain_url) as page:
        asked, failed = [], []
        page.on("request", lambda r: asked.append(r.url))
        page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
        expect(page.get_by_test_id("artists-open")).to_be_hidden()  # no artist profiles published here
        # numbers in a facet read in order (1, 2, ..., 10), not as text (1, 10, 11, 2)
        editions = page.locator(".facet[data-facet=edition] .chip")
        page.locator(".facet[data-facet=edition] .more").click()
        expect(editions).to_have_count(12)
        assert editions.evaluate_all("cs => cs.map(c => c.dataset.value)") == [str(n) for n in range(1, 13)]
        page.set_input_files("#file-input", str(dots_file))
        expect(page.locator("[data-testid=result-card] .title").first).to_have_text("Red dots scattered 1")
        page.wait_for_load_state("networkidle")
        assert not [u for u in asked if "/api/annotate" in u or "/api/copyright" in u], asked
        expect(page.locator("[data-testid=verdict]")).to_be_hidden()
        expect(page.locator("#labels")).to_be_empty()
        assert not failed, failed
