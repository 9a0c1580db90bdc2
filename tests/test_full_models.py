"""Full-model encoders through diffusers, on tiny random models saved to a temporary folder and loaded offline
(``NAME:PATH``, ``HF_HUB_OFFLINE=1``), and the ensemble encoder with the real TAEF2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (the eval/full extras)")

from stylecloak.cli import main  # noqa: E402
from stylecloak.models.diffusers_encoders import DiffusersTinyEncoder, DiffusersVAEEncoder  # noqa: E402
from stylecloak.models.encoders import load_encoder  # noqa: E402
from stylecloak.models.ensemble import EnsembleEncoder, parse_member  # noqa: E402
from stylecloak.models.tiled import TiledEncoder  # noqa: E402
from stylecloak.models.weights import ModelNotFoundError  # noqa: E402

from .conftest import load_painting  # noqa: E402


def tiny_vae(latent_channels: int = 4, **config) -> torch.nn.Module:
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=64,
        **config,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    tiny_vae(scaling_factor=0.18215).save_pretrained(root / "sd-vae")
    tiny_vae(
        16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False
    ).save_pretrained(root / "flux-vae")
    # A whole pipeline folder: the VAE is in its vae/ subfolder.
    tiny_vae(scaling_factor=0.13025).save_pretrained(root / "sdxl-pipeline" / "vae")
    torch.manual_seed(0)
    diffusers.AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    ).save_pretrained(root / "taesd")
    # A single weights file with its config.json beside it.
    single = root / "single"
    single.mkdir()
    vae = tiny_vae(scaling_factor=0.18215)
    from safetensors.torch import save_file

    save_file(vae.state_dict(), str(single / "vae.safetensors"))
    (single / "config.json").write_text(json.dumps(dict(vae.config)))
    return root


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize(
    "spec, cls, channels",
    [
        ("sd-vae:{root}/sd-vae", DiffusersVAEEncoder, 4),
        ("flux-vae:{root}/flux-vae", DiffusersVAEEncoder, 16),
        ("sdxl-vae:{root}/sdxl-pipeline", DiffusersVAEEncoder, 4),
        ("sd-vae:{root}/single/vae.safetensors", DiffusersVAEEncoder, 4),
        ("taesd:{root}/taesd", DiffusersTinyEncoder, 4),
    ],
)
def test_full_model_encoders_load_from_local_paths(
    spec: str, cls: type, channels: int, model_dir: Path, offline
) -> None:
    encoder = load_encoder(spec.format(root=model_dir))
    assert isinstance(encoder, cls)
    x = torch.rand(1, 3, 45, 70)
    latents = encoder.encode(x)
    assert latents.shape == (1, channels, 6, 9)
    assert encoder.decode(latents).shape[-2:] == (48, 72)
    # Differentiable with respect to the image: the cloak's gradient reaches every pixel.
    image = x.clone().requires_grad_(True)
    encoder.encode(image).pow(2).sum().backward()
    assert image.grad is not None and float(image.grad.abs().sum()) > 0


def test_vae_latents_are_the_scaled_posterior_mean(model_dir: Path, offline) -> None:
    encoder = load_encoder(f"flux-vae:{model_dir}/flux-vae")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        mean = encoder.vae.encode(x * 2 - 1).latent_dist.mean
        assert torch.allclose(encoder.encode(x), (mean - 0.1159) * 0.3611, atol=1e-6)


def test_a_named_vae_without_a_path_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECLOAK_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="stylecloak models fetch sd-vae"):
        load_encoder("sd-vae")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_encoder(f"sd-vae:{tmp_path}")


def test_ensemble_weights_members_and_tiles_like_a_whole_image(model_dir: Path, encoder, offline) -> None:
    assert parse_member("sd-vae:/m/v@0.5") == ("sd-vae:/m/v", 0.5)
    assert parse_member("sd-vae:/m/a@b") == ("sd-vae:/m/a@b", 1.0)
    ensemble = load_encoder(f"taesd:{model_dir}/taesd@0.25+taef2")
    assert isinstance(ensemble, EnsembleEncoder)
    assert ensemble.name == "taesd+taef2" and ensemble.latent_channels == 36
    assert ensemble.factors == pytest.approx([0.5, 1 / 0.85])
    x = torch.from_numpy(load_painting("bruegel_harvesters.png", 200)).permute(2, 0, 1).unsqueeze(0).contiguous()
    with torch.no_grad():
        whole = ensemble.encode(x)
        tiled = TiledEncoder(ensemble, x.shape[-2], x.shape[-1], tile_size=64)
        assert len(tiled.tiles) > 2
        assert torch.allclose(tiled.encode(x), whole, atol=2e-3)
    assert ensemble.can_decode and ensemble.decode(whole).shape[-2:] == (whole.shape[-2] * 8, whole.shape[-1] * 8)
    with pytest.raises(ValueError, match="weight"):
        EnsembleEncoder([encoder], [0.0])


def test_cloak_with_full_encoders_and_an_ensemble_from_the_command_line(
    model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 96) * 255).round().astype(np.uint8)).save(image)
    for spec in (
        f"sd-vae:{model_dir}/sd-vae",
        f"flux-vae:{model_dir}/flux-vae",
        f"sdxl-vae:{model_dir}/sdxl-pipeline",
        f"taesd:{model_dir}/taesd",
        f"sd-vae:{model_dir}/sd-vae@0.5+taef2",
    ):
        argv = ["cloak", str(image), "-o", str(tmp_path / "out"), "--encoder", spec, "--target", "ink-hatching"]
        assert main([*argv, "--steps", "3", "--json"]) == 0, capsys.readouterr().err
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["encoder"] == spec.split(":")[0] if "+" not in spec else report["encoder"] == "sd-vae+taef2"
        assert report["lpips"] <= report["budget"]
        assert report["target_progress"] > 0


def test_target_choice_with_a_clip_descriptor(tiny_clip: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """--descriptor clip:PATH: the portfolio's CLIP embeddings choose the target (here a tiny random CLIP)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("hokusai_great_wave.png", "hokusai_poppies.png"):
        Image.fromarray((load_painting(name, 64) * 255).round().astype(np.uint8)).save(tmp_path / name)
    assert main(["targets", "choose", str(tmp_path), "--descriptor", f"clip:{tiny_clip}", "--json"]) == 0
    choice = json.loads(capsys.readouterr().out)
    assert choice["descriptor"] == "clip" and choice["images"] == 2
    assert len(choice["candidates"]) >= 5
    assert main(["targets", "choose", str(tmp_path), "--descriptor", f"clip:{tmp_path}/none"]) != 0
    assert "cannot load CLIP model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path) -> Path:
    """A random Stable Diffusion img2img pipeline with 8-16 wide blocks, saved like a downloaded model."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=8,
        attention_head_dim=2,
    )
    tokenizer = transformers.CLIPTokenizer.from_pretrained(tiny_clip)
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    pipeline = diffusers.StableDiffusionImg2ImgPipeline(
        vae=tiny_vae(scaling_factor=0.18215),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=diffusers.DDIMScheduler(clip_sample=False, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = tmp_path_factory.mktemp("tiny-sd")
    pipeline.save_pretrained(folder)
    return folder


def test_sd_img2img_target_renders_in_tiles_and_is_cached(tiny_sd: Path, tmp_path: Path, monkeypatch) -> None:
    from stylecloak.targets.cache import render_cached
    from stylecloak.targets.sd import SDImg2ImgTarget, load_img2img_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = SDImg2ImgTarget(load_img2img_pipeline(tiny_sd), "ink drawing", steps=4, tile_size=64, overlap=16)
    image = torch.from_numpy(load_painting("hokusai_great_wave.png", 100)).permute(2, 0, 1).unsqueeze(0).contiguous()
    rendered = target.render(image)
    assert rendered.shape == image.shape and 0 <= float(rendered.min()) and float(rendered.max()) <= 1
    assert not torch.allclose(rendered, image, atol=0.05)
    assert torch.equal(target.render(image), rendered)  # seeded: the same target every time
    cached = render_cached(target, image, 0, tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert torch.equal(render_cached(target, image, 0, tmp_path), cached)
    with pytest.raises(ValueError, match="prompt"):
        SDImg2ImgTarget(target.pipeline, "  ")


def test_cloak_toward_an_sd_target_from_the_command_line(tiny_sd: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 96) * 255).round().astype(np.uint8)).save(image)
    argv = ["cloak", str(image), "-o", str(tmp_path / "out"), "--target", "sd:oil painting with thick brushstrokes"]
    assert main([*argv, "--target-model", str(tiny_sd), "--quality", "fast", "--json"]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["target"].startswith("sd:oil painting with thick brushstrokes")
    assert report["lpips"] <= report["budget"] and report["target_progress"] > 0
    assert main(["cloak", str(image), "-o", str(tmp_path / "out"), "--target", "sd:ink"]) == 2
    assert "--target-model" in capsys.readouterr().err


def test_lora_mimicry_from_the_command_line(
    tiny_sd: Path, tiny_clip: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """A few LoRA steps on a tiny random SD pipeline, on clean and cloaked art, generating, and judging with a
    linear probe on a (tiny random) CLIP."""
    pytest.importorskip("peft", reason="peft is not installed (the full extra)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folders = {name: tmp_path / name for name in ("clean", "cloaked", "others/ukiyo-e", "others/impressionism")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    works = {
        "clean": ["leonardo_mona_lisa.png", "arcimboldo_librarian.png"],
        "others/ukiyo-e": ["hokusai_great_wave.png", "hiroshige_inokashira_snow.png"],
        "others/impressionism": ["renoir_moulin_de_la_galette.png", "cassatt_summertime.png"],
    }
    for key, names in works.items():
        for name in names:
            pixels = (load_painting(name, 64) * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(folders[key] / name)
            if key == "clean":
                Image.fromarray(pixels).save(folders["cloaked"] / name.replace(".png", ".cloaked.png"))
    code = main(
        [
            "mimic",
            "--attack",
            "lora",
            "--base",
            str(tiny_sd),
            "--clean",
            str(folders["clean"]),
            "--cloaked",
            str(folders["cloaked"]),
            "--others",
            str(tmp_path / "others"),
            "--steps",
            "3",
            "--samples",
            "2",
            "--image-size",
            "32",
            "--purify",
            "none",
            "--out",
            str(tmp_path / "out"),
            "--json",
            "--judge",
            f"clip:{tiny_clip}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["config"]["attack"] == "lora" and report["config"]["steps"] == 3
    assert report["classifier"] == "clip-linear"
    assert [c["condition"] for c in report["conditions"]] == ["clean", "cloaked"]
    for condition in report["conditions"]:
        assert condition["samples"] == 2 and 0 <= condition["protection_success_rate"] <= 1
        assert condition["loss_first"] == condition["loss_first"]  # a number, not NaN
    assert (tmp_path / "out" / "samples_clean.png").is_file()
    assert main(["mimic", "--attack", "lora", "--clean", "a", "--cloaked", "b", "--others", "c"]) == 2
    assert "--base" in capsys.readouterr().err
