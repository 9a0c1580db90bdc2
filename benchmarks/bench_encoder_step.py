"""One encoder step (forward and backward of the squared latent distance, as in each optimisation step) in fp32,
in bf16 autocast, and optionally under ``torch.compile``: the median time of each, and how close the bf16
gradient is to the fp32 one.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_encoder_step.py --height 346 --width 512
    ... --compile        also time torch.compile of the encoder (bf16), with its compilation time
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from stylecloak.models.encoders import load_encoder
from stylecloak.models.tiled import TiledEncoder
from stylecloak.optimize import autocast_context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=346)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    encoder = load_encoder("taef2")
    image, target = torch.rand(2, 1, 3, args.height, args.width)
    tiled = TiledEncoder(encoder, args.height, args.width)
    target_latents = tiled.encode(target)

    def step(precision: str) -> torch.Tensor:
        x = image.clone().requires_grad_(True)
        with autocast_context(precision, x.device):
            tiled.backward(x, lambda z: (z.float() - target_latents).pow(2).sum())
        assert x.grad is not None
        return x.grad

    def median_seconds(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    cosine = float(torch.nn.functional.cosine_similarity(step("fp32").flatten(), step("bf16").flatten(), dim=0))
    print(
        f"encoder step at {args.width}x{args.height}, {torch.get_num_threads()} threads, "
        f"native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}"
    )
    for precision in ("fp32", "bf16"):
        seconds = median_seconds(lambda: step(precision))  # noqa: B023 - called at once
        print(f"  {precision}: {seconds:.3f} s (median of {args.repeats})")
    print(f"  gradient cosine bf16 vs fp32: {cosine:.4f}")
    if args.compile:
        compiled = torch.compile(encoder.encode)

        def compiled_step() -> None:
            x = image.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                (compiled(x).float() - target_latents).pow(2).sum().backward()

        started = time.perf_counter()
        compiled_step()
        compile_seconds = time.perf_counter() - started
        print(
            f"  bf16 under torch.compile: {median_seconds(compiled_step):.3f} s, after {compile_seconds:.1f} s of compilation"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
