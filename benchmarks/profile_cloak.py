"""Where the time of one cloak goes, by the PyTorch profiler: the operators that take the most time.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/profile_cloak.py --long-side 512
    ... --precision fp32 --rows 15 --trace /tmp/cloak-trace.json   (open the trace in chrome://tracing or Perfetto)

Cloaks one shared painting with the default settings under ``torch.profiler`` and prints the operator table
sorted by total CPU time (CUDA time too on a GPU), with the wall time and what the cloak reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from stylecloak.descriptors import resize_long_side
from stylecloak.imaging import image_to_tensor, load_image
from stylecloak.models.encoders import load_encoder
from stylecloak.models.lpips import load_lpips
from stylecloak.optimize import OptimizerConfig, optimize_cloak, quantize_8bit
from stylecloak.settings import CloakSettings
from stylecloak.targets import get_target

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--painting", default="hokusai_great_wave.png")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--trace", default=None, help="also write a Chrome trace here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    settings = CloakSettings(precision=args.precision, device=args.device, target="ink-hatching")
    encoder, perceptual = load_encoder(settings.encoder, device), load_lpips(settings.lpips_net, device)
    image = quantize_8bit(
        resize_long_side(image_to_tensor(load_image(PAINTINGS / args.painting).rgb), args.long_side)
    ).to(device)
    target = quantize_8bit(get_target(settings.target).render(image.cpu())).to(device)
    config = OptimizerConfig.from_settings(settings, image.shape[-2:])
    optimize_cloak(image, target, encoder, perceptual, OptimizerConfig(steps=1, precision=args.precision))  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    started = time.perf_counter()
    with profile(activities=activities) as profiler:
        outcome = optimize_cloak(image, target, encoder, perceptual, config)
    seconds = time.perf_counter() - started
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(profiler.key_averages().table(sort_by=sort, row_limit=args.rows))
    print(
        f"{args.painting} at {image.shape[-1]}x{image.shape[-2]}, precision {args.precision}: {seconds:.1f} s under the "
        f"profiler, {outcome.steps_run} steps, lpips {outcome.lpips:.4f}, target progress {outcome.target_progress:.3f}"
    )
    if args.trace:
        profiler.export_chrome_trace(args.trace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
