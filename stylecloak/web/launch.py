"""What ``stylecloak serve`` decides before the server starts: may it listen there, with which token, and with
which :class:`~stylecloak.web.app.WebConfig`. Free of FastAPI imports, so that the checks run (and fail
clearly) without the ``web`` extra."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LaunchError(ValueError):
    """The app must not or cannot start as asked; the message says why and what to do, in one line."""


@dataclass(frozen=True)
class ServeOptions:
    """The options of ``stylecloak serve`` (defaults: ``stylecloak.options.SERVE``)."""

    host: str = "127.0.0.1"
    port: int = 8765
    data: str | None = None  # None: <user cache>/web
    allow_remote: bool = False
    token: str | None = None  # None: $STYLECLOAK_TOKEN
    encoder: str = "taef2"
    device: str = "auto"
    jobs: int = 1
    max_upload_mb: float = 50
    max_megapixels: float = 40
    keep_hours: float = 168


@dataclass(frozen=True)
class ServePlan:
    """Where the app serves and how: the checked token, whether requests may come from other machines, the data
    folder and the page's address."""

    options: ServeOptions
    token: str | None
    remote: bool
    data_dir: Path

    @property
    def url(self) -> str:
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        return f"http://{host}:{self.options.port}/" + (f"?token={self.token}" if self.token else "")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plan_serving(options: ServeOptions, environment_token: str | None = None) -> ServePlan:
    """Check the options: beyond this computer only when asked and with a token, a valid port, a data folder
    that is not a file. Raises LaunchError."""
    from ..models.weights import user_cache_dir

    token = options.token or environment_token or None
    loopback = is_loopback(options.host)
    if not loopback and not options.allow_remote:
        raise LaunchError(
            f"--host {options.host} would let other machines reach the app; add --allow-remote "
            "and a --token if that is what you want"
        )
    if not loopback and not token:
        raise LaunchError(
            "serving beyond this computer needs a token: --token SECRET or STYLECLOAK_TOKEN "
            f"(for example {secrets.token_hex(16)})"
        )
    if not 0 < options.port < 65536:
        raise LaunchError(f"--port must be 1-65535, got {options.port}")
    data_dir = Path(options.data).expanduser() if options.data else user_cache_dir() / "web"
    if data_dir.exists() and not data_dir.is_dir():
        raise LaunchError(f"--data {data_dir} is a file, not a folder")
    return ServePlan(options, token, not loopback, data_dir)


def create_web_app(plan: ServePlan) -> Any:
    """The FastAPI app for ``plan`` (needs the web extra). Raises LaunchError when the data folder cannot serve."""
    import sqlite3

    from .app import WebConfig, create_app

    options = plan.options
    config = WebConfig(
        data_dir=plan.data_dir,
        encoder=options.encoder,
        device=options.device,
        token=plan.token,
        remote=plan.remote,
        max_file_bytes=int(options.max_upload_mb * 1e6),
        max_pixels=int(options.max_megapixels * 1e6),
        keep_hours=options.keep_hours,
        worker_threads=max(1, options.jobs),
    )
    try:
        return create_app(config)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LaunchError(
            f"cannot use {plan.data_dir} as the data folder ({reason}); pick another with --data DIR"
        ) from None


def check_port_free(host: str, port: int) -> None:
    """Raises LaunchError when nothing can listen on ``host:port`` (another server there, a foreign address)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LaunchError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another server running there? Pick another "
                "with --port"
            ) from None
