"""Ingest + feature extraction throughput (wall clock, and per CPU-second so that a run on a busy
machine still tells what dedicated cores give), end to end (decode, letterbox crop, EfficientNet-Lite0,
style matrices, colour histogram), in images per second on this machine.

``--device cuda`` (or cuda:N) measures the extraction on that GPU as well (bigger batches, decoding in
DataLoader worker processes) and prints its speedup over the CPU figure of the same run.

    python benchmarks/extraction_speed.py [--dataset wikiart_styles] [--n 512] [--device cpu|cuda[:N]]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import dataset, print_table, write_result

from artlens.catalog.ingest import ingest_folder
from artlens.collection import Collection
from artlens.devices import device_name
from artlens.errors import ArtlensError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="wikiart_styles")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="also measure on this device: cuda or cuda:N (default: cpu only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        devices = list(dict.fromkeys(["cpu", device_name(args.device)]))
    except ArtlensError as exc:
        print(f"error: {exc.message}\n  hint: {exc.hint}", file=sys.stderr)
        return 2
    root = dataset(args.dataset)
    images = sorted(root.glob("images/**/*.jpg"))[: args.n]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, path in enumerate(images):
            (folder / f"{i:06d}.jpg").symlink_to(path)
        configs = [("content only", ["effnet-lite0"]),
                   ("image defaults", ["effnet-lite0", "gram-block4", "colour-hist"])]
        for name, extractors in configs:
            for device in devices:
                coll = Collection.open(Path(tmp) / f"{name.replace(' ', '_')}_{device.replace(':', '')}", create=True)
                t0 = time.perf_counter()
                ingest_folder(coll.catalog, folder)
                t1, c1 = time.perf_counter(), time.process_time()
                coll.extract(extractors, device=device)
                t2, c2 = time.perf_counter(), time.process_time()
                n = len(coll.catalog)
                rows.append({"config": name, "device": device, "images": n, "ingest_img_s": n / (t1 - t0),
                             "extract_img_s": n / (t2 - t1), "end_to_end_img_s": n / (t2 - t0),
                             # what the same work gives on dedicated cores, from the CPU time it used
                             "extract_img_per_cpu_s": n / (c2 - c1),
                             "load_avg": os.getloadavg()[0]})
                cpu = next(r for r in rows if r["config"] == name and r["device"] == "cpu")
                rows[-1]["speedup_vs_cpu"] = rows[-1]["extract_img_s"] / cpu["extract_img_s"]
                print_table(rows[-1:], list(rows[-1]))
                coll.close()
    print()
    print_table(rows, list(rows[0]))
    write_result("extraction_speed", {"dataset": args.dataset, "threads": args.threads, "devices": devices, "rows": rows,
                                      "target_img_s": 25})
    return 0


if __name__ == "__main__":
    sys.exit(main())
