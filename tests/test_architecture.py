"""The shape of the house, checked: the floors the README draws (each module imports only from
its own floor and the floors below), no import cycles, commands apart from the math, one cupy
importer, one atomic writer. Read from the source with ``ast`` (function-level imports count)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "minicnn")


def modules():
    """{dotted name: (path, parsed tree)} for every module of the package."""
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".")
                name = name[:-len(".__init__")] if name.endswith(".__init__") else name
                with open(path) as src:
                    out[name] = (path, ast.parse(src.read(), path))
    return out


MODULES = modules()


def is_command(name):
    """Command modules parse arguments and report; everything else is library."""
    last = name.rsplit(".", 1)[-1]
    return last == "__main__" or name in ("minicnn.predict", "minicnn.train", "minicnn.cli") \
        or name.startswith("minicnn.bench")


def imports(name):
    """The minicnn modules that module ``name`` imports, anywhere in its body."""
    path, tree = MODULES[name]
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    found.add(f"{target}.{alias.name}")
                elif target in MODULES:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
    found.discard(name)
    return found


def external_imports(name):
    _, tree = MODULES[name]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def calls(name, function, owner=None):
    """Lines where module ``name`` calls ``function`` (as ``owner.function`` when owner is given)."""
    _, tree = MODULES[name]
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if owner is None and getattr(f, "id", None) == function:
            lines.append(node.lineno)
        elif isinstance(f, ast.Attribute) and f.attr == function and \
                (owner is None or getattr(f.value, "id", None) == owner):
            lines.append(node.lineno)
    return lines


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(v):
        state[v] = "open"
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == "open":
                return stack[stack.index(w):] + [w]
            if w not in state:
                cycle = visit(w)
                if cycle:
                    return cycle
        stack.pop()
        state[v] = "done"
        return None

    for v in sorted(graph):
        if v not in state:
            cycle = visit(v)
            if cycle:
                return cycle
    return None


# The floors of README.md's layout, lowest first: (name, the modules on it).
FLOORS = [
    ("the textbook", ("minicnn.errors", "minicnn.backend", "minicnn.layers", "minicnn.gradcheck")),
    ("the machine", ("minicnn.fast",)),
    ("the network, pixels in and out", ("minicnn.network", "minicnn.preprocess", "minicnn.optim", "minicnn.files",
                                        "minicnn.checks",
                                        "minicnn.progress", "minicnn.images", "minicnn.classify", "minicnn.plotting")),
    ("architectures, datasets, models, weights", ("minicnn.vgg19", "minicnn.world", "minicnn.shapes",
                                                  "minicnn.models", "minicnn.training", "minicnn.weights")),
    ("the methods", ("minicnn.saliency", "minicnn.visualize", "minicnn.curves", "minicnn.hierarchy",
                     "minicnn.shortcut")),
    ("commands and the Python API", ("minicnn.cli", "minicnn.api", "minicnn.predict", "minicnn.train", "minicnn.atlas",
                                     "minicnn.bench", "minicnn")),
]


def floor_of(name):
    """The floor of a module: its own command (``__main__``) is on the top floor; otherwise the
    floor that lists it or the package holding it (the longest match)."""
    if name.rsplit(".", 1)[-1] == "__main__":
        return len(FLOORS) - 1
    best = None
    for k, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (k, len(prefix))
    assert best is not None, f"{name} is on no floor: add it to FLOORS (and to the README's layout)"
    return best[0]


def test_every_module_imports_only_from_its_floor_and_below():
    for name in MODULES:
        here = floor_of(name)
        for other in imports(name):
            there = floor_of(other)
            assert there <= here, (f"{name} ({FLOORS[here][0]}) imports {other}, which is upstairs "
                                   f"({FLOORS[there][0]})")


def test_the_textbook_imports_nothing_from_the_machine():
    """minicnn.layers is the reference: it needs the array module and nothing faster."""
    assert imports("minicnn.layers") == {"minicnn.backend"}
    for name in MODULES:
        if name.startswith("minicnn.fast"):
            assert imports(name) <= {"minicnn.backend", "minicnn.layers"} | {m for m in MODULES if m.startswith("minicnn.fast")}, name


def test_floor_of_places_commands_on_top():
    assert floor_of("minicnn.saliency.__main__") == len(FLOORS) - 1
    assert floor_of("minicnn.saliency.methods") == 4 and floor_of("minicnn.fast.cpu") == 1
    assert floor_of("minicnn") == len(FLOORS) - 1 and floor_of("minicnn.layers") == 0


def test_no_import_cycles():
    graph = {name: imports(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_commands_parse_arguments_or_print():
    for name in MODULES:
        if is_command(name):
            continue
        assert "argparse" not in external_imports(name), f"{name} imports argparse: move its CLI to a command"
        assert not calls(name, "print"), f"{name} prints (lines {calls(name, 'print')}): return values instead"


def test_every_command_has_a_thin_entry_point():
    """python -m minicnn.X works for every documented command."""
    for command in ("weights", "saliency", "visualize", "curves", "hierarchy", "shortcut", "bench", "atlas"):
        assert f"minicnn.{command}.__main__" in MODULES, command
    for command in ("predict", "train"):
        assert f"minicnn.{command}" in MODULES


def test_only_backend_imports_cupy():
    importers = [name for name in MODULES if "cupy" in external_imports(name)]
    assert importers == ["minicnn.backend"], importers


def test_one_atomic_writer():
    """Files are renamed into place in one function (minicnn.files.atomic_write) only."""
    for name in MODULES:
        if name != "minicnn.files":
            assert not calls(name, "replace", owner="os"), (name, calls(name, "replace", owner="os"))
            assert not calls(name, "rename", owner="os"), name
            assert not calls(name, "mkstemp"), name


def test_every_subpackage_is_packaged():
    """pyproject.toml lists the packages by hand (two of them are mapped from other folders):
    a new subpackage must be added there, or an installed minicnn would lack it."""
    tomllib = __import__("pytest").importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = {name for name, (path, _) in MODULES.items() if path.endswith("__init__.py")}
    assert found <= listed, found - listed
