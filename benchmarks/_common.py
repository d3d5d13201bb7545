"""Shared pieces of the benchmark programs: data location, result files, tables."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARTLENS_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "results"


def dataset(name: str) -> Path:
    path = DATA / name
    if not (path / "labels.csv").exists():
        raise SystemExit(f"artwork set {name!r} not found under {DATA}; set ARTLENS_DATA to the folder that holds it")
    return path


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {path}")
    return path


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)
