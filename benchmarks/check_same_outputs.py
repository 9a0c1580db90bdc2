"""Behaviour unchanged, byte for byte: run the same commands with an earlier revision and with the work tree, and
compare what they write.

For three shared paintings (at ``--long-side``, default 256 px), each tree runs
- ``stylecloak cloak`` with the defaults (``--target auto``: the choice and its pin) and with a catalogue target,
- ``stylecloak targets render --all`` (every rendition, as a contact sheet),
- ``stylecloak evaluate ORIGINALS CLOAKED --json`` (the figures; ``seconds`` and paths left out),
- the web app's worker on one job (the cloaked PNG and the views it shows),
and every file (and the evaluate JSON) must be identical. The earlier revision is checked out with ``git worktree``
into ``WORK/base`` and imported through ``PYTHONPATH``; both run with the same Python and the same thread count.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/check_same_outputs.py --base 0456aac --work /tmp/same
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"
NAMES = ("hokusai_great_wave.png", "vangogh_village_street_auvers.png", "durer_lion.png")

WEB_JOB = """
import sys, json
from pathlib import Path
from PIL import Image
from stylecloak.web.store import JobStore, NewItem
from stylecloak.web.worker import JobWorker, JobFiles
data = Path(sys.argv[1]); source = Path(sys.argv[2])
data.mkdir(parents=True, exist_ok=True)
store = JobStore(data / "jobs.sqlite")
with Image.open(source) as im:
    item = NewItem(source.name, "0000.png", im.width, im.height)
job_id = store.create_job({"intensity": "medium", "quality": "fast", "target": "auto"}, [item]).id
files = JobFiles(data, job_id)
files.input("0000.png").parent.mkdir(parents=True, exist_ok=True)
files.input("0000.png").write_bytes(source.read_bytes())
worker = JobWorker(store, data)
worker.run_job(store.claim_next_job())
print(json.dumps(store.get_job(job_id).items[0].report, sort_keys=True))
"""


def run(tree: Path | None, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = dict(env)
    if tree is not None:
        environment["PYTHONPATH"] = str(tree)
    done = subprocess.run([sys.executable, *args], env=environment, text=True, capture_output=True, cwd=tree or ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed in {tree or 'the work tree'}:\n{done.stderr[-2000:]}")
    return done


def outputs_of(tree: Path | None, label: str, work: Path, originals: Path, env: dict[str, str]) -> dict[str, str]:
    """sha256 of everything the tree's commands wrote, by a name that is the same for both trees."""
    out = work / label
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    check = run(tree, ["-c", "import stylecloak, sys; print(stylecloak.__file__)"], env).stdout.strip()
    print(f"{label}: stylecloak from {check}", file=sys.stderr)
    cli = ["-m", "stylecloak.cli"]
    run(tree, [*cli, "cloak", str(originals), "-o", str(out / "auto"), "--quality", "fast"], env)
    run(tree, [*cli, "cloak", str(originals), "-o", str(out / "mosaic"), "--target", "mosaic", "--steps", "4"], env)
    run(tree, [*cli, "targets", "render", str(originals / NAMES[0]), "--all", "-o", str(out / "sheet.png")], env)
    evaluated = run(
        tree, [*cli, "evaluate", str(originals), str(out / "auto"), "--json", "--out", str(out / "eval")], env
    )
    figures = []
    for line in evaluated.stdout.splitlines():
        record = json.loads(line)
        figures.append(
            {
                k: v
                for k, v in record.items()
                if k not in ("seconds", "original", "cloaked", "model_view", "visibility_map")
            }
        )
    (out / "evaluate.json").write_text(json.dumps(figures, sort_keys=True, indent=1))
    web = run(tree, ["-c", WEB_JOB, str(out / "web"), str(originals / NAMES[1])], env)
    report = {k: v for k, v in json.loads(web.stdout).items() if k not in ("seconds", "version")}
    (out / "web-report.json").write_text(json.dumps(report, sort_keys=True, indent=1))
    return digest_tree(out)


# Written with the time taken and the paths, which differ between any two runs.
VARYING_FIELDS = ("seconds", "original", "cloaked", "model_view", "visibility_map", "version")


def digest_tree(out: Path) -> dict[str, str]:
    """sha256 of every PNG and JSON under ``out``, named so that both trees' names match: a web job's random id
    becomes ``JOB``, and an evaluation's JSON is compared without its times and paths."""
    digests = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.suffix not in (".png", ".json"):
            continue
        parts = list(path.relative_to(out).parts)
        if parts[:2] == ["web", "jobs"] and len(parts) > 2:
            parts[2] = "JOB"
        data = path.read_bytes()
        if path.name.endswith(".evaluation.json"):
            record = {k: v for k, v in json.loads(data).items() if k not in VARYING_FIELDS}
            data = json.dumps(record, sort_keys=True).encode()
        digests["/".join(parts)] = hashlib.sha256(data).hexdigest()
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/same-outputs"))
    parser.add_argument("--long-side", type=int, default=256)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    originals = args.work / "originals"
    originals.mkdir(exist_ok=True)
    for name in NAMES:
        with Image.open(PAINTINGS / name) as im:
            im = im.convert("RGB")
            scale = args.long_side / max(im.size)
            im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS).save(originals / name)
    base = args.work / "base"
    if base.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True, capture_output=True
    )
    env = dict(os.environ)
    # Absolute: each tree runs in its own folder.
    env["STYLECLOAK_MODELS"] = str(Path(env.get("STYLECLOAK_MODELS", ROOT.parent / "shared" / "models")).resolve())
    env["STYLECLOAK_CACHE"] = str(args.work / "cache")  # the same (empty at first) cache for both trees
    try:
        before = outputs_of(base, "before", args.work, originals, env)
        after = outputs_of(None, "after", args.work, originals, env)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    differ = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    for name in sorted(before.keys() | after.keys()):
        print(f"{'same   ' if name not in differ else 'DIFFERS'}  {name}")
    print(
        f"\n{len(before)} files from {args.base}, {len(after)} from the work tree: "
        f"{'all identical' if not differ else f'{len(differ)} differ'}"
    )
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
