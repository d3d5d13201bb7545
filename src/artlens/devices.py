"""Where tensors run: one resolver for every ``--device`` (extraction, training, federated training,
registry building), and how many CPU threads they run on (``cpu_threads``).

``auto`` takes the first GPU when torch sees one and the CPU otherwise; ``cpu``, ``cuda`` and
``cuda:N`` name one device. A GPU that is asked for and not there is an error, before anything runs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch
from threadpoolctl import threadpool_limits

from artlens.errors import ArtlensError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """The torch device that ``spec`` names (None means ``auto``); raises ArtlensError when it is
    not a device name or names a GPU this machine does not have."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    match = _SPEC.match(text)
    if not match:
        raise ArtlensError(f"unknown device {spec!r}", f"choose one of: {DEVICE_CHOICES}")
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ArtlensError(f"--device {text}: torch sees no CUDA GPU on this machine",
                           "run with --device cpu (or auto), or install a CUDA build of PyTorch where a GPU is")
    index = int(match[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ArtlensError(f"--device {text}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                           f"(cuda:0 to cuda:{count - 1})", "pick one of them, or --device auto")
    return torch.device(f"cuda:{index}")


def device_name(spec: str | torch.device | None = None) -> str:
    """``resolve_device(spec)`` as the string that settings, run configs and Ray actors carry."""
    return str(resolve_device(spec))


def on_gpu(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def extraction_batch_size(device: str | torch.device, cpu_batch: int) -> int:
    """Images per forward pass: the collection's batch on the CPU; large enough to keep a GPU busy."""
    return max(cpu_batch, 128) if on_gpu(device) else cpu_batch


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run torch and the BLAS behind numpy / scikit-learn on ``n`` threads (None or 0: leave them
    as they are): on a shared CPU, spinning threads make small-batch training and PCA several times
    slower, not faster. The previous setting is restored on exit."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        with threadpool_limits(max(1, int(n))):
            yield
    finally:
        torch.set_num_threads(before)
