"""The batch job on Ray Data (one local Ray for the test run): its numbers against the in-process
engine, its summary against numpy, resuming after a deleted file and after a killed job, and a
clear line for each bad input. Small jobs: CartPole's shipped policy, a few episodes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attribution import explain, integrated_gradients
from attribution.batch import job as batch_job
from attribution.batch.__main__ import main
from attribution.batch.explain import JobSettings
from attribution.batch.job import JobError, prepare_job, run_job
from attribution.batch.results import ResultsError, group_sums, read_manifest, read_rows, summarize
from attribution.batch.sources import InputError
from attribution.rl.episodes import save_episode
from attribution.rl.policies import load_policy
from attribution.rl.rollout import record_episode

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["policy", "episode_seed", "step"]


@pytest.fixture(autouse=True)
def last_job_pointer(tmp_path, monkeypatch):
    """Jobs in tests leave the app's pointer to the last job alone."""
    monkeypatch.setattr(batch_job, "LAST_JOB", tmp_path / "last-batch-job.txt")


def rows(folder) -> pd.DataFrame:
    columns = ["policy", "training_step", "episode_seed", "step", "action", "target", "output", "baseline_output",
               "gap", "path_points", "group_sums", "attribution"]
    return read_rows(folder, columns).to_pandas().sort_values(ORDER, ignore_index=True)


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        left, right = np.stack(a[column].to_numpy()), np.stack(b[column].to_numpy())
        np.testing.assert_array_equal(left, right, err_msg=column)


def test_a_job_gives_the_in_process_engine_numbers_with_a_ragged_last_batch(local_ray, tmp_path):
    job = prepare_job(["CartPole-v1"], record=2, seed=5, settings=JobSettings(batch_size=96))
    manifest = run_job(job, tmp_path / "out", actors=2)
    assert list(manifest["shards"]) == ["p0-seed5", "p0-seed6"]
    found = rows(tmp_path / "out")
    policy = load_policy("CartPole-v1")
    model = explain.action_probabilities(policy.model)
    for seed in (5, 6):
        episode = record_episode(policy, seed, render=False)
        assert len(episode) % 96  # the last batch is padded
        expected = integrated_gradients(model, episode.observations, target=episode.actions, steps=64)
        mine = found[found.episode_seed == seed]
        np.testing.assert_array_equal(mine.step, np.arange(len(episode)))
        np.testing.assert_array_equal(mine.action, episode.actions)
        np.testing.assert_allclose(np.stack(mine.attribution), expected.attributions, atol=1e-5)
        np.testing.assert_allclose(np.stack(mine.group_sums), expected.attributions, atol=1e-5)  # features
        np.testing.assert_allclose(mine.gap, expected.delta, atol=1e-5)
        np.testing.assert_allclose(mine.output - mine.baseline_output, expected.output_change, atol=1e-6)
    # plain pandas reads the folder, no Ray involved
    plain = pd.read_parquet(tmp_path / "out" / "states")
    assert len(plain) == len(found) and plain.policy.unique().tolist() == ["CartPole-v1"]
    assert pq.read_schema(next((tmp_path / "out" / "states").glob("*.parquet"))).metadata[b"group_names"]


def test_the_summary_is_numpys_mean_over_the_same_rows(local_ray, tmp_path):
    run_job(prepare_job(["CartPole-v1"], record=2, seed=0), tmp_path / "out")
    table = read_rows(tmp_path / "out", ["target", "group_sums"])
    sums, targets = group_sums(table).astype(np.float64), table.column("target").to_numpy()
    summary = pq.read_table(tmp_path / "out" / "summary.parquet").to_pandas()
    names = read_manifest(tmp_path / "out")["group_names"]
    assert len(summary) == len(np.unique(targets)) * len(names)
    for _, row in summary.iterrows():
        picked = sums[targets == row.target, names.index(row.group)]
        assert row["count"] == len(picked) and row.policy == "CartPole-v1"
        assert row.mean_attribution == pytest.approx(picked.mean(), abs=1e-12)
        assert row.mean_abs_attribution == pytest.approx(np.abs(picked).mean(), abs=1e-12)
    assert summary.output.tolist()[0] in ("P(push left)", "P(push right)")


def test_resume_after_a_deleted_file_recomputes_only_that_shard(local_ray, tmp_path):
    job = prepare_job(["CartPole-v1"], record=3, seed=0)
    run_job(job, tmp_path / "out")
    clean = rows(tmp_path / "out")
    (tmp_path / "out" / "states" / "p0-seed1.parquet").unlink()
    computed = []
    with pytest.raises(JobError, match="already holds a batch job's results.*--resume"):
        run_job(job, tmp_path / "out")
    run_job(job, tmp_path / "out", resume=True, progress=lambda *args: computed.append(args[2]))
    assert computed == [500]  # one shard, CartPole's 500 steps
    assert_same_rows(rows(tmp_path / "out"), clean)


def test_resume_after_a_killed_job_finishes_it_as_a_clean_run_would(local_ray, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "attribution.batch", "--policy", "CartPole-v1", "--record", "24", "--seed", "0",
               "--out", str(out), "--address", local_ray.get_runtime_context().gcs_address]  # as a job joins a cluster
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            if read_manifest(out)["shards"]:
                break
        except (ValueError, KeyError):
            pass
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(read_manifest(out)["shards"])
    assert 1 <= done < 24, process.stderr.read().decode()[-2000:]
    job = prepare_job(["CartPole-v1"], record=24, seed=0)
    computed = []
    run_job(job, out, resume=True, progress=lambda *args: computed.append(args[0]))
    assert computed[0] == done + 1 and computed[-1] == 24  # only the missing shards ran
    run_job(job, tmp_path / "clean")
    assert_same_rows(rows(out), rows(tmp_path / "clean"))


def test_checkpoints_of_a_training_run_are_explained_side_by_side(local_ray, tmp_path):
    from attribution.training import train

    train.main(["CartPole-v1", "--total-steps", "512", "--checkpoint-every", "256", "--eval-episodes", "1",
                "--out", str(tmp_path / "trained")])
    checkpoints = sorted((tmp_path / "trained" / "checkpoints").glob("*.keras"))
    assert [path.stem for path in checkpoints] == ["CartPole-v1-step000000256", "CartPole-v1-step000000512"]
    assert main(["--policy", str(tmp_path / "trained" / "checkpoints"), "--record", "1", "--store", "groups",
                 "--out", str(tmp_path / "out")]) == 0
    found = read_rows(tmp_path / "out", ["policy", "training_step"]).to_pandas()
    assert sorted(found.training_step.unique()) == [256, 512]
    assert "attribution" not in pq.read_schema(next((tmp_path / "out" / "states").glob("*.parquet"))).names
    summary = summarize(tmp_path / "out").to_pandas()
    assert summary.policy.unique().tolist() == [path.stem for path in checkpoints]


def test_pong_rows_carry_the_objects_group_sums(local_ray, tmp_path):
    """Parquet of states in; per-object sums out (the screen's objects, and everything else)."""
    states = load_policy("ALE/Pong-v5").info.reference_states[:3].astype(np.uint8)
    table = pa.table({"observation": pa.FixedShapeTensorArray.from_numpy_ndarray(states),
                      "episode_seed": [7, 7, 7], "step": [0, 1, 2]})
    pq.write_table(table, tmp_path / "pong.parquet")
    assert main(["--policy", "ALE/Pong-v5", "--states", str(tmp_path / "pong.parquet"), "--store", "groups",
                 "--steps", "8", "--out", str(tmp_path / "out")]) == 0
    manifest = read_manifest(tmp_path / "out")
    assert manifest["group_names"] == ["ball", "agent's paddle", "opponent's paddle", "score", "everything else"]
    found = read_rows(tmp_path / "out", ["step", "group_sums", "output", "baseline_output", "gap"]).to_pandas()
    sums = np.stack(found.group_sums).astype(np.float64)
    np.testing.assert_allclose(sums.sum(axis=1) - (found.output - found.baseline_output), found.gap, atol=1e-5)


def bad_episode_folder(tmp_path) -> Path:
    folder = tmp_path / "episodes"
    folder.mkdir()
    save_episode(record_episode(load_policy("CartPole-v1"), 0, render=False, max_steps=5), folder / "good.npz")
    (folder / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return folder


@pytest.mark.parametrize("arguments, message", [
    (["--policy", "NoSuchEnv-v0", "--record", "1"], "unknown policy 'NoSuchEnv-v0'"),
    (["--policy", "CartPole-v1"], "give exactly one input"),
    (["--policy", "CartPole-v1", "--record", "0"], "--record needs at least 1 episode; received 0"),
    (["--policy", "CartPole-v1", "--episodes", "EMPTY"], "holds no episode files"),
    (["--policy", "CartPole-v1", "--episodes", "BROKEN"], "broken.npz does not load"),
    (["--policy", "CartPole-v1", "--record", "1", "--steps", "0"], "steps must be"),
    (["--policy", "CartPole-v1", "--record", "1", "--batch-size", "0"], "--batch-size must be a whole number"),
    (["--policy", "CartPole-v1", "--record", "1", "--baseline", "black"], "--baseline 'black' does not fit"),
    (["--policy", "CartPole-v1", "--record", "1", "--address", "127.0.0.1:9"], "no Ray cluster answers at 127.0.0.1:9"),
    (["--policy", "CartPole-v1", "--record", "1", "--address", "nonsense"], "--address must be local, auto or"),
])
def test_bad_input_gets_one_clear_line(tmp_path, capsys, arguments, message):
    (tmp_path / "empty").mkdir()
    folders = {"EMPTY": tmp_path / "empty", "BROKEN": bad_episode_folder(tmp_path) if "BROKEN" in arguments else None}
    arguments = [str(folders[a]) if a in folders else a for a in arguments]
    assert main([*arguments, "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error


def test_a_failing_shard_stops_the_job_and_keeps_what_is_written(local_ray, tmp_path):
    folder = tmp_path / "states"
    folder.mkdir()
    pq.write_table(pa.table({"observation": [[0.0, 0.1, 0.0, -0.1]] * 3}), folder / "a.parquet")
    pq.write_table(pa.table({"observation": [[0.0, 0.1, 0.0]] * 3}), folder / "b.parquet")  # 3 numbers, not 4
    job = prepare_job(["CartPole-v1"], states=str(folder))
    with pytest.raises(JobError, match=r"shard p0-b-0: .*4 numbers.*1 of 2 shards are done and kept; run again"):
        run_job(job, tmp_path / "out")  # shards come back in order: a is kept before b's failure is reported
    assert set(read_manifest(tmp_path / "out")["shards"]) == {"p0-a-0"}
    with pytest.raises(JobError, match=r"shard p0-b-0: .*4 numbers.*1 of 2 shards are done and kept"):
        run_job(job, tmp_path / "out", resume=True)  # a is not computed again, and b fails the same way
    assert len(read_rows(tmp_path / "out", ["step"])) == 3
    with pytest.raises(JobError, match="holds a job with other settings"):
        run_job(prepare_job(["CartPole-v1"], states=str(folder), settings=JobSettings(steps=32)), tmp_path / "out",
                resume=True)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"]["p0-a-0"]["rows"] == 3


def test_a_folder_that_is_not_a_job_is_never_written_into(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(JobError, match="not empty and holds no batch job"):
        run_job(prepare_job(["CartPole-v1"], record=1), tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="--explain 'q_value' is not an output"):
        prepare_job(["CartPole-v1"], record=1, settings=JobSettings(explain="q_value"))


def test_parquet_actions_and_empty_episodes_are_checked_before_anything_runs(tmp_path, capsys):
    observations = [[0.0, 0.1, 0.0, -0.1]] * 2
    for actions, message in (([0, 2], "whole numbers from 0 to 1"), ([0.5, 1], "whole numbers from 0 to 1"),
                             ([float("nan"), 0], "NaN or infinity")):
        pq.write_table(pa.table({"observation": observations, "action": actions}), tmp_path / "s.parquet")
        job = prepare_job(["CartPole-v1"], states=str(tmp_path / "s.parquet"))
        with pytest.raises(InputError, match=message):
            job.shards[0].read(load_policy("CartPole-v1"))
    episodes = tmp_path / "episodes"
    episodes.mkdir()
    save_episode(record_episode(load_policy("CartPole-v1"), 0, render=False, max_steps=0), episodes / "none.npz")
    assert main(["--policy", "CartPole-v1", "--episodes", str(episodes), "--out", str(tmp_path / "out")]) == 1
    assert "none.npz holds no steps" in capsys.readouterr().err


def test_a_damaged_or_older_manifest_is_refused_with_its_reason(local_ray, tmp_path):
    job = prepare_job(["CartPole-v1"], record=1, seed=0, settings=JobSettings(steps=8))
    run_job(job, tmp_path / "out")
    path = tmp_path / "out" / "manifest.json"
    manifest = json.loads(path.read_text())
    for change, message in ((lambda m: m["shards"].update({"../../etc/passwd": {"rows": 1}}), "not shards of its job"),
                            (lambda m: m["job"]["settings"].update(explain="nonsense"), "no known explained output"),
                            (lambda m: m["job"].update(shards=[]), "no list of shards")):
        damaged = json.loads(json.dumps(manifest))
        change(damaged)
        path.write_text(json.dumps(damaged))
        with pytest.raises(ResultsError, match=f"damaged manifest: .*{message}"):
            read_manifest(tmp_path / "out")
    path.write_text(json.dumps({**manifest, "version": 0}))
    with pytest.raises(JobError, match="format version 0"):
        run_job(job, tmp_path / "out", resume=True)
