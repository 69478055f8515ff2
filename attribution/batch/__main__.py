"""Attribute whole runs at scale, on Ray Data (local by default):

    python -m attribution.batch --policy CartPole-v1 --record 200 --seed 0 --out results/
    python -m attribution.batch --policy mine.zip --env CartPole-v1 --episodes runs/ --out results/
    python -m attribution.batch --policy checkpoints/ --record 20 --out results/    # every checkpoint

Writes results/states/*.parquet (a row per state: attribution, completeness gap, group sums),
results/summary.parquet (per policy x action x feature or object: mean, mean |.|, count) and
results/manifest.json; --resume finishes a job that stopped, recomputing only what is missing.
The app's Runs page opens the last job's results.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from attribution.batch.explain import JobSettings  # noqa: E402
from attribution.batch.job import JobError, prepare_job, progress_line, run_job  # noqa: E402
from attribution.batch.results import ResultsError  # noqa: E402
from attribution.batch.sources import InputError  # noqa: E402
from attribution.engine.outputs import OUTPUTS  # noqa: E402
from attribution.rl.errors import PolicyError  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m attribution.batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", action="append", default=[], metavar="ID|FILE|FOLDER",
                   help="a shipped environment id, a policy file (.keras, SB3 .zip, .cleanrl_model, .onnx) or a "
                        "folder of them; repeat it to compare policies (checkpoints are ordered by training step)")
    p.add_argument("--env", help="the environment of policy files whose sidecar does not name it")
    inputs = p.add_argument_group("input (one of)")
    inputs.add_argument("--record", type=int, metavar="K", help="record K greedy episodes per policy, seeds S..S+K-1")
    inputs.add_argument("--seed", type=int, default=0, metavar="S", help="the first seed for --record (default 0)")
    inputs.add_argument("--episodes", metavar="DIR", help="a folder of the app's episode files (.npz)")
    inputs.add_argument("--states", metavar="PARQUET", help="a Parquet file (or folder) with an 'observation' column")
    p.add_argument("--out", default="results", help="the results folder (default: results)")
    p.add_argument("--resume", action="store_true", help="finish the job in --out, recomputing only what is missing")
    ray_options = p.add_argument_group("Ray")
    ray_options.add_argument("--address", default="local",
                             help="local (default: start Ray here, no dashboard), auto, or HOST:PORT of a cluster")
    ray_options.add_argument("--actors", type=int, default=1, help="workers, each with the policies loaded (default 1)")
    ray_options.add_argument("--gpus-per-actor", type=float, default=0, metavar="G", help="GPUs per worker (default 0)")
    how = p.add_argument_group("explanation (the app's defaults)")
    how.add_argument("--explain", help="the explained output: probability (default), logit, q_value, mean, value, ...")
    how.add_argument("--baseline", help="zeros (default) or 'mean of reference states'; images: 'empty playfield' "
                                        "(default), black, 'blurred state'")
    how.add_argument("--steps", type=int, help="Gauss-Legendre points, refined until the gap is under 1%% "
                                               "(default 64, images 16)")
    how.add_argument("--method", default="gausslegendre", help="the quadrature rule (default gausslegendre)")
    how.add_argument("--store", default="all", choices=("all", "groups"),
                     help="all: every state's attribution map; groups: the group sums only (what a GPU job "
                          "should copy back)")
    how.add_argument("--batch-size", type=int, help="states per engine call (default 256, images 32)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.actors < 1 or args.gpus_per_actor < 0:
        print(f"error: --actors must be at least 1 and --gpus-per-actor at least 0; received {args.actors} and "
              f"{args.gpus_per_actor}.", file=sys.stderr)
        return 2
    settings = JobSettings(args.explain, args.baseline, args.steps, args.method, args.store, args.batch_size)
    try:
        job = prepare_job(args.policy, args.env, args.record, args.seed, args.episodes, args.states, settings)
        print(f"{len(job.shards)} shard{'s' * (len(job.shards) > 1)} of {job.env_id} states, "
              f"{len(job.policies)} polic{'y' if len(job.policies) == 1 else 'ies'}: explaining the "
              f"{OUTPUTS[job.settings.explain].label} from the {job.settings.baseline} baseline, "
              f"{job.settings.steps} points", file=sys.stderr)
        manifest = run_job(job, args.out, args.resume, args.address, args.actors, args.gpus_per_actor, progress_line)
    except (InputError, PolicyError, JobError, ResultsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a folder that cannot be written, a disk that is full
        print(f"error: {error.strerror or error}: {error.filename or args.out} (results already written are kept)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: the shards written so far are kept in {args.out}; add --resume to go on.",
              file=sys.stderr)
        return 130
    states = sum(info["rows"] for info in manifest["shards"].values())
    print(f"done: {states:,} states in {args.out}/states/, summary in {args.out}/summary.parquet", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
