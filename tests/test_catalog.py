from artlens.catalog.db import SCHEMA_VERSION, Catalog


def test_schema_version_and_reopen(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    assert cat.schema_version == SCHEMA_VERSION
    cat.close()
    assert Catalog(tmp_path / "c.sqlite").schema_version == SCHEMA_VERSION


def test_duplicates_by_content_are_one_artwork(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    with cat.transaction():
        a, new_a = cat.add_file("/x/a.jpg", "m1", 10, 1, 4, 4)
        b, new_b = cat.add_file("/x/copy_of_a.jpg", "m1", 10, 1, 4, 4)
    assert a == b and new_a and not new_b
    assert len(cat) == 1
    with cat.transaction():
        assert cat.remove_files(["/x/a.jpg"]) == []  # the copy still holds the artwork
    assert cat.get(a).path == "/x/copy_of_a.jpg"
    with cat.transaction():
        assert cat.remove_files(["/x/copy_of_a.jpg"]) == [a]
    assert len(cat) == 0


def test_metadata_filters_and_facets(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    with cat.transaction():
        for i, (style, artist) in enumerate([("Baroque", "A"), ("Baroque", "B"), ("Rococo", "A")]):
            aid, _ = cat.add_file(f"/x/{i}.jpg", f"m{i}", 1, 1, 1, 1)
            cat.set_metadata(aid, {"style": style, "artist": artist, "empty": ""})
    assert cat.metadata_columns() == ["artist", "style"]
    assert cat.facet_counts("style") == [("Baroque", 2), ("Rococo", 1)]
    assert len(cat.filter_ids({"style": ["Baroque"]})) == 2
    assert len(cat.filter_ids({"style": ["Baroque"], "artist": ["A"]})) == 1
    assert len(cat.filter_ids({"style": ["Baroque", "Rococo"]})) == 3


def test_transaction_rolls_back(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    try:
        with cat.transaction():
            cat.add_file("/x/a.jpg", "m1", 10, 1, 4, 4)
            raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    assert len(cat) == 0
