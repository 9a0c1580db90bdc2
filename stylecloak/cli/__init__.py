"""The ``stylecloak`` command line: parse (the options are declared in :mod:`stylecloak.options`), call the
library, print. One module per command that needs more than a few lines; nothing here decides anything."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, options
from ..errors import failure_summary, first_line

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _error(message: str) -> None:
    print(f"stylecloak: error: {message}", file=sys.stderr)


def _note(line: str) -> None:
    print(f"stylecloak: {line}", file=sys.stderr)


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """The library's value parsers raise ValueError with a message for people; argparse shows it as it is."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = parse.__name__
    return wrapped


def _add_command(commands: Any, command: options.Command) -> None:
    parser = commands.add_parser(
        command.name,
        help=command.help,
        description=command.description,
        epilog=command.epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if command.epilog else argparse.HelpFormatter,
    )
    groups: dict[str, Any] = {}
    for option in command.options:
        settings = dict(option.settings)
        if callable(settings.get("type")) and settings["type"] not in (int, float, str):
            settings["type"] = _argparse_type(settings["type"])
        if option.exclusive_group is not None and option.exclusive_group not in groups:
            groups[option.exclusive_group] = parser.add_mutually_exclusive_group(required=True)
        groups.get(option.exclusive_group or "", parser).add_argument(*option.flags, **settings)
    if command.actions:
        actions = parser.add_subparsers(dest=f"{command.name}_command", metavar="ACTION", required=True)
        for action in command.actions:
            _add_command(actions, action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylecloak", description=options.PROGRAM_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"stylecloak {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in options.COMMANDS:
        _add_command(commands, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from . import batch, classifier, mimic, serve, surrogate

    parser = build_parser()
    args = parser.parse_args(argv)
    runners = {"cloak": run_cloak, "models": run_models, "targets": run_targets, "evaluate": run_evaluate}
    runners |= {"report": run_report, "batch": batch.run, "mimic": mimic.run, "serve": serve.run}
    runners |= {"style-classifier": classifier.run, "surrogate": surrogate.run}
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        _error("interrupted; finished outputs are complete, nothing half-written was left")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `stylecloak models list | head`: the reader has gone, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def progress_bar(**settings: Any) -> Any:
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=None, **settings)


def run_cloak(args: argparse.Namespace) -> int:
    from ..cloak_files import CloakEvents, CloakFilesRequest, CloakRunError, cloak_files, settings_for_options
    from ..targets.resolve import TargetRequest

    try:
        settings = settings_for_options(vars(args))
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    bars: dict[Path, Any] = {}

    def image_started(number: int, count: int, path: Path, steps: int) -> Callable[[Any], None]:
        bar = bars[path] = progress_bar(total=steps, desc=f"[{number}/{count}] {path.name}", unit="step")
        bar.set_postfix_str("rendering the target")  # until the first step (then the rendition is cached)

        def step(record: Any) -> None:
            bar.update(1)
            bar.set_postfix(lpips=f"{record.lpips:.3f}", progress=f"{record.target_progress:.2f}")

        return step

    def written(report: Any) -> None:
        print(json.dumps(report.to_dict()) if args.json else report.summary(), flush=True)

    downloads: list[Any] = []
    events = CloakEvents(
        _note, _error, _download_bars(downloads), image_started, lambda p: bars.pop(p).close(), written
    )
    request = CloakFilesRequest(
        args.inputs, settings, TargetRequest.from_options(vars(args)), args.out_dir, args.format, __version__
    )
    try:
        summary = cloak_files(request, events)
    except CloakRunError as exc:
        _error(str(exc))
        return EXIT_USAGE if exc.usage else EXIT_SOME_FAILED
    finally:
        for bar in downloads:
            bar.close()
    if (line := summary.failure_line()) is not None:
        _error(line)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _download_bars(bars: list[Any]) -> Callable[[str], Callable[[int, int | None], None]]:
    """A progress bar per downloaded file; they are closed with the run (``bars`` collects them)."""

    def progress_factory(filename: str) -> Callable[[int, int | None], None]:
        bars.append(bar := progress_bar(desc=filename, unit="B", unit_scale=True))

        def update(done: int, total: int | None) -> None:
            bar.total = total if total is not None else bar.total
            bar.update(done - bar.n)

        return update

    return progress_factory


def _fetch_model(model: Any, allow_unpinned: bool) -> int:
    from ..models.fetch import FetchError
    from ..models.registry import ensure_model
    from ..models.weights import ChecksumMismatchError

    bars: list[Any] = []
    try:
        print(ensure_model(model, allow_unpinned, _download_bars(bars), tell=_note))
        return EXIT_OK
    except (FetchError, ChecksumMismatchError, OSError) as exc:
        _error(str(exc))
        return EXIT_SOME_FAILED
    finally:
        for bar in bars:
            bar.close()


def run_models(args: argparse.Namespace) -> int:
    from ..models.registry import KNOWN_MODELS, describe_model

    if args.models_command == "list":
        print("\n".join(describe_model(model) for model in KNOWN_MODELS.values()))
        return EXIT_OK
    model = KNOWN_MODELS.get(args.name)
    if model is None:
        _error(f"unknown model {args.name!r}; known models: {', '.join(KNOWN_MODELS)}")
        return EXIT_USAGE
    if args.models_command == "fetch":
        return _fetch_model(model, args.allow_unpinned)
    if (folder := model.location()) is None:
        _error(model.missing_message())
        return EXIT_SOME_FAILED
    print(folder)
    return EXIT_OK


def run_targets(args: argparse.Namespace) -> int:
    from ..imaging import ImageInputError
    from ..targets import available_targets
    from ..targets.choice import write_pin
    from ..targets.resolve import TargetResolutionError, choose_for_inputs
    from ..targets.sheet import write_preview

    if args.targets_command == "list":
        print("\n".join(f"{target.name:14s} {target.description}" for target in available_targets()))
    elif args.targets_command == "render":
        try:
            print(write_preview(args.image, args.output, None if args.all else args.target, args.seed))
        except (KeyError, ImageInputError, OSError) as exc:
            _error(f"{args.image}: {str(exc).strip(chr(34) + chr(39))}")
            return EXIT_SOME_FAILED
    else:
        try:
            choice = choose_for_inputs(args.inputs, args.descriptor, args.device, args.encoder)
        except TargetResolutionError as exc:
            _error(str(exc))
            return EXIT_SOME_FAILED
        if args.pin:
            Path(args.pin).mkdir(parents=True, exist_ok=True)
            _note(f"pinned in {write_pin(args.pin, choice, __version__)}")
        print(json.dumps(choice.to_dict()) if args.json else choice.table())
    return EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.pairs import evaluate_plan, load_evaluation_models, plan_pairs
    from ..models.weights import ChecksumMismatchError, ModelNotFoundError

    try:
        plan = plan_pairs(args.original, args.cloaked)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    for line in plan.unpaired:
        _note(f"warning: {line}")
    if not plan.pairs:
        _error(f"no image of {args.original} has a cloaked partner in {args.cloaked}")
        return EXIT_SOME_FAILED
    try:
        models = load_evaluation_models(args.device, args.encoder, args.target, args.target_images, args.surrogate)
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, ValueError, RuntimeError, OSError) as exc:
        _error(str(exc).strip("'\""))
        return EXIT_USAGE
    failures, out = 0, Path(args.out) if args.out else None
    for cloaked, result in evaluate_plan(
        plan, models, out, args.target, args.encoder, args.seed, not args.no_robustness
    ):
        if isinstance(result, Exception):
            failures += 1
            _error(f"{cloaked}: {first_line(result)}")
        else:
            print(json.dumps(result.to_dict()) if args.json else result.summary(), flush=True)
    if failures:
        _error(failure_summary(failures, len(plan.pairs), "pairs", "measured"))
        return EXIT_SOME_FAILED
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    from ..evaluation.report import write_report

    folder = Path(args.folder)
    if not folder.is_dir():
        _error(f"{folder}: not a folder")
        return EXIT_USAGE
    output, inputs = write_report(folder, Path(args.output) if args.output else None, args.title)
    for skipped in inputs.skipped:
        _error(f"skipped {skipped}")
    print(f"{output}: {len(inputs.evaluations)} evaluation(s), {len(inputs.mimicry)} mimicry run(s)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
