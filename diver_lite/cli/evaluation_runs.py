"""The runs of `diver-lite evaluate` kept across sessions: each finished student run appended to
OUT/.diver-lite/runs.jsonl (so `--resume` skips it), and the runs of an earlier results.json taken in with
`--import-runs`, refused when its settings or the sets it evaluated differ."""

import json
from pathlib import Path


def set_key(keys: dict, label: str, seed: int) -> str | None:
    """The fingerprint of the set a (label, seed) run was trained on."""
    key = keys.get(label)
    return key.get(str(seed)) if isinstance(key, dict) else key


def config_record(cfg) -> dict:
    """The evaluation settings as results.json records them (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}


def imported_runs(path: Path, cfg, split: str) -> tuple[dict, dict]:
    """{(set, student, seed): (ema %, raw %)} of a results.json written by this command, refused unless its protocol
    settings (all but the students and seeds) and split are this evaluation's; and its {set: fingerprint} (empty in
    a results.json from before fingerprints were recorded)."""
    from diver_lite.errors import ConfigError, InputError

    try:
        record = json.loads(path.read_text())
        theirs, results = record["config"], record["results"]
        for name, value, kind in (("config", theirs, dict), ("results", results, dict),
                                  ("seeds", theirs.get("seeds"), list)):
            if not isinstance(value, kind):
                raise TypeError(f"its {name} is a {type(value).__name__}, not a {kind.__name__}")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a results.json of diver-lite evaluate ({exc})",
                         "give the results.json an earlier `diver-lite evaluate -o` wrote") from None
    ours = config_record(cfg)
    differ = sorted(k for k in ours if k not in ("students", "seeds") and theirs.get(k) != ours[k])
    if differ or record.get("split", "test") != split:
        raise ConfigError(f"{path} was evaluated with other settings ({', '.join(differ) or 'split'} differ)",
                          "use the same --protocol, --epochs and --split as that evaluation, or drop --import-runs")
    runs = {}
    try:
        for label, result in results.items():
            for student, r in result.get("students", {}).items():
                raws = r.get("raw_runs") or [None] * len(r["runs"])
                for seed, ema, raw in zip(theirs["seeds"], r["runs"], raws):
                    for v in (ema, raw):   # accuracies in %: anything else is not a run of this command
                        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  and 0 <= v <= 100):
                            raise ValueError(f"{label}: {student} seed {seed} has accuracy {v!r}, not 0-100 %")
                    runs[(str(label), str(student), int(seed))] = (ema, raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not a results.json of diver-lite evaluate ({exc})",
                         "give the results.json an earlier `diver-lite evaluate -o` wrote") from None
    fingerprints = record.get("fingerprints") or {}
    if not isinstance(fingerprints, dict) or not all(isinstance(v, (str, dict)) for v in fingerprints.values()):
        raise InputError(f"{path} is not a results.json of diver-lite evaluate (its fingerprints are damaged)",
                         "give the results.json an earlier `diver-lite evaluate -o` wrote")
    return runs, fingerprints


def check_imported_sets(path: Path | None, theirs: dict, keys: dict) -> None:
    """Refuse a SET whose images and labels are not the ones the imported results.json (at `path`, with the
    fingerprints `theirs`) evaluated under that path; sets it has no fingerprint of are trusted by path."""
    from diver_lite.errors import ConfigError

    def differs(label, key):
        mine, other = (k if isinstance(k, dict) else {"*": k} for k in (key, theirs[label]))
        if "*" in mine or "*" in other:      # one of them per seed, the other not: not the same set
            return mine != other
        return any(other[s] != k for s, k in mine.items() if s in other)

    changed = [label for label, key in keys.items() if label in theirs and differs(label, key)]
    if changed:
        raise ConfigError(f"{changed[0]} is not the set {path} evaluated under that path (its images or labels "
                          "differ)", "import only runs of unchanged sets: recover or distill it again as it was, "
                          "or drop --import-runs")


def kept_runs(out: Path, cfg, keys: dict, test_x, test_y):
    """Finished runs of an earlier, interrupted evaluation with the same sets, test split and settings (from
    OUT/.diver-lite/runs.jsonl), and the function that appends each new one as it finishes."""
    import hashlib

    import numpy as np

    from diver_lite.machine import cpu_name

    h = hashlib.sha256(json.dumps({k: v for k, v in config_record(cfg).items() if k not in ("students", "seeds")},
                                  sort_keys=True).encode())
    h.update(np.ascontiguousarray(test_x).tobytes()[:1 << 20] + np.ascontiguousarray(test_y).tobytes())
    setting = h.hexdigest()[:16]
    path = out / ".diver-lite" / "runs.jsonl"
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                if row["setting"] != setting:
                    continue
                for label in keys:   # a run is the same run for every label whose set it trained on
                    if set_key(keys, label, row["seed"]) == row["set"]:
                        done[(label, row["student"], row["seed"])] = (row["ema"], row["raw"])
            except (ValueError, KeyError, TypeError):
                continue            # a line cut off by a kill: that run is simply done again

    def keep(item, accuracies):
        with open(path, "a") as f:
            f.write(json.dumps({"setting": setting, "set": set_key(keys, item[0], item[2]), "student": item[1],
                                "seed": item[2], "cpu": cpu_name(),
                                "ema": accuracies[0], "raw": accuracies[1]}) + "\n")
    return done, keep
