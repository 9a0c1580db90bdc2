"""Screen a cloak design in minutes by the fast proxy, before any mimic run: cloak a few images with the library
(target and intensity fixed, any optimiser field overridden) and print, per image and as medians, the target
progress at full size and where a mimic looks (the measures of ``bench_resize_robustness.py``: 1/1.5 to 1/4,
1/2 off the encoder's grid, JPEG q75 then 1/2), with the visibility figures and the seconds per image.

The progress at 1/2 is the figure the latent cloaks' mimic rate followed; ``dec128`` is the target progress of
the decoder's image at the mimic's 128 px (``bench_decoded_view.py``'s figure), the one the 512 px mimic
followed (docs/protection.md); ``dec128_lpips`` the same by LPIPS between the decoder's images; and
``dec128_noise`` the same after the acceptance run's noise-then-upscale purification (measured from the clean
art through the same purification). This does not run a mimic; --out keeps the cloaks for one. Results are
appended as JSON lines to --log.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_designs.py --name views-only \\
        --set mimic_downscales=2,4 --set full_size_weight=0 /tmp/curve/clean/hokusai_great_wave.png ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import torch
from bench_resize_robustness import measure

from stylecloak.countermeasures import COUNTERMEASURE_SEED, noise_then_upscale
from stylecloak.evaluation.mimic import MimicConfig, resize_for_mimic
from stylecloak.imaging import image_to_tensor, load_image, quantize_8bit, save_image
from stylecloak.methods.peers import mist_pattern
from stylecloak.metrics import decoded_target_progress
from stylecloak.models.surrogate import CombinedTerm, ensemble_denoiser, load_surrogate
from stylecloak.optimize import OptimizerConfig
from stylecloak.options import parse_factors, parse_noise_levels
from stylecloak.pipeline import Cloaker
from stylecloak.settings import (
    INTENSITY_PRESETS,
    SURROGATE_GUIDANCE,
    SURROGATE_LEVELS,
    SURROGATE_MODES,
    CloakSettings,
    check_surrogate_levels,
)
from stylecloak.targets.base import TargetStyle
from stylecloak.targets.resolve import TargetRequest, TargetResolutionError, resolve_target


def parse_override(text: str, of: type = OptimizerConfig) -> tuple[str, object]:
    """``steps=60`` -> ("steps", 60); ``mimic_downscales=2,4`` -> (..., (2, 4)); an empty tuple as ``name=``;
    typed by the default of that field of the dataclass ``of`` (a field whose default is None takes the text)."""
    name, _, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(of)}
    if name not in fields:
        raise SystemExit(f"unknown {of.__name__} field {name!r}; one of: {', '.join(fields)}")
    default = getattr(of(), name)
    if default is None:
        return name, value
    if isinstance(default, bool):
        # A word outside these would otherwise turn a switch off without a word: refuse it instead.
        words = {
            "1": True,
            "true": True,
            "yes": True,
            "on": True,
            "0": False,
            "false": False,
            "no": False,
            "off": False,
        }
        if value.lower() not in words:
            raise SystemExit(f"{of.__name__} field {name}: {value!r} is not one of {', '.join(words)}")
        return name, words[value.lower()]
    try:
        if isinstance(default, tuple):
            return name, parse_factors(value) if value else ()
        return name, type(default)(value)
    except ValueError as error:
        raise SystemExit(f"{of.__name__} field {name}: {value!r}: {error}") from None


def _noise_levels(text: str) -> tuple[int, int]:
    """LOW,HIGH noise levels for argparse, checked as the settings check them."""
    try:
        levels = parse_noise_levels(text)
        check_surrogate_levels(levels)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return levels


def _pattern_period(text: str) -> float:
    """--fixed-pattern's period: a number of pixels above 0 (0 or less would draw no pattern)."""
    try:
        period = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a period in px, got {text!r}") from None
    if not (period > 0 and math.isfinite(period)):
        raise argparse.ArgumentTypeError(f"the period must be a finite number of px above 0, got {text}")
    return period


@dataclasses.dataclass(frozen=True)
class FixedPattern:
    """One pattern for every work (a target style that ignores the content), scaled with the work so that its
    period is ``period_at_128`` px once the mimic shrinks the work to 128 px: a target the mimic sees the same in
    all its training images, where each work's own rendition differs from work to work."""

    period_at_128: float

    @property
    def name(self) -> str:  # the target cache's key
        return f"fixed-pattern-{self.period_at_128:g}"

    @property
    def description(self) -> str:
        return f"a fixed pattern, period {self.period_at_128:g} px at 128 px"

    def render(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
        height, width = image.shape[-2:]
        # 128 px is the mimic's training size, the size its period is given at.
        period = max(2, round(self.period_at_128 * max(height, width) / MimicConfig().image_size))
        return mist_pattern(height, width, period=period).to(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--name", required=True, help="the design's name in the output")
    parser.add_argument("--intensity", default="medium", choices=list(INTENSITY_PRESETS))
    parser.add_argument("--target", default="ink-hatching")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="an optimiser field")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a CloakSettings field over the intensity's preset, e.g. a bound (for the protection curve's "
        "stronger budget, one --setting per field of STRONGER in bench_protection_curve.py, with --intensity high)",
    )
    parser.add_argument("--log", type=Path, default=Path("benchmarks/results/designs.jsonl"))
    parser.add_argument("--out", type=Path, help="a folder to write the cloaks to (NAME.cloaked.png)")
    parser.add_argument(
        "--surrogate",
        type=Path,
        action="append",
        default=[],
        help="a surrogate diffusion model from `stylecloak surrogate`: adds its term to every shrunk view's loss; "
        "given more than once, an ensemble (the weight split evenly between the models)",
    )
    parser.add_argument("--denoiser-mode", default="toward-target", choices=SURROGATE_MODES)
    parser.add_argument("--denoiser-weight", type=float, default=1.0, help="the term's weight (1: like one view's)")
    parser.add_argument(
        "--toward-weight",
        type=float,
        help="with --denoiser-mode both: the toward-target term's own weight (default: --denoiser-weight)",
    )
    parser.add_argument(
        "--denoiser-from",
        metavar="CLASS",
        help="with --denoiser-mode toward-target and one --surrogate: guide from the surrogate's class CLASS instead "
        "of from the unconditioned prediction (e.g. `artist`, in a surrogate that bench_surrogate.py --artist "
        "trained on the artist's own works): the term moves what the surrogate takes for the artist toward the target",
    )
    parser.add_argument(
        "--denoiser-away-only",
        action="store_true",
        help="with --denoiser-from: pull toward the surrogate's unconditioned prediction instead of the target's "
        "class, away from CLASS alone (--target still names the views' target)",
    )
    parser.add_argument(
        "--denoiser-guidance",
        type=float,
        default=SURROGATE_GUIDANCE,
        help=f"the toward-target term's classifier-free guidance scale (default: {SURROGATE_GUIDANCE:g})",
    )
    parser.add_argument(
        "--denoiser-levels",
        type=_noise_levels,
        default=SURROGATE_LEVELS,
        metavar="LOW,HIGH",
        help="the noise levels (of the 1000 training steps) the term draws from "
        f"(default: {SURROGATE_LEVELS[0]},{SURROGATE_LEVELS[1]})",
    )
    # Each replaces the views' target: argparse refuses both together before any model loads.
    view_targets = parser.add_mutually_exclusive_group()
    view_targets.add_argument(
        "--fixed-pattern",
        type=_pattern_period,
        default=None,
        metavar="PERIOD",
        help="experiment: every work's views move toward one fixed pattern (the kind of target Mist's textural loss "
        "uses, the same for every work), its period PERIOD px at the mimic's 128 px, instead of toward the work's "
        "own rendition; --target still names the surrogate term's class",
    )
    view_targets.add_argument(
        "--target-images",
        type=Path,
        metavar="DIR",
        help="experiment: every work's views move toward its neural style transfer from the reference images in "
        "DIR (`stylecloak cloak --target-images`), a target outside the catalogue; --target still names the "
        "surrogate term's class",
    )
    args = parser.parse_args()
    overrides = dict(parse_override(text) for text in args.set)
    denoiser = None
    if args.surrogate:
        models = [load_surrogate(path, torch.device("cpu")) for path in args.surrogate]
        denoiser = ensemble_denoiser(
            models,
            args.denoiser_mode,
            args.target,
            args.denoiser_weight,
            guidance=args.denoiser_guidance,
            levels=args.denoiser_levels,
        )
        if args.toward_weight is not None:
            if not isinstance(denoiser, CombinedTerm) or len(models) > 1 or args.denoiser_mode != "both":
                raise SystemExit("--toward-weight goes with --denoiser-mode both and one --surrogate")
            away, toward = denoiser.terms
            denoiser = CombinedTerm((away, dataclasses.replace(toward, weight=args.toward_weight)))
        if args.denoiser_away_only and args.denoiser_from is None:
            raise SystemExit("--denoiser-away-only goes with --denoiser-from")
        if args.denoiser_from is not None:
            if isinstance(denoiser, CombinedTerm) or args.denoiser_mode != "toward-target":
                raise SystemExit("--denoiser-from goes with --denoiser-mode toward-target and one --surrogate")
            try:
                label = None if args.denoiser_away_only else denoiser.label
                denoiser = dataclasses.replace(denoiser, label=label, negative_label=args.denoiser_from)
            except ValueError as error:
                raise SystemExit(f"--denoiser-from: {error}") from None
    settings = dict(parse_override(text, CloakSettings) for text in args.setting)
    if "mimic_downscales" in overrides and settings.get("mimic_sizes"):
        # --set replaces the factors after each image's sizes are turned into factors: the sizes would be lost.
        raise SystemExit("--set mimic_downscales replaces the factors --setting mimic_sizes gives; use one of them")
    try:
        cloak_settings = CloakSettings.from_presets(args.intensity, target=args.target, **settings)
    except ValueError as error:  # a value out of its range, e.g. budget=5
        raise SystemExit(f"--setting: {error}") from None
    view_target: TargetStyle | None = None
    if args.fixed_pattern is not None:
        view_target = FixedPattern(args.fixed_pattern)
    elif args.target_images is not None:
        try:
            view_target = resolve_target(
                TargetRequest(reference_images=args.target_images), [], torch.device("cpu")
            ).style
        except TargetResolutionError as error:
            raise SystemExit(f"--target-images: {error}") from None
    cloaker = Cloaker(cloak_settings, denoiser=denoiser, target=view_target)

    def design(size: tuple[int, ...]) -> OptimizerConfig:  # the design under test
        return dataclasses.replace(OptimizerConfig.from_settings(cloaker.settings, size), **overrides)

    cloaker.optimizer_config = design  # type: ignore[method-assign]
    rows = []
    for path in args.images:
        rgb = load_image(path).rgb
        started = time.perf_counter()
        try:
            cloaked_rgb, report = cloaker.cloak_rgb(rgb)
        except ValueError as error:  # a --set value the optimiser refuses, e.g. view_noise=-1: one line, not a trace
            raise SystemExit(f"{path.name}: {error}") from None
        seconds = time.perf_counter() - started
        original = quantize_8bit(image_to_tensor(rgb))
        cloaked = image_to_tensor(cloaked_rgb.astype("float32") / 255)
        target = cloaker.render_target(original)
        row = measure(cloaker.encoder, original, cloaked, target)
        small = [resize_for_mimic(x, MimicConfig().image_size) for x in (original, cloaked, target)]
        row["dec128"] = decoded_target_progress(cloaker.encoder, *small)
        # The same by LPIPS between the decoder's images (the decoded-lpips objective's own figure).
        with torch.no_grad():
            seen = [cloaker.encoder.decode(cloaker.encoder.encode(x)) for x in small]
            start, now = (float(cloaker.perceptual(x, seen[2], normalize=True).sum()) for x in seen[:2])
        row["dec128_lpips"] = 1.0 - now / start if start > 0 else 0.0
        # The same after the acceptance run's noise-then-upscale purification, which the mimic then shrinks;
        # measured from the clean art put through the same purification (the same noise).
        purified = [noise_then_upscale(x, 8.0, 0.5, COUNTERMEASURE_SEED) for x in (original, cloaked)]
        small_purified = [resize_for_mimic(x, MimicConfig().image_size) for x in purified]
        row["dec128_noise"] = decoded_target_progress(cloaker.encoder, *small_purified, small[2])
        row |= {
            "lpips": report.lpips,
            "ssim": report.ssim,
            "window": report.ssim_window_min,
            "psnr": report.psnr if report.psnr is not None else 99.0,
        }
        row["seconds"] = seconds
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            save_image(args.out / f"{path.stem}.cloaked.png", cloaked_rgb)
        rows.append(row)
        print(path.stem, " ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    medians = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    print(f"median of {len(rows)}, {args.name}:", " ".join(f"{k} {v:.3f}" for k, v in medians.items()))
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a") as handle:
        record = {"name": args.name, "intensity": args.intensity, "target": args.target, "set": args.set}
        if args.setting:
            record["setting"] = args.setting
        if args.fixed_pattern is not None:
            record["fixed_pattern"] = args.fixed_pattern
        if args.target_images is not None:
            record["target_images"] = str(args.target_images)
        if args.surrogate:
            record |= {
                "surrogate": [str(path) for path in args.surrogate],
                "denoiser": [args.denoiser_mode, args.denoiser_weight],
            }
            record |= {"denoiser_guidance": args.denoiser_guidance, "denoiser_levels": args.denoiser_levels}
            if args.toward_weight is not None:
                record["toward_weight"] = args.toward_weight
            if args.denoiser_from is not None:
                record["denoiser_from"] = args.denoiser_from
                record["denoiser_away_only"] = args.denoiser_away_only
        handle.write(json.dumps(record | {"medians": medians, "rows": rows}) + "\n")


if __name__ == "__main__":
    main()
