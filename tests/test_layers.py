"""The layer rule of DESIGN.md, checked by parsing imports (nothing is imported).

Imports point down only: io -> algorithms (tools, metrics, fusion, simulate,
data) -> learn (torch, MONAI) -> applications (server, cli, bench).  Every
``import`` and ``from ... import`` in every module under ``src/segloop`` counts,
also inside functions and under ``if TYPE_CHECKING:``, and so do
``importlib.import_module("...")`` and ``__import__("...")`` with a literal name.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# --------------------------------------------------------------------------- the rule table
# Edit these tables to change the architecture; the checks below only read them.

SERVER_STACK = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn")
LEARN_STACK = ("torch", "monai", "onnx", "onnxruntime", "onnxscript")
PEERS = ("cv2", "itk")  # tools we measure ourselves against, never depend on below the apps

ALWAYS_ALLOWED = ("segloop", "segloop.errors")  # the root package only re-exports errors

# package -> the other segloop packages it may import (its own is always allowed)
ALLOWED_SEGLOOP: dict[str, tuple[str, ...]] = {
    "segloop.errors": (),
    "segloop.io": (),
    "segloop.data": ("segloop.io",),
    "segloop.metrics": ("segloop.io", "segloop.data"),
    "segloop.tools": ("segloop.io", "segloop.data", "segloop.metrics"),
    "segloop.fusion": ("segloop.io", "segloop.data", "segloop.metrics"),
    "segloop.simulate": ("segloop.io", "segloop.data", "segloop.tools", "segloop.metrics"),
    "segloop.learn": (
        "segloop.io", "segloop.data", "segloop.tools", "segloop.metrics", "segloop.fusion",
        "segloop.simulate",
    ),
    "segloop.server": ("*",),
    "segloop.cli": ("*",),
    "segloop.bench": ("*",),
    "segloop.demo": ("*",),
}  # fmt: skip

# package -> third-party top-level packages it may not import
FORBIDDEN_THIRD_PARTY: dict[str, tuple[str, ...]] = {
    "segloop.errors": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.io": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.data": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.metrics": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.tools": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.fusion": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.simulate": LEARN_STACK + SERVER_STACK + PEERS,
    "segloop.learn": SERVER_STACK,
    "segloop.server": (),
    "segloop.cli": (),
    "segloop.bench": (),
    "segloop.demo": (),
}

# --------------------------------------------------------------------------- the checker


def module_name(path: Path, src: Path) -> str:
    """Dotted module name of a file below ``src`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _literal_import_call(node: ast.Call) -> str | None:
    """The module name of ``importlib.import_module("x")`` or ``__import__("x")``."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute names a module imports; relative imports resolved against its package.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule).
    A relative import that climbs above the top-level package yields a name
    starting with ``<beyond top level>``, which no rule allows.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 >= len(parts):
                    found.add(f"<beyond top level>.{node.module or ''}")
                    continue
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.Call) and (name := _literal_import_call(node)):
            if not name.startswith("."):
                found.add(name)
    return found


def scan(src: Path, top: str = "segloop") -> dict[str, set[str]]:
    """Map every module of package ``top`` under ``src`` to the names it imports."""
    return {
        module_name(path, src): imports_of(path, module_name(path, src))
        for path in sorted((src / top).rglob("*.py"))
    }


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _package_of(module: str, top: str = "segloop") -> str:
    """``segloop.tools.livewire`` -> ``segloop.tools``; the root package is ``segloop``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[0] == top else parts[0]


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every ``module -> forbidden import`` under the rule tables, sorted."""
    bad = []
    for module, names in imports.items():
        package = _package_of(module)
        if package not in ALLOWED_SEGLOOP and package != "segloop":
            bad.append(f"{module} -> (package {package} has no row in ALLOWED_SEGLOOP)")
            continue
        allowed = ALLOWED_SEGLOOP.get(package, ())
        forbidden = FORBIDDEN_THIRD_PARTY.get(package, LEARN_STACK + SERVER_STACK)
        for name in sorted(names):
            if name.startswith("<beyond top level>"):
                bad.append(f"{module} -> {name}")
            elif name.split(".")[0] == "segloop":
                target = _package_of(name)
                if target not in ALLOWED_SEGLOOP:  # an attribute of the root, e.g. __version__
                    target = "segloop"
                ok = target in (package, *ALWAYS_ALLOWED) or "*" in allowed or target in allowed
                if not ok:
                    bad.append(f"{module} -> {name}")
            elif _within(name, forbidden):
                bad.append(f"{module} -> {name}")
    return sorted(bad)


# --------------------------------------------------------------------------- the tests


def test_the_rule_tables_agree():
    assert set(ALLOWED_SEGLOOP) == set(FORBIDDEN_THIRD_PARTY)
    for package, allowed in ALLOWED_SEGLOOP.items():
        assert all(a == "*" or a in ALLOWED_SEGLOOP for a in allowed), package


def test_segloop_obeys_the_layer_rule():
    files = sorted((SRC / "segloop").rglob("*.py"))
    imports = scan(SRC)
    assert len(files) >= 2  # at least the root package and errors.py
    assert len(imports) >= len(files), "the scan missed modules"
    bad = violations(imports)
    assert not bad, "imports that break the layer rule of DESIGN.md:\n" + "\n".join(bad)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_relative_imports_are_resolved(tmp_path):
    src = _write(
        tmp_path,
        {
            "segloop/__init__.py": "",
            "segloop/tools/__init__.py": "from . import graph\nfrom .graph import cut\n",
            "segloop/tools/graph.py": (
                "from . import helpers\nfrom ..metrics.overlap import dice\n"
                "from .. import data\nfrom ... import beyond\n"
                "def f():\n    import numpy as np\n    return np\n"
            ),
        },
    )
    found = scan(src)
    assert found["segloop.tools"] == {
        "segloop.tools",
        "segloop.tools.graph",
        "segloop.tools.graph.cut",
    }
    assert found["segloop.tools.graph"] == {
        "segloop.tools",
        "segloop.tools.helpers",
        "segloop.metrics.overlap",
        "segloop.metrics.overlap.dice",
        "segloop",
        "segloop.data",
        "<beyond top level>.",
        "numpy",
    }


def test_the_checker_catches_violations(tmp_path):
    src = _write(
        tmp_path,
        {
            "segloop/__init__.py": "from segloop.errors import SegloopError\n",
            "segloop/errors.py": "",
            "segloop/io/__init__.py": "from .reader import read\n",
            "segloop/io/reader.py": (
                "import numpy\nfrom segloop import errors\nfrom ..tools import livewire\n"
                "def read():\n    import torch\n    return torch\n"
            ),
            "segloop/tools/livewire.py": (
                "from segloop.metrics import dice\nfrom segloop import simulate\n"
                "import importlib\nM = importlib.import_module('segloop.learn.models')\n"
            ),
            "segloop/metrics/__init__.py": "from segloop.tools.livewire import trace\n",
            "segloop/simulate/clicks.py": "from segloop.tools import livewire\nimport scipy\n",
            "segloop/learn/train.py": "import torch\nfrom fastapi import APIRouter\n",
            "segloop/server/app.py": "import fastapi\nfrom segloop.learn import train\n",
            "segloop/viz/plot.py": "import matplotlib\n",
        },
    )
    imports = scan(src)
    assert len(imports) == len(list((src / "segloop").rglob("*.py")))
    assert violations(imports) == [
        "segloop.io.reader -> segloop.tools",
        "segloop.io.reader -> segloop.tools.livewire",
        "segloop.io.reader -> torch",
        "segloop.learn.train -> fastapi",
        "segloop.learn.train -> fastapi.APIRouter",
        "segloop.metrics -> segloop.tools.livewire",
        "segloop.metrics -> segloop.tools.livewire.trace",
        "segloop.tools.livewire -> segloop.learn.models",
        "segloop.tools.livewire -> segloop.simulate",
        "segloop.viz.plot -> (package segloop.viz has no row in ALLOWED_SEGLOOP)",
    ]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("segloop/data/phantoms.py", "import monai\n"),
        ("segloop/fusion/staple.py", "from segloop.simulate import annotator\n"),
        ("segloop/metrics/overlap.py", "from segloop.fusion import vote\n"),
        ("segloop/io/nifti.py", "from segloop.data import phantom_2d\n"),
        ("segloop/simulate/user.py", "from segloop.cli import main\n"),
        ("segloop/learn/serve.py", "import uvicorn\n"),
        ("segloop/tools/brush.py", "from sqlalchemy.orm import Session\n"),
    ],
)
def test_each_kind_of_violation_is_reported(tmp_path, module, source):
    src = _write(tmp_path, {"segloop/__init__.py": "", module: source})
    bad = violations(scan(src))
    assert bad and all(line.startswith(module_name(tmp_path / module, src)) for line in bad)
