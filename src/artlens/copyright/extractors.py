"""The detectors' inputs as feature extractors, so that a registry's collection computes and caches
them like any other feature: ``copy-taps`` (pooled backbone taps, the robust descriptor's input) and
``thumb-SIZE`` (the CVAE's square thumbnails).

They are registered explicitly, by :func:`register_extractors`, which opening a registry calls;
importing a module registers nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from artlens.copyright.cvae import ThumbnailExtractor, thumbnail_name
from artlens.copyright.taps import COPY_TAPS, CopyTapsExtractor
from artlens.features import register_extractor

_REGISTERED: set[str] = set()


def register_extractors(thumbnail_sizes: Iterable[int] = ()) -> None:
    """Make ``copy-taps`` and ``thumb-SIZE`` (for each size) known to ``create_extractor``. Idempotent:
    a name registered before is left as it is (with the instance ``create_extractor`` already made)."""
    factories = {COPY_TAPS: CopyTapsExtractor}
    factories.update({thumbnail_name(size): functools.partial(ThumbnailExtractor, int(size))
                      for size in thumbnail_sizes})
    for name, factory in factories.items():
        if name not in _REGISTERED:
            register_extractor(name, factory)
            _REGISTERED.add(name)
