"""The pages under their Content-Security-Policy in a real headless Chromium: nothing is refused
(no inline code left), and on a private server the page asks for a token once, signs in, and then
its results and images load."""

import pytest
from browser_support import expect, open_page  # skips this module without Chromium

from artlens.api import ApiSettings, create_app
from artlens.api.security import AccessSettings, add_token
from artlens.api.server import BackgroundServer
from artlens.study import create_study

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def private(tiny_collection, tmp_path_factory):
    root = tmp_path_factory.mktemp("private")
    tokens = root / "tokens.txt"
    token = add_token(tokens, "visitor")
    study = create_study(tiny_collection, "style", 2, 4, out=root / "study")
    settings = ApiSettings(collection=tiny_collection.root, thumbnail_dir=root / "thumbs",
                           access=AccessSettings(tokens=tokens, private=True))
    app = create_app(settings, collection=tiny_collection)
    app.state.study_dir = study.root
    with BackgroundServer(app) as base:
        yield base, token


def refused_by_policy(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def test_private_page_signs_in_once_and_runs_under_its_policy(browser, private):
    base, token = private
    asked: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    try:
        refused = refused_by_policy(page)
        page.on("dialog", lambda d: (asked.append(d.message), d.accept(token)))
        page.goto(base)
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=60_000)
        expect(page.locator("[data-testid=result-card]")).to_have_count(12, timeout=60_000)
        image = page.locator("[data-testid=result-card] img").first
        expect(image).to_have_js_property("complete", True)
        assert page.evaluate("document.querySelector('[data-testid=result-card] img').naturalWidth") > 0
        page.fill("#text-input", "concentric rings")
        page.keyboard.press("Enter")
        expect(page.locator("[data-testid=result-card] .bar").first).to_be_visible()  # score bars: styled by the CSSOM
        colour = page.evaluate("getComputedStyle(document.querySelector('.slider')).getPropertyValue('--c')")
        assert colour.strip(), "the sliders' colours were not applied"
        assert len(asked) == 1 and "token" in asked[0].lower()
        assert not refused, refused
    finally:
        context.close()


def test_study_page_runs_under_its_policy(browser, private):
    base, token = private
    context = browser.new_context()
    try:
        page = context.new_page()
        refused = refused_by_policy(page)
        page.goto(base)  # the study of a private server needs the site's token too: sign in first
        page.evaluate("""async (token) => { await fetch('/api/session', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({token})}); }""", token)
        with open_page(browser, base + "study", storage_state=context.storage_state()) as study:
            refused += refused_by_policy(study)
            study.get_by_test_id("start").click()
            expect(study.locator(".choice")).to_have_count(4)
            assert study.evaluate("getComputedStyle(document.querySelector('.choices')).display") == "grid"  # study.css
            study.locator(".choice").nth(0).click()
            study.locator(".choice").nth(1).click()
            study.get_by_test_id("next").click()
            expect(study.get_by_test_id("counter")).to_have_text("Question 2 of 2")
        assert not refused, refused
    finally:
        context.close()
