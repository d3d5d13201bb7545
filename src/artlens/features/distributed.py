"""Feature extraction on a Ray cluster: decoding and extractors run on Ray Data's actor pool, one
actor per worker slot that loads the backbones once, batches of image paths in and vectors out.

The driver (the ``artlens ingest --ray`` process) keeps cataloguing, caching and committing: it plans
the batches exactly as a local run does (``extract_images``), and stores each batch's vectors in the
feature cache the moment the batch comes back, so a worker or a driver that dies loses no committed
batch and a rerun computes only the rest. Every worker reads the images by the paths the catalog
holds: on a cluster they must be at the same paths on every machine (shared storage).

Ray is an optional extra (``pip install 'artlens[ray]'``) and is imported only when a run asks for it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from artlens.devices import on_gpu
from artlens.errors import ArtlensError
from artlens.features.extract import EncodedBatch, ImageJob, WorkBatch, encode_batch

RAY_EXTRA_HINT = "install the Ray extra: pip install 'artlens[ray]' (Ray Data >= 2.40), then rerun with --ray"


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ArtlensError("--ray needs Ray Data, which is not installed", RAY_EXTRA_HINT) from exc
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with the address in the message, when nothing listens at ``host:port`` (Ray itself
    retries for a minute before it gives up)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ArtlensError(f"bad Ray address {address!r}",
                           "give HOST:PORT of the head node (printed by `ray start --head`), ray://HOST:PORT, or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ArtlensError(f"no Ray cluster answers at {address} ({exc.strerror or exc})",
                           "start one with `ray start --head` there (see docs/distributed.md), or use --ray auto "
                           "for a Ray on this machine") from exc


def connect(address: str | None = "auto") -> dict:
    """Join the Ray cluster at ``address`` (``auto``: the one in $RAY_ADDRESS, else a Ray started on
    this machine; reused when this process is connected already). Returns what it offers
    (``{"address", "cpus", "gpus"}``)."""
    ray = _import_ray()
    address = (address or "auto").strip()
    if not ray.is_initialized():
        if address != "auto":
            _check_reachable(address)
        elif os.environ.get("RAY_ADDRESS"):
            _check_reachable(os.environ["RAY_ADDRESS"])
        try:
            ray.init(address=None if address == "auto" else address, include_dashboard=False,
                     logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ArtlensError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}",
                               "check the address and that the cluster runs the same Ray version as here") from exc
    resources = ray.cluster_resources()
    return {"address": address, "cpus": int(resources.get("CPU", 0)), "gpus": int(resources.get("GPU", 0))}


class ExtractionActor:
    """One Ray Data actor: loads its extractors' backbones once, then encodes batch after batch."""

    def __init__(self, job: ImageJob, threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        self.job = job

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [encode_batch(json.loads(str(batch)), self.job) for batch in rows["batch"]]
        # Pickled whole: Arrow has no column type for a batch's vectors of several extractors.
        return {"result": np.array([pickle.dumps(r, protocol=5) for r in results], dtype=object)}


@dataclass
class RayRunner:
    """Runs ``extract_images``' batches on the connected Ray cluster (a ``BatchRunner``).

    ``workers``: actors in the pool (default: one per CPU the cluster has, or one per GPU on a GPU
    device); ``cpus_per_worker``: CPUs (torch threads) each actor reserves."""

    workers: int | None = None
    cpus_per_worker: float = 1.0

    def __call__(self, work: Sequence[WorkBatch], job: ImageJob) -> Iterator[EncodedBatch]:
        if not work:
            return iter(())
        ray = _import_ray()
        if not ray.is_initialized():
            connect("auto")
        return self._run(ray, list(work), job)

    def pool_size(self, ray, device: str) -> int:
        resources = ray.cluster_resources()
        if self.workers:
            return self.workers
        if on_gpu(device):
            return max(1, int(resources.get("GPU", 0)))
        return max(1, int(resources.get("CPU", 1) // self.cpus_per_worker))

    def _run(self, ray, work: list[WorkBatch], job: ImageJob) -> Iterator[EncodedBatch]:
        gpu = on_gpu(job.device)
        # On a worker, the GPU Ray gives an actor is its cuda:0 (Ray sets CUDA_VISIBLE_DEVICES).
        worker_job = ImageJob(job.max_pixels, job.crop, "cuda:0" if gpu else "cpu")
        size = min(self.pool_size(ray, job.device), len(work))
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # artlens reports progress itself
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = False  # batches come back as they finish
        context.enable_progress_bars = False
        dataset = ray.data.from_items([{"batch": json.dumps(batch)} for batch in work], override_num_blocks=len(work))
        results = dataset.map_batches(
            ExtractionActor, batch_size=1, batch_format="numpy",
            fn_constructor_kwargs={"job": worker_job, "threads": int(max(1, self.cpus_per_worker))},
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=self.cpus_per_worker, num_gpus=1 if gpu else 0,
            max_restarts=3, max_task_retries=3,  # a worker that dies is replaced; its batch runs again
        )
        for row in results.iter_rows():
            yield pickle.loads(row["result"])
