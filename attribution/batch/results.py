"""Reading a batch job's results folder, without Ray: its manifest, its states' rows (only the
columns asked for), and the summary per policy x explained output x group.

    results/manifest.json      what the job was (policies, settings, groups) and which shards are done
    results/states/*.parquet   one file per shard, every state's row (see ``explain.py`` for the columns)
    results/summary.parquet    per policy, output and group: mean attribution, mean |attribution|, count

``pandas.read_parquet("results/states")`` reads the rows as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
STATES = "states"
SUMMARY = "summary.parquet"
FORMAT = "rl-attribution batch job"


class ResultsError(ValueError):
    """A results folder that cannot be read; the message says what was expected and what was found."""


def read_manifest(folder) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{folder} holds no batch job's results: {MANIFEST} is missing.") from None
    except (OSError, ValueError) as error:
        raise ResultsError(f"{path} is not a readable manifest: {error}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ResultsError(f"{path} is not a batch job's manifest (its format is not {FORMAT!r}).")
    return manifest


def shard_files(folder, manifest: dict) -> list[Path]:
    """The finished shards' files, in the manifest's order."""
    return [Path(folder) / STATES / f"{name}.parquet" for name in manifest["shards"]]


def read_rows(folder, columns: list[str]) -> pa.Table:
    """``columns`` of every finished shard's rows, one table (only those columns are read from disk)."""
    manifest = read_manifest(folder)
    files = shard_files(folder, manifest)
    if not files:
        raise ResultsError(f"{folder} holds no finished shards yet.")
    try:
        return pa.concat_tables([pq.read_table(path, columns=columns) for path in files])
    except (OSError, pa.ArrowException) as error:
        raise ResultsError(f"a shard of {folder} cannot be read: {error}. Run the job again with --resume.") from None


def group_sums(table: pa.Table) -> np.ndarray:
    """The ``group_sums`` column as float32 (N, G), without a copy per row."""
    column = table.column("group_sums").combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)


def summarize(folder) -> pa.Table:
    """Per policy x target x group, over every state: mean attribution, mean |attribution|, count.

    Columns: policy, training_step, target, output (its name: "P(push left)"), group (its name),
    mean_attribution, mean_abs_attribution (float64), count (int64).
    """
    manifest = read_manifest(folder)
    table = read_rows(folder, ["policy", "target", "group_sums"])
    sums = group_sums(table).astype(np.float64)
    order = [spec["label"] for spec in manifest["job"]["policies"]]  # the job's order: by training step
    steps = [spec.get("training_step") for spec in manifest["job"]["policies"]]
    codes = pc.index_in(table.column("policy"), value_set=pa.array(order)).to_numpy(zero_copy_only=False)
    names, outputs = manifest["group_names"], manifest["output_names"]
    keys, index, counts = np.unique(np.stack([codes, table.column("target").to_numpy()]), axis=1,
                                    return_inverse=True, return_counts=True)
    index = index.reshape(-1)
    mean = np.zeros((keys.shape[1], sums.shape[1]))
    mean_abs = np.zeros_like(mean)
    np.add.at(mean, index, sums)
    np.add.at(mean_abs, index, np.abs(sums))
    mean, mean_abs = mean / counts[:, None], mean_abs / counts[:, None]
    n_groups = len(names)
    return pa.table({
        "policy": [order[p] for p in np.repeat(keys[0], n_groups)],
        "training_step": pa.array([steps[p] for p in np.repeat(keys[0], n_groups)], pa.int64()),
        "target": np.repeat(keys[1], n_groups),
        "output": [outputs[t] for t in np.repeat(keys[1], n_groups)],
        "group": np.tile(names, keys.shape[1]).tolist(),
        "mean_attribution": mean.reshape(-1),
        "mean_abs_attribution": mean_abs.reshape(-1),
        "count": np.repeat(counts, n_groups).astype(np.int64),
    })
