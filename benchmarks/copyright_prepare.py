"""Build the benchmark registries' features and edited views without training (long, run once).

    python benchmarks/copyright_prepare.py --sets louvre bob_ross [--views 12]

Views already cached are kept; asking for more views computes only the new ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from copyright_data import CACHE, registry_set  # noqa: E402

from artlens.copyright.config import CopyrightConfig, RobustConfig  # noqa: E402
from artlens.copyright.registry import CopyrightRegistry  # noqa: E402
from artlens.copyright.views import compute_views  # noqa: E402
from artlens.progress import Reporter  # noqa: E402
from artlens.settings import with_changes  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["louvre", "bob_ross"])
    ap.add_argument("--views", type=int, default=RobustConfig.views, help="edited views per work")
    args = ap.parse_args()
    config = with_changes(CopyrightConfig(), {"robust__views": args.views})
    for name in args.sets:
        folder, _, _ = registry_set(name)
        started = time.perf_counter()
        registry = CopyrightRegistry.open(CACHE / f"registry-{name}", create=True, config=config)
        registry.add(folder, owner=f"{name} (benchmark)", licence="all rights reserved", train=False)
        _, md5s = registry.works()
        compute_views(registry.collection, md5s, config.robust.views + 1, config.robust.seed,
                      reporter=Reporter())
        print(f"{name}: {len(registry)} works prepared in {time.perf_counter() - started:.0f} s", flush=True)
