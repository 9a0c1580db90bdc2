"""Downloading model files, only when the user asks (``stylecloak models fetch NAME``).

A download goes to ``<file>.part`` beside its destination and resumes from there with an HTTP Range request
after an interruption. The finished file is checked against its pinned sha256 before it takes its real name:
a file that does not match is deleted, so nothing unverified or partial is ever used as a model. Offline (no
route, refused, ``STYLECLOAK_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) it fails at once with a message that says so.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .weights import ChecksumMismatchError

CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download that could not be done; the message says why and what to do."""


def offline_requested() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in ("STYLECLOAK_OFFLINE", "HF_HUB_OFFLINE")
    )


def fetch_file(
    url: str,
    destination: Path,
    sha256: str | None,
    timeout: float = 30.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` to ``destination`` (resuming a ``.part`` left by an interrupted try) and verify it.

    ``sha256`` None means unpinned: the caller has accepted that (``--allow-unpinned``). ``progress`` is called
    with (bytes so far, total or None).
    """
    if offline_requested():
        raise FetchError(f"offline mode is set (STYLECLOAK_OFFLINE or HF_HUB_OFFLINE), so {url} was not downloaded")
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(
        url, headers={"User-Agent": "stylecloak", **({"Range": f"bytes={start}-"} if start else {})}
    )
    host = urlsplit(url).netloc or url
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - https/http URLs from our registry
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the .part is already whole (or longer than the file): start again
            part.unlink()
            return fetch_file(url, destination, sha256, timeout, progress)
        raise FetchError(f"{host} answered {exc.code} {exc.reason} for {url}") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"cannot reach {host} ({reason}): are you offline? Nothing was downloaded; "
            "run the same command again when you are online"
        ) from None
    with response:
        resumed = start > 0 and response.status == 206
        if not resumed:
            start = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        done = start
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (TimeoutError, OSError, urllib.error.URLError) as exc:
            raise FetchError(
                f"the transfer from {host} broke off after {done / 1e6:.1f} MB ({exc}); run the same "
                "command again to resume where it stopped"
            ) from None
    if total is not None and done < total:
        raise FetchError(
            f"the transfer from {host} broke off after {done / 1e6:.1f} of {total / 1e6:.1f} MB; run the "
            "same command again to resume where it stopped"
        )
    actual = _sha256(part)
    if sha256 is not None and actual != sha256:
        part.unlink()
        raise ChecksumMismatchError(
            f"{url}: the download's sha256 is {actual[:12]}..., the pinned one is "
            f"{sha256[:12]}...; the file was rejected and deleted (nothing was kept)"
        )
    os.replace(part, destination)
    return destination


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
