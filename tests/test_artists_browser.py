"""The "find an artist" view in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), against the app served by uvicorn on a free localhost port, with profiles published
from the tiny collection (its styles stand in for artists)."""

import dataclasses

import pytest
from browser_support import expect  # skips this module without Chromium

from artlens.api import ApiSettings, create_app
from artlens.api.server import BackgroundServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(tiny_collection, tmp_path_factory):
    from artlens.artists.portfolio import artist_labels, learned_space
    from artlens.artists.profiles import build_profiles
    from artlens.models import HeadShape
    from artlens.train.loop import TrainConfig
    from artlens.train.run import train_collection_head

    folder = tmp_path_factory.mktemp("artists")
    config = dataclasses.replace(TrainConfig(), epochs=3, head=HeadShape(hidden=(32,), dim=16))
    head = train_collection_head(tiny_collection, "style", ["content", "style"], config).head
    head_file = head.save(folder / "head.pt")
    labels = artist_labels(tiny_collection, "style")
    space = learned_space(tiny_collection, head, labels)
    profiles = build_profiles(space.vectors, space.artists, head.id).save(folder / "profiles.json")
    settings = ApiSettings(collection=tiny_collection.root, thumbnail_dir=tmp_path_factory.mktemp("thumbs"),
                           artist_profiles=profiles, artist_head=head_file)
    app = create_app(settings, collection=tiny_collection)
    with BackgroundServer(app) as base:
        yield base


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
    # each bar spans the row under the name and score, and its fill is the score's share of it
    for item, score in zip(results.all(), scores):
        track = item.locator(".bar").bounding_box()
        fill = item.locator(".bar span").bounding_box()
        name = item.locator(".name").bounding_box()
        mark = item.locator(".score").bounding_box()
        assert track["x"] == pytest.approx(name["x"], abs=1)
        assert track["x"] + track["width"] == pytest.approx(mark["x"] + mark["width"], abs=1)
        assert fill["width"] / track["width"] == pytest.approx(min(1, max(0, score)), abs=0.01)
    assert scores[0] > 0.5  # the best artist's fill is a visible share of the track
    # removing a reference and clearing work, and the view closes
    page.get_by_role("button", name="Remove reference 2").click()
    expect(page.get_by_test_id("artists-refs").locator("img")).to_have_count(1)
    page.locator("#artists-reset").click()
    expect(results).to_have_count(0)
    expect(find).to_be_disabled()
    view.get_by_role("button", name="Close").click()
    expect(view).to_be_hidden()
