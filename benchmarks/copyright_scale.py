"""Latency of one copyright check against a registry of 100,000 works: exact float search against the
fast mode (binary shortlist + float re-ranking), with synthetic works for scale.

    python benchmarks/copyright_scale.py [--works 100000] [--queries 300] [--shortlist 100] [--bits 64]

Robust detector. The registry holds the real descriptors of the Louvre benchmark registry (1,150
works, ``benchmarks/copyright.py``) plus synthetic descriptors up to ``--works``, drawn from a
Gaussian with the mean and covariance of the real ones (so they crowd the real works the way a large
collection of paintings would; unit-normalised). Queries are the real Louvre benchmark queries
(edited copies and edited distractors, their pooled taps cached by ``copyright_data.py``). Measured:
- the search stage, one query at a time: projection head on the query's taps + exact top-1 cosine
  (FAISS ``IndexFlatIP``) against head + ITQ code + Hamming top-``shortlist`` (FAISS binary scan) +
  float re-ranking (``--fast``), p50 / p95;
- agreement of the fast verdicts (registered work or not-registered, at the detector's threshold)
  with the exact ones, over all queries, and both modes' recall / false positives;
- the end-to-end time of one check of an image file (decode, letterbox crop, backbone pass, search),
  single image, for both modes.
Without the Louvre registry the robust part falls back to fully synthetic descriptors (entry + noise).

CVAE keys: 64-d latent means drawn from a correlated Gaussian (real latents are correlated, which
puts more works within Hamming distance 12); the search is the paper's two stages.

Target: one check's search against 100k works < 100 ms on 2 cores. Writes ``results/copyright_scale.json``
(``results/copyright_scale_1thread.json`` with ``--threads 1``).
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


def louvre_setup():
    """(trained detector of the Louvre benchmark registry, query taps, truth as detector ids, is_copy),
    or None when the benchmark registry has not been built."""
    from copyright_data import CACHE, query_features, query_set, registry_set

    from artlens.copyright.registry import CopyrightRegistry

    path = CACHE / "registry-louvre"
    if not (path / "copyright" / "robust").exists():
        return None
    registry = CopyrightRegistry.open(path)
    detector = registry.detector("robust")
    queries = query_set("louvre", 2, 2024)
    taps = query_features("louvre", queries, 2024)["taps"].astype(np.float32)
    _, works, _ = registry_set("louvre")
    files = registry.collection.catalog.file_states()
    work_ids = np.array([files[str(Path(w).resolve())].artwork_id for w in works], np.int64)
    truth = np.array([work_ids[q.work_id] if q.is_copy else -1 for q in queries], np.int64)
    return detector, taps, truth, [q.source for q in queries[:40]]


def synthetic_registry(real: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` - len(real) unit descriptors drawn from a Gaussian fitted to ``real``."""
    mean = real.mean(0)
    cov = np.cov(real, rowvar=False) + 1e-6 * np.eye(real.shape[1])
    extra = rng.multivariate_normal(mean, cov, size=max(0, n - len(real)), method="cholesky").astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return extra


def robust_scale(n: int, queries: int, shortlist: int, bits: int, rng) -> tuple[dict, dict]:
    """Latency rows and the agreement of fast with exact verdicts."""
    setup = louvre_setup()
    if setup is not None:
        base, taps, truth, files = setup
        extra = synthetic_registry(base.vectors, n, rng)
        detector = RobustDetector(base.head, base.taps_id, base.threshold, code_bits=bits)
        detector.ids = np.r_[base.ids, np.arange(1, len(extra) + 1) + base.ids.max()].astype(np.int64)
        detector.vectors = np.concatenate([base.vectors, extra])
        source = "1,150 real Louvre works + synthetic descriptors fitted to them; real edited queries"
    else:
        cfg = RobustConfig()
        head = ProjectionHead(TAPS_DIM, cfg.hidden, cfg.dim).eval()
        detector = RobustDetector(head, "copy-taps/v1", 0.6, code_bits=bits)
        vectors = rng.normal(size=(n, cfg.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        detector.ids, detector.vectors = np.arange(n, dtype=np.int64), vectors
        truth = rng.integers(0, n, 1000)
        taps, files = None, []
        source = "fully synthetic (entry + noise)"
    started = time.perf_counter()
    detector.codes  # noqa: B018 - fits the ITQ hasher and encodes every work, as training does
    build_s = time.perf_counter() - started
    if taps is not None:
        descriptors = detector.describe(taps)
    else:
        noisy = detector.vectors[truth] + 0.05 * rng.normal(size=(len(truth), detector.vectors.shape[1]))
        descriptors = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
        taps = rng.normal(size=(len(truth), TAPS_DIM)).astype(np.float32)
    # verdicts of both modes over every query (batched), and their agreement
    exact_s, exact_i = detector.search(descriptors, 1)
    fast_s, fast_i = detector.search(descriptors, 1, fast=True, shortlist=shortlist)
    t = detector.threshold
    exact_v = np.where(exact_s[:, 0] >= t, exact_i[:, 0], -1)
    fast_v = np.where(fast_s[:, 0] >= t, fast_i[:, 0], -1)
    is_copy = truth >= 0
    quality = {
        "registry": source, "works": int(len(detector)), "queries": int(len(truth)),
        "copies": int(is_copy.sum()), "threshold": t, "shortlist": shortlist, "code_bits": detector.codes.bits,
        "codes_build_s": build_s,
        "agreement_with_exact": float((exact_v == fast_v).mean()),
        "top1_agreement_with_exact": float((exact_i[:, 0] == fast_i[:, 0]).mean()),
        "recall_exact": float((exact_v[is_copy] == truth[is_copy]).mean()),
        "recall_fast": float((fast_v[is_copy] == truth[is_copy]).mean()),
        "false_positives_exact": int((exact_v[~is_copy] >= 0).sum()),
        "false_positives_fast": int((fast_v[~is_copy] >= 0).sum()),
    }
    order = rng.permutation(len(truth))[:queries]

    def run(fast):
        def one(i):
            q = order[i % len(order)]
            descriptor = detector.describe(taps[q : q + 1])  # the head on the query's pooled taps
            detector.search(descriptor, 1, fast=fast, shortlist=shortlist)
        return one

    rows = {"robust search, exact (head + top-1 cosine)": timed(run(False), queries),
            f"robust search, --fast (head + {bits}-bit Hamming top-{shortlist} + re-rank)": timed(run(True), queries)}
    if files:
        rows.update(end_to_end(detector, files, shortlist))
    return rows, quality


def end_to_end(detector: RobustDetector, files: list[str], shortlist: int) -> dict:
    """One check of an image file, as ``artlens copyright check`` does it: decode, letterbox crop,
    backbone pass (pooled taps), head, search."""
    from artlens.copyright.extractors import register_extractors
    from artlens.copyright.taps import COPY_TAPS
    from artlens.features import create_extractor
    from artlens.features.extract import encode_images
    from artlens.imaging import crop_letterbox, load_image

    register_extractors()
    extractor = create_extractor(COPY_TAPS)
    out = {}
    for fast in (False, True):
        def one(i, fast=fast):
            image = crop_letterbox(load_image(Path(files[i % len(files)]).read_bytes()))
            taps = encode_images([image], [extractor])[COPY_TAPS]
            detector.search(detector.describe(taps), 1, fast=fast, shortlist=shortlist)
        label = "fast" if fast else "exact"
        out[f"end to end, one image file ({label}): decode + backbone + search"] = timed(one, 3 * len(files))
    return out


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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--works", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shortlist", type=int, default=RobustConfig().shortlist)
    ap.add_argument("--bits", type=int, default=RobustConfig().code_bits)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows, quality = robust_scale(args.works, args.queries, args.shortlist, args.bits, rng)
    rows["CVAE keys search (Hamming <= 12, then cosine)"] = cvae_search(args.works, args.queries, rng)
    table = [{"what": k, **{m: v.get(m) for m in ("p50_ms", "p95_ms", "top1_correct", "mean_hamming_candidates")}}
             for k, v in rows.items()]
    print(f"{args.works} registered works, {args.threads} threads")
    print_table(table, ["what", "p50_ms", "p95_ms", "top1_correct", "mean_hamming_candidates"])
    print("\nfast mode against the exact search, all queries:")
    print_table([quality], ["works", "queries", "code_bits", "shortlist", "agreement_with_exact", "recall_exact",
                            "recall_fast", "false_positives_exact", "false_positives_fast"])
    name = "copyright_scale" if args.threads == 2 else f"copyright_scale_{args.threads}thread"
    write_result(name, {"works": args.works, "threads": args.threads, "target_ms": 100,
                                     "latency": rows, "fast_vs_exact": quality})
    return rows


if __name__ == "__main__":
    main()
