"""Latency of one copyright check against a registry of 100,000 works, with synthetic codes.

    python benchmarks/copyright_scale.py [--works 100000] [--queries 300]

Registries are filled with synthetic entries of the real formats (no image is decoded):
- robust: 256-d unit descriptors in the detector's exact inner-product index; the query is an
  edited-looking copy of one entry (entry + noise), and the search is the check's top-1 lookup plus
  the projection head applied to the query's pooled taps;
- CVAE keys: 64-d latent means drawn from a correlated Gaussian (real latents are correlated, which
  puts more works within Hamming distance 12); the search is the paper's two stages.

Also reported, for context and not part of the target: the backbone pass of one query image (the
fixed cost of any check, independent of the registry size). Target: one check's search < 100 ms.
Writes ``results/copyright_scale.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import print_table, write_result  # noqa: E402

from artlens.copyright.config import CVAEConfig, RobustConfig  # noqa: E402
from artlens.copyright.cvae import ConvVAE, CVAEKeyDetector  # noqa: E402
from artlens.copyright.robust import ProjectionHead, RobustDetector  # noqa: E402
from artlens.copyright.taps import TAPS_DIM  # noqa: E402


def timed(fn, repeats: int) -> dict:
    fn(0)  # warm-up
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    t = np.array(times)
    return {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)),
            "mean_ms": float(t.mean()), "repeats": repeats}


def robust_search(n: int, queries: int, rng) -> dict:
    cfg = RobustConfig()
    head = ProjectionHead(TAPS_DIM, cfg.hidden, cfg.dim).eval()
    detector = RobustDetector(head, "copy-taps/v1", 0.6)
    vectors = rng.normal(size=(n, cfg.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    detector.ids, detector.vectors = np.arange(n, dtype=np.int64), vectors
    taps = rng.normal(size=(queries, TAPS_DIM)).astype(np.float32)
    targets = rng.integers(0, n, queries)
    noisy = vectors[targets] + 0.05 * rng.normal(size=(queries, cfg.dim)).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    found = []

    def one(i):
        detector.describe(taps[i : i + 1])  # the head on the query's pooled taps
        _, ids = detector.search(noisy[i : i + 1], 1)
        found.append(int(ids[0, 0]) == int(targets[i]))

    stats = timed(one, queries)
    stats["top1_correct"] = float(np.mean(found[1:]))
    return stats


def cvae_search(n: int, queries: int, rng) -> dict:
    cfg = CVAEConfig()
    model = ConvVAE(cfg.image_size, cfg.channels, 64, cfg.latent)  # the model is not used by the search
    mixing = rng.normal(size=(16, cfg.latent)) / 4.0
    mu = (rng.normal(size=(n, 16)) @ mixing + 0.5 * rng.normal(size=(n, cfg.latent))).astype(np.float32)
    detector = CVAEKeyDetector(model, cfg, mu.mean(0))
    detector.set_works(np.arange(n, dtype=np.int64), mu)
    targets = rng.integers(0, n, queries)
    query_mu = mu[targets] + 0.05 * rng.normal(size=(queries, cfg.latent)).astype(np.float32)
    results = []

    def one(i):
        results.append(detector.match(query_mu[i : i + 1])[0])

    stats = timed(one, queries)
    matches = results[1:]
    stats["top1_correct"] = float(np.mean([m.work_id == t for m, t in zip(matches, targets)]))
    stats["mean_hamming_candidates"] = float(np.mean([m.candidates for m in matches]))
    stats["zero_candidate_share"] = float(np.mean([m.candidates == 0 for m in matches]))
    return stats


def backbone_pass(repeats: int) -> dict:
    from PIL import Image

    from artlens.copyright.taps import CopyTapsExtractor
    from artlens.features.extract import encode_images

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (500, 400, 3), dtype=np.uint8))
    extractor = CopyTapsExtractor()
    return timed(lambda i: encode_images([image], [extractor]), repeats)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--works", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = {
        "robust descriptor search (head + top-1 cosine)": robust_search(args.works, args.queries, rng),
        "CVAE keys search (Hamming <= 12, then cosine)": cvae_search(args.works, args.queries, rng),
        "backbone pass of one query image (context)": backbone_pass(20),
    }
    table = [{"what": k, **{m: v.get(m) for m in ("p50_ms", "p95_ms", "top1_correct", "mean_hamming_candidates")}}
             for k, v in rows.items()]
    print(f"{args.works} registered works, {args.threads} threads")
    print_table(table, ["what", "p50_ms", "p95_ms", "top1_correct", "mean_hamming_candidates"])
    write_result("copyright_scale", {"works": args.works, "threads": args.threads, "target_ms": 100, "latency": rows})
    return rows


if __name__ == "__main__":
    main()
