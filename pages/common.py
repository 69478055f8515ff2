"""Streamlit glue shared by the pages (not a page itself): cached policies and explained models,
and the sidebar's settings."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import streamlit as st

from attribution import METHODS, explain
from attribution.policies import load_policy, shipped_env_ids
from attribution.quadrature import MAX_STEPS

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


@st.cache_resource(show_spinner=False)
def explained_model(env_id: str, mode: str, action: int = 0, rather_than: int = 1):
    """The model whose output is explained; built once per setting so the engine compiles once."""
    model = policy_for(env_id).model
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


@dataclasses.dataclass(frozen=True)
class Settings:
    env_id: str
    seed: int
    mode: str
    action_a: int
    action_b: int
    baseline_kind: str
    baseline: np.ndarray | None   # None when the custom state could not be read (see error)
    steps: int
    method: str
    error: str | None = None


def environment_ids() -> list[str]:
    shipped = shipped_env_ids()
    return [DEFAULT_ENV] + [env_id for env_id in shipped if env_id != DEFAULT_ENV]


def sidebar() -> Settings:
    """The shared settings, drawn in the sidebar."""
    with st.sidebar:
        env_id = st.selectbox("Environment", environment_ids(), key="env_id")
        policy = policy_for(env_id)
        seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="seed"))
        modes = CONTINUOUS_MODES if policy.info.continuous else DISCRETE_MODES
        mode = st.selectbox("Explain", modes, key=f"mode_{policy.info.continuous}",
                            help="which output of the network the attributions explain")
        action_a, action_b = 0, 1
        if mode == "A rather than B":
            names = policy.info.action_names
            left, right = st.columns(2)
            action_a = left.selectbox("A", range(len(names)), format_func=names.__getitem__, index=1, key=f"a_{env_id}")
            action_b = right.selectbox("B", range(len(names)), format_func=names.__getitem__, index=0, key=f"b_{env_id}")
        baseline_kind = st.selectbox("Baseline", BASELINES, key="baseline_kind",
                                     help="the neutral state the explanation starts from")
        baseline, error = baseline_state(baseline_kind, policy)
        steps = int(st.number_input("Steps", min_value=1, max_value=MAX_STEPS, value=64, step=1, key="steps",
                                    help="points on the path from the baseline (raised automatically until the gap is under 1%)"))
        method = st.selectbox("Method", METHODS, key="method", help="the quadrature rule along the path")
        if mode == "A rather than B" and action_a == action_b:
            error = "A and B are the same action: choose two different actions to contrast."
    return Settings(env_id, seed, mode, action_a, action_b, baseline_kind, baseline, steps, method, error)


def baseline_state(kind: str, policy) -> tuple[np.ndarray | None, str | None]:
    reference = policy.info.reference_states
    n = len(policy.info.feature_names)
    if kind == "zeros":
        return np.zeros(n, np.float32), None
    if kind == "mean of reference states":
        return reference.mean(axis=0), None
    if kind == "a reference state":
        index = st.slider("Reference state", 0, len(reference) - 1, 0, key=f"reference_{policy.info.env_id}")
        return reference[index], None
    text = st.text_input("Custom state", ", ".join(f"{v:.3g}" for v in reference.mean(axis=0)),
                         key=f"custom_{policy.info.env_id}", help=f"{n} numbers: " + ", ".join(policy.info.feature_names))
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
