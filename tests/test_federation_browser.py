"""The web page in portal mode, in headless Chromium: an upload searched across three members and a
fourth that cannot be reached; each hit shows its institution, and a line says who answered."""

from __future__ import annotations

import pytest
from browser_support import expect
from federation_support import running_members, write_members_toml

from artlens.api.portal import create_portal_app
from artlens.api.server import BackgroundServer
from artlens.api.settings import PortalSettings
from artlens.federation import MemberEntry, Portal

TOKEN = "browser-token"


@pytest.fixture(scope="module")
def url(tiny_folder, tiny_collection, tmp_path_factory):
    folder, labels = tiny_folder
    root = tmp_path_factory.mktemp("portal-page")
    with running_members(folder, labels, tiny_collection, root, TOKEN) as running:
        entries = [*running["entries"], MemberEntry("Closed Museum", "http://127.0.0.1:9/", TOKEN)]
        members = write_members_toml(root / "MEMBERS.toml", [(e.name, e.url, e.token) for e in entries])
        portal = Portal(entries, head=running["head"], timeout=1.0)
        with BackgroundServer(create_portal_app(PortalSettings(members=members, title="Test federation"), portal)) as base:
            yield base


def test_the_page_shows_institutions_and_who_answered(page, tiny_folder):
    folder, _ = tiny_folder
    expect(page.locator("#results-title")).to_have_text("Explore the federation")
    cards = page.locator("[data-testid=result-card]")
    expect(cards).to_have_count(12)  # browsing: the members' pages interleaved
    expect(page.locator("[data-testid=institution]").first).to_have_text("Museum 0")
    page.set_input_files("#file-input", str(folder / "images" / "dots_1.png"))
    line = page.locator("[data-testid=members-line]")
    expect(line).to_have_text("3 of 4 institutions answered; Closed Museum could not be reached")
    expect(line).to_have_class("members-line partial")
    expect(cards.first.locator(".title")).to_have_text("Red dots scattered 1")
    badges = page.locator("[data-testid=result-card] [data-testid=institution]")
    expect(badges).to_have_count(12)
    assert set(badges.all_inner_texts()) == {"Museum 0", "Museum 1", "Museum 2"}
    first_thumb = cards.first.locator("img")
    expect(first_thumb).to_have_js_property("complete", True)
    assert first_thumb.evaluate("img => img.naturalWidth") > 0  # the thumbnail came through the portal
    cards.first.locator(".thumb").click()
    expect(page.locator("#detail-body dd").first).to_have_text("Museum 2")
