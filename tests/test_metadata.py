"""Metadata CSV readers (artlens.catalog.metadata)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artlens.catalog.metadata import (
    PATH_COLUMNS,
    MetadataRow,
    MetadataTable,
    canonical_column,
    read_metadata,
)
from artlens.errors import ArtlensError, MetadataError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARTLENS_DATA", "../shared/data"))
DATA = DATA if DATA.is_absolute() else REPO / DATA  # relative to the repo root

SEMART_HEADER = "IMAGE_FILE\tDESCRIPTION\tAUTHOR\tTITLE\tTECHNIQUE\tDATE\tTYPE\tSCHOOL\tTIMEFRAME"


def _err(path) -> MetadataError:
    with pytest.raises(MetadataError) as info:
        read_metadata(path)
    assert isinstance(info.value, ArtlensError) and info.value.hint
    return info.value


# ----------------------------------------------------------------------------------- SemArt


def test_semart_latin1_with_images_folder(tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "Images" / "19873-1portra.jpg").write_bytes(b"x")
    (tmp_path / "beside.jpg").write_bytes(b"x")
    lines = [
        SEMART_HEADER,
        '19873-1portra.jpg\tPortrait of a young man, "painted" in Sevilla.\tMURILLO, Bartolomé Esteban\t'
        "Self-Portrait\tOil on canvas, 107 x 77 cm\tc. 1670\tportrait\tSpanish\t1651-1700",
        "beside.jpg\tA café scene.\tGOYA Y LUCIENTES, Francisco de\tLa maja\tOil\t1800\tgenre\tSpanish"
        "\t1751-1800",
        "missing.jpg\t\tDÜRER, Albrecht\tMelencolia\t\t1514\treligious\tGerman\t1501-1550",
    ]
    csv_path = tmp_path / "semart_train.csv"
    csv_path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))

    t = read_metadata(csv_path)
    assert t.format == "semart"
    assert t.columns == ("description", "artist", "title", "technique", "date", "type", "school", "timeframe")
    assert len(t.rows) == 3 and len(t) == 3
    first, second, third = t.rows
    assert first.path == tmp_path / "Images" / "19873-1portra.jpg"  # Images/ fallback
    assert first.fields["artist"] == "MURILLO, Bartolomé Esteban"
    assert first.fields["description"] == 'Portrait of a young man, "painted" in Sevilla.'
    assert first.fields["technique"] == "Oil on canvas, 107 x 77 cm"
    assert second.path == tmp_path / "beside.jpg"  # exists beside the CSV: used as is
    assert second.fields["description"] == "A café scene."
    assert third.path == tmp_path / "missing.jpg"  # kept; the ingest step reports it
    assert "description" not in third.fields and "technique" not in third.fields
    assert third.fields["artist"] == "DÜRER, Albrecht"
    assert t.source == csv_path
    assert {row.path for row in t.rows} == {first.path, second.path, third.path}


def test_semart_cp1252_punctuation(tmp_path):
    text = (
        SEMART_HEADER
        + "\na.jpg\tIt\u2019s \u201cgreat\u201d \u2014 truly\tX\tT\tOil\t1600\tgenre\tItalian\t1551-1600\n"
    )
    p = tmp_path / "semart_val.csv"
    p.write_bytes(text.encode("cp1252"))
    assert read_metadata(p).rows[0].fields["description"] == "It\u2019s \u201cgreat\u201d \u2014 truly"


# ----------------------------------------------------------------------------------- WikiArt


def test_wikiart_headerless(tmp_path):
    p = tmp_path / "style_train.csv"
    p.write_text(
        "Impressionism/claude-monet_water-lilies.jpg,12\n"
        "Post_Impressionism/vincent-van-gogh_the-starry-night-1889.jpg,20\n"
        "Impressionism/claude-monet_water-lilies.jpg,12\n"
        "Baroque/untitled.jpg,4\n"
    )
    t = read_metadata(p)
    assert t.format == "wikiart"
    assert t.columns == ("style", "artist", "style_class")
    assert len(t.rows) == 3
    a, b, c = t.rows
    assert a.path == tmp_path / "Impressionism" / "claude-monet_water-lilies.jpg"
    assert a.fields == {"style": "Impressionism", "artist": "claude-monet", "style_class": "12"}
    assert b.fields["style"] == "Post Impressionism" and b.fields["artist"] == "vincent-van-gogh"
    assert "artist" not in c.fields
    assert any("duplicate" in n for n in t.notes)


def test_wikiart_image_root(tmp_path):
    (tmp_path / "wikiart_csv").mkdir()
    p = tmp_path / "wikiart_csv" / "genre_val.csv"
    p.write_text("Realism/ivan-shishkin_forest.jpg,4\n")
    t = read_metadata(p, image_root=tmp_path / "wikiart")
    assert t.rows[0].path == tmp_path / "wikiart" / "Realism" / "ivan-shishkin_forest.jpg"
    assert t.columns[-1] == "genre_class"


def test_wikiart_with_header_is_generic(tmp_path):
    p = tmp_path / "classes.csv"
    p.write_text("filename,artist,genre,style\nImpressionism/a_b.jpg,Claude Monet,landscape,Impressionism\n")
    t = read_metadata(p)
    assert t.format == "generic" and t.columns == ("artist", "genre", "style")
    assert t.rows[0].path == tmp_path / "Impressionism" / "a_b.jpg"


# ----------------------------------------------------------------------------------- generic


def test_semicolon_csv_with_aliases_and_absolute_paths(tmp_path):
    absolute = tmp_path / "elsewhere" / "z.png"
    p = tmp_path / "export.csv"
    p.write_text(
        "Image Path;Painter;Title;Year Created;Notes\n"
        "img/a.jpg; Rembrandt ;The Night Watch;1642;\n"
        f"{absolute};Vermeer;Girl with a Pearl Earring;1665;on loan\n"
        "img\\b.jpg;Hals;Laughing Cavalier;1624;x\n"
        ";Nobody;No path;;\n",
        encoding="utf-8",
    )
    t = read_metadata(p)
    assert t.format == "generic"
    assert t.columns == ("artist", "title", "year_created", "notes")
    a, b, c = t.rows
    assert a.path == tmp_path / "img" / "a.jpg"
    assert a.fields == {"artist": "Rembrandt", "title": "The Night Watch", "year_created": "1642"}
    assert b.path == absolute and b.fields["notes"] == "on loan"
    assert c.path == tmp_path / "img" / "b.jpg"  # Windows separators
    assert any("without an image path" in n for n in t.notes)


def test_tab_and_pipe_and_bom(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("\ufefffile_name\tArtist\nx.jpg\tA\n", encoding="utf-8")
    t = read_metadata(p)
    assert t.rows[0].fields == {"artist": "A"} and t.columns == ("artist",)
    p = tmp_path / "p.csv"
    p.write_text("img|style\nx.jpg|Cubism\n")
    assert read_metadata(p).rows[0].fields == {"style": "Cubism"}


def test_quoted_multiline_fields(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text(
        "path,title,description\n"
        'a.jpg,"Still Life, with ""Lemons""","First line, with a comma.\n\nSecond paragraph; ""quoted""."\n'
        "b.jpg,Plain,short\n",
        encoding="utf-8",
    )
    t = read_metadata(p)
    assert len(t.rows) == 2
    a = t.rows[0].fields
    assert a["title"] == 'Still Life, with "Lemons"'
    assert a["description"] == 'First line, with a comma.\n\nSecond paragraph; "quoted".'
    assert t.rows[1].path == tmp_path / "b.jpg"


def test_path_column_priority_and_duplicates(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("image,path,title\nhttp://x/1,a.jpg,One\nhttp://x/2,a.jpg,Again\nhttp://x/3,./b.jpg,Two\n")
    t = read_metadata(p)
    assert [r.path.name for r in t.rows] == ["a.jpg", "b.jpg"]
    assert t.rows[0].fields == {"image": "http://x/1", "title": "One"}  # first row wins
    assert t.columns == ("image", "title")
    assert any("1 duplicate row" in n and "line 3" in n for n in t.notes)


def test_canonical_column():
    assert canonical_column(" Image File ") == "image_file"
    assert canonical_column("imageFile") == "image_file"
    assert canonical_column("AUTHOR") == "artist"
    assert canonical_column("Painter") == "artist"
    assert canonical_column("Date-Created (approx.)") == "date_created_approx"
    assert canonical_column("Título") == "título"
    assert "file_name" in PATH_COLUMNS and "img" in PATH_COLUMNS


def test_duplicate_and_blank_header_names(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(",path,Author,artist\n0,a.jpg,A,B\n")
    t = read_metadata(p)
    assert t.columns == ("column_1", "artist", "artist_2")
    assert t.rows[0].fields == {"column_1": "0", "artist": "A", "artist_2": "B"}


def test_dataclasses_are_frozen(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("path\na.jpg\n")
    t = read_metadata(p)
    assert isinstance(t, MetadataTable) and isinstance(t.rows[0], MetadataRow)
    assert t.rows[0].fields == {} and t.columns == ()
    with pytest.raises(AttributeError):
        t.format = "x"  # type: ignore[misc]


# ----------------------------------------------------------------------------------- errors


def test_missing_path_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("title,artist\nA,B\n")
    e = _err(p)
    assert "no image path column" in e.message and "'title'" in e.message and "'artist'" in e.message
    assert "filename" in e.hint and "image_path" in e.hint


def test_empty_and_blank_files(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    assert "empty" in _err(p).message
    p.write_text("\n  \n\n")
    assert "empty" in _err(p).message
    p.write_text("path,title\n")
    assert "no rows" in _err(p).message


def test_missing_unreadable_binary(tmp_path):
    assert "not found" in _err(tmp_path / "nope.csv").message
    assert "folder" in _err(tmp_path).message
    p = tmp_path / "sheet.xlsx"
    p.write_bytes(b"PK\x03\x04\x00\x00\x08\x00" + bytes(100))
    assert "binary" in _err(p).message


def test_headerless_non_wikiart(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a.jpg,Monet,Water Lilies\n")
    assert "no header row" in _err(p).message


def test_unbalanced_quote(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('path,title\na.jpg,"never closed\n' + "b.jpg,x\n" * 3)
    e = _err(p)
    assert "unbalanced double quote" in e.message and "line 2" in e.message
    # a quote inside an unquoted field is just a character
    p.write_text("path,title\na.jpg,5'10\" tall\n")
    assert read_metadata(p).rows[0].fields["title"] == "5'10\" tall"


# ----------------------------------------------------------------------------------- real data

_EXPECTED = {
    "bob_ross": (403, {"artist", "title", "season", "episode", "colors"}),
    "cifar10_jpg": (10_000, {"split", "label"}),
    "kohlerryan_artists": (184, {"artist", "title", "year", "medium", "description"}),
    "louvre_genre": (1250, {"split", "genre", "md5"}),
    "wikiart_styles": (7000, {"style"}),
}


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(_EXPECTED))
def test_real_labels(name):
    csv_path = DATA / name / "labels.csv"
    if not csv_path.is_file():
        pytest.skip(f"{csv_path} not found (set ARTLENS_DATA to the evaluation data folder)")
    n, cols = _EXPECTED[name]
    t = read_metadata(csv_path)
    assert t.format == "generic"
    assert len(t.rows) == n and not t.notes
    assert cols <= set(t.columns)
    assert all(r.path.is_absolute() for r in t.rows)
    assert all(r.path.is_file() for r in t.rows)
    if name == "kohlerryan_artists":
        descriptions = [r.fields["description"] for r in t.rows]
        assert min(len(d) for d in descriptions) > 200
        assert any("," in d and '"' not in d[:1] for d in descriptions)
        assert len({r.fields["artist"] for r in t.rows}) == 7
