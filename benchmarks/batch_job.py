"""The batch job's speed: states/s in-process, with one and with two Ray actors, Ray's start-up cost,
and the Runs page's reading of 1,000,000 rows.

    python benchmarks/batch_job.py [--env CartPole-v1] [--episodes 16] [--rows 1000000]

Every configuration does the same work: record ``--episodes`` greedy episodes (seeds 0, 1, ...) and
explain every state at the app's defaults (action probability, zeros baseline, 64 Gauss-Legendre
points, refined to a 1% gap), writing one Parquet file per episode. "In-process" runs the workers'
own code (``Explainer.explain`` and the write) in this process, warmed up on one episode first;
the Ray rows are ``run_job`` end to end on a local Ray started once, so they include starting the
actors (each imports TensorFlow and loads the policy) and the driver's manifest writes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from attribution.batch import job as batch_job  # noqa: E402
from attribution.batch.explain import Explainer, write_table  # noqa: E402
from attribution.batch.results import FORMAT, Results  # noqa: E402


def in_process(job, folder: Path) -> tuple[float, int]:
    explainer = Explainer(job.policies[0], job.settings)
    write_table(explainer.explain(job.shards[0]), folder / "warm-up.parquet")  # compile once, as an actor does
    started, states = time.perf_counter(), 0
    for shard in job.shards:
        table = explainer.explain(shard)
        write_table(table, folder / f"{shard.name}.parquet")
        states += table.num_rows
    return time.perf_counter() - started, states


def with_ray(job, folder: Path, actors: int) -> tuple[float, int, float, float]:
    """(wall seconds, states, seconds to the first finished episode, states/s after it)."""
    first = []
    started = time.perf_counter()
    manifest = batch_job.run_job(job, folder, actors=actors, progress=lambda done, total, states, seconds: first.append(
        (time.perf_counter(), states)) if done == 1 else None)
    seconds = time.perf_counter() - started
    states = sum(info["rows"] for info in manifest["shards"].values())
    return seconds, states, first[0][0] - started, (states - first[0][1]) / (started + seconds - first[0][0])


def synthetic_results(folder: Path, rows: int, shards: int = 250) -> None:
    """A results folder of ``rows`` CartPole-like rows, as a job writes them (random numbers)."""
    rng = np.random.default_rng(0)
    names = ["cart position (m)", "cart velocity (m/s)", "pole angle (rad)", "pole angular velocity (rad/s)"]
    (folder / "states").mkdir(parents=True)
    per_shard = rows // shards
    planned = []
    for k in range(shards):
        policy = k % 5
        sums = rng.normal(0, 0.1, (per_shard, 4)).astype(np.float32)
        table = pa.table({
            "policy": [f"checkpoint-{policy}"] * per_shard, "training_step": [1000 * (policy + 1)] * per_shard,
            "episode_seed": np.full(per_shard, k), "step": np.arange(per_shard),
            "action": rng.integers(0, 2, per_shard), "target": rng.integers(0, 2, per_shard),
            "output": rng.random(per_shard),
            "baseline_output": np.full(per_shard, 0.5), "gap": rng.normal(0, 1e-4, per_shard),
            "path_points": np.full(per_shard, 64),
            "group_sums": pa.FixedSizeListArray.from_arrays(pa.array(sums.reshape(-1)), 4),
            "attribution": pa.FixedShapeTensorArray.from_numpy_ndarray(sums)})
        pq.write_table(table, folder / "states" / f"p{policy}-seed{k}.parquet")
        planned.append({"policy": policy, "kind": "record", "seed": k, "path": None, "start": 0, "stop": 0})
    manifest = {"format": FORMAT, "version": 1, "group_names": names, "output_names": ["P(push left)", "P(push right)"],
                "job": {"env_id": "CartPole-v1", "settings": {"explain": "probability", "baseline": "zeros",
                                                              "steps": 64, "method": "gausslegendre"},
                        "policies": [{"label": f"checkpoint-{p}", "env_id": "CartPole-v1", "path": None,
                                      "training_step": 1000 * (p + 1), "digest": None} for p in range(5)],
                        "shards": planned},
                "shards": {f"p{s['policy']}-seed{s['seed']}": {"rows": per_shard} for s in planned}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def runs_page_reading(folder: Path) -> dict[str, float]:
    timings = {}
    started = time.perf_counter()
    results = Results.load(folder)
    timings["read the columns (Results.load)"] = time.perf_counter() - started
    steps = [
        ("per action, spread over episodes", lambda: [results.spread_over_episodes(4, int(t))
                                                        for t in results.targets_of(4)]),
        ("completeness gaps", results.relative_gaps),
        ("10 largest states", results.largest),
        ("across checkpoints", results.across_training),
    ]
    for name, fn in steps:
        started = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - started
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
    app.run()
    app.switch_page("pages/runs.py").run()
    started = time.perf_counter()
    app.text_input(key="runs_folder").set_value(str(folder)).run()
    timings["the whole Runs page, first opening (AppTest)"] = time.perf_counter() - started
    assert not app.exception, app.exception
    started = time.perf_counter()
    app.selectbox(key="runs_state").set_value(1).run()
    timings["the Runs page again (a widget changed, rows cached)"] = time.perf_counter() - started
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    import ray

    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"ray {ray.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        batch_job.LAST_JOB = tmp / "last-batch-job.txt"  # leave the app's pointer alone
        job = batch_job.prepare_job([args.env], record=args.episodes, seed=0)
        started = time.perf_counter()
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False)
        start_up = time.perf_counter() - started
        (tmp / "in-process").mkdir()
        seconds, states = in_process(job, tmp / "in-process")
        rows = [("in-process (this process, warmed up)", seconds, states, float("nan"), states / seconds)]
        for actors in (1, 2):
            rows.append((f"Ray Data, {actors} actor{'s' * (actors > 1)}", *with_ray(job, tmp / f"ray{actors}", actors)))
        print(f"\n{args.env}: {args.episodes} greedy episodes recorded and explained (64 points, refined)")
        print(f"Ray's start-up (ray.init, local, no dashboard): {start_up:.1f} s\n")
        print("| configuration | states | wall (s) | states/s | first episode done after (s) | states/s after it |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, seconds, states, first, steady in rows:
            print(f"| {name} | {states:,} | {seconds:.1f} | {states / seconds:,.0f} | "
                  f"{'–' if first != first else f'{first:.1f}'} | {steady:,.0f} |")
        ray.shutdown()
        synthetic_results(tmp / "million", args.rows)
        timings = runs_page_reading(tmp / "million")
        print(f"\nThe Runs page on {args.rows:,} rows (250 shard files, 5 checkpoints, 4 features):\n")
        print("| step | seconds |")
        print("|---|---:|")
        for name, seconds in timings.items():
            print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
