"""``stylecloak serve``: start the local web app.

Kept free of FastAPI imports at module level, so that ``stylecloak --help`` works without the ``web`` extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import sqlite3
import sys
from pathlib import Path

SERVE_EPILOG = """\
examples:
  stylecloak serve                          open http://127.0.0.1:8765 in your browser
  stylecloak serve --port 9000 --data ~/cloaks
  stylecloak serve --host 0.0.0.0 --allow-remote --token "$(openssl rand -hex 16)"
                                            reachable from other machines, for whoever has the token

Jobs and their files are kept in the data folder (default: the user cache's web/ folder) and survive a restart:
unfinished jobs go on where they were. Finished jobs are deleted after --keep-hours.
Binding to anything but a loopback address needs --allow-remote and a token (--token, or STYLECLOAK_TOKEN).
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="start the local web app (drop images in a browser, get cloaked images out)",
        description="Start the stylecloak web app: a page to cloak images in a browser, and a JSON API under /api/.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)"
    )
    serve.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    serve.add_argument("--data", metavar="DIR", help="folder for jobs, uploads and results (default: <user cache>/web)")
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (needs a token)")
    serve.add_argument(
        "--token",
        default=None,
        help="a secret every request must carry (default: $STYLECLOAK_TOKEN); required with --allow-remote",
    )
    serve.add_argument("--encoder", default="taef2", help="encoder to cloak against (default: taef2)")
    serve.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute (default: auto)"
    )
    serve.add_argument("--jobs", type=int, default=1, metavar="N", help="jobs cloaked at the same time (default: 1)")
    serve.add_argument("--max-upload-mb", type=float, default=50, help="largest file accepted, in MB (default: 50)")
    serve.add_argument(
        "--max-megapixels", type=float, default=40, help="largest image accepted, in megapixels (default: 40)"
    )
    serve.add_argument(
        "--keep-hours", type=float, default=168, help="delete finished jobs after this many hours (default: 168)"
    )
    serve.add_argument("--open", action="store_true", help="open the page in the default browser")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..web.app import WebConfig, create_app
    except ImportError as exc:
        print(
            f"stylecloak: error: the web app needs the web extra ({exc.name} is missing): "
            "pip install 'stylecloak[web]'",
            file=sys.stderr,
        )
        return 2
    from ..models.weights import user_cache_dir

    token = args.token or os.environ.get("STYLECLOAK_TOKEN") or None
    loopback = _is_loopback(args.host)
    if not loopback and not args.allow_remote:
        print(
            f"stylecloak: error: --host {args.host} would let other machines reach the app; add --allow-remote "
            "and a --token if that is what you want",
            file=sys.stderr,
        )
        return 2
    if not loopback and not token:
        print(
            "stylecloak: error: serving beyond this computer needs a token: --token SECRET or STYLECLOAK_TOKEN "
            f"(for example {secrets.token_hex(16)})",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.port < 65536:
        print(f"stylecloak: error: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return 2
    data_dir = Path(args.data).expanduser() if args.data else user_cache_dir() / "web"
    config = WebConfig(
        data_dir=data_dir,
        encoder=args.encoder,
        device=args.device,
        token=token,
        remote=not loopback,
        max_file_bytes=int(args.max_upload_mb * 1e6),
        max_pixels=int(args.max_megapixels * 1e6),
        keep_hours=args.keep_hours,
        worker_threads=max(1, args.jobs),
    )
    if data_dir.exists() and not data_dir.is_dir():
        print(f"stylecloak: error: --data {data_dir} is a file, not a folder", file=sys.stderr)
        return 2
    try:
        app = create_app(config)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(
            f"stylecloak: error: cannot use {data_dir} as the data folder ({reason}); pick another with --data DIR",
            file=sys.stderr,
        )
        return 2
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            print(
                f"stylecloak: error: cannot listen on {args.host}:{args.port} ({exc.strerror}); is another server "
                "running there? Pick another with --port",
                file=sys.stderr,
            )
            return 2
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{args.port}/" + (f"?token={token}" if token else "")
    print(
        f"stylecloak serve: open {url}  (data in {data_dir}; Ctrl-C stops, unfinished jobs resume next time)",
        flush=True,
    )
    if args.open:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
