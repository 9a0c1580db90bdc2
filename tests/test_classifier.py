"""The offline style classifier (Gram features + heads), cross-validation, labelled folders, and CLIP zero-shot
with a tiny random CLIP saved to disk."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylecloak import options
from stylecloak.cli import main
from stylecloak.evaluation.classifier import FeatureStyleClassifier, attributed_share, check_images, label_probability
from stylecloak.evaluation.cross_validation import CVResult, cross_validate, stratified_folds
from stylecloak.evaluation.labelled import (
    LabelledFolderError,
    load_labelled_images,
    read_label_folders,
    read_labelled_folder,
    read_manifest,
)
from stylecloak.evaluation.style_features import GramFeatureExtractor, degrade
from stylecloak.evaluation.style_heads import LinearHead

from .conftest import PAINTINGS

SIZE = 48  # synthetic images: small, so that VGG takes milliseconds


def _stripes(rng: np.random.Generator) -> np.ndarray:
    """Hard-edged stripes at a diagonal angle, in two random saturated colours."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    # Diagonal hatching, like an engraver's: Gram features are not rotation-invariant, and with four training
    # images per style, stripes at any angle would be several styles. Periods survive the 40 px detail bottleneck.
    angle, period = rng.uniform(np.pi / 6, np.pi / 3), rng.uniform(5, 8)
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period + rng.uniform(0, 6)) > 0
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    return np.where(wave[..., None], a, b).astype(np.float32)


def _blobs(rng: np.random.Generator) -> np.ndarray:
    """Soft low-frequency colour clouds: bilinearly enlarged 4x4 noise."""
    coarse = torch.from_numpy(rng.uniform(0, 1, (1, 3, 4, 4)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=False)
    return smooth.clamp(0, 1)[0].permute(1, 2, 0).numpy()


def _synthetic(count: int, seed: int) -> tuple[list[torch.Tensor], list[str]]:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(count):
        for label, make in (("stripes", _stripes), ("blobs", _blobs)):
            images.append(torch.from_numpy(make(rng)).permute(2, 0, 1)[None].contiguous())
            labels.append(label)
    return images, labels


@pytest.fixture(scope="module")
def vgg():
    from stylecloak.models.lpips import load_vgg16_features

    return load_vgg16_features()


@pytest.fixture(scope="module")
def extractor(vgg) -> GramFeatureExtractor:
    return GramFeatureExtractor(vgg, long_side=48, detail_side=40, views=2)


# ------------------------------------------------------------------------------------ the second (texture) judge


def test_the_texture_judge_ignores_colour_and_tells_textures_apart() -> None:
    from stylecloak.evaluation.cross_validation import cross_validate
    from stylecloak.evaluation.texture_features import TextureFeatureExtractor

    extractor = TextureFeatureExtractor(long_side=48, detail_side=40, views=2)
    images, labels = _synthetic(4, seed=3)
    vector = extractor.features(images[0])
    assert vector.shape == (sum(extractor.block_sizes),) and torch.isfinite(vector).all()
    # The same luminance in other colours gives the same features: it sees no hue.
    grey = (images[0] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).expand(1, 3, -1, -1)
    assert torch.allclose(extractor.features(grey.contiguous()), vector, atol=1e-5)
    assert extractor.training_features(images[0]).shape == (3, vector.shape[0])
    result = cross_validate(lambda: FeatureStyleClassifier(extractor, "linear"), images, labels, 4, 0)
    assert result.accuracy >= 0.75  # stripes against blobs, with no colour to go by


# ------------------------------------------------------------------------------------------- the Gram classifier


@pytest.mark.parametrize("head", ["centroid", "linear"])
def test_two_synthetic_styles_are_separated(extractor: GramFeatureExtractor, head: str) -> None:
    train_images, train_labels = _synthetic(4, seed=1)
    test_images, test_labels = _synthetic(3, seed=2)
    classifier = FeatureStyleClassifier(extractor, head).fit(train_images, train_labels)
    assert classifier.labels == ["blobs", "stripes"]
    proba = classifier.predict_proba(test_images)
    assert proba.shape == (6, 2)
    assert torch.allclose(proba.sum(dim=1), torch.ones(6), atol=1e-5)
    assert classifier.predict(test_images) == test_labels
    # The binary view: P(stripes) is high exactly on the stripes.
    p_stripes = label_probability(classifier, test_images, "stripes")
    assert all((p > 0.5) == (label == "stripes") for p, label in zip(p_stripes.tolist(), test_labels))
    stripes_only = [image for image, label in zip(test_images, test_labels) if label == "stripes"]
    assert attributed_share(classifier, stripes_only, "stripes") == 1.0
    assert attributed_share(classifier, stripes_only, "blobs", threshold=0.5) == 0.0
    assert label_probability(classifier, test_images, "never-trained").tolist() == [0.0] * 6


def test_small_soft_copies_keep_their_style(extractor: GramFeatureExtractor) -> None:
    """What a mimic produces: the same styles shrunk and blurred are still told apart."""
    train_images, train_labels = _synthetic(4, seed=1)
    test_images, test_labels = _synthetic(3, seed=3)
    classifier = FeatureStyleClassifier(extractor, "centroid").fit(train_images, train_labels)
    assert classifier.predict([degrade(image, 32, 0.6) for image in test_images]) == test_labels


def test_views_are_deterministic_and_cached(vgg) -> None:
    image = _synthetic(1, seed=4)[0][0]
    first = GramFeatureExtractor(vgg, long_side=48, detail_side=40, views=3, seed=7)
    views = first.training_features(image)
    assert views.shape == (4, sum(first.block_sizes))
    assert first.training_features(image) is views  # cached by content
    again = GramFeatureExtractor(vgg, long_side=48, detail_side=40, views=3, seed=7).training_features(image.clone())
    assert torch.equal(views, again)
    assert torch.equal(views[0], first.features(image))  # the plain image is the first row
    other = GramFeatureExtractor(vgg, long_side=48, detail_side=40, views=3, seed=8).training_features(image)
    assert not torch.equal(views[1:], other[1:])


def test_bad_inputs_are_one_line_errors(extractor: GramFeatureExtractor) -> None:
    images, labels = _synthetic(1, seed=5)
    with pytest.raises(ValueError, match="1x3xHxW"):
        check_images([images[0][0]])
    with pytest.raises(ValueError, match="float"):
        check_images([torch.zeros(1, 3, 8, 8, dtype=torch.uint8)])
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        FeatureStyleClassifier(extractor).fit(images, labels[:1])
    with pytest.raises(ValueError, match="not trained"):
        FeatureStyleClassifier(extractor).predict(images)
    with pytest.raises(ValueError, match="unknown head"):
        FeatureStyleClassifier(extractor, "forest")
    with pytest.raises(ValueError, match="detail_side"):
        GramFeatureExtractor(extractor.vgg, long_side=64, detail_side=96)
    with pytest.raises(ValueError, match="layers"):
        GramFeatureExtractor(extractor.vgg, layers=("relu5_3",))


def test_linear_head_keeps_weights_not_the_training_matrix() -> None:
    # Wider than one feature slice, so the kernel and the weights are summed over slices: the same logits as the
    # dual form computed in one piece, and the head does not keep the N x D training matrix.
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(30, 40_000, generator=generator)
    samples[15:, :500] += 1.5  # class 1 differs in the first block
    targets = torch.tensor([0] * 15 + [1] * 15)
    head = LinearHead()
    head.fit(samples, targets, 2, (20_000, 20_000))
    train = head.standardise(samples).double()
    queries = torch.randn(5, 40_000, generator=generator)
    reference = torch.softmax(head.standardise(queries).double() @ train.T @ head.coef + head.bias, dim=1)
    assert torch.allclose(head.predict_proba(queries).double(), reference, atol=1e-5)
    assert (head.predict_proba(samples).argmax(dim=1) == targets).all()
    assert not any(
        isinstance(v, torch.Tensor) and v.shape[0] == 30 and v.dim() == 2 and v.shape[1] == 40_000
        for v in vars(head).values()
    )


# ---------------------------------------------------------------------------------------------- cross-validation


def test_stratified_folds_cover_each_image_once_and_are_seeded() -> None:
    labels = ["a"] * 9 + ["b"] * 6 + ["c"] * 4 + ["d", "e"]
    folds = stratified_folds(labels, 4, seed=3)
    assert sorted(i for fold in folds for i in fold) == list(range(len(labels)))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for fold in folds:  # each label spread as evenly as the counts allow
        assert sum(labels[i] == "a" for i in fold) in (2, 3)
    assert folds == stratified_folds(labels, 4, seed=3)
    assert folds != stratified_folds(labels, 4, seed=4)
    assert stratified_folds(labels, "loo") == [[i] for i in range(len(labels))]
    for bad in (1, 0, 22, "ten", True):
        with pytest.raises(ValueError, match="folds must be"):
            stratified_folds(labels, bad)  # type: ignore[arg-type]


class _Brightness:
    """A stand-in classifier: the label whose training mean brightness is nearest."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def fit(self, images, labels):
        self.labels = sorted(set(labels))
        self.means = [
            np.mean([float(i.mean()) for i, label in zip(images, labels) if label == name]) for name in self.labels
        ]
        return self

    def predict_proba(self, images):
        distance = torch.tensor([[abs(float(i.mean()) - m) for m in self.means] for i in images])
        return torch.softmax(-distance, dim=1)

    def predict(self, images):
        return [self.labels[k] for k in self.predict_proba(images).argmax(dim=1).tolist()]


def test_cross_validation_bookkeeping() -> None:
    """Dark, mid and bright images, plus a lone label that can never be predicted when held out."""
    levels = {"dark": 0.1, "mid": 0.5, "bright": 0.9}
    images, labels = [], []
    for name, level in levels.items():
        for k in range(4):
            images.append(torch.full((1, 3, 8, 8), level + 0.01 * k))
            labels.append(name)
    images.append(torch.full((1, 3, 8, 8), 0.3))
    labels.append("lone")
    result = cross_validate(_Brightness, images, labels, "loo")
    assert isinstance(result, CVResult)
    assert result.labels == ["bright", "dark", "lone", "mid"]
    assert result.n == 13 and result.folds == 13
    assert result.accuracy == pytest.approx(12 / 13)
    assert result.per_class == {"bright": 1.0, "dark": 1.0, "lone": 0.0, "mid": 1.0}
    assert sum(map(sum, result.confusion)) == 13
    assert result.confusion[2][2] == 0 and sum(result.confusion[2]) == 1
    assert result.chance == pytest.approx(4 / 13)
    binary = result.binary("dark")
    assert binary.true_positive_rate == 1.0
    assert binary.accuracy == pytest.approx((4 + 9 - binary.false_positive_rate * 9) / 13)
    json.dumps(result.to_dict())
    # A test-time transform sees only the held-out images: making them all bright breaks every other label.
    brightened = cross_validate(_Brightness, images, labels, 4, seed=1, test_transform=lambda x: torch.ones_like(x))
    assert brightened.per_class["bright"] == 1.0 and brightened.per_class["dark"] == 0.0
    with pytest.raises(ValueError, match="two labels"):
        cross_validate(_Brightness, images[:4], labels[:4])


def test_cross_validated_gram_classifier_on_synthetic_styles(extractor: GramFeatureExtractor) -> None:
    images, labels = _synthetic(5, seed=6)
    for head in ("centroid", "linear"):
        result = cross_validate(lambda: FeatureStyleClassifier(extractor, head), images, labels, "loo")  # noqa: B023
        assert result.accuracy == 1.0, (head, result.confusion)
    five = cross_validate(lambda: FeatureStyleClassifier(extractor, "linear"), images, labels, 5, seed=2)
    assert five.accuracy == 1.0 and five.folds == 5


# ------------------------------------------------------------------------------------------------ labelled folders


def _write_folder(folder: Path, images: list[torch.Tensor], labels: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,artist,style"]
    for k, (image, label) in enumerate(zip(images, labels)):
        name = f"{label}_{k}.png"
        Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(folder / name)
        rows.append(f"{name},someone,{label}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")


def test_manifest_and_folder_layouts(tmp_path: Path) -> None:
    images, labels = _synthetic(2, seed=7)
    _write_folder(tmp_path / "m", images, labels)
    items = read_manifest(tmp_path / "m")
    assert [item.label for item in items] == labels
    loaded, loaded_labels = load_labelled_images(items, long_side=32)
    assert loaded_labels == labels and all(max(i.shape[-2:]) == 32 for i in loaded)
    assert [i.label for i in read_manifest(tmp_path / "m", column="artist")] == ["someone"] * 4
    for k, (image, label) in enumerate(zip(images, labels)):
        (tmp_path / "f" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
            tmp_path / "f" / label / f"{k}.png"
        )
    by_folder = read_labelled_folder(tmp_path / "f")
    assert sorted(i.label for i in by_folder) == sorted(labels)
    assert read_labelled_folder(tmp_path / "m") == items


def test_manifest_errors_are_one_line(tmp_path: Path) -> None:
    def error(folder: Path, **kwargs) -> str:
        with pytest.raises(LabelledFolderError) as info:
            read_manifest(folder, **kwargs)
        message = str(info.value)
        assert "\n" not in message
        return message

    assert "not a folder" in error(tmp_path / "nowhere")
    assert "has no manifest.csv" in error(tmp_path)
    (tmp_path / "manifest.csv").write_text("name,style\na.png,x\n")
    assert "no column file" in error(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,style\na.png,x\n")
    assert "no column genre" in error(tmp_path, column="genre")
    (tmp_path / "manifest.csv").write_text("file,style\n" + "".join(f"m{k}.png,x\n" for k in range(7)))
    message = error(tmp_path)
    assert "7 listed file(s) not found: m0.png, m1.png" in message and "and 2 more" in message
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "manifest.csv").write_text("file,style\na.png,\n")
    assert "empty 'style'" in error(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,style\na.png,x\na.png,y\n")
    assert "listed twice" in error(tmp_path)
    (tmp_path / "manifest.csv").write_bytes(b"file,style\n\xff\xfe,x\n")
    assert "not a readable CSV" in error(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,style\n")
    assert "lists no images" in error(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelledFolderError, match="no manifest.csv and no label sub-folders"):
        read_label_folders(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    (tmp_path / "broken" / "manifest.csv").write_text("file,style\nx.png,a\n")
    with pytest.raises(LabelledFolderError, match="x.png"):
        load_labelled_images(read_manifest(tmp_path / "broken"))


# ------------------------------------------------------------------------------------------------------ command


def _run_cli(argv: list[str]) -> int:
    return main(argv)


def test_command_reports_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = _synthetic(3, seed=8)
    _write_folder(tmp_path / "set", images, labels)
    common = ["style-classifier", str(tmp_path / "set"), "--long-side", "48", "--detail", "40", "--views", "1"]
    assert _run_cli(common + ["--json", "--positive", "stripes", "--shrink", "40", "--blur", "0.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == 1.0 and report["n"] == 6 and report["labels"] == ["blobs", "stripes"]
    assert report["binary"]["true_positive_rate"] == 1.0 and report["shrink"] == 40
    assert _run_cli(common + ["--head", "linear", "--folds", "3"]) == 0
    text = capsys.readouterr().out
    assert "accuracy 100.0% (6/6)" in text and "3-fold" in text and "predicted:" in text


@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        (["--positive", "cubism"], 2, "not a label here"),
        (["--blur", "1"], 2, "--blur needs --shrink"),
        (["--folds", "9"], 2, "more than the 6 images"),
        (["--detail", "64"], 2, "must not exceed --long-side"),
    ],
)
def test_command_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], code: int, needle: str
) -> None:
    images, labels = _synthetic(3, seed=8)
    _write_folder(tmp_path / "set", images, labels)
    assert _run_cli(["style-classifier", str(tmp_path / "set"), "--long-side", "48"] + extra) == code
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_command_defaults_follow_the_library() -> None:
    from stylecloak.evaluation import style_features

    assert (options.WORKING_LONG_SIDE, options.DETAIL_LONG_SIDE, options.TRAINING_VIEWS) == (
        style_features.WORKING_LONG_SIDE,
        style_features.DETAIL_LONG_SIDE,
        style_features.TRAINING_VIEWS,
    )


def test_command_bad_folder_and_bad_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(["style-classifier", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.strip() == f"stylecloak: error: {tmp_path / 'missing'}: not a folder"
    for bad in (["--folds", "1"], ["--folds", "x"], ["--long-side", "8"], ["--blur", "-1"]):
        with pytest.raises(SystemExit) as info:
            _run_cli(["style-classifier", str(tmp_path)] + bad)
        assert info.value.code == 2


# --------------------------------------------------------------------------------------------------------- CLIP


def test_tiny_clip_zero_shot(tiny_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from stylecloak.descriptors import StyleDescriptor
    from stylecloak.evaluation.classifier import StyleClassifier
    from stylecloak.evaluation.clip import CLIPZeroShotClassifier

    labels = ["ukiyo-e", "impressionism", "abstract"]
    clip = CLIPZeroShotClassifier(tiny_clip, labels)
    assert isinstance(clip, StyleClassifier) and isinstance(clip, StyleDescriptor)
    images = [torch.rand(1, 3, 40, 56), torch.rand(1, 3, 64, 24), torch.rand(1, 3, 16, 16)]
    assert clip.fit(images, ["ukiyo-e", "abstract", "abstract"]) is clip
    proba = clip.predict_proba(images)
    assert proba.shape == (3, 3)
    assert torch.allclose(proba.sum(dim=1), torch.ones(3), atol=1e-5)
    assert set(clip.predict(images)) <= set(labels)
    assert clip.preprocess(images[0]).shape == (1, 3, 32, 32)
    embedding = clip.describe(images[1])
    assert embedding.shape == (8,) and math.isclose(float(embedding.norm()), 1.0, rel_tol=1e-5)
    assert 0.0 <= attributed_share(clip, images, "ukiyo-e") <= 1.0
    with pytest.raises(ValueError, match="no prompt"):
        clip.fit(images[:1], ["cubism"])
    with pytest.raises(ValueError, match=r"\{\}"):
        CLIPZeroShotClassifier(tiny_clip, labels, prompt_template="no slot")


def test_clip_missing_model_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from stylecloak.evaluation.clip import CLIPUnavailableError, CLIPZeroShotClassifier

    with pytest.raises(CLIPUnavailableError, match="cannot load CLIP model") as info:
        CLIPZeroShotClassifier(tmp_path / "no-such-model", ["a", "b"])
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------- the shared paintings


@pytest.mark.slow
def test_paintings_leave_one_out_beats_chance(vgg) -> None:
    """The 5 style groups of the shared paintings (takes minutes on 2 cores; the README reports the numbers)."""
    if not (PAINTINGS / "manifest.csv").is_file():
        pytest.skip("shared paintings not found")
    images, labels = load_labelled_images(read_manifest(PAINTINGS), long_side=512)
    extractor = GramFeatureExtractor(vgg)  # one extractor for all folds: its cache holds the features
    result = cross_validate(lambda: FeatureStyleClassifier(extractor), images, labels, "loo")
    assert result.accuracy > result.chance
