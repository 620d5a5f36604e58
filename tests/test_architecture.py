"""The layer contract, checked on the import graph of every .py file of app/, medflip_core/ and trainer/
(parsed with ast; nothing is imported).

    app (PySide6 GUI)      trainer (torch training process)
            \\                /
             medflip_core (no Qt)

- medflip_core imports neither trainer, app, PySide6 nor pyqtgraph, and nothing in it imports its
  own top, medflip_core.cli;
- app never imports torch, torchvision, timm or transformers: not itself, and not through a
  medflip_core module that imports them when it is loaded; nor the trainer (it starts it as a process);
- trainer never imports app;
- medflip_core has no import cycle;
- inside medflip_core and inside app, imports go only downwards through the layers of LAYERS: a folder or
  top-level module may import its own folder and anything in a lower layer, nothing in its own layer or above
  (lazy imports count: they run as soon as the function does).

How imports inside functions ("lazy" imports) are treated: for the layer rules they count like any
other import, because they run as soon as the function does. For cycles only imports that run when a
module is loaded count (module level, class bodies, try/if blocks at module level), because a
function-level import runs after every module involved has finished loading. Imports under
`if TYPE_CHECKING:` never run: they count for the layer rules, not for cycles or for what app loads.
Starting another layer as a process (`python -m trainer`, QProcess) is not an import; the frozen app's
`--trainer` / `--medflip` dispatch lives in packaging/launcher.py, outside the three packages.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("medflip_core", "app", "trainer")

FORBIDDEN: dict[str, set[str]] = {
    "medflip_core": {"trainer", "app", "PySide6", "pyqtgraph"},
    "app": {"torch", "torchvision", "timm", "transformers", "trainer"},
    "trainer": {"app"},
}


# Bottom to top. Each entry is one layer; a unit is a folder (package) or a top-level module. A unit imports only
# itself and units of lower layers. docs/architecture.md says what each one holds.
LAYERS: dict[str, list[set[str]]] = {
    "medflip_core": [
        {"medflip_core", "errors"},  # the ground floor: small modules every layer may use
        {"atomic", "events", "resources", "masking", "metrics"},
        {"processes"},
        {"imaging", "reports"},
        {"labeler"},
        {"data", "bundles"},
        {"model", "inference"},
        {"finetune"},
        {"evaluation"},  # measures models and classifiers: may use finetune's embedding cache
        {"session", "labelling"},
        {"bench"},
        {"cli"},
    ],
    "app": [
        {"app", "settings", "workers", "scroll_page", "wide_tab", "text_colours"},  # ground
        {"viewer"},
        {"panels"},
        {"training", "labelling"},
        {"window"},
        {"bench"},
        {"main"},
    ],
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "medflip_core.cli"
    target: str  # imported module, e.g. "medflip_core.bench"; for third-party code the name as written
    path: Path
    line: int
    on_load: bool  # runs when `source` is loaded (not inside a function, not under TYPE_CHECKING)

    def __str__(self) -> str:
        where = "" if self.on_load else " (inside a function or TYPE_CHECKING)"
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} imports {self.target}{where}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top(module: str) -> str:
    return module.split(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, known: set[str]) -> list[Import]:
    """Every import statement in one file, with the module it names (`from pkg import mod` names pkg.mod
    when that is one of our modules, else pkg)."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found: list[Import] = []

    def add(target: str, node: ast.stmt, on_load: bool) -> None:
        found.append(Import(source, target, path, node.lineno, on_load))

    def visit(node: ast.AST, on_load: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, on_load)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                add(candidate if candidate in known else base, node, on_load)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            on_load = False
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, on_load)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, on_load)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), True)
    return found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    known = {module_name(p) for p in files}
    return [imp for p in files for imp in imports_of(p, known)]


def layer_violations(graph: list[Import], layer: str) -> list[str]:
    return [str(i) for i in graph if top(i.source) == layer and top(i.target) in FORBIDDEN[layer]]


def unit(module: str) -> str:
    """The layer unit of a module: "medflip_core.inference.engine" -> "inference", "medflip_core" -> "medflip_core"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(package: str, module: str) -> int:
    name = unit(module)
    for level, units in enumerate(LAYERS[package]):
        if name in units:
            return level
    raise KeyError(f"{module}: its folder or module {name!r} is in no layer of LAYERS[{package!r}]: place it there")


def upward_imports(graph: list[Import], package: str) -> list[str]:
    """Imports inside `package` that go to the importer's own layer (another unit) or above."""
    bad = []
    for i in graph:
        inside = top(i.source) == top(i.target) == package and unit(i.source) != unit(i.target)
        if inside and unit(i.target) != package and layer_of(package, i.target) >= layer_of(package, i.source):
            bad.append(f"{i}  [layer {layer_of(package, i.source)} -> {layer_of(package, i.target)}]")
    return bad


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def loaded_with(graph: list[Import], start: str) -> dict[str, list[str]]:
    """Every module that loading `start` loads (its packages' __init__ too), each with the import chain."""
    on_load: dict[str, list[str]] = {}
    for i in graph:
        if i.on_load:
            on_load.setdefault(i.source, []).append(i.target)
    chains = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        for target in [*_parents(module), *on_load.get(module, [])]:
            if target not in chains:
                chains[target] = [*chains[module], target]
                todo.append(target)
    return chains


def core_cycles(graph: list[Import]) -> list[list[str]]:
    """Cycles among medflip_core modules, through imports that run when a module is loaded. Loading a.b.c
    also loads the packages a.b and a; that edge counts, except towards the importer's own packages
    (which are part-way through loading already: the normal way a package loads its submodules)."""
    edges: dict[str, set[str]] = {}
    for i in graph:
        if i.on_load and top(i.source) == top(i.target) == "medflip_core":
            targets = {i.target, *_parents(i.target)} - {i.source, *_parents(i.source)}
            edges.setdefault(i.source, set()).update(targets)
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            walk(module)
    return cycles


def test_the_graph_sees_real_imports(graph):
    """Guards the parser itself: imports we know exist must be found, lazy and on-load alike."""
    pairs = {(i.source, top(i.target), i.on_load) for i in graph}
    assert ("medflip_core.model.export", "torch", True) in pairs
    assert ("app.main", "PySide6", False) in pairs  # inside main()
    assert ("trainer.cli", "medflip_core", True) in pairs
    assert any(i.source == "medflip_core.cli" and i.target == "medflip_core.bench" for i in graph)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_it_must_not(graph, layer):
    violations = layer_violations(graph, layer)
    assert not violations, f"{layer} must not import {sorted(FORBIDDEN[layer])}:\n" + "\n".join(violations)


def test_nothing_in_core_imports_the_cli(graph):
    """medflip_core.cli is the top of core: it imports the rest, never the other way round."""
    back = [str(i) for i in graph if top(i.source) == "medflip_core" and i.source != "medflip_core.cli"
            and i.target == "medflip_core.cli"]
    assert not back, "\n".join(back)


def test_app_loads_no_torch_through_core(graph):
    """Whatever app imports from medflip_core must not load torch & co. when it is loaded."""
    heavy = FORBIDDEN["app"] - {"trainer"}
    problems = []
    for target in sorted({i.target for i in graph if top(i.source) == "app" and top(i.target) == "medflip_core"}):
        for module, chain in loaded_with(graph, target).items():
            if top(module) in heavy:
                problems.append(" -> ".join(chain))
    assert not problems, "app would load torch & co. through:\n" + "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_every_module_has_a_layer(graph, package):
    modules = {i.source for i in graph if top(i.source) == package}
    for module in sorted(modules):
        layer_of(package, module)  # raises with the module's name


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_only_go_down(graph, package):
    bad = upward_imports(graph, package)
    assert not bad, f"imports that run sideways or up the layers of {package}:\n" + "\n".join(bad)


def test_the_layer_check_fails_on_a_planted_upward_import(graph):
    """The contract can fail: an import planted from the ground floor up (errors -> inference.engine), from
    imaging up into the model, and from the viewer up into the window, is each reported."""
    ground = ROOT / "medflip_core" / "errors.py"
    planted = [
        Import("medflip_core.errors", "medflip_core.inference.engine", ground, 1, True),
        Import("medflip_core.imaging.preprocess", "medflip_core.model.export", ground, 2, False),
        Import("app.viewer.viewer", "app.window.main_window", ground, 3, True),
        Import("medflip_core.finetune.probe", "medflip_core.evaluation.evaluate", ground, 4, False),  # same layer
    ]
    assert len(upward_imports([*graph, *planted], "medflip_core")) == len(upward_imports(graph, "medflip_core")) + 3
    assert len(upward_imports([*graph, *planted], "app")) == len(upward_imports(graph, "app")) + 1


def test_a_qt_import_in_core_is_caught(graph):
    planted = Import("medflip_core.inference.heatmap", "PySide6.QtGui", ROOT / "medflip_core", 1, True)
    assert layer_violations([*graph, planted], "medflip_core") == [str(planted)]


def test_core_has_no_import_cycle(graph):
    cycles = core_cycles(graph)
    assert not cycles, "import cycles in medflip_core:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_window_starts_without_scikit_learn_or_pydicom():
    """scikit-learn costs ~2 s of start-up (issue 24's < 2 s window): the window imports it only when a metric runs;
    pydicom (~0.15-0.3 s) only when a DICOM is decoded in the window's process (the readers decode in theirs)."""
    import os
    import subprocess
    import sys

    code = ("import sys; import app.window.main_window, app.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'torch', 'pydicom')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


LONG_MODULE = 450  # lines; a longer module says at its top why it is not split


def test_long_modules_say_why():
    """The folders show the architecture only if the modules in them stay small: a module of medflip_core, app
    or trainer over LONG_MODULE lines carries a paragraph starting with 'Why' in its docstring."""
    unexplained = []
    for path in sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LONG_MODULE:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if not any(line.startswith("Why ") for line in doc.splitlines()):
                unexplained.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not unexplained, "split these modules or say why at their top:\n" + "\n".join(unexplained)
