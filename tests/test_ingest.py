import os
import shutil

import pytest
from conftest import draw_picture, make_folder

from artlens.catalog.db import Catalog
from artlens.catalog.ingest import ingest_folder
from artlens.errors import CollectionError, MetadataError


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "pics", per_kind=2)


def test_ingest_records_images_and_metadata(folder, tmp_path):
    root, labels = folder
    cat = Catalog(tmp_path / "c.sqlite")
    report = ingest_folder(cat, root, labels)
    assert report.added == 6 and not report.skipped
    art = cat.get(cat.ids()[0])
    assert art.metadata["style"] in {"stripes", "dots", "rings"} and art.width == 96
    assert set(cat.metadata_columns()) == {"title", "style", "artist"}


def test_bad_files_are_skipped_and_reported(folder, tmp_path):
    root, labels = folder
    images = root / "images"
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("not an image at all")
    good = (images / "stripes_0.png").read_bytes()
    (images / "truncated.png").write_bytes(good[: len(good) // 2])
    (images / "notes.xyz").write_text("?")
    cat = Catalog(tmp_path / "c.sqlite")
    report = ingest_folder(cat, root, labels)
    assert report.added == 6
    reasons = dict(report.skipped)
    assert set(map(os.path.basename, reasons)) == {"empty.jpg", "text.jpg", "truncated.png", "notes.xyz"}
    assert all(str(images) not in reason for reason in reasons.values())  # the path is named once, not again
    assert len(cat.skipped()) == 4
    # unchanged bad files stay reported on the next run, without being read again
    again = ingest_folder(cat, root, labels)
    assert again.unchanged == 6 and len(again.skipped) == 4


def test_incremental_new_changed_removed_and_duplicates(folder, tmp_path):
    root, labels = folder
    images = root / "images"
    cat = Catalog(tmp_path / "c.sqlite")
    ingest_folder(cat, root, labels)
    draw_picture("dots", seed=99).save(images / "new.png")
    shutil.copy(images / "dots_0.png", images / "dots_0_copy.png")
    draw_picture("rings", seed=77).save(images / "stripes_1.png")  # changed content
    os.remove(images / "rings_0.png")
    report = ingest_folder(cat, root, labels)
    assert report.added == 1  # new.png
    assert report.duplicates == 1  # the copy is the same artwork
    assert report.updated == 1
    assert report.removed == 2  # rings_0 gone, and stripes_1's old content
    assert len(cat) == 6


def test_bad_input_errors(tmp_path, folder):
    cat = Catalog(tmp_path / "c.sqlite")
    with pytest.raises(CollectionError, match="does not exist"):
        ingest_folder(cat, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CollectionError, match="no image files"):
        ingest_folder(cat, tmp_path / "empty")
    root, _ = folder
    bad_csv = tmp_path / "elsewhere.csv"
    bad_csv.write_text("path,style\nnot/here.png,x\n")
    with pytest.raises(MetadataError, match="relative to the CSV"):
        ingest_folder(cat, root, bad_csv)
    assert len(cat) == 0  # nothing stored by failed runs


def test_interrupted_ingest_resumes(folder, tmp_path, monkeypatch):
    root, labels = folder
    cat = Catalog(tmp_path / "c.sqlite")
    import artlens.catalog.ingest as ingest_mod

    calls = {"n": 0}
    real = ingest_mod.load_image

    def flaky(path, max_pixels):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(path, max_pixels=max_pixels)

    monkeypatch.setattr(ingest_mod, "load_image", flaky)
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(cat, root, labels, batch_size=2)
    assert len(cat) == 2  # the first batch committed, the interrupted one did not
    monkeypatch.setattr(ingest_mod, "load_image", real)
    report = ingest_folder(cat, root, labels, batch_size=2)
    assert report.unchanged == 2 and report.added == 4 and len(cat) == 6
