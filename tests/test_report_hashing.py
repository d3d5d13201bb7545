import json

from artlens.cli import main


def test_eval_hashing_writes_the_report_layout(tiny_collection, tmp_path, capsys):
    out = tmp_path / "hashing"
    code = main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--method", "itq",
                 "--bits", "8,16", "--queries", "3", "--k", "5", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "map_by_bits.png"}
    report = json.loads((out / "report.json").read_text())
    assert [r["bits"] for r in report["rows"]] == [8, 16] and report["k"] == 5 and report["n_queries"] == 3
    md = (out / "report.md").read_text()
    assert "| itq | 8 |" in md and "mAP@5" in md and "![mAP by code length](map_by_bits.png)" in md
