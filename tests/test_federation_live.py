"""A member follows its collection's committed generations: works ingested while it serves are
searched by the next federated query, without a restart, as the rest of the API does."""

from __future__ import annotations

import asyncio
import hashlib
import shutil

import httpx
from federation_support import make_head, search_image, split_collection, write_member_toml

from artlens.api import ApiSettings, create_app
from artlens.api.routes.federation import install_member
from artlens.api.server import BackgroundServer
from artlens.collection import Collection
from artlens.federation import MemberEntry, Portal, load_member_settings

TOKEN = "live-token"


def test_works_ingested_while_a_member_serves_are_found_by_the_next_search(tiny_folder, tiny_collection, tmp_path):
    folder, labels = tiny_folder
    whole = Collection.open(shutil.copytree(tiny_collection.root, tmp_path / "whole"))
    head = make_head(whole, tmp_path / "head.pt")
    first_half, _ = split_collection(folder, labels, whole, tmp_path, parts=2)
    served = len(first_half.catalog)
    toml = write_member_toml(tmp_path / "member.toml", "Museum", tmp_path / "head.pt", [TOKEN])
    app = create_app(ApiSettings(collection=first_half.root), collection=first_half, warm_up=False)
    install_member(app, load_member_settings(toml))
    held = set(first_half.catalog.md5s().values())
    missing = next(p for p in sorted((folder / "images").iterdir()) if _md5(p) not in held)

    with BackgroundServer(app) as url:
        def portal() -> Portal:
            return Portal([MemberEntry("Museum", url, TOKEN)], head=head)

        def artworks() -> int:
            info = httpx.get(url + "api/federation/info", headers={"Authorization": f"Bearer {TOKEN}"})
            return info.raise_for_status().json()["artworks"]

        before = asyncio.run(search_image(portal(), missing, k=1, aspect="learned"))
        assert before["members"][0]["status"] == "ok" and before["results"][0]["score"] < 0.9999
        assert artworks() == served

        writer = Collection.open(first_half.root)  # another handle, as `artlens ingest` in a shell would be
        whole.cache.copy_into(writer.cache)
        writer.ingest(folder, labels)
        writer.close()

        after = asyncio.run(search_image(portal(), missing, k=1, aspect="learned"))
        assert artworks() == len(whole.catalog) > served
    assert after["members"][0]["status"] == "ok"
    top = after["results"][0]
    assert top["score"] > 0.9999, "the newly ingested work itself is the best match of its own image"


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
