"""One quick-mimic run over several cloaked versions of the same works: which design does the mimic notice?

Every set trains its own fine-tuned mimic from the same base model, against the same clean run and the same two
judges (the Gram judge and the independent texture judge, each with its sanity check and control), so that cloak
designs can be ranked by one measurement instead of runs whose clean baselines differ. A set goes through a
purification only where --through says so.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_mimic_sets.py --work /tmp/sets \\
        --clean /tmp/curve/clean --others /tmp/curve/others \\
        default-medium=/tmp/curve/cloaked-medium eot-medium=/tmp/curve-ds/cloaked-medium

With --judge-renditions both judges also learn renditions of the other styles in the catalogue's styles (the
judge that can say "a different style"). WORK gets the layout of a bench_mimicry.py work folder (clean/ and
others/ linked, mimicry/ with the report and sample grids), so benchmarks/bench_judges.py can re-judge it.

The clean and other-style folders are those a bench_protection_curve.py run posts (``WORK/clean``,
``WORK/others`` with its manifest.csv); each cloaked folder holds the clean works' cloaks (same file names, with
``.cloaked``), as `stylecloak cloak` writes them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from stylecloak.countermeasures import get_countermeasure
from stylecloak.evaluation.attack import MimicryReport, MimicryRequest, purified, rendition_classes, run_mimicry
from stylecloak.evaluation.mimic import MIMIC_PRESETS, with_config
from stylecloak.evaluation.mimicry_run import artwork_key, build_judge, load_art_folder, load_other_styles
from stylecloak.models.encoders import LatentEncoder, load_encoder
from stylecloak.targets import available_targets


def mimic_over_sets(
    clean: list[torch.Tensor],
    sets: dict[str, list[torch.Tensor]],
    others: dict[str, list[torch.Tensor]],
    encoder: LatentEncoder,
    out_dir: Path,
    judge_renditions: bool = False,
    seed: int = 0,
) -> MimicryReport:
    """One quick-mimic run: the first set is the condition "cloaked", each other one "cloaked:LABEL", all from
    the same base model and clean run, judged by the Gram judge and the texture judge (both also learning the
    other styles rendered in every catalogue style with ``judge_renditions``). ``seed`` draws the mimic (its
    initial weights, noise and samples) and the judge's renditions, as `stylecloak mimic --seed` does."""
    device = torch.device("cpu")
    judge, judge_name = build_judge("linear", device)
    second, second_name = build_judge("texture", device)
    first = next(iter(sets))
    request = MimicryRequest(
        clean,
        sets[first],
        others,
        judge,
        device=device,
        out_dir=out_dir,
        judge_name=judge_name,
        more_cloaked={label: images for label, images in sets.items() if label != first},
        second_judge=second,
        second_judge_name=second_name,
        judge_extra_classes=rendition_classes(others, available_targets(), seed=seed) if judge_renditions else {},
    )
    return run_mimicry(request, encoder, with_config(MIMIC_PRESETS["quick"], seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a new folder for the mimic's report and samples")
    parser.add_argument("--clean", type=Path, required=True, help="the artist's clean works")
    parser.add_argument("--others", type=Path, required=True, help="other styles (manifest.csv with a style column)")
    parser.add_argument(
        "--judge-renditions",
        action="store_true",
        help="both judges also learn the other styles' works rendered in every catalogue style (never the "
        "artist's), so that a mimic that learned another style can be called 'not the artist'",
    )
    parser.add_argument(
        "--through",
        action="append",
        default=[],
        metavar="LABEL=COUNTERMEASURE",
        help="put set LABEL through a countermeasure of stylecloak.countermeasures (e.g. noise8+upscale) before "
        "the mimic trains on it, as the acceptance run's purifications do; give a set of the clean works "
        "(clean-nu=CLEAN_FOLDER) and put it through the same, for the purification's own effect",
    )
    parser.add_argument("--seed", type=int, default=0, help="draws the mimic and the judge's renditions (default 0)")
    parser.add_argument("sets", nargs="+", help="LABEL=FOLDER of cloaked works, the first one is 'cloaked'")
    args = parser.parse_args()
    started, device = time.perf_counter(), torch.device("cpu")
    clean, names = load_art_folder(args.clean)
    sets: dict[str, list[torch.Tensor]] = {}
    for item in args.sets:
        label, _, folder = item.partition("=")
        images, cloaked_names = load_art_folder(Path(folder))
        if [artwork_key(Path(n)) for n in cloaked_names] != [artwork_key(Path(n)) for n in names]:
            raise SystemExit(f"{folder}: not the cloaks of exactly the works in {args.clean}")
        sets[label] = images
    others = load_other_styles(args.others, frozenset(artwork_key(Path(n)) for n in names))
    encoder = load_encoder("taef2", device)
    for item in args.through:
        label, _, name = item.partition("=")
        if label not in sets:
            raise SystemExit(f"--through {item}: no set {label}")
        try:
            countermeasure = get_countermeasure(name)
        except KeyError as error:
            raise SystemExit(f"--through {item}: {error.args[0]}") from None
        sets[label] = purified(sets[label], countermeasure, encoder, device)
    first = next(iter(sets))
    # The layout of a bench_mimicry.py work folder (clean/, others/, mimicry/), so that bench_judges.py can
    # re-judge the samples with other judges.
    args.work.mkdir(parents=True, exist_ok=True)
    for name, source in (("clean", args.clean), ("others", args.others)):
        if not (args.work / name).exists():
            (args.work / name).symlink_to(source.resolve(), target_is_directory=True)
    report = mimic_over_sets(clean, sets, others, encoder, args.work / "mimicry", args.judge_renditions, args.seed)
    result = report.to_dict() | {
        "sets": dict(item.partition("=")[::2] for item in args.sets),
        "judge_renditions": args.judge_renditions,
        "through": dict(item.partition("=")[::2] for item in args.through),
        "seed": args.seed,
    }
    (args.work / "mimicry" / "report.json").write_text(json.dumps(result, indent=2))
    assert report.second_judge is not None
    print(f"judge {report.classifier}: sanity {report.classifier_sanity:.2f}, control {report.control_artist_rate:.2f}")
    print(
        f"judge {report.second_judge['name']}: sanity {report.second_judge['sanity']:.2f}, "
        f"control {report.second_judge['control_artist_rate']:.2f}"
    )
    print("| training set | PSR gram (95% interval over the verdicts) | PSR texture | gram verdicts |")
    print("|---|---|---|---|")
    for condition in report.conditions:
        label = first if condition.condition == "cloaked" else condition.condition.removeprefix("cloaked:")
        second_rate = condition.second_opinion["protection_success_rate"] if condition.second_opinion else float("nan")
        low, high = condition.rate_interval or (float("nan"), float("nan"))
        print(
            f"| {label} | {condition.protection_success_rate:.2f} ({low:.2f}-{high:.2f}) | {second_rate:.2f} | "
            f"{condition.predictions} |"
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
