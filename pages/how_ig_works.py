"""How IG works: the IG paper's two-input example, live, for people new to attributions."""

import numpy as np
import streamlit as st

from attribution import METHODS, integrated_gradients
from attribution.engine.examples import paper_network_1
from attribution.engine.quadrature import MAX_STEPS, METHOD_LABELS
from attribution.presentation.narrate import completeness_sentence
from attribution.presentation.plots import attribution_bars
from pages.common import keep_sidebar_state


@st.cache_resource
def network():
    return paper_network_1()  # shared by all sessions and never changed


keep_sidebar_state()  # this page draws no sidebar: the other pages' settings wait here for the user
st.title("How Integrated Gradients works")
st.markdown(
    "An agent's network turns what it observes into a decision. **Integrated Gradients** asks how much each "
    "input feature moved that decision away from a neutral **baseline** input: it walks a straight path from the "
    "baseline to the real input and adds up, feature by feature, how the output changed along the way. "
    "The pieces always add up to the whole change (*completeness*), and the app always shows how close they come."
)
st.markdown("Below is the example from the IG paper (Sundararajan et al., 2017): "
            "$f(x_1, x_2) = \\mathrm{ReLU}(\\mathrm{ReLU}(x_1) - 1 - \\mathrm{ReLU}(x_2))$, baseline $(0, 0)$.")

controls, chart = st.columns([1, 2])
with controls:
    x1 = st.slider("x1", -2.0, 5.0, 3.0, 0.1)
    x2 = st.slider("x2", -2.0, 5.0, 1.0, 0.1)
    steps = st.number_input("Steps", min_value=1, max_value=MAX_STEPS, value=64, help="points on the path")
    method = st.selectbox("Method", METHODS, format_func=METHOD_LABELS.get,
                          help="the quadrature rule that adds the path up")
    refine = st.toggle("Refine", value=True, help="add path points until the pieces add up to within 1%")

try:
    result = integrated_gradients(network(), [[x1, x2]], target=0, steps=int(steps), method=method, refine=refine)
except ValueError as error:
    st.error(str(error))
    st.stop()

with chart:
    st.plotly_chart(attribution_bars(["x1", "x2"], result.attributions[0], title="attribution of f"),
                    key="paper_bars", config={"displayModeBar": False})
    st.info(completeness_sentence("f", float(result.outputs[0, 0]), float(result.baseline_outputs[0, 0]),
                                  float(result.attributions[0].sum())))
    if result.steps[0] != steps:
        st.caption(f"Refined from {steps} to {result.steps[0]} path points to bring the gap under 1%: the stretches "
                   f"of the path whose sums fall short are cut in half and added up again, so the new points go "
                   f"where f bends.")
    if np.allclose([x1, x2], [3.0, 1.0]):
        st.caption("At (3, 1) the paper finds (1.5, −0.5): x1 raised f by 1.5, x2 lowered it by 0.5.")
