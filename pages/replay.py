"""Replay: record a whole episode, explain every step in one batched call, study it and hand it on."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import streamlit as st

from attribution.analysis.bookmarks import Bookmark, find_bookmarks
from attribution.analysis.episode_attribution import attribute_episode, softmax
from attribution.presentation import animation, exports
from attribution.presentation.narrate import completeness_sentence, settled_sentence, step_sentence
from attribution.presentation.overlay import display_scale, painted_screen
from attribution.presentation.plots import attribution_timeline, comparison_heatmaps
from attribution.rl.episodes import Episode, EpisodeError
from attribution.rl.fork import can_edit_state, fork_episode
from attribution.rl.library import DEFAULT_FOLDER, EpisodeLibrary
from attribution.rl.rollout import record_episode
from pages.common import (
    SPEEDS,
    choice_caption,
    choice_for,
    chosen_policy,
    explain_states,
    explained_model,
    frame_html,
    frame_with_parts,
    is_playing,
    page_start,
    painted_frame,
    play_button,
    set_playing,
    shown_bars,
    state_sliders,
    stop_playing,
    studied_episode,
    studied_step,
    study_episode,
    tick_interval,
)

library = EpisodeLibrary(os.environ.get("ATTRIBUTION_RUNS", DEFAULT_FOLDER))


def open_from_library(name: str) -> None:
    try:
        study_episode(library.load(name), saved_as=name)
    except (EpisodeError, OSError) as error:
        st.session_state.replay_error = str(error)


def delete_from_library(name: str) -> None:
    try:
        library.delete(name)
    except (EpisodeError, OSError) as error:
        st.session_state.replay_error = str(error)


def open_upload() -> None:
    upload = st.session_state.get("episode_upload")
    if upload is None:
        return
    try:
        name = library.add_file(upload.getvalue(), upload.name)
    except EpisodeError as error:
        st.session_state.replay_error = f"{upload.name} was not opened: {error}"
        return
    open_from_library(name)


def move(delta: int) -> None:
    episode = studied_episode().episode
    st.session_state.replay_step = int(np.clip(st.session_state.replay_step + delta, 0, len(episode) - 1))


def jump(step: int) -> None:
    st.session_state.replay_step = step
    set_playing("replay", False)


def jump_to_clicked_point() -> None:
    points = st.session_state.replay_timeline.selection.points
    if points:
        jump(int(points[0]["x"]))


settings = page_start(
    "Replay", "Record an episode, then scrub through it: every step is explained in one batched call."
)
policy, parts = settings.policy, settings.parts
names = parts.names
if st.session_state.get("replay_error"):
    st.error(st.session_state.pop("replay_error"))

record_col, library_col = st.columns([1, 2])
with record_col:
    if st.button("Record episode", type="primary", help=f"{settings.env_id}, seed {settings.seed}, greedy actions"):
        progress = st.progress(0.0, text="Recording…")
        limit = gym.spec(settings.env_id).max_episode_steps or 1000
        episode = record_episode(policy, settings.seed, on_step=lambda t: progress.progress(
            min(t / limit, 1.0), text=f"Recording… step {t}") if t % 10 == 0 else None)
        progress.empty()
        study_episode(episode, choice=settings.policy_key)
with library_col.expander(f"Episode library ({library.folder.name}/)"):
    entries = library.entries()
    if entries:
        st.dataframe([{"environment": e.env_id, "policy": e.policy, "seed": e.seed, "length": e.length,
                       "return": round(e.total_return, 1), "date": e.created.replace("T", " "), "file": e.name}
                      for e in entries], hide_index=True, width="stretch")
        chosen = st.selectbox("Episode", [e.name for e in entries], key="library_choice")
        buttons = st.columns(2)
        buttons[0].button("Open", on_click=open_from_library, args=(chosen,), width="stretch")
        buttons[1].button("Delete", on_click=delete_from_library, args=(chosen,), width="stretch")
    else:
        st.caption("No saved episodes yet: record one and press “Save to library”.")
    st.file_uploader("Open an episode file (.npz)", type=["npz"], key="episode_upload", on_change=open_upload)

current = studied_episode()
if current is None:
    st.info("Press **Record episode** to run the policy for a whole episode, or open one from the library.")
    st.stop()
episode = current.episode
if choice_for(episode) != settings.policy_key:
    st.warning(f"The open episode was recorded in {episode.env_id} by {episode.policy}; select that policy under "
               "Environment (upload it under “Your own policy” if it is yours) to explain it, or record a new one.")
    st.stop()

def explain_episode(other: Episode, policy_key: str | None = None):
    """``other`` explained under the sidebar's settings (one engine call, or pieces of an image episode
    under a progress bar), with the policy that played it (``policy_key``, an Environment choice; by
    default the selected one)."""
    key = policy_key or settings.policy_key
    player = chosen_policy(key)
    targets = [settings.target_for(a) for a in other.actions]
    baseline = settings.baseline_for if settings.baseline is None else settings.baseline
    progress = st.progress(0.0, text=f"Explaining {len(other):,} steps…")

    def show(done: int, total: int) -> None:
        progress.progress(done / total, text=f"Explaining… {done:,} of {total:,} steps")

    explained = attribute_episode(
        explained_model(key, player, settings.output.kind, settings.action_a, settings.action_b), other, targets,
        [settings.output_name(t, player) for t in targets], baseline, settings.steps, settings.method,
        settings.report, player.info.feature_names, on_progress=show)
    progress.empty()
    return explained


key = (settings.policy_key, *settings.explanation_key)
if current.key != key:
    current.explained = explain_episode(episode)
    current.key, current.fork, current.compared = key, None, None  # explained under old settings: they would mislead
explained = current.explained
action_names = None if policy.info.continuous else policy.info.action_names
probabilities = None if policy.info.continuous else softmax(episode.policy_outputs)
labels = exports.action_labels(episode, action_names)

st.caption(f"{episode.env_id} · {episode.policy} · seed {episode.seed} · {len(episode)} steps · return "
           f"{episode.total_return:.1f} · {len(episode)} states explained in {explained.seconds:.2f} s "
           f"(largest completeness gap {np.abs(explained.delta).max():.2g})")
playing = is_playing("replay")


@st.fragment(run_every=tick_interval("replay", st.session_state.get("replay_speed", "5 steps/s")))
def cursor_view():
    """Everything that follows the cursor; playing advances it one step per tick."""
    last = len(episode) - 1
    if is_playing("replay"):
        if st.session_state.replay_step >= last:
            stop_playing("replay")
        move(+1)
    controls = st.columns([1, 1, 1, 1, 4])
    controls[0].button("◀", help="previous step", on_click=move, args=(-1,), width="stretch")
    controls[1].button("▶", help="next step", on_click=move, args=(+1,), width="stretch")
    play_button(controls[2], "replay", playing)
    controls[3].selectbox("Speed", list(SPEEDS), index=2, key="replay_speed", label_visibility="collapsed")
    t = controls[4].slider("Step", 0, max(last, 1), key="replay_step", disabled=last == 0)
    t = min(t, last)

    frame_col, info_col = st.columns([1, 1])
    with frame_col:
        if settings.image and len(episode.frames):
            painted_frame(settings, episode.frames[t], episode.observations[t], int(explained.targets[t]), "replay")
        elif len(episode.frames):
            st.markdown(frame_html(frame_with_parts(settings, episode.frames[t], episode.observations[t],
                                                    explained.attributions[t])), unsafe_allow_html=True)
    with info_col:
        metrics = st.columns(2)
        metrics[0].metric("Step", t)
        metrics[1].metric("Reward", f"{episode.rewards[t]:+.2f}")
        st.metric("Action", labels[t])
        if probabilities is not None:
            st.caption(choice_caption(policy, episode.policy_outputs[t]))
        subject = f"The agent chose {labels[t].upper()}" if action_names else f"The agent's action is {labels[t]}"
        settled = settings.output.kind == "probability" and settled_sentence(
            subject, explained.output_names[t], explained.at_state[t], explained.at_baseline[t])
        st.success(settled or step_sentence(subject, explained.attributions[t],
                                            parts.descriptions(episode.observations[t]), nouns=parts.kind == "object"))
        st.plotly_chart(shown_bars(settings, episode.observations[t], explained.attributions[t],
                                   title=f"why {explained.output_names[t]}"),
                        key="replay_bars", config={"displayModeBar": False})
        st.info(completeness_sentence(explained.output_names[t], explained.at_state[t], explained.at_baseline[t],
                                      float(explained.attributions[t].sum(dtype=np.float64))))
    kind = st.radio("Chart", ["heatmap", "lines"], horizontal=True, key="replay_chart", label_visibility="collapsed")
    st.plotly_chart(attribution_timeline(names, explained.attributions, episode.actions, episode.rewards, action_names,
                                         kind=kind, cursor=t),
                    key="replay_timeline", on_select=jump_to_clicked_point, selection_mode="points",
                    config={"displayModeBar": False})
    st.caption("Click an action dot or a reward bar to jump to that step.")


cursor_view()

bookmarks = find_bookmarks(episode.actions, explained.attributions, episode.rewards, names, action_names, probabilities)
if hasattr(parts, "near_misses"):  # the driving agent: where another car came closest in its lane
    bookmarks = sorted(bookmarks + [Bookmark(step, "near miss", text) for step, text in
                                    parts.near_misses(episode.observations)], key=lambda b: (b.step, b.kind))
with st.expander(f"Bookmarks ({len(bookmarks)})", expanded=True):
    if not bookmarks:
        st.caption("Nothing stands out in this episode: no change of action, no flip of a feature's influence.")
    for kind in ("action change", "near miss", "least certain", "sign flip", "reward", "penalty"):
        marks = [b for b in bookmarks if b.kind == kind]
        if marks:
            st.markdown(f"**{kind.capitalize()}**")
            columns = st.columns(2)  # room for the whole sentence: "step 42: push right after 9 steps of push left"
            for i, mark in enumerate(marks):
                columns[i % len(columns)].button(mark.text, key=f"bookmark_{kind}_{i}", on_click=jump,
                                                 args=(mark.step,), width="stretch")


def side_by_side(label: str, shown: Episode, shown_explained, start: int, after: int, column) -> None:
    """Step ``start + after`` of ``shown``: its frame and bars, or how it ended."""
    t = start + after
    with column:
        st.markdown(f"**{label}**")
        if t >= len(shown):
            st.caption(f"It had ended: {len(shown) - start} steps, return {shown.rewards[start:].sum():.1f}.")
            return
        st.markdown(frame_html(frame_with_parts(settings, shown.frames[t], shown.observations[t],
                                                shown_explained.attributions[t])), unsafe_allow_html=True)
        action = exports.action_labels(shown, action_names)[t]
        st.plotly_chart(shown_bars(settings, shown.observations[t], shown_explained.attributions[t],
                                   title=f"{action} · why {shown_explained.output_names[t]}"),
                        key=f"side_{label}", config={"displayModeBar": False})


with st.expander("Fork: what if, from this step…"):
    t = studied_step()
    ways = (["Edit the state"] if can_edit_state(episode.env_id) else []) + \
           ([] if policy.info.continuous else ["Take another action"])
    how = st.radio(f"From step {t}", ways, horizontal=True, key="fork_how") if ways else None
    edit = {}
    if how == "Edit the state":
        edit["observation"] = state_sliders(policy, episode.observations[t], f"fork_{t}", columns=2)
    elif how == "Take another action":
        others = [a for a in range(len(action_names)) if a != int(episode.actions[t])]
        edit["action"] = st.selectbox("Instead of " + labels[t], others, format_func=action_names.__getitem__,
                                      key=f"fork_action_{t}")
    else:
        st.caption(f"{episode.env_id} cannot be forked here: its state cannot be set and its actions are continuous.")
    if edit and st.button("Roll out the fork"):
        with st.spinner("The policy plays on from the edit…"):
            try:
                fork = fork_episode(policy, episode, t, **edit)
            except ValueError as error:  # an edit the simulator refuses, or a recording it does not replay
                st.error(f"The fork could not be rolled out: {error}")
            else:
                current.fork, current.fork_step, current.fork_explained = fork, t, explain_episode(fork)
    if current.fork is not None:
        step, fork = current.fork_step, current.fork
        rest = episode.rewards[step:]
        st.info(f"From step {step}, the original went on for {len(rest)} steps and earned {rest.sum():.1f}; "
                f"the fork lasted {len(fork)} steps and earned {fork.total_return:.1f}"
                + (" (cut by the time limit)." if fork.truncated else "."))
        after = st.slider("Steps after the fork", 0, max(len(fork), len(rest)) - 1, 0, key="fork_offset")
        left, right = st.columns(2)
        side_by_side("original", episode, explained, step, after, left)
        side_by_side("fork", fork, current.fork_explained, 0, after, right)

with st.expander("Compare with another episode"):
    others = [e for e in library.entries() if e.env_id == episode.env_id and e.name != current.saved_as]
    sources = ["this policy on another seed"] + (["an episode from the library"] if others else [])
    source = st.radio("Compare with", sources, horizontal=True, key="compare_source")
    if source == "this policy on another seed":
        other_seed = int(st.number_input("Other seed", 0, 2**31 - 1, episode.seed + 1, key="compare_seed"))
        wanted = None
    else:
        wanted = st.selectbox(
            "Episode",
            [e.name for e in others],
            key="compare_choice",
            format_func=lambda n: next(
                f"{e.policy} · seed {e.seed} · {e.length} steps · return {e.total_return:.1f} · {e.name}"
                for e in others
                if e.name == n
            ),
        )
    if st.button("Compare"):
        with st.spinner("Recording and explaining the other episode…"):
            other = record_episode(policy, other_seed) if wanted is None else library.load(wanted)
            other_key = settings.policy_key if wanted is None else choice_for(other)
            if other_key is None:
                st.error(f"{wanted} was recorded by {other.policy}, which this session has not loaded: upload it under "
                         "“Your own policy” to compare with it.")
            else:
                current.compared, current.compared_explained = other, explain_episode(other, other_key)
    if current.compared is not None:
        other, matched = current.compared, min(len(episode), len(current.compared))
        this_label = f"this episode ({episode.policy}, seed {episode.seed})"
        other_label = f"the other ({other.policy}, seed {other.seed})"
        other_attributions = current.compared_explained.attributions[:matched]
        difference = np.abs(explained.attributions[:matched] - other_attributions).mean(axis=0)
        st.info(f"{this_label.capitalize()}: {len(episode)} steps, return {episode.total_return:.1f}. "
                f"{other_label.capitalize()}: {len(other)} steps, return {other.total_return:.1f}. Over the {matched} "
                f"steps both have, the attributions differ most on {names[int(np.argmax(difference))]} "
                f"(mean |difference| {difference.max():.2g}).")
        st.plotly_chart(
            comparison_heatmaps(
                names, explained.attributions, current.compared_explained.attributions, this_label, other_label
            ),
            key="compare_chart",
            config={"displayModeBar": False},
        )


def html_report() -> str:
    worst = int(np.argmax(np.abs(explained.delta)))
    return exports.html_report(
        f"Why did the agent do that? {episode.env_id}, seed {episode.seed}",
        [f"{episode.policy} policy, {len(episode)} steps, return {episode.total_return:.1f}.",
         f"Largest completeness gap, at step {worst}: " + completeness_sentence(
             explained.output_names[worst], explained.at_state[worst], explained.at_baseline[worst],
             float(explained.attributions[worst].sum(dtype=np.float64))) + "."],
        {"explained output": settings.output.label, "baseline": settings.baseline_kind, "path points": settings.steps,
         "method": settings.method, "environment": episode.env_id, "seed": episode.seed},
        [attribution_timeline(names, explained.attributions, episode.actions, episode.rewards, action_names, kind=k)
         for k in ("heatmap", "lines")])


def painted_steps(steps: list[int]) -> list[np.ndarray]:
    """The screens of ``steps`` with their attribution maps over them, the maps in one engine call."""
    maps = explain_states(settings, episode.observations[steps], explained.targets[steps]).attributions
    scale = display_scale(maps[:, -1])  # one colour scale for the whole film
    return [painted_screen(episode.frames[t], maps[k, -1], parts.outlines(episode.observations[t]), scale)
            for k, t in enumerate(steps)]


def storyboard():
    return animation.storyboard(
        episode.frames,
        explained.attributions,
        names,
        [f"step {t} · {labels[t]} · why {explained.output_names[t]}" for t in range(len(episode))],
        painted=painted_steps if settings.image else None,
    )


st.subheader("Share")
stem = f"{episode.env_id}-seed{episode.seed}"
downloads = [  # label, file name, type, how to make it: only when clicked, off the page's run
    (
        "Download CSV",
        f"{stem}-attributions.csv",
        "text/csv",
        lambda: exports.to_csv(episode, explained, names, action_names),
    ),
    (
        "Download JSON",
        f"{stem}-attributions.json",
        "application/json",
        lambda: exports.to_json(episode, explained, names, action_names),
    ),
    ("Download HTML report", f"{stem}-report.html", "text/html", html_report),
    ("Download GIF", f"{stem}.gif", "image/gif", lambda: animation.to_gif(storyboard())),
    ("Download MP4", f"{stem}.mp4", "video/mp4", lambda: animation.to_mp4(storyboard())),
]
share = st.columns(len(downloads) + 1)
for column, (label, file_name, mime, make) in zip(share[:-1], downloads, strict=True):
    column.download_button(label, make, file_name=file_name, mime=mime, on_click="ignore", width="stretch")
if current.saved_as:
    share[-1].caption(f"Saved in the library as {current.saved_as}")
elif share[-1].button("Save to library", width="stretch"):
    current.saved_as = library.save(episode)
    st.rerun()
st.caption("The GIF and the MP4 show the frame beside the bars, for slides; they take a few seconds to draw.")
