"""The layout shows the architecture: layers import downwards only, without cycles or private
names, and no module grows past what a reader holds at once (ARCHITECTURE.md, "Layers")."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recsys", "training", "serving", "orchestration", "feature_repo", "simulation")
MAX_LINES = 400
#: What each unit may import from the project (a unit is a library subpackage or a top-level
#: package). Everything not listed is forbidden, so a new edge is a decision taken here.
ALLOWED = {
    "feature_repo": set(),
    "recsys": set(),
    "recsys.platform": set(),
    "recsys.events": {"recsys.platform"},
    "recsys.features": {"recsys.platform", "recsys.events", "feature_repo"},
    "recsys.models": {"recsys.platform", "recsys.events", "recsys.features"},
    "recsys.evaluation": {"recsys.platform", "recsys.events", "recsys.features", "recsys.models"},
    "recsys.experiments": {"recsys.platform", "recsys.events", "recsys.models",
                           "recsys.evaluation"},
    "training": {"recsys.platform", "recsys.events", "recsys.features", "recsys.models",
                 "recsys.evaluation"},
    "serving": {"recsys.platform", "recsys.events", "recsys.features", "recsys.models",
                "recsys.experiments"},
    "simulation": {"recsys.platform", "recsys.events", "recsys.models", "recsys.experiments"},
    "orchestration": {"recsys.platform", "recsys.events", "recsys.features", "recsys.models",
                      "recsys.evaluation", "recsys.experiments", "training"},
}
#: Frameworks each shell owns: the library and training import neither, serving no Dagster.
FRAMEWORKS = {"dagster": {"orchestration"}, "bentoml": {"serving", "orchestration"}}


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "recsys":
        return ".".join(parts[:2]) if len(parts) > 1 else "recsys"
    return parts[0] if parts[0] in PACKAGES else None


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            name = ".".join(relative.parts).removesuffix(".__init__")
            found.append((name, path))
    return found


def imports(path: Path, module: str) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) of every import, at any depth of the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{module}: relative import (use the full module name)"
            out.append((node.module or "", [alias.name for alias in node.names]))
    return out


MODULES = modules()


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_module_imports_only_what_its_layer_allows(module: str, path: Path) -> None:
    unit = unit_of(module)
    assert unit in ALLOWED, f"{module} is outside the known layers"
    for target, names in imports(path, module):
        top = target.split(".")[0]
        if top in FRAMEWORKS:
            assert unit in FRAMEWORKS[top], f"{module} imports {top}"
        target_unit = unit_of(target)
        if target_unit is None or target_unit == unit:
            continue
        assert target_unit in ALLOWED[unit], f"{module} ({unit}) imports {target}"
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{module} imports private {private} from {target}"


def test_the_layers_have_no_cycle() -> None:
    edges = {unit: set(allowed) for unit, allowed in ALLOWED.items()}
    order: list[str] = []
    while edges:
        ready = sorted(u for u, deps in edges.items() if not deps - set(order))
        assert ready, f"cycle among {sorted(edges)}"
        order.extend(ready)
        for unit in ready:
            del edges[unit]


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_no_module_is_longer_than_a_reader_holds(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"
