"""Why did the agent do that? The dashboard's entry point: ``streamlit run app.py``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Why did the agent do that?", page_icon="🔍", layout="wide")

navigation = st.navigation([
    st.Page("pages/live.py", title="Live", icon=":material/play_circle:", default=True),
    st.Page("pages/replay.py", title="Replay", icon=":material/replay:"),
    st.Page("pages/trust.py", title="Trust", icon=":material/verified:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/stacked_bar_chart:"),
    st.Page("pages/how_ig_works.py", title="How IG works", icon=":material/functions:"),
])
navigation.run()
