"""Layers only point down: every ``medslip`` import between subpackages follows the order below
(a module may import its own layer and the layers listed as below it, nothing else). The one
exception is the package's public API: ``medslip.load_pretrained`` imports its implementation
(``medslip.predict``) inside the function, so that ``import medslip`` stays light."""

import ast
from pathlib import Path

from tests.conftest import REPO

BASE = {
    "__init__",
    "vocab",
    "labels",
    "errors",
    "atomic",
    "config",
    "settings",
    "variants",
    "datasets",
    "job_config",
    "rle",
    "layout",
    "flags",
    "devices",
    "progress",
    "hashing",
    "dvc_sync",
}
ORDER: list[set[str]] = [
    {"base"},
    {"synth", "reports", "data"},  # independent of each other
    {"model"},
    {"pretrain"},
    {"evaluate"},
    {"finetune", "predict"},
    {"figures", "tables", "benchmarks"},
    {"commands"},
    {"cli"},
]
"""Layers bottom up: a layer may import itself and every layer of the groups before its own."""
BELOW = {layer: set().union(*ORDER[:i]) for i, group in enumerate(ORDER) for layer in group}
FACADE = {"medslip.__init__": {"medslip.predict"}}
"""Lazy imports of the public API (module -> the modules it may import above its layer)."""


def _layer(module: str) -> str:
    """``medslip.reports.parse`` → ``reports``; a base module → ``base``."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return "base" if top in BASE else top


def _imports(path: Path) -> set[str]:
    """Every ``medslip...`` module a file imports (at any depth, lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "medslip"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "medslip":
            out.add(node.module)
    return out


def test_imports_between_layers_only_point_down():
    package = REPO / "medslip"
    bad = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        layer = _layer(module)
        assert layer in BELOW, f"{module}: layer {layer!r} is not in the layer order"
        for target in _imports(path) - FACADE.get(module, set()):
            other = _layer(target)
            if other != layer and other not in BELOW[layer]:
                bad.append(f"{module} ({layer}) imports {target} ({other})")
    assert not bad, "imports pointing up or sideways:\n" + "\n".join(bad)
