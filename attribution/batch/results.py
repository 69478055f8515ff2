"""Reading a batch job's results folder, without Ray: its manifest, its states' rows (only the
columns asked for), and the summary per policy x explained output x group.

    results/manifest.json      what the job was (policies, settings, groups) and which shards are done
    results/states/*.parquet   one file per shard, every state's row (see ``explain.py`` for the columns)
    results/summary.parquet    per policy, output and group: mean attribution, mean |attribution|, count

``pandas.read_parquet("results/states")`` reads the rows as well.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from attribution.batch.sources import Shard

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
    problem = _manifest_problem(manifest)
    if problem:
        raise ResultsError(f"{path} is a damaged manifest: {problem}.")
    return manifest


def _manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a manifest's structure, or None: a damaged or hostile one never reaches a page."""
    from attribution.engine.outputs import OUTPUTS

    job = manifest.get("job")
    if not isinstance(job, dict):
        return "it describes no job"
    policies, shards, done = job.get("policies"), job.get("shards"), manifest.get("shards")
    if not isinstance(policies, list) or not policies or not all(
            isinstance(p, dict) and isinstance(p.get("label"), str) and isinstance(p.get("env_id"), str)
            for p in policies):
        return "its job has no list of policies with labels"
    if not isinstance(shards, list) or not shards or not all(isinstance(x, dict) for x in shards):
        return "its job has no list of shards"
    try:
        names = {Shard(**shard).name for shard in shards}
    except TypeError as error:
        return f"a shard is not described as the job describes them ({error})"
    if not isinstance(done, dict) or not set(done) <= names or any("/" in n or "\\" in n or n.startswith(".")
                                                                    for n in done):
        return "its finished shards are not shards of its job"
    if not all(isinstance(info, dict) and isinstance(info.get("rows"), int) for info in done.values()):
        return "a finished shard has no row count"
    if (job.get("settings") or {}).get("explain") not in OUTPUTS:
        return "its settings name no known explained output"
    for key in ("group_names", "output_names"):
        if not isinstance(manifest.get(key), list) or not all(isinstance(x, str) for x in manifest[key]):
            return f"it has no list of {key.replace('_', ' ')}"
    return None


def shard_files(folder, manifest: dict) -> list[Path]:
    """The finished shards' files, in the manifest's order."""
    return [Path(folder) / STATES / f"{name}.parquet" for name in manifest["shards"]]


def read_rows(folder, columns: list[str], with_shard: bool = False) -> pa.Table:
    """``columns`` of every finished shard's rows, one table (only those columns are read from disk);
    ``with_shard`` adds a column ``shard``, the index of each row's shard in the manifest's job."""
    manifest = read_manifest(folder)
    files = shard_files(folder, manifest)
    if not files:
        raise ResultsError(f"{folder} holds no finished shards yet.")
    planned = {Shard(**shard).name: i for i, shard in enumerate(manifest["job"]["shards"])}
    tables = []
    try:
        for name, path in zip(manifest["shards"], files, strict=True):
            table = pq.read_table(path, columns=columns)
            if with_shard:
                table = table.append_column("shard", pa.array(np.full(len(table), planned[name], np.int32)))
            tables.append(table)
    except (OSError, pa.ArrowException) as error:
        raise ResultsError(f"a shard of {folder} cannot be read: {error}. Run the job again with --resume.") from None
    return pa.concat_tables(tables)


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


@dataclasses.dataclass(frozen=True)
class Results:
    """A results folder's rows, as arrays, for the Runs page. N rows (states), G groups, P policies.

    policies: (P,) labels, in the job's order (by training step for checkpoints).
    training_steps: (P,) each policy's training steps, or None.
    policy: int (N,), each row's policy index. shard: int (N,), its shard's index in ``shards``.
    episode_seed, step, target: int64 (N,).
    gap: float64 (N,), the completeness gap. change: float64 (N,), F(x) - F(x'), what the sums add up to.
    group_sums: float32 (N, G).
    """

    folder: Path
    manifest: dict
    policies: tuple[str, ...]
    training_steps: tuple[int | None, ...]
    policy: np.ndarray
    shard: np.ndarray
    episode_seed: np.ndarray
    step: np.ndarray
    target: np.ndarray
    gap: np.ndarray
    change: np.ndarray
    group_sums: np.ndarray

    @classmethod
    def load(cls, folder) -> Results:
        """Reads only the columns the page uses (never the attribution maps). Raises ResultsError."""
        manifest = read_manifest(folder)
        table = read_rows(folder, ["policy", "episode_seed", "step", "target", "output", "baseline_output", "gap",
                                   "group_sums"], with_shard=True)
        specs = manifest["job"]["policies"]
        labels = [spec["label"] for spec in specs]
        codes = pc.index_in(table.column("policy"), value_set=pa.array(labels)).to_numpy(zero_copy_only=False)

        def column(name):
            return table.column(name).to_numpy()

        return cls(Path(folder), manifest, tuple(labels), tuple(spec.get("training_step") for spec in specs),
                   codes.astype(np.int32), column("shard"), column("episode_seed"), column("step"), column("target"),
                   column("gap"), column("output") - column("baseline_output"), group_sums(table))

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["group_names"])

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["output_names"])

    def shard_spec(self, row: int) -> Shard:
        return Shard(**self.manifest["job"]["shards"][int(self.shard[row])])

    @property
    def from_parquet(self) -> bool:
        """Whether the states came from Parquet (their episodes are the ``episode_seed`` column) rather
        than from episodes (a shard each)."""
        return self.manifest["job"]["shards"][0]["kind"] == "parquet"

    def policies_with_rows(self) -> list[int]:
        """The policies that have finished shards (all of them once the job is done), in the job's order."""
        return np.unique(self.policy).tolist()

    def targets_of(self, policy: int) -> np.ndarray:
        """The outputs explained for ``policy``'s rows, most frequent first."""
        values, counts = np.unique(self.target[self.policy == policy], return_counts=True)
        return values[np.argsort(-counts, kind="stable")]

    def spread_over_episodes(self, policy: int, target: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Each group's attribution when ``policy`` chose ``target``: the mean over episodes of each
        episode's mean, and its standard deviation across episodes. Returns (mean (G,), std (G,),
        states, episodes)."""
        rows = np.flatnonzero((self.policy == policy) & (self.target == target))
        episode_of = self.episode_seed if self.from_parquet else self.shard
        episodes, index = np.unique(episode_of[rows], return_inverse=True)
        totals = np.zeros((len(episodes), self.group_sums.shape[1]))
        np.add.at(totals, index, self.group_sums[rows])
        per_episode = totals / np.bincount(index, minlength=len(episodes))[:, None]
        return per_episode.mean(axis=0), per_episode.std(axis=0), len(rows), len(episodes)

    def relative_gaps(self) -> np.ndarray:
        """|gap| / |F(x) - F(x')| per row, float64 (N,), as the engine's ``relative_delta``: 0 where the
        output does not change (no relative gap to speak of; the absolute one is in ``gap``)."""
        change = np.abs(self.change)
        return np.abs(self.gap) / np.where(change > 0, change, np.inf)

    def largest(self, n: int = 10) -> np.ndarray:
        """The rows whose attributions are largest (sum of |group sums|), largest first: int (<= n,)."""
        size = np.abs(self.group_sums).sum(axis=1)
        top = np.argpartition(-size, min(n, len(size)) - 1)[:n] if len(size) > n else np.arange(len(size))
        return top[np.argsort(-size[top], kind="stable")]

    def across_training(self) -> tuple[np.ndarray, np.ndarray]:
        """Each policy's mean |group sum| over all its rows: (training steps (P',), values (P', G)), by step,
        for the P' policies that have rows so far. Only for policies that all have a training step
        (checkpoints); raises ResultsError otherwise."""
        if any(step is None for step in self.training_steps):
            raise ResultsError("not every policy of this job has a training step: it compares no checkpoints.")
        values = np.zeros((len(self.policies), self.group_sums.shape[1]))
        np.add.at(values, self.policy, np.abs(self.group_sums))
        counts = np.bincount(self.policy, minlength=len(self.policies))
        kept = np.flatnonzero(counts)
        return np.asarray(self.training_steps)[kept], values[kept] / counts[kept, None]
