"""Dataset card of a synthetic data set: ``README.md`` plus figures in ``card/``.

:func:`write_card` is called once sampling is done. It compares the class
statistics of the real scene(s) and of the synthetic samples
(:class:`~specdm.metrics.spectral.ClassSpectra`) and writes

- ``README.md``: what the data set is, the exact command, the file layout, class
  proportions real vs synthetic, per-class spectral angle (SAD) between the real
  and synthetic class-mean spectra, figures, previews, licence and citation;
- ``card/class_distribution.png``: grouped bars of class proportions (as SpecDM's Fig. 2);
- ``card/mean_spectra.png``: per-class mean spectra +- 1 std, real vs synthetic
  (as SpecDM's Figs. 3-4).

Figures are drawn on matplotlib ``Figure`` objects rendered by Agg, without
pyplot, so the caller's backend is left alone.

:func:`save_preview` writes the side-by-side false-colour + class-map PNGs the
card links to.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import imsave

from specdm.data.plot import class_colors, false_colour
from specdm.errors import DataError, OutputError
from specdm.metrics.spectral import ClassSpectra, per_class_sad

REAL_COLOR, SYNTH_COLOR = "#1f77b4", "#ff7f0e"
MIN_PREVIEW_HEIGHT = 256


def save_preview(image, mask, rgb_bands, path, num_classes: int, stretch: tuple | None = None) -> Path:
    """Write a PNG: false-colour composite of ``image`` (H, W, C) in [0, 1] beside the colour-coded ``mask`` (H, W).

    ``rgb_bands`` are the band indices shown as red, green, blue, stretched by
    ``stretch`` (low, high per channel; the real training split's, so that every
    preview shares it) or else each between its own 2nd and 98th percentile.
    Mask colours follow :func:`class_colors`.
    Small images are enlarged by pixel replication to at least 256 px high.
    """
    path = Path(path)
    image, mask = np.asarray(image, dtype=np.float64), np.asarray(mask)
    if image.ndim != 3 or mask.shape != image.shape[:2]:
        raise DataError(f"preview needs image (H, W, C) and mask (H, W), got {image.shape} and {mask.shape}", path)
    if mask.size and (mask.min() < 0 or mask.max() >= num_classes):
        raise DataError(f"mask values {mask.min()}..{mask.max()} outside the classes 0..{num_classes - 1}", path)
    rgb = false_colour(image, rgb_bands, stretch)
    labels = class_colors(num_classes)[mask.astype(np.int64)]
    gap = np.ones((mask.shape[0], max(1, mask.shape[1] // 32), 3))
    panel = np.concatenate([rgb, gap, labels], axis=1)
    scale = max(1, math.ceil(MIN_PREVIEW_HEIGHT / panel.shape[0]))
    panel = panel.repeat(scale, axis=0).repeat(scale, axis=1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        imsave(path, (panel * 255).round().astype(np.uint8))
    except OSError as exc:
        raise OutputError(f"cannot write preview: {exc}", path) from exc
    return path


def write_card(out_dir, real: ClassSpectra, synth: ClassSpectra, meta: dict, preview_paths) -> Path:
    """Write ``README.md`` and ``card/*.png`` into ``out_dir``; return the README's path.

    ``meta`` is the data set's metadata: ``task``, ``class_names``, ``band_names``,
    ``wavelengths`` (nm or None), ``num_samples``, ``command``, ``seed``, ``sampler``,
    ``model``, ``normalization``, ``image_format``, ``mask_format``, ``ignore_index``,
    ``source``; optional ``name``, ``licence``, ``citation``. ``preview_paths`` are
    PNGs (see :func:`save_preview`) linked from the card.
    """
    out_dir = Path(out_dir)
    names = list(meta["class_names"])
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
        dist_png = plot_class_distribution(real, synth, names, ignore, card_dir / "class_distribution.png")
        spectra_png = plot_mean_spectra(real, synth, names, meta.get("wavelengths"), ignore, card_dir / "mean_spectra.png")
        readme = out_dir / "README.md"
        text = _readme(out_dir, real, synth, meta, [dist_png, spectra_png], [Path(p) for p in preview_paths])
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
        else:
            lines.append(f"- `{entry.name}`")
    return lines


def _readme(out_dir: Path, real, synth, meta: dict, figures: list[Path], previews: list[Path]) -> str:
    names = list(meta["class_names"])
    ignore = meta.get("ignore_index")
    bands = meta.get("band_names") or [f"band_{i + 1}" for i in range(real.num_bands)]
    wl = meta.get("wavelengths")
    band_text = ", ".join(bands) if wl is None else ", ".join(f"{b} ({w:g} nm)" for b, w in zip(bands, wl))
    name = meta.get("name") or out_dir.name
    colors = class_colors(len(names))

    def rel(p: Path) -> str:
        return Path(os.path.relpath(p, out_dir)).as_posix()

    lines = [
        f"# {name}: synthetic {meta.get('task', 'segmentation')} data set",
        "",
        f"{meta.get('num_samples', '?')} synthetic image/mask samples generated by specdm (latent diffusion, "
        f"SpecDM-style) from the real labelled data `{json.dumps(_fmt(meta.get('source')))}`.",
        "",
        f"- task: {meta.get('task')}",
        f"- bands ({len(bands)}): {band_text}",
        f"- classes ({len(names)}): "
        + ", ".join(f"{c} = {_label(n, c, ignore)}" for c, n in enumerate(names)),
        f"- ignore index: {ignore}",
        f"- image format: {meta.get('image_format')}",
        f"- mask format: {meta.get('mask_format')}",
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
        "## Files",
        "",
        *_layout(out_dir),
        "",
        "## Class distribution",
        "",
        "Share of pixels per class in the real data and in the synthetic samples.",
        "",
        "| value | class | preview colour | real (%) | synthetic (%) |",
        "|---:|---|---|---:|---:|",
    ]
    for c, n in enumerate(names):
        hexcol = "#{:02x}{:02x}{:02x}".format(*(int(round(255 * v)) for v in colors[c]))
        lines.append(
            f"| {c} | {_label(n, c, ignore)} | `{hexcol}` | "
            f"{100 * real.proportions()[c]:.2f} | {100 * synth.proportions()[c]:.2f} |"
        )
    lines += [
        "",
        f"Pixels: {int(real.counts.sum())} real, {int(synth.counts.sum())} synthetic.",
        "",
        "## Spectral fidelity",
        "",
        "Spectral angle (SAD) between the real and the synthetic class-mean spectrum of each class "
        "(n/a: the class has no pixels in one of the two sets).",
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
    if valid:
        m = float(np.mean(valid))
        note = "" if ignore is None else " (ignored class excluded)"
        lines.append(f"| | **mean over {len(valid)} classes**{note} | {m:.4f} | {math.degrees(m):.2f} |")
    lines += ["", "## Figures", ""]
    for p in figures:
        lines += [f"![{p.stem.replace('_', ' ')}]({rel(p)})", ""]
    if previews:
        lines += ["## Previews", "", "False colour (2-98 % stretch per band) beside the class map.", ""]
        for i, p in enumerate(previews):
            lines += [f"![preview {i + 1}]({rel(p)})", ""]
    licence = meta.get("licence")
    lines += [
        "## Licence and citation",
        "",
        f"Licence: {licence}" if licence else "Licence: not stated. The samples derive from the real data above; "
        "follow that data's licence and attribution terms.",
        "",
        f"Cite: {meta.get('citation') or 'the source data set above and the SpecDM method'}.",
        "",
    ]
    return "\n".join(lines)
