"""Trust: can this explanation be believed? Five checks of one state's explanation, each with a verdict."""

from __future__ import annotations

import numpy as np
import streamlit as st

from attribution.analysis import trust
from attribution.analysis.baselines import blurred, empty_playfield
from attribution.engine.outputs import OUTPUTS
from attribution.presentation.narrate import TRUST_CHECKS
from attribution.presentation.plots import (
    agreement_heatmap,
    convergence_chart,
    faithfulness_chart,
    grouped_bars,
    randomisation_chart,
)
from attribution.rl.environments import image_shape, observation_parts
from pages.common import chosen_policy, explained_model, live_state, page_start, studied_episode, studied_step


@st.cache_data(show_spinner="Running the checks…", max_entries=32)
def run_checks(policy_key: str, kind: str, action_a: int, action_b: int, state: bytes, target: int,
               baselines: tuple, steps: int, method: str):
    """Every check at one state (cached: each argument is hashable, the models come from the caches).
    ``state`` and the baselines' values are float32 bytes. On an image, the bars are the objects' sums,
    and occlusion of each object stands in for the per-feature deletion curves."""
    policy = chosen_policy(policy_key)
    model = explained_model(policy_key, policy, kind, action_a, action_b)
    shape = policy.observation_shape
    x = np.frombuffer(state, np.float32).reshape(shape)
    named = {name: np.frombuffer(values, np.float32).reshape(shape) for name, values in baselines}
    used = named["the app's baseline"]
    reference = policy.info.reference_states
    by_baseline = trust.baseline_sensitivity(model, x, target, named)
    by_baseline[f"averaged over {min(64, len(reference))} reference states"] = trust.expected_gradients(
        model, x, target, reference[:64])
    by_method = trust.method_comparison(model, x, target, used, scale=reference.std(axis=0) + 1e-3)
    found = {
        "convergence": trust.convergence(model, x, target, used, steps, method),
        "baselines": by_baseline,
        "methods": by_method,
        "sanity": trust.randomisation_check(policy.model, lambda m: OUTPUTS[kind].build(m, action_a, action_b), x,
                                            target, used),
    }
    parts = observation_parts(policy.info.env_id, policy.info.feature_names)
    if parts.kind == "feature":
        found["faithfulness"] = trust.faithfulness(model, x, target, by_method["integrated gradients"], used)
        return found
    groups = parts.groups(x[None])
    for check in ("baselines", "methods"):  # 28,224 pixel bars say nothing: one bar per object
        found[check] = {name: groups.sums(values[None])[0] for name, values in found[check].items()}
    image = image_shape(policy.info.env_id) is not None
    # an object painted over with the empty playfield (its last group, the rest, is left alone); a vehicle
    # taken away leaves an empty slot, all zeros
    background = empty_playfield(policy.info.median_state, reference) if image else np.zeros_like(x)
    found["occlusion"] = trust.occlusion(model, x, target, groups, found["methods"]["integrated gradients"],
                                         background, skip_last=image)
    return found


settings = page_start("Can this explanation be believed?",
                      "Five checks of the explanation at one state. Each says in two sentences what it tests, "
                      "and gives a verdict.")
policy, parts = settings.policy, settings.parts
names = parts.names

sources = {}
live = live_state()
if live is not None and live.policy_key == settings.policy_key:
    sources[f"the Live page's current state (step {live.step})"] = live.observation
replay = studied_episode()
if replay is not None and replay.episode.env_id == settings.env_id and replay.episode.policy == policy.info.source:
    t = studied_step()
    sources[f"the Replay page's step {t}"] = replay.episode.observations[t]
reference = policy.info.reference_states
source = st.radio("State to check", [*sources, "a reference state"], horizontal=True, key="trust_source")
if source == "a reference state":
    index = st.slider("Reference state", 0, len(reference) - 1, 0, key=f"trust_reference_{settings.policy_key}")
    state = reference[index]
else:
    state = sources[source]
state = np.asarray(state, np.float32)

action = policy.act(state)
target = settings.target_for(action)
output_name = settings.output_name(target)
if settings.image:
    st.markdown(f"State: {parts.descriptions(state)[0].replace(' ({value})', '')}. Explained: **{output_name}**.")
    baselines = {"the app's baseline": settings.baseline_at(state), "black": np.zeros_like(state),
                 "empty playfield": empty_playfield(policy.info.median_state, reference),
                 "blurred state": blurred(state[None])[0]}
else:
    if parts.kind == "feature":
        described = ", ".join(f"{name} **{value:.3g}**" for name, value in zip(names, state.reshape(-1), strict=True))
    else:  # vehicles: where each one is
        described = "; ".join(text.replace(" ({value})", "") for text, shown in
                              zip(parts.descriptions(state), parts.present(state), strict=True) if shown)
    st.markdown(f"State: {described}. Explained: **{output_name}**.")
    baselines = {"the app's baseline": settings.baseline, "zeros": np.zeros_like(state),
                 "mean of reference states": reference.mean(axis=0), "reference state 0": reference[0]}
found = run_checks(
    settings.policy_key,
    settings.output.kind,
    settings.action_a,
    settings.action_b,
    state.tobytes(),
    target,
    tuple((k, np.asarray(v, np.float32).tobytes()) for k, v in baselines.items()),
    settings.steps,
    settings.method,
)
last_check = "faithfulness" if "faithfulness" in found else "occlusion"
verdicts = {"convergence": found["convergence"].verdict, "baselines": trust.baseline_verdict(found["baselines"]),
            "methods": trust.method_verdict(found["methods"]), "sanity": found["sanity"].verdict,
            last_check: found[last_check].verdict}

def verdict_line(check: str, verdict: trust.Verdict) -> str:
    return f"**{verdict.label.upper()}** · {TRUST_CHECKS[check][0]} {verdict.reason[0].upper()}{verdict.reason[1:]}."


st.subheader("Verdicts")
for check, verdict in verdicts.items():
    (st.success if verdict.passed else st.warning)(verdict_line(check, verdict))


def section(check: str) -> None:
    question, sentences = TRUST_CHECKS[check]
    st.subheader(question)
    st.markdown(sentences)


section("convergence")
convergence = found["convergence"]
st.plotly_chart(convergence_chart(convergence.steps, convergence.relative_gap, settings.steps, settings.method),
                key="trust_convergence", config={"displayModeBar": False})

section("baselines")
st.plotly_chart(grouped_bars(names, found["baselines"]), key="trust_baselines", config={"displayModeBar": False})

section("methods")
methods = found["methods"]
left, right = st.columns([3, 2])
left.plotly_chart(grouped_bars(names, methods), key="trust_methods", config={"displayModeBar": False})
right.plotly_chart(agreement_heatmap(list(methods), trust.agreement(methods)), key="trust_agreement",
                   config={"displayModeBar": False})
ig_sum, gxi_sum = float(methods["integrated gradients"].sum()), float(methods["gradient x input"].sum())
st.caption(f"IG's bars add up to {ig_sum:+.3g}; gradient × input's add up to {gxi_sum:+.3g}. Only IG's sum is the "
           "output's change from the baseline (the Live page's completeness check).")

section("sanity")
sanity = found["sanity"]
st.plotly_chart(
    randomisation_chart(sanity.layers, sanity.similarity), key="trust_sanity", config={"displayModeBar": False}
)
st.caption(f"The ranks of the bars' lengths alone keep a correlation of {sanity.magnitude_similarity:+.2f}: lengths "
           "partly follow the state's own scale whatever the weights, which is why signs and order are compared.")

if last_check == "occlusion":
    section("occlusion")
    occluded = found["occlusion"]
    st.plotly_chart(grouped_bars(list(occluded.names), {"integrated gradients": occluded.ig,
                                                        "occlusion (output change)": occluded.change}),
                    key="trust_occlusion", config={"displayModeBar": False})
    st.caption(f"IG and occlusion rank the objects with a correlation of {occluded.agreement:+.2f}. Occlusion "
               "is not additive: its changes need not add up to the output's change, IG's do.")
    st.stop()

section("faithfulness")
faith = found["faithfulness"]
if replay is not None and replay.explained is not None and replay.key and replay.key[0] == settings.policy_key and \
        st.toggle(f"Over every step of the Replay episode ({len(replay.episode)} steps)", key="trust_whole_episode"):
    faith = trust.faithfulness(explained_model(settings.policy_key, policy, settings.output.kind, settings.action_a,
                                               settings.action_b),
                               replay.episode.observations, replay.explained.targets, replay.explained.attributions,
                               settings.baseline)
    st.caption(verdict_line("faithfulness", faith.verdict))
st.plotly_chart(faithfulness_chart(faith.deletion, faith.insertion, faith.random_deletion, faith.random_insertion,
                                   output_name), key="trust_faithfulness", config={"displayModeBar": False})
if faith.flips_at is None:
    st.caption("The policy's choice never changes as features are reset, even all of them.")
elif faith.states == 1:
    st.caption(f"The policy's choice changes once the {faith.flips_at:.0f} most important feature(s) are reset.")
else:
    st.caption(f"Where the policy's choice changes, it does after {faith.flips_at:.1f} features are reset, on average.")
