"""The seeded edit generator and the copy-detection metrics (no model needed)."""

import numpy as np
import pytest
from conftest import draw_picture
from PIL import Image

from artlens.copyright.edits import (
    EDITS,
    FAMILIES,
    edit_plan,
    edited,
    random_edit,
    rng_for,
)
from artlens.copyright.evaluate import distractor_counts, score_method
from artlens.copyright.queries import UNEDITED, edited_queries, render_query
from artlens.errors import ArtlensError
from artlens.metrics.copy_detection import (
    copy_detection_summary,
    micro_average_precision,
    recall_at_precision,
    verdict_summary,
)


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return draw_picture("rings", seed=3, size=120).resize((160, 120))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_edit_is_seeded_and_gives_an_rgb_image(picture, family):
    a, name_a = edited(picture, family, rng_for(7, 1))
    b, name_b = edited(picture, family, rng_for(7, 1))
    assert a.mode == "RGB" and min(a.size) >= 8
    assert name_a == name_b and np.array_equal(np.asarray(a), np.asarray(b))
    if family == "combo":
        first, second = name_a.split("+")
        assert first != second and EDITS.index(first) < EDITS.index(second)
    else:
        assert name_a == family


def test_edits_change_the_image_and_crop_keeps_at_least_half(picture):
    for family in EDITS:
        out, _ = edited(picture, family, rng_for(0, 5))
        assert out.size != picture.size or not np.array_equal(np.asarray(out), np.asarray(picture)), family
    for i in range(20):
        out, _ = edited(picture, "crop", rng_for(1, i))
        assert 0.45 <= out.size[0] * out.size[1] / (160 * 120) <= 0.95


def test_unknown_edit_is_an_error(picture):
    with pytest.raises(ArtlensError, match="unknown edit"):
        edited(picture, "sepia", rng_for(0))


def test_edit_plan_balances_families_and_queries_mark_distractors():
    plan = edit_plan(n_items=26, per_item=2, seed=0)
    counts = {f: sum(1 for _, g in plan if g == f) for f in FAMILIES}
    assert len(plan) == 52 and set(counts.values()) == {4}
    queries = edited_queries([(10, "a.png"), (11, "b.png")], ["x.png"], per_work=3, seed=1,
                             unedited_distractors=False)
    assert [q.work_id for q in queries] == [10, 10, 10, 11, 11, 11, None]
    assert [q.index for q in queries] == list(range(7)) and not queries[-1].is_copy
    _, name = random_edit(draw_picture("dots", 1), rng_for(2, 2))
    assert name.split("+")[0] in EDITS


def test_micro_average_precision_and_recall_at_precision():
    # 3 copies; ranking: correct, wrong (distractor), correct; third copy never found
    scores, correct = [0.9, 0.8, 0.7], [True, False, True]
    assert micro_average_precision(scores, correct, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert recall_at_precision(scores, correct, 3, 0.99) == (pytest.approx(1 / 3), 0.9)
    assert recall_at_precision(scores, correct, 3, 0.6)[0] == pytest.approx(2 / 3)
    assert recall_at_precision([0.5], [False], 1, 0.9) == (0.0, float("inf"))


def test_summary_counts_false_positives_and_recall_per_family():
    scores = np.array([0.9, 0.85, 0.4, 0.95, 0.3])
    correct = np.array([True, True, False, False, False])
    is_copy = np.array([True, True, True, False, False])
    groups = ["crop", "jpeg", "crop", "crop", "jpeg"]
    s = copy_detection_summary(scores, correct, is_copy, threshold=0.8, groups=groups)
    assert s["copies"] == 3 and s["distractors"] == 2
    assert s["false_positives_on_distractors"] == 1 and s["recall"] == pytest.approx(2 / 3)
    assert s["recall_per_group"] == {"crop": 0.5, "jpeg": 1.0}
    assert s["top1_on_copies"] == pytest.approx(2 / 3)
    v = verdict_summary([True, False, False, True, False], correct, is_copy, groups)
    assert v["recall"] == pytest.approx(1 / 3) and v["false_positives_on_distractors"] == 1


def test_distractors_are_queried_unedited_as_well_as_edited(picture, tmp_path):
    picture.save(tmp_path / "x.png")
    picture.save(tmp_path / "y.png")
    distractors = [str(tmp_path / "x.png"), str(tmp_path / "y.png")]
    queries = edited_queries([(10, "a.png")], distractors, per_work=2, seed=1)
    assert [q.work_id for q in queries] == [10, 10, None, None, None, None]
    assert [q.family == UNEDITED for q in queries] == [False, False, False, False, True, True]
    assert [q.source for q in queries[4:]] == distractors and [q.index for q in queries] == list(range(6))
    assert distractor_counts(queries) == {"distractors": 2, "edited_distractors": 2, "unedited_distractors": 2}
    image, done = render_query(queries[4], seed=1)
    assert done == UNEDITED and np.array_equal(np.asarray(image), np.asarray(picture.convert("RGB")))
    assert not np.array_equal(np.asarray(render_query(queries[2], seed=1)[0].resize(picture.size)),
                              np.asarray(picture))


def test_false_positives_are_counted_on_unedited_and_edited_distractors():
    # two copies, then an edited distractor below the threshold and two unedited ones above it
    scores = np.array([0.9, 0.7, 0.5, 0.95, 0.85])
    truth = np.array([3, 4, -1, -1, -1])
    predicted = np.array([3, 4, 3, 4, 3])
    families = ["crop", "jpeg", "crop", UNEDITED, UNEDITED]
    s = score_method(scores, predicted, truth, families, threshold=0.8)
    assert s["false_positives_on_distractors"] == 2
    assert s["false_positives_on_unedited_distractors"] == 2 and s["false_positives_on_edited_distractors"] == 0
    assert s["false_positives_per_group"] == {"crop": 0, UNEDITED: 2}
    assert set(s["recall_per_group"]) == {"crop", "jpeg"} and s["recall"] == 0.5
