"""Why did the agent do that? The dashboard's entry point: ``streamlit run app.py``.

Each visitor's session runs this file as a script: it draws the navigation. ``streamlit run`` also
imports it to start the server (``app``, an ``st.App``); the server then warms up in the background
as it starts, so that TensorFlow, the opening policy and its compiled attribution are ready before
the first visitor asks for them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users

import streamlit as st  # noqa: E402

if __name__ == "__main__":  # a visitor's session
    st.set_page_config(page_title="Why did the agent do that?", page_icon="🔍", layout="wide")
    navigation = st.navigation([
        st.Page("pages/live.py", title="Live", icon=":material/play_circle:", default=True),
        st.Page("pages/replay.py", title="Replay", icon=":material/replay:"),
        st.Page("pages/trust.py", title="Trust", icon=":material/verified:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/stacked_bar_chart:"),
        st.Page("pages/how_ig_works.py", title="How IG works", icon=":material/functions:"),
    ])
    navigation.run()
else:  # imported by ``streamlit run`` to serve the app
    import contextlib
    import logging
    import threading

    def _warm_up() -> None:
        # Streamlit's caches warn when used outside a visitor's session ("missing ScriptRunContext"):
        # expected here, and not for the terminal
        context_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
        context_log.disabled = True
        try:
            from pages.common import warm_up

            warm_up()
        finally:
            context_log.disabled = False

    from pages.server import cap_malloc_arenas, send_without_delay

    send_without_delay()
    cap_malloc_arenas()

    @contextlib.asynccontextmanager
    async def _lifespan(_app):
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
        yield

    app = st.App(__file__, lifespan=_lifespan)
