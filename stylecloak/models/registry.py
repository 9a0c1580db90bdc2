"""Every model stylecloak knows: what it is, its licence, where it comes from, and how it is pinned.

A model is fetched into ``<user cache>/models/<name>/``, where the encoders look for it. Direct files are pinned
by sha256; Hugging Face repositories by a commit. A model with no pin (none of the built-in ones today) is
fetched only when the user passes ``--allow-unpinned`` (and then its sha256 is printed, so that it can be pinned).

The hub commits could not be looked up from here (no internet): each is the commit that several unrelated
public projects pin the same repository to (at least three for every one), so a fetch gets exactly the files
those projects run. A pin that upstream deleted fails the fetch with the hub's error; it never falls back to
an unpinned download.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import first_line
from .base import LatentEncoder
from .taesd import TAESD_UPSTREAM, load_tiny_autoencoder, tiny_autoencoder_files
from .weights import ModelFile, models_dirs, user_cache_dir


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    licence: str
    upstream: str
    # The download's size, as public manifests state it for the pinned files (the VAEs' weights to the byte; the
    # tiny autoencoders' from a model list's rounded sizes): what `models list` shows before a fetch.
    size_mb: float | None = None
    files: tuple[ModelFile, ...] = ()  # direct downloads (sha256 "" = not pinned yet)
    hub_repo: str | None = None
    hub_revision: str | None = None  # a pinned commit; None = not pinned yet
    hub_patterns: tuple[str, ...] = field(default_factory=tuple)
    # How the model loads: (name, path or None: the model folders) -> the encoder. Tiny autoencoders run in our
    # own code; the VAEs through diffusers (the full extra).
    loader: Callable[[str, str | None], LatentEncoder] | None = field(default=None, compare=False, repr=False)

    def load(self, path: str | None = None) -> LatentEncoder:
        """The encoder, from ``path`` (a folder or file) or, with None, from the model folders."""
        if self.loader is None:
            raise ValueError(f"{self.name} is a known model but not an encoder stylecloak can load")
        return self.loader(self.name, path)

    @property
    def pinned(self) -> bool:
        if self.hub_repo is not None:
            return self.hub_revision is not None
        return bool(self.files) and all(f.sha256 for f in self.files)

    def missing_message(self) -> str:
        return (
            f"{self.name} is not here; get it with `stylecloak models fetch {self.name}` (or set STYLECLOAK_MODELS "
            f"to the folder that holds '{self.name}/')"
        )

    def location(self) -> Path | None:
        """The folder that holds this model, if it is present in one of the model folders."""
        for folder in (d / self.name for d in models_dirs()):
            if self.files and all((folder / f.filename).is_file() for f in self.files):
                return folder
            if self.hub_repo is not None and (
                (folder / "config.json").is_file() or (folder / "vae" / "config.json").is_file()
            ):
                return folder
        return None


DEFAULT_ENCODER = "taef2"


def _is_diffusers_folder(path: str | None) -> bool:
    if path is None:
        return False
    folder = Path(path).expanduser()
    return (folder / "config.json").is_file() or (
        folder.is_file() and (folder.parent / "config.json").is_file() and folder.suffix in (".safetensors", ".bin")
    )


def _load_tiny(name: str, path: str | None) -> LatentEncoder:
    # A diffusers AutoencoderTiny folder (config.json) goes through diffusers; the original .pth files through ours.
    if _is_diffusers_folder(path):
        from .diffusers_encoders import load_diffusers_vae

        return load_diffusers_vae(name, path, tiny=True)  # type: ignore[arg-type]
    return load_tiny_autoencoder(name, path)


def _find_model_folder(name: str) -> Path:
    """``<models dir>/<name>/`` for a model given without a path (where `stylecloak models fetch` puts it)."""
    from .weights import ModelNotFoundError, models_dirs

    looked = [d / name for d in models_dirs()]
    for folder in looked:
        if folder.is_dir():
            return folder
    raise ModelNotFoundError(
        f"model {name!r} not found (looked in: {', '.join(str(f) for f in looked)}). Fetch it with "
        f"`stylecloak models fetch {name}`, or give a local diffusers folder or file: --encoder {name}:PATH."
    )


def _load_vae(name: str, path: str | None) -> LatentEncoder:
    from .diffusers_encoders import load_diffusers_vae

    return load_diffusers_vae(name, path if path is not None else _find_model_folder(name))


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            "taef2",
            "tiny autoencoder of FLUX.2 (the default encoder)",
            "MIT",
            TAESD_UPSTREAM,
            5.4,
            tiny_autoencoder_files("taef2"),
            loader=_load_tiny,
        ),
        KnownModel(
            "taef1",
            "tiny autoencoder of FLUX.1",
            "MIT",
            TAESD_UPSTREAM,
            9.9,
            tiny_autoencoder_files("taef1"),
            loader=_load_tiny,
        ),
        KnownModel(
            "taesd3",
            "tiny autoencoder of SD3",
            "MIT",
            TAESD_UPSTREAM,
            9.9,
            tiny_autoencoder_files("taesd3"),
            loader=_load_tiny,
        ),
        KnownModel(
            "taesdxl",
            "tiny autoencoder of SDXL",
            "MIT",
            TAESD_UPSTREAM,
            9.8,
            tiny_autoencoder_files("taesdxl"),
            loader=_load_tiny,
        ),
        KnownModel(
            "taesd",
            "tiny autoencoder of SD 1.x/2.x",
            "MIT",
            TAESD_UPSTREAM,
            9.8,
            tiny_autoencoder_files("taesd"),
            loader=_load_tiny,
        ),
        KnownModel(
            "sd-vae",
            "Stable Diffusion 1.x/2.x VAE (ft-MSE)",
            "MIT",
            "https://huggingface.co/stabilityai/sd-vae-ft-mse",
            334.6,
            hub_repo="stabilityai/sd-vae-ft-mse",
            hub_revision="31f26fdeee1355a5c34592e401dd41e45d25a493",
            hub_patterns=("config.json", "diffusion_pytorch_model.safetensors"),
            loader=_load_vae,
        ),
        KnownModel(
            "sdxl-vae",
            "SDXL VAE",
            "see the model card (CreativeML Open RAIL++-M)",
            "https://huggingface.co/stabilityai/sdxl-vae",
            334.6,
            hub_repo="stabilityai/sdxl-vae",
            hub_revision="6f5909a7e596173e25d4e97b07fd19cdf9611c76",
            hub_patterns=("config.json", "diffusion_pytorch_model.safetensors"),
            loader=_load_vae,
        ),
        KnownModel(
            "flux-vae",
            "FLUX.1 VAE (from FLUX.1-schnell)",
            "Apache-2.0",
            "https://huggingface.co/black-forest-labs/FLUX.1-schnell",
            167.7,
            hub_repo="black-forest-labs/FLUX.1-schnell",
            hub_revision="741f7c3ce8b383c54771c7003378a50191e9efe9",
            hub_patterns=("vae/config.json", "vae/diffusion_pytorch_model.safetensors"),
            loader=_load_vae,
        ),
    )
}


def fetch_model(
    model: KnownModel,
    allow_unpinned: bool = False,
    cache_dir: Path | None = None,
    progress_factory: Callable[[str], Callable[[int, int | None], None]] | None = None,
) -> Path:
    """Download ``model`` into ``<cache>/models/<name>/`` and return that folder."""
    from .fetch import FetchError, fetch_file, offline_requested

    if not model.pinned and not allow_unpinned:
        raise FetchError(
            f"{model.name} has no pinned checksum or revision in this stylecloak yet; pass --allow-unpinned "
            f"to download it from {model.upstream} anyway (its sha256 is printed so that you can check it)"
        )
    folder = (cache_dir or user_cache_dir() / "models") / model.name
    if model.hub_repo is not None:
        if offline_requested():
            raise FetchError(
                f"offline mode is set (STYLECLOAK_OFFLINE or HF_HUB_OFFLINE), so {model.hub_repo} was not downloaded"
            )
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise FetchError(
                "fetching from the Hugging Face hub needs huggingface_hub: pip install 'stylecloak[full]'"
            ) from None
        try:
            snapshot_download(
                model.hub_repo, revision=model.hub_revision, allow_patterns=list(model.hub_patterns), local_dir=folder
            )
        except Exception as exc:  # noqa: BLE001 - the hub client raises many kinds; one clear line for the user
            raise FetchError(f"could not download {model.hub_repo}: {first_line(exc)}") from None
        return folder
    for spec in model.files:
        if spec.upstream_url is None:
            raise FetchError(f"{model.name}/{spec.filename} has no download location")
        destination = folder / spec.filename
        if destination.is_file() and spec.sha256:
            from .weights import sha256_file

            if sha256_file(destination) == spec.sha256:
                continue  # already here and verified
        progress = progress_factory(spec.filename) if progress_factory else None
        fetch_file(spec.upstream_url, destination, spec.sha256 or None, progress=progress)
    return folder


def present_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def missing_models(encoder_spec: str) -> list[KnownModel]:
    """The known models that ``encoder_spec`` (``NAME``, ``NAME:PATH``, or an ensemble) names without a path and
    that are not in any model folder: what a first ``cloak`` with that encoder has to fetch."""
    from .spec import parse_model_spec

    missing = []
    for member in parse_model_spec(encoder_spec):
        model = KNOWN_MODELS.get(member.name)
        if member.path is None and model is not None and model.location() is None and model not in missing:
            missing.append(model)
    return missing


def describe_model(model: KnownModel) -> str:
    """Three lines for `models list`: what the model is; its size, licence, pin and origin; where it is."""
    folder = model.location()
    size = f"{model.size_mb:.1f} MB" if model.size_mb else "size unknown"
    state = (
        f"present: {folder} ({present_size_mb(folder):.1f} MB)"
        if folder
        else "missing: stylecloak models fetch " + model.name
    )
    pin = "pinned" if model.pinned else "not pinned yet"
    return (
        f"{model.name:9s} {model.description}\n{'':9s} {size}, licence {model.licence}, {pin}, from {model.upstream}\n"
        f"{'':9s} {state}"
    )


def ensure_model(
    model: KnownModel,
    allow_unpinned: bool = False,
    progress_factory: Callable[[str], Callable[[int, int | None], None]] | None = None,
    tell: Callable[[str], None] = lambda line: None,
) -> Path:
    """The folder of ``model``, verified: a pinned copy that is here is checked against its sha256 and kept, else
    (or when it fails the check) the model is fetched into the user cache. ``tell`` gets what a person should
    read on the way (one line each, "error: ..." for a failed check). Raises FetchError, ChecksumMismatchError or
    OSError when the model cannot be had."""
    from .weights import ChecksumMismatchError, sha256_file, verify_sha256

    present = model.location()
    if present is not None and model.pinned and model.files:
        try:
            for spec in model.files:
                verify_sha256(present / spec.filename, spec.sha256)
        except ChecksumMismatchError as exc:
            tell(f"error: {exc} (fetching a fresh copy into the cache)")
        else:
            tell(f"{model.name} is already here, verified")
            return present
    if model.pinned or allow_unpinned:
        tell(f"fetching {model.name} from {model.upstream}")
    folder = fetch_model(model, allow_unpinned=allow_unpinned, progress_factory=progress_factory)
    if not model.pinned:  # printed so that the download can be checked and pinned
        for spec in model.files:
            tell(f"{spec.filename} sha256 {sha256_file(folder / spec.filename)}")
    return folder


def models_to_fetch_first(encoder_spec: str) -> list[KnownModel]:
    """The one download that happens without `models fetch`: the pinned non-default encoders that a cloak with
    ``encoder_spec`` needs and that are not here. The default encoder is never fetched unasked: it is set up once
    with `models fetch` or STYLECLOAK_MODELS (as the README says), and loading a missing one says how to get it."""
    return [m for m in missing_models(encoder_spec) if m.pinned and m.name != DEFAULT_ENCODER]
