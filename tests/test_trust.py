"""The trust checks, on models where the answer is known."""

import keras
import numpy as np
import pytest

from attribution import explain, integrated_gradients
from attribution.analysis.trust import (
    Convergence,
    agreement,
    baseline_sensitivity,
    baseline_verdict,
    convergence,
    expected_gradients,
    faithfulness,
    gradients,
    method_comparison,
    method_verdict,
    randomisation_check,
    spearman,
)
from attribution.engine.examples import linear_model
from attribution.rl.policies import load_policy

from networks import mlp

WEIGHTS = np.array([[3.0, 0.0], [-2.0, 1.0], [0.5, 1.0], [1.0, -1.0]], np.float32)


@pytest.fixture(scope="module")
def linear():
    return linear_model(WEIGHTS, np.array([0.2, -0.1], np.float32))


def test_spearman():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_convergence_of_a_smooth_model_falls_with_steps(rng):
    found = convergence(mlp(), rng.normal(size=4) * 2, target=1)
    for method, gaps in found.relative_gap.items():
        assert gaps.shape == (7,)
        if method == "gausslegendre":
            assert gaps.max() < 1e-3  # exact for polynomials, so fast on smooth functions
        else:
            assert gaps[-1] < gaps[0] / 10 and gaps[-1] < 0.01, (method, gaps)
    assert found.verdict.passed and "64 points" in found.verdict.reason


def test_linear_model_faithfulness_is_the_ideal_curve(linear):
    state, baseline = np.array([1.0, -2.0, 3.0, 0.5], np.float32), np.zeros(4, np.float32)
    attributions = integrated_gradients(linear, state[None], baseline, target=0).attributions[0]
    found = faithfulness(linear, state, 0, attributions, baseline)
    at_state = float(state @ WEIGHTS[:, 0] + 0.2)
    ideal = at_state - np.concatenate([[0], np.cumsum(np.sort(attributions)[::-1])])
    np.testing.assert_allclose(found.deletion, ideal, rtol=1e-5, atol=1e-5)
    assert found.deletion[0] == pytest.approx(at_state) and found.insertion[-1] == pytest.approx(at_state)
    assert found.area_between > 0 and found.verdict.passed


def test_faithfulness_reports_when_the_choice_flips(linear):
    state = np.array([2.0, 0.0, 0.0, -3.0], np.float32)  # outputs 3.2 against 2.9: feature 0 (+6) decides
    attributions = integrated_gradients(linear, state[None], None, target=0).attributions[0]
    assert faithfulness(linear, state, 0, attributions).flips_at == 1


def test_a_randomised_network_changes_its_attributions():
    policy = load_policy("CartPole-v1")
    state = policy.info.reference_states[7]
    target = int(np.argmax(policy.action_probabilities(state)))
    weights_before = [w.copy() for w in policy.model.get_weights()]
    found = randomisation_check(policy.model, explain.action_probabilities, state, target)
    assert len(found.layers) >= 3 and found.attributions.shape == (len(found.layers) + 1, 4)
    assert not np.allclose(found.attributions[0], found.attributions[-1])
    assert found.verdict.passed, found.verdict.reason
    for before, after in zip(weights_before, policy.model.get_weights(), strict=True):  # the shared policy is untouched
        np.testing.assert_array_equal(before, after)


def test_attributions_that_ignore_the_weights_fail_the_sanity_check():
    x = keras.Input((3,))
    no_weights = keras.Model(x, keras.ops.stack([keras.ops.sum(x * x, axis=1), keras.ops.sum(x, axis=1)], axis=1))
    found = randomisation_check(no_weights, lambda m: m, np.array([1.0, 2.0, 3.0], np.float32), 0)
    assert not found.verdict.passed and "no trainable layers" in found.verdict.reason


def test_baselines_in_one_call_and_expected_gradients(linear, rng):
    state = rng.normal(size=4).astype(np.float32)
    baselines = {"zeros": np.zeros(4), "ones": np.ones(4), "mean": np.full(4, 0.3)}
    found = baseline_sensitivity(linear, state, 0, baselines)
    for name, baseline in baselines.items():
        np.testing.assert_allclose(found[name], (state - baseline) * WEIGHTS[:, 0], rtol=1e-5, atol=1e-6)
    references = rng.normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(expected_gradients(linear, state, 0, references),
                               (state - references.mean(axis=0)) * WEIGHTS[:, 0], rtol=1e-4, atol=1e-5)
    assert baseline_verdict({"a": found["zeros"], "b": found["zeros"] * 2}).passed
    assert not baseline_verdict({"a": found["zeros"], "b": -found["zeros"]}).passed


def test_other_methods_on_a_linear_model(linear):
    state = np.array([1.0, -2.0, 3.0, 0.5], np.float32)
    np.testing.assert_allclose(gradients(linear, state[None], 1)[0], WEIGHTS[:, 1], rtol=1e-6)
    found = method_comparison(linear, state, 0)
    # with a zero baseline and a linear model, gradient x input is IG; elsewhere they differ
    np.testing.assert_allclose(found["gradient x input"], found["integrated gradients"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(found["SmoothGrad over IG"], found["integrated gradients"], rtol=0.2, atol=0.2)
    assert agreement(found).shape == (4, 4) and np.allclose(np.diag(agreement(found)), 1)
    assert method_verdict(found).passed


def test_gradient_x_input_is_not_ig_on_a_nonlinear_model(rng):
    model, state = mlp(), (rng.normal(size=4) * 3).astype(np.float32)
    found = method_comparison(model, state, 0)
    gap_ig = abs(found["integrated gradients"].sum() - float(model(state[None])[0, 0] - model(np.zeros((1, 4)))[0, 0]))
    gap_gxi = abs(found["gradient x input"].sum() - float(model(state[None])[0, 0] - model(np.zeros((1, 4)))[0, 0]))
    assert gap_ig < 1e-3 < gap_gxi  # only IG adds up to the output's change


def test_faithfulness_over_many_states_averages_the_single_curves(rng):
    model = mlp()
    states = rng.normal(size=(5, 4)).astype(np.float32)
    found = integrated_gradients(model, states, target=0)
    together = faithfulness(model, states, 0, found.attributions)
    singles = [faithfulness(model, s, 0, a) for s, a in zip(states, found.attributions, strict=True)]
    assert together.states == 5
    np.testing.assert_allclose(together.deletion, np.mean([s.deletion for s in singles], axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        together.insertion, np.mean([s.insertion for s in singles], axis=0), rtol=1e-5, atol=1e-6
    )


def test_convergence_passes_a_gap_at_the_outputs_rounding_and_says_so():
    settled = Convergence((16, 32), {"gausslegendre": np.array([0.079, 0.05])}, 16, "gausslegendre", 3e-5, 2e-5)
    assert settled.verdict.passed and "as fine as 32-bit arithmetic resolves" in settled.verdict.reason
    moved = Convergence((16, 32), {"gausslegendre": np.array([0.079, 0.05])}, 16, "gausslegendre", 0.4, 1e-5)
    assert not moved.verdict.passed and "by 7.9%" in moved.verdict.reason

