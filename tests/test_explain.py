"""The wrappers that choose what is explained, checked through IG's own algebra."""

import keras
import numpy as np
import pytest

from attribution import explain, integrated_gradients


def actor_critic(n_obs=4, n_actions=3, seed=0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    obs = keras.Input((n_obs,))
    hidden = keras.layers.Dense(32, activation="tanh")(obs)
    return keras.Model(obs, {"logits": keras.layers.Dense(n_actions)(hidden), "value": keras.layers.Dense(1)(hidden)})


def gaussian_actor(seed=0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    obs = keras.Input((3,))
    hidden = keras.layers.Dense(16, activation="tanh")(obs)
    return keras.Model(
        obs, {"mean": keras.layers.Dense(1, activation="tanh")(hidden), "value": keras.layers.Dense(1)(hidden)}
    )


@pytest.fixture(scope="module")
def policy():
    return actor_critic()


@pytest.fixture(scope="module")
def states():
    return np.random.default_rng(1).normal(size=(25, 4)) * 2


def test_heads_are_what_their_names_say(policy, states):
    heads = policy(states)
    logits = heads["logits"].numpy()
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(explain.action_logits(policy)(states), logits, rtol=1e-6)
    np.testing.assert_allclose(explain.action_probabilities(policy)(states), probabilities, rtol=1e-5)
    np.testing.assert_allclose(
        explain.action_log_probabilities(policy)(states), np.log(probabilities), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(explain.state_value(policy)(states), heads["value"], rtol=1e-6)
    np.testing.assert_allclose(
        explain.action_contrast(policy, 2, 0)(states), logits[:, 2:3] - logits[:, 0:1], rtol=1e-5, atol=1e-6
    )


def test_probability_attributions_over_all_actions_add_up_to_zero(policy, states):
    """Probabilities sum to 1 at x and at x', so what pushes one action up pushes the others down."""
    result = integrated_gradients(explain.action_probabilities(policy), states, target="all")
    np.testing.assert_allclose(result.attributions.sum(axis=1), 0.0, atol=1e-5)


def test_contrast_is_the_difference_of_log_probability_attributions(policy, states):
    """IG is linear in the explained output, and log p_a - log p_b = logit_a - logit_b."""
    contrast = integrated_gradients(explain.action_contrast(policy, 1, 2), states, target=0, refine=False)
    log_p = integrated_gradients(explain.action_log_probabilities(policy), states, target="all", refine=False)
    np.testing.assert_allclose(
        contrast.attributions, log_p.attributions[:, 1] - log_p.attributions[:, 2], rtol=1e-4, atol=1e-5
    )


def test_value_and_continuous_mean_are_explained_completely():
    actor = gaussian_actor()
    states = np.random.default_rng(2).normal(size=(40, 3))
    for model in (explain.action_mean(actor), explain.state_value(actor)):
        assert model.output_shape == (None, 1)
        result = integrated_gradients(model, states, target=0)
        assert (np.abs(result.delta) <= 0.01 * np.abs(result.output_change) + 1e-6).all()


def test_a_single_output_network_is_its_own_head(states):
    q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    np.testing.assert_allclose(explain.q_values(q_network)(states), q_network(states), rtol=1e-6)


def test_raw_observation_attributions_equal_normalized_ones_and_are_in_raw_units(policy, states):
    mean, std = np.array([1.0, -2.0, 0.5, 10.0]), np.array([2.0, 0.5, 1.0, 4.0])
    raw_policy = explain.on_raw_observations(policy, mean, std)
    raw_states, raw_baseline = states * std + mean, mean + std * 0.3
    raw = integrated_gradients(
        explain.action_probabilities(raw_policy), raw_states, baseline=raw_baseline, target="all", refine=False
    )
    normalized = integrated_gradients(
        explain.action_probabilities(policy), states, baseline=np.full(4, 0.3), target="all", refine=False
    )
    np.testing.assert_allclose(raw.attributions, normalized.attributions, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(raw.outputs, normalized.outputs, rtol=1e-5, atol=1e-6)


def test_unknown_head_lists_the_known_ones(policy):
    with pytest.raises(ValueError, match=r"has no head 'mean'; its heads are \['logits', 'value'\]"):
        explain.action_mean(policy)


@pytest.mark.parametrize("action, rather_than, message", [
    (3, 0, r"action must be an action index in \[0, 3\); received 3"),
    (0, -1, r"rather_than must be an action index in \[0, 3\); received -1"),
    (1, 1, r"must differ.*received 1 twice"),
])
def test_bad_contrast(policy, action, rather_than, message):
    with pytest.raises(ValueError, match=message):
        explain.action_contrast(policy, action, rather_than)


def test_bad_normalization(policy):
    with pytest.raises(ValueError, match="std finite and positive"):
        explain.on_raw_observations(policy, np.zeros(4), np.array([1.0, 0.0, 1.0, 1.0]))


def test_not_a_model():
    with pytest.raises(ValueError, match="policy must be a keras.Model; received dict"):
        explain.action_probabilities({"logits": None})


# ---- the registry of explained outputs ----

def test_every_registered_output_builds_from_a_policy_with_its_head(policy, states):
    from attribution.engine.outputs import OUTPUTS, outputs_for

    assert [o.kind for o in outputs_for(("logits", "value"))] == ["probability", "logit", "log_probability", "value",
                                                                  "contrast"]
    assert [o.kind for o in outputs_for(("mean", "value"))] == ["mean", "value"]
    assert [o.kind for o in outputs_for(("q_values",))] == ["q_value"]
    q_network, actor = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), gaussian_actor()
    for output in OUTPUTS.values():
        model = {"q_values": q_network, "mean": actor}.get(output.head, policy)
        explained = output.build(model, 2, 0)
        assert explained.output_shape[-1] == (3 if output.per_action else 1), output.kind
        observations = states[:, :3] if model is actor else states
        result = integrated_gradients(explained, observations, target=output.target(2 if output.per_action else 0))
        assert np.all(result.relative_delta < 0.01), output.kind


def test_outputs_choose_their_targets_and_name_them():
    from attribution.engine.outputs import OUTPUTS

    names = ("left", "stay", "right")
    assert [OUTPUTS[k].target(2) for k in ("probability", "logit", "log_probability", "q_value")] == [2, 2, 2, 2]
    assert [OUTPUTS[k].target(np.float32(0.7)) for k in ("mean",)] == [0]
    assert [OUTPUTS[k].target(2) for k in ("value", "contrast")] == [0, 0]
    assert OUTPUTS["probability"].output_name(names, 2) == "P(right)"
    assert OUTPUTS["q_value"].output_name(names, 1) == "Q(s, stay)"
    assert OUTPUTS["value"].output_name(names, 0) == "V(s)"
    assert OUTPUTS["contrast"].output_name(names, 0, 2, 0) == "log P(right) − log P(left)"
    assert OUTPUTS["mean"].output_name(("torque (N·m)",), 0) == "mean torque (N·m)"


def test_no_module_outside_the_registry_compares_ui_labels():
    from pathlib import Path

    from attribution.engine.outputs import OUTPUTS

    root = Path(__file__).resolve().parents[1]
    for path in [*root.glob("pages/*.py"), *root.glob("attribution/**/*.py")]:
        if path.name == "outputs.py":
            continue
        text = path.read_text()
        quoted = [o.label for o in OUTPUTS.values() if f'"{o.label}"' in text or f"'{o.label}'" in text]
        assert not quoted, f"{path.relative_to(root)} spells out {quoted}: use OUTPUTS[kind] instead"
