"""The near-duplicate review view and the copyright verdict's near miss, in a real headless Chromium
(see browser_support), against the app served by uvicorn on a free localhost port."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from browser_support import expect  # skips this module without Chromium
from PIL import Image
from registry_support import tiny_registry

from artlens.api import ApiSettings, create_app
from artlens.api.server import BackgroundServer
from artlens.collection import Collection
from artlens.copyright.duplicates import find_duplicates

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(tiny_folder, tmp_path_factory):
    """12 demo paintings, two re-scanned copies of one of them, served with a copyright registry of the
    tiny pictures (so an upload gets a verdict)."""
    from artlens.demo.generate import generate_demo_collection

    root = tmp_path_factory.mktemp("dup-page")
    images = root / "images"
    images.mkdir()
    generate_demo_collection(root / "demo", n=12, seed=4, size=160)
    for path in sorted((root / "demo" / "images").glob("*.jpg")):
        shutil.copy(path, images / f"demo_{path.name}")
    work = Image.open(images / "demo_0003.jpg").convert("RGB")
    # re-scans: smaller, and re-encoded (the review view is under test here; recall on harder edits is
    # measured by benchmarks/duplicates.py)
    work.resize((work.width * 3 // 4, work.height * 3 // 4), Image.LANCZOS).save(images / "copy_small.png")
    work.save(images / "copy_reencoded.jpg", quality=80)
    collection = Collection.open(root / "c", create=True)
    collection.ingest(images)
    find_duplicates(collection)  # the copy features, computed once as `artlens duplicates` does
    settings = ApiSettings(collection=collection.root, thumbnail_dir=tmp_path_factory.mktemp("thumbs"),
                           copyright_registry=tiny_registry(tmp_path_factory, tiny_folder))
    with BackgroundServer(create_app(settings, collection=collection)) as base:
        yield base


def test_review_lists_the_copies_side_by_side_and_the_slider_regroups(page):
    page.get_by_test_id("duplicates-open").click()
    groups = page.locator("[data-testid=duplicate-groups] > li")
    expect(page.get_by_test_id("duplicates-status")).to_contain_text("of copies among 14 works")
    # largest first: the painting and its two copies, side by side, each with its score
    expect(groups.first.locator("figure")).to_have_count(3)
    expect(groups.first.locator("[data-testid=duplicate-score]")).to_have_count(3)
    scores = [float(s) for s in groups.first.locator("[data-testid=duplicate-score]").all_inner_texts()]
    threshold = float(page.get_by_test_id("duplicates-threshold").input_value())
    assert threshold == 0.6 and all(threshold <= s <= 1.0 for s in scores)
    page.get_by_test_id("duplicates-threshold").evaluate(
        "e => { e.value = '1'; e.dispatchEvent(new Event('input', { bubbles: true })); }")
    expect(groups).to_have_count(0)
    expect(page.get_by_test_id("duplicates-status")).to_contain_text("No copies among 14 works at threshold 1.00")


def test_a_picture_that_is_not_registered_names_the_closest_registered_work(page, tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(noise)
    page.set_input_files("#file-input", str(noise))
    expect(page.locator("[data-testid=verdict]")).to_have_attribute("data-verdict", "not-registered")
    closest = page.get_by_test_id("closest")
    expect(closest).to_contain_text("closest registered work: ")
    expect(closest).to_contain_text("below the threshold)")
