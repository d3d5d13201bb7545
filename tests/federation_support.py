"""Test fixtures of a federation: a collection split into member collections (features copied from
the whole one, so nothing is extracted twice), a shared head over image features, MEMBER.toml and
MEMBERS.toml files, and free ports on 127.0.0.1."""

from __future__ import annotations

import csv
import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch

from artlens.api import ApiSettings, create_app
from artlens.api.routes.federation import install_member
from artlens.api.server import BackgroundServer
from artlens.collection import Collection
from artlens.features import create_extractor
from artlens.federation import MemberEntry, Portal, load_member_settings, token_sha256
from artlens.models import HeadConfig, InputSpec, create_head
from artlens.models.inputs import gather_features

HEAD_INPUTS = ("colour-hist", "gram-block4+block5")
EXPOSE = ("title", "style")  # the tiny folder also has `artist`: it must never leave a member


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def split_collection(folder: Path, labels: Path, whole: Collection, root: Path, parts: int = 3) -> list[Collection]:
    """``parts`` collections of the folder's pictures (row i to part i % parts), ingested with the
    whole collection's cached features."""
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for part in range(parts):
        mine = [r for i, r in enumerate(rows) if i % parts == part]
        src = root / f"pictures-{part}"
        (src / "images").mkdir(parents=True)
        for row in mine:
            shutil.copy(folder / row["path"], src / row["path"])
        with open(src / "labels.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(mine)
        coll = Collection.open(root / f"member-{part}", create=True)
        whole.cache.copy_into(coll.cache)
        coll.ingest(src, src / "labels.csv")
        out.append(coll)
    return out


def make_head(collection: Collection, path: Path, seed: int = 0):
    """A fusion head over colour and style features, its input transforms fitted on ``collection``."""
    specs = []
    for name in HEAD_INPUTS:
        ex = create_extractor(name)
        specs.append(InputSpec(name, ex.id, "image", ex.dim, reduce_dims=8 if ex.dim > 2048 else None))
    torch.manual_seed(seed)
    head = create_head("fusion", HeadConfig(tuple(specs), hidden=(32,), dim=16, dropout=0.0))
    features = gather_features(collection, head.config.inputs)
    head.fit_inputs(features.inputs, features.present)
    head.save(path)
    return head


def write_member_toml(path: Path, name: str, head: Path, tokens: Sequence[str], expose: Sequence[str] = EXPOSE,
                      share_liked_vectors: bool = False, thumbnails: bool = True) -> Path:
    hashes = ", ".join(f'"{token_sha256(t)}"' for t in tokens)
    cols = ", ".join(f'"{c}"' for c in expose)
    path.write_text(f'name = "{name}"\nhead = "{head}"\ntokens_sha256 = [{hashes}]\nexpose = [{cols}]\n'
                    f"thumbnails = {str(thumbnails).lower()}\nshare_liked_vectors = {str(share_liked_vectors).lower()}\n")
    return path


def write_members_toml(path: Path, members: Sequence[tuple[str, str, str]]) -> Path:
    path.write_text("".join(f'[[member]]\nname = "{n}"\nurl = "{u}"\ntoken = "{t}"\n\n' for n, u, t in members))
    return path


async def search_image(portal: Portal, path, **kwargs) -> dict:
    """A portal's answer to an image query (infos refreshed first), its connections closed after."""
    try:
        await portal.refresh()
        return await portal.search(portal.encode_image(str(path)), **kwargs)
    finally:
        await portal.aclose()


@contextmanager
def running_members(folder: Path, labels: Path, tiny_collection: Collection, root: Path, token: str,
                    sharing: Sequence[int] = (2,)) -> Iterator[dict]:
    """Three members over a split of the tiny collection, each a real server on 127.0.0.1 in a
    thread (those in ``sharing`` share liked works' vectors), and the whole collection with the head:
    {"entries", "head", "whole", "collections", "root"}."""
    whole = Collection.open(shutil.copytree(tiny_collection.root, root / "whole"))
    head = make_head(whole, root / "head.pt")
    collections = split_collection(folder, labels, whole, root)
    entries = []
    with ExitStack() as stack:
        for i, coll in enumerate(collections):
            toml = write_member_toml(root / f"member-{i}.toml", f"Museum {i}", root / "head.pt", [token],
                                     share_liked_vectors=i in sharing)
            app = create_app(ApiSettings(collection=coll.root), collection=coll, warm_up=False)
            install_member(app, load_member_settings(toml))
            entries.append(MemberEntry(f"Museum {i}", stack.enter_context(BackgroundServer(app)), token))
        whole.attach_head(head)
        yield {"entries": entries, "head": head, "whole": whole, "collections": collections, "root": root}
