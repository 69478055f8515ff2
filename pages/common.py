"""Streamlit glue shared by the pages (not a page itself): cached policies and explained models,
the sidebar's settings, uploaded policies, what one page publishes for the others (the Live page's
state, the episode a session studies), the Play/Pause ticker, the state sliders, and display helpers."""

from __future__ import annotations

import dataclasses
import gc
import hashlib

import gymnasium as gym
import numpy as np
import streamlit as st

from attribution import METHODS, integrated_gradients
from attribution.analysis.baselines import IMAGE_BASELINES, blurred, image_baseline
from attribution.analysis.episode_attribution import EpisodeAttribution
from attribution.engine.outputs import OUTPUTS, ExplainedOutput, outputs_for
from attribution.engine.quadrature import MAX_STEPS, METHOD_LABELS
from attribution.presentation.html_bars import bars_html
from attribution.presentation.overlay import (
    display_scale,
    frame_panels,
    painted_screen,
    png_data_url,
    tinted_boxes,
)
from attribution.presentation.plots import attribution_bars
from attribution.rl.environments import ENVIRONMENTS, image_shape, observation_parts
from attribution.rl.episodes import Episode
from attribution.rl.policies import (
    POLICY_SUFFIXES,
    Policy,
    PolicyError,
    load_policy,
    load_uploaded_policy,
    shipped_env_ids,
)


def _keep_keras_session(free_memory: bool = True) -> None:
    """Stands in for ``keras.backend.clear_session`` in the server: see ``keep_compiled_kernels``."""


def keep_compiled_kernels() -> None:
    """Stop Streamlit from clearing Keras's session after every script run.

    Streamlit's ScriptRunner calls ``keras.backend.clear_session()`` after each run and fragment run
    (``_clean_problem_modules``, for apps that build models in a loop). With TensorFlow that empties
    the eager kernel cache, so the next call of every compiled function is instantiated again
    (Grappler and XLA's passes: 15-19 ms for a policy's call, 40 ms more for a Pong IG call, measured
    on 2 cores), and it resets Keras's global state under other sessions running at that moment.
    The app builds its models once, cached, and never needs that clean-up."""
    import keras

    keras.backend.clear_session = _keep_keras_session


keep_compiled_kernels()  # before this module's first script run ends

DEFAULT_ENV = "CartPole-v1"
SPEEDS = {"1 step/s": 1.0, "2 steps/s": 0.5, "5 steps/s": 0.2, "10 steps/s": 0.1}  # Play: seconds per tick
BASELINES = ("zeros", "mean of reference states", "a reference state", "a custom state")
IMAGE_STEPS = 16  # Gauss-Legendre points for images by default; refine adds points wherever the gap stays above 1%


@st.cache_resource(show_spinner="Loading the policy…")
def policy_for(env_id: str):
    policy = load_policy(env_id)  # shared by every session: never mutated, called directly, never predict()
    # TensorFlow, Keras and the models are hundreds of thousands of long-lived Python objects; each
    # automatic full collection walked them all (about 200 ms, measured: a step took 400 ms instead
    # of 100). Freezing moves them out of the collector's sight, once per policy loaded.
    gc.collect()
    gc.freeze()
    return policy


@st.cache_resource(show_spinner=False, max_entries=64)
def explained_model(policy_key: str, _policy: Policy, kind: str, action_a: int = 1, action_b: int = 0):
    """The model whose output is explained (``OUTPUTS[kind]``); built once per policy and setting so the
    engine compiles once. ``policy_key`` names the policy (an environment id, or an uploaded file's digest)."""
    explained = OUTPUTS[kind].build(_policy.model, action_a, action_b)
    gc.collect()
    gc.freeze()  # as in policy_for
    return explained


@dataclasses.dataclass
class OpenEpisode:
    """The episode this session studies, and its attributions under the settings in ``key``;
    a fork of it (from step ``fork_step``) and the episode it is compared with, explained alike."""
    episode: Episode
    saved_as: str | None = None
    explained: EpisodeAttribution | None = None
    key: tuple | None = None
    fork_step: int = 0
    fork: Episode | None = None
    fork_explained: EpisodeAttribution | None = None
    compared: Episode | None = None
    compared_explained: EpisodeAttribution | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
    env_id: str
    policy_key: str   # the Environment choice: a shipped environment id, or an uploaded policy's label
    policy: Policy
    seed: int
    output: ExplainedOutput
    action_a: int
    action_b: int
    baseline_kind: str
    baseline: np.ndarray | None   # None when it is made per state (blurred) or could not be read (see error)
    steps: int
    method: str
    error: str | None = None

    @property
    def parts(self):
        """What the bars are about: the features, or the objects on a pixel agent's screen."""
        return observation_parts(self.env_id, self.policy.info.feature_names)

    @property
    def image(self) -> bool:
        return image_shape(self.env_id) is not None

    def baseline_for(self, states) -> np.ndarray:
        """The baseline for states (N, *obs): shared (*obs,), or one per state (N, *obs) when blurred."""
        return blurred(states) if self.baseline_kind == "blurred state" else self.baseline

    def baseline_at(self, state) -> np.ndarray:
        """The baseline for one state (*obs)."""
        return np.broadcast_to(self.baseline_for(np.asarray(state)[None]), (1, *np.shape(state)))[0]

    def target_for(self, action) -> int:
        """The output index explained when the agent took ``action``."""
        return self.output.target(action)

    def output_name(self, target: int, policy: Policy | None = None) -> str:
        """What is explained, for people: "P(push left)", "V(s)", ... (``policy``: another one than the sidebar's)."""
        names = (policy or self.policy).info.action_names
        return self.output.output_name(names, target, self.action_a, self.action_b)

    @property
    def explanation_key(self) -> tuple:
        """Everything that changes the attributions of a given policy and state."""
        baseline = hashlib.sha256(np.asarray(self.baseline, np.float32).round(6).tobytes()).hexdigest()
        return (self.output.kind, self.action_a, self.action_b, self.baseline_kind, baseline, self.steps, self.method)

    @property
    def report(self) -> dict:
        """How the attributions were computed, for files and reports."""
        return {
            "explain": self.output.label,
            "baseline": self.baseline_kind,
            "steps": self.steps,
            "method": self.method,
        }


def warm_up(env_id: str = DEFAULT_ENV) -> None:
    """Load ``env_id``'s policy (a vector environment's) and explain one state as the sidebar's
    defaults do, so that the engine is compiled before the first visitor opens the page (called once,
    as the server starts)."""
    policy = policy_for(env_id)
    output = outputs_for(policy.info.heads)[0]
    baseline, _ = baseline_state(BASELINES[0], policy)
    settings = Settings(env_id, env_id, policy, 0, output, 1, 0, BASELINES[0], baseline, 64, METHODS[0])
    state = policy.info.reference_states[0]
    explain_states(settings, [state], [settings.target_for(policy.act(state))], maps=settings.image)


def environment_choices() -> list[str]:
    """CartPole first, the other shipped environments, then this session's uploaded policies."""
    shipped = shipped_env_ids()
    return [DEFAULT_ENV] + [env_id for env_id in shipped if env_id != DEFAULT_ENV] + list(uploaded_policies())


def uploaded_policies() -> dict[str, Policy]:
    """This session's uploaded policies, by their label in "Environment" (``ENV_ID · file.keras · sha8``,
    the first digits of the file's SHA-256, so the same name with new contents is a new policy)."""
    return st.session_state.setdefault("uploaded_policies", {})


def chosen_policy(choice: str) -> Policy:
    return uploaded_policies()[choice] if choice in uploaded_policies() else policy_for(choice)


def _load_upload() -> None:
    """The uploaders' callback: load the policy file (with the normalisation file, if one is there) for
    the chosen id, or keep a message saying why not."""
    upload, env_id = st.session_state.get("policy_upload"), st.session_state.get("upload_env_id")
    statistics = st.session_state.get("normalization_upload")
    st.session_state.upload_error = st.session_state.upload_hint = None
    if upload is None:
        if statistics is not None:
            st.session_state.upload_hint = f"{statistics.name} is kept for its policy: now upload the policy."
        return
    data = upload.getvalue()
    normalization = (statistics.getvalue(), statistics.name) if statistics is not None else None
    digest = hashlib.sha256(data + (normalization[0] if normalization else b"")).hexdigest()[:8]
    label = f"{env_id} · {upload.name}{f' + {statistics.name}' if statistics else ''} · {digest}"
    if label not in uploaded_policies():
        try:
            uploaded_policies()[label] = load_uploaded_policy(data, upload.name, env_id, normalization=normalization)
        except PolicyError as error:
            st.session_state.upload_error = f"{upload.name} was not loaded: {error}"
            return
        gc.collect()
        gc.freeze()  # as in policy_for
    st.session_state.env_id = label  # show the new policy at once


def policy_uploader(current_env_id: str) -> None:
    with st.expander("Your own policy"):
        ids = sorted(gym.registry)
        st.selectbox("For environment", ids, index=ids.index(current_env_id) if current_env_id in ids else 0,
                     key="upload_env_id", help="any installed Gymnasium environment with a Box observation space")
        st.file_uploader("Upload a policy", type=[suffix.lstrip(".") for suffix in POLICY_SUFFIXES],
                         key="policy_upload", on_change=_load_upload,
                         help="a Keras 3 model (.keras), a Stable-Baselines3 model (.zip: PPO, A2C, DQN, SAC, TD3), "
                              "a CleanRL script's .cleanrl_model, or an ONNX graph (.onnx). No code in a file is ever "
                              "run: a file that would need it is refused")
        st.file_uploader("Its observation normalisation (optional)", type=["json", "npz"], key="normalization_upload",
                         on_change=_load_upload,
                         help="VecNormalize's mean, var, epsilon and clip_obs as JSON or .npz (the README shows "
                              "the lines that write it); folded into the model so attributions stay in the "
                              "environment's units. The policy is loaded again with it")
        if st.session_state.get("upload_error"):
            st.error(st.session_state.upload_error)
        if st.session_state.get("upload_hint"):
            st.info(st.session_state.upload_hint)


# The sidebar's widget keys (and key prefixes, for those made per environment or per kind of policy).
SIDEBAR_KEYS = ("env_id", "seed", "baseline_kind", "image_baseline_kind", "steps", "image_steps", "method",
                "upload_env_id")
SIDEBAR_KEY_PREFIXES = ("mode_", "contrast_a_", "contrast_b_", "reference_", "custom_")


def keep_sidebar_state() -> None:
    """Carry the sidebar's values over to the page being drawn.

    Each page draws the sidebar, and a widget belongs to the page that draws it, so on another page
    Streamlit would treat it as a new widget, back at its default. Writing each value back to its key
    before the widgets are drawn makes it session state that the next page's widgets start from.

    The values are also kept in a plain session-state dict, which Streamlit never clears. After a
    run of the live page's fragment, the sidebar's widget values were still there when that run
    ended but gone when the next page's run began, so that page came back with the defaults.
    """
    kept = st.session_state.setdefault("sidebar_values", {})
    kept.update({key: st.session_state[key] for key in list(st.session_state.keys())
                 if key in SIDEBAR_KEYS or key.startswith(SIDEBAR_KEY_PREFIXES)})
    for key, value in kept.items():
        st.session_state[key] = value


def sidebar() -> Settings:
    """The shared settings, drawn in the sidebar with the values they had on the last page."""
    keep_sidebar_state()
    with st.sidebar:
        choice = st.selectbox("Environment", environment_choices(), key="env_id")
        policy = chosen_policy(choice)
        env_id = policy.info.env_id
        seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="seed"))
        kinds = [output.kind for output in outputs_for(policy.info.heads)]
        output = OUTPUTS[st.selectbox("Explain", kinds, key="mode_" + "_".join(policy.info.heads),
                                      format_func=lambda kind: OUTPUTS[kind].label,
                                      help="which output of the network the attributions explain")]
        action_a, action_b = 1, 0
        if output.contrasts:
            names = policy.info.action_names
            left, right = st.columns(2)
            st.session_state.setdefault(f"contrast_a_{env_id}", 1)
            action_a = left.selectbox("A", range(len(names)), format_func=names.__getitem__, key=f"contrast_a_{env_id}")
            action_b = right.selectbox(
                "B", range(len(names)), format_func=names.__getitem__, key=f"contrast_b_{env_id}"
            )
        image = image_shape(env_id) is not None
        baseline_kind = st.selectbox("Baseline", IMAGE_BASELINES if image else BASELINES,
                                     key="image_baseline_kind" if image else "baseline_kind",
                                     help="the neutral state the explanation starts from")
        baseline, error = baseline_state(baseline_kind, policy)
        steps = int(
            st.number_input(
                "Steps",
                min_value=1,
                max_value=MAX_STEPS,
                value=IMAGE_STEPS if image else 64,
                step=1,
                key="image_steps" if image else "steps",  # refused -> the default
                help="points on the path from the baseline (raised automatically until the gap is under 1%)"
                     + ("; a CNN's point costs a thousand times an MLP's, so images start at 16" if image else ""),
            )
        )
        method = st.selectbox("Method", METHODS, key="method", format_func=METHOD_LABELS.get,
                              help="the quadrature rule along the path")
        if output.contrasts and action_a == action_b:
            error = "A and B are the same action: choose two different actions to contrast."
        if policy.info.training_method:
            st.caption(f"How this agent was trained: {policy.info.training_method}.")
        elif policy.info.source != "shipped":  # a user's file: what it was found to be
            st.caption(f"Loaded from {policy.info.source}: {policy.info.description}.")
        policy_uploader(env_id)
    return Settings(
        env_id, choice, policy, seed, output, action_a, action_b, baseline_kind, baseline, steps, method, error
    )


def page_start(title: str, caption: str | None = None) -> Settings:
    """The sidebar, then the page's title and caption; a setting that cannot be used stops the page
    with its message."""
    settings = sidebar()
    st.title(title)
    if caption:
        st.caption(caption)
    if settings.error:
        st.error(settings.error)
        st.stop()
    return settings


def baseline_state(kind: str, policy) -> tuple[np.ndarray | None, str | None]:
    """The sidebar's baseline (None for one made per state), or None and a message saying why not."""
    if kind in IMAGE_BASELINES:
        if kind == "blurred state":
            return None, None
        try:
            return image_baseline(kind, np.zeros((1, *image_shape(policy.info.env_id))), policy.info.median_state,
                                  policy.info.reference_states), None
        except ValueError as error:
            return None, f"The {kind} baseline cannot be used: {error}"
    reference = policy.info.reference_states
    n = len(policy.info.feature_names)
    if kind == "zeros":
        return np.zeros(policy.observation_shape, np.float32), None
    if kind == "mean of reference states":
        return reference.mean(axis=0), None
    if kind == "a reference state":
        index = st.slider("Reference state", 0, len(reference) - 1, key=f"reference_{policy.info.env_id}")
        return reference[index], None
    key = f"custom_{policy.info.env_id}"
    st.session_state.setdefault(key, ", ".join(f"{v:.3g}" for v in reference.mean(axis=0).reshape(-1)))
    text = st.text_input("Custom state", key=key, help=f"{n} numbers: " + ", ".join(policy.info.feature_names))
    values, error = parse_state(text, policy.info.feature_names)
    return (None, error) if values is None else (values.reshape(policy.observation_shape), None)


def parse_state(text: str, feature_names) -> tuple[np.ndarray | None, str | None]:
    """'0.1, -2, 3' -> (array, None), or (None, a message that says what was expected and received)."""
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values = np.array([float(p) for p in parts], dtype=np.float32)
    except ValueError:
        return None, f"The custom state must be {len(feature_names)} numbers separated by commas; received {text!r}."
    if len(values) != len(feature_names):
        return None, (f"The custom state needs {len(feature_names)} numbers ({', '.join(feature_names)}); "
                      f"received {len(values)}.")
    if not np.isfinite(values).all():
        return None, f"The custom state must be finite numbers; received {text!r}."
    return values, None


def explain_states(settings: Settings, states, targets, all_actions: bool = False, maps: bool = True,
                   max_steps: int | None = None):
    """IG of the explained output at ``states`` (N, *obs) under the sidebar's settings, with each
    part's sum (``group_sums``); ``maps=False`` brings back the sums alone. ``max_steps`` caps the
    points refinement may give a state (Play's pace; None: the engine's own cap)."""
    model = explained_model(settings.policy_key, settings.policy, settings.output.kind, settings.action_a,
                            settings.action_b)
    states = np.asarray(states, np.float32)
    budget = {} if max_steps is None else {"max_steps": max(max_steps, settings.steps)}
    return integrated_gradients(model, states, baseline=settings.baseline_for(states),
                                target="all" if all_actions else np.asarray(targets), steps=settings.steps,
                                method=settings.method, groups=settings.parts.groups(states), attributions=maps,
                                **budget)


# ---- what pages publish for each other ----

@dataclasses.dataclass(frozen=True)
class LiveState:
    """Where the Live page's episode is, for the Trust page."""
    policy_key: str
    step: int
    observation: np.ndarray


def publish_live_state(policy_key: str, step: int, observation) -> None:
    st.session_state.live_state = LiveState(policy_key, step, np.asarray(observation, np.float32))


def live_state() -> LiveState | None:
    return st.session_state.get("live_state")


def choice_for(episode: Episode) -> str | None:
    """The "Environment" choice whose policy recorded ``episode``, if this session has it: the one
    selected now where it fits (two uploads may share a file name), else the first that does."""
    if episode.policy == "shipped" and episode.env_id in environment_choices():
        return episode.env_id
    fitting = [label for label, policy in uploaded_policies().items()
               if policy.info.env_id == episode.env_id and policy.info.source == episode.policy]
    return st.session_state.get("env_id") if st.session_state.get("env_id") in fitting else next(iter(fitting), None)


def study_episode(episode: Episode, step: int = 0, saved_as: str | None = None, choice: str | None = None) -> None:
    """Open ``episode`` on the Replay page at ``step``. ``choice``: the Environment choice that played
    it, when the caller knows (it just played it); otherwise the one that matches the episode is
    selected, from a callback, before the sidebar is drawn."""
    st.session_state.replay = OpenEpisode(episode, saved_as)
    st.session_state.replay_step = max(0, min(int(step), len(episode) - 1))
    set_playing("replay", False)
    if choice is None:
        choice = choice_for(episode)
        if choice and st.session_state.get("env_id") != choice:
            st.session_state.env_id = choice


def studied_episode() -> OpenEpisode | None:
    """The episode open on the Replay page, if any."""
    return st.session_state.get("replay")


def studied_step() -> int:
    """The Replay page's current step of the studied episode."""
    current = studied_episode()
    return 0 if current is None else min(st.session_state.get("replay_step", 0), len(current.episode) - 1)


# ---- Play/Pause: a fragment that ticks while its page plays ----

def is_playing(page: str) -> bool:
    return st.session_state.get(f"{page}_playing", False)


def set_playing(page: str, playing: bool) -> None:
    st.session_state[f"{page}_playing"] = playing


def tick_interval(page: str, speed: str) -> float | None:
    """``run_every`` for the page's fragment: one tick per step at ``speed`` while playing, else None."""
    return SPEEDS[speed] if is_playing(page) else None


def play_button(column, page: str, was_playing: bool, disabled: bool = False) -> None:
    """Play/Pause inside the ticking fragment. ``was_playing``: whether the page was drawn playing.
    Starting or stopping reruns the whole page, so the fragment starts or stops ticking; so does a
    stop from elsewhere (Reset, a jump, the end of the episode)."""
    if column.button("Pause" if was_playing else "Play", width="stretch", disabled=disabled):
        set_playing(page, not was_playing)
        st.rerun()
    if was_playing and not is_playing(page):
        st.rerun()


def stop_playing(page: str) -> None:
    """Stop at the step on screen (the end of the episode, say): the whole page again, without ticks."""
    set_playing(page, False)
    st.rerun()


# ---- display ----

def state_sliders(policy: Policy, observation, key: str, columns: int = 1, reload: bool = False) -> np.ndarray:
    """One slider per feature, over the reference states' range widened by half of it each way (and
    always holding ``observation``), starting at ``observation`` the first time (or on ``reload``).
    Returns the edited state, float32 (*obs_shape,)."""
    reference = policy.info.reference_states.reshape(len(policy.info.reference_states), -1)
    low, high = reference.min(axis=0), reference.max(axis=0)
    span = np.maximum(high - low, 1e-3)
    observation = np.asarray(observation, np.float32).reshape(-1)
    cells = st.columns(columns) if columns > 1 else [st.container()]
    values = []
    for i, name in enumerate(policy.info.feature_names):
        slider_key = f"{key}_{i}"
        if reload or slider_key not in st.session_state:
            st.session_state[slider_key] = float(observation[i])
        values.append(
            cells[i % columns].slider(
                name,
                float(min(low[i] - 0.5 * span[i], observation[i])),
                float(max(high[i] + 0.5 * span[i], observation[i])),
                key=slider_key,
                format="%.3f",
            )
        )
    return np.array(values, dtype=np.float32).reshape(policy.observation_shape)


def painted_frame(settings: Settings, frame: np.ndarray, observation, target: int, key: str, result=None) -> None:
    """A pixel agent's screen with the attribution of its newest frame painted over it and its objects
    outlined, then one panel per stacked frame. ``result``: the state's IG with maps, if already computed."""
    if result is None:
        result = explain_states(settings, [observation], [target])
    maps = result.attributions[0]
    maps = maps[target] if maps.ndim == len(np.shape(observation)) + 1 else maps
    magnitude = st.toggle("Magnitude only", key=f"{key}_magnitude",
                          help="colour by how much each pixel mattered, whichever way it pushed")
    scale = display_scale(maps)
    picture = painted_screen(frame, maps[-1], settings.parts.outlines(observation), scale, magnitude)
    st.markdown(frame_html(picture), unsafe_allow_html=True)
    st.markdown(frame_html(frame_panels(observation, maps, ENVIRONMENTS[settings.env_id].frames, scale)),
                unsafe_allow_html=True)
    st.caption("Blue pixels pushed the explained output up, red ones down, as in the bars; the colours "
               "saturate at the 99th percentile of |attribution| (for display only). The small panels are the "
               "four stacked frames, oldest first: colour in the older ones means the agent uses motion.")


def frame_with_parts(settings: Settings, frame: np.ndarray, observation, attributions) -> np.ndarray:
    """The picture, with each part that has a place on it (a vehicle) tinted by its attribution and
    numbered by rank; the picture as it is for parts that have none (features)."""
    if not hasattr(settings.parts, "boxes"):
        return frame
    values = dict(zip(settings.parts.names, np.asarray(attributions, float), strict=True))
    boxes = settings.parts.boxes(observation)
    scale = max((abs(values[name]) for name in boxes), default=0.0)
    return tinted_boxes(frame, boxes, values, scale)


def present_parts(settings: Settings, observation, values) -> tuple[list[str], np.ndarray]:
    """The names and values of the parts present in ``observation`` (an empty vehicle slot gets no bar)."""
    present = settings.parts.present(observation)
    names = [name for name, shown in zip(settings.parts.names, present, strict=True) if shown]
    return names, np.asarray(values)[present]


def shown_bars(settings: Settings, observation, values, title: str):
    """The Plotly bar chart of the parts present in ``observation``."""
    return attribution_bars(*present_parts(settings, observation, values), title=title)


def shown_bars_html(settings: Settings, observation, values, title: str) -> str:
    """The same bars as HTML, drawn at once (the Live page's, and its player's)."""
    return bars_html(*present_parts(settings, observation, values), title=title)


def choice_caption(policy: Policy, actor: np.ndarray) -> str:
    """What a discrete policy made of the actions, from its actor head (n_actions,): a Q-network's
    Q-values (it takes the largest), or a policy's probabilities."""
    names = policy.info.action_names
    if policy.info.actor_head == "q_values":
        return "Q-values: " + " · ".join(f"{n} {q:.2f}" for n, q in zip(names, actor, strict=True))
    probabilities = np.exp(actor - np.max(actor))
    probabilities /= probabilities.sum()
    return "Policy: " + " · ".join(f"{n} {p:.0%}" for n, p in zip(names, probabilities, strict=True))


def feature_bars(settings: Settings, observation, target: int) -> str:
    """One bar per feature of the parts present in ``observation`` (a vehicle's x, y, vx, vy), not per
    part, as HTML."""
    result = explain_states(settings, [observation], [target])
    attributions = result.attributions[0].reshape(len(settings.parts.names), -1)  # (parts, features of each)
    present = settings.parts.present(observation)
    names = np.asarray(settings.policy.info.feature_names).reshape(attributions.shape)[present].ravel()
    return bars_html(list(names), attributions[present].ravel(), title="per feature")


def frame_html(frame: np.ndarray) -> str:
    """The frame inlined as a PNG data URI, as wide as its column. (``st.image`` serves frames as media
    files that a fast Play can replace before the browser fetches them: a 404 each time.) ``contain``
    overrides Streamlit's markdown ``object-fit: scale-down``, which would draw a frame narrower than its
    column at its own size, white space around it."""
    return f'<img src="{png_data_url(frame)}" style="width:100%; object-fit:contain" alt="the environment">'
