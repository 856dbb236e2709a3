"""Local label -> DiT class id. Built-in ImageNet subsets (ids in local label order, as GLaD/PReDD order them),
a user JSON map, or the identity (for a DiT trained on the set's own classes)."""

import json
from collections.abc import Sequence

from diver_lite.errors import InputError

IMAGENET_SUBSETS: dict[str, tuple[int, ...]] = {
    "imagenette": (0, 217, 482, 491, 497, 566, 569, 571, 574, 701),
    "imagewoof": (193, 182, 258, 162, 155, 167, 159, 273, 207, 229),
    "imagemeow": (281, 282, 283, 284, 285, 291, 292, 290, 289, 287),
    "imagesquawk": (84, 130, 88, 144, 145, 22, 96, 9, 100, 89),
    "imagefruit": (953, 954, 949, 950, 951, 957, 952, 945, 943, 948),
    "imageyellow": (309, 986, 954, 951, 987, 779, 599, 291, 72, 11),
}


def parse_class_map_json(text: str, source: str = "class map") -> tuple[int, ...]:
    """A JSON list `[id0, id1, ...]` or an object `{"0": id0, "1": id1, ...}` keyed by local label."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source} is not valid JSON: {e}", "write a list [id0, id1, ...] or {\"0\": id0, ...}")
    if isinstance(data, dict):
        try:
            items = sorted((int(k), v) for k, v in data.items())
        except ValueError:
            raise InputError(f"{source} has a key that is not a local label number", "keys must be 0, 1, 2, ...")
        if [k for k, _ in items] != list(range(len(items))):
            raise InputError(f"{source} must map every local label 0..{len(items) - 1}", "add the missing labels")
        data = [v for _, v in items]
    if not isinstance(data, list) or not data or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                         for v in data):
        raise InputError(f"{source} must hold non-negative integer class ids", "e.g. [0, 217, 482]")
    return tuple(data)


def resolve_class_map(subset: str | None, class_map: Sequence[int] | None, num_labels: int,
                      num_model_classes: int, present: Sequence[int] | None = None) -> tuple[int, ...]:
    """The DiT class id of each local label 0..num_labels-1, checked against the model's class count for the
    labels the set uses (`present`; default: all)."""
    if subset is not None and class_map is not None:
        raise InputError("both a subset and a class map were given", "pass only one of --subset / --class-map")
    if subset is not None:
        key = subset.lower()
        if key not in IMAGENET_SUBSETS and key != "identity":
            raise InputError(f"unknown subset '{subset}'",
                             f"choose one of: identity, {', '.join(sorted(IMAGENET_SUBSETS))}")
        ids = tuple(range(num_labels)) if key == "identity" else IMAGENET_SUBSETS[key]
    elif class_map is not None:
        ids = tuple(class_map)
    else:
        ids = tuple(range(num_labels))
    if len(ids) < num_labels:
        raise InputError(f"the class map covers {len(ids)} labels but the set has {num_labels}",
                         "give a map with an id for every local label")
    used = sorted(set(present)) if present is not None else range(num_labels)
    bad = [(label, ids[label]) for label in used if not 0 <= ids[label] < num_model_classes]
    if bad:
        pairs = ", ".join(f"{label} -> {i}" for label, i in bad[:5])
        raise InputError(f"the set's labels map to class ids outside the model's {num_model_classes} classes "
                         f"({pairs})", "use --subset/--class-map that matches the model (ImageNet subsets need "
                         "an ImageNet DiT), or check the set's labels")
    return ids[:num_labels]
