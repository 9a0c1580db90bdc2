"""stylecloak and the published peer methods, side by side on the same paintings, encoder and metrics.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/compare.py --quick --json
    ... --device cuda --out results/compare-gpu

Every method cloaks the same shared paintings against the same encoder (TAEF2). Methods without a perceptual
budget (PhotoGuard, Mist, Glaze v1) are brought to stylecloak's LPIPS budget afterwards, by scaling their
perturbation down where it is over (``stylecloak.methods.matching``): "matched perceptual cost". Each method's
``target_progress`` is measured toward the target it aims at (a grey image for PhotoGuard, a pattern for Mist,
the style rendition for Glaze v1 and stylecloak), on the saved 8-bit image and after JPEG at quality 85.

Prints one JSON row per method (``--json``): method, lpips, target_progress, target_progress_jpeg85, seconds,
peak_mem_mb (medians over the paintings; seconds per image; memory: the peak above the level before the call,
process RSS on CPU, allocated memory on CUDA), and one row with the physical-limit figure: the FLOPs of one
stylecloak optimisation step, the FLOP/s it achieves, and a large matrix product's FLOP/s in the same run.
Writes compare.md (the table) and pareto.png (target progress after JPEG 85 against seconds) into --out.

--quick: 3 paintings at 256 px and fewer PGD steps for the peers (stated in the table); within 10 minutes on
a 2-core CPU. Without it: 8 paintings at their own size and the papers' step counts (hours on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stylecloak import __version__
from stylecloak.countermeasures import jpeg
from stylecloak.imaging import image_to_tensor, load_image
from stylecloak.methods import CloakMethod, GlazeV1, MistTextural, PhotoGuardEncoderAttack, StylecloakMethod
from stylecloak.methods.matching import match_budget
from stylecloak.metrics import TargetProgress, lpips_distance
from stylecloak.models.encoders import load_encoder
from stylecloak.models.lpips import load_lpips
from stylecloak.optimize import autocast_context, autocast_dtype, quantize_8bit
from stylecloak.settings import CloakSettings
from stylecloak.targets import get_target

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"
QUICK_PAINTINGS = ["hokusai_great_wave.png", "renoir_moulin_de_la_galette.png", "vangogh_village_street_auvers.png"]
FULL_PAINTINGS = QUICK_PAINTINGS + [
    "bruegel_harvesters.png",
    "cassatt_summertime.png",
    "hiroshige_inokashira_snow.png",
    "kandinsky_composition_viii.png",
    "leonardo_mona_lisa.png",
]


def methods_for(quick: bool, settings: CloakSettings) -> list[CloakMethod]:
    # The papers' step counts; --quick cuts the peers' PGD steps (PhotoGuard's 1000 would take an hour here).
    photoguard_steps, mist_steps, glaze_steps = (100, 50, 30) if quick else (1000, 100, 100)
    return [
        PhotoGuardEncoderAttack(eps=16 / 255, steps=photoguard_steps),
        PhotoGuardEncoderAttack(eps=8 / 255, steps=photoguard_steps),
        MistTextural(steps=mist_steps),
        GlazeV1(steps=glaze_steps),
        StylecloakMethod(settings),
    ]


class PeakMemory:
    """The peak memory above the level at the start: allocated memory on CUDA, the process RSS on CPU (sampled
    every 5 ms from /proc, which sees PyTorch's allocations that tracemalloc does not)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            release_free_memory()
            self.base = self.peak = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss())

    @property
    def megabytes(self) -> float:
        return max(0, self.peak - self.base) / 1e6


def release_free_memory() -> None:
    """Hand memory that malloc keeps in its free lists back to the system (glibc's malloc_trim), so that each
    method's RSS peak counts its own tensors, not room an earlier method left behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


@dataclass
class Row:
    method: str
    description: str
    lpips: list[float] = field(default_factory=list)
    target_progress: list[float] = field(default_factory=list)
    target_progress_jpeg85: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    peak_mem_mb: list[float] = field(default_factory=list)
    scaled_down: int = 0
    # stylecloak's target_progress_jpeg85 on the same paintings at no more than this method's LPIPS.
    ours_at_same_lpips: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "lpips": round(statistics.median(self.lpips), 4),
            "target_progress": round(statistics.median(self.target_progress), 4),
            "target_progress_jpeg85": round(statistics.median(self.target_progress_jpeg85), 4),
            "seconds": round(statistics.median(self.seconds), 2),
            "peak_mem_mb": round(max(self.peak_mem_mb), 1),
            "images": len(self.lpips),
            "scaled_to_budget": self.scaled_down,
            "stylecloak_jpeg85_at_this_lpips": (
                round(statistics.median(self.ours_at_same_lpips), 4) if self.ours_at_same_lpips else None
            ),
            "description": self.description,
        }


def load_painting(path: Path, long_side: int | None, device: torch.device) -> torch.Tensor:
    image = image_to_tensor(load_image(path).rgb)
    if long_side is not None and max(image.shape[-2:]) != long_side:
        from stylecloak.descriptors import resize_long_side

        image = resize_long_side(image, long_side)
    return quantize_8bit(image).to(device)


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - started


def _stylecloak_at(
    ours: tuple[float, float],
    peer_lpips: float,
    original: torch.Tensor,
    style_target: torch.Tensor,
    settings: CloakSettings,
    encoder: Any,
    perceptual: Any,
    name: str,
    log: Any,
) -> float:
    """stylecloak's jpeg85 progress at no more than ``peer_lpips``: its own run if that was already no higher,
    else a run with its budget set to the peer's LPIPS."""
    our_lpips, our_jpeg85 = ours
    if our_lpips <= peer_lpips:
        return our_jpeg85
    from dataclasses import replace

    result = StylecloakMethod(replace(settings, budget=peer_lpips)).cloak(original, style_target, encoder, perceptual)
    value = lpips_distance(perceptual, original, result.cloaked)
    jpeg85 = TargetProgress(encoder, original, style_target, settings.tile_size)(jpeg(result.cloaked, 85))
    print(
        f"{name:36s} {'  stylecloak':18s} lpips {value:.4f} (at the peer's lpips) jpeg85 {jpeg85:.3f}",
        file=log,
        flush=True,
    )
    return jpeg85


# ------------------------------------------------------------------------------------------ physical limit


def step_flops_and_seconds(
    image: torch.Tensor, target: torch.Tensor, encoder: Any, perceptual: Any, settings: CloakSettings, repeats: int = 3
) -> tuple[int, float]:
    """FLOPs of one stylecloak optimisation step (encoder forward and backward on the 8-bit image, LPIPS forward
    and backward on each tile), counted by PyTorch's FlopCounterMode, and the median wall time of that step."""
    from torch.utils.flop_counter import FlopCounterMode

    from stylecloak.models.tiled import TiledEncoder
    from stylecloak.optimize import _Perceptual

    tiled = TiledEncoder(encoder, image.shape[-2], image.shape[-1], settings.tile_size)
    lpips = _Perceptual(perceptual, image, tiled)
    target_latents = tiled.encode(target)
    delta = torch.rand_like(image) / 255

    def one_step() -> None:
        x = quantize_8bit(image + delta).requires_grad_(True)
        with autocast_context(settings.precision, image.device):
            tiled.backward(x, lambda z: (z - target_latents).pow(2).sum())
        for index, weight in enumerate(lpips.weights):
            (settings.penalty_weight * weight * torch.relu(lpips.tile_distance(x, index) - 0.0)).backward()

    counter = FlopCounterMode(display=False)
    with counter:
        one_step()
    times = [timed(image.device, one_step)[1] for _ in range(repeats)]
    return counter.get_total_flops(), statistics.median(times)


def matmul_flops_per_second(
    device: torch.device, size: int = 2048, repeats: int = 5, bf16: bool = False
) -> dict[str, float]:
    """FLOP/s of a ``size``-square matrix product two ways: ``torch.mm`` (BLAS: MKL on the CPU wheel), and the
    same-size product as a 1x1 convolution over a 64x64 map (oneDNN, the library the encoder's convolutions use;
    on some CPUs, AMD's among them, MKL takes a slower path)."""
    import torch.nn.functional as F

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    feature_map = torch.randn(1, size, 64, 64, device=device)
    kernel = torch.randn(size, size, 1, 1, device=device)
    results = {}
    cases = [
        ("mm", lambda: a @ b, 2 * size**3),
        ("conv1x1", lambda: F.conv2d(feature_map, kernel), 2 * size * size * 64 * 64),
    ]
    if bf16:
        half_map, half_kernel = feature_map.bfloat16(), kernel.bfloat16()
        cases.append(("conv1x1_bf16", lambda: F.conv2d(half_map, half_kernel), 2 * size * size * 64 * 64))
    for label, fn, flops in cases:
        fn()  # warm-up
        times = [timed(device, fn)[1] for _ in range(repeats)]
        results[label] = flops / statistics.median(times)
    return results


# ------------------------------------------------------------------------------------------------- report


def markdown_table(rows: list[dict[str, Any]], limit: dict[str, Any], header: str) -> str:
    lines = [
        header,
        "",
        "| method | lpips | target_progress | target_progress_jpeg85 | seconds | peak_mem_mb | scaled to budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['lpips']:.4f} | {r['target_progress']:.3f} | {r['target_progress_jpeg85']:.3f} | "
            f"{r['seconds']:.1f} | {r['peak_mem_mb']:.0f} | {r['scaled_to_budget']}/{r['images']} |"
        )
    lines.append("")
    ours = next(r for r in rows if r["method"] == "stylecloak")
    peers = [r for r in rows if r["method"] != "stylecloak"]
    for column, better in (("target_progress_jpeg85", max), ("target_progress", max), ("lpips", min), ("seconds", min)):
        best = better(rows, key=lambda r: r[column])
        if best["method"] == "stylecloak" or best[column] == ours[column]:
            lines.append(f"- {column}: stylecloak is best ({ours[column]}).")
        else:
            lines.append(f"- {column}: **{best['method']} wins** ({best[column]} against stylecloak's {ours[column]}).")
    for peer in peers:
        at = peer["stylecloak_jpeg85_at_this_lpips"]
        if at is None:
            continue
        verdict = "stylecloak higher" if at > peer["target_progress_jpeg85"] else f"**{peer['method']} wins**"
        lines.append(
            f"- at no more than {peer['method']}'s LPIPS on each painting, stylecloak's target_progress_jpeg85 "
            f"is {at:.3f} against {peer['target_progress_jpeg85']:.3f}: {verdict}."
        )
    glaze = next((r for r in peers if r["method"] == "glaze-v1"), None)
    if glaze is not None:
        lines.append(
            f"- time against the Glaze v1 procedure: stylecloak {ours['seconds']:.1f} s, Glaze v1 {glaze['seconds']:.1f} s per image."
        )
    lines += [
        "",
        f"Physical limit: one stylecloak step at {limit['image']} costs {limit['flops_per_step'] / 1e9:.1f} GFLOP "
        f"(fp32-equivalent count; precision {limit['precision']}) and takes {limit['step_seconds']:.3f} s: "
        f"{limit['achieved_gflops']:.1f} GFLOP/s, against {limit['matmul_gflops']:.1f} GFLOP/s for a "
        f"{limit['matmul_size']}x{limit['matmul_size']} matrix product with torch.mm and "
        f"{limit['matmul_conv1x1_gflops']:.1f} GFLOP/s for the same product as a 1x1 convolution"
        + (
            f" ({limit['matmul_conv1x1_bf16_gflops']:.1f} GFLOP/s in bf16, the encoder's precision here)"
            if limit["matmul_conv1x1_bf16_gflops"]
            else ""
        )
        + f", on the same machine in the same run: {100 * limit['fraction_of_matmul']:.0f}% of the fastest.",
    ]
    return "\n".join(lines) + "\n"


def pareto_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for r in rows:
        colour = "tab:red" if r["method"] == "stylecloak" else "tab:blue"
        ax.scatter(r["seconds"], r["target_progress_jpeg85"], color=colour, s=40)
        ax.annotate(
            r["method"],
            (r["seconds"], r["target_progress_jpeg85"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    front, best = [], -float("inf")
    for r in sorted(rows, key=lambda r: r["seconds"]):
        if r["target_progress_jpeg85"] > best:
            best = r["target_progress_jpeg85"]
            front.append(r)
    ax.step(
        [r["seconds"] for r in front],
        [r["target_progress_jpeg85"] for r in front],
        where="post",
        color="grey",
        linestyle="--",
        linewidth=1,
        label="Pareto front",
    )
    ax.set_xscale("log")
    ax.set_xlabel("seconds per image (log scale)")
    ax.set_ylabel("target progress after JPEG 85 (median)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="3 paintings at 256 px, fewer peer steps (minutes on a CPU)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", action="store_true", help="print one JSON row per method on stdout")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "compare"), help="folder for compare.md and pareto.png"
    )
    parser.add_argument("--paintings", default=str(PAINTINGS))
    parser.add_argument(
        "--target", default="ink-hatching", help="style target of stylecloak and Glaze v1 (default: ink-hatching)"
    )
    parser.add_argument("--intensity", default="medium", help="stylecloak's budget, which every method is matched to")
    parser.add_argument("--quality", default="default")
    parser.add_argument("--methods", default=None, help="comma-separated subset of method names")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA GPU here")
    settings = CloakSettings.from_presets(args.intensity, args.quality, target=args.target, device=args.device)
    encoder = load_encoder(settings.encoder, device)
    perceptual = load_lpips(settings.lpips_net, device)
    style = get_target(args.target)
    methods = methods_for(args.quick, settings)
    if args.methods:
        wanted = set(args.methods.split(","))
        methods = [m for m in methods if m.name in wanted]
    long_side = 256 if args.quick else None
    names = QUICK_PAINTINGS if args.quick else FULL_PAINTINGS
    rows = {m.name: Row(m.name, m.description) for m in methods}
    log = sys.stderr
    # stylecloak runs first on each painting: a peer that lands under stylecloak's LPIPS there is also compared
    # with stylecloak run at that lower LPIPS (its budget set to it), so that no comparison favours the side
    # that spends more visible change.
    ordered = sorted(methods, key=lambda m: m.name != "stylecloak")
    for name in names:
        original = load_painting(Path(args.paintings) / name, long_side, device)
        style_target = quantize_8bit(style.render(original.cpu(), seed=settings.seed)).to(device)
        ours: tuple[float, float] | None = None  # stylecloak's (lpips, jpeg85 progress) on this painting
        for method in ordered:
            with PeakMemory(device) as memory:
                result, seconds = timed(device, lambda: method.cloak(original, style_target, encoder, perceptual))  # noqa: B023 - called at once
            matched, lpips_value, scaled = match_budget(original, result.cloaked, perceptual, settings.budget)
            progress = TargetProgress(encoder, original, result.target, settings.tile_size)
            row = rows[method.name]
            row.lpips.append(lpips_value)
            row.target_progress.append(progress(matched))
            row.target_progress_jpeg85.append(progress(jpeg(matched, 85)))
            row.seconds.append(seconds)
            row.peak_mem_mb.append(memory.megabytes)
            row.scaled_down += int(scaled)
            print(
                f"{name:36s} {method.name:18s} lpips {lpips_value:.4f}{' (scaled)' if scaled else '         '} "
                f"progress {row.target_progress[-1]:.3f}  jpeg85 {row.target_progress_jpeg85[-1]:.3f}  "
                f"{seconds:6.1f} s  {memory.megabytes:6.0f} MB",
                file=log,
                flush=True,
            )
            if method.name == "stylecloak":
                ours = (lpips_value, row.target_progress_jpeg85[-1])
            elif ours is not None:
                row.ours_at_same_lpips.append(
                    _stylecloak_at(ours, lpips_value, original, style_target, settings, encoder, perceptual, name, log)
                )
    summaries = [rows[m.name].summary() for m in methods]
    first = load_painting(Path(args.paintings) / names[0], long_side, device)
    first_target = quantize_8bit(style.render(first.cpu(), seed=settings.seed)).to(device)
    flops, step_seconds = step_flops_and_seconds(first, first_target, encoder, perceptual, settings)
    bf16 = autocast_dtype(settings.precision, device) is torch.bfloat16
    matmul = matmul_flops_per_second(device, bf16=bf16)
    reference = max(matmul.values())
    limit = {
        "method": "physical-limit",
        "image": f"{first.shape[-1]}x{first.shape[-2]}",
        "precision": settings.precision,
        "flops_per_step": flops,
        "step_seconds": round(step_seconds, 4),
        "achieved_gflops": round(flops / step_seconds / 1e9, 2),
        "matmul_size": 2048,
        "matmul_gflops": round(matmul["mm"] / 1e9, 2),
        "matmul_conv1x1_gflops": round(matmul["conv1x1"] / 1e9, 2),
        "matmul_conv1x1_bf16_gflops": round(matmul["conv1x1_bf16"] / 1e9, 2) if bf16 else None,
        "fraction_of_matmul": round(flops / step_seconds / reference, 4),
    }
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    header = (
        f"stylecloak {__version__} against its peers, {'--quick' if args.quick else 'full'} run on {args.device} ({machine}): "
        f"{len(names)} paintings{' at 256 px' if args.quick else ''}, encoder {settings.encoder}, every method matched "
        f"to LPIPS {settings.budget}; medians over the paintings, seconds per image."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(markdown_table(summaries, limit, header))
    (out / "rows.json").write_text(json.dumps({"header": header, "rows": summaries, "physical_limit": limit}, indent=2))
    pareto_plot(
        summaries,
        out / "pareto.png",
        f"stylecloak and peers, {'--quick' if args.quick else 'full'} run on {args.device} "
        f"({machine}), matched to LPIPS {settings.budget}",
    )
    if args.json:
        for row in summaries + [limit]:
            print(json.dumps(row), flush=True)
    else:
        print(markdown_table(summaries, limit, header))
    print(f"wrote {out / 'compare.md'}, {out / 'pareto.png'} and {out / 'rows.json'}", file=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
