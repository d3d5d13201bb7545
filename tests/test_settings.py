"""The one settings mechanism: dataclasses to TOML and Flower run configs and back."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from artlens import settings
from artlens.config import CollectionConfig, IndexConfig
from artlens.errors import ArtlensError


@dataclass(frozen=True)
class Inner:
    dim: int = 8
    widths: tuple[int, ...] = (4, 2)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    rate: float = 0.5
    flag: bool = False
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_toml_round_trip_keeps_every_value(tmp_path):
    config = CollectionConfig(text_columns=("title",), index=IndexConfig(kind="flat", hash_bits=64))
    settings.save_toml(config, tmp_path / "c.toml")
    assert settings.load_toml(CollectionConfig, tmp_path / "c.toml") == config


def test_unknown_keys_and_wrong_types_are_errors_that_name_the_place():
    with pytest.raises(ArtlensError, match=r"c\.toml: unknown setting\(s\) colour_bins"):
        settings.from_dict(CollectionConfig, {"colour_bins": 8}, "c.toml")
    with pytest.raises(ArtlensError, match="index: unknown setting"):
        settings.from_dict(CollectionConfig, {"index": {"nlist": 3}}, "c.toml")
    with pytest.raises(ArtlensError, match="expected int"):
        settings.from_dict(Outer, {"inner": {"dim": "wide"}})


def test_none_is_left_out_of_toml_and_reads_back_as_the_default(tmp_path):
    settings.save_toml(Outer(limit=None), tmp_path / "o.toml")
    assert "limit" not in (tmp_path / "o.toml").read_text()
    assert settings.load_toml(Outer, tmp_path / "o.toml") == Outer()


def test_run_config_is_flat_and_reads_back():
    config = Outer(name="y", rate=2.0, flag=True, inner=Inner(dim=3, widths=(5,)))
    flat = settings.to_run_config(config)
    assert flat == {"name": "y", "rate": 2.0, "flag": True, "inner.dim": 3, "inner.widths": "5"}
    assert settings.from_run_config(Outer, flat) == config
    assert settings.from_run_config(Outer, {"flag": "true", "rate": 1}) == Outer(flag=True, rate=1.0)


def test_run_config_refuses_unknown_keys_unless_told_to_ignore_them():
    with pytest.raises(ArtlensError, match="unknown key 'epochs'"):
        settings.from_run_config(Outer, {"epochs": 3})
    with pytest.raises(ArtlensError, match="unknown key 'depth'"):
        settings.from_run_config(Outer, {"inner.depth": 3})
    assert settings.from_run_config(Outer, {"epochs": 3}, ignore=["epochs"]) == Outer()


def test_with_changes_treats_none_as_not_given_and_reaches_nested_fields():
    base = Outer()
    assert settings.with_changes(base, {"name": None, "rate": None}) is base
    changed = settings.with_changes(base, {"rate": 0.1, "inner__dim": 16, "inner__widths": None})
    assert changed == Outer(rate=0.1, inner=Inner(dim=16))
