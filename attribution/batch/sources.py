"""What a batch job explains: policies, and the states of each shard (one episode, or a slice of a
Parquet file of states) — planned on the driver, read on a worker.

A shard is the unit of work and of resuming: one policy and one source of states, written to one
Parquet file of its own. Everything here is plain data, so that Ray can send it to a worker, where
``PolicySpec.load`` and ``Shard.read`` run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from attribution.rl.episodes import EpisodeError, read_summary

POLICY_SUFFIXES = (".keras", ".zip", ".cleanrl_model", ".onnx")
PARQUET_ROWS_PER_SHARD = 4096


class InputError(ValueError):
    """Input the job cannot use; the message names what was expected and what was found."""


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """A policy by name: a shipped one (``source`` is its environment id) or a file's path.

    label: what its rows are called (the environment id, or the file's name without suffix).
    training_step: the sidecar's ``training_steps`` (checkpoints are ordered by it), or None.
    digest: the SHA-256 of its file (the shipped one's too), so that a resumed job knows it is the same.
    """

    label: str
    env_id: str
    path: str | None = None
    training_step: int | None = None
    digest: str | None = None

    def load(self):
        """The Policy (on the worker that needs it; a model object never travels)."""
        from attribution.rl.policies import load_policy, load_policy_file

        return load_policy(self.env_id) if self.path is None else load_policy_file(self.path, self.env_id)


def policy_specs(names: list[str], env_id: str | None) -> list[PolicySpec]:
    """``--policy`` values: shipped environment ids, policy files, or folders of policy files (each
    file a policy, e.g. checkpoints). Files need ``env_id`` unless their sidecar names it. Ordered
    by training step where every policy has one, else as given. Raises InputError."""
    from attribution.rl.policies import shipped_env_ids

    if not names:
        raise InputError("no policy: give --policy with a shipped environment id, a policy file or a folder of them.")
    found = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES)
            if not files:
                raise InputError(f"the folder {name} holds no policy files ({', '.join(POLICY_SUFFIXES)}).")
            found += [_file_spec(p, env_id) for p in files]
        elif path.is_file():
            found.append(_file_spec(path, env_id))
        elif name in shipped_env_ids():
            if env_id not in (None, name):
                raise InputError(f"--policy {name} is the shipped policy for {name}, but --env says {env_id}.")
            from attribution.rl.policies import POLICY_DIR, policy_file_name

            found.append(PolicySpec(label=name, env_id=name, digest=file_digest(POLICY_DIR / policy_file_name(name))))
        else:
            raise InputError(f"unknown policy {name!r}: expected a shipped environment id "
                             f"({', '.join(shipped_env_ids())}), a policy file or a folder of them.")
    environments = sorted({spec.env_id for spec in found})
    if len(environments) > 1:
        raise InputError(f"one job explains policies of one environment; received {', '.join(environments)}.")
    labels = [spec.label for spec in found]
    if len(set(labels)) < len(labels):
        raise InputError(f"two policies are both called {next(x for x in labels if labels.count(x) > 1)!r}: "
                         f"rename one of the files.")
    if all(spec.training_step is not None for spec in found):
        found.sort(key=lambda spec: spec.training_step)
    return found


def _file_spec(path: Path, env_id: str | None) -> PolicySpec:
    if path.suffix not in POLICY_SUFFIXES:
        raise InputError(f"{path} is not a policy file: expected one of {', '.join(POLICY_SUFFIXES)}.")
    sidecar = {}
    if path.with_suffix(".json").is_file():
        try:
            sidecar = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{path.with_suffix('.json')} is not a readable JSON sidecar: {error}.") from None
    file_env = sidecar.get("env_id") if isinstance(sidecar, dict) else None
    if env_id is None and file_env is None:
        raise InputError(f"{path.name}: which environment is it for? Pass --env ENV_ID.")
    step = sidecar.get("training_steps") if isinstance(sidecar, dict) else None
    return PolicySpec(label=path.stem, env_id=env_id or file_env, path=str(path.resolve()),
                      training_step=int(step) if isinstance(step, int) else None,
                      digest=file_digest(path))


def file_digest(path) -> str:
    """The SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while piece := file.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Shard:
    """One policy (an index into the job's policies) and one source of states.

    kind: "record" (play the greedy episode seeded ``seed``, as ``record_episode`` does),
        "episode" (an episode file at ``path``) or "parquet" (rows ``start`` to ``stop`` of ``path``).
    digest: the SHA-256 of the file at ``path``, so that a resumed job knows its input is unchanged.
    """

    policy: int
    kind: str
    seed: int | None = None
    path: str | None = None
    start: int = 0
    stop: int = 0
    digest: str | None = None

    @property
    def name(self) -> str:
        """A file name for its results, unique in the job: ``p0-seed12``, ``p1-run3``, ``p0-states-4096``."""
        if self.kind == "record":
            source = f"seed{self.seed}"
        elif self.kind == "episode":
            source = Path(self.path).stem
        else:
            source = f"{Path(self.path).stem}-{self.start}"
        return f"p{self.policy}-{source}"

    def read(self, policy) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(episode_seed int64 (T,), step int64 (T,), states (T, *obs), actions (T, ...) or None)
        where the data gives no action (the policy's greedy one is explained). Raises InputError."""
        if self.kind == "record":
            from attribution.rl.rollout import record_episode

            episode = record_episode(policy, self.seed, render=False)
            return _steps_of(episode)
        if self.kind == "episode":
            from attribution.rl.episodes import load_episode

            try:
                episode = load_episode(self.path)
            except (EpisodeError, OSError) as error:
                raise InputError(f"the episode file {self.path} does not load: {error}") from None
            if episode.env_id != policy.info.env_id:
                raise InputError(f"the episode file {self.path} is a {episode.env_id} episode; the policy acts "
                                 f"in {policy.info.env_id}.")
            return _steps_of(episode)
        return _read_parquet_states(self.path, self.start, self.stop, policy)


def _steps_of(episode):
    n = len(episode)
    return np.full(n, episode.seed, np.int64), np.arange(n, dtype=np.int64), episode.observations, episode.actions


def record_shards(n_policies: int, episodes: int, seed: int) -> list[Shard]:
    """``--record K --seed S``: each policy plays seeds S, S+1, ..., S+K-1."""
    if episodes < 1:
        raise InputError(f"--record needs at least 1 episode; received {episodes}.")
    return [Shard(p, "record", seed=seed + k) for p in range(n_policies) for k in range(episodes)]


def episode_shards(n_policies: int, folder: str, env_id: str) -> list[Shard]:
    """``--episodes DIR``: the episode library's files there, each checked now (its summary record)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--episodes expects a folder of episode files (.npz); {folder} is not a folder.")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise InputError(f"the folder {folder} holds no episode files (.npz): nothing to explain.")
    for path in files:
        try:
            summary = read_summary(path)
        except EpisodeError as error:
            raise InputError(f"the episode file {path} does not load: {error}") from None
        if summary["env_id"] != env_id:
            raise InputError(f"the episode file {path} is a {summary['env_id']} episode; the policies act in {env_id}.")
        if not isinstance(summary["length"], int) or summary["length"] < 1:
            raise InputError(f"the episode file {path} holds no steps (length {summary['length']!r}): "
                             f"nothing to explain in it; move it out of {folder}.")
    digests = {path: file_digest(path) for path in files}
    return [Shard(p, "episode", path=str(path.resolve()), digest=digests[path])
            for p in range(n_policies) for path in files]


def parquet_shards(n_policies: int, location: str) -> list[Shard]:
    """``--states PATH``: a Parquet file (or a folder of them) with a column ``observation`` (a list or
    fixed-shape tensor per row) and optionally ``episode_seed``, ``step`` and ``action``; cut into
    shards of PARQUET_ROWS_PER_SHARD rows."""
    import pyarrow.parquet as pq

    location = Path(location)
    files = sorted(location.glob("*.parquet")) if location.is_dir() else [location]
    if not files or not files[0].is_file():
        raise InputError(f"--states expects a Parquet file or a folder of them; found none at {location}.")
    shards = []
    for path in files:
        try:
            metadata = pq.read_metadata(path)
        except Exception as error:  # pyarrow raises several kinds for a file that is not Parquet
            raise InputError(f"{path} is not a readable Parquet file: {error}") from None
        columns = metadata.schema.to_arrow_schema().names
        if "observation" not in columns:
            raise InputError(f"{path} has no 'observation' column; its columns are {', '.join(columns)}.")
        rows, digest = metadata.num_rows, file_digest(path)
        shards += [Shard(p, "parquet", path=str(path.resolve()), start=start,
                         stop=min(start + PARQUET_ROWS_PER_SHARD, rows), digest=digest)
                   for p in range(n_policies) for start in range(0, rows, PARQUET_ROWS_PER_SHARD)]
    if not shards:
        raise InputError(f"the Parquet input at {location} has no rows: nothing to explain.")
    return shards


def _read_parquet_states(path: str, start: int, stop: int, policy):
    """Rows ``start`` to ``stop`` of the file, reading only the row groups that hold them."""
    import pyarrow.parquet as pq

    obs_shape = policy.observation_shape
    table = _rows(pq.ParquetFile(path), start, stop)
    column = table.column("observation").combine_chunks()
    try:
        if hasattr(column, "to_numpy_ndarray"):  # Arrow's fixed-shape tensor
            states = column.to_numpy_ndarray()
        else:  # a list per row: its values at once, then one reshape (ragged rows fail it)
            states = column.flatten().to_numpy(zero_copy_only=False)
        states = np.asarray(states, np.float32).reshape(len(table), *obs_shape)
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"{path}: each observation must hold {int(np.prod(obs_shape))} numbers (shape {obs_shape}) "
                         f"for this policy; column 'observation' has type {column.type}.") from None
    if not np.isfinite(states).all():
        raise InputError(f"{path}: observations must be finite numbers; rows {start} to {stop} hold NaN or infinity.")
    n = len(states)
    names = table.column_names
    seeds = table.column("episode_seed").to_numpy() if "episode_seed" in names else np.zeros(n, np.int64)
    steps = table.column("step").to_numpy() if "step" in names else np.arange(start, stop, dtype=np.int64)
    actions = _checked_actions(table.column("action"), policy, path) if "action" in names else None
    return seeds.astype(np.int64), steps.astype(np.int64), states, actions


def _rows(file, start: int, stop: int):
    """Rows ``start`` to ``stop`` of a ``pyarrow.parquet.ParquetFile`` as a table."""
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    ends = np.cumsum(sizes)
    groups = [i for i, end in enumerate(ends) if end > start and end - sizes[i] < stop]
    first = int(ends[groups[0]] - sizes[groups[0]]) if groups else start
    return file.read_row_groups(groups).slice(start - first, stop - start)


def _checked_actions(column, policy, path: str) -> np.ndarray:
    """The ``action`` column as the policy's actions: whole numbers below its action count, or (for
    continuous actions) rows of its action size, all finite. Raises InputError."""
    info = policy.info
    try:
        actions = np.asarray(column.to_pylist(), np.float64)
    except (ValueError, TypeError):
        raise InputError(f"{path}: column 'action' must hold numbers; it has type {column.type}.") from None
    if not np.isfinite(actions).all():
        raise InputError(f"{path}: column 'action' holds NaN or infinity.")
    if info.continuous:
        size = len(info.action_names)
        if actions.reshape(len(actions), -1).shape[1] != size:
            raise InputError(f"{path}: each action must hold {size} numbers for this policy; column 'action' has "
                             f"rows of shape {actions.shape[1:]}.")
        return actions.reshape(len(actions), size).astype(np.float32)
    count = len(info.action_names)
    if actions.ndim != 1 or (actions != np.round(actions)).any() or (actions < 0).any() or (actions >= count).any():
        raise InputError(f"{path}: column 'action' must hold whole numbers from 0 to {count - 1} (this policy's "
                         f"actions); it holds {actions.reshape(-1)[:3].tolist()}...")
    return actions.astype(np.int64)
