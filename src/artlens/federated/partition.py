"""Partitions of a collection into institutions, for simulations and benchmarks.

- by a column: one institution per value of a metadata column (``style``: one style per institution,
  the AICRS experiment and FedStyle's extreme non-IID case; or an ``institution`` column);
- ``dirichlet:ALPHA``: each class spread over N institutions with Dirichlet(alpha) proportions
  (small alpha = each institution holds few classes);
- ``iid``: artworks dealt uniformly at random to N institutions;
- an explicit file: CSV with an ``institution`` column and one of ``md5`` / ``id`` / ``path``
  (or a partition JSON written by :meth:`Partition.save`).

A partition names content keys (image MD5s), so it means the same in any copy of the collection.
:meth:`Partition.write_institution_files` writes one key list per institution: a simulated
institution reads only its own file, as a real one only has its own collection.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artlens.errors import ArtlensError
from artlens.files import write_json, write_text

PARTITION_HELP = ("a metadata column (e.g. style: one institution per style), dirichlet:ALPHA, iid, "
                  "or a CSV/JSON file mapping artworks to institutions")


@dataclass
class Partition:
    """{institution name: content keys (MD5) of the artworks it holds}, names in a stable order."""

    institutions: dict[str, list[str]]
    scheme: str = ""
    notes: list[str] = field(default_factory=list)
    # artworks named for each institution before unlabelled and held-out test ones were left out
    # (empty: nothing was left out)
    listed: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.institutions)

    def sizes(self) -> dict[str, int]:
        return {name: len(keys) for name, keys in self.institutions.items()}

    def save(self, path: str | Path) -> Path:
        return write_json({"scheme": self.scheme, "institutions": self.institutions, "notes": self.notes}, path, None)

    def write_institution_files(self, folder: str | Path) -> dict[str, Path]:
        """One file of content keys per institution (``NN-name.keys``); returns {name: path}."""
        return {name: write_text("\n".join(keys) + ("\n" if keys else ""), Path(folder) / f"{i:02d}-{slug(name)}.keys")
                for i, (name, keys) in enumerate(self.institutions.items())}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "institution"


def read_keys(path: str | Path) -> list[str]:
    """An institution's own key file."""
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ArtlensError(f"cannot read the partition file {path}: {exc}",
                           "give the file written for this institution, or leave --partition out") from exc


# -- schemes --------------------------------------------------------------------------------------
def by_column(values: Mapping[str, str], column: str = "") -> Partition:
    """{key: value} -> one institution per value (sorted by name)."""
    groups: dict[str, list[str]] = {}
    for key, value in values.items():
        groups.setdefault(str(value), []).append(key)
    return Partition({name: sorted(groups[name]) for name in sorted(groups)}, f"column:{column}")


def iid(keys: Sequence[str], n_institutions: int, seed: int = 0) -> Partition:
    _check_count(n_institutions, len(keys))
    order = np.random.default_rng(seed).permutation(sorted(keys))
    parts = np.array_split(order, n_institutions)
    return Partition({f"institution-{i + 1}": sorted(p.tolist()) for i, p in enumerate(parts)}, "iid")


def dirichlet(labels: Mapping[str, str], n_institutions: int, alpha: float, seed: int = 0,
              min_size: int = 2, tries: int = 100) -> Partition:
    """Per class, Dirichlet(alpha) shares over institutions; redrawn until every institution holds at
    least ``min_size`` artworks (the usual recipe, e.g. Hsu et al. 2019)."""
    if alpha <= 0:
        raise ArtlensError(f"dirichlet alpha must be positive, got {alpha}", "use e.g. dirichlet:0.3")
    keys = sorted(labels)
    _check_count(n_institutions, len(keys))
    classes = sorted(set(labels.values()))
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        parts: list[list[str]] = [[] for _ in range(n_institutions)]
        for cls in classes:
            members = [k for k in keys if labels[k] == cls]
            members = [members[i] for i in rng.permutation(len(members))]
            shares = rng.dirichlet(np.full(n_institutions, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for part, chunk in zip(parts, np.split(np.asarray(members, dtype=object), cuts)):
                part.extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return Partition({f"institution-{i + 1}": sorted(p) for i, p in enumerate(parts)}, f"dirichlet:{alpha}")
    raise ArtlensError(f"could not deal {len(keys)} artworks to {n_institutions} institutions with at least "
                       f"{min_size} each (dirichlet alpha {alpha})", "use fewer institutions or a larger alpha")


def from_file(path: str | Path, md5s: Mapping[int, str], paths: Mapping[str, str] | None = None) -> Partition:
    """An explicit partition: a JSON from :meth:`Partition.save`, or a CSV with an ``institution``
    column and ``md5``, ``id`` or ``path`` (``paths``: file path -> md5, for the latter)."""
    path = Path(path)
    if not path.is_file():
        raise ArtlensError(f"no partition file at {path}", f"--partition takes {PARTITION_HELP}")
    if path.suffix == ".json":
        payload = json.loads(path.read_text())
        return Partition({str(k): list(v) for k, v in payload["institutions"].items()},
                         payload.get("scheme", f"file:{path.name}"))
    by_id = {int(i): m for i, m in md5s.items()}
    known = set(by_id.values())
    groups: dict[str, list[str]] = {}
    unknown = 0
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or [])
        if "institution" not in fields or not fields & {"md5", "id", "path"}:
            raise ArtlensError(f"{path} needs an 'institution' column and one of 'md5', 'id' or 'path'",
                               "write one row per artwork: institution,md5")
        for row in reader:
            key = None
            if row.get("md5"):
                key = row["md5"].strip()
            elif row.get("id"):
                key = by_id.get(int(row["id"]))
            elif row.get("path") and paths is not None:
                key = paths.get(row["path"].strip())
            if key is None or key not in known:
                unknown += 1
                continue
            groups.setdefault(row["institution"].strip(), []).append(key)
    part = Partition({name: sorted(set(groups[name])) for name in sorted(groups)}, f"file:{path.name}")
    if unknown:
        part.notes.append(f"{unknown} row(s) of {path.name} name no artwork of this collection; skipped")
    return part


def make_partition(spec: str, labels: Mapping[str, str], columns: Mapping[str, Mapping[str, str]] | None = None,
                   institutions: int = 0, seed: int = 0, md5s: Mapping[int, str] | None = None,
                   paths: Mapping[str, str] | None = None) -> Partition:
    """Partition the artworks in ``labels`` ({md5: label}) by ``spec``.

    ``columns``: metadata columns as {name: {md5: value}} for column partitions. Artworks outside
    ``labels`` (unlabelled, or held out for testing) never enter a partition.
    """
    spec = (spec or "").strip()
    if not spec:
        raise ArtlensError("no partition given", f"--partition takes {PARTITION_HELP}")
    name, _, arg = spec.partition(":")
    if name == "dirichlet":
        try:
            alpha = float(arg or 0.5)
        except ValueError:
            raise ArtlensError(f"cannot read {arg!r} in --partition {spec!r} as a dirichlet alpha (a number)",
                               f"use e.g. dirichlet:0.3 or dirichlet (alpha 0.5); --partition takes {PARTITION_HELP}") from None
        return dirichlet(labels, institutions or 5, alpha, seed)
    if name == "iid":
        return iid(list(labels), institutions or 5, seed)
    if name == "file" or Path(spec).suffix in (".csv", ".json"):
        part = from_file(arg if name == "file" else spec, md5s or {}, paths)
        return _restrict(part, labels)
    column = arg if name == "column" else spec
    if column in (columns or {}):
        values = {k: v for k, v in columns[column].items() if k in labels}
        return by_column(values, column)
    raise ArtlensError(f"cannot partition by {spec!r}: no such column or scheme",
                       f"--partition takes {PARTITION_HELP}; columns here: {', '.join(sorted(columns or {})) or 'none'}")


def _restrict(part: Partition, keep: Mapping[str, str]) -> Partition:
    dropped = sum(1 for keys in part.institutions.values() for k in keys if k not in keep)
    out = Partition({n: [k for k in keys if k in keep] for n, keys in part.institutions.items()}, part.scheme, part.notes,
                    part.sizes())
    if dropped:
        out.notes.append(f"{dropped} artwork(s) unlabelled or held out for testing; left out")
    return out


def _check_count(n_institutions: int, n_items: int) -> None:
    if n_institutions < 2:
        raise ArtlensError(f"a federation needs at least 2 institutions, got {n_institutions}", "pass --institutions N")
    if n_items < 2 * n_institutions:
        raise ArtlensError(f"{n_items} labelled artworks are too few for {n_institutions} institutions",
                           "use fewer institutions or label more artworks")
