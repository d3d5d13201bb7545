"""The study page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): a
participant answers every question and the answers land in the study's answers.jsonl."""

import shutil

import pytest
from browser_support import expect, open_page  # skips this module without Chromium

from artlens.api import ApiSettings, create_app
from artlens.api.server import BackgroundServer
from artlens.collection import Collection
from artlens.study import AnswerLog, create_study

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tiny_collection, tmp_path_factory):
    root = tmp_path_factory.mktemp("study-page")
    shutil.copytree(tiny_collection.root, root / "c")
    coll = Collection.open(root / "c")
    study = create_study(coll, "style", 3, 4, seed=0)  # the default place: COLLECTION/study
    app = create_app(ApiSettings(collection=coll.root, thumbnail_dir=root / "thumbs"), collection=coll)
    with BackgroundServer(app) as base:
        yield base, study


def test_participant_answers_every_question(browser, served):
    base, study = served
    with open_page(browser, base + "study", viewport={"width": 1100, "height": 800}) as page:
        page.get_by_label("4").first.check()  # self-assessed familiarity with art
        page.get_by_test_id("start").click()
        chosen = []
        for n, question in enumerate(study.questions):
            expect(page.get_by_test_id("counter")).to_have_text(f"Question {n + 1} of {len(study.questions)}")
            cards = page.locator(".choice")
            expect(cards).to_have_count(4)
            expect(cards.first.locator("img")).to_have_js_property("complete", True)
            assert page.evaluate("document.querySelector('.choice img').naturalWidth") > 0  # thumbnails load
            next_button = page.get_by_test_id("next")
            cards.nth(0).click()
            expect(next_button).to_be_disabled()
            cards.nth(3).click()
            cards.nth(1).click()  # a third pick replaces the oldest: the pair is cards 3 and 1
            expect(page.locator('.choice[aria-pressed="true"]')).to_have_count(2)
            if n == 0:
                page.locator('input[name="confidence"][value="5"]').check()
            ids = [int(cards.nth(k).get_attribute("data-id")) for k in (1, 3)]
            chosen.append(tuple(sorted(ids)))
            next_button.click()
        expect(page.get_by_test_id("done")).to_be_visible()
        page.reload()  # a returning participant has nothing left to answer
        expect(page.locator("body")).to_have_attribute("data-ready", "1")
        page.get_by_test_id("start").click()
        expect(page.get_by_test_id("done")).to_be_visible()
    answers = sorted(AnswerLog(study.answers_path).read(), key=lambda a: a.question)
    assert [a.pair for a in answers] == chosen
    assert len({a.participant for a in answers}) == 1
    assert answers[0].confidence == 5 and answers[1].confidence is None
    assert all(a.expertise == 4 for a in answers)
