"""Speed of the EfficientNet-Lite0 backbone on CPU, model only and end to end (JPEG decode + resize +
forward giving the ``pool`` features and the ``block4`` maps), for each inference variant.

    python benchmarks/backbone_speed.py [--images 320] [--batch 32] [--threads 2] [--repeats 5]

Variants: BatchNorm kept or folded into the convolutions (``fuse``), NCHW or channels-last memory,
TorchScript trace + freeze, and bfloat16. ``max|d pool|`` and ``min cos`` compare each variant's
pooled features with the plain float32 model's. The product target is 25 images/s end to end on
2 cores. Columns: median and best wall-clock speed of the repeats, and ``cpu-est``, the speed the
process's CPU time implies on dedicated cores (decoding on one thread, the model on all): other
processes on the machine slow the wall clock down; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from _common import dataset, print_table, write_result
from PIL import Image

from artlens.features.effnet import load_effnet_lite0, preprocess_effnet

TAPS = ("block4", "pool")


class TapsModule(torch.nn.Module):
    """forward_features as a tuple-returning module, for TorchScript."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = self.model.forward_features(x, TAPS)
        return taps["block4"], taps["pool"]


def variants(sample: torch.Tensor) -> dict[str, Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
    def eager(model):
        return lambda x: model.forward_features(x, TAPS)

    fast = load_effnet_lite0()
    traced = torch.jit.freeze(torch.jit.trace(TapsModule(fast).eval(), sample))
    bf16 = load_effnet_lite0().to(torch.bfloat16)
    return {
        "BN, NCHW": eager(load_effnet_lite0(fuse=False, channels_last=False)),
        "BN, channels-last": eager(load_effnet_lite0(fuse=False)),
        "fused, NCHW": eager(load_effnet_lite0(channels_last=False)),
        "fused, channels-last (default)": eager(fast),
        "fused, CL, jit trace+freeze": lambda x: dict(zip(TAPS, traced(x))),
        "fused, CL, bfloat16": lambda x: {k: v.float() for k, v in bf16.forward_features(x.to(torch.bfloat16), TAPS).items()},
    }


def timings(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Seconds per call over ``repeats`` calls after a warm-up call: (median wall, best wall, median
    process CPU time). CPU time barely grows when other processes compete for the cores, so
    threads x calls / CPU time estimates the speed on dedicated cores."""
    fn()  # warm-up: oneDNN builds its kernels on the first call of each shape
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def end_to_end(run: Callable, paths: list, batch: int) -> None:
    for start in range(0, len(paths), batch):
        images = [Image.open(p).convert("RGB") for p in paths[start : start + batch]]
        run(preprocess_effnet(images))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=320, help="images decoded per end-to-end pass")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()

    folder = dataset("wikiart_styles")
    all_paths = sorted((folder / "images").glob("*/*.jpg"))
    paths = all_paths[:: max(1, len(all_paths) // args.images)][: args.images]
    for p in paths:  # read once so every variant sees the files in the page cache
        p.read_bytes()
    sample = preprocess_effnet([Image.open(p).convert("RGB") for p in paths[: args.batch]])

    decode_wall, _, decode_cpu = timings(
        lambda: preprocess_effnet([Image.open(p).convert("RGB") for p in paths]), max(1, args.repeats // 2)
    )
    rows = []
    with torch.inference_mode():
        runs = variants(sample)
        reference = runs["BN, NCHW"](sample)["pool"]
        for name, run in runs.items():
            pool = run(sample)["pool"]
            model_wall, model_best, model_cpu = timings(lambda: run(sample), args.repeats)
            e2e_wall, e2e_best, _ = timings(lambda: end_to_end(run, paths, args.batch), max(1, args.repeats // 2))
            # decoding runs on one thread, the model on all of them
            e2e_cpu = decode_cpu + model_cpu * len(paths) / args.batch / args.threads
            rows.append({
                "variant": name,
                "model img/s": round(args.batch / model_wall, 1),
                "model best": round(args.batch / model_best, 1),
                "model cpu-est": round(args.batch * args.threads / model_cpu, 1),
                "e2e img/s": round(len(paths) / e2e_wall, 1),
                "e2e best": round(len(paths) / e2e_best, 1),
                "e2e cpu-est": round(len(paths) / e2e_cpu, 1),
                "max|d pool|": f"{float((pool - reference).abs().max()):.1e}",
                "min cos": f"{float(torch.nn.functional.cosine_similarity(pool, reference).min()):.5f}",
            })
            print(f"  {name}: {rows[-1]['model img/s']} img/s model, {rows[-1]['e2e img/s']} end to end", flush=True)
    print()
    print_table([{k: f"{v:.1f}" if isinstance(v, float) else v for k, v in row.items()} for row in rows], list(rows[0]))
    print(f"\ndecode + resize alone: {len(paths) / decode_wall:.0f} img/s; target 25 img/s end to end; "
          f"load average {os.getloadavg()[0]:.1f} (other processes slow every timing down)")
    write_result("backbone_speed", {
        "model": "effnet-lite0", "taps": list(TAPS), "batch": args.batch, "threads": args.threads,
        "images": len(paths), "input": "wikiart_styles 224x224 JPEG", "torch": torch.__version__,
        "load_average": {"start": load_at_start, "end": os.getloadavg()}, "decode_resize_img_per_s": round(len(paths) / decode_wall, 1),
        "variants": rows,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
