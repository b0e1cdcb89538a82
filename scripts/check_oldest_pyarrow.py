# SPDX-License-Identifier: GPL-3.0-or-later
"""Check that the oldest pyarrow we claim reads the shards with the values today's pyarrow reads.

Creates its own venv (nothing of the project is installed there), installs
``pyarrow==VERSION`` and a numpy it was built for, reads every shard of a
release there, and compares every value of every column with the
interpreter's own pyarrow. Without ``--release``, publishes the embedded
sample with ``python -m builder.publish --dry-run`` first.
Usage: ``python scripts/check_oldest_pyarrow.py [--release FOLDER] [--pyarrow 14.*] [--venv DIR]``.
Exits 0 when every value matches.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]

#: Run by the venv's interpreter: every leaf of every column of each shard, as it reads them, to an .npz.
READ = """
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq

def leaves(array):
    while isinstance(array, pa.ExtensionArray) or pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.storage if isinstance(array, pa.ExtensionArray) else array.flatten()
    return array.to_numpy(zero_copy_only=False)

out, shards = sys.argv[1], sys.argv[2:]
arrays = {}
for i, shard in enumerate(shards):
    table = pq.read_table(shard)
    for name in table.column_names:
        arrays[f"{i}/{name}"] = leaves(table.column(name).combine_chunks())
np.savez(out, **arrays)
print(pa.__version__)
"""


def leaves(array: pa.Array) -> np.ndarray:
    """Every value of a (nested, possibly extension-typed) column, flattened: what ``READ`` writes."""
    while isinstance(array, pa.ExtensionArray) or pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.storage if isinstance(array, pa.ExtensionArray) else array.flatten()
    return array.to_numpy(zero_copy_only=False)


def publish_sample(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "builder.publish", "--dry-run", "--output-dir", str(folder)],
                   cwd=REPO, check=True, capture_output=True)


def make_venv(venv: Path, version: str) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # pyarrow < 16 was built against numpy 1.x.
    numpy = "numpy<2" if version.split(".")[0].isdigit() and int(version.split(".")[0]) < 16 else "numpy"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"pyarrow=={version}", numpy], check=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--release", type=Path, help="a published folder (default: publish the embedded sample)")
    parser.add_argument("--pyarrow", default="14.*", help="the pyarrow version to check (default 14.*)")
    parser.add_argument("--venv", type=Path, help="where to make the venv (default: a temporary folder)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="check-pyarrow-"))
    try:
        release = args.release
        if release is None:
            release = scratch / "release"
            publish_sample(release)
        shards = sorted(release.rglob("*.parquet"))
        if not shards:
            sys.exit(f"no .parquet files under {release}")
        python = make_venv(args.venv or scratch / "venv", args.pyarrow)
        out = scratch / "old.npz"
        done = subprocess.run([str(python), "-c", READ, str(out), *map(str, shards)], capture_output=True, text=True)
        if done.returncode:
            print(f"FAIL: pyarrow {args.pyarrow} cannot read the shards:\n{done.stderr[-2000:]}")
            return 1
        old_version = done.stdout.strip()
        mismatches = []
        with np.load(out, allow_pickle=True) as old:
            for i, shard in enumerate(shards):
                table = pq.read_table(shard)
                for name in table.column_names:
                    if not np.array_equal(old[f"{i}/{name}"], leaves(table.column(name).combine_chunks())):
                        mismatches.append(f"{shard.relative_to(release)}: {name}")
        rows = sum(pq.ParquetFile(s).metadata.num_rows for s in shards)
        if mismatches:
            print(f"FAIL: pyarrow {old_version} reads other values than pyarrow {pa.__version__}: {', '.join(mismatches)}")
            return 1
        print(f"PASS: pyarrow {old_version} and pyarrow {pa.__version__} read {len(shards)} shards, {rows} rows, "
              "every value of every column equal")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
