"""Copyright registry, checks and the CLI, on a registry of six small demo paintings trained with a tiny
configuration (the real backbone; a few seconds)."""

import gc
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.cli import main
from artlens.copyright.check import CopyrightChecker
from artlens.copyright.config import CopyrightConfig, CVAEConfig, RobustConfig
from artlens.copyright.edits import edited, rng_for
from artlens.copyright.registry import CopyrightRegistry
from artlens.errors import ArtifactMismatchError, ArtlensError, CollectionError

TINY = CopyrightConfig(
    detectors=("robust", "cvae"),
    robust=RobustConfig(head="registry", views=2, epochs=15, hidden=128, dim=32, batch_works=8, threshold=0.85),
    cvae=CVAEConfig(image_size=32, channels=(4, 8, 8, 16, 16), hidden=32, latent=16, epochs=2, batch_size=4),
)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    """Six works of one owner, two of another, edited copies and two unregistered pictures."""
    from artlens.demo.generate import generate_demo_collection

    root = tmp_path_factory.mktemp("copyright")
    generate_demo_collection(root / "demo", n=12, seed=0, size=192)
    demo = sorted((root / "demo" / "images").glob("*.jpg"))
    (root / "ann").mkdir()
    (root / "bob").mkdir()
    (root / "queries").mkdir()
    for i in range(4):
        shutil.copy(demo[i], root / "ann" / f"ann{i}.jpg")
    for i in range(4, 6):
        shutil.copy(demo[i], root / "bob" / f"bob{i}.jpg")
    work = Image.open(demo[1]).convert("RGB")
    edited(work, "crop", rng_for(5, 1))[0].save(root / "queries" / "crop.jpg")
    edited(work, "jpeg", rng_for(5, 2))[0].save(root / "queries" / "jpeg.jpg")
    shutil.copy(demo[9], root / "queries" / "other.jpg")
    (root / "free").mkdir()
    for i in (9, 10, 11):
        shutil.copy(demo[i], root / "free" / f"free{i}.jpg")
    (root / "free-labels.csv").write_text("path,title,artist\nfree/free9.jpg,Dots at dusk,Ada Free\n"
                                          "free/free10.jpg,Stripes,Bo Free\n")  # free11.jpg has no metadata
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return {"root": root, "ann": root / "ann", "bob": root / "bob", "queries": root / "queries",
            "free": root / "free", "free_labels": root / "free-labels.csv", "broken": root / "broken.jpg",
            "work": root / "ann" / "ann1.jpg"}


@pytest.fixture(scope="module")
def registry_path(pictures, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reg") / "registry"
    registry = CopyrightRegistry.open(path, create=True, config=TINY)
    registry.add(pictures["ann"], owner="Ann", licence="all rights reserved")
    registry.add(pictures["bob"], owner="Bob")
    registry.close()
    free = CopyrightRegistry.open(path.parent / "free", create=True, config=TINY)
    free.add(pictures["free"], owner="Public", licence="CC0", labels=pictures["free_labels"], train=False)
    free.close()
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every stored file's bytes; SQLite's shared-memory files and empty write-ahead logs (made by merely
    opening a database) are not stored data."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and not p.stat().st_size)}


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_registry_records_owners_and_trains_both_detectors(registry_path):
    registry = CopyrightRegistry.open(registry_path)
    assert len(registry) == 6 and registry.trained() == ["robust", "cvae"]
    assert registry.owners() == {"Ann": {"works": 4, "licences": {"all rights reserved": 4}},
                                 "Bob": {"works": 2, "licences": {"all rights reserved": 2}}}
    assert len(registry.detector("robust")) == 6 and len(registry.detector("cvae")) == 6


def test_edited_copies_are_found_and_a_distractor_is_not(registry_path, pictures):
    registry = CopyrightRegistry.open(registry_path)
    free = CopyrightRegistry.open(registry_path.parent / "free").collection
    checker = CopyrightChecker(registry, free, alternatives=2)
    q = pictures["queries"]
    crop, jpeg, other = checker.check_files([q / "crop.jpg", q / "jpeg.jpg", q / "other.jpg"])
    work_path = str(pictures["work"].resolve())
    for copy in (crop, jpeg):
        assert copy.verdict == "registered" and copy.stage == "descriptor" and copy.owner == "Ann"
        assert copy.work_path == work_path and copy.score >= copy.threshold
    assert other.verdict == "not-registered" and other.score < other.threshold and other.stage is None
    # the near miss is named: the nearest registered work, with its score (owner and licence stay unset)
    assert other.work_id is not None and Path(other.work_path).parent.name in ("ann", "bob")
    assert other.owner is None and other.licence is None
    assert len(other.alternatives) == 2 and other.alternatives[0].licence == "CC0"
    assert other.alternatives[0].path.endswith("free9.jpg")  # the same picture is in the free collection
    exact = checker.check_files([pictures["work"]])[0]
    assert (exact.verdict, exact.stage, exact.score) == ("registered", "exact", 1.0)


def test_alternatives_carry_title_and_artist_where_the_free_collection_has_them(registry_path, pictures):
    free = CopyrightRegistry.open(registry_path.parent / "free").collection
    checker = CopyrightChecker(CopyrightRegistry.open(registry_path), free, alternatives=3)
    result = checker.check_files([pictures["queries"] / "other.jpg"])[0]
    by_file = {Path(a.path).name: a for a in result.alternatives}
    assert set(by_file) == {"free9.jpg", "free10.jpg", "free11.jpg"}
    assert (by_file["free9.jpg"].title, by_file["free9.jpg"].artist) == ("Dots at dusk", "Ada Free")
    assert (by_file["free11.jpg"].title, by_file["free11.jpg"].artist) == (None, None)
    alternatives = result.as_dict()["alternatives"]
    assert all({"id", "path", "score", "owner", "licence", "title", "artist"} <= set(a) for a in alternatives)
    assert {a["artist"] for a in alternatives} == {"Ada Free", "Bo Free", None}


def test_the_paper_detector_answers_with_its_stages(registry_path, pictures):
    checker = CopyrightChecker(CopyrightRegistry.open(registry_path), detector="cvae")
    result = checker.check_files([pictures["queries"] / "jpeg.jpg"])[0]
    assert result.detector == "cvae" and result.threshold == 0.9
    assert result.verdict in ("registered", "not-registered")
    assert result.stage in (None, "hamming", "cosine")


def test_check_json_lines_for_many_files_and_a_folder(registry_path, pictures, capsys):
    free = str(registry_path.parent / "free")
    code, out, _ = run(["copyright", "check", str(pictures["queries"]), str(pictures["work"]), "--registry",
                        str(registry_path), "--free", free, "--alternatives", "1", "--json"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["file"]).name for r in rows] == ["crop.jpg", "jpeg.jpg", "other.jpg", "ann1.jpg"]
    for r in rows:
        assert {"file", "verdict", "work_id", "work_path", "score", "stage", "alternatives", "owner"} <= set(r)
        assert len(r["alternatives"]) == 1
    assert [r["verdict"] for r in rows] == ["registered", "registered", "not-registered", "registered"]
    assert rows[2]["stage"] is None and rows[2]["owner"] is None and rows[2]["score"] < rows[2]["threshold"]
    assert rows[2]["work_id"] is not None and rows[2]["work_path"]  # the closest registered work


def test_check_text_output_names_every_licence(registry_path, pictures, capsys):
    free = str(registry_path.parent / "free")
    code, out, _ = run(["copyright", "check", str(pictures["queries"] / "crop.jpg"), "--registry", str(registry_path),
                        "--free", free, "--alternatives", "1"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert "of Ann [all rights reserved], score " in lines[0]
    assert lines[1].startswith("    alternative ") and lines[1].endswith(" [CC0]")
    code, out, _ = run(["copyright", "check", str(pictures["queries"] / "other.jpg"), "--registry", str(registry_path),
                        "--alternatives", "0"], capsys)
    assert code == 0 and "not registered" in out and "closest registered work " in out
    assert "(below the threshold)" in out


def test_undecodable_image_is_reported_and_exits_nonzero(registry_path, pictures, capsys):
    before = snapshot(registry_path)
    code, out, err = run(["copyright", "check", str(pictures["broken"]), str(pictures["queries"] / "jpeg.jpg"),
                          "--registry", str(registry_path), "--json"], capsys)
    assert code == 2 and "broken.jpg" in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["verdict"] == "error" and rows[0]["error"] and rows[1]["verdict"] == "registered"
    assert snapshot(registry_path) == before


def test_missing_and_empty_registries_are_clear_errors(pictures, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, _, err = run(["copyright", "check", str(pictures["work"]), "--registry", str(missing)], capsys)
    assert code == 2 and "no copyright registry" in err and "registry add" in err
    assert not missing.exists()
    empty = CopyrightRegistry.open(tmp_path / "empty", create=True, config=TINY)
    empty.close()
    code, _, err = run(["copyright", "check", str(pictures["work"]), "--registry", str(tmp_path / "empty")], capsys)
    assert code == 2 and "holds no works" in err


def test_registry_built_with_another_descriptor_is_refused_unchanged(registry_path, pictures, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(registry_path, other)
    manifest = other / "copyright" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "taps_id": "sscd-resnet50/v1"}))
    before = snapshot(other)
    code, _, err = run(["copyright", "check", str(pictures["work"]), "--registry", str(other)], capsys)
    assert code == 2 and "sscd-resnet50/v1" in err and "registry train" in err
    code, _, err = run(["registry", "add", str(pictures["bob"]), "--owner", "Eve", "--registry", str(other)], capsys)
    assert code == 2 and "sscd-resnet50/v1" in err
    assert snapshot(other) == before
    with pytest.raises(ArtifactMismatchError):
        CopyrightRegistry.open(other)


def test_registry_commands_print_one_json_object_and_progress_on_stderr(pictures, tmp_path, capsys):
    path = tmp_path / "reg"
    CopyrightRegistry.open(path, create=True, config=TINY).close()  # tiny detectors: trained in seconds
    code, out, err = run(["registry", "add", str(pictures["bob"]), "--owner", "Bob", "--registry", str(path),
                          "--json"], capsys)
    assert code == 0
    summary = json.loads(out)  # nothing but the one object on stdout
    assert summary["works"] == 2 and set(summary["trained"]) == {"robust", "cvae"}
    assert summary["ingest"]["added"] == 2
    assert "robust head epoch" in err and "cvae epoch" in err  # progress went to stderr
    code, out, _ = run(["registry", "train", "--detectors", "robust", "--registry", str(path), "--json",
                        "--quiet"], capsys)
    assert code == 0 and set(json.loads(out)["trained"]) == {"robust"}
    code, out, _ = run(["registry", "update", "--owner", "Bob", "--licence", "CC0", "--registry", str(path),
                        "--json"], capsys)
    assert code == 0 and json.loads(out) == {"registry": str(path), "owner": "Bob", "new_owner": None,
                                             "licence": "CC0", "updated": 2}
    code, out, _ = run(["registry", "remove", "--owner", "Bob", "--registry", str(path), "--json"], capsys)
    assert code == 0 and json.loads(out) == {"registry": str(path), "owner": "Bob", "removed": 2, "works": 0}


def test_dropped_short_flags_are_refused(registry_path, pictures, capsys):
    check = ["copyright", "check", str(pictures["work"])]
    registry = ["--registry", str(registry_path)]
    for argv in (check + ["-r", str(registry_path)], check + registry + ["-d", "cvae"], check + registry + ["-k", "1"],
                 ["registry", "update", "-o", "Nobody", "--new-owner", "X"] + registry):
        code, out, err = run(argv, capsys)
        assert code == 2 and not out and "No such option" in err, argv


def test_registry_add_of_a_missing_folder_creates_nothing(tmp_path, capsys):
    code, _, err = run(["registry", "add", str(tmp_path / "none"), "--owner", "X", "--registry",
                        str(tmp_path / "reg")], capsys)
    assert code == 2 and "not a folder" in err and not (tmp_path / "reg").exists()


def test_update_and_remove_an_owner(registry_path, pictures, tmp_path, capsys):
    path = tmp_path / "copy"
    shutil.copytree(registry_path, path)
    code, _, _ = run(["registry", "update", "--owner", "Bob", "--new-owner", "Robert", "--licence", "CC-BY-4.0",
                      "--registry", str(path)], capsys)
    assert code == 0
    code, out, _ = run(["registry", "list", "--registry", str(path), "--json"], capsys)
    assert json.loads(out)["owners"]["Robert"] == {"works": 2, "licences": {"CC-BY-4.0": 2}}
    code, _, _ = run(["registry", "remove", "--owner", "Ann", "--registry", str(path)], capsys)
    assert code == 0
    registry = CopyrightRegistry.open(path)
    assert len(registry) == 2 and len(registry.detector("robust")) == 2 and len(registry.detector("cvae")) == 2
    result = CopyrightChecker(registry).check_files([pictures["queries"] / "jpeg.jpg"])[0]
    assert result.verdict == "not-registered" or result.owner == "Robert"
    with pytest.raises(CollectionError, match="no works of owner"):
        registry.remove_owner("Ann")


def test_registering_anothers_works_is_refused_and_changes_nothing(registry_path, pictures, tmp_path, capsys):
    path = tmp_path / "copy"
    shutil.copytree(registry_path, path)
    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(pictures["ann"] / "ann2.jpg", copies / "mine.jpg")  # Ann's bytes under a new name
    before = snapshot(path)
    for folder in (pictures["bob"], copies):  # the same files again, and the same bytes elsewhere
        code, _, err = run(["registry", "add", str(folder), "--owner", "Thief", "--licence", "CC0",
                            "--registry", str(path)], capsys)
        assert code == 2 and "already registered to another owner" in err and "registry update" in err
    assert snapshot(path) == before
    code, _, _ = run(["registry", "add", str(pictures["bob"]), "--owner", "Bob", "--no-train",
                      "--registry", str(path)], capsys)
    assert code == 0  # the owner refreshing their own works is fine


def test_eval_copyright_reports_every_method(registry_path, pictures, capsys):
    code, out, _ = run(["eval", "copyright", "--registry", str(registry_path), "--distractors", str(pictures["free"]),
                        "--per-work", "1", "--json", "--quiet"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["copies"] == 6 and result["distractors"] == 3
    assert result["edited_distractors"] == 3 and result["unedited_distractors"] == 3
    assert {"robust", "effnet-pooled", "cvae-keys"} <= set(result["methods"])
    robust = result["methods"]["robust"]
    assert 0.0 <= robust["micro_ap"] <= 1.0 and set(robust["recall_per_group"]) <= {
        "crop", "rotate", "flip", "perspective", "colour", "greyscale", "overlay", "border", "screenshot",
        "downscale", "blur_noise", "jpeg", "combo"}
    assert np.isfinite(robust["recall@p90"]) and robust["distractors"] == 6
    assert robust["false_positives_on_unedited_distractors"] + robust["false_positives_on_edited_distractors"] == \
        robust["false_positives_on_distractors"]


def test_fast_check_agrees_with_the_exact_check(registry_path, pictures, capsys):
    argv = ["copyright", "check", str(pictures["queries"]), "--registry", str(registry_path), "--alternatives", "0",
            "--json"]
    code, exact, _ = run(argv, capsys)
    assert code == 0
    code, fast, _ = run(argv + ["--fast", "--shortlist", "2"], capsys)
    assert code == 0
    exact, fast = [json.loads(line) for line in exact.splitlines()], [json.loads(line) for line in fast.splitlines()]
    assert [r["search"] for r in fast] == ["fast"] * 3 and [r["search"] for r in exact] == ["exact"] * 3
    assert [(r["verdict"], r["work_id"]) for r in fast] == [(r["verdict"], r["work_id"]) for r in exact]
    code, _, err = run(argv + ["--fast", "--detector", "cvae"], capsys)
    assert code == 2 and "robust detector" in err


def test_the_search_mode_can_be_chosen_per_call(registry_path, pictures):
    registry = CopyrightRegistry.open(registry_path)
    checker = CopyrightChecker(registry, shortlist=2)
    image = Image.open(pictures["queries"] / "crop.jpg")
    exact, fast = checker.check_images([image], ["q"])[0], checker.check_images([image], ["q"], fast=True)[0]
    assert (exact.search, fast.search) == ("exact", "fast")
    assert (fast.verdict, fast.work_id) == (exact.verdict, exact.work_id) and exact.verdict == "registered"
    # fewer works than the default shortlist: every work is scored, and the result says so
    assert CopyrightChecker(registry).check_images([image], ["q"], fast=True)[0].search == "exact"
    with pytest.raises(ArtlensError, match="robust detector"):
        CopyrightChecker(registry, detector="cvae").check_images([image], ["q"], fast=True)


def test_eval_copyright_writes_a_report_folder(registry_path, pictures, tmp_path, capsys):
    before = snapshot(registry_path)
    out = tmp_path / "report"
    code, _, _ = run(["eval", "copyright", "--registry", str(registry_path), "--distractors", str(pictures["free"]),
                      "--per-work", "1", "--fast", "--out", str(out), "--quiet"], capsys)
    assert code == 0
    assert {"report.md", "report.json", "precision_recall.png", "recall_per_transform.png"} <= {
        p.name for p in out.iterdir()}
    report = json.loads((out / "report.json").read_text())
    assert {"robust", "robust-fast", "cvae-keys", "effnet-pooled"} <= set(report["methods"])
    assert 0.0 <= report["methods"]["robust-fast"]["agreement_with_exact"] <= 1.0
    assert report["methods"]["robust"]["pr_curve"]["recall"]
    markdown = (out / "report.md").read_text()
    assert "| robust |" in markdown and "![precision_recall](precision_recall.png)" in markdown
    assert (out / "precision_recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert snapshot(registry_path) == before


def test_eval_copyright_on_an_empty_registry_is_an_error(tmp_path, pictures, capsys):
    CopyrightRegistry.open(tmp_path / "empty", create=True, config=TINY).close()
    before = snapshot(tmp_path / "empty")
    code, _, err = run(["eval", "copyright", "--registry", str(tmp_path / "empty"), "--distractors",
                        str(pictures["free"]), "--quiet"], capsys)
    assert code == 2 and "holds no works" in err
    assert snapshot(tmp_path / "empty") == before


def test_eval_copyright_validates_its_options(registry_path, pictures, tmp_path, capsys):
    before = snapshot(registry_path)
    base = ["eval", "copyright", "--registry", str(registry_path), "--quiet"]
    for flag in ("--per-work", "--n-distractors"):
        code, out, err = run(base + ["--distractors", str(pictures["free"]), flag, "0"], capsys)
        assert code == 2 and f"{flag} must be at least 1" in err and not out
    code, _, err = run(base + ["--distractors", str(tmp_path / "missing")], capsys)
    assert code == 2 and "distractor folder" in err and "does not exist" in err and "file not found" not in err
    code, _, err = run(base + ["--distractors", str(pictures["work"])], capsys)
    assert code == 2 and "is a file, not a folder" in err
    assert snapshot(registry_path) == before


def test_a_plain_collection_is_not_taken_for_a_registry(pictures, tmp_path, capsys):
    collection = tmp_path / "collection"
    code, _, _ = run(["ingest", str(pictures["free"]), "--collection", str(collection), "--no-features"], capsys)
    assert code == 0
    gc.collect()  # the ingest's databases are closed (and their write-ahead logs checkpointed) now
    before = snapshot(collection)
    for argv in (["eval", "copyright", "--distractors", str(pictures["free"]), "--quiet"],
                 ["copyright", "check", str(pictures["work"])], ["registry", "train", "--quiet"]):
        code, _, err = run(argv + ["--registry", str(collection)], capsys)
        assert code == 2 and "is an artlens collection, not a copyright registry" in err, argv
        assert "registry add IMAGE_FOLDER --owner NAME" in err
    assert snapshot(collection) == before
