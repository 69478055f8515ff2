"""One shard explained: its states through ``integrated_gradients`` in fixed-size batches, as an
Arrow table, written whole to its own Parquet file. This is what a batch job's workers run, and
what a test runs in-process to check them.

Columns of a shard's table (T rows, G groups):
    policy (string), training_step (int64, null where unknown), episode_seed, step (int64),
    action (int64, or list of float32 for continuous actions), target (int64, the explained output),
    output, baseline_output (float64: F(x)[target], F(x')[target]), gap (float64: the completeness
    gap, sum of attributions minus their difference), path_points (int64, after refinement),
    group_sums (fixed-size list of G float32), and, unless only groups are stored,
    attribution (Arrow's fixed-shape tensor of float32, the observation's shape).
The schema's metadata holds ``group_names`` and ``output_names`` (JSON lists).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from attribution.batch.sources import InputError, PolicySpec, Shard

VECTOR_BASELINES = ("zeros", "mean of reference states")


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """How every state is explained; the defaults are the app's (``resolved`` fills them in per policy).

    explain: an ``attribution.explain`` output kind ("probability", "q_value", "mean", ...).
    baseline: "zeros" or "mean of reference states"; for images one of IMAGE_BASELINES.
    steps: Gauss-Legendre points (refined until the gap is under 1%): 64, or 16 for images.
    store: "all" keeps each state's attribution map; "groups" only the group sums.
    batch_size: states per engine call; the last batch is padded to it, so nothing recompiles.
    """

    explain: str | None = None
    baseline: str | None = None
    steps: int | None = None
    method: str = "gausslegendre"
    store: str = "all"
    batch_size: int | None = None

    def resolved(self, policy) -> JobSettings:
        """These settings with the app's defaults for ``policy`` where none was given; checked."""
        from attribution.analysis.baselines import IMAGE_BASELINES
        from attribution.engine.outputs import outputs_for
        from attribution.engine.quadrature import check_method, check_steps
        from attribution.rl.environments import image_shape

        image = image_shape(policy.info.env_id) is not None
        kinds = [output.kind for output in outputs_for(policy.info.heads) if not output.contrasts]
        explain = self.explain or kinds[0]
        if explain not in kinds:
            raise InputError(f"--explain {explain!r} is not an output of this policy; it has {', '.join(kinds)}.")
        baselines = IMAGE_BASELINES if image else VECTOR_BASELINES
        baseline = self.baseline or baselines[0]
        if baseline not in baselines:
            raise InputError(f"--baseline {baseline!r} does not fit {policy.info.env_id}; choose one of "
                             f"{', '.join(baselines)}.")
        if self.store not in ("all", "groups"):
            raise InputError(f"--store must be 'all' or 'groups'; received {self.store!r}.")
        try:
            method = check_method(self.method)
            steps = check_steps((16 if image else 64) if self.steps is None else self.steps, method)
        except ValueError as error:
            raise InputError(str(error)) from None
        batch_size = (32 if image else 256) if self.batch_size is None else self.batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 65536:
            raise InputError(f"--batch-size must be a whole number from 1 to 65536; received {batch_size!r}.")
        return JobSettings(explain, baseline, steps, method, self.store, batch_size)


class Explainer:
    """A policy loaded once, with what explaining its states needs: the explained model, its parts
    (features or objects) and its baseline."""

    def __init__(self, spec: PolicySpec, settings: JobSettings):
        from attribution.engine.outputs import OUTPUTS
        from attribution.rl.environments import observation_parts

        self.spec = spec
        self.policy = spec.load()
        self.settings = settings.resolved(self.policy)
        self.output = OUTPUTS[self.settings.explain]
        self.model = self.output.build(self.policy.model)
        self.parts = observation_parts(self.policy.info.env_id, self.policy.info.feature_names)
        n_outputs = int(self.model.outputs[0].shape[-1])
        self.output_names = tuple(self.output.output_name(self.policy.info.action_names, t) for t in range(n_outputs))

    def baseline(self, states: np.ndarray) -> np.ndarray:
        """(*obs,) shared, or (N, *obs) for a baseline made per state."""
        from attribution.analysis.baselines import image_baseline

        info, kind = self.policy.info, self.settings.baseline
        if kind == "zeros":
            return np.zeros(states.shape[1:], np.float32)
        if kind == "mean of reference states":
            if info.reference_states is None:
                raise InputError(f"{self.spec.label} has no reference states for the baseline {kind!r}: use zeros.")
            return info.reference_states.mean(axis=0).astype(np.float32)
        try:
            return image_baseline(kind, states, info.median_state, info.reference_states)
        except ValueError as error:
            raise InputError(f"the {kind} baseline cannot be used for {self.spec.label}: {error}") from None

    def targets(self, states: np.ndarray, actions) -> tuple[np.ndarray, np.ndarray]:
        """(actions, explained output indices), the policy's greedy actions where the data has none."""
        if actions is None:
            actor = self.policy.heads(states)[self.policy.info.actor_head]
            actions = actor if self.policy.info.continuous else actor.argmax(axis=1)
        actions = np.asarray(actions)
        return actions, np.array([self.output.target(a) for a in actions], np.int64)

    def explain(self, shard: Shard) -> pa.Table:
        """The shard's table (see the module's docstring). Raises InputError."""
        from attribution.engine.ig import integrated_gradients

        seeds, steps, states, actions = shard.read(self.policy)
        states = np.asarray(states, np.float32)
        if states.shape[1:] != self.policy.observation_shape:
            raise InputError(f"{self.spec.label} takes observations of shape {self.policy.observation_shape}; "
                             f"the shard {shard.name} has {states.shape[1:]}.")
        actions, targets = self.targets(states, actions)
        size, store_maps = self.settings.batch_size, self.settings.store == "all"
        found = []
        for first in range(0, len(states), size):
            batch, batch_targets = _padded(states[first:first + size], size), _padded(targets[first:first + size], size)
            result = integrated_gradients(
                self.model, batch, baseline=self.baseline(batch), target=batch_targets, steps=self.settings.steps,
                method=self.settings.method, groups=self.parts.groups(batch), attributions=store_maps)
            found.append((result, min(size, len(states) - first)))
        return self._table(found, seeds, steps, actions, targets)

    def _table(self, found, seeds, steps, actions, targets) -> pa.Table:
        def joined(field):
            return np.concatenate([getattr(result, field)[:m] for result, m in found])

        rows = np.arange(len(targets))
        outputs, baseline_outputs = joined("outputs"), joined("baseline_outputs")
        group_sums = joined("group_sums").astype(np.float32)
        columns = {
            "policy": pa.array([self.spec.label] * len(rows), pa.string()),
            "training_step": pa.array([self.spec.training_step] * len(rows), pa.int64()),
            "episode_seed": pa.array(seeds, pa.int64()),
            "step": pa.array(steps, pa.int64()),
            "action": (pa.array(list(np.asarray(actions, np.float32).reshape(len(rows), -1)), pa.list_(pa.float32()))
                       if self.policy.info.continuous else pa.array(np.asarray(actions, np.int64))),
            "target": pa.array(targets),
            "output": pa.array(outputs[rows, targets].astype(np.float64)),
            "baseline_output": pa.array(baseline_outputs[rows, targets].astype(np.float64)),
            "gap": pa.array(joined("delta").astype(np.float64)),
            "path_points": pa.array(joined("steps").astype(np.int64)),
            "group_sums": pa.FixedSizeListArray.from_arrays(pa.array(group_sums.reshape(-1)), group_sums.shape[1]),
        }
        if self.settings.store == "all":
            columns["attribution"] = pa.FixedShapeTensorArray.from_numpy_ndarray(
                np.ascontiguousarray(joined("attributions"), np.float32))
        metadata = {"group_names": json.dumps(list(self.parts.names)), "output_names": json.dumps(self.output_names)}
        return pa.table(columns).replace_schema_metadata(metadata)


def _padded(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` (m, ...) with its last row repeated up to ``size`` rows, so every engine call has one shape."""
    return array if len(array) == size else np.concatenate([array, np.repeat(array[-1:], size - len(array), axis=0)])


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` whole: a temporary file beside it, then a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ShardWorker:
    """Ray Data's callable class (one per actor): policies are loaded from their specs on first use,
    never sent as model objects. Each call takes shards (a column ``shard`` of JSON records), writes
    each one's Parquet file and returns one row per shard: its name, rows, seconds and error ("" if none)."""

    def __init__(self, policies: list[dict], settings: dict, folder: str):
        self.specs = [PolicySpec(**spec) for spec in policies]
        self.settings = JobSettings(**settings)
        self.folder = Path(folder)
        self.explainers: dict[int, Explainer] = {}

    def __call__(self, batch: dict) -> dict:
        import time

        from attribution.rl.errors import PolicyError

        names, rows, seconds, errors = [], [], [], []
        for record in batch["shard"]:
            shard = Shard(**json.loads(str(record)))
            started, count, error = time.perf_counter(), 0, ""
            try:
                if shard.policy not in self.explainers:
                    self.explainers[shard.policy] = Explainer(self.specs[shard.policy], self.settings)
                table = self.explainers[shard.policy].explain(shard)
                write_table(table, self.folder / f"{shard.name}.parquet")
                count = table.num_rows
            except (InputError, PolicyError) as problem:
                error = f"shard {shard.name}: {problem}"
            except Exception as problem:  # anything else still ends the job with one line that names it
                error = f"shard {shard.name}: {type(problem).__name__}: {problem}"
            names.append(shard.name)
            rows.append(count)
            seconds.append(time.perf_counter() - started)
            errors.append(error)
        return {"shard": np.array(names), "rows": np.array(rows, np.int64), "seconds": np.array(seconds),
                "error": np.array(errors)}
