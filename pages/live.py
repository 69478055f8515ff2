"""Live: step an environment with a policy and see why it acts, state by state."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from attribution.engine import backend
from attribution.engine.quadrature import METHOD_LABELS
from attribution.presentation.narrate import completeness_sentence
from attribution.presentation.plots import attribution_timeline
from attribution.rl.rollout import EpisodeStepper, actor_output, record_episode
from pages.common import (
    choice_caption,
    explain_states,
    feature_bars,
    frame_html,
    frame_with_parts,
    is_playing,
    painted_frame,
    publish_live_state,
    set_playing,
    shown_bars_html,
    sidebar,
    state_sliders,
    study_episode,
)
from pages.player import RATES, reading, show_player


class LiveEpisode:
    """One session's running episode (``run``, with what happened so far) and its attribution timeline."""

    def __init__(self, env_id: str, seed: int, policy_key: str):
        self.key = (policy_key, seed)
        self.run = EpisodeStepper(env_id, seed, render=True)
        self.timeline_key, self.timeline = None, np.zeros((0, 0), np.float32)  # (steps, parts), made on first use
        self.shown = None  # (explanation key, step, one attribution per part) of the state on screen
        self.plays, self.ahead, self.answered, self.history_sent = 0, [], 0, None  # Play's (pages/player.py)


def start_live_episode() -> None:
    """A new episode for the sidebar's policy and seed, closing the environment of the one it replaces."""
    previous = st.session_state.get("live")
    if previous is not None:
        previous.run.close()
    st.session_state.live = LiveEpisode(settings.env_id, settings.seed, settings.policy_key)
    set_playing("live", False)


settings = sidebar()
policy, parts = settings.policy, settings.parts
names = parts.names

if "live" not in st.session_state or st.session_state.live.key != (settings.policy_key, settings.seed):
    start_live_episode()

st.title("Why did the agent do that?")
crashed = f", {policy.info.eval_crash_rate:.0%} of them crashed" if policy.info.eval_crash_rate is not None else ""
st.caption(f"{settings.env_id} · policy: {policy.info.source} "
           f"(mean return {policy.info.eval_return_mean:.0f} over {policy.info.eval_episodes} test episodes{crashed})"
           if policy.info.eval_return_mean is not None else f"{settings.env_id} · policy: {policy.info.source}")
if settings.error:
    st.error(settings.error)
    st.stop()


def step():
    run = st.session_state.live.run
    if not run.done:
        run.step(policy.act(run.observation))


def start_playing():
    live = st.session_state.live
    live.plays, live.ahead, live.answered = live.plays + 1, [], 0
    set_playing("live", True)


def open_in_replay():
    run = st.session_state.live.run
    with st.spinner("Rebuilding the episode's frames…"):  # the same seed and actions replay it exactly
        study_episode(record_episode(policy, settings.seed, actions=run.actions), step=run.t - 1,
                      choice=settings.policy_key)
    st.switch_page("pages/replay.py")


options = st.columns([2, 3, 3])
speed = options[0].selectbox("Speed", list(RATES), index=4, label_visibility="collapsed",
                             help="Play's steps per second; Pong's own speed is 15, CartPole's 50")
all_actions = options[1].toggle("Bars for every action", disabled=not settings.output.per_action)
show_what_if = options[2].toggle("What if the state were different?", disabled=settings.image,
                                 help="edit a vector observation's features" if not settings.image else
                                 "a pixel agent's frames cannot be edited here")


@st.fragment
def live_view():
    """Everything that changes at each step: Step, Reset, Play and Pause rerun only this fragment."""
    live = st.session_state.live
    run, playing = live.run, is_playing("live")
    controls = st.columns(4)
    controls[0].button("Reset", width="stretch", on_click=start_live_episode)
    controls[1].button("Step", width="stretch", disabled=run.done or playing, on_click=step)
    if not playing:  # while playing, Pause is the player's own button
        controls[2].button("Play", width="stretch", disabled=run.done, on_click=start_playing)
    if controls[3].button("Open in replay", disabled=run.t == 0 or playing, width="stretch",  # here, so Step enables it
                          help="study this episode so far on the Replay page, and save it there"):
        open_in_replay()
    every_action = all_actions and settings.output.per_action
    if playing:
        extend_timeline(live, settings)
        show_player(settings, live, RATES[speed], every_action)
        return
    publish_live_state(settings.policy_key, run.t, run.observation)

    actor = actor_output(policy, run.observation)
    action = policy.greedy(actor)
    target = settings.target_for(action)
    started = time.perf_counter()
    result = explain_states(settings, [run.observation], [target], every_action, maps=settings.image)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    output_name = settings.output_name(target)
    attributions = result.group_sums[0, target] if every_action else result.group_sums[0]  # one per part
    at_state, at_baseline = float(result.outputs[0, target]), float(result.baseline_outputs[0, target])

    frame_col, info_col = st.columns([1, 1])
    with frame_col:
        if settings.image:
            painted_frame(settings, run.frame(), run.observation, target, "live", result)
        else:
            st.markdown(frame_html(frame_with_parts(settings, run.frame(), run.observation, attributions)),
                        unsafe_allow_html=True)
    with info_col:
        metrics = st.columns(2)
        metrics[0].metric("Step", run.t)
        metrics[1].metric("Return so far", f"{run.total_return:.1f}")
        label, sentence = reading(settings, run.observation, action, attributions, at_state, at_baseline)
        st.metric("Action", label)
        if not policy.info.continuous:
            st.caption(choice_caption(policy, actor))
        st.success(sentence)
        if run.done:
            st.warning(
                f"The episode ended after {run.t} steps with return {run.total_return:.1f}. Press Reset for a new one."
            )

    bars_col, timeline_col = st.columns([2, 3])
    with bars_col:
        if every_action:
            for a in range(len(policy.info.action_names)):
                st.markdown(shown_bars_html(settings, run.observation, result.group_sums[0, a],
                                            title=settings.output_name(a)), unsafe_allow_html=True)
        else:
            st.markdown(shown_bars_html(settings, run.observation, attributions, title=f"why {output_name}"),
                        unsafe_allow_html=True)
        if parts.kind == "object" and not settings.image and st.toggle(
                "Bars per feature", key="live_feature_bars",
                help="each vehicle's bar split into its features (x, y, vx, vy), in the environment's units"):
            st.markdown(feature_bars(settings, run.observation, target), unsafe_allow_html=True)
        st.info(completeness_sentence(output_name, at_state, at_baseline, float(np.sum(attributions))))
        st.caption(f"Attribution on {backend.device_name()}: {elapsed_ms:.1f} ms, "
                   f"{int(result.steps[0])} path points ({METHOD_LABELS[settings.method]}).")
    with timeline_col:
        show_timeline(settings)
    # the greedy action taken from here is ``action``: after the next step the timeline reuses these sums
    st.session_state.live.shown = (settings.explanation_key, run.t, attributions.astype(np.float32))


def show_timeline(settings):
    """Attribution over time for the episode so far; clicking a step shows its bars."""
    live = st.session_state.live
    run = live.run
    if run.t == 0:
        st.caption("Step or play to see how the attributions move over time.")
        return
    extend_timeline(live, settings)
    kind = st.radio("Chart", ["lines", "heatmap"], horizontal=True, key="timeline_kind", label_visibility="collapsed")
    actions = np.asarray(run.actions)
    figure = attribution_timeline(names, live.timeline, actions, run.rewards,
                                  None if policy.info.continuous else policy.info.action_names, kind=kind)
    event = st.plotly_chart(figure, key="timeline", on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False})
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points:
        st.caption("Click an action dot or a reward bar to see that step's bars.")
    else:
        chosen = int(points[0]["x"])
        st.markdown(shown_bars_html(settings, run.observations[chosen], live.timeline[chosen], title=f"step {chosen}"),
                    unsafe_allow_html=True)


def extend_timeline(live, settings):
    """Make ``live.timeline`` hold the attribution sums of every step played so far under ``settings``."""
    run = live.run
    if live.timeline_key != settings.explanation_key:  # new settings: the whole history again, in one batched call
        live.timeline_key, live.timeline = settings.explanation_key, np.zeros((0, len(names)), np.float32)
    new = slice(len(live.timeline), run.t)
    if live.shown is not None and live.shown[:2] == (settings.explanation_key, new.start) and new.start < new.stop:
        live.timeline = np.concatenate([live.timeline, live.shown[2][None]])  # explained when it was on screen
        new = slice(new.start + 1, new.stop)
    if new.start < new.stop:
        targets = [settings.target_for(a) for a in run.actions[new]]
        found = explain_states(settings, run.observations[new], targets, maps=False).group_sums
        live.timeline = np.concatenate([live.timeline, found])


live_view()


@st.fragment
def what_if():
    """Edit the current state and see what the agent would do, without touching the episode."""
    live = st.session_state.live
    reload = st.button("Load the current state") or st.session_state.get("what_if_key") != live.key
    st.session_state.what_if_key = live.key
    edited = state_sliders(policy, live.run.observation, f"what_if_{settings.env_id}", reload=reload)
    action = policy.act(edited)
    target = settings.target_for(action)
    result = explain_states(settings, [edited], [target], maps=False)
    label = (
        f"{float(np.asarray(action).reshape(-1)[0]):+.2f}"
        if policy.info.continuous
        else policy.info.action_names[action]
    )
    st.markdown(f"In this state the agent would choose **{label}**.")
    st.markdown(shown_bars_html(settings, edited, result.group_sums[0], title="what-if"), unsafe_allow_html=True)


if show_what_if and not settings.image:
    what_if()
