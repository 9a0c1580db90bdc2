"""Small deterministic tensor operations that the built-in renditions are built from (private).

Blurs, value and fractal noise, Voronoi cells, a smooth Kuwahara filter, relief shading, brush-stroke textures,
random warps, k-means and colour helpers, all in plain PyTorch, used by :mod:`stylecloak.targets.renditions`.
Images are 1 x C x H x W float32 tensors unless stated otherwise. All randomness comes from the CPU
``torch.Generator`` passed in (see :func:`generator`), so the same inputs give bitwise-identical outputs. The
names below are this module's interface to ``renditions``, not part of the package's API.
"""

from __future__ import annotations

import math
import zlib
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "LUMA",
    "WORK_LONG",
    "Voronoi",
    "blur",
    "colour",
    "coords",
    "dog",
    "edge_tangent",
    "fractal",
    "generator",
    "gradient_map",
    "ink_from_dog",
    "kmeans",
    "kuwahara",
    "lerp",
    "lum",
    "noise",
    "quantiles",
    "rand",
    "randn",
    "relief",
    "relight",
    "resize",
    "saturate",
    "segment_stats",
    "smoothstep",
    "sobel",
    "stroke_texture",
    "tone",
    "uniform",
    "voronoi",
    "warp",
    "work_size",
]

Tensor = torch.Tensor

#: Long side (pixels) of the working resolution used for smooth intermediate fields.
WORK_LONG = 1024

LUMA = (0.299, 0.587, 0.114)


def generator(seed: int, salt: str) -> torch.Generator:
    """A CPU generator seeded from ``seed`` and a stable salt (``zlib.crc32``, not the per-process ``hash``)."""
    mixed = (int(seed) * 0x9E3779B97F4A7C15 + zlib.crc32(salt.encode("utf-8"))) % (1 << 63)
    return torch.Generator().manual_seed(mixed)


def uniform(gen: torch.Generator) -> float:
    return float(torch.rand((), generator=gen))


def rand(gen: torch.Generator, *shape: int, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=gen).to(like.device)


def randn(gen: torch.Generator, *shape: int, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=gen).to(like.device)


def lum(x: Tensor) -> Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def saturate(x: Tensor, amount: float) -> Tensor:
    luma = lum(x)
    return luma + (x - luma) * amount


def lerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    return a + (b - a) * t


def colour(rgb: tuple[float, float, float], like: Tensor) -> Tensor:
    return like.new_tensor(rgb).view(1, 3, 1, 1)


def smoothstep(e0: float, e1: float, x: Tensor) -> Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def resize(x: Tensor, h: int, w: int, mode: str = "bilinear") -> Tensor:
    h, w = max(1, int(h)), max(1, int(w))
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=(h, w), mode="nearest")
    down = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode=mode, align_corners=False, antialias=down)


def work_size(h: int, w: int, max_long: int = WORK_LONG) -> tuple[int, int]:
    long = max(h, w)
    if long <= max_long:
        return h, w
    f = max_long / long
    return max(1, round(h * f)), max(1, round(w * f))


def _conv_sep(x: Tensor, k: list[float]) -> Tensor:
    """Separable convolution with a short symmetric 1-D kernel (replicated borders), by shifted slices."""
    r = (len(k) - 1) // 2
    if r == 0:
        return x
    h, w = x.shape[-2:]
    p = F.pad(x, (r, r, 0, 0), mode="replicate")
    y = p[..., :, 0:w] * k[0]
    for i in range(1, len(k)):
        y = y.add_(p[..., :, i : i + w], alpha=k[i])
    p = F.pad(y, (0, 0, r, r), mode="replicate")
    y = p[..., 0:h, :] * k[0]
    for i in range(1, len(k)):
        y = y.add_(p[..., i : i + h, :], alpha=k[i])
    return y


def _gauss_taps(sigma: float) -> list[float]:
    r = max(1, int(math.ceil(2.5 * sigma)))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    s = sum(taps)
    return [t / s for t in taps]


def blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian-like blur. Small sigma: exact separable taps. Large sigma: downsample (antialiased), blur by about
    one pixel, upsample bilinearly; the resampling filters supply most of the blur, so cost is ~O(pixels)."""
    if sigma < 0.35:
        return x
    if sigma <= 1.2:
        return _conv_sep(x, _gauss_taps(sigma))
    h, w = x.shape[-2:]
    f = sigma / 1.2
    hs, ws = max(1, round(h / f)), max(1, round(w / f))
    if hs >= h and ws >= w:
        return _conv_sep(x, _gauss_taps(sigma))
    f = max(h / hs, w / ws)
    # down- and up-sampling by f each act like a triangle filter of variance f^2 / 6
    residual = math.sqrt(max(sigma * sigma - f * f / 3.0, 0.0)) / f
    small = blur(resize(x, hs, ws), min(residual, 1.2))
    return resize(small, h, w)


def _cumsum_rows(x: Tensor) -> Tensor:
    """Cumulative sum down the rows (dim -2). ``Tensor.cumsum(-2)`` walks memory with a stride and is several
    times slower on CPU than this loop of contiguous row additions."""
    y = x.clone()
    for i in range(1, y.shape[-2]):
        y[..., i, :] += y[..., i - 1, :]
    return y


def sobel(x: Tensor) -> tuple[Tensor, Tensor]:
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (
        2 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
        + (p[..., :-2, 2:] - p[..., :-2, :-2])
        + (p[..., 2:, 2:] - p[..., 2:, :-2])
    ) / 8
    gy = (
        2 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
        + (p[..., 2:, :-2] - p[..., :-2, :-2])
        + (p[..., 2:, 2:] - p[..., :-2, 2:])
    ) / 8
    return gx, gy


def quantiles(x: Tensor, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a (strided subsample of a) tensor."""
    flat = x.reshape(-1)
    step = max(1, flat.numel() // 65536)
    sample = flat[::step].float()
    return [float(v) for v in torch.quantile(sample, sample.new_tensor(qs))]


def tone(lum: Tensor, lo_q: float = 0.01, hi_q: float = 0.99, equalise: float = 0.0) -> Tensor:
    """Robust auto-levels of a luminance map to [0, 1], optionally blended with histogram equalisation (which
    spreads the tones of very dark or very light pictures over the whole range)."""
    lo, hi = quantiles(lum, (lo_q, hi_q))
    stretched = ((lum - lo) / max(hi - lo, 1e-3)).clamp(0, 1)
    if equalise <= 0:
        return stretched
    levels = torch.linspace(0, 1, 65, device=lum.device)
    flat = lum.reshape(-1)
    sample = flat[:: max(1, flat.numel() // 65536)].float()
    vals = torch.quantile(sample, levels)
    vals = torch.maximum(vals, torch.cummax(vals, 0).values)
    idx = torch.bucketize(lum.contiguous(), vals[1:-1])
    lo_v, hi_v = vals[idx], vals[idx + 1]
    frac = ((lum - lo_v) / (hi_v - lo_v).clamp(min=1e-6)).clamp(0, 1)
    eq = (idx.to(lum.dtype) + frac) / 64
    return lerp(stretched, eq, equalise)


def relight(x: Tensor, equalise: float = 0.5, lo_q: float = 0.01, hi_q: float = 0.99) -> Tensor:
    """Auto-levels (partly equalised) applied to the luminance only, keeping each pixel's hue and chroma ratio."""
    luma = lum(x)
    toned = tone(luma, lo_q, hi_q, equalise=equalise)
    # scale towards the new luminance; near black, mix in grey so that shadows can brighten at all
    gain = (toned + 0.02) / (luma + 0.02)
    return (x * gain).clamp(0, 1)


def noise(gen: torch.Generator, h: int, w: int, cells: float, like: Tensor, channels: int = 1) -> Tensor:
    """Smooth value noise, about N(0, 1), with roughly ``cells`` blobs along the long side."""
    long = max(h, w)
    cell = long / max(cells, 1e-3)
    gh = int(max(2, min(h + 2, round(h / cell) + 3)))
    gw = int(max(2, min(w + 2, round(w / cell) + 3)))
    base = randn(gen, 1, channels, gh, gw, like=like)
    mh, mw = min(h, gh * 8), min(w, gw * 8)
    if mh > gh and mw > gw:
        base = F.interpolate(base, size=(mh, mw), mode="bicubic", align_corners=True)
    base = base / base.std().clamp(min=1e-6)
    return F.interpolate(base, size=(h, w), mode="bilinear", align_corners=True)


def fractal(gen: torch.Generator, h: int, w: int, cells: float, octaves: int, like: Tensor) -> Tensor:
    out = noise(gen, h, w, cells, like)
    amp, total = 0.5, 1.0
    for i in range(1, octaves):
        out = out + amp * noise(gen, h, w, cells * 2**i, like)
        total += amp * amp
        amp *= 0.5
    return out / math.sqrt(total)


def coords(h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates as 1x1xHx1 and 1x1x1xW tensors."""
    ys = (torch.arange(h, dtype=torch.float32, device=like.device) + 0.5).view(1, 1, h, 1)
    xs = (torch.arange(w, dtype=torch.float32, device=like.device) + 0.5).view(1, 1, 1, w)
    return ys, xs


def dog(lum: Tensor, sigma: float, k: float = 1.6) -> Tensor:
    """Difference of Gaussians (negative on the dark side of an edge)."""
    return blur(lum, sigma) - blur(lum, sigma * k)


def ink_from_dog(d: Tensor, strength: float, eps: float) -> Tensor:
    return torch.tanh(((-d - eps) * strength).clamp(min=0))


def segment_stats(values: Tensor, ids: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Per-segment sums (float64) of each channel of ``values`` (C x H x W) over ``ids`` (H x W), and counts."""
    flat = ids.reshape(-1)
    counts = torch.bincount(flat, minlength=n).double()
    sums = torch.stack([torch.bincount(flat, weights=v.reshape(-1).double(), minlength=n) for v in values])
    return sums, counts


class Voronoi(NamedTuple):
    ids: Tensor  # H x W int64 cell index (row-major over the gh x gw seed grid)
    n: int  # number of cells (gh * gw)
    d1: Tensor  # H x W distance to the nearest seed (pixels)
    edge: Tensor | None  # H x W distance to the nearest cell border (pixels), if requested
    seeds: Tensor  # n x 2 (y, x) seed positions (pixels)


_NEIGHBOURS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]


def voronoi(
    h: int, w: int, cell: int, jitter: float, gen: torch.Generator, like: Tensor, with_edges: bool = True
) -> Voronoi:
    """Voronoi diagram of a jittered grid of seeds, one per ``cell`` x ``cell`` block.

    The image is viewed as a (gh, cell, gw, cell) block array, so the 3x3 neighbouring seeds of every pixel are
    broadcast from small per-block tensors instead of gathered per pixel. With ``with_edges`` it also returns the
    exact distance from each pixel to the bisector with its second-nearest seed (the cell border).
    """
    dev = like.device
    c = max(1, int(cell))
    gh, gw = -(-h // c), -(-w // c)
    jit = torch.rand(2, gh, gw, generator=gen).to(dev)
    local = (0.5 + jitter * (jit - 0.5)) * c  # seed position inside its block, 2 x gh x gw
    far = 1e4 * c
    padded = F.pad(local, (1, 1, 1, 1), value=far)  # out-of-range neighbours never win
    pix = torch.arange(c, dtype=torch.float32, device=dev) + 0.5
    best = torch.full((gh, c, gw, c), float("inf"), device=dev)
    code = torch.zeros((gh, c, gw, c), dtype=torch.uint8, device=dev)
    second = torch.full_like(best, float("inf")) if with_edges else best
    code2 = torch.zeros_like(code) if with_edges else code
    nb_y, nb_x = [], []
    for k, (di, dj) in enumerate(_NEIGHBOURS):
        sy = padded[0, 1 + di : 1 + di + gh, 1 + dj : 1 + dj + gw] + di * c
        sx = padded[1, 1 + di : 1 + di + gh, 1 + dj : 1 + dj + gw] + dj * c
        nb_y.append(sy)
        nb_x.append(sx)
        dy2 = (pix.view(1, c, 1, 1) - sy.view(gh, 1, gw, 1)) ** 2
        dx2 = (pix.view(1, 1, 1, c) - sx.view(gh, 1, gw, 1)) ** 2
        d = dy2 + dx2
        closer = d < best
        kk = torch.tensor(k, dtype=torch.uint8, device=dev)
        if with_edges:
            code2 = torch.where(closer, code, torch.where(d < second, kk, code2))
            second = torch.where(closer, best, torch.minimum(second, d))
        best = torch.minimum(best, d)
        code = torch.where(closer, kk, code)
    offsets = torch.tensor([di * gw + dj for di, dj in _NEIGHBOURS], device=dev)
    block_id = torch.arange(gh, device=dev).view(gh, 1, 1, 1) * gw + torch.arange(gw, device=dev).view(1, 1, gw, 1)
    ids = (block_id + offsets[code.long()]).reshape(gh * c, gw * c)[:h, :w]
    d1 = best.sqrt().reshape(gh * c, gw * c)[:h, :w]
    edge = None
    if with_edges:
        ny, nx = torch.stack(nb_y, -1), torch.stack(nb_x, -1)  # gh x gw x 9
        sep = torch.sqrt((ny.unsqueeze(-1) - ny.unsqueeze(-2)) ** 2 + (nx.unsqueeze(-1) - nx.unsqueeze(-2)) ** 2)
        sep = sep.clamp(min=1e-3).reshape(gh, 1, gw, 1, 81)
        pair = (code.long() * 9 + code2.long()).unsqueeze(-1)
        sep_px = torch.gather(sep.expand(gh, c, gw, c, 81), 4, pair).squeeze(-1)
        edge = ((second - best) / (2 * sep_px)).reshape(gh * c, gw * c)[:h, :w]
    gy = torch.arange(gh, device=dev).view(gh, 1) * c + local[0]
    gx = torch.arange(gw, device=dev).view(1, gw) * c + local[1]
    seeds = torch.stack([gy.expand(gh, gw).reshape(-1), gx.expand(gh, gw).reshape(-1)], 1)
    return Voronoi(ids.contiguous(), gh * gw, d1.contiguous(), None if edge is None else edge.contiguous(), seeds)


def _box_sums(rows: Tensor, h: int, w: int, pad: int, y0: int, y1: int, x0: int, x1: int) -> Tensor:
    """Window means over offsets [y0, y1] x [x0, x1] around every pixel, from ``rows``: the row-wise cumulative
    sum (with a leading zero column) of an image padded by ``pad`` on every side."""
    a, b = pad + x0, pad + x1 + 1
    horiz = rows[..., b : b + w] - rows[..., a : a + w]  # (h + 2 pad) x w row sums
    cols = _cumsum_rows(F.pad(horiz, (0, 0, 1, 0)))
    a, b = pad + y0, pad + y1 + 1
    return (cols[..., b : b + h, :] - cols[..., a : a + h, :]) / ((y1 - y0 + 1) * (x1 - x0 + 1))


def kuwahara(x: Tensor, r: int, sharpness: float = 8.0) -> Tensor:
    """Smooth 8-region Kuwahara filter.

    Around each pixel, eight (r+1)-sized square regions are considered: the four classic quadrants and four squares
    centred on the pixel's top, bottom, left and right (they soften the blocky look of the 4-quadrant version).
    The regions' mean colours are blended with weights that strongly favour the lowest-variance one
    (``sharpness`` -> inf gives the classic argmin). Window means come from separable cumulative sums of a
    centred image (float32 is accurate enough since every row restarts), and the eight regions are shifted views
    of just three window shapes, so the cost does not depend on ``r``.
    """
    if r <= 0:
        return x
    _, c, h, w = x.shape
    luma = lum(x)
    stack = torch.cat([x, luma, luma * luma], 1) - 0.5
    q = r // 2
    pad = r
    # the three window shapes, each evaluated on a grid extended by ``ext`` so that shifted views give every region
    ext = r
    big = F.pad(stack, (pad + ext, pad + ext, pad + ext, pad + ext), mode="replicate")
    rows = F.pad(big, (1, 0)).cumsum(-1)
    hh, ww = h + 2 * ext, w + 2 * ext
    sq = _box_sums(rows, hh, ww, pad, 0, r, 0, r)  # (r+1) x (r+1), anchored at its top-left
    tall = _box_sums(rows, hh, ww, pad, 0, r, -q, q)  # (r+1) rows x (2q+1) cols, anchored at its top row
    wide = _box_sums(rows, hh, ww, pad, -q, q, 0, r)  # (2q+1) rows x (r+1) cols, anchored at its left column

    def at(m: Tensor, dy: int, dx: int) -> Tensor:
        return m[..., ext + dy : ext + dy + h, ext + dx : ext + dx + w]

    regions = [
        at(sq, -r, -r),
        at(sq, -r, 0),
        at(sq, 0, -r),
        at(sq, 0, 0),
        at(tall, -r, 0),
        at(tall, 0, 0),
        at(wide, 0, -r),
        at(wide, 0, 0),
    ]
    stats = torch.stack(regions)  # 8 x 1 x (c + 2) x H x W
    means = stats[:, :, :c] + 0.5
    l_mean = stats[:, :, c : c + 1] + 0.5
    var = ((stats[:, :, c + 1 : c + 2] + 0.5) - l_mean * l_mean).clamp(min=0)  # E[l^2] - E[l]^2
    wts = torch.softmax(-sharpness * var / var.mean().clamp(min=1e-8), dim=0)
    return (wts * means).sum(0)


def relief(height: Tensor, light: tuple[float, float] = (-0.6, -0.8)) -> Tensor:
    """Directional emboss: shading of a height field lit from the top-left (zero on flat areas)."""
    gx, gy = sobel(height)
    return -(gx * light[1] + gy * light[0])


def edge_tangent(lum: Tensor, sigma: float, prior: float = 0.0, prior_angle: float = 0.0) -> Tensor:
    """Angle (radians) of the local edge tangent, from the smoothed structure tensor.

    ``prior`` (relative to the mean gradient energy) adds a constant tensor whose tangent is ``prior_angle``, so
    flat, structureless areas get a coherent direction instead of noise.
    """
    gx, gy = sobel(lum)
    j = blur(torch.cat([gx * gx, gx * gy, gy * gy], 1), sigma)
    if prior > 0:
        e = prior * float((j[:, 0] + j[:, 2]).mean())
        gxp, gyp = -math.sin(prior_angle), math.cos(prior_angle)  # gradient direction of the prior
        j = j + j.new_tensor([e * gxp * gxp, e * gxp * gyp, e * gyp * gyp]).view(1, 3, 1, 1)
    grad_angle = 0.5 * torch.atan2(2 * j[:, 1:2], j[:, 0:1] - j[:, 2:3])
    return grad_angle + math.pi / 2


# Eight integer step vectors (dy, dx), about 22.5 degrees apart, starting at 0 degrees (pointing along +x).
_STROKE_STEPS = [(0, 1), (1, 2), (1, 1), (2, 1), (1, 0), (2, -1), (1, -1), (1, -2)]


def stroke_texture(gen: torch.Generator, angle: Tensor, length: float, width: float, like: Tensor) -> Tensor:
    """Brush-stroke height field: noise about ``width`` pixels across, smeared ``length`` pixels along the local
    stroke direction ``angle`` (1x1xHxW, radians).

    The noise is motion-blurred along eight fixed directions (a box of 2^k steps built by k shift-and-add
    doublings, so the cost is logarithmic in the length) and each pixel interpolates between the two smears whose
    directions bracket its own.
    """
    _, _, h, w = angle.shape
    field = noise(gen, h, w, max(h, w) / max(width, 1.0), like)
    smears = []
    for dy, dx in _STROKE_STEPS:
        k = max(1, round(math.log2(max(length / math.hypot(dy, dx), 2.0))))
        acc = field
        for j in range(k):  # wrapping around the border is invisible on stationary noise
            acc = acc + torch.roll(acc, shifts=(dy << j, dx << j), dims=(-2, -1))
        smears.append(acc[0] / (1 << k))
    stack = torch.cat(smears)  # 8 x H x W
    a = torch.remainder(angle[0], math.pi) / (math.pi / 8)
    i0 = a.floor().long().clamp(0, 7)
    f = a - i0
    i1 = (i0 + 1) % 8
    out = torch.gather(stack, 0, i0) * (1 - f) + torch.gather(stack, 0, i1) * f
    out = out.unsqueeze(0)
    return out / out.std().clamp(min=1e-6)


def warp(x: Tensor, gen: torch.Generator, cells: float, amount: float) -> Tensor:
    """Displace ``x`` by a smooth random field (``amount`` pixels, ``cells`` features along the long side)."""
    _, _, h, w = x.shape
    ys, xs = coords(h, w, x)
    gy = (ys + fractal(gen, h, w, cells, 3, x) * amount) / h * 2 - 1
    gx = (xs + fractal(gen, h, w, cells, 3, x) * amount) / w * 2 - 1
    grid = torch.cat([gx, gy], 1).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _nearest(points: Tensor, centres: Tensor) -> Tensor:
    """Index of the nearest centre (k x D) for each of N x D points (a running minimum over the centres)."""
    best = torch.full((points.shape[0],), float("inf"), device=points.device)
    labels = torch.zeros(points.shape[0], dtype=torch.long, device=points.device)
    for k in range(centres.shape[0]):
        d = ((points - centres[k]) ** 2).sum(1)
        labels = torch.where(d < best, k, labels)
        best = torch.minimum(best, d)
    return labels


def kmeans(points: Tensor, k: int, iters: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """k-means (seeded k-means++ initialisation) on N x D points; returns centres (k x D) and labels (N)."""
    n = points.shape[0]
    k = max(1, min(k, n))
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [points[first]]
    d2 = ((points - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = (d2 + 1e-12).cpu().double()
        i = int(torch.multinomial(probs / probs.sum(), 1, generator=gen))
        centres.append(points[i])
        d2 = torch.minimum(d2, ((points - points[i]) ** 2).sum(1))
    c = torch.stack(centres)
    for _ in range(iters):
        labels = _nearest(points, c)
        sums, counts = segment_stats(points.T, labels, k)
        counts = counts.unsqueeze(1)
        c = torch.where(counts > 0, (sums.T / counts.clamp(min=1)).to(c.dtype), c)
    return c, _nearest(points, c)


def gradient_map(t: Tensor, stops: list[tuple[float, float, float]]) -> Tensor:
    """Map a 1-channel tensor in [0, 1] through a piecewise-linear colour ramp with evenly spaced stops."""
    pal = t.new_tensor(stops)  # S x 3
    s = pal.shape[0] - 1
    pos = t.clamp(0, 1) * s
    i0 = pos.floor().clamp(max=s - 1).long()
    f = pos - i0
    c0 = pal[i0[:, 0]].permute(0, 3, 1, 2)
    c1 = pal[i0[:, 0] + 1].permute(0, 3, 1, 2)
    return c0 + (c1 - c0) * f
