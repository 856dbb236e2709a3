"""Registries by discovery: each module of a package that defines ENTRY adds it, so adding a layout, a memory
tactic, an ONNX graph or a sampler is one new file in its folder."""

import importlib
import pkgutil


def discover(package: str, attribute: str = "ENTRY") -> list:
    """`attribute` of every module in `package`, sorted by their `order` (then name)."""
    pkg = importlib.import_module(package)
    entries = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        entry = getattr(module, attribute, None)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (getattr(e, "order", 100), getattr(e, "name", "")))


def module_names(package: str) -> list[str]:
    """The names of a registry's modules, without importing them (the CLI's choices; each module's ENTRY has its
    module's name, tested)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    return sorted(info.name for info in pkgutil.iter_modules(spec.submodule_search_locations)
                  if not info.name.startswith("_"))
