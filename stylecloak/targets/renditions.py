"""Built-in target-style renditions, computed from the artwork itself in plain PyTorch (no model weights).

Each rendition is a small frozen dataclass with a ``name``, a one-line ``description`` and a
``render(image, seed=0)`` method (the :class:`stylecloak.targets.base.TargetStyle` protocol).

Design notes
------------
* **Relative scale.** Every length is a fraction of the image's long side (``unit`` = long side / 1000), so a
  rendition looks the same at 512 px and at 3000 px.
* **Speed.** Smooth quantities (tone, colour, edge-distance, structure) are computed at a working resolution of
  at most :data:`WORK_LONG` pixels on the long side and upsampled bilinearly; only cheap element-wise steps
  (thresholding a distance field into a crisp line, analytic hatch/dot patterns) run at full resolution. Because
  thresholds are applied *after* upsampling a continuous field, lines and cell borders stay sharp at any size.
  Box filters use cumulative sums, Voronoi cells use a block layout with broadcasting instead of gathers, and
  cell/facet statistics use ``bincount`` on a strided subsample.
* **Determinism.** All randomness comes from a CPU ``torch.Generator`` seeded from ``seed`` and the rendition's
  name (``zlib.crc32``, not the salted ``hash``); the same input and seed give bitwise-identical output.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "BUILTIN_RENDITIONS",
    "WORK_LONG",
    "Cubist",
    "Impasto",
    "InkHatching",
    "Mosaic",
    "NeonSketch",
    "PixelArt",
    "Pointillism",
    "PopArt",
    "Watercolour",
    "Woodcut",
]

Tensor = torch.Tensor

#: Long side (pixels) of the working resolution used for smooth intermediate fields.
WORK_LONG = 1024

_LUMA = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------------------------------------------
# Small image-processing toolkit. Images are 1 x C x H x W float32 tensors unless stated otherwise.
# ---------------------------------------------------------------------------------------------------------------


def _generator(seed: int, salt: str) -> torch.Generator:
    """A CPU generator seeded from ``seed`` and a stable salt (``zlib.crc32``, not the per-process ``hash``)."""
    mixed = (int(seed) * 0x9E3779B97F4A7C15 + zlib.crc32(salt.encode("utf-8"))) % (1 << 63)
    return torch.Generator().manual_seed(mixed)


def _uniform(gen: torch.Generator) -> float:
    return float(torch.rand((), generator=gen))


def _rand(gen: torch.Generator, *shape: int, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=gen).to(like.device)


def _randn(gen: torch.Generator, *shape: int, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=gen).to(like.device)


def _lum(x: Tensor) -> Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _saturate(x: Tensor, amount: float) -> Tensor:
    lum = _lum(x)
    return lum + (x - lum) * amount


def _lerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    return a + (b - a) * t


def _colour(rgb: tuple[float, float, float], like: Tensor) -> Tensor:
    return like.new_tensor(rgb).view(1, 3, 1, 1)


def _smoothstep(e0: float, e1: float, x: Tensor) -> Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _resize(x: Tensor, h: int, w: int, mode: str = "bilinear") -> Tensor:
    h, w = max(1, int(h)), max(1, int(w))
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=(h, w), mode="nearest")
    down = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode=mode, align_corners=False, antialias=down)


def _work_size(h: int, w: int, max_long: int = WORK_LONG) -> tuple[int, int]:
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


def _blur(x: Tensor, sigma: float) -> Tensor:
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
    small = _blur(_resize(x, hs, ws), min(residual, 1.2))
    return _resize(small, h, w)


def _cumsum_rows(x: Tensor) -> Tensor:
    """Cumulative sum down the rows (dim -2). ``Tensor.cumsum(-2)`` walks memory with a stride and is several
    times slower on CPU than this loop of contiguous row additions."""
    y = x.clone()
    for i in range(1, y.shape[-2]):
        y[..., i, :] += y[..., i - 1, :]
    return y


def _sobel(x: Tensor) -> tuple[Tensor, Tensor]:
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


def _quantiles(x: Tensor, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a (strided subsample of a) tensor."""
    flat = x.reshape(-1)
    step = max(1, flat.numel() // 65536)
    sample = flat[::step].float()
    return [float(v) for v in torch.quantile(sample, sample.new_tensor(qs))]


def _tone(lum: Tensor, lo_q: float = 0.01, hi_q: float = 0.99, equalise: float = 0.0) -> Tensor:
    """Robust auto-levels of a luminance map to [0, 1], optionally blended with histogram equalisation (which
    spreads the tones of very dark or very light pictures over the whole range)."""
    lo, hi = _quantiles(lum, (lo_q, hi_q))
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
    return _lerp(stretched, eq, equalise)


def _relight(x: Tensor, equalise: float = 0.5, lo_q: float = 0.01, hi_q: float = 0.99) -> Tensor:
    """Auto-levels (partly equalised) applied to the luminance only, keeping each pixel's hue and chroma ratio."""
    lum = _lum(x)
    tone = _tone(lum, lo_q, hi_q, equalise=equalise)
    # scale towards the new luminance; near black, mix in grey so that shadows can brighten at all
    gain = (tone + 0.02) / (lum + 0.02)
    return (x * gain).clamp(0, 1)


def _noise(gen: torch.Generator, h: int, w: int, cells: float, like: Tensor, channels: int = 1) -> Tensor:
    """Smooth value noise, about N(0, 1), with roughly ``cells`` blobs along the long side."""
    long = max(h, w)
    cell = long / max(cells, 1e-3)
    gh = int(max(2, min(h + 2, round(h / cell) + 3)))
    gw = int(max(2, min(w + 2, round(w / cell) + 3)))
    base = _randn(gen, 1, channels, gh, gw, like=like)
    mh, mw = min(h, gh * 8), min(w, gw * 8)
    if mh > gh and mw > gw:
        base = F.interpolate(base, size=(mh, mw), mode="bicubic", align_corners=True)
    base = base / base.std().clamp(min=1e-6)
    return F.interpolate(base, size=(h, w), mode="bilinear", align_corners=True)


def _fractal(gen: torch.Generator, h: int, w: int, cells: float, octaves: int, like: Tensor) -> Tensor:
    out = _noise(gen, h, w, cells, like)
    amp, total = 0.5, 1.0
    for i in range(1, octaves):
        out = out + amp * _noise(gen, h, w, cells * 2**i, like)
        total += amp * amp
        amp *= 0.5
    return out / math.sqrt(total)


def _coords(h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates as 1x1xHx1 and 1x1x1xW tensors."""
    ys = (torch.arange(h, dtype=torch.float32, device=like.device) + 0.5).view(1, 1, h, 1)
    xs = (torch.arange(w, dtype=torch.float32, device=like.device) + 0.5).view(1, 1, 1, w)
    return ys, xs


def _dog(lum: Tensor, sigma: float, k: float = 1.6) -> Tensor:
    """Difference of Gaussians (negative on the dark side of an edge)."""
    return _blur(lum, sigma) - _blur(lum, sigma * k)


def _ink_from_dog(d: Tensor, strength: float, eps: float) -> Tensor:
    return torch.tanh(((-d - eps) * strength).clamp(min=0))


def _segment_stats(values: Tensor, ids: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Per-segment sums (float64) of each channel of ``values`` (C x H x W) over ``ids`` (H x W), and counts."""
    flat = ids.reshape(-1)
    counts = torch.bincount(flat, minlength=n).double()
    sums = torch.stack([torch.bincount(flat, weights=v.reshape(-1).double(), minlength=n) for v in values])
    return sums, counts


class _Voronoi(NamedTuple):
    ids: Tensor  # H x W int64 cell index (row-major over the gh x gw seed grid)
    n: int  # number of cells (gh * gw)
    d1: Tensor  # H x W distance to the nearest seed (pixels)
    edge: Tensor | None  # H x W distance to the nearest cell border (pixels), if requested
    seeds: Tensor  # n x 2 (y, x) seed positions (pixels)


_NEIGHBOURS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]


def _voronoi(
    h: int, w: int, cell: int, jitter: float, gen: torch.Generator, like: Tensor, with_edges: bool = True
) -> _Voronoi:
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
    return _Voronoi(ids.contiguous(), gh * gw, d1.contiguous(), None if edge is None else edge.contiguous(), seeds)


def _box_sums(rows: Tensor, h: int, w: int, pad: int, y0: int, y1: int, x0: int, x1: int) -> Tensor:
    """Window means over offsets [y0, y1] x [x0, x1] around every pixel, from ``rows``: the row-wise cumulative
    sum (with a leading zero column) of an image padded by ``pad`` on every side."""
    a, b = pad + x0, pad + x1 + 1
    horiz = rows[..., b : b + w] - rows[..., a : a + w]  # (h + 2 pad) x w row sums
    cols = _cumsum_rows(F.pad(horiz, (0, 0, 1, 0)))
    a, b = pad + y0, pad + y1 + 1
    return (cols[..., b : b + h, :] - cols[..., a : a + h, :]) / ((y1 - y0 + 1) * (x1 - x0 + 1))


def _kuwahara(x: Tensor, r: int, sharpness: float = 8.0) -> Tensor:
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
    lum = _lum(x)
    stack = torch.cat([x, lum, lum * lum], 1) - 0.5
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


def _relief(height: Tensor, light: tuple[float, float] = (-0.6, -0.8)) -> Tensor:
    """Directional emboss: shading of a height field lit from the top-left (zero on flat areas)."""
    gx, gy = _sobel(height)
    return -(gx * light[1] + gy * light[0])


def _edge_tangent(lum: Tensor, sigma: float, prior: float = 0.0, prior_angle: float = 0.0) -> Tensor:
    """Angle (radians) of the local edge tangent, from the smoothed structure tensor.

    ``prior`` (relative to the mean gradient energy) adds a constant tensor whose tangent is ``prior_angle``, so
    flat, structureless areas get a coherent direction instead of noise.
    """
    gx, gy = _sobel(lum)
    j = _blur(torch.cat([gx * gx, gx * gy, gy * gy], 1), sigma)
    if prior > 0:
        e = prior * float((j[:, 0] + j[:, 2]).mean())
        gxp, gyp = -math.sin(prior_angle), math.cos(prior_angle)  # gradient direction of the prior
        j = j + j.new_tensor([e * gxp * gxp, e * gxp * gyp, e * gyp * gyp]).view(1, 3, 1, 1)
    grad_angle = 0.5 * torch.atan2(2 * j[:, 1:2], j[:, 0:1] - j[:, 2:3])
    return grad_angle + math.pi / 2


# Eight integer step vectors (dy, dx), about 22.5 degrees apart, starting at 0 degrees (pointing along +x).
_STROKE_STEPS = [(0, 1), (1, 2), (1, 1), (2, 1), (1, 0), (2, -1), (1, -1), (1, -2)]


def _stroke_texture(gen: torch.Generator, angle: Tensor, length: float, width: float, like: Tensor) -> Tensor:
    """Brush-stroke height field: noise about ``width`` pixels across, smeared ``length`` pixels along the local
    stroke direction ``angle`` (1x1xHxW, radians).

    The noise is motion-blurred along eight fixed directions (a box of 2^k steps built by k shift-and-add
    doublings, so the cost is logarithmic in the length) and each pixel interpolates between the two smears whose
    directions bracket its own.
    """
    _, _, h, w = angle.shape
    noise = _noise(gen, h, w, max(h, w) / max(width, 1.0), like)
    smears = []
    for dy, dx in _STROKE_STEPS:
        k = max(1, round(math.log2(max(length / math.hypot(dy, dx), 2.0))))
        acc = noise
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


def _warp(x: Tensor, gen: torch.Generator, cells: float, amount: float) -> Tensor:
    """Displace ``x`` by a smooth random field (``amount`` pixels, ``cells`` features along the long side)."""
    _, _, h, w = x.shape
    ys, xs = _coords(h, w, x)
    gy = (ys + _fractal(gen, h, w, cells, 3, x) * amount) / h * 2 - 1
    gx = (xs + _fractal(gen, h, w, cells, 3, x) * amount) / w * 2 - 1
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


def _kmeans(points: Tensor, k: int, iters: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
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
        sums, counts = _segment_stats(points.T, labels, k)
        counts = counts.unsqueeze(1)
        c = torch.where(counts > 0, (sums.T / counts.clamp(min=1)).to(c.dtype), c)
    return c, _nearest(points, c)


def _gradient_map(t: Tensor, stops: list[tuple[float, float, float]]) -> Tensor:
    """Map a 1-channel tensor in [0, 1] through a piecewise-linear colour ramp with evenly spaced stops."""
    pal = t.new_tensor(stops)  # S x 3
    s = pal.shape[0] - 1
    pos = t.clamp(0, 1) * s
    i0 = pos.floor().clamp(max=s - 1).long()
    f = pos - i0
    c0 = pal[i0[:, 0]].permute(0, 3, 1, 2)
    c1 = pal[i0[:, 0] + 1].permute(0, 3, 1, 2)
    return c0 + (c1 - c0) * f


# ---------------------------------------------------------------------------------------------------------------
# Renditions
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rendition:
    """Shared plumbing: input checks, a fresh seeded generator per image, batch loop, clamping and dtype."""

    name: str = ""
    description: str = ""

    def render(self, image: Tensor, seed: int = 0) -> Tensor:
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an Nx3xHxW image tensor, got {getattr(image, 'shape', type(image))}")
        if not image.is_floating_point():
            raise TypeError(f"expected a floating-point image in [0, 1], got {image.dtype}")
        with torch.no_grad():
            x = torch.nan_to_num(image.detach().to(torch.float32), nan=0.0).clamp(0, 1)
            outs = []
            for i in range(x.shape[0]):
                out = self._render(x[i : i + 1].contiguous(), _generator(seed, self.name))
                outs.append(out.to(torch.float32).clamp(0, 1))
            return torch.cat(outs).to(image.dtype).contiguous()

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Mosaic(_Rendition):
    name: str = "mosaic"
    description: str = "Stained-glass mosaic: irregular cells of flat colour separated by dark lead lines."
    cells_across: float = 40.0  # cells along the long side
    lead_width: float = 0.13  # lead line width relative to the cell size
    saturation: float = 1.45

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = _work_size(h, w)
        scale = max(h, w) / max(hw, ww)
        xw = _resize(x, hw, ww)
        cell = max(2, round(max(hw, ww) / self.cells_across))
        vor = _voronoi(hw, ww, cell, 0.95, gen, x)
        assert vor.edge is not None
        step = max(1, cell // 8)
        sums, counts = _segment_stats(xw[0, :, ::step, ::step], vor.ids[::step, ::step], vor.n)
        means = (sums / counts.clamp(min=1)).float()  # 3 x n
        lum = 0.299 * means[0] + 0.587 * means[1] + 0.114 * means[2]
        means = lum + (means - lum) * self.saturation
        means = (means * (1 + 0.07 * _randn(gen, 1, vor.n, like=x))).clamp(0, 1)
        colour = means[:, vor.ids].unsqueeze(0)
        # glass: a little brighter in the middle of each piece, with a faint streaky texture
        glow = 1.1 - 0.25 * (vor.d1 / cell).clamp(max=1.0) ** 2
        streak = 1 + 0.05 * _noise(gen, hw, ww, max(hw, ww) / max(cell * 0.3, 1.0), x)[0, 0]
        colour = _resize(colour * (glow * streak), h, w)
        edge = _resize(vor.edge[None, None], h, w) * scale
        lead = max(1.0, self.lead_width * cell * scale)
        inside = (edge - lead / 2 + 0.5).clamp(0, 1)
        return _lerp(_colour((0.06, 0.05, 0.05), x), colour, inside)


@dataclass(frozen=True)
class Pointillism(_Rendition):
    name: str = "pointillism"
    description: str = "Pointillism: round dots of pure, saturated colour on a light ground (Seurat)."
    dots_across: float = 110.0  # dot grid spacing = long side / dots_across
    layers: int = 4
    saturation: float = 1.8

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        c = max(2, round(long / self.dots_across))
        # colour source: a small, light, saturated version of the picture
        hs, ws = _work_size(h, w, max(8, int(self.dots_across * 2)))
        small = _relight(_resize(x, hs, ws), equalise=0.5)
        small = 0.06 + 0.94 * small.clamp(min=1e-4) ** 0.8
        small = _saturate(small, self.saturation).clamp(0, 1)
        ground = _lerp(_colour((0.96, 0.93, 0.86), x), _resize(_blur(small, 3.0), h, w), 0.22)
        out = ground
        pix = torch.arange(c, dtype=torch.float32, device=x.device) + 0.5
        for _ in range(self.layers):
            oy, ox = int(_uniform(gen) * c), int(_uniform(gen) * c)
            gh, gw = -(-(h + oy) // c), -(-(w + ox) // c)
            # dot centres (global pixel coordinates) and their colours
            cy = torch.arange(gh, device=x.device).view(gh, 1) * c - oy
            cx = torch.arange(gw, device=x.device).view(1, gw) * c - ox
            u = _rand(gen, 4, gh, gw, like=x)
            sample_y = ((cy + c / 2) / h * 2 - 1).expand(gh, gw)
            sample_x = ((cx + c / 2) / w * 2 - 1).expand(gh, gw)
            grid = torch.stack([sample_x, sample_y], -1).unsqueeze(0)
            col = F.grid_sample(small, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
            col = (col + 0.11 * _randn(gen, 3, gh, gw, like=x)).clamp(0, 1)  # divisionist colour jitter
            dark = 1 - (0.299 * col[0] + 0.587 * col[1] + 0.114 * col[2])
            radius = (c * (0.28 + 0.24 * dark) * (0.85 + 0.3 * u[0])).clamp(max=0.5 * c)
            ly = radius + u[1] * (c - 2 * radius)
            lx = radius + u[2] * (c - 2 * radius)
            d = (pix.view(1, c, 1, 1) - ly.view(gh, 1, gw, 1)) ** 2 + (
                pix.view(1, 1, 1, c) - lx.view(gh, 1, gw, 1)
            ) ** 2
            cover = (radius.view(gh, 1, gw, 1) - d.sqrt() + 0.5).clamp(0, 1)
            cover = cover.reshape(1, 1, gh * c, gw * c)[..., oy : oy + h, ox : ox + w]
            dots = col.view(3, gh, 1, gw, 1).expand(3, gh, c, gw, c).reshape(1, 3, gh * c, gw * c)
            out = _lerp(out, dots[..., oy : oy + h, ox : ox + w], cover)
        return out


@dataclass(frozen=True)
class InkHatching(_Rendition):
    name: str = "ink-hatching"
    description: str = "Pen and ink: black cross-hatching on white paper, denser in the shadows, with inked outlines."
    lines_across: float = 150.0  # hatch spacing = long side / lines_across

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        unit = long / 1000.0
        hw, ww = _work_size(h, w)
        scale = long / max(hw, ww)
        uw = unit / scale  # one unit in working pixels
        lum_w = _lum(_resize(x, hw, ww))
        tone = _tone(_blur(lum_w, 1.5 * uw), equalise=0.5) ** 0.85
        tone = _resize(tone, h, w)
        spacing = max(3.0, long / self.lines_across)
        pen = max(0.9, 1.0 * unit)  # pen width in pixels
        ys, xs = _coords(h, w, x)
        ink = torch.zeros_like(tone)
        layers = ((45.0, 0.85), (-45.0, 0.62), (0.0, 0.42), (90.0, 0.24))
        for angle_deg, threshold in layers:
            angle = math.radians(angle_deg + 6 * (_uniform(gen) - 0.5))
            wobble = _noise(gen, h, w, 5.0, x) * 0.4
            u = (xs * math.cos(angle) + ys * math.sin(angle)) / spacing + wobble
            dist = (u - torch.round(u)).abs() * spacing  # pixels to the nearest line centre
            darkness = _smoothstep(threshold, threshold - 0.2, tone)
            half = pen * (0.3 + 0.7 * darkness)
            line = (half - dist + 0.5).clamp(0, 1) * darkness.sqrt()
            ink = torch.maximum(ink, line)
        # outlines: difference of Gaussians plus strong gradients, thresholded at full resolution
        dog = _resize(_dog(lum_w, max(0.6, 1.8 * uw)), h, w)
        gx, gy = _sobel(_blur(lum_w, max(0.6, 2.0 * uw)))
        mag = torch.sqrt(gx * gx + gy * gy)
        mag = _resize(mag / max(_quantiles(mag, (0.97,))[0], 1e-4), h, w)
        edges = torch.maximum(_ink_from_dog(dog, 60.0, 0.004), _smoothstep(0.5, 1.0, mag))
        ink = torch.maximum(ink, edges * 0.95)
        paper = _colour((0.97, 0.955, 0.92), x) * (1 - 0.02 * _noise(gen, h, w, 150.0, x))
        return _lerp(paper, _colour((0.06, 0.06, 0.09), x), ink)


@dataclass(frozen=True)
class Woodcut(_Rendition):
    name: str = "woodcut"
    description: str = "Woodcut print: stark black ink on cream paper, gouged lines following the tone, bold outlines."
    lines_across: float = 90.0

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        unit = long / 1000.0
        hw, ww = _work_size(h, w)
        scale = long / max(hw, ww)
        uw = unit / scale
        lum_w = _lum(_resize(x, hw, ww))
        tone_w = _tone(_blur(lum_w, 2.0 * uw), 0.03, 0.97, equalise=0.4)
        # the gouge lines bend with the large-scale tone so that they follow the forms
        flow_w = _blur(tone_w, 12 * uw) * 2.2
        tone = _resize(tone_w, h, w)
        flow = _resize(flow_w, h, w) + 0.25 * _noise(gen, h, w, 5.0, x)
        t = ((tone - 0.2) / 0.6).clamp(0, 1)  # deep shadows solid black, highlights clean paper
        spacing = max(3.0, long / self.lines_across)
        ys, xs = _coords(h, w, x)
        angle = math.radians(-20.0 + 40.0 * _uniform(gen))
        u = (xs * math.cos(angle) + ys * math.sin(angle)) / spacing + flow
        tri = (2 * (u - torch.floor(u)) - 1).abs()  # 0 at a gouge's centre, 1 on the ink ridge
        chisel = 0.08 * _noise(gen, h, w, self.lines_across * 1.5, x)
        ink = ((tri - t - chisel) * (spacing / 1.2) + 0.5).clamp(0, 1)
        dog = _resize(_dog(lum_w, max(0.7, 3.0 * uw)), h, w)
        outline = _ink_from_dog(dog + 0.0015, 45.0, 0.0)  # slightly wider than the hatching outlines
        ink = _smoothstep(0.3, 0.7, torch.maximum(ink, outline))
        paper = _colour((0.93, 0.87, 0.74), x) * (1 - 0.03 * _noise(gen, h, w, 120.0, x).clamp(min=0))
        return _lerp(paper, _colour((0.09, 0.07, 0.06), x), ink)


@dataclass(frozen=True)
class Cubist(_Rendition):
    name: str = "cubist"
    description: str = "Cubism: the scene broken into large angular facets shaded in muted ochres and greys."
    facets_across: float = 10.0  # coarse Voronoi cells along the long side
    cuts: int = 6  # straight lines cutting right across the picture
    detail: float = 0.65  # how much of the picture's own detail shows inside the planes

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = _work_size(h, w)
        long_w = max(hw, ww)
        scale = max(h, w) / long_w
        uw = long_w / 1000.0
        xw = _relight(_resize(x, hw, ww), equalise=0.25)
        cell = max(3, round(long_w / self.facets_across))
        vor = _voronoi(hw, ww, cell, 1.0, gen, x)
        assert vor.edge is not None
        ys, xs = _coords(hw, ww, x)
        ys, xs = ys[0, 0], xs[0, 0]  # H x 1, 1 x W
        code = torch.zeros((hw, ww), dtype=torch.long, device=x.device)
        line_dist = torch.full((hw, ww), float("inf"), device=x.device)
        for i in range(self.cuts):
            cy, cx = (0.1 + 0.8 * _uniform(gen)) * hw, (0.1 + 0.8 * _uniform(gen)) * ww
            theta = (i + _uniform(gen)) / self.cuts * math.pi
            s = (xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)
            code = code | ((s > 0).long() << i)
            line_dist = torch.minimum(line_dist, s.abs())
        # split every cell into two angular shards by a line through its seed
        ang = _rand(gen, vor.n, like=x) * math.pi
        seed_y, seed_x = vor.seeds[:, 0][vor.ids], vor.seeds[:, 1][vor.ids]
        split = (xs - seed_x) * torch.cos(ang)[vor.ids] + (ys - seed_y) * torch.sin(ang)[vor.ids]
        line_dist = torch.minimum(line_dist, split.abs())
        ids = ((vor.ids * 2 + (split > 0).long()) << self.cuts) + code
        n = vor.n * 2 << self.cuts
        # per-facet least-squares plane fit of the colour: each facet keeps the scene's overall shading
        soft = _blur(xw, 3 * uw)[0]
        yn = (ys / long_w).expand(hw, ww)
        xn = (xs / long_w).expand(hw, ww)
        step = max(1, cell // 10)
        sub = (slice(None, None, step), slice(None, None, step))
        vals = torch.cat(
            [
                soft[(slice(None),) + sub],
                torch.stack([xn[sub], yn[sub], xn[sub] ** 2, xn[sub] * yn[sub], yn[sub] ** 2]),
                soft[(slice(None),) + sub] * xn[sub],
                soft[(slice(None),) + sub] * yn[sub],
            ]
        )
        sums, counts = _segment_stats(vals, ids[sub], n)
        cnt = counts.clamp(min=1)
        mean_c = sums[0:3] / cnt
        mx, my = sums[3] / cnt, sums[4] / cnt
        sxx = (sums[5] / cnt - mx * mx).clamp(min=0)
        sxy = sums[6] / cnt - mx * my
        syy = (sums[7] / cnt - my * my).clamp(min=0)
        scx = sums[8:11] / cnt - mean_c * mx
        scy = sums[11:14] / cnt - mean_c * my
        reg = 1e-4
        det = (sxx + reg) * (syy + reg) - sxy * sxy
        bx = (scx * (syy + reg) - scy * sxy) / det
        by = (scy * (sxx + reg) - scx * sxy) / det
        # each facet also gets a light-to-dark gradient of its own, along a random direction
        phi = _rand(gen, n, like=x).double() * 2 * math.pi
        radius = torch.sqrt(sxx + syy).clamp(min=1e-3) * 1.6
        dxn = xn - mx.float()[ids]
        dyn = yn - my.float()[ids]
        colour = mean_c.float()[:, ids] + bx.float()[:, ids] * dxn + by.float()[:, ids] * dyn
        proj = (dxn * torch.cos(phi).float()[ids] + dyn * torch.sin(phi).float()[ids]) / radius.float()[ids]
        # slivers too thin to be sampled by the strided statistics keep the blurred picture's colour
        colour = torch.where((counts > 0)[ids], colour, soft)
        # keep some of the scene's own detail inside the planes, then shade each plane across its width
        colour = _lerp(colour, soft, self.detail)
        colour = (colour * (1 + 0.22 * proj.clamp(-1, 1))).unsqueeze(0).clamp(0, 1)
        # muted palette: colours pulled towards greys and ochres (hue kept, chroma reduced, warm cast), and a
        # gradient map of the luminance through umber, ochre, grey and cream mixed in
        lumc = _lum(colour)
        lo, hi = _quantiles(lumc, (0.02, 0.98))
        t = ((lumc - lo) / max(hi - lo, 0.05)).clamp(0, 1)
        ramp = _gradient_map(
            t, [(0.13, 0.10, 0.08), (0.40, 0.31, 0.20), (0.67, 0.52, 0.29), (0.63, 0.63, 0.56), (0.91, 0.86, 0.70)]
        )
        muted = _saturate(0.05 + 0.95 * (colour - lo) / max(hi - lo, 0.05), 0.6) * _colour((1.06, 0.98, 0.84), x)
        colour = 0.3 * ramp + 0.7 * muted
        # every plane gets its own pigment from a small muted palette
        tints = x.new_tensor(
            [(0.80, 0.62, 0.34), (0.60, 0.60, 0.58), (0.56, 0.56, 0.40), (0.55, 0.40, 0.28), (0.62, 0.66, 0.70)]
        )
        tints = tints / (tints @ x.new_tensor(_LUMA)).unsqueeze(1)
        pick = torch.randint(len(tints), (n,), generator=gen).to(x.device)
        tint = tints[pick][ids].permute(2, 0, 1).unsqueeze(0)
        colour = _lerp(colour, _lum(colour) * tint, 0.25)
        colour = colour * (1 + 0.025 * _noise(gen, hw, ww, 250.0, x))
        colour = _resize(colour, h, w)
        edge = _resize(torch.minimum(vor.edge, line_dist)[None, None], h, w) * scale
        lw = max(1.0, 2.5 * uw * scale)
        inside = (edge - lw / 2 + 0.5).clamp(0, 1)
        return _lerp(_colour((0.12, 0.10, 0.08), x), colour, inside)


@dataclass(frozen=True)
class Impasto(_Rendition):
    name: str = "impasto"
    description: str = "Thick oil paint (impasto): flat painterly colour areas, rich saturation, raised brush strokes."
    radius: float = 0.012  # Kuwahara radius relative to the long side
    saturation: float = 1.45

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = _work_size(h, w)
        long_w = max(hw, ww)
        uw = long_w / 1000.0
        xw = _resize(x, hw, ww)
        r = max(1, round(self.radius * long_w))
        paint = _kuwahara(xw, r, sharpness=6.0)
        paint = _kuwahara(paint, max(1, r // 2), sharpness=6.0)
        paint = _warp(paint, gen, 40.0, 2.5 * uw)  # hand-painted, irregular borders
        paint = _saturate(paint, self.saturation).clamp(0, 1)
        paint = ((paint - 0.5) * 1.1 + 0.5).clamp(0, 1)
        angle = _edge_tangent(_lum(xw), max(1.0, 10.0 * uw), prior=0.15, prior_angle=math.pi * _uniform(gen))
        strokes = _stroke_texture(gen, angle, max(3.0, 30 * uw), max(1.0, 3.0 * uw), x)
        height = 1.3 * strokes + _blur(_lum(paint), max(0.5, 1.5 * uw)) * 8.0
        shade = _relief(_blur(height, max(0.4, 0.8 * uw)))
        shade = shade / shade.std().clamp(min=1e-6)
        out = paint * (1 + 0.14 * shade.clamp(-3, 3)) + 0.06 * (shade - 1.5).clamp(min=0)
        return _resize(out, h, w)


@dataclass(frozen=True)
class Watercolour(_Rendition):
    name: str = "watercolour"
    description: str = "Watercolour: soft transparent washes that bleed together, darker rims, grainy white paper."

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = _work_size(h, w)
        long_w = max(hw, ww)
        uw = long_w / 1000.0
        xw = _resize(x, hw, ww)
        # colour bleeding: warp the picture with a smooth random displacement field, then flatten into washes
        bled = _warp(xw, gen, 7.0, 6.0 * uw)
        wash = _kuwahara(bled, max(1, round(7 * uw)), sharpness=6.0)
        wash = _blur(wash, max(0.5, 2.5 * uw))
        lo, hi = _quantiles(_lum(wash), (0.01, 0.995))
        wash = ((wash - lo) / max(hi - lo, 0.1)).clamp(0, 1)
        # pigment (absorbance-like, per channel), thinned out for a light, transparent palette
        pigment = (1 - _saturate(wash, 1.35).clamp(0, 1)).clamp(min=0)
        density = _lum(pigment)
        # wet-on-dry layering: the density is laid down in a few discrete washes with soft steps
        levels = 4.0
        d4 = density * levels
        stepped = (torch.floor(d4) + _smoothstep(0.55, 0.95, d4 - torch.floor(d4))) / levels
        pigment = pigment * ((0.6 * stepped + 0.4 * density + 0.02) / (density + 0.02))
        # uneven pigment density (turbulence) and granulation
        pigment = pigment * (1 + 0.22 * _fractal(gen, hw, ww, 4.0, 3, x))
        pigment = pigment * (1 + 0.18 * _noise(gen, hw, ww, long_w / max(2.0 * uw, 1.0), x))
        # edge darkening: pigment pools along the inner border of each wash
        pooled = (stepped - _blur(stepped, 4 * uw)).clamp(min=0)
        pooled = pooled / max(_quantiles(pooled, (0.99,))[0], 1e-4)
        pigment = pigment * (0.62 + 0.7 * pooled.clamp(0, 1.2))
        pigment = pigment * _smoothstep(0.02, 0.10, _lum(pigment))  # white paper left in the highlights
        paper_h = _noise(gen, hw, ww, long_w / max(1.5 * uw, 1.0), x) + 0.6 * _noise(gen, hw, ww, 150.0, x)
        paper = _colour((0.985, 0.975, 0.95), x) * (1 + 0.035 * _relief(paper_h).clamp(-2, 2))
        out = paper * (1 - pigment.clamp(0, 1))
        return _resize(out, h, w)


@dataclass(frozen=True)
class PixelArt(_Rendition):
    name: str = "pixel-art"
    description: str = "Pixel art: a blocky 64-pixel-wide picture in a 16-colour palette."
    pixels_across: int = 64
    colours: int = 16

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        n_long = min(self.pixels_across, long)
        hs, ws = max(1, round(h * n_long / long)), max(1, round(w * n_long / long))
        small = _resize(x, hs, ws)
        small = ((_saturate(small, 1.3) - 0.5) * 1.1 + 0.5).clamp(0, 1)
        pts = small[0].reshape(3, -1).T.contiguous()
        centres, labels = _kmeans(pts, self.colours, 10, gen)
        quant = centres[labels].T.reshape(1, 3, hs, ws)
        return _resize(quant, h, w, mode="nearest")


@dataclass(frozen=True)
class PopArt(_Rendition):
    name: str = "pop-art"
    description: str = "Pop-art comic print: flat primary colours, Ben-Day halftone dots and heavy black outlines."
    dots_across: float = 100.0

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        hw, ww = _work_size(h, w)
        uw = max(hw, ww) / 1000.0
        xw = _resize(x, hw, ww)
        flat = _kuwahara(_blur(xw, max(0.5, 2 * uw)), max(1, round(6 * uw)))
        flat = _saturate(_relight(flat, equalise=0.4, lo_q=0.02, hi_q=0.98), 1.7).clamp(0, 1)
        # palette: (matching colour, dot ink or None); dotted entries print as ink dots on white
        inks = [
            ((0.06, 0.06, 0.08), None),
            ((0.98, 0.97, 0.92), None),
            ((1.00, 0.85, 0.10), None),
            ((0.88, 0.12, 0.14), None),
            ((0.10, 0.30, 0.75), None),
            ((0.96, 0.70, 0.62), (0.88, 0.12, 0.14)),
            ((0.62, 0.80, 0.95), (0.10, 0.30, 0.75)),
            ((0.20, 0.62, 0.32), None),
        ]
        # nearest palette entry (a running minimum: much faster than argmin across a stacked dimension)
        best = torch.full((1, 1, hw, ww), float("inf"), device=x.device)
        label = torch.zeros((1, 1, hw, ww), dtype=torch.long, device=x.device)
        for k, (rgb, _) in enumerate(inks):
            d = ((flat - _colour(rgb, x)) ** 2).sum(1, keepdim=True)
            label = torch.where(d < best, k, label)
            best = torch.minimum(best, d)
        solid_tab = x.new_tensor([rgb for rgb, _ in inks])
        dot_tab = x.new_tensor([ink if ink is not None else rgb for rgb, ink in inks])
        dotted_tab = x.new_tensor([float(ink is not None) for _, ink in inks])
        solid = _resize(solid_tab[label[0, 0]].permute(2, 0, 1).unsqueeze(0), h, w)
        dot_ink = _resize(dot_tab[label[0, 0]].permute(2, 0, 1).unsqueeze(0), h, w)
        dotted = _resize(dotted_tab[label], h, w)
        # Ben-Day dots on a 45-degree grid, printed in the dot ink on white where the palette entry is dotted
        spacing = max(3.0, long / self.dots_across)
        ys, xs = _coords(h, w, x)
        u = (xs + ys) / (spacing * math.sqrt(2))
        v = (xs - ys) / (spacing * math.sqrt(2))
        du = (u - torch.round(u)) * spacing
        dv = (v - torch.round(v)) * spacing
        dot = (spacing * 0.36 - torch.sqrt(du * du + dv * dv) + 0.5).clamp(0, 1)
        white = _colour(inks[1][0], x)
        out = _lerp(solid, _lerp(white, dot_ink, dot), dotted)
        dog = _resize(_dog(_lum(xw), max(0.7, 2.5 * uw)), h, w)
        outline = _ink_from_dog(dog, 50.0, 0.003)
        return _lerp(out, _colour((0.05, 0.05, 0.07), x), _smoothstep(0.25, 0.55, outline))


@dataclass(frozen=True)
class NeonSketch(_Rendition):
    name: str = "neon-sketch"
    description: str = "Neon sketch: the drawing's edges as glowing coloured light lines on a black background."

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = _work_size(h, w)
        uw = max(hw, ww) / 1000.0
        xw = _resize(x, hw, ww)
        gx, gy = _sobel(_blur(xw, max(0.5, 1.5 * uw)))
        mag = torch.sqrt((gx * gx + gy * gy).sum(1, keepdim=True))
        mag = mag / max(_quantiles(mag, (0.96,))[0], 1e-4)
        edge_w = _smoothstep(0.25, 1.0, mag)
        # neon hue: the local colour pushed to full saturation, falling back to a cyan-magenta sweep where grey
        colour = _blur(xw, 6 * uw)
        mx = colour.max(1, keepdim=True).values
        mn = colour.min(1, keepdim=True).values
        chroma = mx - mn
        hue = (colour - mn) / chroma.clamp(min=1e-3)
        ys, xs = _coords(hw, ww, x)
        sweep = _lerp(_colour((0.1, 0.9, 1.0), x), _colour((1.0, 0.2, 0.9), x), ((xs + ys) / (hw + ww)))
        neon = 0.15 + 0.85 * _lerp(sweep, hue, _smoothstep(0.03, 0.15, chroma))
        core_w = edge_w * neon
        glow = (_blur(core_w, 4 * uw) * 1.6 + _blur(core_w, 14 * uw) * 1.2).clamp(0, 1)
        edge = _smoothstep(0.25, 1.0, _resize(mag, h, w))
        core = (edge * _resize(neon, h, w)).clamp(0, 1)
        out = 1 - (1 - core) * (1 - _resize(glow, h, w))
        return out + 0.5 * _smoothstep(0.7, 1.0, edge)  # white-hot centres on the strongest lines


#: The built-in catalogue, in the order ``stylecloak targets list`` shows it.
BUILTIN_RENDITIONS: tuple[_Rendition, ...] = (
    Mosaic(),
    Pointillism(),
    InkHatching(),
    Woodcut(),
    Cubist(),
    Impasto(),
    Watercolour(),
    PixelArt(),
    PopArt(),
    NeonSketch(),
)
