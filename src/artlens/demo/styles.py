"""Style techniques: a subject's layout rendered as pointillist dots, brush strokes, a Mondrian-like
grid, wave bands, concentric rings or watercolour washes, and the phrases that describe each.

Dots and strokes are splatted with a jittered-cell scheme, so that a picture takes a few milliseconds."""

from __future__ import annotations

import heapq
import math

import numpy as np
from PIL import Image, ImageFilter

from artlens.demo.canvas import (
    F32,
    Scene,
    blur,
    choice,
    noise,
    paint,
    to_u8,
    uv,
    window,
)
from artlens.demo.palettes import mix


def palette_array(cols: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([cols[k] for k in sorted(cols)]).astype(F32)


def nearest_colour(img: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour for every pixel (shape img.shape[:-1])."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]  # plain array ops: no BLAS threads
    best = np.full(img.shape[:-1], np.inf, dtype=F32)
    idx = np.zeros(img.shape[:-1], dtype=np.int64)
    for k, (pr, pg, pb) in enumerate(pal):
        d = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2
        closer = d < best
        best = np.where(closer, d, best)
        idx[closer] = k
    return idx


def snap(img: np.ndarray, cols: dict[str, np.ndarray], amount: float) -> np.ndarray:
    """Pull colours toward the nearest palette colour by `amount` (0..1)."""
    pal = palette_array(cols)
    near = pal[nearest_colour(img, pal)]
    return (img + (near - img) * F32(amount)).astype(F32)


def splat(canvas, ref, rng, cell, kind, size, value_sd=0.0, tint_sd=0.0, angle=None, tex=0.0,
           jitter=1.0):
    """Draw one layer of dots or strokes, one per jittered cell of `cell` pixels, in place.

    Each primitive reaches at most one cell from its centre, so a pixel only needs the 3x3
    neighbouring cells: pixels are viewed as (G, c, G, c) blocks and every candidate is a
    broadcast of (G, G) per-cell arrays, so a whole layer is a few dozen array operations.
    The topmost primitive over a pixel wins (random painting order, packed with the
    candidate number into one integer key so that a running maximum finds it).
    kind "dot": size = (min, max) radius in cells; kind "stroke": size = (half-length,
    half-width) in cells, angle = an (A, A) direction field sampled at the stroke centres.
    """
    S = canvas.shape[0]
    c = int(cell)
    G = -(-S // c)
    Gp = G + 2
    jx = (0.5 + (rng.random((Gp, Gp), dtype=F32) - 0.5) * F32(jitter)).astype(F32)
    jy = (0.5 + (rng.random((Gp, Gp), dtype=F32) - 0.5) * F32(jitter)).astype(F32)
    keys = (rng.permutation(Gp * Gp).astype(np.int32) * 16).reshape(Gp, Gp)
    idx = np.arange(Gp, dtype=F32)
    cxa = ((idx[None, :] - 1 + jx) * c).astype(np.int64).clip(0, S - 1)
    cya = ((idx[:, None] - 1 + jy) * c).astype(np.int64).clip(0, S - 1)
    col = ref[cya, cxa]  # (Gp, Gp, 3)
    if value_sd or tint_sd:
        gain = 1.0 + rng.normal(0, value_sd or 1e-9, (Gp, Gp, 1)) + rng.normal(0, tint_sd or 1e-9, (Gp, Gp, 3))
        col = (col * gain).astype(F32)
    if kind == "dot":
        rad = rng.uniform(size[0], size[1], (Gp, Gp)).astype(F32) * c
        r2 = (rad * rad).astype(F32)
    else:
        hl = (F32(size[0] * c) * rng.uniform(0.8, 1.0, (Gp, Gp))).astype(F32)
        hw = (F32(size[1] * c) * rng.uniform(0.8, 1.2, (Gp, Gp))).astype(F32)
        A = angle.shape[0]
        th = angle[cya * A // S, cxa * A // S]
        # unit vectors scaled so that a = along / half-length, b = across / half-width
        ax, ay = (np.cos(th) / hl).astype(F32), (np.sin(th) / hl).astype(F32)
        bx, by = (-np.sin(th) / hw).astype(F32), (np.cos(th) / hw).astype(F32)

    # pixel (gy * c + ly, gx * c + lx) lives at [ly, lx, gy, gx]: long inner loops over cells
    lc = np.arange(c, dtype=F32) + F32(0.5)
    lx, ly = lc[None, :, None, None], lc[:, None, None, None]
    offs = [(oy, ox) for oy in (-1, 0, 1) for ox in (-1, 0, 1)]
    best = np.full((c, c, G, G), -1, dtype=np.int32)
    minus1 = np.int32(-1)
    for k, (oy, ox) in enumerate(offs):
        sl = (slice(1 + oy, 1 + oy + G), slice(1 + ox, 1 + ox + G))
        dx = lx - (ox + jx[sl]) * c  # (1, c, G, G)
        dy = ly - (oy + jy[sl]) * c  # (c, 1, G, G)
        if kind == "dot":
            inside = (dx * dx + dy * dy) < r2[sl]
        else:
            a = dx * ax[sl] + dy * ay[sl]
            b = dx * bx[sl] + dy * by[sl]
            a *= a
            a *= a
            b *= b
            inside = (a + b) < 1.0  # a^4 + b^2 < 1: a flat stroke with rounded ends
        np.maximum(best, np.where(inside, keys[sl] + k, minus1), out=best)

    covered = best >= 0
    which = best & 15
    which[~covered] = 4  # the pixel's own cell; masked out below anyway
    oyk = np.array([o[0] for o in offs], dtype=np.int64)
    oxk = np.array([o[1] for o in offs], dtype=np.int64)
    cell_y = np.arange(G)[:, None]
    cell_x = np.arange(G)[None, :]
    gy = cell_y + 1 + oyk[which]  # (c, c, G, G): the winning primitive's cell
    gx = cell_x + 1 + oxk[which]
    flat = gy * Gp + gx
    pcol = col.reshape(-1, 3)[flat]  # (c, c, G, G, 3)
    # pixel position relative to its primitive's centre
    dx = lx + (cell_x + 1 - gx) * c - jx.reshape(-1)[flat] * c
    dy = ly + (cell_y + 1 - gy) * c - jy.reshape(-1)[flat] * c
    if kind == "dot":
        q = (dx * dx + dy * dy) / r2.reshape(-1)[flat]
        pcol *= (1.06 - 0.18 * q)[..., None].astype(F32)
    else:
        a = dx * ax.reshape(-1)[flat] + dy * ay.reshape(-1)[flat]
        b = dx * bx.reshape(-1)[flat] + dy * by.reshape(-1)[flat]
        streak = 1.0 + F32(tex) * np.sin(b * F32(2.6 * np.pi) + which)  # bristle lines
        pcol *= (streak * (1.0 - 0.12 * np.abs(a)))[..., None].astype(F32)
    covered = covered.transpose(2, 0, 3, 1).reshape(G * c, G * c)[:S, :S]
    pcol = pcol.transpose(2, 0, 3, 1, 4).reshape(G * c, G * c, 3)[:S, :S]
    np.copyto(canvas, pcol, where=covered[..., None])
    return canvas


def _style_dot(sc: Scene, rng, S):
    """Pointillism: round dots of broken colour over a pale ground."""
    ref = sc.ref
    base = blur(ref, S / 40)
    canvas = (1.0 - (1.0 - base) * F32(0.8)).astype(F32)
    vivid = np.clip(ref + (ref - ref.mean(axis=2, keepdims=True)) * 0.4, 0, 1).astype(F32)
    c1 = max(2, round(S / 36))
    splat(canvas, vivid, rng, c1, "dot", (0.36, 0.46), 0.1, 0.12, jitter=0.6)
    offset = c1 // 2  # a second, offset lattice fills the gaps between the first dots
    layer = canvas[offset:, offset:].copy()
    splat(layer, vivid[offset:, offset:], rng, c1, "dot", (0.3, 0.4), 0.1, 0.14, jitter=0.6)
    canvas[offset:, offset:] = layer
    return canvas


def _flow_angle(ref, rng, S):
    """Stroke directions: follow contours where the picture has edges, else a smooth field."""
    A = max(8, S // 4)  # directions vary slowly: a quarter-resolution field is plenty
    small = np.asarray(Image.fromarray(to_u8(ref)).resize((A, A), Image.BILINEAR)
                       .filter(ImageFilter.GaussianBlur(A / 40)), dtype=F32) * F32(1 / 255)
    lum = 0.299 * small[..., 0] + 0.587 * small[..., 1] + 0.114 * small[..., 2]
    gy, gx = np.gradient(lum)
    mag = np.sqrt(gx * gx + gy * gy) * F32(A)
    w = np.clip(mag / 1.5, 0, 1)
    base = float(rng.uniform(-0.6, 0.6)) + (np.pi / 2 if rng.random() < 0.25 else 0.0)
    field_ = base + 1.2 * (noise(rng, A, 3) - 0.5)
    contour = np.arctan2(gy, gx) + np.pi / 2
    vx = w * np.cos(2 * contour) + (1 - w) * np.cos(2 * field_)
    vy = w * np.sin(2 * contour) + (1 - w) * np.sin(2 * field_)
    return (0.5 * np.arctan2(vy, vx)).astype(F32)


def _style_stroke(sc: Scene, rng, S):
    """Impasto-like: short, textured brush strokes that follow the picture's contours."""
    ref = sc.ref
    canvas = blur(ref, S / 40) * F32(0.8)
    ang = _flow_angle(ref, rng, S)
    c1 = max(2, round(S / 22))
    c2 = max(2, round(S / 34))
    splat(canvas, ref, rng, c1, "stroke", (0.98, 0.3), 0.12, 0.04, ang, 0.1)
    splat(canvas, ref, rng, c2, "stroke", (0.98, 0.32), 0.12, 0.04, ang, 0.1)
    return np.clip(canvas, 0, 1)


def _style_grid(sc: Scene, rng, S):
    """Mondrian-like: recursively split the canvas where the subject's colour regions change,
    fill each block with a flat palette colour, separate blocks by heavy dark lines."""
    cols = sc.colours
    pal = dict(cols)
    pal["white"] = np.array([0.96, 0.95, 0.92], dtype=F32)
    palarr = palette_array(pal)
    # Split on a small, palette-quantised copy (gradients such as skies do not eat the block
    # budget, and the summed-area tables stay tiny); block edges land on a 1/32 grid.
    W = min(S, 64)
    small = np.asarray(Image.fromarray(to_u8(sc.ref)).resize((W, W), Image.BOX), dtype=F32) * F32(1 / 255)
    quant = (0.75 * palarr[nearest_colour(small, palarr)] + 0.25 * small).astype(np.float64)
    sat = np.zeros((W + 1, W + 1, 3))
    sat[1:, 1:] = quant.cumsum(0).cumsum(1)
    sq = np.zeros((W + 1, W + 1))
    sq[1:, 1:] = (quant * quant).sum(2).cumsum(0).cumsum(1)

    def sse(x0, y0, x1, y1):  # vectorised over any one of the coordinates
        area = (x1 - x0) * (y1 - y0)
        s = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
        q = sq[y1, x1] - sq[y0, x1] - sq[y1, x0] + sq[y0, x0]
        return q - (s * s).sum(-1) / np.maximum(area, 1)

    step = max(1, W // 32)
    min_side = max(2, W // 16)
    target = int(rng.integers(40, 64))
    leaves = []
    heap = [(-float(sse(0, 0, W, W)), 0, (0, 0, W, W))]
    counter = 1
    while heap and len(heap) + len(leaves) < target:
        _, _, (x0, y0, x1, y1) = heapq.heappop(heap)
        best = None
        px = np.arange(((x0 + min_side) // step) * step, x1 - min_side + 1, step)
        px = px[px >= x0 + min_side]
        if px.size:
            e = sse(x0, y0, px, y1) + sse(px, y0, x1, y1)
            i = int(np.argmin(e))
            best = (float(e[i]), (x0, y0, int(px[i]), y1), (int(px[i]), y0, x1, y1))
        py = np.arange(((y0 + min_side) // step) * step, y1 - min_side + 1, step)
        py = py[py >= y0 + min_side]
        if py.size:
            e = sse(x0, y0, x1, py) + sse(x0, py, x1, y1)
            i = int(np.argmin(e))
            if best is None or float(e[i]) < best[0]:
                best = (float(e[i]), (x0, y0, x1, int(py[i])), (x0, int(py[i]), x1, y1))
        if best is None:
            leaves.append((x0, y0, x1, y1))
            continue
        for r in best[1:]:
            heapq.heappush(heap, (-float(sse(*r)), counter, r))
            counter += 1
    leaves += [r for _, _, r in heap]
    leaves.sort()

    line = mix(cols["dark"], np.zeros(3, dtype=F32), 0.6)
    lw = max(1, round(S / 100))
    canvas = np.empty((S, S, 3), dtype=F32)
    canvas[:] = line
    for (x0, y0, x1, y1) in leaves:
        mean = small[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        x0, y0, x1, y1 = (round(t * S / W) for t in (x0, y0, x1, y1))
        near = palarr[int(np.argmin(((palarr - mean) ** 2).sum(1)))]
        colour = near * 0.8 + mean * 0.2
        if rng.random() < 0.06:
            colour = cols["accent"]
        canvas[y0 + lw : y1 - lw, x0 + lw : x1 - lw] = colour
    canvas *= (0.97 + 0.06 * noise(rng, S, 12))[..., None]
    return canvas


def sample_at(ref, xs, ys):
    S = ref.shape[0]
    xi = np.clip((xs * S).astype(np.int64), 0, S - 1)
    yi = np.clip((ys * S).astype(np.int64), 0, S - 1)
    return ref[yi, xi]


def _style_wave(sc: Scene, rng, S):
    """Sinusoidal ribbons: the picture is resampled along wavy bands, one colour per band
    position, each band shaded like a ribbon and edged with a dark seam."""
    u, v = uv(S)
    ang = float(rng.uniform(-0.3, 0.3))
    n_bands = float(rng.uniform(16, 26))
    ca, sa = F32(math.cos(ang)), F32(math.sin(ang))
    p = v * ca + u * sa  # across the bands
    q = u * ca - v * sa  # along the bands
    amp1, amp2 = rng.uniform(0.5, 1.4), rng.uniform(0.1, 0.5)
    f1, f2 = rng.uniform(1.0, 2.5), rng.uniform(3.0, 6.0)
    disp = (amp1 * np.sin(2 * np.pi * (q * f1 + rng.random()))
            + amp2 * np.sin(2 * np.pi * (q * f2 + rng.random()))).astype(F32)
    phi = p * F32(n_bands) + disp
    k = np.floor(phi)
    fr = phi - k
    pc = (k + 0.5 - disp) / F32(n_bands)
    dp = pc - p
    col = sample_at(sc.ref, u + dp * sa, v + dp * ca)
    col = snap(col, sc.colours, 0.3)
    shade = 0.8 + 0.3 * np.sin(np.pi * fr)  # each band rounded like a ribbon
    band_px = F32(S / n_bands)
    line = np.clip(np.minimum(fr, 1 - fr) * band_px / F32(0.8), 0, 1)  # a thin dark seam
    out = col * (shade * (0.55 + 0.45 * line))[..., None]
    return np.clip(out, 0, 1).astype(F32)


def _style_concentric(sc: Scene, rng, S):
    """Circular forms: rings around the subject's centres of interest (and a few random
    ones); every ring piece inside one colour region takes that region's mean colour."""
    u, v = uv(S)
    centres = list(sc.focal)
    for _ in range(int(rng.integers(2, 5))):
        centres.append((float(rng.uniform(0, 1)), float(rng.uniform(0, 1)), float(rng.uniform(0.0, 0.1))))
    K = len(centres)
    dist = np.empty((K, S, S), dtype=F32)
    for i, (x, y, r) in enumerate(centres):
        dist[i] = np.sqrt((u - F32(x)) ** 2 + (v - F32(y)) ** 2)
    boost = np.array([r for _, _, r in centres], dtype=F32)[:, None, None]
    own = np.argmin(dist - boost, axis=0)
    d = np.take_along_axis(dist, own[None], 0)[0]
    w = F32(1.0 / rng.uniform(26, 36))
    ring = np.floor(d / w).astype(np.int64)
    fr = d / w - ring
    region = nearest_colour(sc.ref, palette_array(sc.colours))  # keep the subject's shapes
    label = (own * 1000 + ring) * 16 + region
    _, inv = np.unique(label, return_inverse=True)
    inv = inv.reshape(-1)
    cnt = np.bincount(inv).astype(F32)
    flat = sc.ref.reshape(-1, 3)
    means = np.stack([np.bincount(inv, weights=flat[:, ch]) for ch in range(3)], 1).astype(F32) / cnt[:, None]
    means = snap(means[None], sc.colours, 0.35)[0]
    col = means[inv].reshape(S, S, 3)
    parity = np.where(ring % 2 == 0, F32(1.06), F32(0.88))
    line = np.clip(np.minimum(fr, 1 - fr) * w * F32(S) / 1.2, 0, 1)
    out = col * (parity * (0.6 + 0.4 * line))[..., None]
    return np.clip(out, 0, 1).astype(F32)


def _style_wash(sc: Scene, rng, S):
    """Watercolour: wobbly, blurred, transparent washes with darkened pools at their edges,
    a few blooms, pigment granulation and an irregular unpainted paper margin."""
    u, v = uv(S)
    amp = F32(0.03)
    xs = u + amp * (noise(rng, S, 5) - 0.5) * 2
    ys = v + amp * (noise(rng, S, 5) - 0.5) * 2
    base = sample_at(sc.ref, xs, ys)
    base = snap(base, sc.colours, 0.3)
    a = blur(base, S / 100)
    b = blur(base, S / 25)
    edge = np.clip(np.abs(a - b).sum(2) * 2.5, 0, 1)
    out = a * (1.0 - 0.45 * edge)[..., None]
    out = 1.0 - (1.0 - out) * F32(0.86)  # transparent pigment over paper
    paper = np.array([0.97, 0.95, 0.9], dtype=F32)
    for _ in range(int(rng.integers(3, 7))):  # blooms
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.06, 0.16)
        sl, uu, vv = window(S, cx - r * 1.3, cy - r * 1.3, cx + r * 1.3, cy + r * 1.3)
        dd = np.sqrt((uu - F32(cx)) ** 2 + (vv - F32(cy)) ** 2) / F32(r)
        bloom = np.clip(1.0 - dd, 0, 1) ** 0.5 * 0.25 + np.exp(-((dd - 1.0) / 0.08) ** 2) * 0.12
        paint(out[sl], bloom.astype(F32), choice(rng, list(sc.colours.values())) * 0.9)
    gran = rng.random((S // 2, S // 2), dtype=F32)
    gran = np.asarray(Image.fromarray(gran).resize((S, S), Image.BILINEAR), dtype=F32)
    out *= (0.96 + 0.08 * gran)[..., None]
    m = np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) + 0.025 * (noise(rng, S, 10) - 0.5)
    border = np.clip((m - 0.03) / 0.025, 0, 1).astype(F32)
    paint(out, 1.0 - border, paper)
    return np.clip(out, 0, 1).astype(F32)


STYLE_TECHNIQUES = {
    "dot": _style_dot, "grid": _style_grid, "wave": _style_wave,
    "wash": _style_wash, "stroke": _style_stroke, "concentric": _style_concentric,
}


STYLE_PHRASES = {
    "dot": ("painted in a pointillist technique of countless small dots of {c}",
            "rendered in dotted pointillism, thousands of tiny dots of {c}"),
    "grid": ("abstracted into a geometric grid of flat {c} blocks divided by black lines",
             "constructed from rectangular colour blocks and heavy black grid lines in {c}"),
    "wave": ("rendered in undulating wave bands of {c}",
             "built from rhythmic sinusoidal, wavy stripes of {c}"),
    "wash": ("painted in soft watercolour washes of {c} with blurred, bleeding edges",
             "a loose watercolour wash in {c}, soft and diffuse"),
    "stroke": ("painted with energetic directional brush strokes of {c}",
               "worked in thick, visible brushstrokes of {c}"),
    "concentric": ("composed of concentric rings and circles of {c}",
                   "broken into radiating concentric circles in {c}"),
}

