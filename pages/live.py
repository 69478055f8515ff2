"""Live: step an environment with a policy and see why it acts, state by state."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import streamlit as st

from attribution import _backend
from attribution.environments import phrases
from attribution.episodes import record_episode
from attribution.narrate import completeness_sentence, step_sentence
from attribution.plots import attribution_bars, attribution_timeline
from pages.common import OpenEpisode, explain_states, explained_output_name, frame_html, sidebar, target_for

SPEEDS = {"1 step/s": 1.0, "2 steps/s": 0.5, "5 steps/s": 0.2, "10 steps/s": 0.1}


class LiveEpisode:
    """One session's running episode: the environment, where it is, and what happened so far."""

    def __init__(self, env_id: str, seed: int, policy_key: str):
        self.key = (policy_key, seed)
        self.env = gym.make(env_id, render_mode="rgb_array")
        self.observation, _ = self.env.reset(seed=seed)
        self.frame = self.env.render()
        self.done, self.total_return = False, 0.0
        self.observations, self.actions, self.rewards = [], [], []
        self.timeline_key, self.timeline = None, np.zeros((0, len(self.observation)), np.float32)

    @property
    def t(self) -> int:
        return len(self.actions)

    def step(self, action) -> None:
        self.observations.append(self.observation)
        self.actions.append(action)
        self.observation, reward, terminated, truncated, _ = self.env.step(action)
        self.rewards.append(float(reward))
        self.total_return += float(reward)
        self.done = terminated or truncated
        self.frame = self.env.render()


settings = sidebar()
policy = settings.policy
names = policy.info.feature_names

if "live" not in st.session_state or st.session_state.live.key != (settings.policy_key, settings.seed):
    st.session_state.live = LiveEpisode(settings.env_id, settings.seed, settings.policy_key)
    st.session_state.playing = False

st.title("Why did the agent do that?")
st.caption(f"{settings.env_id} · policy: {policy.info.source} "
           f"(mean return {policy.info.eval_return_mean:.0f} over {policy.info.eval_episodes} test episodes)"
           if policy.info.eval_return_mean is not None else f"{settings.env_id} · policy: {policy.info.source}")
if settings.error:
    st.error(settings.error)
    st.stop()


def reset():
    st.session_state.live = LiveEpisode(settings.env_id, settings.seed, settings.policy_key)
    st.session_state.playing = False


def step():
    if not st.session_state.live.done:
        st.session_state.live.step(policy.act(st.session_state.live.observation))


def open_in_replay():
    live = st.session_state.live
    with st.spinner("Rebuilding the episode's frames…"):  # the same seed and actions replay it exactly
        st.session_state.replay = OpenEpisode(record_episode(policy, settings.seed, actions=live.actions))
    st.session_state.replay_step, st.session_state.replay_playing = live.t - 1, False
    st.switch_page("pages/replay.py")


playing = st.session_state.get("playing", False)
options = st.columns([2, 3, 3])
speed = options[0].selectbox("Speed", list(SPEEDS), index=2, label_visibility="collapsed")
all_actions = options[1].toggle("Bars for every action", disabled=policy.info.continuous or
                                settings.mode not in ("action probability", "logit", "log-probability"))
show_what_if = options[2].toggle("What if the state were different?")


@st.fragment(run_every=SPEEDS[speed] if playing else None)
def live_view():
    """Everything that changes at each step. Step and Reset rerun only this fragment; Play makes it tick."""
    live = st.session_state.live
    controls = st.columns(4)
    controls[0].button("Reset", width="stretch", on_click=reset)
    controls[1].button("Step", width="stretch", disabled=live.done, on_click=step)
    if controls[2].button("Pause" if playing else "Play", width="stretch", disabled=live.done and not playing):
        st.session_state.playing = not playing
        st.rerun()  # the whole page, so the fragment starts or stops ticking
    if controls[3].button("Open in replay", disabled=live.t == 0 or playing, width="stretch",  # here, so Step enables it
                          help="study this episode so far on the Replay page, and save it there"):
        open_in_replay()
    if playing and not st.session_state.get("playing"):
        st.rerun()  # Reset stopped the play: the whole page again, so the fragment stops ticking
    if st.session_state.get("playing") and not live.done:
        live.step(policy.act(live.observation))
    if live.done and st.session_state.get("playing"):
        st.session_state.playing = False
        st.rerun()  # the whole page, so the fragment stops ticking

    action = policy.act(live.observation)
    target = target_for(settings, action)
    started = time.perf_counter()
    result = explain_states(settings, [live.observation], [target], all_actions and not policy.info.continuous)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    output_name = explained_output_name(settings, policy, target)
    attributions = result.attributions[0, target] if result.attributions.ndim == 3 else result.attributions[0]
    at_state, at_baseline = float(result.outputs[0, target]), float(result.baseline_outputs[0, target])

    frame_col, info_col = st.columns([1, 1])
    with frame_col:
        st.markdown(frame_html(live.frame), unsafe_allow_html=True)
    with info_col:
        metrics = st.columns(2)
        metrics[0].metric("Step", live.t)
        metrics[1].metric("Return so far", f"{live.total_return:.1f}")
        if policy.info.continuous:
            st.metric("Action", f"{float(np.asarray(action).reshape(-1)[0]):+.2f}")
            subject = f"The agent's {policy.info.action_names[0]} is {float(np.asarray(action).reshape(-1)[0]):+.2f}"
        else:
            st.metric("Action", policy.info.action_names[action])
            probabilities = policy.action_probabilities(live.observation)
            st.caption("Policy: " + " · ".join(f"{n} {p:.0%}" for n, p in zip(policy.info.action_names, probabilities)))
            subject = f"The agent chose {policy.info.action_names[action].upper()}"
        if settings.mode in ("critic value", "A rather than B"):
            subject = f"{subject}; {output_name} is {at_state:.2f}"
        st.success(step_sentence(subject, attributions, live.observation, phrases(settings.env_id, names)))
        if live.done:
            st.warning(f"The episode ended after {live.t} steps with return {live.total_return:.1f}. Press Reset for a new one.")

    bars_col, timeline_col = st.columns([2, 3])
    with bars_col:
        if result.attributions.ndim == 3:
            for a in range(len(policy.info.action_names)):
                st.plotly_chart(attribution_bars(names, result.attributions[0, a],
                                                 title=explained_output_name(settings, policy, a)),
                                key=f"bars_{a}", config={"displayModeBar": False})
        else:
            st.plotly_chart(attribution_bars(names, attributions, title=f"why {output_name}"), key="bars",
                            config={"displayModeBar": False})
        st.info(completeness_sentence(output_name, at_state, at_baseline, float(np.sum(attributions))))
        st.caption(f"Attribution on {_backend.device_name()}: {elapsed_ms:.1f} ms, "
                   f"{int(result.steps[0])} path points ({settings.method}).")
    with timeline_col:
        show_timeline(settings)


def show_timeline(settings):
    """Attribution over time for the episode so far; clicking a step shows its bars."""
    live = st.session_state.live
    if live.t == 0:
        st.caption("Step or play to see how the attributions move over time.")
        return
    key = (settings.mode, settings.action_a, settings.action_b, settings.baseline_kind,
           tuple(np.asarray(settings.baseline).round(6)), settings.steps, settings.method)
    if live.timeline_key != key:  # new settings: the whole history again, in one batched call
        live.timeline_key, live.timeline = key, np.zeros((0, len(names)), np.float32)
    new = slice(len(live.timeline), live.t)
    if new.start < new.stop:
        targets = [target_for(settings, a) for a in live.actions[new]]
        found = explain_states(settings, live.observations[new], targets).attributions
        live.timeline = np.concatenate([live.timeline, found])
    kind = st.radio("Chart", ["lines", "heatmap"], horizontal=True, key="timeline_kind", label_visibility="collapsed")
    actions = np.asarray(live.actions)
    figure = attribution_timeline(names, live.timeline, actions, live.rewards,
                                  None if policy.info.continuous else policy.info.action_names, kind=kind)
    event = st.plotly_chart(figure, key="timeline", on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False})
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points:
        st.caption("Click an action dot or a reward bar to see that step's bars.")
    else:
        chosen = int(points[0]["x"])
        st.plotly_chart(attribution_bars(names, live.timeline[chosen], title=f"step {chosen}"), key="chosen_bars",
                        config={"displayModeBar": False})


live_view()


@st.fragment
def what_if():
    """Edit the current state and see what the agent would do, without touching the episode."""
    live = st.session_state.live
    reference = policy.info.reference_states
    low, high = reference.min(axis=0), reference.max(axis=0)
    span = np.maximum(high - low, 1e-3)
    if st.button("Load the current state") or "what_if_key" not in st.session_state or \
            st.session_state.what_if_key != live.key:
        st.session_state.what_if_key = live.key
        for i, value in enumerate(live.observation):
            st.session_state[f"what_if_{settings.env_id}_{i}"] = float(value)
    edited = np.array([
        st.slider(name, float(min(low[i] - 0.5 * span[i], live.observation[i])),
                  float(max(high[i] + 0.5 * span[i], live.observation[i])),
                  key=f"what_if_{settings.env_id}_{i}", format="%.3f")
        for i, name in enumerate(names)], dtype=np.float32)
    action = policy.act(edited)
    target = target_for(settings, action)
    result = explain_states(settings, [edited], [target])
    label = f"{float(np.asarray(action).reshape(-1)[0]):+.2f}" if policy.info.continuous else policy.info.action_names[action]
    st.markdown(f"In this state the agent would choose **{label}**.")
    st.plotly_chart(attribution_bars(names, result.attributions[0], title="what-if"), key="what_if_bars",
                    config={"displayModeBar": False})


if show_what_if:
    what_if()
