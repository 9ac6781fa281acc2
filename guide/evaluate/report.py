"""``report.html``: one self-contained page about one erasure (images inlined as base64 PNG).

It shows, top to bottom: what was erased and how; warnings that change how to read the numbers
(random networks, few FID samples, faces the detector missed); the four numbers beside the
published values and the difference (:mod:`guide.evaluate.reference`; "n/a" where none is
published for this method and scenario) and how many renders had no detected face; the before/after
multi-view grid, the target and the loss curves; ID per view; and every setting used.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

import guide
from guide.evaluate.erase_output import EraseOutput
from guide.evaluate.reference import comparison, method_of, scenario_of

REPORT = "report.html"
PAPER_NUM_SAMPLES = 5000

# key, label, what "better" means, format
ROWS = (
    ("ID", "ID (erased identity)", "lower", "{:.4f}"),
    ("ID_others", "ID<sub>others</sub> (other identities)", "higher", "{:.4f}"),
    ("FID_pre", "FID<sub>pre</sub> (vs. pretrained samples)", "lower", "{:.4g}"),
    ("delta_FID_real", "&Delta;FID<sub>real</sub> (vs. real faces)", "lower (near 0)", "{:+.4g}"),
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.35em .7em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left} .ours{font-weight:bold;background:#eef6ff}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.6em 1em;margin:1em 0}
.muted{color:#777;font-size:.9em} img{max-width:100%;image-rendering:auto;border:1px solid #ddd}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top} figcaption{font-size:.9em;color:#555}
"""


def png_data_uri(image: Any) -> str:
    """``data:image/png;base64,...`` of a PIL image, a uint8 HWC array or a PNG file path."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as img:
            image = img.convert("RGB").copy()
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return pattern.format(value)


def _multiview_strip(paths: Sequence[Path], height: int = 128) -> Optional[np.ndarray]:
    if not paths:
        return None
    tiles = []
    for path in paths:
        with Image.open(path) as img:
            tiles.append(np.asarray(img.convert("RGB").resize((height, height), Image.BILINEAR)))
    return np.concatenate(tiles, axis=1)


def _grid_image(run: EraseOutput) -> Optional[Any]:
    """grid.png, or a before/after grid composed from the renders."""
    grid = run.optional_file("grid.png")
    if grid is not None:
        return grid
    rows = [r for r in (_multiview_strip(run.before_paths), _multiview_strip(run.after_paths)) if r is not None]
    if len(rows) == 2 and rows[0].shape == rows[1].shape:
        return np.concatenate(rows, axis=0)
    return rows[0] if rows else None


def warnings_for(metrics: Mapping[str, Any]) -> List[str]:
    """Plain-text cautions that change how the numbers read."""
    out = []
    evaluation = metrics.get("evaluation")
    evaluation = evaluation if isinstance(evaluation, Mapping) else {}  # batches record a line of text there
    if evaluation.get("random_networks"):
        out.append("Evaluated with RANDOM-weight identity and Inception networks (test/demo mode): "
                   "the numbers carry no meaning.")
    identity = metrics.get("identity") or {}
    if identity.get("images_without_detected_face"):
        out.append(f"{identity['images_without_detected_face']} render(s) had no face the detector could find; "
                   f"policy '{identity.get('no_face_policy')}' was applied (see the identity module docs).")
    fid = metrics.get("fid") or {}
    n = fid.get("num_samples")
    if n is not None and n < PAPER_NUM_SAMPLES:
        out.append(f"FID from {n} samples per generator (the paper uses {PAPER_NUM_SAMPLES}); FID is biased "
                   "upwards for small N and not comparable with the paper's values.")
    for key in ("ID", "ID_others", "FID_pre", "delta_FID_real"):
        if metrics.get(key) is None:
            why = metrics.get(f"{key}_note")
            out.append(f"{key} was not computed" + (f": {why}" if why else "."))
    return out


def _metrics_table(metrics: Mapping[str, Any], method: Optional[str], scenario: Optional[str]) -> str:
    published = comparison(metrics, method, scenario)
    label = f"published ({html.escape(str(method))}, {html.escape(str(scenario or 'scenario unknown'))})"
    rows = []
    for key, name, better, pattern in ROWS:
        theirs, diff = published["values"][key], published["difference"][key]
        diff_pattern = pattern if pattern.startswith("{:+") else pattern.replace("{:", "{:+")
        rows.append(f"<tr><td class=l>{name}</td><td class=ours data-metric='{key}'>"
                    f"{_fmt(metrics.get(key), pattern)}</td><td class=l>{better}</td>"
                    f"<td data-published='{key}'>{_fmt(theirs, pattern)}</td><td>{_fmt(diff, diff_pattern)}</td></tr>")
    source = (f"Published values: {html.escape(published['source'])} (see <code>guide/evaluate/reference.py</code>)."
              if published["source"] else
              "No published values for this method and scenario (n/a); see <code>guide/evaluate/reference.py</code>.")
    missed = (metrics.get("identity") or {}).get("images_without_detected_face")
    faces = "" if missed is None else (
        f"<p>Renders without a detected face: <b data-metric='images_without_detected_face'>{int(missed)}</b> "
        f"(policy '{html.escape(str((metrics.get('identity') or {}).get('no_face_policy')))}').</p>")
    return (f"<table><tr><th class=l>metric</th><th>this erasure</th><th class=l>better</th><th>{label}</th>"
            f"<th>difference</th></tr>" + "".join(rows) + f"</table><p class=muted>{source}</p>{faces}")


def _per_view_table(metrics: Mapping[str, Any]) -> str:
    views = (metrics.get("identity") or {}).get("ID_per_view") or []
    if not views:
        return ""
    head = "".join(f"<th>{i}</th>" for i in range(len(views)))
    cells = "".join(f"<td>{_fmt(v, '{:.3f}')}</td>" for v in views)
    return (f"<h2>ID per view</h2><table><tr><th class=l>view</th>{head}</tr>"
            f"<tr><td class=l>before vs after</td>{cells}</tr></table>")


def figure(image: Any, caption: str) -> str:
    """An inline ``<figure>`` of an image (see :func:`png_data_uri`), or a note that it is missing."""
    if image is None:
        return f"<figure><figcaption>{html.escape(caption)}: not available</figcaption></figure>"
    return f"<figure><img src='{png_data_uri(image)}' alt='{html.escape(caption)}'><figcaption>" \
           f"{html.escape(caption)}</figcaption></figure>"


def _pre(value: Any) -> str:
    return "<pre>" + html.escape(json.dumps(value, indent=2, default=str, sort_keys=True)) + "</pre>"


def _summary(run: EraseOutput) -> str:
    config = run.config
    identity = config.get("identity") or {}
    method = (config.get("erase") or {}).get("method") or config.get("method") or "?"
    who = f"{identity.get('kind', '?')} {identity.get('value', '')}".strip() if identity else "?"
    items = [("identity", who), ("method", method),
             ("source generator", config.get("source_generator", "?")),
             ("folder", str(run.root))]
    return "<table>" + "".join(f"<tr><th class=l>{html.escape(k)}</th><td class=l>{html.escape(str(v))}</td></tr>"
                               for k, v in items) + "</table>"


# Sections other packages add to the page, as "module:function"; each function takes the EraseOutput
# and returns HTML ("" when it has nothing to show). Imported when a report is rendered.
SECTION_HOOKS = ("guide.audit.report:audit_section",)


def _hooked_sections(run: EraseOutput) -> str:
    import importlib

    parts = []
    for hook in SECTION_HOOKS:
        module, _, function = hook.partition(":")
        parts.append(getattr(importlib.import_module(module), function)(run))
    return "".join(parts)


def render_report(run: EraseOutput, metrics: Mapping[str, Any]) -> str:
    """The report page as an HTML string."""
    scenario, method = scenario_of(run.config), method_of(run.config)
    warnings = "".join(f"<div class=warn>{html.escape(w)}</div>" for w in warnings_for(metrics))
    figures = (figure(_grid_image(run), "grid.png: before, after (and target) from every evaluation yaw, "
                                                "row by row (labelled where the grid has labels)")
               + figure(run.target_path, "target (what the erased identity should turn into)")
               + figure(run.optional_file("losses.png"), "loss curves"))
    evaluation = {k: metrics.get(k) for k in ("identity", "fid", "evaluation") if metrics.get(k) is not None}
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>GUIDE erasure report: {html.escape(run.root.name)}</title><style>{CSS}</style></head><body>"
        f"<h1>Identity erasure report</h1><p class=muted>{html.escape(run.root.name)} &middot; guide "
        f"{html.escape(guide.__version__)} &middot; {stamp}</p>"
        f"{_summary(run)}{warnings}"
        "<h2>The four numbers</h2>"
        "<p>ID: how much the erased person's renders still look like them (CurricularFace similarity of "
        "before/after renders from the same view). ID<sub>others</sub>: the same for other people, who should "
        "stay. FID<sub>pre</sub>: distance between the pretrained and the unlearned generator's samples. "
        "&Delta;FID<sub>real</sub>: how much farther from real faces the unlearned generator got.</p>"
        f"{_metrics_table(metrics, method, scenario)}"
        f"<h2>Renders</h2>{figures}{_per_view_table(metrics)}{_hooked_sections(run)}"
        f"<h2>Evaluation settings</h2>{_pre(evaluation)}"
        f"<h2>Erasure settings (config.json)</h2>{_pre(run.config)}"
        "</body></html>\n"
    )


def write_report(run: EraseOutput, metrics: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``report.html`` into the erase folder (atomically); ``metrics`` defaults to metrics.json."""
    from guide.io.atomic import write_text_atomic

    metrics = run.read_metrics() if metrics is None else metrics
    path = run.root / REPORT
    write_text_atomic(path, render_report(run, metrics))
    return path


__all__ = ["REPORT", "SECTION_HOOKS", "figure", "png_data_uri", "render_report", "warnings_for", "write_report"]
