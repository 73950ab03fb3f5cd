"""The layout is the architecture: each stage imports only from the stages before it, and no cycles.

The stage order is the data flow (docs/design.md). Every import inside ``src/specdm``,
including those inside functions, is checked; ``if TYPE_CHECKING:`` imports are only
annotations and do not count.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "specdm"

# stage -> rank: a module may import modules of its own stage or of a lower rank
RANKS = {
    "errors": 0,
    "schedulers": 1,
    "metrics": 1,
    "layers": 1,  # plain torch building blocks shared by generative and task models: torch only
    "speed": 1,  # how training steps run (precision, memory layout, fused optimizers): torch only
    "io": 2,
    "scene": 3,
    "datasets": 4,
    "config": 4.5,  # the typed schema of the edge: inner stages may take its objects
    "configs": 4.5,  # the packaged YAML files
    "data": 5,
    "conditions": 5.5,  # what a model is conditioned on (RGB, edges, text ...), from data, for models
    "models": 6,
    "training": 7,
    "pipelines": 8,
    "output": 9,
    "augment": 10,
    "evaluation": 11,
    "recipes": 12,
    "operations": 12.5,  # operations on a trained model folder: may use recipes (stages, the writer), not the CLI
    "cli": 13,
    "__init__": 13,
    "__main__": 13,
}
# stages a later stage still must not reach: scoring a data set needs no training or generative model
FORBIDDEN = {
    "evaluation": {"recipes", "training", "pipelines", "models"},
    "augment": {"recipes", "training", "pipelines", "models"},
    "metrics": set(RANKS) - {"errors", "metrics"},
}


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported specdm module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n == "specdm" or n.startswith("specdm."):
                # keep the longest prefix that is a module of the package
                parts = n.split(".")
                while parts and not _exists(parts):
                    parts.pop()
                if parts and (".".join(parts), id(node) in top) not in out:
                    out.append((".".join(parts), id(node) in top))
    return out


def _exists(parts: list[str]) -> bool:
    p = SRC.parent.joinpath(*parts)
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


FILES = sorted(SRC.rglob("*.py"))


def test_every_stage_is_known():
    unknown = {stage(module_name(f)) for f in FILES} - set(RANKS)
    assert not unknown, f"add these top-level modules to RANKS and docs/design.md: {unknown}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_flow(path):
    me = stage(module_name(path))
    bad = []
    for mod, _ in imports(path):
        other = stage(mod)
        if mod == "specdm":  # the package root holds only __version__
            continue
        if other != me and (RANKS[other] > RANKS[me] or other in FORBIDDEN.get(me, ())):
            bad.append(f"{mod} ({other}, rank {RANKS[other]} > {me}, rank {RANKS[me]})"
                       if RANKS[other] > RANKS[me] else f"{mod} ({me} must not import {other})")
    assert not bad, f"{path.relative_to(SRC)} imports a later stage: {bad}"


def test_no_import_cycles_at_module_level():
    graph = {module_name(f): {m for m, top in imports(f) if top} for f in FILES}
    state, cycle = {}, []

    def visit(n, trail):
        state[n] = 1
        for m in graph.get(n, ()):
            if m == n or m not in graph:
                continue
            if state.get(m) == 1:
                cycle.append(trail[trail.index(m):] + [m] if m in trail else [n, m])
            elif m not in state:
                visit(m, trail + [m])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])
    # a package's __init__ importing its own submodules is the normal re-export, not a cycle,
    # unless the submodule imports the package back
    real = [c for c in cycle if not all(a == b.rsplit(".", 1)[0] or b == a.rsplit(".", 1)[0] for a, b in zip(c, c[1:]))]
    assert not real, f"import cycles: {real}"


def test_the_checker_sees_a_violation(tmp_path):
    """The rule is not vacuous: a metrics module importing the data stage is caught."""
    f = SRC / "metrics" / "_layout_probe.py"
    try:
        f.write_text("from specdm.data.normalize import Normalizer\n")
        assert [m for m, _ in imports(f)] == ["specdm.data.normalize"]
        with pytest.raises(AssertionError, match=r"specdm.data.normalize \(data, rank 5 > metrics"):
            test_imports_follow_the_flow(f)
    finally:
        f.unlink()
