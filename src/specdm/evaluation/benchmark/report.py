"""The readable side of ``specdm benchmark``: ``report.md``, a self-contained ``report.html`` and plots.

Everything is computed from ``benchmark.json`` alone, so ``specdm benchmark
--report-only OUT`` rebuilds the same report (of either experiment: synthetic data sets, or
``--rgb-model``, whose report has tables and no plots). Tables follow the SpecDM paper's
layout: one row per arm (real, classical augmentation, + synthetic xN, synthetic
only), columns = the scores (mean +- std over seeds) and their per-seed
difference to real-only (mean +- std [95 % CI]), and the verdict.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from specdm.errors import OutputError
from specdm.metrics.confusion import per_class_iou

METRIC_LABELS = {"miou": "mIoU", "f1": "F1", "oa": "OA", "aa": "AA", "kappa": "kappa",
                 "f1_change": "F1 (change)", "iou_change": "IoU (change)"}  # fmt: skip
SETTING_TITLES = {"full": "full real training set", "limited": "limited real data"}


def rewrite_report(out_dir) -> dict:
    """Rebuild the report of ``<out_dir>/benchmark.json``; returns the paths written."""
    path = Path(out_dir) / "benchmark.json"
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise OutputError("not found: nothing to report", path) from None
    except (OSError, ValueError) as e:
        raise OutputError(f"cannot be read ({e})", path) from None
    return write_report(result, out_dir)


def write_report(result: dict, out_dir) -> dict:
    """Write ``plots/*.png``, ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    blocks = _content(result)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if any(kind == "img" for kind, *_ in blocks):
            (out_dir / "plots").mkdir(exist_ok=True)
        plots = []
        for kind, *args in blocks:
            if kind == "img":
                _plot(result, *args[2:], out_dir / args[0])
                plots.append(str(out_dir / args[0]))
        (out_dir / "report.md").write_text(_markdown(blocks))
        (out_dir / "report.html").write_text(_html(blocks, out_dir))
    except OSError as e:
        raise OutputError(f"cannot write the report ({e.strerror or e})", out_dir) from None
    return {"json": str(out_dir / "benchmark.json"), "markdown": str(out_dir / "report.md"),
            "html": str(out_dir / "report.html"), "plots": plots}  # fmt: skip


def format_markdown(result: dict) -> str:
    """The markdown report of a benchmark result (as written to report.md)."""
    return _markdown(_content(result))


def _content(result: dict) -> list[tuple]:
    """The blocks of either benchmark: synthetic data sets (``_blocks``) or ``--rgb-model`` (``_rgb_blocks``)."""
    return _rgb_blocks(result) if result.get("experiment") == "rgb" else _blocks(result)


# --------------------------------------------------------------------------- content


def _num(v, spec=".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _label(arm: dict) -> str:
    if arm["kind"] == "real":
        return "real only"
    if arm["kind"] == "classical":
        return "real + classical aug."
    if arm["kind"] == "self_training":
        return "real + self-training (pseudo labels) + classical aug."
    if arm["kind"] == "synthetic":
        return f"real + {arm['synthetic']} x{arm['amount']:g}"
    if arm["kind"] == "stacked":
        return f"real + classical aug. + {arm['synthetic']} x{arm['amount']:g}"
    if arm["kind"] == "pretrain":
        return f"{arm['synthetic']} x{arm['amount']:g} pretraining, then real + classical aug."
    return f"{arm['synthetic']} only (x{arm['amount']:g} pool)"


def _models(result: dict) -> list[str]:
    return list(dict.fromkeys([*result["settings"]["models"], *(r["model"] for r in result["runs"])]))


def _arms(result: dict, model: str, setting: str) -> list[dict]:
    """Arms of ``setting`` with a summary for ``model``, in plan order."""
    have = result["summary"].get(model, {}).get(setting, {})
    first = next(iter(have.values()), {})
    return [a for a in result["arms"] if a["setting"] == setting and a["id"] in first]


def _score_table(result: dict, model: str, setting: str):
    summary = result["summary"][model][setting]
    metrics = list(summary)
    first = METRIC_LABELS[metrics[0]]
    stacked = any("vs_classical" in c for c in summary[metrics[0]].values())
    header = ["arm", "seeds", *(METRIC_LABELS[m] for m in metrics),
              *(f"diff {METRIC_LABELS[m]} vs real" for m in metrics), f"verdict ({first})",
              *([f"diff {first} vs classical", f"verdict vs classical ({first})"] if stacked else [])]
    rows = []
    for arm in _arms(result, model, setting):
        cells = [summary[m][arm["id"]] for m in metrics]
        means = [f"{_num(c['mean'])} ± {_num(c['std'])}" for c in cells]
        if arm["kind"] == "real":
            diffs = ["—"] * len(metrics)
        else:
            diffs = [_diff(c) for c in cells]
        row = [_label(arm), str(len(cells[0]["seeds"])), *means, *diffs, cells[0]["verdict"]]
        if stacked:
            vc = cells[0].get("vs_classical")
            row += [_diff(vc), vc["verdict"]] if vc else ["—", "—"]
        rows.append(row)
    return header, rows


def _diff(c: dict) -> str:
    return (f"{_num(c['diff_mean'], '+.3f')} ± {_num(c['diff_std'])} "
            f"[{_num(c['diff_ci95'][0], '+.3f')}, {_num(c['diff_ci95'][1], '+.3f')}]")


def _p(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _sentence(arm: str, reference: str, e: dict, metric: str) -> str:
    """One comparison, naming both arms: ``"A vs B (metric): diff ..., p ...: verdict"``."""
    n = e.get("n", len(e.get("seeds", [])))
    head = f"{arm} vs {reference} ({METRIC_LABELS[metric]}"
    role = e.get("role")
    head += f", {role})" if role else ")"
    if n < 2:
        return f"{head}: {_num(e['diff_mean'], '+.3f')} on {n} seed: **{e.get('verdict', 'not enough seeds')}**"
    lo, hi = e["diff_ci95"]
    text = (f"{head}: {_num(e['diff_mean'], '+.3f')}, paired sd {_num(e['diff_std'])}, 95 % CI "
            f"[{_num(lo, '+.3f')}, {_num(hi, '+.3f')}], n = {n}, p = {_p(e.get('p'))}")
    if "p_holm" in e:
        text += f", Holm-adjusted p = {_p(e['p_holm'])}"
    text += f", minimum detectable effect (80 % power) {_num(e.get('mde80'))}"
    return f"{text}: **{e['verdict']}**"


def _comparisons(result: dict, model: str, setting: str) -> list[str]:
    """The sentences of every comparison of ``model`` in ``setting`` on its verdict metric (first metric)."""
    summary = result["summary"][model][setting]
    metric = next(iter(summary))
    out = []
    for arm in _arms(result, model, setting):
        if arm["kind"] == "real":
            continue
        e = summary[metric][arm["id"]]
        out.append(_sentence(arm["id"], "real", e, metric))
        if "vs_classical" in e:
            out.append(_sentence(arm["id"], "classical", e["vs_classical"], metric))
    return out


def _primary_blocks(result: dict) -> list[tuple]:
    """The declared primary comparison and its result (or that it has no result yet)."""
    pr = result["settings"].get("primary")
    if not pr:
        return []
    text = (f"Declared ({pr.get('declared', 'before the first training')}): **{pr['arm']} vs {pr['reference']}**, "
            f"{pr['model']}, {SETTING_TITLES.get(pr['setting'], pr['setting'])}, {METRIC_LABELS[pr['metric']]}. "
            "It is judged on its own p-value; every other comparison is exploratory, its p-value Holm-adjusted "
            "across all exploratory comparisons of this benchmark.")
    e = result["summary"].get(pr["model"], {}).get(pr["setting"], {}).get(pr["metric"], {}).get(pr["arm"])
    if e is not None and pr["reference"] == "classical":
        e = e.get("vs_classical")
    found = [_sentence(pr["arm"], pr["reference"], e, pr["metric"])] if e else ["no result yet (not every run needed "
                                                                                 "has finished)"]
    return [("h", 2, "Primary comparison"), ("p", text), ("list", found)]


def _classical_blocks(result: dict) -> list[tuple]:
    """Which classical recipe each model's classical arms used, and the validation scores when chosen."""
    s = result["settings"]
    recipes = s.get("classical_recipe")
    if not recipes or not any(recipes.values()):
        return []
    how = ("chosen per model on validation rows of the training regions, never on test"
           if s.get("classical") == "auto" else "as given")
    blocks: list[tuple] = [("p", "Classical recipe of the classical arms (" + how + "): " +
                            ", ".join(f"{m}: `{r}`" for m, r in recipes.items()) + ".")]
    choice = result.get("classical_choice") or {}
    if choice:
        names = list(dict.fromkeys(k for c in choice.values() for k in c["scores"]))
        rows = [[m, METRIC_LABELS[c["metric"]], *(_num(c["scores"].get(k)) for k in names), c["recipe"]]
                for m, c in choice.items()]
        first = next(iter(choice.values()))
        v = first.get("validation", {})
        blocks += [("p", f"Validation scores of the recipes (one training each, seed {first['seed']}, "
                         f"{first['steps']} steps, on {v.get('train_windows', '?')} training windows; validation: "
                         f"{_regions(v.get('regions', []))}):"),
                   ("table", ["model", "metric", *names, "chosen"], rows)]
    return blocks


def _class_table(result: dict, model: str):
    """Per-class IoU (from each run's pooled confusion), mean over seeds, one column per arm (full setting)."""
    d = result["data"]
    arms = _arms(result, model, "full")
    header = ["class", "name", "averaged", *(_label(a) for a in arms)]
    means = {}
    for arm in arms:
        ious = [per_class_iou(r["scores"]["confusion"]) for r in result["runs"]
                if r["model"] == model and r["setting"] == "full" and r["arm"] == arm["id"]]
        stack = np.array(ious)
        means[arm["id"]] = [float(np.nanmean(c)) if np.isfinite(c).any() else None for c in stack.T]
    averaged = set(d["classes_averaged"]) if d["task"] == "segmentation" and model != "pixel" else None
    rows = []
    for c, name in enumerate(d["class_names"]):
        if c == d["ignore_index"]:
            continue
        mark = "all" if averaged is None else ("yes" if c in averaged else "no")
        rows.append([str(c), name, mark, *(_num(means[a["id"]][c]) for a in arms)])
    return header, rows


def _regions(regions: list[dict]) -> str:
    return ", ".join(f"{r['scene']} rows {r['rows'][0]}-{r['rows'][1] - 1}, cols {r['cols'][0]}-{r['cols'][1] - 1}"
                     for r in regions)


def _header(result: dict, title: str, sentences: list[str]) -> list[tuple]:
    """A report's title, its paragraph on how it was measured and, while runs are missing, the note saying so."""
    blocks: list[tuple] = [("h", 1, title), ("p", " ".join(sentences))]
    if not result.get("complete", True):
        blocks.append(("p", "**Partial results**: not every planned run has finished; rerun with --resume."))
    return blocks


def _blocks(result: dict) -> list[tuple]:
    """The report as blocks: ("h", level, text), ("p", text), ("list", items), ("table", header, rows),
    ("img", path, caption, model, setting), ("code", text)."""
    d, s = result["data"], result["settings"]
    avg = (f"mIoU and F1 average the classes labelled in both training and test regions: "
           f"{', '.join(map(str, d['classes_averaged']))}." if d["task"] == "segmentation" else
           "Change detection: F1 and IoU of the change class, mIoU over {no change, change}.")
    blocks = _header(result, f"Downstream benchmark: config `{d['config']}` ({d['task']})", [
        f"Trained on {d['train_windows']} real training windows of {d['patch_size']}x{d['patch_size']} pixels "
        f"({_regions(d['train_regions'])}); scored on {len(d['test_regions'])} whole test region(s) "
        f"({_regions(d['test_regions'])}; {d['labelled_test_pixels']} labelled pixels pooled into one confusion "
        f"matrix per run).",
        avg,
        f"Every arm: Adam, lr {s['lr']:g} ({s.get('lr_schedule', 'constant')}), {s['steps']} steps of batch "
        f"{s['batch_size']}; seeds {', '.join(map(str, s['seeds']))}, paired (seed k shares initialization and "
        "real batch order).",
        "Differences are per seed against real only (and classical) of the same model and setting, with their "
        "paired standard deviation, paired t-test p-value and the minimum detectable effect at 80 % power, "
        "(t(0.975, n-1) + t(0.8, n-1)) x paired sd / sqrt(n).",
        "The verdict (first metric) says helps / hurts when p < 0.05, else no clear effect; for exploratory "
        "comparisons p is Holm-adjusted across all of them, the primary comparison is judged on its own; fewer "
        "than 2 seeds: not enough seeds.",
    ])
    blocks += _classical_blocks(result)
    blocks += _primary_blocks(result)
    for setting in ("full", "limited"):
        models = [m for m in _models(result) if setting in result["summary"].get(m, {})]
        if not models:
            continue
        title = SETTING_TITLES[setting]
        if setting == "limited":
            title += f" ({d['limited_windows']} of {d['train_windows']} windows, seeded choice)"
        blocks.append(("h", 2, title[0].upper() + title[1:]))
        for m in models:
            metric = next(iter(result["summary"][m][setting]))
            blocks += [("h", 3, f"{m}"), ("table", *_score_table(result, m, setting))]
            sentences = _comparisons(result, m, setting)
            if sentences:
                blocks += [("p", "Comparisons:"), ("list", sentences)]
            blocks += [("img", f"plots/{m}_{setting}.png",
                        f"{m}, {title}: {METRIC_LABELS[metric]} per arm (mean ± std, seeds as dots) and per-seed "
                        "difference to real only (mean and 95 % CI)", m, setting)]  # fmt: skip
    models = [m for m in _models(result) if "full" in result["summary"].get(m, {})]
    if models:
        blocks.append(("h", 2, "Per-class IoU (full real training set, mean over seeds)"))
        for m in models:
            blocks += [("h", 3, m), ("table", *_class_table(result, m))]
    mach = result["machine"]
    notes = [f"{k.replace('_', ' ')}: {v}" for k, v in result["conventions"].items()]
    notes += [f"Synthetic set `{k}`: {v['path']} ({v['samples']} samples, {v['loaded']} loaded)"
              for k, v in result["synthetic"].items()]
    notes += [f"Warning: {w}" for w in result["warnings"]]
    notes.append(f"Wall time {result['wall_time_s']:.0f} s over {len(result['invocations'])} invocation(s) on "
                 f"{mach['platform']}, {mach['cpu_count']} CPUs, torch {mach['torch']}, device {mach['device_name']}.")
    blocks += [("h", 2, "Notes"), ("list", notes), ("p", "Command(s):"),
               ("code", "\n".join(i["command"] or "(library call)" for i in result["invocations"]))]
    return blocks


# --------------------------------------------------------------------------- --rgb-model

RGB_ARM_LABELS = {"rgb": "RGB", "real": "real spectra"}
RGB_TEST_LABELS = {"rgb": "RGB", "real": "real spectra", "synthetic": "HyperLDM version of the test RGB"}
RGB_TEST_SHORT = {"rgb": "RGB", "real": "real", "synthetic": "synthetic"}


def _rgb_label(arm: dict) -> str:
    return RGB_ARM_LABELS.get(arm["id"]) or f"HyperLDM x{arm['amount']}"


def _rgb_rows(result: dict):
    """(arm, test) pairs in plan order that have a summary."""
    first = result["summary"].get("oa", {})
    return [(a, t) for a in result["arms"] for t in a["tests"] if t in first.get(a["id"], {})]


def _vs(entry: dict | None) -> list[str]:
    if entry is None:
        return ["—", "—"]
    if entry["verdict"] == "reference":
        return ["—", "reference"]
    return [_diff(entry), entry["verdict"]]


def _rgb_blocks(result: dict) -> list[tuple]:
    """The report of ``specdm benchmark CONFIG --rgb-model MODEL`` (no plots)."""
    d, s, summary = result["data"], result["settings"], result["summary"]
    blocks = _header(result, f"RGB -> spectra pixel classification: config `{d['config']}`, model "
                             f"`{result['model']['dir']}`", [
        f"A 1-D CNN pixel classifier ({s['classifier']}; {s['steps']} Adam steps of {s['batch_size']} pixels, lr "
        f"{s['lr']:g} {s['lr_schedule']}) is trained on the {d['labelled_train_pixels']} labelled pixels of the "
        f"training region(s) ({_regions(d['train_regions'])}) as RGB (made as the model makes it), as real "
        f"spectra, or as M HyperLDM versions of their RGB (x{', x'.join(map(str, s['amounts']))}; real labels), "
        f"and scored on the {d['labelled_test_pixels']} labelled pixels of the test region(s) "
        f"({_regions(d['test_regions'])}), pooled: RGB on RGB, real on real spectra, each HyperLDM arm on one "
        "HyperLDM version of the test RGB (an RGB camera only) and on the real test spectra.",
        f"Versions: sampler {s['sampler']}, {s['sampling_steps']} steps. Seeds {', '.join(map(str, s['seeds']))}.",
        "Differences are per seed against RGB (tested on RGB) and against real spectra (tested on real spectra); "
        "the verdict says whether their 95 % interval lies above 0 (helps), below 0 (hurts) or covers it (no "
        "clear effect).",
    ])
    rows = _rgb_rows(result)
    table = [[_rgb_label(a), RGB_TEST_LABELS[t], str(len(summary["oa"][a["id"]][t]["seeds"])),
              *(f"{_num(summary[m][a['id']][t]['mean'])} ± {_num(summary[m][a['id']][t]['std'])}"
                for m in ("oa", "aa", "kappa"))] for a, t in rows]
    blocks += [("h", 2, "Scores (mean ± std over seeds)"),
               ("table", ["trained on", "tested on", "seeds", "OA", "AA", "kappa"], table)]
    blocks.append(("h", 2, "Paired differences (per seed)"))
    for m in ("oa", "aa", "kappa"):
        header = ["trained on", "tested on", f"diff {METRIC_LABELS[m]} vs RGB", "verdict vs RGB",
                  f"diff {METRIC_LABELS[m]} vs real", "verdict vs real"]
        cells = [[_rgb_label(a), RGB_TEST_LABELS[t], *_vs(summary[m][a["id"]][t].get("vs_rgb")),
                  *_vs(summary[m][a["id"]][t].get("vs_real"))] for a, t in rows]
        blocks += [("h", 3, METRIC_LABELS[m]), ("table", header, cells)]
    per_class = {}
    for a, t in rows:
        acc = np.array([[np.nan if v is None else v for v in r["tests"][t]["per_class_accuracy"]]
                        for r in result["runs"] if r["arm"] == a["id"]], dtype=np.float64)
        per_class[a["id"], t] = [float(np.nanmean(c)) if np.isfinite(c).any() else None for c in acc.T]
    class_rows = [[str(c), name, *(_num(per_class[a["id"], t][c]) for a, t in rows)]
                  for c, name in enumerate(d["class_names"]) if c != d["ignore_index"]]
    blocks += [("h", 2, "Per-class accuracy (mean over seeds)"),
               ("table", ["class", "name", *(f"{_rgb_label(a)} on {RGB_TEST_SHORT[t]}" for a, t in rows)],
                class_rows)]
    mach = result["machine"]
    notes = [f"{k.replace('_', ' ')}: {v}" for k, v in result["conventions"].items()]
    for split, items in result["versions"].items():
        notes += [f"{split} versions of {_regions([v['region']])}: {v['versions']} (seed {v['seed']}), "
                  f"{v['seconds']:.0f} s to sample" + (" (earlier run)" if v["reused"] else "") for v in items]
    notes.append(f"Model: {result['model']['dir']}, head {result['model'].get('head')}, weights "
                 f"{', '.join(f'{k} {h}' for k, h in result['model']['weights'].items())}")
    notes += [f"Warning: {w}" for w in result["warnings"]]
    notes.append(f"Wall time {result['wall_time_s']:.0f} s over {len(result['invocations'])} invocation(s) on "
                 f"{mach['platform']}, {mach['cpu_count']} CPUs, torch {mach['torch']}, sampling on "
                 f"{mach['device_name']}, classifiers on the CPU.")
    blocks += [("h", 2, "Notes"), ("list", notes), ("p", "Command(s):"),
               ("code", "\n".join(i["command"] or "(library call)" for i in result["invocations"]))]
    return blocks


# --------------------------------------------------------------------------- plots


def _plot(result: dict, model: str, setting: str, path: Path) -> None:
    """Bars of the first metric per arm (mean ± std, seeds as dots); per-seed differences to real."""
    metric = next(iter(result["summary"][model][setting]))
    summary = result["summary"][model][setting][metric]
    arms = _arms(result, model, setting)
    per_seed = {a["id"]: {} for a in arms}
    for r in result["runs"]:
        if r["model"] == model and r["setting"] == setting and r["arm"] in per_seed:
            v = r["scores"][metric]
            per_seed[r["arm"]][r["seed"]] = np.nan if v is None else v
    labels = [_label(a) for a in arms]
    fig = Figure(figsize=(4 + 1.6 * len(arms), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[len(arms), max(1, len(arms) - 1)])
    x = np.arange(len(arms))
    mean = [np.nan if summary[a["id"]]["mean"] is None else summary[a["id"]]["mean"] for a in arms]
    std = [0.0 if summary[a["id"]]["std"] is None else summary[a["id"]]["std"] for a in arms]
    ax1.bar(x, mean, yerr=std, color="#8fb3d9", edgecolor="#35618f", capsize=4)
    for i, a in enumerate(arms):
        vals = list(per_seed[a["id"]].values())
        ax1.plot(np.full(len(vals), i), vals, "o", color="#1f2f4a", ms=3)
    ax1.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax1.set_ylabel(METRIC_LABELS[metric])
    ax1.set_title(f"{model}, {SETTING_TITLES[setting]}", fontsize=9)
    others = [a for a in arms if a["kind"] != "real"]
    ref = per_seed.get("real", {})
    for i, a in enumerate(others):
        diffs = [v - ref[k] for k, v in per_seed[a["id"]].items() if k in ref]
        ax2.plot(np.full(len(diffs), i), diffs, "o", color="#1f2f4a", ms=4, alpha=0.7)
        s = summary[a["id"]]
        if s["diff_mean"] is not None:
            lo, hi = (np.nan if v is None else v for v in s["diff_ci95"])
            ax2.errorbar([i + 0.2], [s["diff_mean"]], yerr=[[s["diff_mean"] - lo], [hi - s["diff_mean"]]],
                         fmt="D", color="#c0392b", capsize=4, ms=5)
    ax2.axhline(0, color="grey", lw=0.8)
    ax2.set_xticks(np.arange(len(others)), [_label(a) for a in others], rotation=30, ha="right", fontsize=8)
    ax2.set_xlim(-0.6, max(len(others), 1) - 0.4)
    ax2.set_ylabel(f"{METRIC_LABELS[metric]} - real only (per seed)")
    ax2.set_title("paired difference to real only (red: mean, 95 % CI)", fontsize=9)
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})


# --------------------------------------------------------------------------- rendering


def _markdown(blocks: list[tuple]) -> str:
    out = []
    for kind, *a in blocks:
        if kind == "h":
            out += ["#" * a[0] + " " + a[1], ""]
        elif kind == "p":
            out += [a[0], ""]
        elif kind == "list":
            out += [*(f"- {item}" for item in a[0]), ""]
        elif kind == "table":
            header, rows = a
            out += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
            out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        elif kind == "img":
            out += [f"![{a[1]}]({a[0]})", "", f"*{a[1]}*", ""]
        elif kind == "code":
            out += ["```", a[0], "```", ""]
    return "\n".join(out)


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** as HTML, the rest escaped."""
    parts = html.escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _html(blocks: list[tuple], out_dir: Path) -> str:
    body = []
    for kind, *a in blocks:
        if kind == "h":
            body.append(f"<h{a[0]}>{_inline(a[1])}</h{a[0]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(a[0])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in a[0]) + "</ul>")
        elif kind == "table":
            header, rows = a
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((out_dir / a[0]).read_bytes()).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(a[1])}">'
                        f"<figcaption>{html.escape(a[1])}</figcaption></figure>")
        elif kind == "code":
            body.append(f"<pre>{html.escape(a[0])}</pre>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
             "th,td{border:1px solid #bbb;padding:3px 8px}td{text-align:right}td:first-child{text-align:left}"
             "th{background:#eef}img{max-width:100%}pre{background:#f4f4f4;padding:8px;white-space:pre-wrap}")
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>specdm benchmark</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------- the protocol over folds


def write_protocol_report(result: dict, out_dir) -> dict:
    """``report.md`` of the protocol over folds and label settings (:mod:`~specdm.evaluation.benchmark.protocol`):
    the primary comparison first, then per model and label setting every arm's score and its comparisons with
    ``real`` and ``classical``, then the cells. Returns the output paths."""
    out_dir = Path(out_dir)
    md = out_dir / "report.md"
    try:
        md.write_text(_markdown(_protocol_blocks(result)))
    except OSError as e:
        raise OutputError(f"cannot be written ({e.strerror})", md) from None
    return {"json": str(out_dir / "benchmark.json"), "markdown": str(md)}


def _protocol_blocks(result: dict) -> list[tuple]:
    pr, proto = result.get("primary"), result["protocol"]
    blocks = [("h", 1, f"Benchmark protocol: config `{proto['config']}`"),
              ("p", f"Fold design `{proto['design']}` ({len(proto['folds'])} folds), label settings "
                    f"{', '.join(proto['settings'])}, models {', '.join(proto['models'])}, arms "
                    f"{', '.join(proto['arms'])}, {proto['seeds']} seed(s) per fold, steps "
                    + "; ".join(f"{m}: " + ", ".join(f"{k} {v}" for k, v in st.items()) for m, st in proto['steps'].items())
                    + f" of batch "
                    f"{proto['batch_size']}, Adam from {proto['lr']} ({proto['lr_schedule']}), speed {proto['speed']}. "
                    f"Units are (fold, seed) pairs. Wall time of the cells so far: {result['wall_time_s']:.0f} s"
                    f"{'' if result['complete'] else ' (not complete)'}."),
              ("code", result.get("command") or "(library call)")]
    blocks.append(("h", 2, "Primary comparison (declared before the first training)"))
    if not pr:
        blocks.append(("p", "None declared (no synthetic arm)."))
    elif pr.get("status") != "measured":
        blocks.append(("p", f"{pr['model']}, labels {pr['setting']}, {METRIC_LABELS[pr['metric']]}: {pr['arm']} vs "
                            f"{pr['reference']}: {pr['status']}."))
    else:
        e = {k: pr[k] for k in ("diff_mean", "diff_std", "diff_ci95", "p", "mde80", "verdict")} | {"n": pr["n_units"]}
        text = f"{pr['model']}, labels {pr['setting']}: " + _sentence(pr["arm"], pr["reference"], e, pr["metric"])
        need = pr.get("units_for_0.03")
        text += (f". Resolution: the minimum detectable effect is {_num(pr['mde80'])}; resolving 0.03 at this paired "
                 f"sd needs {need if need else 'more than 1000'} units (fold x seed pairs), here {pr['n_units']}.")
        blocks.append(("p", text))
    for model, settings in result["summary"].items():
        for setting in proto["settings"]:
            if setting not in settings:
                continue
            metrics = settings[setting]
            metric = next(iter(metrics))
            blocks.append(("h", 2, f"{model}, labels {setting}"))
            rows = []
            for arm, e in metrics[metric].items():
                vs_c = e.get("vs_classical")
                rows.append([arm, f"{_num(e['mean'])} ± {_num(e['std'])}", str(e["n"]),
                             "reference" if arm == "real" else f"{_diff(e)} ({e.get('verdict', '')})",
                             f"{_diff(vs_c)} ({vs_c.get('verdict', '')})" if vs_c else ""])
            blocks.append(("table", ["arm", f"{METRIC_LABELS[metric]} mean ± sd", "units",
                                     "vs real: diff ± paired sd [95 % CI] (verdict)",
                                     "vs classical: diff ± paired sd [95 % CI] (verdict)"], rows))
            sentences = []
            for arm, e in metrics[metric].items():
                if arm == "real":
                    continue
                sentences.append(_sentence(arm, "real", e, metric))
                if e.get("vs_classical"):
                    sentences.append(_sentence(arm, "classical", e["vs_classical"], metric))
            blocks.append(("list", sentences))
    blocks.append(("h", 2, "Cells"))
    rows = []
    for c in result["cells"]:
        labels = c.get("labels") or {}
        kept = labels.get("kept_share")
        rows.append([f"fold {c['fold']}", c["setting"], c.get("model", ""), c.get("status", ""),
                     str(c.get("steps") or ""), str(c.get("train_windows", "") or ""),
                     "" if kept is None else f"{kept:.3f}", ", ".join(map(str, labels.get("classes_kept", []) or [])),
                     str(c.get("classical_recipe") or ""),
                     "" if c.get("wall_time_s") is None else f"{c['wall_time_s']:.0f}"])
    blocks.append(("table", ["fold", "labels", "model", "status", "steps", "training windows", "label share kept",
                             "classes kept", "classical recipe", "wall (s)"], rows))
    return blocks
