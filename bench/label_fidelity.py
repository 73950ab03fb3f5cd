"""Label fidelity of synthetic sets: what ``specdm evaluate`` reports in its "Label fidelity" section, alone.

    python bench/label_fidelity.py CONFIG NAME=DIR [NAME=DIR ...] [--max-samples N] [--out DIR]

A random forest of the real training pixels (seed 0) labels every synthetic pixel; per class, the
share it agrees with the synthetic mask is set beside its recall on the held-out real pixels (the
ceiling). Results: ``DIR/<config>.json`` and ``.md`` (default ``bench/results/label_fidelity``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import REPO, command_line

from specdm.augment.synthetic import load_synthetic
from specdm.config import load_config
from specdm.data.datamodule import prepare_data
from specdm.evaluation.evaluate import label_fidelity


def first_source(result: dict) -> str:
    return next(iter(result["sets"].values())).get("ceiling_source", "-")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("sets", nargs="+", metavar="NAME=DIR")
    p.add_argument("--max-samples", type=int, default=1000)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "label_fidelity")
    a = p.parse_args()
    cfg = load_config(a.config)
    data = prepare_data(cfg.data)
    real_x, real_y = (t.numpy() for t in data.train.batch(range(len(data.train))))
    result = {"config": a.config, "command": command_line(), "sets": {}}
    for item in a.sets:
        name, _, path = item.partition("=")
        t = time.time()
        s = load_synthetic(Path(path), data, a.max_samples, cfg.name)
        rep = label_fidelity(data, real_x, real_y, s.x, s.y, seed=0)
        result["sets"][name] = {"path": path, "samples": len(s.x), "wall_s": round(time.time() - t, 1), **rep}
    a.out.mkdir(parents=True, exist_ok=True)
    name = Path(a.config).stem
    (a.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    sets = list(result["sets"])
    lines = [f"Label fidelity on `{a.config}` (`{command_line()}`): per class, agreement of a random forest of the "
             "real training pixels with the synthetic masks / its recall on held-out real pixels (ratio).", "",
             "| class | ceiling | " + " | ".join(f"{n} agreement (ratio)" for n in sets) + " |",
             "|---|---:|" + "---:|" * len(sets)]
    first = result["sets"][sets[0]]["classes"]
    for i, c in enumerate(first):
        if not c["in_training_split"]:
            continue
        cells = []
        for n in sets:
            r = result["sets"][n]["classes"][i]
            cells.append("-" if r["agreement"] is None else f"{r['agreement']:.3f} ({r['ratio']:.2f})"
                         if r["ratio"] is not None else f"{r['agreement']:.3f} (-)")
        ceil = "-" if c["ceiling"] is None else f"{c['ceiling']:.3f}"
        lines.append(f"| {c['name']} | {ceil} | " + " | ".join(cells) + " |")
    lines.append("| **lowest ratio** | | " + " | ".join(
        "-" if result["sets"][n]["min_ratio"] is None else f"**{result['sets'][n]['min_ratio']:.2f}**" for n in sets) + " |")
    counts = ", ".join(f"{n} {result['sets'][n]['samples']}" for n in sets)
    walls = ", ".join(f"{n} {result['sets'][n]['wall_s']} s" for n in sets)
    lines += ["", f"Samples per set: {counts}; wall: {walls}; ceiling from {first_source(result)}."]
    (a.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
