"""Extraction on Ray (`artlens ingest --ray`): the same catalog and vectors as a local ingest, corrupt
images skipped and reported, batches committed as they come back, and Ray never imported without it.

One local Ray (2 CPUs, bound to 127.0.0.1) serves the module and is stopped afterwards (the test
extra installs Ray Data, so CI starts it: about 25 s for the module on two quiet cores)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_folder

from artlens.collection import Collection
from artlens.features import create_extractor
from artlens.features.cache import FeatureCache
from artlens.features.extract import extract_images

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from artlens.features.distributed import RayRunner, connect  # noqa: E402

sys.path.append(str(REPO / "benchmarks"))  # the local node and the comparison the Ray benchmark uses
from _local_ray import image_vectors, local_ray as local_ray_node  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    with local_ray_node(2):
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pictures")
    images = make_folder(root, per_kind=3)[0] / "images"
    good = (images / "stripes_0.png").read_bytes()
    (images / "truncated.png").write_bytes(good[: len(good) // 2])
    return images


def test_ray_ingest_gives_the_local_catalog_and_vectors(local_ray, folder, tmp_path):
    local = Collection.open(tmp_path / "local", create=True)
    on_ray = Collection.open(tmp_path / "ray", create=True)
    expected = local.ingest(folder)
    got = on_ray.ingest(folder, ray="auto")

    assert got["ingest"] == expected["ingest"]
    assert [s["path"] for s in got["ingest"]["skipped"]] == [str(folder / "truncated.png")]
    assert got["features"]["computed"] == expected["features"]["computed"]
    assert got["features"]["computed"]["effnet-lite0"] == 9
    assert got["indexes"] == expected["indexes"]
    assert sorted(local.catalog.iter_artworks()) == sorted(on_ray.catalog.iter_artworks())
    assert local.catalog.skipped() == on_ray.catalog.skipped()
    mine, theirs = image_vectors(local), image_vectors(on_ray)
    assert set(mine) == set(theirs) == {"effnet-lite0", "gram-block4+block5", "colour-hist"}
    for name in mine:  # the workers run torch on one thread each: float rounding may differ
        np.testing.assert_allclose(theirs[name], mine[name], atol=1e-3, err_msg=name)
    assert on_ray.ingest(folder, ray="auto")["features"]["computed"] == {}  # a rerun has nothing left to do
    local.close()
    on_ray.close()


def test_batches_commit_as_they_return_and_a_rerun_finishes_the_rest(local_ray, folder, tmp_path):
    coll = Collection.open(tmp_path / "c", create=True)
    coll.ingest(folder, features=False)
    items = [(md5, path) for _, md5, path in coll.catalog.iter_artworks()]
    names = ["effnet-lite0", "colour-hist"]
    cache = FeatureCache(tmp_path / "features.sqlite")

    def dies_after_one_batch(work, job):
        batches = iter(RayRunner()(work, job))
        yield next(batches)
        raise KeyboardInterrupt  # the driver dies: what came back before is committed

    with pytest.raises(KeyboardInterrupt):
        extract_images(items, names, cache, batch_size=4, runner=dies_after_one_batch)
    content = create_extractor("effnet-lite0").id
    assert len(cache.keys(content)) == 4
    report = extract_images(items, names, cache, batch_size=4, runner=RayRunner())
    assert report.computed == {"effnet-lite0": len(items) - 4, "colour-hist": len(items) - 4}
    reference = FeatureCache(tmp_path / "local.sqlite")
    extract_images(items, names, reference, batch_size=4)
    keys = [md5 for md5, _ in items]
    np.testing.assert_allclose(cache.get(content, keys)[0], reference.get(content, keys)[0], atol=1e-4)
    coll.close()


def test_connect_reuses_the_running_ray(local_ray):
    assert connect("auto")["cpus"] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _artlens(*args: str, pythonpath: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(REPO / "src")) if p)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "artlens", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_unreachable_cluster_is_a_one_line_error_and_writes_nothing(folder, tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    result = _artlens("ingest", str(folder), "-c", str(tmp_path / "coll"), "--ray", address)
    assert result.returncode == 2, result.stderr
    assert f"error: no Ray cluster answers at {address}" in result.stderr
    assert "ray start --head" in result.stderr
    assert not (tmp_path / "coll").exists()


def test_ray_not_installed_names_the_extra(folder, tmp_path):
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    result = _artlens("ingest", str(folder), "-c", str(tmp_path / "coll"), "--ray", "auto",
                      pythonpath=str(fake.parent))
    assert result.returncode == 2, result.stderr
    assert "error: --ray needs Ray Data, which is not installed" in result.stderr
    assert "pip install 'artlens[ray]'" in result.stderr
    assert not (tmp_path / "coll").exists()


def test_an_ingest_without_ray_never_imports_it(folder, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from artlens.cli import main
        sys.argv = ["artlens", "ingest", {str(folder)!r}, "-c", {str(tmp_path / "coll")!r}, "-q",
                    "--extractor", "style=colour-hist"]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        assert "ray" not in sys.modules, "ray was imported"
        print("no ray")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "no ray" in result.stdout
    assert (tmp_path / "coll" / "collection.toml").exists()
