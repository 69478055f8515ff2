"""Runs: what an agent relies on across many episodes and checkpoints, from a batch job's results
(``python -m attribution.batch``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from attribution.batch.job import LAST_JOB
from attribution.batch.results import Results, ResultsError
from attribution.batch.sources import file_digest
from attribution.engine.outputs import OUTPUTS
from attribution.engine.quadrature import METHOD_LABELS
from attribution.presentation.narrate import runs_sentence
from attribution.presentation.plots import gap_histogram, spread_bars, training_lines
from attribution.rl.episodes import load_episode
from attribution.rl.policies import MAX_UPLOAD_BYTES, load_policy_file, with_own_reference_states
from attribution.rl.rollout import record_episode
from pages.common import keep_sidebar_state, policy_for, study_episode, uploaded_policies

COMMAND = "python -m attribution.batch --policy CartPole-v1 --record 200 --seed 0 --out results/"


@st.cache_resource(show_spinner="Reading the results…", max_entries=4)
def results_in(folder: str, _version: int) -> Results:
    """The folder's rows (shared by sessions, read again when its manifest changes: ``_version``)."""
    return Results.load(folder)


def default_folder() -> str:
    """The last job's folder (kept by the job in runs/), else ``results``."""
    try:
        return LAST_JOB.read_text().strip() or "results"
    except OSError:
        return "results"


def open_in_replay(results: Results, row: int) -> None:
    """Rebuild the row's episode (recorded again from its seed, or read from its file) and open it on
    the Replay page at the row's step, with the policy that played it selected. Files must be the
    ones the job read (same SHA-256); anything else is an error on this page."""
    spec = results.manifest["job"]["policies"][int(results.policy[row])]
    shard = results.shard_spec(row)
    try:
        if spec.get("path") is None:
            choice, policy = spec["env_id"], policy_for(spec["env_id"])
        else:  # the job's file, as if uploaded in this session
            choice = f"{spec['env_id']} · {Path(spec['path']).name} · {str(spec.get('digest'))[:8]}"
            if choice not in uploaded_policies():
                _check_unchanged(spec["path"], spec.get("digest"))
                with st.spinner("Loading the policy…"):
                    loaded = load_policy_file(spec["path"], spec["env_id"])
                    if loaded.info.reference_states is None:  # a checkpoint's sidecar keeps none
                        loaded = with_own_reference_states(loaded)
                uploaded_policies()[choice] = loaded
            policy = uploaded_policies()[choice]
        with st.spinner("Rebuilding the episode…"):
            if shard.kind == "record":
                episode = record_episode(policy, shard.seed)
            else:
                _check_unchanged(shard.path, shard.digest)
                episode = load_episode(shard.path)
    except (OSError, ValueError) as error:  # PolicyError and EpisodeError are ValueErrors
        st.error(f"This state cannot be opened in Replay: {error}")
        return
    st.session_state.env_id = choice
    study_episode(episode, step=int(results.step[row]), choice=choice)
    st.switch_page("pages/replay.py")


def _check_unchanged(path: str, digest: str | None) -> None:
    """Raises ValueError unless the file is at most MAX_UPLOAD_BYTES and has the SHA-256 the job recorded."""
    size = Path(path).stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise ValueError(f"{path} is {size / 2**20:,.1f} MB; the app opens files of at most "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB.")
    if file_digest(path) != digest:
        raise ValueError(f"{path} has changed since the batch job read it (its SHA-256 differs).")


keep_sidebar_state()
st.title("Runs")
st.caption("What the agent relies on across many episodes and checkpoints: the results of a batch job. "
           f"Make one with `{COMMAND}`; this page opens the last one.")
folder = st.text_input("Results folder", value=default_folder(), key="runs_folder")
manifest = Path(folder) / "manifest.json"
try:
    results = results_in(folder, manifest.stat().st_mtime_ns if manifest.exists() else 0)
except ResultsError as error:
    st.info(f"{error} Run a batch job first, e.g. `{COMMAND}`")
    st.stop()

job = results.manifest["job"]
settings = job["settings"]
n_shards, n_planned = len(results.manifest["shards"]), len(job["shards"])
st.markdown(f"**{len(results.step):,} states** of {job['env_id']} from {n_shards:,} "
            f"{'episodes' if not results.from_parquet else 'pieces of Parquet files'}, "
            f"{len(results.policies)} polic{'y' if len(results.policies) == 1 else 'ies'}. Explained: the "
            f"{OUTPUTS[settings['explain']].label}, from the {settings['baseline']} baseline, {settings['steps']} "
            f"path points ({METHOD_LABELS[settings['method']]}), refined until the gap is under 1%.")
if n_shards < n_planned:
    st.warning(f"The job is not finished: {n_shards} of {n_planned} shards are done. "
               "Run it again with --resume to finish it.")

st.subheader("What it relies on, per action")
with_rows = results.policies_with_rows()
policy = with_rows[-1]
if len(with_rows) > 1:
    policy = st.selectbox("Policy", with_rows, index=len(with_rows) - 1, format_func=results.policies.__getitem__,
                          key="runs_policy")
targets = results.targets_of(policy)
tabs = st.tabs([results.output_names[t] for t in targets])
for tab, target in zip(tabs, targets, strict=True):
    means, spreads, states, episodes = results.spread_over_episodes(policy, int(target))
    tab.markdown(runs_sentence(results.output_names[target], results.group_names, means, spreads, states, episodes))
    tab.plotly_chart(spread_bars(results.group_names, means, spreads), key=f"runs_bars_{target}")

gaps = results.relative_gaps()
st.subheader("Do the attributions add up?")
st.caption(f"Completeness: each state's attributions should add up to the change of the explained output from the "
           f"baseline. {np.mean(gaps <= 0.01):.1%} of the states are within 1% of it (median "
           f"{100 * np.median(gaps):.2g}%, worst {100 * gaps.max():.2g}%).")
st.plotly_chart(gap_histogram(gaps), key="runs_gaps")

st.subheader("The states with the largest attributions")
largest = results.largest(10)
table = [{"policy": results.policies[results.policy[i]], "episode seed": int(results.episode_seed[i]),
          "step": int(results.step[i]), "explained": results.output_names[results.target[i]],
          "total |attribution|": float(np.abs(results.group_sums[i]).sum()),
          "largest part": results.group_names[int(np.argmax(np.abs(results.group_sums[i])))]} for i in largest]
st.dataframe(table, hide_index=True)
chosen = st.selectbox("State", range(len(largest)), key="runs_state",
                      format_func=lambda k: f"{table[k]['policy']}, seed {table[k]['episode seed']}, "
                                            f"step {table[k]['step']}")
from_episode = results.shard_spec(largest[chosen]).kind != "parquet"
if st.button("Open in Replay", disabled=not from_episode, key="runs_open",
             help="rebuild its episode and study that step" if from_episode
             else "these states came from a Parquet file, not from an episode"):
    open_in_replay(results, int(largest[chosen]))

if len(with_rows) > 1 and None not in results.training_steps:
    st.subheader("How its reasons changed while it learned")
    steps, values = results.across_training()
    st.caption("Each part's mean |attribution| at each checkpoint, over all the states it was explained at.")
    st.plotly_chart(training_lines(steps, results.group_names, values), key="runs_training")
