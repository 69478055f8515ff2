"""The floor for the Live page's Step: a Streamlit page that draws what Live draws at a step
(CartPole's frame, the metrics, the sentence, the bars, the time chart, the completeness line) with
no model: the cart is pushed left and right in turn, and the numbers are canned.
``benchmarks/live_latency.py`` serves it beside the app; a Live Step can be no faster than a Step here.

    streamlit run benchmarks/floor_page.py
"""

import gc
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamlit puts only benchmarks/ on the path

from attribution.presentation.html_bars import bars_html  # noqa: E402
from attribution.presentation.plots import attribution_timeline  # noqa: E402
from pages.common import frame_html  # noqa: E402

gc.freeze()  # as the app does once its policy is loaded: TensorFlow's objects out of the collector's sight

NAMES = ["cart position (m)", "cart velocity (m/s)", "pole angle (rad)", "pole angular velocity (rad/s)"]

def step():
    floor = st.session_state.floor
    floor["environment"].step(floor["t"] % 2)
    floor["t"] += 1
    floor["history"] = np.concatenate([floor["history"], floor["generator"].normal(size=(1, 4)).astype(np.float32)])


@st.fragment
def view():
    floor = st.session_state.floor
    t, history = floor["t"], floor["history"]
    values = history[-1] if t else np.zeros(4, np.float32)
    controls = st.columns(4)
    controls[0].button("Reset", width="stretch")
    controls[1].button("Step", width="stretch", on_click=step)
    controls[2].button("Play", width="stretch")
    controls[3].button("Open in replay", width="stretch")
    frame_col, info_col = st.columns([1, 1])
    frame_col.markdown(frame_html(floor["environment"].render()), unsafe_allow_html=True)
    with info_col:
        metrics = st.columns(2)
        metrics[0].metric("Step", t)
        metrics[1].metric("Return so far", f"{t:.1f}")
        st.metric("Action", "push right")
        st.caption("Policy: push left 3% · push right 97%")
        st.success("The agent chose PUSH RIGHT mostly because the pole is falling right (+0.31).")
    bars_col, timeline_col = st.columns([2, 3])
    with bars_col:
        st.markdown(bars_html(NAMES, values, title="why P(push right)"), unsafe_allow_html=True)
        st.info("attributions sum to +0.42; P(push right) rose from 0.50 at the baseline to 0.92: gap 0.2%")
        st.caption("Attribution on CPU: 0.0 ms, 64 path points (gausslegendre).")
    with timeline_col:
        if t:
            st.radio("Chart", ["lines", "heatmap"], horizontal=True, key="timeline_kind", label_visibility="collapsed")
            figure = attribution_timeline(NAMES, history, np.ones(t, int), np.ones(t), ["push left", "push right"])
            st.plotly_chart(figure, key="timeline", on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False})


def floor_page() -> None:
    """A visitor's session: the page, drawn as Live draws its step."""
    st.set_page_config(page_title="Floor", layout="wide")
    with st.sidebar:  # the app's sidebar, widget for widget, with nothing behind it
        st.selectbox("Environment", ["CartPole-v1", "Acrobot-v1"])
        st.number_input("Seed", min_value=0, step=1)
        st.selectbox("Explain", ["action probability", "logit"])
        st.selectbox("Baseline", ["zeros", "mean of reference states"])
        st.number_input("Steps", min_value=1, value=64, step=1)
        st.selectbox("Method", ["gausslegendre", "riemann_trapezoid"])
        st.caption("How this agent was trained: nothing; this page has no agent.")
        with st.expander("Your own policy"):
            st.selectbox("For environment", ["CartPole-v1"])
            st.file_uploader("Upload a policy", type=["keras", "zip"])
            st.file_uploader("Its observation normalisation (optional)", type=["json", "npz"])
    st.title("Why did the agent do that?")
    st.caption("the floor: the Live page's drawing with no model")
    options = st.columns([2, 3, 3])
    options[0].selectbox("Speed", ["15 steps/s"], label_visibility="collapsed")
    options[1].toggle("Bars for every action")
    options[2].toggle("What if the state were different?")
    if "floor" not in st.session_state:
        environment = gym.make("CartPole-v1", render_mode="rgb_array")
        environment.reset(seed=0)
        st.session_state.floor = {"t": 0, "environment": environment, "history": np.zeros((0, 4), np.float32),
                                  "generator": np.random.default_rng(0)}
    view()


if __name__ == "__main__":  # a visitor's session
    floor_page()
else:  # imported by ``streamlit run`` to serve the page, with the app's server settings
    from pages.server import send_without_delay  # noqa: E402

    send_without_delay()
    app = st.App(__file__)
