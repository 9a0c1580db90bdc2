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

The image operations the styles are built from live in :mod:`stylecloak.targets._image_ops`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import _image_ops as ops
from ._image_ops import WORK_LONG

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
                out = self._render(x[i : i + 1].contiguous(), ops.generator(seed, self.name))
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
        hw, ww = ops.work_size(h, w)
        scale = max(h, w) / max(hw, ww)
        xw = ops.resize(x, hw, ww)
        cell = max(2, round(max(hw, ww) / self.cells_across))
        vor = ops.voronoi(hw, ww, cell, 0.95, gen, x)
        assert vor.edge is not None
        step = max(1, cell // 8)
        sums, counts = ops.segment_stats(xw[0, :, ::step, ::step], vor.ids[::step, ::step], vor.n)
        means = (sums / counts.clamp(min=1)).float()  # 3 x n
        lum = 0.299 * means[0] + 0.587 * means[1] + 0.114 * means[2]
        means = lum + (means - lum) * self.saturation
        means = (means * (1 + 0.07 * ops.randn(gen, 1, vor.n, like=x))).clamp(0, 1)
        colour = means[:, vor.ids].unsqueeze(0)
        # glass: a little brighter in the middle of each piece, with a faint streaky texture
        glow = 1.1 - 0.25 * (vor.d1 / cell).clamp(max=1.0) ** 2
        streak = 1 + 0.05 * ops.noise(gen, hw, ww, max(hw, ww) / max(cell * 0.3, 1.0), x)[0, 0]
        colour = ops.resize(colour * (glow * streak), h, w)
        edge = ops.resize(vor.edge[None, None], h, w) * scale
        lead = max(1.0, self.lead_width * cell * scale)
        inside = (edge - lead / 2 + 0.5).clamp(0, 1)
        return ops.lerp(ops.colour((0.06, 0.05, 0.05), x), colour, inside)


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
        hs, ws = ops.work_size(h, w, max(8, int(self.dots_across * 2)))
        small = ops.relight(ops.resize(x, hs, ws), equalise=0.5)
        small = 0.06 + 0.94 * small.clamp(min=1e-4) ** 0.8
        small = ops.saturate(small, self.saturation).clamp(0, 1)
        ground = ops.lerp(ops.colour((0.96, 0.93, 0.86), x), ops.resize(ops.blur(small, 3.0), h, w), 0.22)
        out = ground
        pix = torch.arange(c, dtype=torch.float32, device=x.device) + 0.5
        for _ in range(self.layers):
            oy, ox = int(ops.uniform(gen) * c), int(ops.uniform(gen) * c)
            gh, gw = -(-(h + oy) // c), -(-(w + ox) // c)
            # dot centres (global pixel coordinates) and their colours
            cy = torch.arange(gh, device=x.device).view(gh, 1) * c - oy
            cx = torch.arange(gw, device=x.device).view(1, gw) * c - ox
            u = ops.rand(gen, 4, gh, gw, like=x)
            sample_y = ((cy + c / 2) / h * 2 - 1).expand(gh, gw)
            sample_x = ((cx + c / 2) / w * 2 - 1).expand(gh, gw)
            grid = torch.stack([sample_x, sample_y], -1).unsqueeze(0)
            col = F.grid_sample(small, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
            col = (col + 0.11 * ops.randn(gen, 3, gh, gw, like=x)).clamp(0, 1)  # divisionist colour jitter
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
            out = ops.lerp(out, dots[..., oy : oy + h, ox : ox + w], cover)
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
        hw, ww = ops.work_size(h, w)
        scale = long / max(hw, ww)
        uw = unit / scale  # one unit in working pixels
        lum_w = ops.lum(ops.resize(x, hw, ww))
        tone = ops.tone(ops.blur(lum_w, 1.5 * uw), equalise=0.5) ** 0.85
        tone = ops.resize(tone, h, w)
        spacing = max(3.0, long / self.lines_across)
        pen = max(0.9, 1.0 * unit)  # pen width in pixels
        ys, xs = ops.coords(h, w, x)
        ink = torch.zeros_like(tone)
        layers = ((45.0, 0.85), (-45.0, 0.62), (0.0, 0.42), (90.0, 0.24))
        for angle_deg, threshold in layers:
            angle = math.radians(angle_deg + 6 * (ops.uniform(gen) - 0.5))
            wobble = ops.noise(gen, h, w, 5.0, x) * 0.4
            u = (xs * math.cos(angle) + ys * math.sin(angle)) / spacing + wobble
            dist = (u - torch.round(u)).abs() * spacing  # pixels to the nearest line centre
            darkness = ops.smoothstep(threshold, threshold - 0.2, tone)
            half = pen * (0.3 + 0.7 * darkness)
            line = (half - dist + 0.5).clamp(0, 1) * darkness.sqrt()
            ink = torch.maximum(ink, line)
        # outlines: difference of Gaussians plus strong gradients, thresholded at full resolution
        dog = ops.resize(ops.dog(lum_w, max(0.6, 1.8 * uw)), h, w)
        gx, gy = ops.sobel(ops.blur(lum_w, max(0.6, 2.0 * uw)))
        mag = torch.sqrt(gx * gx + gy * gy)
        mag = ops.resize(mag / max(ops.quantiles(mag, (0.97,))[0], 1e-4), h, w)
        edges = torch.maximum(ops.ink_from_dog(dog, 60.0, 0.004), ops.smoothstep(0.5, 1.0, mag))
        ink = torch.maximum(ink, edges * 0.95)
        paper = ops.colour((0.97, 0.955, 0.92), x) * (1 - 0.02 * ops.noise(gen, h, w, 150.0, x))
        return ops.lerp(paper, ops.colour((0.06, 0.06, 0.09), x), ink)


@dataclass(frozen=True)
class Woodcut(_Rendition):
    name: str = "woodcut"
    description: str = "Woodcut print: stark black ink on cream paper, gouged lines following the tone, bold outlines."
    lines_across: float = 90.0

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        unit = long / 1000.0
        hw, ww = ops.work_size(h, w)
        scale = long / max(hw, ww)
        uw = unit / scale
        lum_w = ops.lum(ops.resize(x, hw, ww))
        tone_w = ops.tone(ops.blur(lum_w, 2.0 * uw), 0.03, 0.97, equalise=0.4)
        # the gouge lines bend with the large-scale tone so that they follow the forms
        flow_w = ops.blur(tone_w, 12 * uw) * 2.2
        tone = ops.resize(tone_w, h, w)
        flow = ops.resize(flow_w, h, w) + 0.25 * ops.noise(gen, h, w, 5.0, x)
        t = ((tone - 0.2) / 0.6).clamp(0, 1)  # deep shadows solid black, highlights clean paper
        spacing = max(3.0, long / self.lines_across)
        ys, xs = ops.coords(h, w, x)
        angle = math.radians(-20.0 + 40.0 * ops.uniform(gen))
        u = (xs * math.cos(angle) + ys * math.sin(angle)) / spacing + flow
        tri = (2 * (u - torch.floor(u)) - 1).abs()  # 0 at a gouge's centre, 1 on the ink ridge
        chisel = 0.08 * ops.noise(gen, h, w, self.lines_across * 1.5, x)
        ink = ((tri - t - chisel) * (spacing / 1.2) + 0.5).clamp(0, 1)
        dog = ops.resize(ops.dog(lum_w, max(0.7, 3.0 * uw)), h, w)
        outline = ops.ink_from_dog(dog + 0.0015, 45.0, 0.0)  # slightly wider than the hatching outlines
        ink = ops.smoothstep(0.3, 0.7, torch.maximum(ink, outline))
        paper = ops.colour((0.93, 0.87, 0.74), x) * (1 - 0.03 * ops.noise(gen, h, w, 120.0, x).clamp(min=0))
        return ops.lerp(paper, ops.colour((0.09, 0.07, 0.06), x), ink)


@dataclass(frozen=True)
class Cubist(_Rendition):
    name: str = "cubist"
    description: str = "Cubism: the scene broken into large angular facets shaded in muted ochres and greys."
    facets_across: float = 10.0  # coarse Voronoi cells along the long side
    cuts: int = 6  # straight lines cutting right across the picture
    detail: float = 0.65  # how much of the picture's own detail shows inside the planes

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = ops.work_size(h, w)
        long_w = max(hw, ww)
        scale = max(h, w) / long_w
        uw = long_w / 1000.0
        xw = ops.relight(ops.resize(x, hw, ww), equalise=0.25)
        cell = max(3, round(long_w / self.facets_across))
        vor = ops.voronoi(hw, ww, cell, 1.0, gen, x)
        assert vor.edge is not None
        ys, xs = ops.coords(hw, ww, x)
        ys, xs = ys[0, 0], xs[0, 0]  # H x 1, 1 x W
        code = torch.zeros((hw, ww), dtype=torch.long, device=x.device)
        line_dist = torch.full((hw, ww), float("inf"), device=x.device)
        for i in range(self.cuts):
            cy, cx = (0.1 + 0.8 * ops.uniform(gen)) * hw, (0.1 + 0.8 * ops.uniform(gen)) * ww
            theta = (i + ops.uniform(gen)) / self.cuts * math.pi
            s = (xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)
            code = code | ((s > 0).long() << i)
            line_dist = torch.minimum(line_dist, s.abs())
        # split every cell into two angular shards by a line through its seed
        ang = ops.rand(gen, vor.n, like=x) * math.pi
        seed_y, seed_x = vor.seeds[:, 0][vor.ids], vor.seeds[:, 1][vor.ids]
        split = (xs - seed_x) * torch.cos(ang)[vor.ids] + (ys - seed_y) * torch.sin(ang)[vor.ids]
        line_dist = torch.minimum(line_dist, split.abs())
        ids = ((vor.ids * 2 + (split > 0).long()) << self.cuts) + code
        n = vor.n * 2 << self.cuts
        # per-facet least-squares plane fit of the colour: each facet keeps the scene's overall shading
        soft = ops.blur(xw, 3 * uw)[0]
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
        sums, counts = ops.segment_stats(vals, ids[sub], n)
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
        phi = ops.rand(gen, n, like=x).double() * 2 * math.pi
        radius = torch.sqrt(sxx + syy).clamp(min=1e-3) * 1.6
        dxn = xn - mx.float()[ids]
        dyn = yn - my.float()[ids]
        colour = mean_c.float()[:, ids] + bx.float()[:, ids] * dxn + by.float()[:, ids] * dyn
        proj = (dxn * torch.cos(phi).float()[ids] + dyn * torch.sin(phi).float()[ids]) / radius.float()[ids]
        # slivers too thin to be sampled by the strided statistics keep the blurred picture's colour
        colour = torch.where((counts > 0)[ids], colour, soft)
        # keep some of the scene's own detail inside the planes, then shade each plane across its width
        colour = ops.lerp(colour, soft, self.detail)
        colour = (colour * (1 + 0.22 * proj.clamp(-1, 1))).unsqueeze(0).clamp(0, 1)
        # muted palette: colours pulled towards greys and ochres (hue kept, chroma reduced, warm cast), and a
        # gradient map of the luminance through umber, ochre, grey and cream mixed in
        lumc = ops.lum(colour)
        lo, hi = ops.quantiles(lumc, (0.02, 0.98))
        t = ((lumc - lo) / max(hi - lo, 0.05)).clamp(0, 1)
        ramp = ops.gradient_map(
            t, [(0.13, 0.10, 0.08), (0.40, 0.31, 0.20), (0.67, 0.52, 0.29), (0.63, 0.63, 0.56), (0.91, 0.86, 0.70)]
        )
        muted = ops.saturate(0.05 + 0.95 * (colour - lo) / max(hi - lo, 0.05), 0.6) * ops.colour((1.06, 0.98, 0.84), x)
        colour = 0.3 * ramp + 0.7 * muted
        # every plane gets its own pigment from a small muted palette
        tints = x.new_tensor(
            [(0.80, 0.62, 0.34), (0.60, 0.60, 0.58), (0.56, 0.56, 0.40), (0.55, 0.40, 0.28), (0.62, 0.66, 0.70)]
        )
        tints = tints / (tints @ x.new_tensor(ops.LUMA)).unsqueeze(1)
        pick = torch.randint(len(tints), (n,), generator=gen).to(x.device)
        tint = tints[pick][ids].permute(2, 0, 1).unsqueeze(0)
        colour = ops.lerp(colour, ops.lum(colour) * tint, 0.25)
        colour = colour * (1 + 0.025 * ops.noise(gen, hw, ww, 250.0, x))
        colour = ops.resize(colour, h, w)
        edge = ops.resize(torch.minimum(vor.edge, line_dist)[None, None], h, w) * scale
        lw = max(1.0, 2.5 * uw * scale)
        inside = (edge - lw / 2 + 0.5).clamp(0, 1)
        return ops.lerp(ops.colour((0.12, 0.10, 0.08), x), colour, inside)


@dataclass(frozen=True)
class Impasto(_Rendition):
    name: str = "impasto"
    description: str = "Thick oil paint (impasto): flat painterly colour areas, rich saturation, raised brush strokes."
    radius: float = 0.012  # Kuwahara radius relative to the long side
    saturation: float = 1.45

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = ops.work_size(h, w)
        long_w = max(hw, ww)
        uw = long_w / 1000.0
        xw = ops.resize(x, hw, ww)
        r = max(1, round(self.radius * long_w))
        paint = ops.kuwahara(xw, r, sharpness=6.0)
        paint = ops.kuwahara(paint, max(1, r // 2), sharpness=6.0)
        paint = ops.warp(paint, gen, 40.0, 2.5 * uw)  # hand-painted, irregular borders
        paint = ops.saturate(paint, self.saturation).clamp(0, 1)
        paint = ((paint - 0.5) * 1.1 + 0.5).clamp(0, 1)
        angle = ops.edge_tangent(ops.lum(xw), max(1.0, 10.0 * uw), prior=0.15, prior_angle=math.pi * ops.uniform(gen))
        strokes = ops.stroke_texture(gen, angle, max(3.0, 30 * uw), max(1.0, 3.0 * uw), x)
        height = 1.3 * strokes + ops.blur(ops.lum(paint), max(0.5, 1.5 * uw)) * 8.0
        shade = ops.relief(ops.blur(height, max(0.4, 0.8 * uw)))
        shade = shade / shade.std().clamp(min=1e-6)
        out = paint * (1 + 0.14 * shade.clamp(-3, 3)) + 0.06 * (shade - 1.5).clamp(min=0)
        return ops.resize(out, h, w)


@dataclass(frozen=True)
class Watercolour(_Rendition):
    name: str = "watercolour"
    description: str = "Watercolour: soft transparent washes that bleed together, darker rims, grainy white paper."

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = ops.work_size(h, w)
        long_w = max(hw, ww)
        uw = long_w / 1000.0
        xw = ops.resize(x, hw, ww)
        # colour bleeding: warp the picture with a smooth random displacement field, then flatten into washes
        bled = ops.warp(xw, gen, 7.0, 6.0 * uw)
        wash = ops.kuwahara(bled, max(1, round(7 * uw)), sharpness=6.0)
        wash = ops.blur(wash, max(0.5, 2.5 * uw))
        lo, hi = ops.quantiles(ops.lum(wash), (0.01, 0.995))
        wash = ((wash - lo) / max(hi - lo, 0.1)).clamp(0, 1)
        # pigment (absorbance-like, per channel), thinned out for a light, transparent palette
        pigment = (1 - ops.saturate(wash, 1.35).clamp(0, 1)).clamp(min=0)
        density = ops.lum(pigment)
        # wet-on-dry layering: the density is laid down in a few discrete washes with soft steps
        levels = 4.0
        d4 = density * levels
        stepped = (torch.floor(d4) + ops.smoothstep(0.55, 0.95, d4 - torch.floor(d4))) / levels
        pigment = pigment * ((0.6 * stepped + 0.4 * density + 0.02) / (density + 0.02))
        # uneven pigment density (turbulence) and granulation
        pigment = pigment * (1 + 0.22 * ops.fractal(gen, hw, ww, 4.0, 3, x))
        pigment = pigment * (1 + 0.18 * ops.noise(gen, hw, ww, long_w / max(2.0 * uw, 1.0), x))
        # edge darkening: pigment pools along the inner border of each wash
        pooled = (stepped - ops.blur(stepped, 4 * uw)).clamp(min=0)
        pooled = pooled / max(ops.quantiles(pooled, (0.99,))[0], 1e-4)
        pigment = pigment * (0.62 + 0.7 * pooled.clamp(0, 1.2))
        pigment = pigment * ops.smoothstep(0.02, 0.10, ops.lum(pigment))  # white paper left in the highlights
        paper_h = ops.noise(gen, hw, ww, long_w / max(1.5 * uw, 1.0), x) + 0.6 * ops.noise(gen, hw, ww, 150.0, x)
        paper = ops.colour((0.985, 0.975, 0.95), x) * (1 + 0.035 * ops.relief(paper_h).clamp(-2, 2))
        out = paper * (1 - pigment.clamp(0, 1))
        return ops.resize(out, h, w)


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
        small = ops.resize(x, hs, ws)
        small = ((ops.saturate(small, 1.3) - 0.5) * 1.1 + 0.5).clamp(0, 1)
        pts = small[0].reshape(3, -1).T.contiguous()
        centres, labels = ops.kmeans(pts, self.colours, 10, gen)
        quant = centres[labels].T.reshape(1, 3, hs, ws)
        return ops.resize(quant, h, w, mode="nearest")


@dataclass(frozen=True)
class PopArt(_Rendition):
    name: str = "pop-art"
    description: str = "Pop-art comic print: flat primary colours, Ben-Day halftone dots and heavy black outlines."
    dots_across: float = 100.0

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        long = max(h, w)
        hw, ww = ops.work_size(h, w)
        uw = max(hw, ww) / 1000.0
        xw = ops.resize(x, hw, ww)
        flat = ops.kuwahara(ops.blur(xw, max(0.5, 2 * uw)), max(1, round(6 * uw)))
        flat = ops.saturate(ops.relight(flat, equalise=0.4, lo_q=0.02, hi_q=0.98), 1.7).clamp(0, 1)
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
            d = ((flat - ops.colour(rgb, x)) ** 2).sum(1, keepdim=True)
            label = torch.where(d < best, k, label)
            best = torch.minimum(best, d)
        solid_tab = x.new_tensor([rgb for rgb, _ in inks])
        dot_tab = x.new_tensor([ink if ink is not None else rgb for rgb, ink in inks])
        dotted_tab = x.new_tensor([float(ink is not None) for _, ink in inks])
        solid = ops.resize(solid_tab[label[0, 0]].permute(2, 0, 1).unsqueeze(0), h, w)
        dot_ink = ops.resize(dot_tab[label[0, 0]].permute(2, 0, 1).unsqueeze(0), h, w)
        dotted = ops.resize(dotted_tab[label], h, w)
        # Ben-Day dots on a 45-degree grid, printed in the dot ink on white where the palette entry is dotted
        spacing = max(3.0, long / self.dots_across)
        ys, xs = ops.coords(h, w, x)
        u = (xs + ys) / (spacing * math.sqrt(2))
        v = (xs - ys) / (spacing * math.sqrt(2))
        du = (u - torch.round(u)) * spacing
        dv = (v - torch.round(v)) * spacing
        dot = (spacing * 0.36 - torch.sqrt(du * du + dv * dv) + 0.5).clamp(0, 1)
        white = ops.colour(inks[1][0], x)
        out = ops.lerp(solid, ops.lerp(white, dot_ink, dot), dotted)
        dog = ops.resize(ops.dog(ops.lum(xw), max(0.7, 2.5 * uw)), h, w)
        outline = ops.ink_from_dog(dog, 50.0, 0.003)
        return ops.lerp(out, ops.colour((0.05, 0.05, 0.07), x), ops.smoothstep(0.25, 0.55, outline))


@dataclass(frozen=True)
class NeonSketch(_Rendition):
    name: str = "neon-sketch"
    description: str = "Neon sketch: the drawing's edges as glowing coloured light lines on a black background."

    def _render(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _, _, h, w = x.shape
        hw, ww = ops.work_size(h, w)
        uw = max(hw, ww) / 1000.0
        xw = ops.resize(x, hw, ww)
        gx, gy = ops.sobel(ops.blur(xw, max(0.5, 1.5 * uw)))
        mag = torch.sqrt((gx * gx + gy * gy).sum(1, keepdim=True))
        mag = mag / max(ops.quantiles(mag, (0.96,))[0], 1e-4)
        edge_w = ops.smoothstep(0.25, 1.0, mag)
        # neon hue: the local colour pushed to full saturation, falling back to a cyan-magenta sweep where grey
        colour = ops.blur(xw, 6 * uw)
        mx = colour.max(1, keepdim=True).values
        mn = colour.min(1, keepdim=True).values
        chroma = mx - mn
        hue = (colour - mn) / chroma.clamp(min=1e-3)
        ys, xs = ops.coords(hw, ww, x)
        sweep = ops.lerp(ops.colour((0.1, 0.9, 1.0), x), ops.colour((1.0, 0.2, 0.9), x), ((xs + ys) / (hw + ww)))
        neon = 0.15 + 0.85 * ops.lerp(sweep, hue, ops.smoothstep(0.03, 0.15, chroma))
        core_w = edge_w * neon
        glow = (ops.blur(core_w, 4 * uw) * 1.6 + ops.blur(core_w, 14 * uw) * 1.2).clamp(0, 1)
        edge = ops.smoothstep(0.25, 1.0, ops.resize(mag, h, w))
        core = (edge * ops.resize(neon, h, w)).clamp(0, 1)
        out = 1 - (1 - core) * (1 - ops.resize(glow, h, w))
        return out + 0.5 * ops.smoothstep(0.7, 1.0, edge)  # white-hot centres on the strongest lines


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
