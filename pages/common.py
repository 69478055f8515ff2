"""Streamlit glue shared by the pages (not a page itself): cached policies and explained models,
the sidebar's settings, uploaded policies, the episode a session studies, and small display helpers."""

from __future__ import annotations

import base64
import dataclasses
import gc
import hashlib
import io

import gymnasium as gym
import numpy as np
import streamlit as st
from PIL import Image

from attribution import METHODS, explain, integrated_gradients
from attribution.episodes import Episode
from attribution.policies import Policy, PolicyError, load_policy, load_uploaded_policy, shipped_env_ids
from attribution.quadrature import MAX_STEPS
from attribution.replay import EpisodeAttribution

DEFAULT_ENV = "CartPole-v1"
DISCRETE_MODES = ("action probability", "logit", "log-probability", "critic value", "A rather than B")
CONTINUOUS_MODES = ("continuous action", "critic value")
BASELINES = ("zeros", "mean of reference states", "a reference state", "a custom state")


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
def explained_model(policy_key: str, _policy: Policy, mode: str, action: int = 0, rather_than: int = 1):
    """The model whose output is explained; built once per policy and setting so the engine compiles
    once. ``policy_key`` names the policy (an environment id, or an uploaded file's digest)."""
    model = _policy.model
    explained = {
        "action probability": lambda: explain.action_probabilities(model),
        "logit": lambda: explain.action_logits(model),
        "log-probability": lambda: explain.action_log_probabilities(model),
        "critic value": lambda: explain.state_value(model),
        "A rather than B": lambda: explain.action_contrast(model, action, rather_than),
        "continuous action": lambda: explain.action_mean(model),
    }[mode]()
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
    mode: str
    action_a: int
    action_b: int
    baseline_kind: str
    baseline: np.ndarray | None   # None when the custom state could not be read (see error)
    steps: int
    method: str
    error: str | None = None


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
    """The uploader's callback: load the file for the chosen id, or keep a message saying why not."""
    upload, env_id = st.session_state.get("policy_upload"), st.session_state.get("upload_env_id")
    st.session_state.upload_error = None
    if upload is None:
        return
    data = upload.getvalue()
    label = f"{env_id} · {upload.name} · {hashlib.sha256(data).hexdigest()[:8]}"
    if label not in uploaded_policies():
        try:
            uploaded_policies()[label] = load_uploaded_policy(data, upload.name, env_id)
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
        st.file_uploader("Upload a policy (.keras)", type=["keras"], key="policy_upload", on_change=_load_upload,
                         help="a Keras 3 model from observations to logits (or the action mean), or to a dict "
                              "of heads; loaded in safe mode, so a file carrying code is refused")
        if st.session_state.get("upload_error"):
            st.error(st.session_state.upload_error)


# The sidebar's widget keys (and key prefixes, for those made per environment or per kind of policy).
SIDEBAR_KEYS = ("env_id", "seed", "baseline_kind", "steps", "method", "upload_env_id")
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
        modes = CONTINUOUS_MODES if policy.info.continuous else DISCRETE_MODES
        mode = st.selectbox("Explain", modes, key=f"mode_{policy.info.continuous}",
                            help="which output of the network the attributions explain")
        action_a, action_b = 0, 1
        if mode == "A rather than B":
            names = policy.info.action_names
            left, right = st.columns(2)
            st.session_state.setdefault(f"contrast_a_{env_id}", 1)
            action_a = left.selectbox("A", range(len(names)), format_func=names.__getitem__, key=f"contrast_a_{env_id}")
            action_b = right.selectbox("B", range(len(names)), format_func=names.__getitem__, key=f"contrast_b_{env_id}")
        baseline_kind = st.selectbox("Baseline", BASELINES, key="baseline_kind",
                                     help="the neutral state the explanation starts from")
        baseline, error = baseline_state(baseline_kind, policy)
        steps = int(st.number_input("Steps", min_value=1, max_value=MAX_STEPS, value=64, step=1, key="steps",  # refused -> 64
                                    help="points on the path from the baseline (raised automatically until the gap is under 1%)"))
        method = st.selectbox("Method", METHODS, key="method", help="the quadrature rule along the path")
        if mode == "A rather than B" and action_a == action_b:
            error = "A and B are the same action: choose two different actions to contrast."
        policy_uploader(env_id)
    return Settings(env_id, choice, policy, seed, mode, action_a, action_b, baseline_kind, baseline, steps, method, error)


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
    reference = policy.info.reference_states
    n = len(policy.info.feature_names)
    if kind == "zeros":
        return np.zeros(n, np.float32), None
    if kind == "mean of reference states":
        return reference.mean(axis=0), None
    if kind == "a reference state":
        index = st.slider("Reference state", 0, len(reference) - 1, key=f"reference_{policy.info.env_id}")
        return reference[index], None
    key = f"custom_{policy.info.env_id}"
    st.session_state.setdefault(key, ", ".join(f"{v:.3g}" for v in reference.mean(axis=0)))
    text = st.text_input("Custom state", key=key, help=f"{n} numbers: " + ", ".join(policy.info.feature_names))
    return parse_state(text, policy.info.feature_names)


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


def explained_output_name(settings, policy, target: int) -> str:
    """What is explained, for people: "P(push left)", "V(s)", ..."""
    names = policy.info.action_names
    if settings.mode == "critic value":
        return "V(s)"
    if settings.mode == "A rather than B":
        return f"log P({names[settings.action_a]}) − log P({names[settings.action_b]})"
    if settings.mode == "continuous action":
        return f"mean {names[0]}"
    return {"action probability": "P({})", "logit": "logit({})", "log-probability": "log P({})"}[settings.mode].format(names[target])


def target_for(settings, action) -> int:
    """The output index explained when the agent took ``action``: the action itself for the
    per-action modes; the one output of the others."""
    return int(action) if settings.mode in ("action probability", "logit", "log-probability") else 0


def explain_states(settings, states, targets, all_actions=False):
    """IG of the explained output at ``states`` (N, *obs) under the sidebar's settings."""
    model = explained_model(settings.policy_key, settings.policy, settings.mode, settings.action_a, settings.action_b)
    return integrated_gradients(model, np.asarray(states, np.float32), baseline=settings.baseline,
                                target="all" if all_actions else np.asarray(targets), steps=settings.steps,
                                method=settings.method)


def frame_html(frame: np.ndarray) -> str:
    """The frame inlined as a PNG data URI. (``st.image`` serves frames as media files that a fast
    Play can replace before the browser fetches them: a 404 each time.)"""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=1)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{encoded}" style="width:100%" alt="the environment">'
