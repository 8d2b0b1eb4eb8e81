"""The package's import structure: no import cycles, every module imports
alone, and the binding has five named callers.

What counts as an import, for the cycle check: every ``import`` and
``from ... import`` statement of a module, wherever it stands (module
level, inside a function, under ``if``/``try``), resolved to the package's
modules:
  - ``from .a import b`` imports ``a`` (and ``a.b`` when b is a module);
  - ``from . import b`` imports module ``b``, or the package's
    ``__init__`` when b is a name defined there (``__version__``);
  - ``import dropout_engine.a.b`` imports ``a.b``;
  - importing ``a.b`` also runs package ``a``'s ``__init__``, which counts
    unless ``a`` is a package the importer itself is in.
Not counted: a module's implicit import of the packages it is in (Python
always runs them first, so a package's ``__init__`` may import its
submodules), and imports by string through ``importlib`` (the package uses
them only to load its own submodules lazily, PEP 562, in ``__init__.py``,
``keras/__init__.py`` and ``keras/_reexport.py``).
"""
import ast
import pathlib
import subprocess
import sys

import dropout_engine

PKG = "dropout_engine"
ROOT = pathlib.Path(dropout_engine.__file__).parent
BINDING = f"{PKG}._engine"
# The binding's callers, one job each: the C net of models and the kernels
# of losses/metrics/constraints; the public kernel API (ops, and the
# keras.activations functions on arrays); ISA, threads, build; rows of a
# memmap larger than memory read in C (pread without the GIL).
BINDING_CALLERS = {f"{PKG}._net", f"{PKG}.ops", f"{PKG}.activations", f"{PKG}._runtime",
                   f"{PKG}.training.memmap_adapter"}


def _modules():
    """{dotted name: source path} of the package's Python modules (a
    package is its __init__.py)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PKG, *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name, path, known):
    """The modules of the package that module `name` imports (see the
    module docstring for the rules)."""
    parts = name.split(".")
    ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    deps = set()

    def add(module):
        # The module and the packages above it that importing it runs,
        # but for the importer's own (Python ran those first).
        while module and module not in ancestors and module != name:
            if module in known:
                deps.add(module)
            module = module.rpartition(".")[0]

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            if module not in known:
                continue
            subs = [f"{module}.{a.name}" for a in node.names
                    if f"{module}.{a.name}" in known]
            for sub in subs:
                add(sub)
            add(module)
            if len(subs) < len(node.names) and module != name:
                deps.add(module)   # names from its body, even an ancestor's
    return deps


def _graph():
    mods = _modules()
    known = set(mods) | {BINDING}
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_walk_sees_the_kinds_of_import_it_counts():
    # The rules on modules of this package whose imports are known.
    g = _graph()
    assert f"{PKG}._engine" in g[f"{PKG}._runtime"]             # from . import _engine
    assert f"{PKG}._validation" in g[f"{PKG}._runtime"]         # from ._validation import
    assert f"{PKG}.callbacks.base" in g[f"{PKG}.callbacks.history"]
    assert PKG in g[f"{PKG}._sysinfo"]                           # from . import __version__
    assert f"{PKG}.quantization" in g[f"{PKG}.layers.core"]      # inside a method
    assert f"{PKG}.model" not in g[f"{PKG}._model_file"]
    # Importing callbacks.progbar runs callbacks/__init__.py first.
    assert {f"{PKG}.callbacks", f"{PKG}.callbacks.progbar"} <= g[f"{PKG}.progbar"]
    assert PKG not in g[f"{PKG}.ops"]                              # from . import _validation


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_binding_has_its_named_callers():
    callers = {m for m, deps in _graph().items() if BINDING in deps}
    assert callers == BINDING_CALLERS


def test_each_module_imports_alone():
    # One fresh interpreter; before each module, every module of the package
    # is dropped but the binding (an extension module cannot be initialised
    # twice; it imports nothing of the package).  A missing optional
    # dependency (scikit-learn for sklearn.py) is not a failure.
    code = f"""
import importlib, sys
failed = []
for name in {sorted(_modules())!r}:
    for m in [m for m in sys.modules if m.split(".")[0] == {PKG!r}]:
        if m != {BINDING!r}:
            del sys.modules[m]
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == {PKG!r}:
            failed.append(f"{{name}}: {{e!r}}")
    except Exception as e:
        failed.append(f"{{name}}: {{e!r}}")
print("\\n".join(failed))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", r.stdout
