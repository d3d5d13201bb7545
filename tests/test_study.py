"""The human-vs-machine study: seeded questions, atomic answers, the analysis (Ps, Agree, ties,
difficulty), simulated participants and weights learned from judgements; CLI and API in-process."""

import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from artlens.cli import main
from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.study import AnswerLog, Study, create_study
from artlens.study.analysis import QuestionVotes, analyse, score_pick
from artlens.study.methods import closest_pairs, study_vectors
from artlens.study.questions import Question, draw_questions
from artlens.study.simulate import simulate_answers
from artlens.study.weights import fit_weights, simplex_grid


@pytest.fixture(scope="module")
def coll(tiny_collection, tmp_path_factory):
    """A private copy of the tiny collection (the study computes style matrices into its cache)."""
    root = tmp_path_factory.mktemp("study") / "c"
    shutil.copytree(tiny_collection.root, root)
    return Collection.open(root)


@pytest.fixture(scope="module")
def vectors(coll, tmp_path_factory):
    study = create_study(coll, "style", 12, 4, seed=0, out=tmp_path_factory.mktemp("s") / "study")
    return study, study_vectors(coll, study)


def test_questions_are_seeded_and_within_one_group(coll, tmp_path):
    a = create_study(coll, "style", 6, 4, seed=3, out=tmp_path / "a")
    b = create_study(coll, "style", 6, 4, seed=3, out=tmp_path / "b")
    c = create_study(coll, "style", 6, 4, seed=4, out=tmp_path / "c")
    assert [q.artworks for q in a.questions] == [q.artworks for q in b.questions]
    assert [q.artworks for q in a.questions] != [q.artworks for q in c.questions]
    styles = coll.catalog.column("style")
    for q in a.questions:
        assert len(set(q.artworks)) == 4 and {styles[i] for i in q.artworks} == {q.group}
    assert {q.group for q in a.questions} == {"stripes", "dots", "rings"}  # round robin over groups
    assert Study.load(tmp_path / "a").questions == a.questions
    with pytest.raises(ArtlensError, match="already exists"):
        create_study(coll, "style", 6, 4, seed=3, out=tmp_path / "a")
    with pytest.raises(ArtlensError, match="no label value has 5"):
        create_study(coll, "style", 6, 5, out=tmp_path / "d")


def test_overwrite_sets_the_old_answers_aside(coll, tmp_path, capsys):
    old = create_study(coll, "style", 3, 4, seed=1, out=tmp_path / "study")
    AnswerLog(old.answers_path).append(old, "p", 0, old.questions[0].artworks[:2])
    assert main(["study", "create", "-c", str(coll.root), "--group-by", "style", "--groups", "3", "--size", "4",
                 "--seed", "2", "--out", str(tmp_path / "study"), "--overwrite"]) == 0
    assert "answers of the replaced study moved to" in capsys.readouterr().out
    new = Study.load(tmp_path / "study")
    assert AnswerLog(new.answers_path).read() == []  # question 0 of the new study is unanswered
    aside = list((tmp_path / "study").glob("answers.*.jsonl"))
    assert len(aside) == 1 and AnswerLog(aside[0]).read()[0].participant == "p"
    again = create_study(coll, "style", 3, 4, seed=3, out=tmp_path / "study", overwrite=True)
    assert again.replaced_answers is None  # nothing to move: the new study had no answers


def test_draw_uses_each_group_without_repeats_until_it_runs_out():
    drawn = draw_questions({"x": list(range(10)), "y": list(range(10, 16)), "z": [99]}, 4, 5, seed=0)
    assert sorted(g for g, _ in drawn) == ["x", "x", "y", "y"]  # z is too small to ask about
    xs = [ids for g, ids in drawn if g == "x"]
    assert not set(xs[0]) & set(xs[1])
    # many questions from small groups: no set of artworks is asked about twice while others remain
    many = draw_questions({"x": list(range(8)), "y": list(range(10, 18))}, 40, 5, seed=1)  # 56 sets each
    assert len({(g, tuple(ids)) for g, ids in many}) == 40


def test_answers_append_validate_and_latest_wins(vectors, tmp_path):
    study, _ = vectors
    log = AnswerLog(tmp_path / "answers.jsonl")
    q = study.questions[0]
    log.append(study, "ann", 0, (q.artworks[1], q.artworks[0]), confidence=4, expertise=2)
    log.append(study, "ann", 0, (q.artworks[2], q.artworks[3]))
    with open(log.path, "a") as fh:
        fh.write('{"participant": "torn", "quest')  # a crash mid-line
    answers = log.read()
    assert len(answers) == 1 and answers[0].pair == tuple(sorted(q.artworks[2:4]))
    assert len(log.read(latest_only=False)) == 2
    with pytest.raises(ArtlensError, match="not a pair"):
        log.append(study, "ann", 0, (q.artworks[0], q.artworks[0]))
    with pytest.raises(ArtlensError, match="not a pair"):
        log.append(study, "ann", 0, (q.artworks[0], -5))
    with pytest.raises(ArtlensError, match="participant"):
        log.append(study, "a b/c", 0, q.artworks[:2])
    with pytest.raises(ArtlensError, match="1 to 5"):
        log.append(study, "ann", 0, q.artworks[:2], confidence=9)


def test_ties_follow_the_documented_rule():
    q = Question(0, "g", (1, 2, 3), ("a", "b", "c"))  # pairs (0,1) (0,2) (1,2)
    tied = QuestionVotes(q, np.array([2, 2, 1]))
    assert tied.majority == [0, 1]
    assert score_pick([0], tied) == (0.4, 1.0)  # a majority tie: either tied pair agrees
    assert score_pick([2], tied) == (0.2, 0.0)
    ps, agree = score_pick([1, 2], tied)  # the method itself is undecided: equal shares
    assert agree == 0.5 and ps == pytest.approx(0.3)
    d = np.array([[0, 1, 1], [1, 0, 2], [1, 2, 0]], dtype=float)
    assert closest_pairs(d, q.pairs) == [0, 1]


@pytest.mark.parametrize("rule", ["gram", "cosine", "gramcos", "content", "colour"])
def test_participants_following_a_rule_make_it_agree_fully(vectors, tmp_path, rule):
    study, mv = vectors
    study = Study(tmp_path, study.collection, study.group_by, study.size, study.seed, study.questions)
    simulate_answers(study, mv, rule, participants=25, noise=0.2, seed=1)
    answers = AnswerLog(study.answers_path).read()
    result = analyse(study, answers, mv)
    assert result["answered_questions"] == len(study.questions)
    assert result["overall"]["methods"][rule]["agree"] == 1.0
    assert all(s["methods"][rule]["agree"] == 1.0 for s in result["groups"].values())
    assert {"gram", "cosine", "gramcos", "content", "style", "colour", "mix"} <= set(result["methods"])
    consensus = [r["consensus"] for r in result["questions"]]
    assert consensus == sorted(consensus, reverse=True)  # ranked easiest first
    # Ps of the rule is the share of participants choosing its pair: at most the consensus
    assert result["overall"]["methods"][rule]["ps"] <= result["overall"]["consensus"] + 1e-9


def test_weights_learned_from_judgements_recover_the_rule(vectors, tmp_path):
    study, mv = vectors
    study = Study(tmp_path, study.collection, study.group_by, study.size, study.seed, study.questions)
    simulate_answers(study, mv, "colour", participants=9, noise=0.0, seed=2)
    fitted = fit_weights(study, AnswerLog(study.answers_path).read(), mv, holdout=0.5, seed=0)
    assert fitted["after"]["train"]["agree"] == 1.0
    assert fitted["after"]["heldout"]["agree"] >= fitted["before"]["heldout"]["agree"]
    assert fitted["after"]["weights"]["colour"] > 0
    assert fitted["train_questions"] + fitted["heldout_questions"] == len(study.questions)
    assert "at least 4" in fit_weights(study, [], mv)["skipped"]


def test_simplex_grid_sums_to_one():
    grid = simplex_grid(3, 10)
    assert len(grid) == 66 and all(abs(sum(w) - 1) < 1e-9 for w in grid)


def test_cli_create_simulate_analyse(coll, tmp_path, capsys):
    study = tmp_path / "study"
    assert main(["study", "create", "-c", str(coll.root), "--group-by", "style", "--groups", "6", "--size", "4",
                 "--out", str(study)]) == 0
    assert main(["study", "analyse", "--study", str(study)]) == 2  # no answers yet: one-line error
    assert "no answers yet" in capsys.readouterr().err
    assert main(["study", "simulate", "--study", str(study), "--rule", "gram", "--participants", "5"]) == 0
    capsys.readouterr()
    assert main(["study", "analyse", "--study", str(study), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["overall"]["methods"]["gram"]["agree"] == 1.0
    assert {p.name for p in (study / "analysis").iterdir()} >= {"analysis.md", "analysis.json", "cumulative.png"}
    assert "Gram (block4)" in (study / "analysis" / "analysis.md").read_text()
    # a second simulation adds participants instead of replacing the first ones' answers
    assert main(["study", "simulate", "--study", str(study), "--rule", "colour", "--participants", "5"]) == 0
    capsys.readouterr()
    assert main(["study", "analyse", "--study", str(study), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["participants"] == 10
    assert main(["study", "simulate", "--study", str(study), "--rule", "gram", "--participants", "0"]) == 2


def test_cli_analyse_when_no_current_question_has_an_answer(coll, tmp_path, capsys):
    study = create_study(coll, "style", 3, 4, out=tmp_path / "study")
    # an answer to a question this study does not have (e.g. from a larger study it replaced)
    study.answers_path.write_text(json.dumps({"participant": "p", "question": 7, "pair": [0, 1]}) + "\n")
    assert main(["study", "analyse", "--study", str(study.root), "--no-extract"]) == 0
    out = capsys.readouterr().out
    assert "0 questions" in out and "consensus n/a" in out
    assert "can reach): n/a." in (study.root / "analysis" / "analysis.md").read_text()


def test_api_serves_questions_and_records_answers(coll, tmp_path):
    from artlens.api import ApiSettings, create_app

    app = create_app(ApiSettings(collection=coll.root, thumbnail_dir=tmp_path / "thumbs"), collection=coll,
                     warm_up=False)
    app.state.study_dir = tmp_path / "study"
    client = TestClient(app)
    assert client.get("/api/study").status_code == 404
    study = create_study(coll, "style", 3, 4, out=tmp_path / "study")
    info = client.get("/api/study").json()
    assert len(info["questions"]) == 3 and "group" not in info["questions"][0]
    ids = [a["id"] for a in info["questions"][1]["artworks"]]
    assert client.get(info["questions"][1]["artworks"][0]["thumbnail"]).status_code == 200
    issued = client.post("/api/study/participants")
    assert issued.status_code == 201
    me, token = issued.json()["participant"], issued.json()["token"]
    r = client.post("/api/study/answers", json={"participant": me, "token": token, "question": 1, "pair": ids[:2],
                                                "confidence": 3})
    assert r.status_code == 201 and r.json()["answered"] == [1]
    assert client.get("/api/study/progress", params={"participant": me}).json() == {"answered": [1]}
    bad = client.post("/api/study/answers", json={"participant": me, "token": token, "question": 1,
                                                  "pair": [ids[0], 10**9]})
    assert bad.status_code == 422 and "not a pair" in bad.json()["error"]
    assert AnswerLog(study.answers_path).read()[0].pair == tuple(sorted(ids[:2]))
    page = client.get("/study")
    assert page.status_code == 200 and "study.js" in page.text
    assert "/api/study/answers" in client.get("/study.js").text


def test_aspects_without_an_index_are_compared_on_raw_vectors(coll, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(coll.root, root, ignore=shutil.ignore_patterns("index"))
    bare = Collection.open(root)
    study = create_study(bare, "style", 3, 4, out=tmp_path / "study")
    mv = study_vectors(bare, study, extract=False)
    assert {"content", "style", "colour"} <= set(mv.aspects)
    assert any("no index" in note for note in mv.notes)
    v = mv.aspects["colour"][study.questions[0].artworks[0]]
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
