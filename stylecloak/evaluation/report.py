"""One self-contained HTML page from the toolkit's results: tables, triptychs, robustness curves, mimicry samples.

``build_report(folder)`` reads what ``stylecloak evaluate --out DIR`` and ``stylecloak mimic --out DIR`` wrote
(``*.evaluation.json`` with their ``*.model-view.png``, and ``report.json`` with ``samples_*.png``), anywhere
under ``folder``. Images are embedded as data URIs, so that the page can be mailed or archived as one file;
they are shrunk to thumbnails (JPEG) to keep it small, so zoom into the original files to judge artefacts.
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

EVALUATION_SUFFIX = ".evaluation.json"
MIMIC_REPORT_NAME = "report.json"
THUMBNAIL_LONG_SIDE = 360
SAMPLES_LONG_SIDE = 1024


@dataclass
class ReportInputs:
    evaluations: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    mimicry: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def collect(folder: Path) -> ReportInputs:
    """Every evaluation and mimicry result under ``folder``; unreadable files are listed, not fatal."""
    inputs = ReportInputs()
    for path in sorted(folder.rglob(f"*{EVALUATION_SUFFIX}")):
        data = _read_json(path, inputs.skipped)
        if isinstance(data, dict) and "target_progress" in data:
            inputs.evaluations.append((path, data))
        elif data is not None:
            inputs.skipped.append(f"{path}: not an evaluation result")
    for path in sorted(folder.rglob(MIMIC_REPORT_NAME)):
        data = _read_json(path, inputs.skipped)
        if isinstance(data, dict) and isinstance(data.get("conditions"), list):
            inputs.mimicry.append((path, data))
    return inputs


def _read_json(path: Path, skipped: list[str]) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        skipped.append(f"{path}: {exc}")
        return None


def _data_uri(path: Path | None, long_side: int) -> str | None:
    """A JPEG thumbnail of an image file as a data URI, or None if it cannot be read."""
    if path is None or not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((long_side, long_side), Image.LANCZOS)
            buffer = io.BytesIO()
            im.save(buffer, format="JPEG", quality=88)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _resolve(reference: str | None, base: Path) -> Path | None:
    """A path recorded in a result: as recorded (absolute or relative to where the command ran), else next to
    the result file."""
    if not reference:
        return None
    path = Path(reference)
    for candidate in (path, base / path, base / path.name):
        if candidate.is_file():
            return candidate
    return None


def robustness_plot(evaluations: Sequence[dict[str, Any]]) -> str | None:
    """Target progress after each countermeasure, one thin line per image and the median in bold, as a PNG
    data URI (matplotlib, drawn off-screen)."""
    rows = [e for e in evaluations if isinstance(e.get("robustness"), dict) and e["robustness"]]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = ["none", *rows[0]["robustness"].keys()]
    figure = Figure(figsize=(9, 3.6), dpi=110)
    axes = figure.add_subplot()

    def values(row: dict[str, Any]) -> list[float]:
        measured = [row["target_progress"], *(row["robustness"].get(n) for n in names[1:])]
        return [float("nan") if v is None else float(v) for v in measured]

    for row in rows:
        axes.plot(names, values(row), color="#9db4d0", linewidth=0.8)
    medians = [
        statistics.median(v for v in column if v == v) if any(v == v for v in column) else float("nan")
        for column in zip(*(values(row) for row in rows))
    ]
    axes.plot(names, medians, color="#1f4e8c", linewidth=2.5, marker="o", label=f"median of {len(rows)} images")
    axes.axhline(0, color="#999", linewidth=0.8)
    axes.set_ylabel("target progress")
    axes.set_title("Does the cloak survive? Target progress after each countermeasure")
    axes.tick_params(axis="x", labelrotation=35, labelsize=8)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _interval(condition: dict[str, Any]) -> str:
    """The rate's 95% interval over its verdicts, " (0.66-0.88)", or nothing for a report from before it."""
    interval = condition.get("rate_interval")
    if not (isinstance(interval, list | tuple) and len(interval) == 2):
        return ""
    low, high = interval
    return f" ({_number(float(low), 2)}-{_number(float(high), 2)})"


def _img(uri: str | None, alt: str) -> str:
    return (
        f'<img src="{uri}" alt="{html.escape(alt)}">'
        if uri
        else f'<div class="missing">{html.escape(alt)}: not found</div>'
    )


def _evaluation_section(evaluations: list[tuple[Path, dict[str, Any]]]) -> str:
    if not evaluations:
        return "<p>No evaluation results (run <code>stylecloak evaluate ORIGINAL CLOAKED --out DIR</code>).</p>"
    data = [e for _, e in evaluations]
    countermeasures = list(data[0].get("robustness", {}).keys())
    head = [
        "image",
        "target",
        "lpips",
        "lpips (VGG)",
        "PSNR dB",
        "SSIM",
        "worst 64 px SSIM",
        "max change",
        "target progress",
        "progress 2x smaller",
        "progress 4x smaller",
        "decoder's image 2x smaller",
        "decoder's image 4x smaller",
        "style statistics at 128 px",
        *countermeasures,
    ]
    lines = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for path, e in evaluations:
        cells = [
            Path(e.get("cloaked") or path.name).name,
            e.get("target"),
            e.get("lpips"),
            e.get("lpips_vgg"),
            e.get("psnr"),
            e.get("ssim"),
            e.get("ssim_window_min"),
            e.get("max_change"),
            e.get("target_progress"),
            e.get("progress_by_scale", {}).get("2x"),
            e.get("progress_by_scale", {}).get("4x"),
            e.get("decoded_progress_by_scale", {}).get("2x"),
            e.get("decoded_progress_by_scale", {}).get("4x"),
            e.get("style_transfer_progress"),
            *(e.get("robustness", {}).get(c) for c in countermeasures),
        ]
        lines.append(
            "<tr>" + "".join(f"<td>{_number(c, 2 if i == 4 else 3)}</td>" for i, c in enumerate(cells)) + "</tr>"
        )
    lines.append("</tbody></table>")
    medians = {
        k: statistics.median(e[k] for e in data if isinstance(e.get(k), (int, float)))
        for k in ("lpips", "target_progress")
        if any(isinstance(e.get(k), (int, float)) for e in data)
    }
    summary = ", ".join(f"median {k.replace('_', ' ')} {v:.3f}" for k, v in medians.items())
    style = [e["style_transfer_progress"] for e in data if isinstance(e.get("style_transfer_progress"), (int, float))]
    if style:
        # A style transfer copies the mean statistics of every work it is given, so a work the cloak barely moves
        # pulls back all of them; a median hides it (docs/protection.md, 2026-12-06).
        summary += (
            f"; style statistics at 128 px: lowest {min(style):.3f}, mean {statistics.mean(style):.3f} "
            "(a style transfer pools the works it copies: the lowest counts)"
        )
    surrogate = [
        e["surrogate_figure"]["relative_loss"]
        for e in data
        if isinstance(e.get("surrogate_figure"), dict)
        and isinstance(e["surrogate_figure"].get("relative_loss"), (int, float))
    ]
    if surrogate:
        # Only `evaluate --surrogate` measures the experimental `away` term; it checks the optimisation (through
        # the cloak's own surrogate) and did not rank cloaks as the mimic did (docs/protection.md, 2026-12-06).
        summary += (
            f"; a surrogate's denoising loss (the `away` term's figure, {len(surrogate)} pairs): median "
            f"{statistics.median(surrogate):.2f}x the originals' (a check of the term, not a protection rate)"
        )
    plot = robustness_plot(data)
    triptychs = []
    for path, e in evaluations:
        base = path.parent
        name = Path(e.get("cloaked") or path.name).name
        triptychs.append(
            f'<figure class="triptych"><figcaption>{html.escape(name)}</figcaption><div class="row">'
            f"<div><h4>original</h4>{_img(_data_uri(_resolve(e.get('original'), base), THUMBNAIL_LONG_SIDE), 'original')}</div>"
            f"<div><h4>cloaked</h4>{_img(_data_uri(_resolve(e.get('cloaked'), base), THUMBNAIL_LONG_SIDE), 'cloaked')}</div>"
            f"<div><h4>what the model sees (original | cloaked)</h4>"
            f"{_img(_data_uri(_resolve(e.get('model_view'), base), 2 * THUMBNAIL_LONG_SIDE), 'model view')}</div>"
            + (
                f"<div><h4>where the change is most visible (cyan: the worst 64 px window)</h4>"
                f"{_img(_data_uri(_resolve(e.get('visibility_map'), base), THUMBNAIL_LONG_SIDE), 'visibility map')}</div>"
                if e.get("visibility_map")
                else ""
            )
            + "</div></figure>"
        )
    return (
        f"<p>{len(evaluations)} image(s); {summary}.</p>"
        + "".join(lines)
        + (f'<h3>Robustness</h3><img class="plot" src="{plot}" alt="robustness curves">' if plot else "")
        + "<h3>Original, cloaked, what the model sees, and where to look</h3>"
        + "".join(triptychs)
    )


def _mimicry_section(mimicry: list[tuple[Path, dict[str, Any]]]) -> str:
    if not mimicry:
        return "<p>No mimicry results (run <code>stylecloak mimic ... --out DIR</code>).</p>"
    parts = []
    for path, report in mimicry:
        config = report.get("config", {})
        parts.append(
            f"<p>{html.escape(str(path.parent))}: {report.get('artist_images')} images of the artist, other styles "
            f"{html.escape(json.dumps(report.get('other_styles', {})))}; {config.get('steps')} training steps, "
            f"{config.get('samples')} samples per run; classifier {html.escape(str(report.get('classifier')))} "
            f"(attributes {_number(report.get('classifier_sanity'), 2)} of the artist's clean crops to the artist"
            + (
                f"; control: it attributes {_number(report['control_artist_rate'], 2)} of the clean mimic's images "
                f"of the other styles to the artist"
                if report.get("control_artist_rate") is not None
                else ""
            )
            + ").</p>"
        )
        second = report.get("second_judge")
        if second:
            parts.append(
                f"<p>Second, independent judge {html.escape(str(second.get('name')))}: attributes "
                f"{_number(second.get('sanity'), 2)} of the artist's clean crops to the artist; control "
                f"{_number(second.get('control_artist_rate'), 2)}.</p>"
            )
        intervals = any(_interval(condition) for condition in report["conditions"])  # none before they were kept
        parts.append(
            "<table><thead><tr><th>mimic trained on</th><th>protection success rate"
            + (" (95% interval over the verdicts; two trainings of the mimic differ by more)" if intervals else "")
            + "</th><th>classifier's mean P(artist)</th>"
            + ("<th>second judge</th>" if second else "")
            + "<th>classifier's verdicts</th></tr></thead><tbody>"
        )
        for condition in report["conditions"]:
            opinion = condition.get("second_opinion") or {}
            parts.append(
                f"<tr><td>{html.escape(str(condition.get('condition')))}</td>"
                f"<td>{_number(condition.get('protection_success_rate'), 2)}{_interval(condition)}</td>"
                f"<td>{_number(condition.get('artist_probability'), 2)}</td>"
                + (f"<td>{_number(opinion.get('protection_success_rate'), 2)}</td>" if second else "")
                + f"<td>{html.escape(json.dumps(condition.get('predictions', {})))}</td></tr>"
            )
        parts.append("</tbody></table>")
        for condition in report["conditions"]:
            samples = _resolve(condition.get("samples_image"), path.parent)
            parts.append(
                f"<figure><figcaption>generated “in the artist's style” by the mimic trained on "
                f"{html.escape(str(condition.get('condition')))} art</figcaption>"
                f"{_img(_data_uri(samples, SAMPLES_LONG_SIDE), 'samples')}</figure>"
            )
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.row{display:flex;gap:1rem;flex-wrap:wrap;align-items:flex-start}
.row h4{margin:.2rem 0;font-size:.8rem;font-weight:normal;color:#555}
figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
img{max-width:100%}.plot{border:1px solid #ddd}.missing{color:#a00;font-size:.8rem}
"""


def build_report(folder: Path, title: str = "stylecloak report") -> tuple[str, ReportInputs]:
    """The HTML page for everything under ``folder``, and what it was made from."""
    inputs = collect(folder)
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Metrics as defined in stylecloak's docs/metrics.md. lpips: perceptual distance (0.05 is the "
        f"medium budget); target progress: 0 means the encoder sees no change, 1 that it sees the target style.</p>"
        f"<h2>Cloaks</h2>{_evaluation_section(inputs.evaluations)}"
        f"<h2>Mimicry</h2>{_mimicry_section(inputs.mimicry)}"
    )
    if inputs.skipped:
        body += "<h2>Skipped</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in inputs.skipped) + "</ul>"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )
    return page, inputs


def write_report(
    folder: Path, output: Path | None = None, title: str = "stylecloak report"
) -> tuple[Path, ReportInputs]:
    """Build the page for ``folder`` and write it to ``output`` (default: ``folder/report.html``), never
    half-written: the page goes to a ``.partial`` file that replaces the output when complete."""
    output = output or folder / "report.html"
    page, inputs = build_report(folder, title=title)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(output)
    return output, inputs
