"""Hasher interface, registry and the one-file save format shared by all hashing heads."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.files import write_bytes
from artlens.progress import QUIET, Reporter

from .codes import check_bits, pack_bits

#: version of the hasher file layout; bumped when a saved file can no longer be read by older code
FORMAT_VERSION = 1
_CONFIG_KEY = "__config__"


@runtime_checkable
class Hasher(Protocol):
    """Maps float feature vectors to packed binary codes."""

    name: str
    bits: int

    def fit(self, features: np.ndarray, seed: int = 0, reporter: Reporter = QUIET) -> "Hasher": ...

    def encode(self, features: np.ndarray) -> np.ndarray: ...

    def save(self, path) -> None: ...

    @classmethod
    def load(cls, path) -> "Hasher": ...


_REGISTRY: dict[str, type["BaseHasher"]] = {}


def register_hasher(cls: type["BaseHasher"]) -> type["BaseHasher"]:
    """Class decorator: make ``cls`` available to :func:`create_hasher` under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def list_hashers() -> list[str]:
    """Names accepted by :func:`create_hasher`."""
    return sorted(_REGISTRY)


def _hasher_class(name: str) -> type["BaseHasher"]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ArtlensError(
            f"unknown hasher {name!r}", f"choose one of: {', '.join(list_hashers())}"
        ) from None


def create_hasher(name: str, bits: int, **config) -> "BaseHasher":
    """A new, unfitted hasher ``name`` producing ``bits``-bit codes; ``config`` goes to its constructor."""
    return _hasher_class(name)(bits=bits, **config)


def load_hasher(path, **expect) -> "BaseHasher":
    """Load any saved hasher; ``expect`` as in :meth:`BaseHasher.load`."""
    return BaseHasher.load(path, **expect)


def save_npz_atomic(path, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> None:
    """Save ``arrays`` and a JSON ``config`` into one ``.npz`` file, atomically."""
    buf = io.BytesIO()
    payload = dict(arrays)
    payload[_CONFIG_KEY] = np.frombuffer(json.dumps(config, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    write_bytes(buf.getvalue(), path)


def load_npz(path, what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_npz_atomic`; ``what`` names the artifact in errors."""
    path = Path(path)
    if not path.is_file():
        raise ArtlensError(f"{what} file {path} does not exist", "check the path or build it first")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        config = json.loads(arrays.pop(_CONFIG_KEY).tobytes().decode())
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same thing here
        raise ArtifactMismatchError(
            f"{path} is not a readable artlens {what} file ({exc.__class__.__name__}: {exc})",
            "rebuild it with this version of artlens",
        ) from exc
    return arrays, config


def _check_features(features, input_dim: int | None, what: str) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise ArtlensError(f"{what}: expected a 2-D (N, D) feature matrix, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ArtlensError(f"{what}: expected float features, got {x.dtype}")
    if input_dim is not None and x.shape[1] != input_dim:
        raise ArtifactMismatchError(
            f"{what}: features have {x.shape[1]} dimensions, the hasher was trained on {input_dim}",
            "encode with features from the same extractor the hasher was fitted on",
        )
    if not np.all(np.isfinite(x)):
        raise ArtlensError(f"{what}: features contain NaN or infinite values")
    return np.ascontiguousarray(x, dtype=np.float32)


class BaseHasher:
    """Shared plumbing: config, input checks, packing, save/load.

    Subclasses set ``name``, implement ``_fit(x, seed, reporter)``, ``_project(x)`` (real-valued
    scores whose sign gives the bits, shape ``(N, bits)``) and ``_arrays()`` / ``_set_arrays()``.
    """

    name: ClassVar[str] = "base"

    def __init__(self, bits: int, feature_id: str | None = None):
        self.bits = check_bits(bits)
        self.feature_id = feature_id
        self.input_dim: int | None = None

    # -- subclass hooks --------------------------------------------------------------------
    def _fit(self, x: np.ndarray, seed: int, reporter: Reporter) -> None:
        raise NotImplementedError

    def _project(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments besides ``bits`` and ``feature_id`` (JSON-serialisable)."""
        return {}

    # -- public API ------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.input_dim is not None

    def fit(self, features: np.ndarray, seed: int = 0, reporter: Reporter = QUIET) -> "BaseHasher":
        x = _check_features(features, None, f"{self.name}.fit")
        if len(x) < 2:
            raise ArtlensError(f"{self.name}.fit needs at least 2 feature vectors, got {len(x)}")
        self.input_dim = None
        self._fit(x, int(seed), reporter)
        self.input_dim = int(x.shape[1])
        return self

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Packed ``uint8`` codes ``(N, bits // 8)``; bit ``j`` is set where score ``j`` > 0."""
        if not self.is_fitted:
            raise ArtlensError(f"the {self.name} hasher is not fitted", "call fit() or load() first")
        x = _check_features(features, self.input_dim, f"{self.name}.encode")
        if len(x) == 0:
            return np.zeros((0, self.bits // 8), dtype=np.uint8)
        return pack_bits(self._project(x) > 0)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bits": self.bits,
            "input_dim": self.input_dim,
            "feature_id": self.feature_id,
            "version": FORMAT_VERSION,
            "hyperparameters": self.hyperparameters(),
        }

    def save(self, path) -> None:
        """Weights and config in one ``.npz`` file, written atomically."""
        if not self.is_fitted:
            raise ArtlensError(f"cannot save an unfitted {self.name} hasher", "call fit() first")
        save_npz_atomic(path, self._arrays(), self.config())

    @classmethod
    def load(
        cls,
        path,
        *,
        feature_id: str | None = None,
        bits: int | None = None,
        input_dim: int | None = None,
    ) -> "BaseHasher":
        """Load a saved hasher. Called on a subclass, the file must hold that kind of hasher.

        ``feature_id``, ``bits`` and ``input_dim``, when given, must match the stored config;
        otherwise :class:`ArtifactMismatchError` is raised.
        """
        arrays, cfg = load_npz(path, "hasher")
        name = cfg.get("name")
        if cfg.get("version", 0) > FORMAT_VERSION:
            raise ArtifactMismatchError(
                f"{path} was written by a newer artlens (hasher format {cfg.get('version')})",
                "upgrade artlens or retrain the hasher",
            )
        if cls is not BaseHasher and name != cls.name:
            raise ArtifactMismatchError(
                f"{path} holds a {name!r} hasher, not {cls.name!r}",
                "load it with load_hasher() or the matching class",
            )
        for key, want in (("feature_id", feature_id), ("bits", bits), ("input_dim", input_dim)):
            if want is not None and cfg.get(key) != want:
                raise ArtifactMismatchError(
                    f"{path}: hasher {key} is {cfg.get(key)!r}, expected {want!r}",
                    "retrain the hasher on the current features or point to the right file",
                )
        klass = _hasher_class(name)
        obj = klass(bits=cfg["bits"], feature_id=cfg.get("feature_id"), **cfg.get("hyperparameters", {}))
        obj.input_dim = int(cfg["input_dim"])
        obj._set_arrays(arrays)
        return obj

    def __repr__(self) -> str:
        state = f"input_dim={self.input_dim}" if self.is_fitted else "unfitted"
        return f"{type(self).__name__}(bits={self.bits}, {state})"
