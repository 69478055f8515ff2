"""Plain-language readings: right for every shipped environment, and honest about the numbers."""

import numpy as np
import pytest

from attribution.presentation.narrate import completeness_sentence, runs_sentence, settled_sentence, step_sentence
from attribution.rl.environments import ENVIRONMENTS, Phrase, VectorFeatures, phrases

CARTPOLE = ENVIRONMENTS["CartPole-v1"].phrases


def said(subject, values, observation, feature_phrases):
    """The sentence for a vector observation, read by its phrases."""
    parts = VectorFeatures(tuple(f"x{i}" for i in range(len(feature_phrases))), tuple(feature_phrases))
    return step_sentence(subject, values, parts.descriptions(observation))


def test_the_issues_example():
    sentence = said("The agent pushed RIGHT", [0.01, -0.02, 0.31, 0.12], [0.0, -0.1, 0.05, 0.4], CARTPOLE)
    assert (
        sentence
        == "The agent pushed RIGHT mostly because the pole leans right (+0.31) and the pole is falling right (+0.12)."
    )


def test_a_feature_that_pushed_against_is_named_when_it_matters():
    sentence = said("The agent pushed LEFT", [0.0, -0.2, 0.5, 0.0], [0.0, 0.3, -0.05, 0.0], CARTPOLE)
    assert (
        sentence
        == "The agent pushed LEFT mostly because the pole leans left (+0.5), even though the cart moves right (-0.2)."
    )


def test_when_the_output_fell_the_sentence_leads_with_what_held_it_down():
    sentence = said("The agent chose FIRE RIGHT ENGINE", [0, 0, -1.0, 0, 1.1, 0.4, -0.6, 0],
                             [0, 0, 0.2, 0, 0.1, 0.05, 0, 0], ENVIRONMENTS["LunarLander-v3"].phrases[:8])
    assert sentence == ("The agent chose FIRE RIGHT ENGINE, although it drifts right (-1) and the left leg is in the "
                        "air (-0.6) pushed against it; it is tilted anticlockwise (+1.1) pushed for it.")


def test_phrases_follow_the_sign_of_the_observation_and_the_pivot():
    assert CARTPOLE[2].describe(-0.1) == "the pole leans left" and CARTPOLE[2].describe(0.1) == "the pole leans right"
    car = ENVIRONMENTS["MountainCar-v0"].phrases[0]
    assert (
        car.describe(-0.9) == "the car is on the left slope" and car.describe(-0.3) == "the car is on the right slope"
    )
    leg = ENVIRONMENTS["LunarLander-v3"].phrases[6]
    assert leg.describe(1.0) == "the left leg touches the ground" and leg.describe(0.0) == "the left leg is in the air"


@pytest.mark.parametrize("env_id", sorted(e for e, info in ENVIRONMENTS.items()
                                           if info.feature_names and not info.parts))  # read feature by feature
def test_every_vector_environment_reads_its_strongest_feature(env_id):
    info = ENVIRONMENTS[env_id]
    n = len(info.feature_names)
    assert len(info.phrases) == n
    for strongest in range(n):
        values = np.full(n, 0.001)
        values[strongest] = 0.5
        observation = np.linspace(-1, 1, n)
        sentence = said("The agent acted", values, observation, info.phrases)
        assert sentence.startswith(
            f"The agent acted mostly because {info.phrases[strongest].describe(observation[strongest])} (+0.5)"
        )


def test_unknown_features_get_generic_phrases():
    generic = phrases("SomeEnv-v0", ("obs[0]", "obs[1]"))
    assert generic[1] == Phrase("obs[1] is negative", "obs[1] is positive")


def test_nothing_moved_and_everything_against():
    assert said("The agent acted", [0.0, 0.0], [1, 2], CARTPOLE[:2]).endswith(
        "nothing moved it away from the baseline."
    )
    assert "everything pushed against it; most of all the cart moves right (-0.4)" in said(
        "The agent acted", [-0.1, -0.4], [1, 2], CARTPOLE[:2])


def test_completeness_sentence():
    assert completeness_sentence("P(push right)", 0.92, 0.5, 0.4192) == \
        "attributions sum to +0.42; P(push right) rose from 0.50 at the baseline to 0.92: gap 0.2%"
    assert completeness_sentence("V(s)", -3.0, 2.0, -4.99).startswith("attributions sum to -4.99; V(s) fell from 2.00")


def test_the_runs_sentence_names_the_part_that_mattered_most_without_a_double_negative():
    sentence = runs_sentence("P(push left)", ["cart position (m)", "pole angle (rad)"], [-0.029, -0.118],
                             [0.001, 0.005], states=750, episodes=3)
    assert sentence == ("Over 750 states in 3 episodes, pole angle (rad) mattered most for P(push left), lowering "
                        "it by 0.12 per state on average (± 0.005 across episodes); "
                        "next came cart position (m) (−0.03).")


def test_a_probability_as_sure_at_the_baseline_reads_as_settled_not_as_tiny_numbers():
    sentence = settled_sentence("The agent chose STAY", "P(stay)", 0.99998, 0.99995)
    assert sentence.startswith("The agent chose STAY and was as sure of it at the baseline: P(stay) is 1.00 here "
                               "and 1.00 there")
    assert sentence.endswith('Choose "logit" under Explain to see what it weighs.')
    assert settled_sentence("The agent chose STAY", "P(stay)", 0.999, 0.6) is None  # the state made it sure
    assert settled_sentence("The agent chose STAY", "P(stay)", 0.95, 0.999) is None


def test_a_gap_at_the_outputs_rounding_is_said_as_such_not_as_a_large_percentage():
    sentence = completeness_sentence("P(stay)", 0.99998, 0.99995, 3e-5 + 2e-6)
    assert sentence.endswith("gap 2e-06, as fine as 32-bit arithmetic resolves")
    assert completeness_sentence("P(stay)", 0.9, 0.5, 0.45).endswith("gap 12.5%")  # a real miss stays a share
