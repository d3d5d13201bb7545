"""The procedurally generated demo collection: determinism, balance, idempotence, decoding."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.demo import DEMO_STYLES, DEMO_SUBJECTS, generate_demo_collection
from artlens.errors import CollectionError
from artlens.progress import Reporter

COLUMNS = ["path", "title", "artist", "style", "subject", "date", "description"]
N, SIZE = 36, 64


def _rows(labels: Path) -> list[dict[str, str]]:
    with open(labels, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    return generate_demo_collection(out, n=N, seed=0, size=SIZE)


def test_interface_constants():
    assert set(DEMO_STYLES) >= {"dot", "grid", "wave", "wash", "stroke", "concentric"}
    assert set(DEMO_SUBJECTS) >= {"landscape", "portrait", "still-life"}


def test_labels_csv_columns_and_values(demo: Path):
    assert demo.name == "labels.csv"
    with open(demo, newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == COLUMNS
    rows = _rows(demo)
    assert len(rows) == N
    assert len({r["path"] for r in rows}) == N
    assert len({r["title"] for r in rows}) == N  # repeated titles get a numeral
    for r in rows:
        assert r["path"].startswith("images/") and r["path"].endswith(".jpg")
        assert r["style"] in DEMO_STYLES and r["subject"] in DEMO_SUBJECTS
        assert r["date"].isdigit() and 1850 <= int(r["date"]) <= 2020
        assert r["title"] and r["artist"] and len(r["description"]) > 40
    assert 2 <= len({r["artist"] for r in rows}) <= 12


def test_balanced_across_styles_and_subjects(demo: Path):
    rows = _rows(demo)
    styles = Counter(r["style"] for r in rows)
    subjects = Counter(r["subject"] for r in rows)
    assert styles == {s: N // len(DEMO_STYLES) for s in DEMO_STYLES}
    assert subjects == {s: N // len(DEMO_SUBJECTS) for s in DEMO_SUBJECTS}
    combos = Counter((r["style"], r["subject"]) for r in rows)
    assert set(combos.values()) == {N // (len(DEMO_STYLES) * len(DEMO_SUBJECTS))}


def test_balance_holds_for_uneven_n(tmp_path: Path):
    rows = _rows(generate_demo_collection(tmp_path, n=20, seed=5, size=32))
    for key, values in (("style", DEMO_STYLES), ("subject", DEMO_SUBJECTS)):
        counts = Counter(r[key] for r in rows)
        assert set(counts) == set(values)
        assert max(counts.values()) - min(counts.values()) <= 1


def test_descriptions_mention_subject_and_technique(demo: Path):
    technique = {"dot": "dot", "grid": "grid", "wave": "wav", "wash": "watercolour",
                 "stroke": "stroke", "concentric": "concentric"}
    subject = {"landscape": "landscape", "portrait": "portrait", "still-life": "still life"}
    for r in _rows(demo):
        d = r["description"].lower()
        assert technique[r["style"]] in d, r
        assert subject[r["subject"]] in d, r


def test_every_image_decodes_at_the_right_size(demo: Path):
    root = demo.parent
    for r in _rows(demo):
        with Image.open(root / r["path"]) as im:
            assert im.format == "JPEG"
            im.load()
            assert im.mode == "RGB" and im.size == (SIZE, SIZE)
    assert len(list((root / "images").glob("*.jpg"))) == N


def test_images_are_pictures_not_blanks(demo: Path):
    root = demo.parent
    for r in _rows(demo):
        arr = np.asarray(Image.open(root / r["path"]), dtype=np.float32)
        assert arr.std() > 8.0, r["path"]


def test_same_seed_gives_identical_bytes(demo: Path, tmp_path: Path):
    again = generate_demo_collection(tmp_path / "again", n=N, seed=0, size=SIZE)
    assert _files(again.parent) == _files(demo.parent)


def test_different_seeds_differ(demo: Path, tmp_path: Path):
    other = generate_demo_collection(tmp_path, n=N, seed=1, size=SIZE)
    a, b = _files(demo.parent), _files(other.parent)
    images = [k for k in a if k.startswith("images/")]
    assert sum(a[k] != b.get(k) for k in images) == len(images)
    assert a["labels.csv"] != b["labels.csv"]


def test_idempotent_when_complete(tmp_path: Path):
    labels = generate_demo_collection(tmp_path, n=12, seed=2, size=32)
    meta = json.loads((tmp_path / "demo.json").read_text())
    assert (meta["n"], meta["seed"], meta["size"], meta["complete"]) == (12, 2, 32, True)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert generate_demo_collection(tmp_path, n=12, seed=2, size=32) == labels
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def test_regenerates_when_settings_change_or_files_are_missing(tmp_path: Path):
    generate_demo_collection(tmp_path, n=12, seed=2, size=32)
    first = (tmp_path / "images" / "0003.jpg").read_bytes()
    (tmp_path / "images" / "0003.jpg").unlink()
    generate_demo_collection(tmp_path, n=12, seed=2, size=32)
    assert (tmp_path / "images" / "0003.jpg").read_bytes() == first

    labels = generate_demo_collection(tmp_path, n=6, seed=2, size=40)  # fewer, larger pictures
    rows = _rows(labels)
    assert len(rows) == 6
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(Path(r["path"]).name for r in rows)
    with Image.open(tmp_path / rows[0]["path"]) as im:
        assert im.size == (40, 40)
    assert json.loads((tmp_path / "demo.json").read_text())["n"] == 6


def test_interrupted_run_is_not_taken_as_complete(tmp_path: Path):
    generate_demo_collection(tmp_path, n=6, seed=0, size=32)
    meta = json.loads((tmp_path / "demo.json").read_text())
    meta["complete"] = False
    (tmp_path / "demo.json").write_text(json.dumps(meta))
    (tmp_path / "images" / "0002.jpg").write_bytes(b"truncated")
    labels = generate_demo_collection(tmp_path, n=6, seed=0, size=32)
    with Image.open(labels.parent / "images" / "0002.jpg") as im:
        im.load()
    assert json.loads((tmp_path / "demo.json").read_text())["complete"] is True


def test_refuses_a_folder_with_someone_elses_labels(tmp_path: Path):
    (tmp_path / "labels.csv").write_text("path,title\nmine.jpg,Mine\n")
    with pytest.raises(CollectionError):
        generate_demo_collection(tmp_path, n=6, seed=0, size=32)
    assert (tmp_path / "labels.csv").read_text() == "path,title\nmine.jpg,Mine\n"


def test_rejects_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError):
        generate_demo_collection(tmp_path, n=0)
    with pytest.raises(ValueError):
        generate_demo_collection(tmp_path, n=6, size=8)


def test_progress_goes_to_stderr(tmp_path: Path, capsys):
    generate_demo_collection(tmp_path, n=6, seed=0, size=32, reporter=Reporter())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "6/6" in captured.err
