"""All institutions on one machine with Flower's simulation engine (``flwr.simulation.run_simulation``):
partition a collection, hold its test split out, give each simulated institution only its own key
file, run the federation and save the head into the collection like a centrally trained one.

Writes to ``run_dir``: ``partition.json`` (who holds what), ``partition/*.keys`` (one file per
institution), ``metrics.json`` (per round, ending with the final ``map`` and ``epsilon``),
``curves.png`` and ``head.pt``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from artlens.collection import Collection
from artlens.devices import resolve_device
from artlens.errors import ArtlensError
from artlens.federated.client_app import create_client_app
from artlens.federated.config import FederatedConfig
from artlens.federated.coordinator import FederatedResult, ServerSettings
from artlens.federated.head import input_specs
from artlens.federated.heldout import HeldOut
from artlens.federated.institution import InstitutionSource
from artlens.federated.partition import Partition, make_partition
from artlens.federated.server_app import create_server_app
from artlens.progress import QUIET, Reporter
from artlens.train.split import config_split

WAIT_SECONDS = 120.0  # every institution starts on this machine: two minutes is plenty for them to connect


@dataclass
class SimulatedInstitutions:
    """partition-id of a simulated supernode -> the institution it plays (picklable for Ray)."""

    sources: list[InstitutionSource]

    def __call__(self, context) -> InstitutionSource:
        return self.sources[int(context.node_config["partition-id"])]


def plan_partition(collection, config: FederatedConfig, spec: str, institutions: int = 0) -> Partition:
    """Partition the labelled artworks of ``collection`` outside its held-out test split."""
    catalog = collection.catalog
    if config.label not in catalog.metadata_columns():
        raise ArtlensError(f"label column {config.label!r} not found in {collection.root}",
                           f"columns: {', '.join(catalog.metadata_columns()) or 'none'}; pass --label COLUMN")
    md5s = catalog.md5s()
    labels = catalog.column(config.label)
    split = config_split(collection, config.label, config.training, fall_back=True)  # the held-out test split of `artlens train`
    pool = {md5s[i]: v for i, v in labels.items() if i in md5s and split.get(i) != "test"}
    columns = {name: {md5s[i]: v for i, v in catalog.column(name).items() if i in md5s}
               for name in catalog.metadata_columns()}
    paths = {path: md5s[state.artwork_id] for path, state in catalog.file_states().items() if state.artwork_id in md5s}
    return make_partition(spec, pool, columns, institutions, config.training.seed, md5s, paths)


def simulate(collection_path: str | Path, settings: ServerSettings = ServerSettings(), partition: str = "style",
             institutions: int = 0, attach: bool = True, cpus: int | None = None, verbose: bool = False,
             reporter: Reporter = QUIET) -> FederatedResult:
    """Run a federated training of ``settings.federation`` over a partition of one collection (``institutions``:
    how many for dirichlet / iid). The run folder defaults to a new one under the collection; with
    ``attach`` the head becomes the collection's `learned` aspect. ``cpus``: institutions trained at once
    (default: one per CPU)."""
    try:
        from flwr.simulation import run_simulation
    except ImportError as exc:  # the ``federated`` extra brings flwr and ray
        raise ArtlensError("federated training needs Flower with its simulation engine",
                           'install it with: pip install "artlens[federated]"') from exc

    config = settings.federation
    resolve_device(config.training.device)  # a GPU asked for and not there fails before anything is written
    collection = Collection.open(collection_path)
    try:
        settings = settings.with_run_dir(collection.root)
        run_dir = Path(settings.run_dir)
        part = plan_partition(collection, config, partition, institutions)
        files = part.write_institution_files(run_dir / "partition")
        part.save(run_dir / "partition.json")
        for note in part.notes:
            reporter.notice(note)
        sources = [InstitutionSource(name, str(collection.root), str(files[name]), attach=False,
                                     listed=part.listed.get(name, 0)) for name in part.names]
        specs = input_specs(config.features, config.training.head, collection.config.aspects)
        heldout = HeldOut.from_collection(str(collection.root), specs, config.label, "test",
                                          training=config.training)
        aspects = collection.config.aspects
    finally:
        collection.close()

    cpus = cpus or max(1, min(len(sources), os.cpu_count() or 1))
    gpu = gpu_share(config.training.device, cpus)
    # each institution's actor sees the chosen GPU as its only one, cuda (Ray hands it out)
    settings = dataclasses.replace(settings, federation=config.on_device("cuda" if gpu else "cpu"))
    settings = dataclasses.replace(settings, institutions=len(sources), wait_seconds=WAIT_SECONDS, share_result=False)
    results: list[FederatedResult] = []
    server = create_server_app(settings, heldout, aspects, on_result=results.append)
    client = create_client_app(SimulatedInstitutions(sources))
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": gpu[1] if gpu else 0.0},
               "init_args": {"num_cpus": cpus, "num_gpus": 1 if gpu else 0, "include_dashboard": False,
                             "log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with visible_gpu(gpu[0] if gpu else None):
        run_simulation(server_app=server, client_app=client, num_supernodes=len(sources), backend_config=backend,
                       verbose_logging=verbose)
    if not results:
        raise ArtlensError("the federated simulation ended without a result", "see the log above for the reason")
    result = results[0]
    result.summary["partition"] = {"scheme": part.scheme, "sizes": part.sizes()}
    if attach:
        collection = Collection.open(collection_path)
        try:
            collection.attach_head(result.head, persist=True)
        finally:
            collection.close()
    return result


def gpu_share(device: str, institutions: int) -> tuple[int, float] | None:
    """(GPU index, share of it per simulated institution) when the run trains on a GPU, so that the
    ``institutions`` trained at once fit on that one GPU; None on the CPU."""
    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return None
    return resolved.index or 0, round(1.0 / max(1, institutions), 4)


@contextlib.contextmanager
def visible_gpu(index: int | None) -> Iterator[None]:
    """Ray (started by the simulation) sees only GPU ``index`` of the ones this process sees, so each
    actor's ``cuda`` is that GPU; the environment is restored afterwards."""
    if index is None:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = [v for v in (before or "").split(",") if v.strip()] or [str(i) for i in range(index + 1)]
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[index]
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
