"""Dataset card of a synthetic data set: ``README.md`` plus figures in ``card/``.

:func:`write_card` is called once sampling is done. It compares the class
statistics of the real scene(s) and of the synthetic samples
(:class:`~specdm.metrics.spectral.ClassSpectra`) and writes

- ``README.md``: a Hugging Face dataset-card YAML header (``license`` of the source
  data, ``task_categories``, ``annotations_creators``, ``source_datasets``,
  ``size_categories``, ``pretty_name``, ``tags``), then what the data set is, the exact command, the file layout, class
  proportions real vs synthetic, per-class spectral angle (SAD) between the real
  and synthetic class-mean spectra, figures, previews, licence and citation;
- ``card/class_distribution.png``: grouped bars of class proportions (as SpecDM's Fig. 2);
- ``card/mean_spectra.png``: per-class mean spectra +- 1 std, real vs synthetic
  (as SpecDM's Figs. 3-4);
- ``stac_item.json``: a STAC Item; with masks it carries the label extension (``label:classes``,
  ``label:type`` raster, ``label:tasks``, ``label:methods`` automated, ``label:overviews``
  with the synthetic class pixel counts).

A data set without masks (``metadata.json``: ``"masks": false``, e.g. controllable or RGB-conditioned
synthesis) gets the same card with every pixel in one pseudo-class, ``all pixels``: mean spectrum real vs
synthetic and their SAD, previews in false colour only, no class distribution, a STAC item without the
label extension. What differs by method and by what the samples were drawn for comes in as ``sections``
from the caller (:func:`specdm.recipes.sampling.finish_dataset`), which asks the method and the input kind.

Figures are drawn on matplotlib ``Figure`` objects rendered by Agg, without
pyplot, so the caller's backend is left alone.

:func:`save_preview` writes the side-by-side false-colour + class-map PNGs the
card links to.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.image import imsave

from specdm.data.plot import class_colors, false_colour
from specdm.errors import DataError, OutputError
from specdm.metrics.spectral import ClassSpectra, per_class_sad
from specdm.metrics.texture import texture_markdown

EXAMPLES_FILE = "real_examples.safetensors"  # a few real training windows kept in a model folder for the card
REAL_COLOR, SYNTH_COLOR = "#1f77b4", "#ff7f0e"
MIN_PREVIEW_HEIGHT = 256
STAC_FILE = "stac_item.json"
STAC_VERSION = "1.1.0"
LABEL_EXTENSION = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
HYPERSPECTRAL_MIN_BANDS = 20  # more bands than this: tagged hyperspectral, else multispectral
# Hugging Face licence identifiers (dataset-card ``license``) -> SPDX identifiers (STAC ``license``)
LICENSES = {
    "cc0-1.0": "CC0-1.0", "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0", "cc-by-nd-4.0": "CC-BY-ND-4.0", "cc-by-nc-nd-4.0": "CC-BY-NC-ND-4.0",
    "cc-by-3.0": "CC-BY-3.0", "cc-by-sa-3.0": "CC-BY-SA-3.0", "cc-by-nc-3.0": "CC-BY-NC-3.0",
    "cc-by-nc-sa-3.0": "CC-BY-NC-SA-3.0", "cc-by-2.0": "CC-BY-2.0", "odbl": "ODbL-1.0", "odc-by": "ODC-By-1.0",
    "pddl": "PDDL-1.0", "cdla-permissive-2.0": "CDLA-Permissive-2.0", "etalab-2.0": "etalab-2.0",
    "apache-2.0": "Apache-2.0", "mit": "MIT", "bsd-3-clause": "BSD-3-Clause", "unlicense": "Unlicense",
}
TASK_CATEGORIES = {"segmentation": ["image-segmentation"], "change": ["image-segmentation"]}  # else ["other"]
STAC_TASKS = {"segmentation": "segmentation", "change": "change_detection"}
ALL_PIXELS = "all pixels"  # the one pseudo-class of a data set without masks


def card_classes(meta: dict) -> list[str]:
    """The classes the card's statistics are kept for: the data set's, or ``[ALL_PIXELS]`` without masks."""
    return [ALL_PIXELS] if meta.get("masks") is False else list(meta["class_names"])


def save_preview(image, mask, rgb_bands, path, num_classes: int, stretch: tuple | None = None) -> Path:
    """Write a PNG: false-colour composite of ``image`` (H, W, C) in [0, 1] beside the colour-coded ``mask`` (H, W)
    (None: the composite alone).

    ``rgb_bands`` are the band indices shown as red, green, blue, stretched by
    ``stretch`` (low, high per channel; the real training split's, so that every
    preview shares it) or else each between its own 2nd and 98th percentile.
    Mask colours follow :func:`class_colors`.
    Small images are enlarged by pixel replication to at least 256 px high.
    """
    path = Path(path)
    image = np.asarray(image, dtype=np.float64)
    if mask is None:
        panel = false_colour(image, rgb_bands, stretch)
    else:
        mask = np.asarray(mask)
        if image.ndim != 3 or mask.shape != image.shape[:2]:
            raise DataError(f"preview needs image (H, W, C) and mask (H, W), got {image.shape} and {mask.shape}", path)
        if mask.size and (mask.min() < 0 or mask.max() >= num_classes):
            raise DataError(f"mask values {mask.min()}..{mask.max()} outside the classes 0..{num_classes - 1}", path)
        gap = np.ones((mask.shape[0], max(1, mask.shape[1] // 32), 3))
        panel = np.concatenate([false_colour(image, rgb_bands, stretch), gap,
                                class_colors(num_classes)[mask.astype(np.int64)]], axis=1)
    scale = max(1, math.ceil(MIN_PREVIEW_HEIGHT / panel.shape[0]))
    panel = panel.repeat(scale, axis=0).repeat(scale, axis=1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        imsave(path, (panel * 255).round().astype(np.uint8))
    except OSError as exc:
        raise OutputError(f"cannot write preview: {exc}", path) from exc
    return path


def plot_comparison(rows: dict[str, np.ndarray], rgb_bands, stretch, path, masks: np.ndarray | None = None,
                    num_classes: int | None = None) -> Path:
    """One figure, one row per entry of ``rows`` (name -> images (N, H, W, C) in normalized units), all drawn with
    the same colour ``stretch`` (low, high per RGB channel), plus a row of ``masks`` in class colours. This is
    how a reader sees at a glance whether reconstructions and samples are blurred, framed or too bright."""
    n = max(len(v) for v in rows.values())
    names = list(rows) + (["masks (synthetic)"] if masks is not None else [])
    fig = Figure(figsize=(1.3 * n + 1.6, 1.35 * len(names)))
    for r, name in enumerate(names):
        for c in range(n):
            ax = fig.add_subplot(len(names), n, r * n + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if name in rows and c < len(rows[name]):
                ax.imshow(false_colour(rows[name][c], rgb_bands, stretch), interpolation="nearest")
            elif name not in rows and c < len(masks):
                ax.imshow(class_colors(num_classes)[masks[c]], interpolation="nearest")
            else:
                ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def write_card(out_dir, real: ClassSpectra, synth: ClassSpectra, meta: dict, preview_paths, stac: bool = True,
               extra_figures: list | None = None, sections: list[str] | None = None,
               summary: str | None = None) -> Path:
    """Write ``README.md`` and ``card/*.png`` (and ``stac_item.json`` when ``stac``) into ``out_dir``;
    return the README's path.

    ``meta`` is the data set's metadata: ``task``, ``class_names``, ``band_names``,
    ``wavelengths`` (nm or None), ``num_samples``, ``command``, ``seed``, ``sampler``,
    ``model``, ``normalization``, ``image_format``, ``mask_format``, ``ignore_index``,
    ``source`` (``{"scenes": [names], ...}``); optional ``name``, ``licence`` (the source
    data's, free text starting with its SPDX identifier, e.g. ``"CC0-1.0 (...)"``),
    ``citation``, ``images`` (one folder per date). ``preview_paths`` are PNGs (see
    :func:`save_preview`) linked from the card. ``synth`` holds every date's pixels
    (T per mask pixel), as :func:`~specdm.recipes.sampling.finish_dataset` gathers them. Without masks
    (``meta["masks"]`` false) both hold one class, :data:`ALL_PIXELS`. ``sections``: markdown lines of the method
    and of what the samples were drawn for; ``summary``: what the method makes, one phrase.
    """
    out_dir = Path(out_dir)
    names = card_classes(meta)
    image_only = meta.get("masks") is False
    if not (len(names) == real.num_classes == synth.num_classes and real.num_bands == synth.num_bands):
        raise DataError(
            f"{len(names)} class names, real statistics {real.num_classes} classes x {real.num_bands} bands, "
            f"synthetic {synth.num_classes} x {synth.num_bands}",
            out_dir,
        )
    ignore = meta.get("ignore_index")
    card_dir = out_dir / "card"
    try:
        card_dir.mkdir(parents=True, exist_ok=True)
        figures = [Path(p) for p in extra_figures or []]
        if not image_only:
            figures.append(plot_class_distribution(real, synth, names, ignore, card_dir / "class_distribution.png"))
        figures.append(plot_mean_spectra(real, synth, names, meta.get("wavelengths"), ignore,
                                         card_dir / "mean_spectra.png"))
        if stac:
            write_stac_item(out_dir, synth, meta)
        readme = out_dir / "README.md"
        text = _readme(out_dir, real, synth, meta, figures, [Path(p) for p in preview_paths], sections or [], summary)
        readme.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the dataset card: {exc}", out_dir) from exc
    return readme


def plot_class_distribution(real: ClassSpectra, synth: ClassSpectra, class_names, ignore_index, path) -> Path:
    """Grouped bars: percentage of pixels per class, real vs synthetic (ignored class hatched)."""
    k = len(class_names)
    x = np.arange(k)
    fig = Figure(figsize=(max(6.0, 0.7 * k + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    for offset, stats, label, color in ((-0.2, real, "real", REAL_COLOR), (0.2, synth, "synthetic", SYNTH_COLOR)):
        bars = ax.bar(x + offset, 100 * stats.proportions(), width=0.4, label=label, color=color)
        if ignore_index is not None:
            bars[ignore_index].set_hatch("//")
    ax.set_xticks(x, [_label(n, c, ignore_index) for c, n in enumerate(class_names)], rotation=45, ha="right")
    ax.set_ylabel("pixels (%)")
    ax.set_title("Class distribution")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=100)
    return Path(path)


def plot_mean_spectra(real: ClassSpectra, synth: ClassSpectra, class_names, wavelengths, ignore_index, path) -> Path:
    """One subplot per class: real and synthetic mean spectrum, each with +- 1 std shading."""
    k = len(class_names)
    x = np.arange(1, real.num_bands + 1) if wavelengths is None else np.asarray(wavelengths, dtype=float)
    sads = per_class_sad(real, synth)
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.8 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    xlabel = "wavelength (nm)" if wavelengths is not None else "band"
    for c, ax in enumerate(axes.flat):
        if c >= k:
            ax.axis("off")
            continue
        for stats, label, color, style in ((real, "real", REAL_COLOR, "-"), (synth, "synthetic", SYNTH_COLOR, "--")):
            if stats.counts[c] == 0:
                continue
            mean, std = stats.means()[c], stats.std()[c]
            ax.plot(x, mean, style, color=color, label=label, lw=1.4, marker=".", ms=4)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        title = _label(class_names[c], c, ignore_index)
        if not math.isnan(sads[c]):
            title += f"\nSAD {math.degrees(sads[c]):.2f}\u00b0"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes.flat), key=lambda h: len(h[0]))
    if handles:
        fig.legend(handles, labels, loc="outside upper right", fontsize=8)
    fig.suptitle("Class-mean spectra (shading: \u00b11 std)")
    fig.savefig(path, dpi=100)
    return Path(path)


def _label(name: str, value: int, ignore_index) -> str:
    return f"{name} (ignored)" if value == ignore_index else name


def _fmt(value, digits: int = 6):
    """Floats rounded to ``digits`` significant digits, recursively, for compact JSON."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _fmt(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fmt(v, digits) for v in value]
    return value


def _bullets(d) -> list[str]:
    if not isinstance(d, dict) or not d:
        return [f"- `{json.dumps(_fmt(d))}`"]
    return [f"- **{k}**: `{json.dumps(_fmt(v))}`" for k, v in d.items()]


def _layout(out_dir: Path) -> list[str]:
    """One line per top-level entry of ``out_dir``: folders with their file count and an example."""
    lines = ["- `README.md`: this card", "- `card/`: figures of this card"]
    for entry in sorted(out_dir.iterdir()):
        if entry.name in ("README.md", "card"):
            continue
        if entry.is_dir():
            inside = sorted(p for p in entry.rglob("*") if p.is_file())
            example = f", e.g. `{inside[0].relative_to(out_dir).as_posix()}`" if inside else ""
            lines.append(f"- `{entry.name}/`: {len(inside)} files{example}")
        elif entry.name == STAC_FILE:
            lines.append(f"- `{entry.name}`: STAC Item describing the data set (with masks: the label extension)")
        else:
            lines.append(f"- `{entry.name}`")
    return lines


def _filter_section(meta: dict) -> list[str]:
    """Which pairs the label-fidelity filter dropped (when used)."""
    f = meta.get("filter")
    if not f:
        return []
    return ["## Filtering", "",
            f"Rule: {f.get('rule')}. Threshold: {f.get('threshold')}; at most {f.get('max_attempts')} tries per "
            f"sample. {f.get('scored_samples', '?')} samples scored, {f.get('failed_first_try', '?')} failed their "
            f"first try, {f.get('redrawn', '?')} redraws, {f.get('dropped', '?')} dropped.", "",
            "Dropped samples per class their layout held:", *_bullets(f.get("dropped_per_class") or {"none": 0}), ""]


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def _ratio_cell(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _decode_section(meta: dict) -> list[str]:
    d = meta.get("decode")
    if not d:
        return []
    refs = d.get("references") or {}

    def counts(v):
        return ", ".join(f"{k} {n}" for k, n in (v or {}).items())

    return ["## Class-aware decoding", "", f"Mode `{d.get('mode')}`: {d.get('rule')}.", "",
            f"References (real training data kept by stage 1): pixels per class: {counts(refs.get('pixels_per_class'))}; "
            f"residual patches of {refs.get('patch_size')} pixels per class: {counts(refs.get('patches_per_class'))}.",
            ""]


def _clean_section(meta: dict) -> list[str]:
    c = meta.get("clean")
    if not c:
        return []
    pair = c.get("pair_rule", "")
    lines = ["## Label cleaning", "", f"Rule: {c.get('rule')}. {pair[:1].upper() + pair[1:]}.", "",
             f"{c.get('relabelled_pixels', '?')} of {c.get('labelled_pixels', '?')} labelled pixels relabelled "
             f"({_pct(c.get('relabelled_share'))} %; at most {_pct(c.get('max_relabelled_share'))} % in one class); "
             f"{c.get('failed_first_try', '?')} pairs failed their first try, {c.get('dropped', '?')} dropped.", "",
             "Per class: the forest's agreement with the synthetic labels before and after cleaning, the loss "
             "threshold, and the recall of a forest on the real pixels the rule was calibrated on (their ceiling; "
             "`specdm evaluate` gives the one on the test part).", "",
             "| class | labelled pixels | relabelled (%) | agreement before | agreement after | threshold (loss) "
             "| real recall |", "|---|---:|---:|---:|---:|---:|---:|"]
    cal = c.get("calibration") or {}
    for name, row in (c.get("per_class") or {}).items():
        k = cal.get(name, {})
        thr = k.get("threshold")
        lines.append(f"| {name} | {row['labelled_pixels']} | {_pct(row['relabelled_share'])} | "
                     f"{_ratio_cell(row['agreement_before'])} | {_ratio_cell(row['agreement_after'])} | "
                     f"{'n/a' if thr is None else f'{thr:.3f}'} | {_ratio_cell(k.get('real_recall'))} |")
    if c.get("uncalibrated_classes"):
        lines.append(f"\nClasses without calibration pixels (every pixel relabelled): "
                     f"{', '.join(c['uncalibrated_classes'])}.")
    return lines + [""]


def _hard_section(meta: dict) -> list[str]:
    h = meta.get("hard_classes")
    if not h:
        return []
    lines = ["## Hard classes", "", f"Rule: {h.get('rule')} (strength {h.get('strength')}).", ""]
    if "redrawn_for_hard_classes" in h:
        lines += [f"{h['redrawn_for_hard_classes']} tries redrawn for it; mean acceptance probability "
                  f"{h.get('mean_acceptance_probability', 0):.2f}.", ""]
    lines += ["| class | real loss | real recall | real share (%) | target share (%) |",
              "|---|---:|---:|---:|---:|"]
    for name, row in (h.get("classes") or {}).items():
        if not row.get("steered"):
            continue
        loss = row.get("real_loss")
        lines.append(f"| {name} | {'n/a' if loss is None else f'{loss:.3f}'} | {_ratio_cell(row.get('real_recall'))} "
                     f"| {_pct(row['real_share'])} | {_pct(row['target_share'])} |")
    return lines + [""]


def _super_resolved_section(meta: dict) -> list[str]:
    """Which training windows of the generator were super-resolved, and by what (``source.super_resolved``)."""
    sr = (meta.get("source") or {}).get("super_resolved") if isinstance(meta.get("source"), dict) else None
    if not sr:
        return []
    lines = ["## Training data: real and super-resolved windows", "",
             f"The generator trained on {sr['real_windows']} real windows and {sr['windows']} windows of "
             "super-resolved copies of the real training part (derived data, HSIGene's augmentation; stride "
             f"{sr['stride']}):", ""]
    for f in sr["folders"]:
        model = (f.get("model") or {}).get("path", "?")
        scales = ", ".join(f"{k}: {v}" for k, v in (f.get("per_scale") or {}).items())
        lines.append(f"- `{f['path']}`: {f['windows']} windows ({scales}), {f.get('stages') or '?'}; "
                     f"super-resolver `{model}`")
    return lines + ["", "Detail finer than the real pixels in those windows was invented by the super-resolver.", ""]


def _readme(out_dir: Path, real, synth, meta: dict, figures: list[Path], previews: list[Path], sections: list[str],
            summary: str | None) -> str:
    names = card_classes(meta)
    image_only = meta.get("masks") is False
    ignore = meta.get("ignore_index")
    bands = meta.get("band_names") or [f"band_{i + 1}" for i in range(real.num_bands)]
    wl = meta.get("wavelengths")
    band_text = ", ".join(bands) if wl is None else ", ".join(f"{b} ({w:g} nm)" for b, w in zip(bands, wl))
    name = meta.get("name") or out_dir.name
    colors = class_colors(len(names))

    def rel(p: Path) -> str:
        return Path(os.path.relpath(p, out_dir)).as_posix()

    header = yaml.safe_dump(card_header(meta, len(bands), out_dir), sort_keys=False, allow_unicode=True)
    lines = [
        "---",
        header.rstrip("\n"),
        "---",
        "",
        f"# {name}: synthetic {meta.get('task', 'segmentation')} data set",
        "",
        (f"{meta.get('num_samples', '?')} synthetic {'images (no masks)' if image_only else 'image/mask samples'} "
         f"generated by specdm (latent diffusion, method {meta.get('method')}: {summary or 'synthetic samples'}) from "
         f"the real data {', '.join(source_scenes(meta.get('source'))) or '?'} (their settings: `metadata.json`, "
         "`source`)."),
        "",
        f"- task: {meta.get('task')}",
        f"- bands ({len(bands)}): {band_text}",
        *([] if image_only else [
            f"- classes ({len(names)}): " + ", ".join(f"{c} = {_label(n, c, ignore)}" for c, n in enumerate(names)),
            f"- ignore index: {ignore}"]),
        f"- image format: {meta.get('image_format')}",
        *([] if image_only else [f"- mask format: {meta.get('mask_format')}"]),
        "",
        "## How it was made",
        "",
        "```",
        str(meta.get("command", "")),
        "```",
        "",
        f"Seed: {meta.get('seed')}",
        "",
        "Sampler:",
        *_bullets(meta.get("sampler")),
        "",
        "Model:",
        *_bullets(meta.get("model")),
        "",
        "Normalization (synthetic values are mapped back through it):",
        *_bullets(meta.get("normalization")),
        "",
        *sections,
        *_filter_section(meta),
        *_decode_section(meta),
        *_clean_section(meta),
        *_hard_section(meta),
        *([*texture_markdown(meta["texture"]), ""] if meta.get("texture") else []),
        *_super_resolved_section(meta),
        "## Files",
        "",
        *_layout(out_dir),
        "",
    ]
    if not image_only:
        lines += ["## Class distribution", "",
                  "Share of pixels per class in the real data and in the synthetic samples.", "",
                  "| value | class | preview colour | real (%) | synthetic (%) |",
                  "|---:|---|---|---:|---:|"]
        for c, n in enumerate(names):
            hexcol = "#{:02x}{:02x}{:02x}".format(*(int(round(255 * v)) for v in colors[c]))
            lines.append(
                f"| {c} | {_label(n, c, ignore)} | `{hexcol}` | "
                f"{100 * real.proportions()[c]:.2f} | {100 * synth.proportions()[c]:.2f} |"
            )
        lines.append("")
    lines += [
        f"Pixels: {int(real.counts.sum())} real, {int(synth.counts.sum())} synthetic.",
        "",
        "## Spectral fidelity",
        "",
        ("Spectral angle (SAD) between the real and the synthetic mean spectrum over all pixels (n/a: no real "
         "statistics in the model folder)." if image_only else
         "Spectral angle (SAD) between the real and the synthetic class-mean spectrum of each class "
         "(n/a: the class has no pixels in one of the two sets)."),
        "",
        "| value | class | SAD (rad) | SAD (deg) |",
        "|---:|---|---:|---:|",
    ]
    sads = per_class_sad(real, synth)
    for c, n in enumerate(names):
        s = sads[c]
        cells = "n/a | n/a" if math.isnan(s) else f"{s:.4f} | {math.degrees(s):.2f}"
        lines.append(f"| {c} | {_label(n, c, ignore)} | {cells} |")
    valid = [s for c, s in sads.items() if c != ignore and not math.isnan(s)]
    if valid and not image_only:
        m = float(np.mean(valid))
        note = "" if ignore is None else " (ignored class excluded)"
        lines.append(f"| | **mean over {len(valid)} classes**{note} | {m:.4f} | {math.degrees(m):.2f} |")
    lines += ["", "## Figures", ""]
    for p in figures:
        lines += [f"![{p.stem.replace('_', ' ')}]({rel(p)})", ""]
    if previews:
        stretch = meta.get("preview_stretch")
        how = ("one stretch for every preview and figure: the 2nd-98th percentiles of the real training windows' "
               "RGB bands" if stretch else "2-98 % stretch per band of each preview")
        lines += ["## Previews", "", f"False colour ({how}){'' if image_only else ' beside the class map'}.", ""]
        for i, p in enumerate(previews):
            lines += [f"![preview {i + 1}]({rel(p)})", ""]
    licence = meta.get("licence")
    hf = hf_license(licence)
    if licence:
        stated = f"Licence: {licence} (the licence of the source data, which the samples derive from"
        stated += f"; `license: {hf}` in the header)." if hf != "other" else \
            "; `license: other` in the header: this text is not a licence identifier it knows)."
    else:
        stated = ("Licence: not stated. The licence of the source data was not recorded, so the header says "
                  "`license: other`; the samples derive from the real data above: follow that data's licence and "
                  "attribution terms.")
    lines += [
        "## Licence and citation",
        "",
        stated,
        "",
        f"Cite: {meta.get('citation') or 'the source data set above and the SpecDM method'}.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Publishing conventions: the Hugging Face card header, the STAC label item, the source's licence


def hf_license(licence: str | None) -> str:
    """The Hugging Face ``license`` identifier of a free-text licence (``"CC0-1.0 (...); ..."`` -> ``"cc0-1.0"``),
    ``"other"`` when it is missing or does not start with a known identifier."""
    if not licence:
        return "other"
    head = re.split(r"[;(,]", str(licence), maxsplit=1)[0].strip().lower()
    spdx = {v.lower(): k for k, v in LICENSES.items()}
    for candidate in (head.split(" ")[0] if head else "", re.sub(r"\s+", "-", head)):
        if candidate in LICENSES:
            return candidate
        if candidate in spdx:
            return spdx[candidate]
    return "other"


def source_scenes(source) -> list[str]:
    """The scene names of a metadata ``source`` (``{"scenes": [...]}``, a list of names, or one name)."""
    if isinstance(source, dict):
        source = source.get("scenes", [])
    if isinstance(source, str):
        return [source]
    return [str(s) for s in source or []]


def source_licence(source) -> str | None:
    """The licence text of the source data: ``source["licence"]`` when recorded, else the ``LICENCE``
    constant of the named data set each scene came from (a scene ``<name>`` or ``<name>_<part>`` of
    :data:`specdm.datasets.DATASETS`); None unless every scene's licence is known."""
    if isinstance(source, dict) and isinstance(source.get("licence"), str):
        return source["licence"]
    import importlib

    from specdm.datasets import DATASETS

    found = []
    for scene in source_scenes(source):
        key = next((k for k in sorted(DATASETS, key=len, reverse=True) if scene == k or scene.startswith(k + "_")), None)
        text = key and getattr(importlib.import_module(DATASETS[key].__module__), "LICENCE", None)
        if not text:
            return None
        if text not in found:
            found.append(text)
    return "; ".join(found) or None


def size_category(n: int) -> str:
    """The Hugging Face ``size_categories`` bin of ``n`` samples: ``n<1K``, ``1K<n<10K``, ... ``n>1T``."""
    bins = ["1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"]
    if n < 1000:
        return "n<1K"
    for k, (lo, hi) in enumerate(zip(bins, bins[1:])):
        if n < 10 ** (k + 4):
            return f"{lo}<n<{hi}"
    return "n>1T"


def card_header(meta: dict, num_bands: int, out_dir: Path | None = None) -> dict:
    """The dataset card's YAML header (Hugging Face conventions)."""
    task = meta.get("task", "segmentation")
    name = meta.get("name") or (Path(out_dir).name if out_dir is not None else "specdm")
    header = {"license": hf_license(meta.get("licence"))}
    if header["license"] == "other" and meta.get("licence"):
        header["license_name"] = re.sub(r"[^a-z0-9.]+", "-", str(meta["licence"]).lower()).strip("-")[:64]
    header["pretty_name"] = f"{name}: synthetic {task} data set"
    header["task_categories"] = TASK_CATEGORIES.get(task, ["other"])
    if task in TASK_CATEGORIES:
        header["task_ids"] = ["semantic-segmentation"]
    header["annotations_creators"] = ["machine-generated"]
    scenes = source_scenes(meta.get("source"))
    if scenes:
        header["source_datasets"] = scenes
    if isinstance(meta.get("num_samples"), int):
        header["size_categories"] = [size_category(meta["num_samples"])]
    header["tags"] = ["hyperspectral" if num_bands > HYPERSPECTRAL_MIN_BANDS else "multispectral", "synthetic",
                      "remote-sensing"] + (["change-detection"] if task == "change" else [])
    return header


def label_counts(synth: ClassSpectra, meta: dict) -> list[int]:
    """Pixels per class over the synthetic masks (``synth`` counts each mask pixel once per date)."""
    dates = max(len(meta.get("images") or ["images"]), 1)
    return [int(c) // dates for c in synth.counts]


def stac_item(synth: ClassSpectra, meta: dict, name: str) -> dict:
    """A STAC Item describing the data set; with masks it carries the label extension (the class maps)."""
    if meta.get("masks") is False:
        return _image_item(meta, name)
    names = [str(n) for n in meta["class_names"]]
    task = meta.get("task", "segmentation")
    licence = meta.get("licence")
    hf = hf_license(licence)
    ignore = meta.get("ignore_index")
    how = (f"Class maps generated together with the images by a latent diffusion model (specdm) trained on "
           f"{', '.join(source_scenes(meta.get('source'))) or 'real labelled data'}; not drawn or checked by people.")
    if ignore is not None:
        how += f" Value {ignore} ('{names[ignore]}') marks pixels to ignore."
    mask_format = meta.get("mask_format") or meta.get("format", {}).get("mask")
    image_format = meta.get("image_format") or meta.get("format", {}).get("image")
    media = {"png": "image/png", "tif": "image/tiff", "npy": "application/octet-stream", "zarr": "application/vnd+zarr"}
    assets = {}
    if image_format == "zarr":
        assets["labels"] = {"href": "samples.zarr", "type": media["zarr"], "roles": ["labels", "labels-raster"],
                            "title": "masks (N, H, W) in the zarr store"}
        assets["data"] = {"href": "samples.zarr", "type": media["zarr"], "roles": ["data"],
                          "title": "images (N, T, C, H, W) in the zarr store"}
    else:
        assets["labels"] = {"href": "masks/", "type": media.get(mask_format, "application/octet-stream"),
                            "roles": ["labels", "labels-raster"], "title": "class maps, one file per sample"}
        for folder in meta.get("images") or ["images"]:
            assets[folder] = {"href": f"{folder}/", "type": media.get(image_format, "application/octet-stream"),
                              "roles": ["data"], "title": "images (bands, rows, cols), one file per sample"}
    assets["metadata"] = {"href": "metadata.json", "type": "application/json", "roles": ["metadata"]}
    counts = label_counts(synth, meta)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [LABEL_EXTENSION],
        "id": name,
        "geometry": None,  # synthetic samples lie nowhere on Earth
        "properties": {
            "datetime": now,
            "created": now,
            "title": f"{name}: synthetic {task} data set",
            "description": f"{meta.get('num_samples')} synthetic samples generated by specdm",
            "license": LICENSES.get(hf, "other"),
            "label:description": how,
            "label:type": "raster",
            "label:properties": None,
            "label:classes": [{"name": "class", "classes": names}],
            "label:tasks": [STAC_TASKS.get(task, task)],
            "label:methods": ["automated"],
            "label:overviews": [{"property_key": "class",
                                 "counts": [{"name": n, "count": c} for n, c in zip(names, counts)]}],
        },
        "links": [{"rel": "describedby", "href": "README.md", "type": "text/markdown", "title": "dataset card"}],
        "assets": assets,
    }


def _image_item(meta: dict, name: str) -> dict:
    """The STAC Item of a set without masks: its images and metadata, no label extension."""
    image_format = meta.get("image_format") or meta.get("format", {}).get("image")
    media = {"tif": "image/tiff", "npy": "application/octet-stream", "zarr": "application/vnd+zarr"}
    if image_format == "zarr":
        assets = {"data": {"href": "samples.zarr", "type": media["zarr"], "roles": ["data"],
                           "title": "images (N, T, C, H, W) in the zarr store"}}
    else:
        assets = {folder: {"href": f"{folder}/", "type": media.get(image_format, "application/octet-stream"),
                           "roles": ["data"], "title": "images (bands, rows, cols), one file per sample"}
                  for folder in meta.get("images") or ["images"]}
    assets["metadata"] = {"href": "metadata.json", "type": "application/json", "roles": ["metadata"]}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": name,
        "geometry": None,  # synthetic samples lie nowhere on Earth
        "properties": {
            "datetime": now,
            "created": now,
            "title": f"{name}: synthetic {meta.get('task', 'image')} data set",
            "description": f"{meta.get('num_samples')} synthetic images (no masks) generated by specdm from "
                           f"{', '.join(source_scenes(meta.get('source'))) or 'real data'}",
            "license": LICENSES.get(hf_license(meta.get("licence")), "other"),
        },
        "links": [{"rel": "describedby", "href": "README.md", "type": "text/markdown", "title": "dataset card"}],
        "assets": assets,
    }


def write_stac_item(out_dir, synth: ClassSpectra, meta: dict) -> Path:
    """Write ``stac_item.json`` (see :func:`stac_item`) into ``out_dir``."""
    out_dir = Path(out_dir)
    path = out_dir / STAC_FILE
    path.write_text(json.dumps(stac_item(synth, meta, meta.get("name") or out_dir.name), indent=1))
    return path
