"""``artlens eval hashing --out DIR``: the hashing table as ``report.md``, ``report.json`` and
``map_by_bits.png`` (mAP@k by code length beside the float bound), the layout every report uses."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from artlens.evaluation.report_markdown import table
from artlens.files import pyplot, save_figure, write_json, write_text


def write_hashing_report(rows: Sequence[dict], out: str | Path, collection: str = "") -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = rows[0]
    k = first["k"]
    payload = {"report": "hashing", "collection": collection, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "method": first["method"], "features": first["features"], "label": first["label"], "k": k,
               "n_queries": first["n_queries"], "float_map@k": first["float_map@k"], "rows": list(rows)}
    md = [f"# Hashing: {first['method']} on {first['features']} features", "",
          f"mAP@{k} of Hamming ranking (ties broken by id), {first['n_queries']} stratified queries by "
          f"`{first['label']}` against the rest of {collection or 'the collection'}; the float bound ranks the same "
          f"queries by cosine similarity of the features (`artlens eval hashing`).", "",
          table(["method", "bits", f"mAP@{k}", "float bound", "share of bound"],
                [[r["method"], r["bits"], r["map@k"], r["float_map@k"],
                  f"{100 * r['map@k'] / r['float_map@k']:.0f} %" if r["float_map@k"] else ""] for r in rows]),
          "", "![mAP by code length](map_by_bits.png)", ""]
    return {"json": write_json(payload, out / "report.json"), "md": write_text("\n".join(md), out / "report.md"),
            "png": _plot(rows, out / "map_by_bits.png")}


def _plot(rows: Sequence[dict], path: Path) -> Path:
    k = rows[0]["k"]
    fig, ax = pyplot().subplots(figsize=(6, 4))
    ax.plot([r["bits"] for r in rows], [r["map@k"] for r in rows], marker="o", label=rows[0]["method"])
    ax.axhline(rows[0]["float_map@k"], color="grey", linestyle="--", label="float features (bound)")
    ax.set_xlabel("bits")
    ax.set_ylabel(f"mAP@{k}")
    ax.set_xticks([r["bits"] for r in rows])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
