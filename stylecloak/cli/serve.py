"""``stylecloak serve``: start the local web app (checks in stylecloak.web.launch); parse, call, print.

Free of FastAPI imports at module level, so that ``stylecloak --help`` works without the ``web`` extra."""

from __future__ import annotations

import argparse
import os


def run(args: argparse.Namespace) -> int:
    from ..web.launch import LaunchError, ServeOptions, check_port_free, create_web_app, plan_serving
    from . import EXIT_OK, EXIT_USAGE, _error

    try:
        import uvicorn

        from ..web import app as _  # noqa: F401 - the web extra's modules, imported to say plainly if missing
    except ImportError as exc:
        _error(f"the web app needs the web extra ({exc.name} is missing): pip install 'stylecloak[web]'")
        return EXIT_USAGE
    options = ServeOptions(**{name: getattr(args, name) for name in ServeOptions.__dataclass_fields__})
    try:
        plan = plan_serving(options, os.environ.get("STYLECLOAK_TOKEN"))
        app = create_web_app(plan)
        check_port_free(args.host, args.port)
    except LaunchError as exc:
        _error(str(exc))
        return EXIT_USAGE
    print(f"stylecloak serve: open {plan.url}  (data in {plan.data_dir}; Ctrl-C stops, jobs resume next time)")
    if args.open:
        import webbrowser

        webbrowser.open(plan.url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
