"""Does the fast proxy rank cloaks as the mimic does? The proxy (stylecloak.evaluation.proxy) against the mimic's
own protection success rates, on work folders that bench_mimicry.py left behind.

Each WORK folder holds clean/, cloaked/, others/ and mimicry/report.json (a bench_mimicry.py run). For each
folder and each condition the mimic trained on (clean, cloaked, and each purification of the cloaked set, and
of the clean set where the run had --purify-clean), the proxy is computed on the same images with the same
purification, and printed beside the mimic's rate; then the rank correlation over all conditions.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_proxy.py /tmp/mimicry-default /tmp/mim-ds
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from stylecloak.countermeasures import get_countermeasure
from stylecloak.evaluation.mimicry_run import artwork_key, gram_judge, load_art_folder, load_other_styles
from stylecloak.evaluation.proxy import mimic_proxy
from stylecloak.models.encoders import load_encoder


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    mean_a, mean_b = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(ra, rb))
    norm = (sum((x - mean_a) ** 2 for x in ra) * sum((y - mean_b) ** 2 for y in rb)) ** 0.5
    return cov / norm if norm else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", nargs="+", type=Path, help="bench_mimicry.py work folders")
    parser.add_argument("--crops", type=int, default=16, help="crops per image (default 16)")
    args = parser.parse_args()
    device = torch.device("cpu")
    encoder = load_encoder("taef2", device)
    rows = []
    for work in args.work:
        report = json.loads((work / "mimicry" / "report.json").read_text())
        clean, names = load_art_folder(work / "clean")
        cloaked, _ = load_art_folder(work / "cloaked")
        others = load_other_styles(work / "others", frozenset(artwork_key(Path(n)) for n in names))
        judge, judge_name = gram_judge("linear", device)
        for number, condition in enumerate(report["conditions"]):
            name = condition["condition"]
            base, _, purification = name.partition("+")
            purifier = get_countermeasure(purification) if purification else None
            artist = clean if base == "clean" else cloaked
            started = time.perf_counter()
            # The proxy's rate for this training set: its crops against a judge trained on clean art.
            result = mimic_proxy(
                clean,
                artist,
                others,
                judge,
                encoder,
                device,
                purifier=purifier,
                judge_name=judge_name,
                fitted=number > 0,
            )
            rows.append((work.name, name, condition["protection_success_rate"], result.cloaked_not_artist))
            print(
                f"{work.name:18s} {name:24s} mimic {condition['protection_success_rate']:.2f}  "
                f"proxy {result.cloaked_not_artist:.2f}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    mimic, proxy = [r[2] for r in rows], [r[3] for r in rows]
    print(f"Spearman rank correlation over {len(rows)} conditions: {spearman(mimic, proxy):.2f}")


if __name__ == "__main__":
    main()
