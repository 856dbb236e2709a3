"""The package's layers, read from its source: every import points down (or within its own package), and no two
modules import each other, directly or round a circle (imports inside functions count too; those under
`if TYPE_CHECKING:` do not run and do not count)."""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1] / "diver_lite"
# Lowest first; a package may import its own layer's modules only within itself.
LAYERS = [("errors",), ("registry", "machine", "output_policy", "options"), ("core",), ("layouts",), ("models",),
          ("memory", "export"), ("backends",), ("experiments", "pipeline"), ("profiling",), ("cli", "__init__")]
RANK = {name: k for k, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, set[str]]:
    """{module: the diver_lite modules it imports}."""
    graph = {}
    for f in ROOT.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT.parent).with_suffix("").parts)
        targets = set()
        tree = ast.parse(f.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:      # annotations only: no import at run time
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("diver_lite."):
                base = node.module
                for alias in node.names:     # `from diver_lite.core import config` imports a module
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if (ROOT.parent / (sub.replace(".", "/") + ".py")).is_file() else base)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("diver_lite.")}
        graph[name] = {t for t in targets if t != name}
    return graph


def package(module: str) -> str:
    return module.split(".")[1]


def test_every_import_points_down_a_layer_or_stays_in_its_package():
    upward = [(m, t) for m, targets in modules().items() for t in targets
              if package(t) != package(m) and RANK[package(t)] >= RANK[package(m)]]
    assert upward == [], upward


def test_no_import_circle():
    graph = modules()
    graph = {m: {t for t in ts if t in graph or f"{t}.__init__" in graph} for m, ts in graph.items()}
    state, circles = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph.get(m, ())):
            t = t if t in graph else f"{t}.__init__"
            if state.get(t) == "open":
                circles.append(path[path.index(t):] + [t] if t in path else [m, t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # A package's __init__ re-exporting its modules is not a circle of behaviour.
    circles = [c for c in circles if not any(x.endswith("__init__") for x in c)]
    assert circles == [], circles


def test_the_memory_runtime_places_models_it_is_handed_and_never_chooses_how_to_load_them():
    """models/ opens a source once (models/open.py) and hands the result on; memory/ fills, casts and places it. An
    import of the loaders from memory/ would bring back the second, competing choice of how a source is loaded."""
    loaders = {"diver_lite.models.load", "diver_lite.models.weightless", "diver_lite.models.source",
               "diver_lite.models.open"}
    graph = modules()
    reaching = {m: sorted(graph[m] & loaders) for m in graph if package(m) == "memory" and graph[m] & loaders}
    assert reaching == {}, reaching
    import diver_lite.memory.runtime as runtime

    assert not hasattr(runtime, "open_models") and not hasattr(runtime, "load_models")
