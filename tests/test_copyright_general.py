"""The general copy head, built per machine (a tiny one here, in seconds): registries that only encode
and calibrate, incremental additions, the held-out calibration, the harder edit families, and the bad
inputs of registry building."""

import gc
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artlens.cli import main
from artlens.copyright.check import CopyrightChecker
from artlens.copyright.config import CopyrightConfig, RobustConfig
from artlens.copyright.edits import (
    ALL_FAMILIES,
    FAMILIES,
    STRONG_EDITS,
    edited,
    rng_for,
)
from artlens.copyright.general import (
    GENERAL_FORMAT,
    GROUP_A,
    GROUP_B,
    general_head_path,
    load_general,
    view_slots,
)
from artlens.copyright.registry import MANIFEST_FORMAT, CopyrightRegistry
from artlens.copyright.robust import registry_calibration
from artlens.copyright.taps import TAPS_DIM
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.files import CACHE_ENV


@pytest.fixture(scope="module", autouse=True)
def general_head(tmp_path_factory) -> dict:
    """A tiny general head built with the command users run, into a user cache of this module's own."""
    cache = tmp_path_factory.mktemp("user-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(cache))
        code = main(["registry", "general-head", "--pictures", "8", "--epochs", "2", "--json", "-q"])
        assert code == 0
        yield {"cache": cache, "path": general_head_path()}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    from artlens.demo.generate import generate_demo_collection

    root = tmp_path_factory.mktemp("general")
    generate_demo_collection(root / "demo", n=10, seed=3, size=160)
    demo = sorted((root / "demo" / "images").glob("*.jpg"))
    for name, part in (("first", demo[:4]), ("more", demo[4:6])):
        (root / name).mkdir()
        for p in part:
            shutil.copy(p, root / name / p.name)
    return {"root": root, "first": root / "first", "more": root / "more", "other": demo[9], "work": demo[1]}


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and not p.stat().st_size)}


def test_the_general_head_is_built_into_the_user_cache_versioned_and_not_shipped(general_head):
    path = general_head["path"]
    assert path.parent == general_head["cache"] / "copyright" and f"v{GENERAL_FORMAT}" in path.name
    head, meta = load_general()
    assert head.config["in_dim"] == TAPS_DIM and meta["fingerprint"] == head.fingerprint()
    assert meta["format"] == GENERAL_FORMAT and 0 < meta["threshold"] <= 1 and meta["recipe"]["pictures"] == 8
    assert {"views_s", "train_s"} <= set(meta["timings"])
    repo = Path(__file__).resolve().parents[1]
    assert not list((repo / "src" / "artlens" / "copyright").rglob("*.pt"))  # nothing trained is in the package
    assert "copyright/data" not in (repo / "pyproject.toml").read_text()


def test_a_missing_or_foreign_general_head_is_a_clear_error(general_head, tmp_path):
    with pytest.raises(ArtifactMismatchError, match="no general copy head") as missing:
        load_general(tmp_path / "none.pt")
    assert "artlens registry general-head" in missing.value.hint
    shutil.copy(general_head["path"], tmp_path / "h.pt")
    meta = json.loads(general_head["path"].with_suffix(".json").read_text())
    (tmp_path / "h.json").write_text(json.dumps(meta))
    payload = torch.load(tmp_path / "h.pt", weights_only=True)
    torch.save({**payload, "taps_id": "sscd/v1"}, tmp_path / "h.pt")
    with pytest.raises(ArtifactMismatchError, match="sscd/v1"):
        load_general(tmp_path / "h.pt")


def test_head_general_without_a_built_head_is_a_one_line_instruction(pictures, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "empty-cache"))
    path = tmp_path / "reg"
    code, out, err = run(["registry", "add", pictures["first"], "--owner", "A", "--registry", path,
                          "--head", "general"], capsys)
    assert code == 2 and not out and "artlens registry general-head" in err
    assert len([line for line in err.strip().splitlines() if line.strip()]) <= 2  # error line + hint
    assert not path.exists()


def test_registry_add_encodes_and_calibrates_without_training(pictures, tmp_path, capsys):
    path = tmp_path / "reg"
    code, out, err = run(["registry", "add", pictures["first"], "--owner", "Ann", "--registry", path, "--json",
                          "--head", "general"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["trained"]) == {"robust"}  # no CVAE unless asked
    info = summary["trained"]["robust"]
    assert info["head"] == "general" and info["general"] == load_general()[1]["fingerprint"]
    assert "robust head epoch" not in err  # nothing trained
    assert {"ingest_s", "features_s", "detectors_s", "total_s"} <= set(summary["timings"])
    registry = CopyrightRegistry.open(path)
    detector = registry.detector("robust")
    assert len(detector) == 4 and 0 < detector.threshold <= 1
    first_id = detector.descriptor_id
    before = detector.vectors.copy()
    registry.close()
    # adding works: the same head, the old descriptors kept, the new ones indexed
    code, out, err = run(["registry", "add", pictures["more"], "--owner", "Bob", "--registry", path, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["indexed"] == {"robust": 6}
    registry = CopyrightRegistry.open(path)
    detector = registry.detector("robust")
    assert detector.descriptor_id == first_id and len(detector) == 6
    assert np.allclose(detector.vectors[:4], before, atol=1e-3)
    manifest = json.loads((path / "copyright" / "manifest.json").read_text())
    assert manifest["detectors"]["robust"]["works"] == 6
    # the registered work, edited, is its own best match
    edit = edited(Image.open(pictures["work"]).convert("RGB"), "jpeg", rng_for(1, 1))[0]
    edit.save(tmp_path / "copy.jpg")
    result = CopyrightChecker(registry).check_files([tmp_path / "copy.jpg"])[0]
    assert result.verdict == "registered" and Path(result.work_path).name == pictures["work"].name
    registry.close()


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2"])
def test_a_threshold_outside_zero_one_is_refused_before_anything_is_made(pictures, tmp_path, capsys, bad):
    path = tmp_path / "reg"
    code, out, err = run(["registry", "add", pictures["first"], "--owner", "A", "--registry", path,
                          "--threshold", bad], capsys)
    assert code == 2 and not out and "outside (0, 1]" in err and not path.exists()
    with pytest.raises(CollectionError, match="outside"):
        CopyrightConfig(robust=RobustConfig(threshold=float(bad)))


def test_a_fixed_threshold_and_the_cvae_warning(pictures, tmp_path, capsys):
    path = tmp_path / "reg"
    code, out, err = run(["registry", "add", pictures["first"], "--owner", "A", "--registry", path,
                          "--threshold", "0.77", "--head", "general", "--json", "-q"], capsys)
    assert code == 0 and json.loads(out)["trained"]["robust"]["threshold"] == pytest.approx(0.77)
    gc.collect()  # the command's registry closes its databases (a WAL checkpoint) when collected
    before = snapshot(path)
    code, out, err = run(["registry", "train", "--registry", path, "--threshold", "2"], capsys)
    assert code == 2 and "outside (0, 1]" in err and snapshot(path) == before
    code, out, err = run(["registry", "train", "--registry", path, "--detectors", "cvae", "--cvae-epochs", "1",
                          "--json", "-q"], capsys)
    assert code == 0 and "warning" in err and "distractors" in err
    assert set(json.loads(out)["trained"]) == {"cvae"}


def test_a_registry_of_an_older_artlens_says_how_to_upgrade_and_is_left_alone(pictures, tmp_path, capsys):
    path = tmp_path / "reg"
    assert run(["registry", "add", pictures["first"], "--owner", "A", "--registry", path, "--head", "general",
                "-q"], capsys)[0] == 0
    manifest = path / "copyright" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": MANIFEST_FORMAT - 1}))
    gc.collect()
    before = snapshot(path)
    for argv in (["copyright", "check", pictures["work"], "--registry", path],
                 ["registry", "add", pictures["more"], "--owner", "B", "--registry", path]):
        code, out, err = run(argv, capsys)
        assert code == 2 and "older artlens" in err and "registry train" in err
        assert len([line for line in err.strip().splitlines() if line.strip()]) <= 2  # error line + hint
    assert snapshot(path) == before
    code, _, err = run(["registry", "train", "--registry", path, "--detectors", "robust", "-q"], capsys)
    assert code == 0, err
    assert json.loads(manifest.read_text())["format"] == MANIFEST_FORMAT


def test_registry_calibration_keeps_look_alikes_below_and_skips_duplicates():
    rng = np.random.default_rng(0)
    dim, n = 32, 200
    index = rng.normal(size=(n, dim))
    index[1] = index[0] + 0.01 * rng.normal(size=dim)  # the same picture registered twice
    index = index / np.linalg.norm(index, axis=1, keepdims=True)
    rows = np.arange(0, n, 2)
    views = index[rows][:, None] + 0.05 * rng.normal(size=(len(rows), 3, dim))
    views = (views / np.linalg.norm(views, axis=2, keepdims=True)).astype(np.float32)
    cfg = RobustConfig()
    calibration = registry_calibration(index.astype(np.float32), rows, views, cfg)
    sims = index @ index.T
    np.fill_diagonal(sims, -1)
    sims[0, 1] = sims[1, 0] = -1
    assert calibration.max_unedited_negative == pytest.approx(sims[rows].max(), abs=1e-5)
    assert calibration.threshold >= calibration.max_negative + cfg.margin - 1e-6
    assert calibration.threshold < 0.99  # the duplicate pair did not push it to 1
    assert calibration.recall_at_threshold > 0.9 and calibration.heldout_works == len(rows)


@pytest.mark.parametrize("family", STRONG_EDITS)
def test_strong_edits_are_seeded_and_change_the_picture(family):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    a, name = edited(image, family, rng_for(4, 2))
    b, _ = edited(image, family, rng_for(4, 2))
    assert name == family and a.mode == "RGB" and np.array_equal(np.asarray(a), np.asarray(b))
    assert a.size != image.size or not np.array_equal(np.asarray(a), np.asarray(image))


def test_edit_groups_split_every_family_once():
    assert sorted(GROUP_A + GROUP_B) == sorted(ALL_FAMILIES) and not set(GROUP_A) & set(GROUP_B)
    assert set(FAMILIES) < set(ALL_FAMILIES)
    assert view_slots("a", 6) == [1, 2, 3] and view_slots("b", 6) == [4, 5, 6] and view_slots("all", 6) == list(range(1, 7))


def test_a_general_head_can_be_built_from_a_folder_of_unregistered_pictures(pictures, tmp_path, monkeypatch):
    from artlens.copyright.general import GeneralHeadConfig, build_general

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in sorted((pictures["root"] / "demo" / "images").glob("*.jpg"))[:8]:
        shutil.copy(p, folder / p.name)
    config = GeneralHeadConfig(pictures=8, images=str(folder), views=2, calibration_pictures=4,
                               head=RobustConfig(epochs=1, views_per_work=2))
    record = build_general(config, out=tmp_path / "head.pt")
    head, meta = load_general(tmp_path / "head.pt")
    assert meta["recipe"]["images"] == str(folder) and record["fingerprint"] == head.fingerprint()
    assert list((tmp_path / "cache" / "copyright").glob("general-taps-*.npz"))  # views cached for a rebuild
    with pytest.raises(CollectionError, match="at least 8"):
        build_general(GeneralHeadConfig(images=str(tmp_path / "cache")), out=tmp_path / "other.pt")
    assert not (tmp_path / "other.pt").exists()


def test_background_normalisation_lowers_generic_queries_more_than_copies():
    from artlens.copyright.robust import background_offsets

    rng = np.random.default_rng(1)
    background = rng.normal(size=(50, 64))
    background /= np.linalg.norm(background, axis=1, keepdims=True)
    generic = background[:5].mean(0, keepdims=True)  # like many background pictures at once
    generic /= np.linalg.norm(generic)
    lone = rng.normal(size=(1, 64))
    lone /= np.linalg.norm(lone)
    offsets = background_offsets(np.concatenate([generic, lone]), background, k=3, beta=1.0)
    assert offsets[0] > offsets[1]
    assert np.array_equal(background_offsets(generic, None, 3, 1.0), np.zeros(1, np.float32))
    # the calibration subtracts the offsets from every score of a query
    index = background[:20].astype(np.float32)
    rows = np.arange(0, 20, 2)
    views = index[rows][:, None] + 0.05 * rng.normal(size=(len(rows), 2, 64)).astype(np.float32)
    views /= np.linalg.norm(views, axis=2, keepdims=True)
    plain = registry_calibration(index, rows, views, RobustConfig())
    shifted = registry_calibration(index, rows, views, RobustConfig(), offsets=np.full((len(rows), 3), 0.1))
    assert shifted.max_negative == pytest.approx(plain.max_negative - 0.1, abs=1e-5)


def test_head_training_runs_on_the_device_asked_for_and_returns_a_cpu_head():
    from artlens.copyright.robust import train_head

    views = np.random.default_rng(0).normal(size=(6, 3, 32)).astype(np.float16)
    cfg = RobustConfig(epochs=2, hidden=16, dim=8, views_per_work=2)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        head = train_head(views, cfg, device=device)
        assert next(head.parameters()).device.type == "cpu" and head.encode(views[:, 0]).shape == (6, 8)
