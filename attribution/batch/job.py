"""A batch job: plan the shards, start (or join) Ray, explain the shards not done yet on a pool of
actors with Ray Data, and keep the manifest that makes the job resumable.

    job = prepare_job(["CartPole-v1"], record=200, seed=0)
    run_job(job, "results/", address="local", actors=2)

The pipeline is Ray Data's batch-inference pattern: the shards are read as a dataset, then
``map_batches`` hands them to ``ShardWorker`` actors (each loads the policies from their paths
once), and each shard's rows are written as one Parquet file, whole, by the actor that made them.
The driver records a shard in the manifest once its file is written; ``resume`` recomputes the
shards that are not recorded or whose file is missing or damaged, so a crash, a kill or a deleted
file costs only those shards, and the result is the one a clean run gives.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from attribution.batch.explain import Explainer, JobSettings, ShardWorker, write_table
from attribution.batch.results import FORMAT, MANIFEST, STATES, SUMMARY, read_manifest, summarize
from attribution.batch.sources import (
    InputError,
    PolicySpec,
    Shard,
    episode_shards,
    parquet_shards,
    policy_specs,
    record_shards,
)
from attribution.rl.files import write_atomically
from attribution.rl.library import DEFAULT_FOLDER

VERSION = 1
MANIFEST_EVERY_S = 2.0  # the manifest is rewritten at most this often (and at the end): it grows with the job
LAST_JOB = DEFAULT_FOLDER / "last-batch-job.txt"  # where the Runs page finds the last job's results


class JobError(RuntimeError):
    """A job that cannot go on (Ray would not start, a shard failed, a folder holds another job)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """What a job explains and how: everything its manifest records."""

    env_id: str
    policies: tuple[PolicySpec, ...]
    shards: tuple[Shard, ...]
    settings: JobSettings          # resolved: no default left open
    group_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def description(self) -> dict:
        """The job as JSON data; a resumed job must describe itself the same way."""
        return json.loads(json.dumps({
            "env_id": self.env_id,
            "policies": [dataclasses.asdict(spec) for spec in self.policies],
            "settings": dataclasses.asdict(self.settings),
            "shards": [dataclasses.asdict(shard) for shard in self.shards],
        }))


def prepare_job(policies: list[str], env_id: str | None = None, record: int | None = None, seed: int = 0,
                episodes: str | None = None, states: str | None = None,
                settings: JobSettings | None = None) -> Job:
    """Check the policies (each is loaded once here) and the input, and plan the shards.
    Exactly one input: ``record`` episodes from ``seed``, an ``episodes`` folder, or ``states`` Parquet.
    ``settings``: the app's defaults where None. Raises InputError or PolicyError."""
    given = [name for name, value in (("--record", record), ("--episodes", episodes), ("--states", states))
             if value is not None]
    if len(given) != 1:
        raise InputError(f"give exactly one input: --record K, --episodes DIR or --states PARQUET; "
                         f"received {' and '.join(given) or 'none'}.")
    specs = policy_specs(policies, env_id)
    first = Explainer(specs[0], settings or JobSettings())
    for spec in specs:  # each loads and is checked here, with the first one's settings, before Ray starts
        explainer = first if spec is specs[0] else Explainer(spec, first.settings)
        if (explainer.parts.names, explainer.output_names) != (first.parts.names, first.output_names):
            raise InputError(f"{spec.label} explains other features or outputs than {first.spec.label}: one job "
                             f"compares policies with the same observations and actions.")
        explainer.baseline(np.zeros((1, *explainer.policy.observation_shape), np.float32))
    if record is not None:
        shards = record_shards(len(specs), record, seed)
    elif episodes is not None:
        shards = episode_shards(len(specs), episodes, first.policy.info.env_id)
    else:
        shards = parquet_shards(len(specs), states)
    return Job(first.policy.info.env_id, tuple(specs), tuple(shards), first.settings, tuple(first.parts.names),
               first.output_names)


def run_job(job: Job, out, resume: bool = False, address: str = "local", actors: int = 1,
            gpus_per_actor: float = 0, progress=None) -> dict:
    """Explain the job's shards that ``out`` does not hold yet; returns the manifest.

    progress: called as ``progress(shards_done, shards_total, states_done, seconds, done_now)`` after
    each shard (the command line draws ``progress_line`` with it). Raises JobError.
    """
    out = Path(out)
    manifest = _open_results(job, out, resume)
    todo = [shard for shard in job.shards if shard.name not in manifest["shards"]]
    if todo:
        _start_ray(address, actors)
        try:
            _collect(_explained(todo, job, out / STATES, actors, gpus_per_actor), job, out, manifest, progress)
        finally:
            _write_manifest(out, manifest)
    write_table(summarize(out), out / SUMMARY)
    LAST_JOB.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(LAST_JOB, str(out.resolve()).encode())
    return manifest


def _collect(results, job: Job, out: Path, manifest: dict, progress) -> None:
    """Record each finished shard in ``manifest`` (rewritten every MANIFEST_EVERY_S), in the job's order."""
    started, written, states_done, shards_done = time.perf_counter(), time.perf_counter(), 0, 0
    order = {shard.name: i for i, shard in enumerate(job.shards)}
    while True:
        try:
            result = next(results)
        except StopIteration:
            return
        except Exception as error:  # a worker that died, a Ray failure: the shards done so far are kept
            cause = (str(getattr(error, "cause", None) or error).strip().splitlines() or [type(error).__name__])[-1]
            first_sentence = cause.split(". ")[0].rstrip(".")  # Ray's own advice on dead workers runs to 600 characters
            raise JobError(f"the job stopped: {first_sentence} ({_kept(manifest, job)})") from None
        if result["error"]:
            raise JobError(f"{result['error']} ({_kept(manifest, job)})")
        manifest["shards"][str(result["shard"])] = {"rows": int(result["rows"]),
                                                    "seconds": round(float(result["seconds"]), 3)}
        manifest["shards"] = dict(sorted(manifest["shards"].items(), key=lambda item: order[item[0]]))
        if time.perf_counter() - written >= MANIFEST_EVERY_S:
            _write_manifest(out, manifest)
            written = time.perf_counter()
        states_done, shards_done = states_done + int(result["rows"]), shards_done + 1
        if progress:
            progress(len(manifest["shards"]), len(job.shards), states_done, time.perf_counter() - started,
                     shards_done)


def _kept(manifest: dict, job: Job) -> str:
    return f"{len(manifest['shards'])} of {len(job.shards)} shards are done and kept; run again with --resume"


def _open_results(job: Job, out: Path, resume: bool) -> dict:
    """The manifest to continue: a new one for a new folder, or (``resume``) the folder's own, with the
    shards whose files are gone or damaged taken out. Refuses a folder that holds something else."""
    path = out / MANIFEST
    if path.exists():
        manifest = read_manifest(out)
        done = len(manifest.get("shards", {}))
        if manifest.get("version") != VERSION:
            raise JobError(f"{out} holds a batch job of format version {manifest.get('version')!r}; this version "
                           f"of the job writes version {VERSION}: choose another --out.")
        if not resume:
            raise JobError(f"{out} already holds a batch job's results ({done} of "
                           f"{len(manifest.get('job', {}).get('shards', []))} shards done): add --resume to finish "
                           f"it, or choose another --out.")
        if manifest.get("job") != job.description():
            differs = [key for key in job.description() if manifest.get("job", {}).get(key) != job.description()[key]]
            raise JobError(f"{out} holds a job with other {', '.join(differs)}: --resume continues the same job; "
                           f"choose another --out for this one.")
        manifest["shards"] = {name: info for name, info in manifest["shards"].items() if _intact(out, name, info)}
        (out / STATES).mkdir(exist_ok=True)
        for leftover in (out / STATES).glob(".*.tmp"):  # a write a crash cut short
            leftover.unlink()
        return manifest
    if out.exists() and any(out.iterdir()):
        raise JobError(f"{out} is not empty and holds no batch job: choose an empty or new folder for --out.")
    (out / STATES).mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "version": VERSION, "job": job.description(), "group_names": list(job.group_names),
                "output_names": list(job.output_names), "shards": {}}
    _write_manifest(out, manifest)
    return manifest


def _intact(out: Path, name: str, info: dict) -> bool:
    try:
        return pq.read_metadata(out / STATES / f"{name}.parquet").num_rows == info["rows"]
    except Exception:  # missing, cut short, not Parquet: computed again
        return False


def _write_manifest(out: Path, manifest: dict) -> None:
    write_atomically(out / MANIFEST, json.dumps(manifest, separators=(",", ":")).encode())


def _start_ray(address: str, actors: int) -> None:
    """Start Ray on this machine (``local``: no dashboard, quiet) or join a cluster (``auto``, HOST:PORT);
    a Ray already running in this process is used as it is."""
    import logging

    try:
        import ray
    except ImportError:
        raise JobError("Ray is not installed: pip install -r requirements.txt") from None
    if address not in ("local", "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        return
    try:
        if address == "local":
            ray.init(address="local", num_cpus=max(os.cpu_count() or 1, actors), include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as error:  # ConnectionError, RuntimeError, ValueError, ...: Ray's ways of not starting
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise JobError(f"Ray could not start with --address {address}: {first_line}") from None


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers at is refused at once (Ray itself waits minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise JobError(f"--address must be local, auto or HOST:PORT; received {address!r}.")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise JobError(f"no Ray cluster answers at {address}: {error.strerror or error}.") from None


def _explained(todo: list[Shard], job: Job, folder: Path, actors: int, gpus_per_actor: float):
    """Ray Data: the shards as a dataset, ``map_batches`` on a pool of ``actors`` ShardWorkers; yields
    one result row per shard as each finishes."""
    import logging
    import warnings

    import ray.data

    logger = logging.getLogger("ray.data")
    logger.setLevel(logging.CRITICAL)  # no line per dataset run, nor its own report of a failure the job reports
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the job draws its own line
    context.print_on_execution_start = False
    # Shards come back in the job's order (Ray Data otherwise yields whichever finishes first), so a
    # failing shard is reported after the shards before it are kept.
    context.execution_options.preserve_order = True
    shards = ray.data.from_items([{"shard": json.dumps(dataclasses.asdict(shard))} for shard in todo],
                                 override_num_blocks=len(todo))
    with warnings.catch_warnings():  # max_restarts goes through ray_remote_args until Ray 2.64 (requirements.txt)
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        results = shards.map_batches(
            ShardWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus_per_actor or None, max_restarts=0,  # a worker that dies ends the job (never a restart loop)
            runtime_env={"env_vars": {"TF_FORCE_GPU_ALLOW_GROWTH": "true",  # actors sharing a GPU share its memory
                                      "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}} if gpus_per_actor else None,
            fn_constructor_kwargs={"policies": [dataclasses.asdict(spec) for spec in job.policies],
                                   "settings": dataclasses.asdict(job.settings), "folder": str(folder.resolve())})
    yield from results.iter_rows()


def progress_line(shards_done: int, shards_total: int, states_done: int, seconds: float, done_now: int) -> None:
    """The terminal's progress: redrawn in place on a terminal, one line per tenth of the job in a log.
    shards_done counts the shards a resumed job had already; states_done, seconds and done_now are this run's."""
    rate = states_done / seconds if seconds > 0 else 0.0
    left = seconds / done_now * (shards_total - shards_done) if done_now else float("nan")
    line = (f"{shards_done}/{shards_total} shards · {states_done:,} states · {rate:,.0f} states/s · "
            f"about {_duration(left)} left")
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line + ("\n" if shards_done == shards_total else ""))
    elif shards_done == shards_total or shards_done % max(1, shards_total // 10) == 0:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
