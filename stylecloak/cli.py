"""The ``stylecloak`` command line.

    stylecloak cloak IMAGE_OR_DIR... [-o OUT_DIR] [--intensity low|medium|high] [--quality fast|default|max]
                     [--target NAME] [--encoder NAME[:PATH]] [--device auto|cpu|cuda] [--seed N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from . import __version__
from .settings import INTENSITY_BUDGETS, QUALITY_PRESETS

if TYPE_CHECKING:  # the heavy modules load only when a command needs them, so that --help is instant
    import torch

    from .pipeline import Cloaker
    from .settings import CloakSettings
    from .targets import TargetStyle
    from .targets.choice import TargetChoice

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif", ".jp2", ".qoi", ".tga", ".ppm"}

CLOAK_EPILOG = """\
examples:
  stylecloak cloak painting.png                      writes painting.cloaked.png beside it
  stylecloak cloak portfolio/ -o protected/          every image of a folder, into another folder
  stylecloak cloak art.jpg --intensity high --json   stronger cloak, one JSON report per image on stdout

intensity is the visibility budget (LPIPS distance from the original):
  """ + ", ".join(f"{k} = {v}" for k, v in INTENSITY_BUDGETS.items()) + """
  higher protects more and shows more; medium is hard to see on most artwork.
quality is the effort:
  """ + "\n  ".join(f"{k:8s} {p.steps} steps, {p.description}" for k, p in QUALITY_PRESETS.items()) + """

Inputs are never modified. Outputs are written atomically (no half-written file after a crash or Ctrl-C).
A file that fails gets a one-line error on stderr, the batch goes on, and the exit code is 1.
"""


def _error(message: str) -> None:
    print(f"stylecloak: error: {message}", file=sys.stderr)


def iter_inputs(paths: Sequence[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their images (not recursive), skipping our own outputs."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES and ".cloaked." not in child.name:
                    yield child
        else:
            yield path  # a missing or bad file is reported by the loader, in the batch


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", default="taef2", metavar="NAME[:PATH]",
                        help="encoder to cloak against (default: taef2, the embedded FLUX.2 tiny autoencoder); "
                             "see `stylecloak models list`")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylecloak",
        description="Protect artwork against style mimicry: add a barely visible cloak so that AI models see a different style.",
    )
    parser.add_argument("--version", action="version", version=f"stylecloak {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    cloak = commands.add_parser("cloak", help="cloak images", epilog=CLOAK_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Cloak images or folders of images against style mimicry.")
    cloak.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    cloak.add_argument("-o", "--out-dir", metavar="OUT_DIR", help="where to write <name>.cloaked.png (default: beside each input)")
    cloak.add_argument("--intensity", default="medium", choices=list(INTENSITY_BUDGETS), help="visibility budget (default: medium)")
    cloak.add_argument("--quality", default="default", choices=list(QUALITY_PRESETS), help="effort (default: default)")
    cloak.add_argument("--target", default="auto", metavar="NAME",
                       help="target style (default: auto, one style chosen for the whole set of inputs, or the one "
                            "pinned in OUT_DIR/.stylecloak.json); see `stylecloak targets list`")
    cloak.add_argument("--target-images", metavar="DIR",
                       help="make the target by neural style transfer from your own reference images in DIR "
                            "(e.g. public-domain works in a style far from yours); overrides --target")
    _add_model_options(cloak)
    cloak.add_argument("--seed", type=int, default=0, help="random seed: the same seed and settings give the same output")
    cloak.add_argument("--format", default="png", choices=["png", "jpg", "webp"], help="output format (default: png, lossless)")
    cloak.add_argument("--json", action="store_true", help="print one JSON report per image on stdout")
    cloak.add_argument("--steps", type=int, default=None, help="advanced: override the number of optimisation steps")
    cloak.add_argument("--budget", type=float, default=None, help="advanced: override the LPIPS budget set by --intensity")

    models = commands.add_parser("models", help="list the known models and where they are")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_sub.add_parser("list", help="every known model and whether it is present")
    path = models_sub.add_parser("path", help="print where a model's files are")
    path.add_argument("name")

    targets = commands.add_parser("targets", help="the catalogue of target styles")
    targets_sub = targets.add_subparsers(dest="targets_command", metavar="ACTION", required=True)
    targets_sub.add_parser("list", help="show the target styles")
    render = targets_sub.add_parser("render", help="render an image in a target style, to see it")
    render.add_argument("image")
    which = render.add_mutually_exclusive_group(required=True)
    which.add_argument("--target", help="the target style to render")
    which.add_argument("--all", action="store_true", help="a contact sheet: the original and every target style")
    render.add_argument("-o", "--output", required=True, help="output PNG path")
    render.add_argument("--seed", type=int, default=0)
    choose = targets_sub.add_parser("choose", help="choose one target style for a portfolio (what --target auto does)",
                                    description="Measure the style distance from the portfolio's centroid to each "
                                                "target style and choose one that is far, but not the farthest "
                                                "(the 50th-75th percentile band).")
    choose.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    choose.add_argument("--pin", metavar="DIR", help="also pin the choice in DIR/.stylecloak.json for later cloaks")
    choose.add_argument("--descriptor", default="gram", choices=["gram", "latent"],
                        help="style descriptor: VGG16 Gram statistics (default) or the encoder's latent statistics")
    _add_model_options(choose)
    choose.add_argument("--json", action="store_true", help="print the distances and the choice as JSON")

    evaluate = commands.add_parser("evaluate", help="measure a cloaked image against its original")
    evaluate.add_argument("original")
    evaluate.add_argument("cloaked")
    evaluate.add_argument("--target", default=None, metavar="NAME",
                          help="the target style the cloak aimed at (default: the one recorded in the cloaked PNG)")
    evaluate.add_argument("--target-images", metavar="DIR", help="the reference images, if the cloak used --target-images")
    _add_model_options(evaluate)
    evaluate.add_argument("--seed", type=int, default=0, help="the seed the cloak used (targets may depend on it)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "cloak":
            return run_cloak(args)
        if args.command == "models":
            return run_models(args)
        if args.command == "targets":
            return run_targets(args)
        if args.command == "evaluate":
            return run_evaluate(args)
    except KeyboardInterrupt:
        _error("interrupted; finished outputs are complete, nothing half-written was left")
        return EXIT_INTERRUPTED
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _setup_models(settings: CloakSettings, target: TargetStyle | None = None) -> Cloaker | None:
    from .models.weights import ChecksumMismatchError, ModelNotFoundError
    from .pipeline import Cloaker

    try:
        return Cloaker(settings, target=target)
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, ValueError, RuntimeError) as exc:
        _error(str(exc).strip("'\""))
        return None


def run_cloak(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from .imaging import ImageInputError
    from .pipeline import Cloaker
    from .settings import CloakSettings

    inputs = list(iter_inputs(args.inputs))
    if not inputs:
        _error("no images found in the given folders")
        return EXIT_SOME_FAILED
    overrides: dict[str, object] = {"encoder": args.encoder, "device": args.device, "seed": args.seed}
    if args.target != "auto":
        overrides["target"] = args.target
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.budget is not None:
        overrides["budget"] = args.budget
    try:
        settings = CloakSettings.from_presets(args.intensity, args.quality, **overrides)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    # Models load (and settle any error in the settings) before the target choice, which takes a while.
    cloaker = _setup_models(settings)
    if cloaker is None:
        return EXIT_USAGE
    if args.target_images:
        transfer = _reference_target(args.target_images, cloaker.device)
        if transfer is None:
            return EXIT_USAGE
        settings = replace(settings, target=transfer.name)
        cloaker = Cloaker(settings, encoder=cloaker.encoder, perceptual=cloaker.perceptual, target=transfer)
    elif args.target == "auto":
        target = _auto_target(inputs, Path(args.out_dir) if args.out_dir else inputs[0].parent, args)
        if target is None:
            return EXIT_USAGE
        settings = replace(settings, target=target)
        try:
            cloaker = Cloaker(settings, encoder=cloaker.encoder, perceptual=cloaker.perceptual)
        except KeyError as exc:  # a pinned name that is not in the catalogue
            _error(str(exc).strip("'\""))
            return EXIT_USAGE
    failures = 0
    for index, path in enumerate(inputs, 1):
        out_dir = Path(args.out_dir) if args.out_dir else path.parent
        bar = tqdm(total=settings.steps + 1, desc=f"[{index}/{len(inputs)}] {path.name}", unit="step", leave=False,
                   file=sys.stderr, disable=None)
        try:
            report = cloaker.cloak_file(path, out_dir, fmt=args.format,
                                        progress=lambda r: (bar.update(1), bar.set_postfix(lpips=f"{r.lpips:.3f}", progress=f"{r.target_progress:.2f}")))
        except (ImageInputError, OSError, ValueError, RuntimeError) as exc:
            failures += 1
            bar.close()
            _error(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        bar.close()
        if args.json:
            print(json.dumps(report.to_dict()), flush=True)
        else:
            print(f"{report.output}  lpips {report.lpips:.3f} (budget {report.budget})  target progress "
                  f"{report.target_progress:.2f}  {report.seconds:.0f} s", flush=True)
    if failures:
        _error(f"{failures} of {len(inputs)} images failed; the others were written")
        return EXIT_SOME_FAILED
    return EXIT_OK


def _load_portfolio(inputs: Sequence[Path], long_side: int = 256) -> list[torch.Tensor]:
    """The readable inputs, small (style does not need full resolution); unreadable ones are skipped here and
    reported by the batch that follows."""
    from .descriptors import resize_long_side
    from .imaging import ImageInputError, image_to_tensor, load_image

    images = []
    for path in inputs:
        try:
            image = image_to_tensor(load_image(path).rgb)
        except (ImageInputError, OSError):
            continue
        if max(image.shape[-2:]) > long_side:
            image = resize_long_side(image, long_side)
        images.append(image)
    return images


def _choose(images: Sequence[torch.Tensor], args: argparse.Namespace) -> TargetChoice | None:
    from .descriptors import GramDescriptor, LatentStatsDescriptor, StyleDescriptor
    from .models.encoders import load_encoder
    from .models.vgg import load_vgg16_features
    from .models.weights import ChecksumMismatchError, ModelNotFoundError
    from .pipeline import resolve_device
    from .targets.choice import choose_target

    try:
        device = resolve_device(args.device)
        descriptor: StyleDescriptor
        if getattr(args, "descriptor", "gram") == "latent":
            descriptor = LatentStatsDescriptor(load_encoder(args.encoder, device))
        else:
            descriptor = GramDescriptor(load_vgg16_features(device))
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, ValueError, RuntimeError) as exc:
        _error(str(exc).strip("'\""))
        return None
    return choose_target([image.to(device) for image in images], descriptor, seed=getattr(args, "seed", 0))


def _reference_target(folder: str, device: torch.device) -> TargetStyle | None:
    from .imaging import ImageInputError
    from .models.vgg import load_vgg16_features
    from .targets.transfer import load_reference_images, reference_transfer

    try:
        references = load_reference_images(folder)
        return reference_transfer(load_vgg16_features(device), [r.to(device) for r in references], label=Path(folder).name)
    except (ImageInputError, OSError, ValueError) as exc:
        _error(str(exc))
        return None


def _auto_target(inputs: Sequence[Path], pin_folder: Path, args: argparse.Namespace) -> str | None:
    """The target pinned for this portfolio, or one chosen for all the inputs and then pinned."""
    from .targets.choice import read_pin, write_pin

    try:
        pinned = read_pin(pin_folder)
    except ValueError as exc:
        _error(str(exc))
        return None
    if pinned is not None:
        print(f"stylecloak: target {pinned} (pinned in {pin_folder / '.stylecloak.json'})", file=sys.stderr)
        return pinned
    images = _load_portfolio(inputs)
    if not images:
        # Nothing readable: the batch below reports each file; no choice is made and nothing is pinned.
        from .settings import CloakSettings

        return CloakSettings().target
    choice = _choose(images, args)
    if choice is None:
        return None
    pin_folder.mkdir(parents=True, exist_ok=True)
    pin = write_pin(pin_folder, choice, __version__)
    print(f"stylecloak: target {choice.target} chosen for {choice.images} image(s), pinned in {pin}", file=sys.stderr)
    return choice.target


def run_models(args: argparse.Namespace) -> int:
    from .models.encoders import ENCODER_BACKENDS, TINY_AUTOENCODER_FILES
    from .models.weights import ModelNotFoundError, resolve_model_file

    if args.models_command == "list":
        for name, backend in ENCODER_BACKENDS.items():
            files = TINY_AUTOENCODER_FILES.get(name)
            where = "not pinned here: pass --encoder NAME:PATH"
            if files:
                try:
                    where = str(resolve_model_file(files[0], verify=False).parent)
                except ModelNotFoundError:
                    where = "missing (set STYLECLOAK_MODELS)"
            print(f"{name:10s} {backend.description}\n{'':10s} {where}")
        return EXIT_OK
    files = TINY_AUTOENCODER_FILES.get(args.name)
    if files is None:
        _error(f"no pinned files for model {args.name!r}; known: {', '.join(TINY_AUTOENCODER_FILES)}")
        return EXIT_USAGE
    try:
        print(resolve_model_file(files[0], verify=False).parent)
    except ModelNotFoundError as exc:
        _error(str(exc))
        return EXIT_SOME_FAILED
    return EXIT_OK


def run_targets(args: argparse.Namespace) -> int:
    from .imaging import ImageInputError, image_to_tensor, load_image, quantize_rgb, save_image, tensor_to_image
    from .targets import available_targets, get_target

    if args.targets_command == "list":
        for target in available_targets():
            print(f"{target.name:14s} {target.description}")
        return EXIT_OK
    if args.targets_command == "choose":
        return run_targets_choose(args)
    try:
        source = image_to_tensor(load_image(args.image).rgb)
        if args.all:
            from .targets.sheet import contact_sheet

            written = save_image(args.output, contact_sheet(source, available_targets(), seed=args.seed))
        else:
            rendered = get_target(args.target).render(source, seed=args.seed)
            written = save_image(args.output, quantize_rgb(tensor_to_image(rendered)))
    except (KeyError, ImageInputError, OSError) as exc:
        _error(f"{args.image}: {str(exc).strip(chr(34) + chr(39))}")
        return EXIT_SOME_FAILED
    print(written)
    return EXIT_OK


def run_targets_choose(args: argparse.Namespace) -> int:
    from .targets.choice import write_pin

    inputs = list(iter_inputs(args.inputs))
    if not inputs:
        _error("no images found in the given folders")
        return EXIT_SOME_FAILED
    images = _load_portfolio(inputs)
    if not images:
        _error("none of the inputs could be read, so no target can be chosen")
        return EXIT_SOME_FAILED
    choice = _choose(images, args)
    if choice is None:
        return EXIT_SOME_FAILED
    if args.pin:
        Path(args.pin).mkdir(parents=True, exist_ok=True)
        print(f"stylecloak: pinned in {write_pin(args.pin, choice, __version__)}", file=sys.stderr)
    if args.json:
        print(json.dumps(choice.to_dict()))
        return EXIT_OK
    print(f"{'target':14s} {'distance':>9s} {'percentile':>10s}")
    for candidate in choice.candidates:
        mark = "  <- chosen" if candidate.target == choice.target else ""
        print(f"{candidate.target:14s} {candidate.distance:9.3f} {candidate.percentile:10.0f}{mark}")
    return EXIT_OK


def _recorded_target(path: str) -> str | None:
    """The target style recorded in a cloaked PNG's metadata, if it has one."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            recorded = json.loads(im.info.get("stylecloak", "{}"))
    except (OSError, ValueError):
        return None
    target = recorded.get("settings", {}).get("target") if isinstance(recorded, dict) else None
    return target if isinstance(target, str) else None


def run_evaluate(args: argparse.Namespace) -> int:
    from .imaging import ImageInputError, image_to_tensor, load_image
    from .metrics import lpips_distance, psnr, target_progress
    from .optimize import quantize_8bit
    from .pipeline import resolve_device
    from .settings import CloakSettings

    target_name = args.target or _recorded_target(args.cloaked)
    if target_name is None and not args.target_images:
        _error(f"{args.cloaked} does not record its target style; pass --target NAME")
        return EXIT_USAGE
    transfer = None
    if args.target_images:
        transfer = _reference_target(args.target_images, resolve_device(args.device))
        if transfer is None:
            return EXIT_USAGE
        target_name = transfer.name
    settings = CloakSettings(target=target_name, encoder=args.encoder, device=args.device, seed=args.seed)
    cloaker = _setup_models(settings, target=transfer)
    if cloaker is None:
        return EXIT_USAGE
    try:
        original_image, cloaked_image = load_image(args.original), load_image(args.cloaked)
    except ImageInputError as exc:
        _error(str(exc))
        return EXIT_SOME_FAILED
    if original_image.rgb.shape != cloaked_image.rgb.shape:
        _error(f"sizes differ: {original_image.width}x{original_image.height} vs {cloaked_image.width}x{cloaked_image.height}")
        return EXIT_SOME_FAILED
    device = cloaker.device
    original = quantize_8bit(image_to_tensor(original_image.rgb).to(device))
    cloaked = image_to_tensor(cloaked_image.rgb).to(device)
    target = cloaker.render_target(original)
    result = {
        "original": args.original,
        "cloaked": args.cloaked,
        "target": target_name,
        "encoder": cloaker.encoder.name,
        "lpips": lpips_distance(cloaker.perceptual, original, cloaked),
        "psnr": psnr(original, cloaked),
        "max_change": round(float((original - cloaked).abs().max()) * 255),
        "target_progress": target_progress(cloaker.encoder, original, cloaked, target),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:16s} {value:.4f}" if isinstance(value, float) else f"{key:16s} {value}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
