"""The import direction of docs/ARCHITECTURE.md, checked on the code: this file holds the rules.

Data flows one way. A module may import its own top-level package and any package of a lower layer;
never one of its own layer or a higher one. A function-local import of artlens code is allowed only
for modules that need an optional extra, in the CLI (whose commands load their libraries when they
run, so that ``artlens --help`` starts fast), and for a base class that hands a location to its own
subclass in a sibling module (``Collection.open`` of a ``postgresql://`` URL).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "artlens"

LAYERS: list[set[str]] = [  # lowest first
    {"artlens", "errors"},
    {"files", "vectors", "devices"},
    {"settings", "progress", "metrics", "storage"},
    {"imaging"},
    {"config"},
    {"catalog", "features", "thumbnails", "demo"},
    {"models", "hashing"},
    {"train"},
    {"index"},
    {"postgres"},
    {"collection"},
    {"federated", "search"},
    {"recommend", "annotation", "copyright", "artists", "study", "federation"},
    {"privacy"},
    {"reports"},
    {"api", "web"},
    {"cli"},
    {"__main__"},
]
LAYER = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# Modules that need an optional extra: importing them inside a function keeps the base install working.
FLOWER = ("client_app", "coordinator", "deploy", "server_app", "simulation", "strategies")
OPTIONAL = (*(f"artlens.federated.{m}" for m in FLOWER), "artlens.features.hub", "artlens.copyright.sscd")

# A base class opening its subclass (which imports the base, so the import cannot be at the top).
SUBCLASS_DISPATCH = {("artlens.collection.folder", "artlens.collection.postgres.PostgresCollection")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported artlens module, line, function-local?) for every import in a file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top_level = set()
    for node in tree.body:
        nodes = ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]
        top_level.update(id(n) for n in nodes)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [f"{source}.{a.name}" for a in node.names]  # `from artlens.features import hub` names the module
        else:
            continue
        for name in names:
            if name == "artlens" or name.startswith("artlens."):
                yield name, node.lineno, id(node) not in top_level


def _group(module: str) -> str:
    """The top-level package or module of ``artlens`` a name belongs to (``artlens`` for its own names)."""
    parts = module.split(".")
    if len(parts) > 1 and ((SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").exists()):
        return parts[1]
    return "artlens"


def _files():
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer():
    groups = {_group(_module_name(p)) for p in _files()}
    assert groups <= set(LAYER), f"give these a layer in LAYERS: {sorted(groups - set(LAYER))}"


def test_imports_point_down():
    wrong = []
    for path in _files():
        importer = _group(_module_name(path))
        for name, line, _ in _imports(path):
            imported = _group(name)
            if importer == imported or LAYER[imported] < LAYER[importer]:
                continue
            wrong.append(f"{path.relative_to(SRC.parent)}:{line} {importer} -> {imported}")
    assert not wrong, "imports against the layers of docs/ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_function_local_imports_only_for_optional_extras():
    wrong = []
    for path in _files():
        module = _module_name(path)
        if _group(module) == "cli":
            continue
        for name, line, local in _imports(path):
            if local and not name.startswith(OPTIONAL) and (module, name) not in SUBCLASS_DISPATCH:
                wrong.append(f"{path.relative_to(SRC.parent)}:{line} imports {name} inside a function")
    assert not wrong, "move these imports to the top of the module:\n" + "\n".join(wrong)


_WITHOUT_FLOWER = """
import importlib, pkgutil, sys
sys.modules["flwr"] = None  # as if the federated extra were not installed
import artlens.federated as package

def imports(name):
    try:
        importlib.import_module(f"artlens.federated.{name}")
        return True
    except ImportError:
        return False

print(",".join(sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not imports(m.name))))
"""


def test_the_optional_federated_modules_are_exactly_those_that_need_flower():
    out = subprocess.run([sys.executable, "-c", _WITHOUT_FLOWER], capture_output=True, text=True, check=True).stdout
    assert out.strip().split(",") == sorted(FLOWER)
