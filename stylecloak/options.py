"""Every ``stylecloak`` command and option, with its default and its documentation: the one place they are written.

The command line turns these tables into argparse parsers (``stylecloak.cli``) and adds nothing of its own, so
a default or a help text is changed here and nowhere else. The cloak's defaults are read from
:class:`~stylecloak.settings.CloakSettings`, the attack's from its presets. This module imports no torch, so that
``stylecloak --help`` stays instant; value parsers raise ``ValueError`` with a message meant for people.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .metrics import MIN_SCALED_SIDE
from .settings import (
    INTENSITY_PRESETS,
    MIMIC_SIZE_MEASURES,
    QUALITY_PRESETS,
    SURROGATE_MODES,
    VIEW_OBJECTIVES,
    CloakSettings,
    is_factor,
    is_mimic_size,
)

_CLOAK = CloakSettings()  # the library's defaults, which the command line shows and uses
DEFAULT_PURIFIERS = ("jpeg75", "noise8+upscale", "vae_roundtrip")
MIMIC_PRESET_NAMES = ("quick", "full")  # stylecloak.evaluation.mimic.MIMIC_PRESETS; a test keeps them equal
# stylecloak.evaluation.style_features' working size, detail bottleneck and training views, repeated so that
# building the parser does not import torch (every `stylecloak` call would pay for it); a test keeps them equal.
WORKING_LONG_SIDE, DETAIL_LONG_SIDE, TRAINING_VIEWS = 128, 96, 6


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags and argparse's keywords (help, default, type, choices, ...)."""

    flags: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    exclusive_group: str | None = None  # options sharing a group name are mutually exclusive, one required


def option(*flags: str, exclusive_group: str | None = None, **settings: Any) -> Option:
    return Option(flags, settings, exclusive_group)


@dataclass(frozen=True)
class Command:
    """A command (or an action of one, such as ``models list``): its texts, options and actions."""

    name: str
    help: str
    options: tuple[Option, ...] = ()
    description: str | None = None
    epilog: str | None = None  # laid out as written (examples, tables)
    actions: tuple[Command, ...] = ()  # sub-commands, chosen by a required ACTION argument


# -- value parsers: text -> value, or ValueError with the reason ------------------------------------------------


def parse_factors(value: str) -> tuple[float, ...]:
    """``2,4`` -> (2, 4); ``2,2.5`` -> (2, 2.5): downscale factors of at least 1 (a whole one stays an int, so that
    records read ``2`` and not ``2.0``)."""
    return _parse_list(value, _number, is_factor, "factors", "2,4 or 2,2.5,3", "numbers >= 1")


def parse_sizes(value: str) -> tuple[int, ...]:
    """``512,1024`` -> (512, 1024): a mimic's training sizes, whole numbers of pixels of at least MIN_SCALED_SIDE."""
    return _parse_list(
        value, int, is_mimic_size, "sizes in pixels", "512,1024", f"whole numbers of pixels >= {MIN_SCALED_SIDE}"
    )


def parse_noise_levels(value: str) -> tuple[int, int]:
    """``500,980`` -> (500, 980): the LOW,HIGH noise levels a surrogate's term draws from (the settings check
    the range: stylecloak.settings.check_surrogate_levels)."""
    levels = _parse_list(value, int, lambda _: True, "whole noise levels", "500,980", "whole numbers")
    if len(levels) != 2:
        raise ValueError(f"expected two noise levels LOW,HIGH, e.g. 500,980; got {value!r}")
    return levels[0], levels[1]


def _parse_list(
    value: str, convert: Callable[[str], Any], valid: Callable[[Any], bool], what: str, example: str, rule: str
) -> tuple[Any, ...]:
    """Comma-separated items, each converted and checked; ValueError saying which rule the text breaks."""
    try:
        items = tuple(convert(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected {what} separated by commas, e.g. {example}; got {value!r}") from None
    if not items or not all(valid(item) for item in items):
        raise ValueError(f"{what.split()[0]} must be {rule}, got {value!r}")
    return items


def _number(text: str) -> float:
    """``2`` -> 2 (int), ``2.5`` -> 2.5, ``3.0`` -> 3 (int)."""
    number = float(text)
    return int(number) if number.is_integer() else number


def parse_descriptor(value: str) -> str:
    if value in ("gram", "latent") or (value.startswith("clip:") and len(value) > 5):
        return value
    raise ValueError(f"{value!r}: use gram, latent, or clip:PATH")


def parse_judge(value: str) -> str:
    if value in ("linear", "centroid", "texture") or (value.startswith("clip:") and len(value) > 5):
        return value
    raise ValueError(f"{value!r}: use linear, centroid, texture or clip:PATH")


def parse_second_judge(value: str) -> str:
    return "none" if value.strip().lower() == "none" else parse_judge(value)


def parse_folds(text: str) -> int | str:
    if text.lower() == "loo":
        return "loo"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number of folds (2 or more) or 'loo', got {text!r}") from None
    if value < 2:
        raise ValueError(f"need at least 2 folds, got {value}")
    return value


def whole_number_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"whole_number_at_least_{minimum}"
    return parse


def parse_blur_sigma(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of pixels, got {text!r}") from None
    if not 0 <= value <= 20:
        raise ValueError(f"blur must lie between 0 and 20 px, got {value}")
    return value


# -- the options shared by several commands ---------------------------------------------------------------------

DESCRIPTOR_HELP = (
    "style descriptor for the target choice: VGG16 Gram statistics (default), the encoder's latent "
    "statistics, or a local CLIP model's image embedding (clip:PATH, a transformers folder; needs "
    "the full extra)"
)
DEVICE = option(
    "--device", default=_CLOAK.device, choices=["auto", "cpu", "cuda"], help="where to compute (default: auto)"
)
MODEL_OPTIONS = (
    option(
        "--encoder",
        default=_CLOAK.encoder,
        metavar="NAME[:PATH]",
        help="encoder to cloak against (default: taef2, the embedded FLUX.2 tiny autoencoder); "
        "see `stylecloak models list`",
    ),
    DEVICE,
)
# How to cloak: shared by `cloak` and `batch`, and read back by stylecloak.cloak_files.settings_for_options.
CLOAK_OPTIONS = (
    option(
        "--intensity",
        default=_CLOAK.intensity,
        choices=list(INTENSITY_PRESETS),
        help="visibility budget (default: medium)",
    ),
    option("--quality", default=_CLOAK.quality, choices=list(QUALITY_PRESETS), help="effort (default: default)"),
    option(
        "--target",
        default="auto",
        metavar="NAME",
        help="target style (default: auto, one style chosen for the whole set of inputs, or the one "
        "pinned in OUT_DIR/.stylecloak.json); see `stylecloak targets list`",
    ),
    option(
        "--target-model",
        metavar="PATH",
        help="for --target sd:PROMPT: a local Stable Diffusion folder (diffusers format) that renders "
        "the target with img2img; needs the full extra",
    ),
    option(
        "--target-strength",
        type=float,
        default=None,
        metavar="S",
        help="for --target sd:PROMPT: img2img strength in (0, 1] (default 0.5)",
    ),
    option(
        "--descriptor",
        default="gram",
        type=parse_descriptor,
        metavar="gram|latent|clip:PATH",
        help="with --target auto: " + DESCRIPTOR_HELP,
    ),
    option(
        "--target-images",
        metavar="DIR",
        help="make the target by neural style transfer from your own reference images in DIR "
        "(e.g. public-domain works in a style far from yours); overrides --target",
    ),
    *MODEL_OPTIONS,
    option(
        "--seed",
        type=int,
        default=_CLOAK.seed,
        help="random seed: the same seed and settings give the same output on the same number of CPU threads",
    ),
    option(
        "--format",
        default="png",
        choices=["png", "jpg", "webp"],
        help="output format (default: png, lossless: the file holds exactly the checked pixels; jpg "
        "and webp add their own compression loss on top, which the report measures)",
    ),
    option("--steps", type=int, default=None, help="advanced: override the number of optimisation steps"),
    option("--budget", type=float, default=None, help="advanced: override the LPIPS budget set by --intensity"),
    option(
        "--mimic-downscales",
        type=parse_factors,
        default=_CLOAK.mimic_downscales,
        metavar="F[,F...]",
        help="also optimise for the image shrunk by these factors, whole or not (e.g. 2,2.5,3), as a mimic "
        "that trains on smaller copies sees it (default: 2,4; 1: the full size alone, which moves the "
        "full-size image further and the shrunk ones about six times less, and takes about a fifth less "
        "time). Our test mimic noticed the default more than the full size alone, but neither stops it "
        "(see docs/protection.md)",
    ),
    option(
        "--mimic-sizes",
        type=parse_sizes,
        default=None,
        metavar="PX[,PX...]",
        help="experimental, instead of --mimic-downscales: aim at the sizes a mimic trains at (pixels, e.g. "
        "512,1024; of the side --mimic-size-of names): each image is also optimised shrunk to each size "
        "smaller than it, whatever size it is posted at. Aimed so, it can only protect against a mimic "
        "that trains at one of them. On our test mimic it did better than fixed factors where the shrink fell "
        "between them, short of the goal (see docs/protection.md)",
    ),
    option(
        "--mimic-size-of",
        choices=list(MIMIC_SIZE_MEASURES),
        default=_CLOAK.mimic_size_of,
        help="with --mimic-sizes, which of the image's dimensions a mimic brings to its training size "
        "(default: short-side, as diffusers' DreamBooth and LoRA scripts resize before a square crop; "
        "long-side: fit within the square; area: the square root of the pixel count, as aspect-ratio "
        "bucketing does)",
    ),
    option(
        "--mimic-jitter",
        action="store_true",
        help="experimental, with --mimic-downscales: draw each step's factor around each one and a random "
        "crop offset, for mimics that shrink by other factors or crop anywhere (flatter: less at the "
        "exact factors, more between them; see docs/protection.md)",
    ),
    option(
        "--target-at-mimic-size",
        action=argparse.BooleanOptionalAction,
        default=_CLOAK.target_at_mimic_size,
        help="experimental: draw the target style on the image shrunk by the largest --mimic-downscales "
        "factor and enlarge it, so that its strokes are still strokes where the mimic looks instead of "
        "averaging away into a tone; it did not help our test mimic (see docs/protection.md)",
    ),
    option(
        "--view-objective",
        default=_CLOAK.view_objective,
        choices=list(VIEW_OBJECTIVES),
        help="experimental: what the cloak moves toward the target at the shrunk sizes (default: latent, the "
        "encoder's latents; decoded: the decoder's image of them, which is what a latent mimic can reproduce; "
        "decoded-lpips: the same images compared by LPIPS instead of pixel by pixel, no better against our test "
        "mimic; decoded-gram: by their style statistics (Gram matrices of the LPIPS network's first two layers), "
        "wherever things are; see docs/protection.md)",
    ),
    option(
        "--full-size-weight",
        type=float,
        default=None,
        metavar="W",
        help="experimental, 0 to 1: how much the posted size counts against each --mimic-downscales size "
        "(default: 1, as much; 0: the shrunk sizes alone, which moves them further within the same bounds "
        "and leaves almost nothing for a mimic that trains at the posted size; see docs/protection.md)",
    ),
    option(
        "--surrogate",
        default=None,
        metavar="FILE",
        help="experimental: a small diffusion model trained without your art, made by `stylecloak surrogate` "
        "(procedural images) or benchmarks/bench_surrogate.py (other art); the cloak also makes the shrunk "
        "copies hard for that model to denoise, as Mist does through Stable Diffusion. Against our test mimic "
        "it helped on one artist's prints, was not shown to hold after noise and upscaling, and did nothing "
        "on a second artist (its default term; see --surrogate-mode); see docs/protection.md",
    ),
    option(
        "--surrogate-weight",
        type=float,
        default=None,
        metavar="W",
        help="experimental, with --surrogate: its term's weight against the target distance (default: 1)",
    ),
    option(
        "--surrogate-mode",
        default=None,
        choices=list(SURROGATE_MODES),
        help="experimental, with --surrogate: which term it adds (default: away, hard for the model to "
        "denoise; toward-target: what the model takes for the target style, which needs a catalogue "
        "--target; both). Against our test mimic away helped on one artist's prints and not on the "
        "renaissance works, toward-target (toward pop-art) the reverse; see docs/protection.md",
    ),
    option(
        "--surrogate-guidance",
        type=float,
        default=None,
        metavar="G",
        help="experimental, with --surrogate-mode toward-target or both: how hard the term pulls toward what "
        "the model takes for the target style (classifier-free guidance; "
        f"default: {_CLOAK.surrogate_guidance:g}). On the renaissance works 15, with --surrogate-levels "
        "500,980, gained about 0.1 in three draws; one artist only",
    ),
    option(
        "--surrogate-levels",
        type=parse_noise_levels,
        default=None,
        metavar="LOW,HIGH",
        help="experimental, with --surrogate: the noise levels, of the model's 1000, that its term draws from "
        f"(default: {_CLOAK.surrogate_levels[0]},{_CLOAK.surrogate_levels[1]}; high levels carry layout and "
        "palette, low ones texture; see docs/protection.md)",
    ),
    option(
        "--precision",
        default=_CLOAK.precision,
        choices=["auto", "bf16", "fp32"],
        help="advanced: the encoder's arithmetic while optimising (default: auto, bf16 where the GPU or "
        "CPU computes it natively, about twice as fast; the budget is always measured in fp32)",
    ),
)
JSON = option("--json", action="store_true", help="print one JSON report per image on stdout")

# -- cloak ------------------------------------------------------------------------------------------------------

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
  mimicry tests have not yet shown that any intensity stops mimicry (see the README). Copies of your works
  already online without a cloak weaken it: a mimic learns your style from them too.
quality is the effort:
  """
    + "\n  ".join(f"{k:8s} {p.steps} steps, {p.description}" for k, p in QUALITY_PRESETS.items())
    + """

Inputs are never modified. Outputs are written atomically (no half-written file after a crash or Ctrl-C).
A file that fails gets a one-line error on stderr, the batch goes on, and the exit code is 1.
"""
)
CLOAK = Command(
    "cloak",
    "cloak images",
    (
        option("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images"),
        option(
            "-o", "--out-dir", metavar="OUT_DIR", help="where to write <name>.cloaked.png (default: beside each input)"
        ),
        *CLOAK_OPTIONS,
        JSON,
    ),
    description="Cloak images or folders of images: a change within visibility bounds that "
    "moves the model's encoder toward another style.",
    epilog=CLOAK_EPILOG,
)

# -- batch ------------------------------------------------------------------------------------------------------

BATCH = Command(
    "batch",
    "cloak a whole archive on Ray, resumably (the cluster extra)",
    (
        option("source", metavar="SRC", help="a folder, a glob, or a URI of images"),
        option("destination", metavar="DST", help="the folder for the outputs and manifest.jsonl"),
        *CLOAK_OPTIONS,
        option(
            "--ray-address",
            metavar="ADDR",
            default=None,
            help="a running Ray cluster to join (default: start a local Ray with this machine's cores)",
        ),
        option(
            "--actors",
            type=int,
            default=None,
            metavar="N",
            help="how many workers, each holding the models (default: one per GPU, else one per --cpus-per-actor "
            "cores)",
        ),
        option(
            "--cpus-per-actor",
            type=int,
            default=1,
            metavar="K",
            help="cores for each worker (default: 1; more cores make one image faster, more workers "
            "make many images faster)",
        ),
        option(
            "--max-retries",
            type=int,
            default=2,
            metavar="R",
            help="how often an input is tried again after its worker died (default: 2)",
        ),
    ),
    description="Cloak every image of SRC (a folder, walked recursively; a glob; or a URI that pyarrow opens, "
    "such as s3://bucket/prefix) into DST, on a local Ray or a Ray cluster.",
    epilog="""\
examples:
  stylecloak batch uploads/ protected/                   a local Ray with this machine's cores
  stylecloak batch 'art/**/*.jpg' protected/ --actors 2  a glob; two workers
  stylecloak batch s3://bucket/uploads /mnt/shared/out --ray-address 10.0.0.5:6379
                                                         join a cluster started with `ray start --head`

Outputs keep the inputs' sub-folders and are named as `cloak` names them (<name>.cloaked.png); for the same
settings and seed they are byte for byte what `stylecloak cloak` writes. DST/manifest.jsonl gets one row per
input: its path and sha256, the output, the settings, the figures and the seconds, or the error. Run the same
command again to resume: inputs whose output and row exist with the same sha256 are skipped. On a cluster, DST
must be a folder that every node sees (NFS, a mounted bucket); each worker needs the encoder's weights (run
`stylecloak models fetch taef2` on each node, or set STYLECLOAK_MODELS to a shared folder).
Needs the cluster extra: pip install -e ".[cluster]"
""",
)

# -- models, targets, report ------------------------------------------------------------------------------------

MODELS = Command(
    "models",
    "list the known models and where they are",
    actions=(
        Command("list", "every known model: size, licence, upstream, and whether it is present"),
        Command("path", "print where a model's files are", (option("name"),)),
        Command(
            "fetch",
            "download a model into the user cache (checksum-verified, resumable)",
            (
                option("name"),
                option(
                    "--allow-unpinned",
                    action="store_true",
                    help="download a model that has no pinned checksum or revision here yet (its sha256 is printed)",
                ),
            ),
        ),
    ),
)
TARGETS = Command(
    "targets",
    "the catalogue of target styles",
    actions=(
        Command("list", "show the target styles"),
        Command(
            "render",
            "render an image in a target style, to see it",
            (
                option("image"),
                option("--target", exclusive_group="which", help="the target style to render"),
                option(
                    "--all",
                    exclusive_group="which",
                    action="store_true",
                    help="a contact sheet: the original and every target style",
                ),
                option("-o", "--output", required=True, help="output PNG path"),
                option("--seed", type=int, default=0),
            ),
        ),
        Command(
            "choose",
            "choose one target style for a portfolio (what --target auto does)",
            (
                option("inputs", nargs="+", metavar="IMAGE_OR_DIR"),
                option("--pin", metavar="DIR", help="also pin the choice in DIR/.stylecloak.json for later cloaks"),
                option(
                    "--descriptor",
                    default="gram",
                    type=parse_descriptor,
                    metavar="gram|latent|clip:PATH",
                    help=DESCRIPTOR_HELP,
                ),
                *MODEL_OPTIONS,
                option("--json", action="store_true", help="print the distances and the choice as JSON"),
            ),
            description="Measure the style distance from the portfolio's centroid to each "
            "target style and choose one that is far, but not the farthest "
            "(the 50th-75th percentile band).",
        ),
    ),
)
REPORT = Command(
    "report",
    "one HTML page from evaluate and mimic results",
    (
        option("folder", metavar="DIR", help="a folder holding evaluation and mimicry results"),
        option("-o", "--output", metavar="FILE", default=None, help="the page to write (default: DIR/report.html)"),
        option("--title", default="stylecloak report"),
    ),
    description="Gather what `stylecloak evaluate --out DIR` and `stylecloak mimic --out DIR` "
    "wrote anywhere under DIR into one self-contained HTML page: the tables, "
    "original/cloaked/what-the-model-sees triptychs, robustness curves and "
    "mimicry samples. Images are embedded, so the page is a single file.",
)

# -- evaluate ---------------------------------------------------------------------------------------------------

EVALUATE = Command(
    "evaluate",
    "measure a cloak: visibility, effect, robustness, what the model sees",
    (
        option("original", metavar="ORIGINAL", help="the original image, or a folder of originals"),
        option(
            "cloaked",
            metavar="CLOAKED",
            help="the cloaked image, or a folder with NAME.cloaked.png files (or files named as the originals)",
        ),
        option(
            "--target",
            default=None,
            metavar="NAME",
            help="the target style the cloak aimed at (default: the one recorded in each cloaked PNG)",
        ),
        option("--target-images", metavar="DIR", help="the reference images, if the cloak used --target-images"),
        option(
            "--encoder",
            default=None,
            metavar="NAME[:PATH]",
            help="the encoder the cloak attacked (default: the one recorded in each cloaked PNG, else taef2)",
        ),
        DEVICE,
        option(
            "--seed",
            type=int,
            default=None,
            help="the seed the cloak used, which some targets depend on (default: the recorded one, else 0)",
        ),
        option(
            "--out",
            metavar="DIR",
            help="where to write NAME.model-view.png and NAME.evaluation.json (default: a model-view/ "
            "folder inside the CLOAKED folder, or beside the CLOAKED file); inputs are never overwritten",
        ),
        option(
            "--no-robustness",
            action="store_true",
            help="skip the robustness table and the progress by scale (thirteen more encoder passes)",
        ),
        option(
            "--surrogate",
            metavar="FILE",
            help="experimental: a surrogate model (`stylecloak surrogate`) to measure the `away` term through: how "
            "much harder it finds each cloak to denoise than the original, at its training size. Through the file "
            "the cloak was made with it checks that the term worked; it is not a protection rate",
        ),
        option("--json", action="store_true", help="print one JSON object per pair on stdout"),
    ),
    description="Measure cloaked images against their originals. "
    "ORIGINAL and CLOAKED are two image files, or two folders whose images "
    "are paired by name.",
    epilog="""\
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
                   and 4x, as a mimic does when it trains at a smaller size than the posted art, and by each
                   shrink the cloak recorded that it aimed at (--mimic-sizes: e.g. 3.51x; marked "aimed at").
  decoded_progress_by_scale  the same for the picture the model's decoder draws of the latents: what a
                   latent mimic can give back at best. The encoder can move in ways the decoder ignores;
                   with art posted at 512 px our test mimic followed this figure, not progress_by_scale.
  style_transfer_progress  how far the style statistics (VGG16 Gram) of the decoder's picture at 128 px move
                   toward the target: what our style-transfer attack copies. It ranked cloaks as that attack
                   did in our runs on one artist's prints; a ranking, not a protection rate. The attack pools
                   all the works it copies, so in a folder the lowest counts, not the median: `stylecloak
                   report` gives the lowest and the mean.
  surrogate_figure with --surrogate FILE: that model's denoising loss on the cloak shrunk to its training
                   size, over the original's (1.00 as hard; the experimental `away` term raises it). The
                   figures above do not see that term. In our runs it ranked cloaks by how much of the budget
                   went to the term, not by what a mimic learned: a check, not a protection rate.
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
""",
)

# -- mimic ------------------------------------------------------------------------------------------------------

MIMIC = Command(
    "mimic",
    "train a small mimic on clean and on cloaked art, and compare",
    (
        option("--clean", required=True, metavar="DIR", help="your original images"),
        option("--cloaked", required=True, metavar="DIR", help="the same images, cloaked"),
        option(
            "--others",
            required=True,
            metavar="DIR",
            help="images of other styles, labelled (manifest.csv with a style column, or DIR/STYLE/*.png)",
        ),
        option(
            "--attack",
            choices=["small", "nst", "lora"],
            default="small",
            help="small: a latent diffusion model trained from scratch here (default, CPU); nst: style "
            "transfer from what the encoder sees of the art, D(E(x)), onto other works (minutes); "
            "lora: LoRA fine-tuning of a local Stable Diffusion pipeline (--base; the full extra; a GPU)",
        ),
        option("--base", metavar="PATH", help="with --attack lora: a local Stable Diffusion folder (diffusers format)"),
        option("--lora-rank", type=int, default=4, help="with --attack lora: the adapter's rank (default 4)"),
        option(
            "--preset",
            choices=MIMIC_PRESET_NAMES,
            default="quick",
            help="model size and training length (default quick: a 2-core CPU; full: a GPU)",
        ),
        option("--steps", type=int, default=None, help="training steps per run (overrides the preset)"),
        option("--samples", type=int, default=None, help="images generated per run (overrides the preset)"),
        option(
            "--image-size",
            type=int,
            default=None,
            metavar="PX",
            help="long side the mimic shrinks every image to before training (overrides the preset)",
        ),
        option(
            "--purify",
            default=",".join(DEFAULT_PURIFIERS),
            metavar="LIST",
            help="purifications the adaptive attacker tries on the cloaked art, comma-separated, or "
            "'none' (default: %(default)s; any name of evaluate's robustness table works)",
        ),
        option(
            "--purify-clean",
            action="store_true",
            help="also train on the clean art after each purification: the control that tells a cloak that "
            "survives a purification from a purification that changes the style by itself (one more run per "
            "purification)",
        ),
        option(
            "--out",
            metavar="DIR",
            default=None,
            help="where samples and report.json go (default: a new folder mimicry-DATE-TIME here)",
        ),
        option("--encoder", default="taef2", help="the latent space the mimic works in (default: taef2)"),
        option("--device", default="auto", help="cpu, cuda, mps or auto (default)"),
        option(
            "--judge",
            type=parse_judge,
            default="linear",
            metavar="linear|centroid|texture|clip:PATH",
            help="the style classifier: logistic regression (default) or nearest centroid on VGG16 Gram "
            "features, logistic regression on colour-blind texture statistics (texture), or on a local CLIP "
            "model's embeddings (clip:PATH, the full extra); check the Gram ones first with `stylecloak "
            "style-classifier`",
        ),
        option(
            "--second-judge",
            type=parse_second_judge,
            default="texture",
            metavar="texture|linear|centroid|clip:PATH|none",
            help="a second, independent judge asked about the same samples and reported beside the first, with "
            "its own sanity check and control (default: texture, which shares nothing with VGG and sees no "
            "colour)",
        ),
        option(
            "--judge-renditions",
            action="store_true",
            help="teach the judges, besides the other styles, the other styles' works rendered in every target "
            "style (never your works), so that a mimic that learned the cloak's strokes can be called 'a "
            "different style'",
        ),
        option("--seed", type=int, default=0),
        option("--json", action="store_true", help="print the report as one JSON line"),
    ),
    description="""\
Would a mimic trained on your cloaked art learn your style? This trains a small latent diffusion model from
scratch, twice: once on your clean art and once on your cloaked art (plus, for an adaptive attacker, on cloaked
art first purified by JPEG, noise and upscaling, or an encoder-decoder round trip). Both see the same images of
other styles, so that each must learn what sets your art apart. Each model then generates images "in your
style", and a style classifier trained on clean art says whose style they show.

The protection success rate is the share of those images that the classifier does NOT attribute to you. The
clean run is the baseline: it should be low (the attack works on unprotected art). Protection means a clearly
higher rate for the cloaked run. A control checks the classifier: the clean model also draws the other
styles, and the report says how often the classifier calls those yours (the lower, the more it means).

This is a small model on a CPU, not Stable Diffusion: it shows whether the cloak changes what a latent
diffusion model learns, not how a large fine-tuned model would look. The quick preset takes about 20 minutes
on a 2-core laptop; --preset full wants a GPU (--device cuda).
""",
    epilog="""\
examples:
  stylecloak cloak my_art/ -o cloaked/
  stylecloak mimic --clean my_art/ --cloaked cloaked/ --others other_styles/ --out mimicry/
  stylecloak mimic ... --purify none --steps 500       # a faster, rougher run

--others is a folder with manifest.csv (columns file and style) or with one sub-folder per style. Files in it
whose name matches one of --clean's are left out, so the folder may hold your art too.
""",
)

# -- style-classifier -------------------------------------------------------------------------------------------

STYLE_CLASSIFIER = Command(
    "style-classifier",
    "cross-validated accuracy of the offline style classifier on a labelled folder",
    (
        option("folder", metavar="FOLDER", help="labelled images: manifest.csv, or one sub-folder per label"),
        option(
            "--head",
            choices=["centroid", "linear"],
            default="centroid",
            help="nearest class centroid (default) or L2-regularised logistic regression",
        ),
        option(
            "--folds",
            type=parse_folds,
            default="loo",
            metavar="N|loo",
            help="stratified N-fold cross-validation, or leave-one-out (default)",
        ),
        option(
            "--long-side",
            type=whole_number_at_least(16),
            default=WORKING_LONG_SIDE,
            metavar="PX",
            help=f"working size the features are computed at (default: {WORKING_LONG_SIDE})",
        ),
        option(
            "--detail",
            type=whole_number_at_least(0),
            default=None,
            metavar="PX",
            help=f"images pass through this long side first, so sharp and soft images carry the same "
            f"detail; 0 turns it off (default: 3/4 of --long-side, {DETAIL_LONG_SIDE} px at "
            f"{WORKING_LONG_SIDE})",
        ),
        option(
            "--views",
            type=whole_number_at_least(0),
            default=TRAINING_VIEWS,
            help=f"augmented views per training image: crops, smaller softer copies (default: {TRAINING_VIEWS})",
        ),
        option("--column", default="style", help="the manifest column holding the labels (default: style)"),
        option(
            "--shrink",
            type=whole_number_at_least(16),
            default=None,
            metavar="PX",
            help="score the held-out images after shrinking them to PX long side",
        ),
        option(
            "--blur",
            type=parse_blur_sigma,
            default=0.0,
            metavar="SIGMA",
            help="and blurring them by SIGMA px (Gaussian), after --shrink",
        ),
        option("--positive", metavar="LABEL", help="also report LABEL against the rest (e.g. the artist's style)"),
        option("--seed", type=int, default=0, help="seed for folds and views (default: 0)"),
        option("--json", action="store_true", help="print the result as one JSON object"),
    ),
    description="""\
Cross-validate the offline style classifier (VGG16 Gram features with a nearest-centroid or a linear head) on a
labelled folder: FOLDER/manifest.csv (columns file and style, or the column given by --column), or
FOLDER/LABEL/*.png. Prints the accuracy, each label's accuracy and the confusion matrix.""",
    epilog="""\
examples:
  stylecloak style-classifier paintings/                         leave-one-out, nearest-centroid head
  stylecloak style-classifier paintings/ --head linear --folds 5
  stylecloak style-classifier paintings/ --shrink 128 --blur 0.8 score on small, soft copies (like a mimic's
                                                                 outputs); training images stay as they are
  stylecloak style-classifier paintings/ --positive ukiyo-e      also the label-vs-rest view

A label with a single image cannot be predicted when that image is held out, so it counts as an error; the
"chance" line is the accuracy of always answering the most common label.
""",
)

# -- surrogate --------------------------------------------------------------------------------------------------

SURROGATE = Command(
    "surrogate",
    "experimental: train the small diffusion model that `cloak --surrogate` uses, from procedural images",
    (
        option("out", metavar="FILE", help="where to save the model (.pt); an existing file is not overwritten"),
        option(
            "--images",
            type=whole_number_at_least(1),
            default=48,
            metavar="N",
            help="how many procedural images to draw (default: 48); each is also rendered in every catalogue "
            "style, one class per style",
        ),
        option("--seed", type=int, default=1, help="draws the images and the training (default: 1)"),
    ),
    description="""Train the small latent diffusion model of the experimental --surrogate term on procedural
images (colour fields, shapes, strokes: no artwork, no download) and their renditions in the catalogue's
styles: minutes on a CPU (3.5 alone on our 2-core machine, up to 14 beside other jobs). The cloak then makes the copies
that a mimic shrinks hard for this model to denoise. What that does against our test mimic, and what it does
not, is in docs/protection.md.""",
    epilog="""example:
  stylecloak surrogate ~/stylecloak-surrogate.pt
  stylecloak cloak art/ --view-objective decoded --full-size-weight 0 --surrogate ~/stylecloak-surrogate.pt
""",
)

# -- serve ------------------------------------------------------------------------------------------------------

SERVE = Command(
    "serve",
    "start the local web app (drop images in a browser, get cloaked images out)",
    (
        option("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)"),
        option("--port", type=int, default=8765, help="port (default: 8765)"),
        option("--data", metavar="DIR", help="folder for jobs, uploads and results (default: <user cache>/web)"),
        option("--allow-remote", action="store_true", help="allow a non-loopback --host (needs a token)"),
        option(
            "--token",
            default=None,
            help="a secret every request must carry (default: $STYLECLOAK_TOKEN); required with --allow-remote",
        ),
        option("--encoder", default=_CLOAK.encoder, help="encoder to cloak against (default: taef2)"),
        DEVICE,
        option("--jobs", type=int, default=1, metavar="N", help="jobs cloaked at the same time (default: 1)"),
        option("--max-upload-mb", type=float, default=50, help="largest file accepted, in MB (default: 50)"),
        option("--max-megapixels", type=float, default=40, help="largest image accepted, in megapixels (default: 40)"),
        option(
            "--keep-hours", type=float, default=168, help="delete finished jobs after this many hours (default: 168)"
        ),
        option("--open", action="store_true", help="open the page in the default browser"),
    ),
    description="Start the stylecloak web app: a page to cloak images in a browser, and a JSON API under /api/.",
    epilog="""\
examples:
  stylecloak serve                          open http://127.0.0.1:8765 in your browser
  stylecloak serve --port 9000 --data ~/cloaks
  stylecloak serve --host 0.0.0.0 --allow-remote --token "$(openssl rand -hex 16)"
                                            reachable from other machines, for whoever has the token

Jobs and their files are kept in the data folder (default: the user cache's web/ folder) and survive a restart:
unfinished jobs go on where they were. Finished jobs are deleted after --keep-hours.
Binding to anything but a loopback address needs --allow-remote and a token (--token, or STYLECLOAK_TOKEN).
""",
)

PROGRAM_DESCRIPTION = (
    "Add a barely visible cloak to artwork so that an AI model's image encoder sees it in a different "
    "style (the Glaze method). Our own mimicry tests have not yet shown that it stops style mimicry: "
    "see the README's measurements."
)
# In the order `stylecloak --help` lists them.
COMMANDS = (CLOAK, BATCH, MODELS, TARGETS, EVALUATE, MIMIC, STYLE_CLASSIFIER, SURROGATE, SERVE, REPORT)
