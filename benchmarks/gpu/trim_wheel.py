"""Repack a wheel without the shared libraries a machine does not need (bitsandbytes ships one per CUDA version,
~40 MiB in all): keeps every file but the .so files whose names match no --keep pattern, and rewrites RECORD.

    python3 benchmarks/gpu/trim_wheel.py WHEEL OUT_DIR --keep libbitsandbytes_cpu --keep libbitsandbytes_cuda130
"""

import argparse
import base64
import hashlib
import zipfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--keep", action="append", default=[])
    args = ap.parse_args()
    name, version, *rest = args.wheel.name.split("-")
    target = args.out / "-".join([name, f"{version}+trimmed", *rest])   # a local version: the name says trimmed
    records = []
    with zipfile.ZipFile(args.wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        record_name = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        for item in src.infolist():
            n = item.filename
            if n == record_name:
                continue
            if n.endswith(".so") and not any(k in Path(n).name for k in args.keep):
                continue
            data = src.read(n)
            new_name = n.replace(f"{name}-{version}.dist-info", f"{name}-{version}+trimmed.dist-info")
            if new_name.endswith(".dist-info/METADATA"):
                data = data.replace(f"Version: {version}".encode(), f"Version: {version}+trimmed".encode(), 1)
            dst.writestr(new_name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{new_name},sha256={digest},{len(data)}")
        new_record = record_name.replace(f"{name}-{version}.dist-info", f"{name}-{version}+trimmed.dist-info")
        dst.writestr(new_record, "\n".join(records + [f"{new_record},,"]) + "\n")
    print(f"{target.name}: {target.stat().st_size / 2**20:.1f} MiB (was {args.wheel.stat().st_size / 2**20:.1f})")


if __name__ == "__main__":
    main()
