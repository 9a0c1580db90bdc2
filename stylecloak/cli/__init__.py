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
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import first_line
from ..imaging import IMAGE_SUFFIXES, list_images
from ..settings import INTENSITY_BUDGETS, INTENSITY_PRESETS, QUALITY_PRESETS
from . import classifier as classifier_cli
from . import mimic as mimic_cli
from . import serve as serve_cli

if TYPE_CHECKING:  # the heavy modules load only when a command needs them, so that --help is instant
    from ..evaluation.evaluate import EvaluationResult
    from ..pipeline import Cloaker
    from ..settings import CloakSettings
    from ..targets import TargetStyle
    from ..targets.resolve import TargetRequest

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

CLOAK_EPILOG = (
    """\
examples:
  stylecloak cloak painting.png                      writes painting.cloaked.png beside it
  stylecloak cloak portfolio/ -o protected/          every image of a folder, into another folder
  stylecloak cloak art.jpg --intensity high --json   stronger cloak, one JSON report per image on stdout

intensity is the visibility budget. Every cloak keeps all of its bounds, checked on the saved file:
  """
    + "\n  ".join(
        f"{k:7s} LPIPS <= {p.budget}, SSIM >= {p.ssim_min}, every 64 px window SSIM >= "
        f"{p.ssim_window_min}, PSNR >= {p.psnr_min:g} dB, at most {p.max_change} levels per pixel"
        for k, p in INTENSITY_PRESETS.items()
    )
    + """
  and a per-pixel bound that follows the image's texture (flat areas change least).
  Higher intensity allows a larger change, so the encoder moves further toward the target; our own
  mimicry tests have not yet shown that any intensity stops mimicry (see the README).
quality is the effort:
  """
    + "\n  ".join(f"{k:8s} {p.steps} steps, {p.description}" for k, p in QUALITY_PRESETS.items())
    + """

Inputs are never modified. Outputs are written atomically (no half-written file after a crash or Ctrl-C).
A file that fails gets a one-line error on stderr, the batch goes on, and the exit code is 1.
"""
)


EVALUATE_EPILOG = """\
examples:
  stylecloak evaluate wave.png wave.cloaked.png          one pair, a readable report
  stylecloak evaluate portfolio/ protected/ --json       every pair of two folders, one JSON line per pair

what the numbers mean (all measured on the images as saved, 8-bit):
  lpips            how different the cloaked image looks to a perceptual model (LPIPS v0.1, AlexNet):
                   0 is identical; the cloak's budget (0.03-0.08) is the limit it was made under.
  lpips_vgg        the same with VGG16 features, a second opinion; its values run several times higher
                   than AlexNet's, so compare it only with other lpips_vgg values.
  psnr             pixel fidelity in dB (peak signal-to-noise ratio): higher is closer to the original;
                   null when the images are identical.
  ssim             structural similarity (Wang et al. 2004; 11 px Gaussian window, per RGB channel):
                   1 is identical, lower means edges and textures changed more.
  ssim_window_min  the lowest mean SSIM over 64 px windows: the most visible patch, which an image-wide
                   mean can hide (a speckled sky in an otherwise clean picture).
  max_change       the largest change of any pixel channel, in 8-bit levels (0-255).
  target_progress  how far the cloak moves the model's encoder toward the target style:
                   0 no effect, 1 the encoder sees the target style instead of yours.
  progress_by_scale  target_progress after shrinking the original, the cloak and the target alike by 1x, 2x
                   and 4x, as a mimic does when it trains at a smaller size than the posted art.
  robustness       target_progress left after what a mimic may do to scraped art first: JPEG at quality
                   95/85/75, Gaussian noise of 2/4/8 levels, downscale to 50% and back, a 1 px blur, noise
                   then upscaling, and a round trip through the model's own autoencoder. High values mean the
                   cloak survives it; near 0 means that step washes the cloak out.

where to look: NAME.visibility.png is a heat map of the local change (1 - local SSIM; dark is unchanged,
light yellow clearly changed), with the worst 64 px window outlined: open both images there at 100% first.
what the model sees: NAME.model-view.png shows the decoder's image of the original's latent (left)
beside the cloaked image's latent (right): the picture the model learns from. NAME.evaluation.json beside it
holds the numbers, for a report of the whole folder.
Folders are paired by name: NAME.png with NAME.cloaked.png (or NAME.png in the other folder); files without
a partner get one warning line each. A pair that fails gets one error line, the others go on, exit code 1.
"""


DESCRIPTOR_HELP = (
    "style descriptor for the target choice: VGG16 Gram statistics (default), the encoder's latent "
    "statistics, or a local CLIP model's image embedding (clip:PATH, a transformers folder; needs "
    "the full extra)"
)


def _descriptor_spec(value: str) -> str:
    if value in ("gram", "latent") or (value.startswith("clip:") and len(value) > 5):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: use gram, latent, or clip:PATH")


def _factors(value: str) -> tuple[int, ...]:
    try:
        factors = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole factors separated by commas, e.g. 2,4; got {value!r}"
        ) from None
    if not factors or any(f < 1 for f in factors):
        raise argparse.ArgumentTypeError(f"factors must be whole numbers >= 1, got {value!r}")
    return factors


def _error(message: str) -> None:
    print(f"stylecloak: error: {message}", file=sys.stderr)


def iter_inputs(paths: Sequence[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their images (not recursive), skipping our own outputs."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from list_images(path, include_cloaked=False)
        else:
            yield path  # a missing or bad file is reported by the loader, in the batch


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoder",
        default="taef2",
        metavar="NAME[:PATH]",
        help="encoder to cloak against (default: taef2, the embedded FLUX.2 tiny autoencoder); "
        "see `stylecloak models list`",
    )
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute (default: auto)"
    )


def _add_cloak_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how to cloak, shared by `cloak` and `batch`."""
    parser.add_argument(
        "--intensity", default="medium", choices=list(INTENSITY_BUDGETS), help="visibility budget (default: medium)"
    )
    parser.add_argument("--quality", default="default", choices=list(QUALITY_PRESETS), help="effort (default: default)")
    parser.add_argument(
        "--target",
        default="auto",
        metavar="NAME",
        help="target style (default: auto, one style chosen for the whole set of inputs, or the one "
        "pinned in OUT_DIR/.stylecloak.json); see `stylecloak targets list`",
    )
    parser.add_argument(
        "--target-model",
        metavar="PATH",
        help="for --target sd:PROMPT: a local Stable Diffusion folder (diffusers format) that renders "
        "the target with img2img; needs the full extra",
    )
    parser.add_argument(
        "--target-strength",
        type=float,
        default=None,
        metavar="S",
        help="for --target sd:PROMPT: img2img strength in (0, 1] (default 0.5)",
    )
    parser.add_argument(
        "--descriptor",
        default="gram",
        type=_descriptor_spec,
        metavar="gram|latent|clip:PATH",
        help="with --target auto: " + DESCRIPTOR_HELP,
    )
    parser.add_argument(
        "--target-images",
        metavar="DIR",
        help="make the target by neural style transfer from your own reference images in DIR "
        "(e.g. public-domain works in a style far from yours); overrides --target",
    )
    _add_model_options(parser)
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed and settings give the same output"
    )
    parser.add_argument(
        "--format",
        default="png",
        choices=["png", "jpg", "webp"],
        help="output format (default: png, lossless: the file holds exactly the checked pixels; jpg "
        "and webp add their own compression loss on top, which the report measures)",
    )
    parser.add_argument("--steps", type=int, default=None, help="advanced: override the number of optimisation steps")
    parser.add_argument(
        "--budget", type=float, default=None, help="advanced: override the LPIPS budget set by --intensity"
    )
    parser.add_argument(
        "--mimic-downscales",
        type=_factors,
        default=(),
        metavar="F[,F...]",
        help="experimental: also optimise for the image shrunk by these factors (e.g. 2,4), as a "
        "mimic that trains at a smaller size sees it; it moves the shrunk image much further "
        "and the full-size one less (see docs/protection.md)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "fp32"],
        help="advanced: the encoder's arithmetic while optimising (default: auto, bf16 where the GPU or "
        "CPU computes it natively, about twice as fast; the budget is always measured in fp32)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylecloak",
        description="Add a barely visible cloak to artwork so that an AI model's image encoder sees it in a different "
        "style (the Glaze method). Our own mimicry tests have not yet shown that it stops style mimicry: "
        "see the README's measurements.",
    )
    parser.add_argument("--version", action="version", version=f"stylecloak {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    cloak = commands.add_parser(
        "cloak",
        help="cloak images",
        epilog=CLOAK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Cloak images or folders of images: a change within visibility bounds that "
        "moves the model's encoder toward another style.",
    )
    cloak.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    cloak.add_argument(
        "-o", "--out-dir", metavar="OUT_DIR", help="where to write <name>.cloaked.png (default: beside each input)"
    )
    _add_cloak_options(cloak)
    cloak.add_argument("--json", action="store_true", help="print one JSON report per image on stdout")

    from . import batch as batch_command

    batch_command.add_parser(commands, _add_cloak_options)

    models = commands.add_parser("models", help="list the known models and where they are")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_sub.add_parser("list", help="every known model: size, licence, upstream, and whether it is present")
    path = models_sub.add_parser("path", help="print where a model's files are")
    path.add_argument("name")
    fetch = models_sub.add_parser("fetch", help="download a model into the user cache (checksum-verified, resumable)")
    fetch.add_argument("name")
    fetch.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="download a model that has no pinned checksum or revision here yet (its sha256 is printed)",
    )

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
    choose = targets_sub.add_parser(
        "choose",
        help="choose one target style for a portfolio (what --target auto does)",
        description="Measure the style distance from the portfolio's centroid to each "
        "target style and choose one that is far, but not the farthest "
        "(the 50th-75th percentile band).",
    )
    choose.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    choose.add_argument("--pin", metavar="DIR", help="also pin the choice in DIR/.stylecloak.json for later cloaks")
    choose.add_argument(
        "--descriptor", default="gram", type=_descriptor_spec, metavar="gram|latent|clip:PATH", help=DESCRIPTOR_HELP
    )
    _add_model_options(choose)
    choose.add_argument("--json", action="store_true", help="print the distances and the choice as JSON")

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a cloak: visibility, effect, robustness, what the model sees",
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure cloaked images against their originals. "
        "ORIGINAL and CLOAKED are two image files, or two folders whose images "
        "are paired by name.",
    )
    evaluate.add_argument("original", metavar="ORIGINAL", help="the original image, or a folder of originals")
    evaluate.add_argument(
        "cloaked",
        metavar="CLOAKED",
        help="the cloaked image, or a folder with NAME.cloaked.png files (or files named as the originals)",
    )
    evaluate.add_argument(
        "--target",
        default=None,
        metavar="NAME",
        help="the target style the cloak aimed at (default: the one recorded in each cloaked PNG)",
    )
    evaluate.add_argument(
        "--target-images", metavar="DIR", help="the reference images, if the cloak used --target-images"
    )
    evaluate.add_argument(
        "--encoder",
        default=None,
        metavar="NAME[:PATH]",
        help="the encoder the cloak attacked (default: the one recorded in each cloaked PNG, else taef2)",
    )
    evaluate.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute (default: auto)"
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the seed the cloak used, which some targets depend on (default: the recorded one, else 0)",
    )
    evaluate.add_argument(
        "--out",
        metavar="DIR",
        help="where to write NAME.model-view.png and NAME.evaluation.json (default: a model-view/ "
        "folder inside the CLOAKED folder, or beside the CLOAKED file); inputs are never overwritten",
    )
    evaluate.add_argument(
        "--no-robustness",
        action="store_true",
        help="skip the robustness table and the progress by scale (thirteen more encoder passes)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object per pair on stdout")

    mimic_cli.add_parser(commands)
    classifier_cli.add_parser(commands)
    serve_cli.add_parser(commands)

    report = commands.add_parser(
        "report",
        help="one HTML page from evaluate and mimic results",
        description="Gather what `stylecloak evaluate --out DIR` and `stylecloak mimic --out DIR` "
        "wrote anywhere under DIR into one self-contained HTML page: the tables, "
        "original/cloaked/what-the-model-sees triptychs, robustness curves and "
        "mimicry samples. Images are embedded, so the page is a single file.",
    )
    report.add_argument("folder", metavar="DIR", help="a folder holding evaluation and mimicry results")
    report.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="the page to write (default: DIR/report.html)"
    )
    report.add_argument("--title", default="stylecloak report")
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
        if args.command == "batch":
            from . import batch as batch_command

            return batch_command.run(args)
        if args.command == "models":
            return run_models(args)
        if args.command == "targets":
            return run_targets(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "mimic":
            return mimic_cli.run(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "style-classifier":
            return classifier_cli.run(args)
        if args.command == "serve":
            return serve_cli.run(args)
    except KeyboardInterrupt:
        _error("interrupted; finished outputs are complete, nothing half-written was left")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `stylecloak models list | head`: the reader has gone, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def run_report(args: argparse.Namespace) -> int:
    from ..evaluation.report import build_report

    folder = Path(args.folder)
    if not folder.is_dir():
        _error(f"{folder}: not a folder")
        return EXIT_USAGE
    output = Path(args.output) if args.output else folder / "report.html"
    page, inputs = build_report(folder, title=args.title)
    for skipped in inputs.skipped:
        _error(f"skipped {skipped}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(output)  # never a half-written page
    print(f"{output}: {len(inputs.evaluations)} evaluation(s), {len(inputs.mimicry)} mimicry run(s)")
    return EXIT_OK


def cloak_settings(args: argparse.Namespace) -> CloakSettings:
    """The settings that the cloak options ask for (a catalogue --target among them). Raises ValueError."""
    from ..settings import CloakSettings

    overrides: dict[str, object] = {
        "encoder": args.encoder,
        "device": args.device,
        "seed": args.seed,
        "precision": args.precision,
    }
    if args.target != "auto" and not args.target.startswith("sd:"):
        overrides["target"] = args.target
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.budget is not None:
        overrides["budget"] = args.budget
    if args.mimic_downscales:
        overrides["mimic_downscales"] = args.mimic_downscales
    return CloakSettings.from_presets(args.intensity, args.quality, **overrides)


def _setup_models(settings: CloakSettings, target: TargetStyle | None = None) -> Cloaker | None:
    from ..models.weights import ChecksumMismatchError, ModelNotFoundError
    from ..pipeline import Cloaker

    try:
        return Cloaker(settings, target=target)
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, ValueError, RuntimeError) as exc:
        _error(str(exc).strip("'\""))
        return None


def run_cloak(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..imaging import ImageInputError
    from ..outputs import pin_folder
    from ..targets.resolve import TargetResolutionError, resolve_target

    inputs = list(iter_inputs(args.inputs))
    if not inputs:
        _error("no images found in the given folders")
        return EXIT_SOME_FAILED
    try:
        settings = cloak_settings(args)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    # Every place the run writes is checked before any model loads or any optimisation starts.
    inputs, failures = _writable_inputs(inputs, args.out_dir)
    if not inputs:
        return EXIT_SOME_FAILED
    if not _fetch_missing_encoders(settings.encoder):
        return EXIT_SOME_FAILED
    # Models load (and settle any error in the settings) before the target choice, which takes a while.
    cloaker = _setup_models(settings)
    if cloaker is None:
        return EXIT_USAGE
    # A catalogue name is in the settings already (and was checked as the models loaded); the rest is resolved
    # by the library: the auto choice with its pin, reference images, a Stable Diffusion prompt.
    if args.target == "auto" or args.target.startswith("sd:") or args.target_images:
        try:
            resolved = resolve_target(
                _target_request(args),
                inputs,
                cloaker.device,
                pin_folder=pin_folder(inputs, args.out_dir),
                encoder_spec=settings.encoder,
                seed=settings.seed,
                fallback=settings.target,
                version=__version__,
            )
        except TargetResolutionError as exc:
            _error(str(exc))
            return EXIT_USAGE
        for note in resolved.notes:
            print(f"stylecloak: {note}", file=sys.stderr)
        cloaker = cloaker.retarget(resolved.name, resolved.style)
        settings = cloaker.settings
    total = len(inputs) + failures
    for index, path in enumerate(inputs, 1):
        out_dir = Path(args.out_dir) if args.out_dir else path.parent
        bar = tqdm(
            total=settings.steps + 1,
            desc=f"[{index}/{len(inputs)}] {path.name}",
            unit="step",
            leave=False,
            file=sys.stderr,
            disable=None,
        )
        # Until the first step, the time goes to the target (seconds for a rendition, longer for reference
        # images or Stable Diffusion, once per image: then it is cached).
        bar.set_postfix_str("rendering the target")
        try:
            report = cloaker.cloak_file(path, out_dir, fmt=args.format, progress=_step_counter(bar))
        except (ImageInputError, OSError, ValueError, RuntimeError) as exc:
            failures += 1
            bar.close()
            _error(f"{path}: {first_line(exc)}")
            continue
        bar.close()
        if args.json:
            print(json.dumps(report.to_dict()), flush=True)
        else:
            psnr = "identical" if report.psnr is None else f"{report.psnr:.1f} dB"
            print(
                f"{report.output}  lpips {report.lpips:.3f} (budget {report.budget})  ssim {report.ssim:.3f}  "
                f"worst window {report.ssim_window_min:.3f}  psnr {psnr}  target progress "
                f"{report.target_progress:.2f}  {report.seconds:.0f} s",
                flush=True,
            )
    if failures:
        _error(_failure_summary(failures, total, "images", "written"))
        return EXIT_SOME_FAILED
    return EXIT_OK


def _step_counter(bar: Any) -> Any:
    """A progress callback that moves ``bar`` one step and shows the step's figures."""

    def update(record: Any) -> None:
        bar.update(1)
        bar.set_postfix(lpips=f"{record.lpips:.3f}", progress=f"{record.target_progress:.2f}")

    return update


def _failure_summary(failures: int, total: int, things: str, done: str) -> str:
    """The closing line of a batch with failures; it speaks of "the others" only when there are others."""
    if total == 1:
        return f"the {things.rstrip('s')} failed; nothing was {done}"
    if failures == total:
        return f"all {total} {things} failed; nothing was {done}"
    return f"{failures} of {total} {things} failed; the others were {done}"


def _writable_inputs(inputs: list[Path], out_dir: str | None) -> tuple[list[Path], int]:
    """The inputs whose output folder can be written, and how many could not (each told in one line).

    With ``-o`` one folder serves all: if it cannot be written, nothing can. Without it, each output goes beside
    its input, and an input whose folder cannot be written fails alone."""
    from ..outputs import OutputError, check_writable_folder

    folders = [Path(out_dir)] if out_dir else sorted({path.parent for path in inputs})
    unwritable: dict[Path, str] = {}
    for folder in folders:
        try:
            check_writable_folder(folder)
        except OutputError as exc:
            unwritable[folder] = str(exc)
            _error(str(exc))
    if out_dir:
        return ([], len(inputs)) if unwritable else (inputs, 0)
    kept = [path for path in inputs if path.parent not in unwritable]
    return kept, len(inputs) - len(kept)


def _target_request(args: argparse.Namespace) -> TargetRequest:
    from ..targets.resolve import TargetRequest

    return TargetRequest(
        target=getattr(args, "target", None) or "auto",
        reference_images=getattr(args, "target_images", None),
        sd_model=getattr(args, "target_model", None),
        sd_strength=getattr(args, "target_strength", None),
        descriptor=getattr(args, "descriptor", "gram"),
    )


def run_models(args: argparse.Namespace) -> int:
    from ..models.registry import KNOWN_MODELS, present_size_mb

    if args.models_command == "list":
        for model in KNOWN_MODELS.values():
            folder = model.location()
            size = f"{model.size_mb:.1f} MB" if model.size_mb else "size unknown"
            state = (
                f"present: {folder} ({present_size_mb(folder):.1f} MB)"
                if folder
                else "missing: stylecloak models fetch " + model.name
            )
            pin = "pinned" if model.pinned else "not pinned yet"
            print(
                f"{model.name:9s} {model.description}\n{'':9s} {size}, licence {model.licence}, {pin}, from {model.upstream}\n"
                f"{'':9s} {state}"
            )
        return EXIT_OK
    model = KNOWN_MODELS.get(args.name)
    if model is None:
        _error(f"unknown model {args.name!r}; known models: {', '.join(KNOWN_MODELS)}")
        return EXIT_USAGE
    if args.models_command == "path":
        folder = model.location()
        if folder is None:
            _error(
                f"{model.name} is not here; get it with `stylecloak models fetch {model.name}` (or set STYLECLOAK_MODELS "
                f"to the folder that holds '{model.name}/')"
            )
            return EXIT_SOME_FAILED
        print(folder)
        return EXIT_OK
    return _fetch_model(model, args.allow_unpinned)


def _fetch_missing_encoders(encoder_spec: str) -> bool:
    """The one download that happens without `models fetch`: the first cloak with a pinned non-default encoder
    that is not here fetches it, after saying so (the default encoder never is). False (with the error printed)
    if that fails."""
    from ..models.encoders import DEFAULT_ENCODER
    from ..models.registry import missing_models

    for model in missing_models(encoder_spec):
        if not model.pinned or model.name == DEFAULT_ENCODER:
            # Never fetched unasked: the default encoder is set up once with `models fetch` or STYLECLOAK_MODELS
            # (as README says), and loading a missing one says how to get it.
            continue
        size = f"{model.size_mb:.0f} MB" if model.size_mb else "size not known here"
        print(
            f"stylecloak: encoder {model.name} is not here yet; fetching it once into the user cache ({size}; "
            f"pinned; or give a local copy with --encoder {model.name}:PATH)",
            file=sys.stderr,
        )
        if _fetch_model(model, allow_unpinned=False, print_path=False) != EXIT_OK:
            return False
    return True


def _fetch_model(model: Any, allow_unpinned: bool, print_path: bool = True) -> int:
    """`models fetch`: download (or verify what is here), with progress bars; the folder goes to stdout."""
    from tqdm import tqdm

    from ..models.fetch import FetchError
    from ..models.registry import fetch_model
    from ..models.weights import ChecksumMismatchError, sha256_file, verify_sha256

    bars: list[Any] = []

    def progress_factory(filename: str) -> Any:
        bar = tqdm(desc=filename, unit="B", unit_scale=True, file=sys.stderr, disable=None)
        bars.append(bar)

        def update(done: int, total: int | None) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return update

    present = model.location()
    if present is not None and model.pinned and model.files:
        try:
            for spec in model.files:
                verify_sha256(present / spec.filename, spec.sha256)
        except ChecksumMismatchError as exc:
            _error(f"{exc} (fetching a fresh copy into the cache)")
        else:
            print(f"stylecloak: {model.name} is already here, verified", file=sys.stderr)
            if print_path:
                print(present)
            return EXIT_OK
    if model.pinned or allow_unpinned:
        print(f"stylecloak: fetching {model.name} from {model.upstream}", file=sys.stderr)
    try:
        folder = fetch_model(model, allow_unpinned=allow_unpinned, progress_factory=progress_factory)
    except (FetchError, ChecksumMismatchError, OSError) as exc:
        for bar in bars:
            bar.close()
        _error(str(exc))
        return EXIT_SOME_FAILED
    for bar in bars:
        bar.close()
    if not model.pinned:
        for spec in model.files:
            print(f"{spec.filename} sha256 {sha256_file(folder / spec.filename)}", file=sys.stderr)
    if print_path:
        print(folder)
    return EXIT_OK


def run_targets(args: argparse.Namespace) -> int:
    from ..imaging import ImageInputError, image_to_tensor, load_image, quantize_rgb, save_image, tensor_to_image
    from ..targets import available_targets, get_target

    if args.targets_command == "list":
        for target in available_targets():
            print(f"{target.name:14s} {target.description}")
        return EXIT_OK
    if args.targets_command == "choose":
        return run_targets_choose(args)
    try:
        source = image_to_tensor(load_image(args.image).rgb)
        if args.all:
            from ..targets.sheet import contact_sheet

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
    from ..pipeline import resolve_device
    from ..targets.choice import choose_target, load_portfolio, write_pin
    from ..targets.resolve import TargetResolutionError, make_descriptor

    inputs = list(iter_inputs(args.inputs))
    if not inputs:
        _error("no images found in the given folders")
        return EXIT_SOME_FAILED
    images = load_portfolio(inputs)
    if not images:
        _error("none of the inputs could be read, so no target can be chosen")
        return EXIT_SOME_FAILED
    try:
        device = resolve_device(args.device)
        descriptor = make_descriptor(args.descriptor, device, args.encoder)
    except (TargetResolutionError, RuntimeError) as exc:
        _error(str(exc))
        return EXIT_SOME_FAILED
    choice = choose_target([image.to(device) for image in images], descriptor, seed=getattr(args, "seed", 0))
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


def _print_evaluation(result: EvaluationResult) -> None:
    psnr = "identical" if result.psnr is None else f"{result.psnr:.1f} dB"
    print(
        f"{result.original} -> {result.cloaked}  ({result.width}x{result.height}, target {result.target}, "
        f"encoder {result.encoder})"
    )
    print(
        f"  lpips {result.lpips:.4f} (vgg {result.lpips_vgg:.4f})  psnr {psnr}  ssim {result.ssim:.4f}  "
        f"worst 64 px window ssim {result.ssim_window_min:.4f}  max change {result.max_change}/255"
    )
    print(f"  target progress {result.target_progress:.3f}")
    if result.robustness:
        cells = [f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in result.robustness.items()]
        print("  after countermeasures: " + ", ".join(cells))
    if result.progress_by_scale:
        names = {"1x": "full size", "2x": "1/2 size", "4x": "1/4 size"}
        cells = [
            f"{names.get(k, k)} {'(too small)' if v is None else f'{v:.3f}'}"
            for k, v in result.progress_by_scale.items()
        ]
        print("  target progress where a mimic looks (shrunk as for training): " + ", ".join(cells))
    if result.visibility_map:
        print(f"  where the change is most visible: {result.visibility_map}")
    if result.model_view:
        print(f"  what the model sees: {result.model_view}")


def run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import pair_folders
    from ..evaluation.pairs import evaluate_files, load_evaluation_models
    from ..models.weights import ChecksumMismatchError, ModelNotFoundError

    original, cloaked = Path(args.original), Path(args.cloaked)
    if original.is_dir() != cloaked.is_dir():
        _error("ORIGINAL and CLOAKED must both be image files or both be folders")
        return EXIT_USAGE
    if original.is_dir():
        pairing = pair_folders(original, cloaked, IMAGE_SUFFIXES)
        for line in pairing.unpaired:
            print(f"stylecloak: warning: {line}", file=sys.stderr)
        pairs = pairing.pairs
        if not pairs:
            _error(f"no image of {original} has a cloaked partner in {cloaked}")
            return EXIT_SOME_FAILED
        default_out = cloaked / "model-view"
    else:
        pairs = [(original.stem, original, cloaked)]
        default_out = cloaked.parent / "model-view"
    out_dir = Path(args.out) if args.out else default_out
    try:
        models = load_evaluation_models(args.device, args.encoder, args.target, args.target_images)
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, ValueError, RuntimeError, OSError) as exc:
        _error(str(exc).strip("'\""))
        return EXIT_USAGE
    failures = 0
    for name, original_path, cloaked_path in pairs:
        try:
            result = evaluate_files(
                name,
                original_path,
                cloaked_path,
                out_dir,
                models,
                target=args.target,
                encoder=args.encoder,
                seed=args.seed,
                robustness=not args.no_robustness,
            )
        except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
            failures += 1
            _error(f"{cloaked_path}: {first_line(exc)}")
            continue
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
        else:
            _print_evaluation(result)
    if failures:
        _error(_failure_summary(failures, len(pairs), "pairs", "measured"))
        return EXIT_SOME_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
