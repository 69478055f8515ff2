"""The shipped policies, the registry, and users' policy files (including hostile ones)."""

import json
import re
import zipfile

import gymnasium as gym
import keras
import numpy as np
import pytest

from attribution import explain, integrated_gradients
from attribution.rl.environments import ENVIRONMENTS
from attribution.rl.policies import (
    POLICY_DIR,
    PolicyError,
    load_policy,
    load_policy_file,
    load_uploaded_policy,
    policy_from_model,
    shipped_env_ids,
)
from attribution.training import evaluate

MUST_REACH = {
    "CartPole-v1": 475,
    "LunarLander-v3": 200,
    "Acrobot-v1": -100,
    "MountainCar-v0": -120,
    "Pendulum-v1": -250,
}
PONG_MUST_REACH = 15  # over 20 greedy games on unseen seeds; Pong's best is +21


def test_every_environment_of_the_product_ships_a_policy():
    assert shipped_env_ids() == sorted([*MUST_REACH, "ALE/Pong-v5", "highway-fast-v0"])


def test_the_pong_sidecar_says_how_it_was_trained_and_how_good_it_is():
    pong = load_policy("ALE/Pong-v5")
    info = pong.info
    assert info.source == "shipped" and info.heads == ("logits", "value") and not info.continuous
    assert info.eval_episodes == 20 and -21 <= info.eval_return_mean <= 21 and info.eval_return_std >= 0
    assert info.training_method.startswith("DAgger from pixels") and info.training_steps > 0
    assert info.action_names[2:4] == ("move up", "move down")
    assert info.reference_states.shape == (8, 4, 84, 84) and info.median_state.shape == (4, 84, 84)
    assert pong.observation_shape == (4, 84, 84) and len(info.feature_names) == 4 * 84 * 84
    assert info.feature_names[-1] == "now, row 83, column 83"
    assert (POLICY_DIR / "ALE_Pong-v5.keras").stat().st_size < 10 * 2**20


def test_the_driving_sidecar_says_how_it_was_trained_how_good_it_is_and_how_often_it_crashed():
    from attribution.rl.highway import FEATURE_NAMES

    driver = load_policy("highway-fast-v0")
    info = driver.info
    assert info.heads == ("logits", "value") and not info.continuous and info.training_method.startswith("DAgger")
    assert info.eval_episodes == 50 and info.eval_crash_rate <= 0.10 and info.eval_return_mean > 0
    assert info.feature_names == FEATURE_NAMES and driver.observation_shape == (5, 5)
    assert info.action_names == ("change lane left", "keep going", "change lane right", "speed up", "slow down")
    assert info.reference_states.shape == (256, 5, 5)


@pytest.mark.xfail(strict=True, reason="issue 15's bar: the shipped Pong agent has not reached +15 yet (README)")
def test_the_shipped_pong_agent_wins_by_15_points_on_average():
    assert load_policy("ALE/Pong-v5").info.eval_return_mean >= PONG_MUST_REACH


@pytest.fixture(scope="module", params=sorted(MUST_REACH))
def shipped(request):
    return load_policy(request.param)


def test_sidecar_says_what_the_numbers_mean_and_how_good_the_policy_is(shipped):
    info, env_id = shipped.info, shipped.info.env_id
    assert info.feature_names == ENVIRONMENTS[env_id].feature_names
    assert info.action_names == ENVIRONMENTS[env_id].action_names
    assert info.source == "shipped" and info.seed == 0 and info.training_steps > 0
    assert info.eval_episodes == 100 and info.eval_return_mean >= MUST_REACH[env_id]
    assert info.heads == (("mean",) if info.continuous else ("logits",)) + ("value",)
    assert info.reference_states.shape == (256, len(info.feature_names))
    sidecar = json.loads((POLICY_DIR / f"{env_id}.json").read_text())
    assert sidecar["env_id"] == env_id and sidecar["eval_return_std"] >= 0


def test_the_model_takes_raw_observations(shipped):
    """Normalisation is folded in: the first layer after the input is the observation normaliser."""
    assert isinstance(shipped.model.layers[1], keras.layers.Normalization)
    assert tuple(shipped.model.inputs[0].shape[1:]) == (len(shipped.info.feature_names),)


def test_act_gives_what_the_environment_accepts(shipped):
    env = gym.make(shipped.info.env_id)
    observation, _ = env.reset(seed=5)
    for _ in range(20):
        action = shipped.act(observation)
        assert env.action_space.contains(action), action
        observation, *_ = env.step(action)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "LunarLander-v3", "Acrobot-v1", "MountainCar-v0"])
def test_action_probabilities_are_the_softmax_of_the_logits(env_id):
    shipped = load_policy(env_id)
    observation = shipped.info.reference_states[0]
    probabilities = shipped.action_probabilities(observation)
    logits = shipped.heads(observation[None])["logits"][0]
    assert probabilities.sum() == pytest.approx(1.0) and probabilities.argmax() == shipped.act(observation)
    assert np.log(probabilities[0] / probabilities[-1]) == pytest.approx(logits[0] - logits[-1], rel=1e-4, abs=1e-4)


def test_evaluate_reruns_a_few_episodes(shipped, capsys):
    evaluate.main([shipped.info.env_id, "--episodes", "3"])
    printed = capsys.readouterr().out
    mean = float(re.search(r"mean return (-?[\d.]+)", printed).group(1))
    # 3 episodes are noisy: allow three recorded standard deviations below the bar
    assert mean >= MUST_REACH[shipped.info.env_id] - 3 * shipped.info.eval_return_std - 1, printed


def test_completeness_on_the_shipped_policy_over_its_rollout_states(shipped):
    """At default settings every gap is under 1%. Most states need the default 64 points; a sharp
    decision boundary on the path (MountainCar's probabilities, Pendulum's saturating torque)
    gets more from ``refine``, and the result says how many."""
    heads = [explain.action_mean] if shipped.info.continuous else [explain.action_probabilities, explain.action_logits]
    states = shipped.info.reference_states
    for wrap in (*heads, explain.state_value):
        model = wrap(shipped.model)
        for baseline in (None, states.mean(axis=0)):
            result = integrated_gradients(model, states, baseline=baseline)
            change = np.abs(result.output_change)
            meaningful = change > 1e-3  # a gap relative to almost nothing is float32 noise
            assert meaningful.sum() >= 50  # a saturated or near-baseline state changes almost nothing
            assert (np.abs(result.delta)[meaningful] <= 0.01 * change[meaningful]).all(), model.name
            assert np.median(result.steps) == 64, model.name


# ---- the registry ----

def test_unknown_shipped_policy():
    shipped = r"shipped: ALE/Pong-v5, Acrobot-v1, CartPole-v1"
    with pytest.raises(PolicyError, match=rf"no shipped policy for 'Humanoid-v5'; {shipped}"):
        load_policy("Humanoid-v5")


# ---- users' files ----

def small_policy(n_in=4, n_out=2, heads=True) -> keras.Model:
    obs = keras.Input((n_in,))
    hidden = keras.layers.Dense(8, activation="tanh")(obs)
    if not heads:
        return keras.Model(obs, keras.layers.Dense(n_out)(hidden))
    return keras.Model(obs, {"logits": keras.layers.Dense(n_out)(hidden), "value": keras.layers.Dense(1)(hidden)})


def test_a_user_file_without_sidecar_gets_the_documented_names(tmp_path):
    small_policy(heads=False).save(tmp_path / "mine.keras")
    policy = load_policy_file(tmp_path / "mine.keras", "CartPole-v1")
    assert policy.info.feature_names[0] == "cart position (m)" and policy.info.heads == ("logits",)
    assert policy.info.source == "mine.keras" and policy.info.action_names == ("push left", "push right")
    assert policy.act(np.zeros(4)) in (0, 1)


@pytest.mark.parametrize("kind", ["sequential", "functional", "dict of heads"])
def test_a_model_saved_with_model_save_loads_and_acts_as_it_did(tmp_path, kind):
    keras.utils.set_random_seed(0)
    if kind == "sequential":  # never called before saving: Keras gives it no symbolic output
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(2)])
    else:
        model = small_policy(heads=kind == "dict of heads")
    model.save(tmp_path / "mine.keras")
    policy = load_policy_file(tmp_path / "mine.keras", "CartPole-v1")
    assert policy.info.heads == (("logits", "value") if kind == "dict of heads" else ("logits",))
    states = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    expected = model(states)
    expected = expected["logits"] if isinstance(expected, dict) else expected
    np.testing.assert_allclose(policy.heads(states)["logits"], np.asarray(expected), rtol=1e-5, atol=1e-6)
    assert [policy.act(s) for s in states] == np.argmax(np.asarray(expected), axis=1).tolist()
    for build in (explain.action_probabilities, lambda m: explain.action_contrast(m, 1, 0)):
        result = integrated_gradients(build(policy.model), states, target=0)
        assert np.all(result.relative_delta < 0.01)


def test_a_subclassed_model_is_refused_with_how_to_save_one_that_loads(tmp_path):
    @keras.saving.register_keras_serializable(package="users_own")
    class MyPolicy(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = MyPolicy()
    model(np.zeros((1, 4), np.float32))
    model.save(tmp_path / "subclassed.keras")
    keras.saving.get_custom_objects().clear()  # as on the server, which never has the user's code
    with pytest.raises(
        PolicyError, match=r"subclassed.keras holds a model of a class of its own .*keras.Model\(inputs, outputs\)"
    ):
        load_policy_file(tmp_path / "subclassed.keras", "CartPole-v1")


def test_an_environment_without_documented_names_gets_numbered_ones(tmp_path):
    obs = keras.Input((2,))
    keras.Model(obs, {"mean": keras.layers.Dense(1)(obs)}).save(tmp_path / "car.keras")
    policy = load_policy_file(tmp_path / "car.keras", "MountainCarContinuous-v0")
    assert policy.info.feature_names == ("obs[0]", "obs[1]") and policy.info.continuous
    action = policy.act(np.array([-0.5, 0.0]))
    assert action.shape == (1,) and -1 <= action[0] <= 1


def test_a_user_may_name_the_features(tmp_path):
    small_policy().save(tmp_path / "mine.keras")
    policy = load_policy_file(tmp_path / "mine.keras", "CartPole-v1", feature_names_override=["a", "b", "c", "d"])
    assert policy.info.feature_names == ("a", "b", "c", "d")
    with pytest.raises(PolicyError, match=r"need 4 feature names for CartPole-v1; received 2"):
        load_policy_file(tmp_path / "mine.keras", "CartPole-v1", feature_names_override=["a", "b"])


def test_a_lambda_layer_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran.txt"
    marker_name = str(marker)
    obs = keras.Input((4,))
    touched = keras.layers.Lambda(lambda x: x + 0 * len(open(marker_name, "w").name))(obs)
    keras.Model(obs, keras.layers.Dense(2)(touched)).save(tmp_path / "evil.keras")
    marker.unlink(missing_ok=True)  # building and saving the model ran the lambda here, on purpose
    with pytest.raises(PolicyError, match="carries code.*refused"):
        load_policy_file(tmp_path / "evil.keras", "CartPole-v1")
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"definitely not a zip", r"bad\.keras is not a Keras archive"),
    (None, r"could not be read as a Keras model"),  # a truncated archive
])
def test_broken_files(tmp_path, content, message):
    if content is None:
        small_policy().save(tmp_path / "whole.keras")
        data = (tmp_path / "whole.keras").read_bytes()
        with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:  # a zip, but not a whole model
            archive.writestr("config.json", data[:40])
    else:
        (tmp_path / "bad.keras").write_bytes(content)
    with pytest.raises(PolicyError, match=message):
        load_policy_file(tmp_path / "bad.keras", "CartPole-v1")


@pytest.mark.parametrize("model, message", [
    (small_policy(n_in=3), r"takes inputs of shape \(batch, 3\); CartPole-v1 observations have shape \(4,\)"),
    (small_policy(n_out=3), r"'logits' output has shape \(batch, 3\); CartPole-v1 has 2 actions"),
])
def test_a_model_that_does_not_fit_the_environment(tmp_path, model, message):
    model.save(tmp_path / "wrong.keras")
    with pytest.raises(PolicyError, match=message):
        load_policy_file(tmp_path / "wrong.keras", "CartPole-v1")


@pytest.mark.parametrize("env_id, message", [
    ("NoSuchEnv-v0", r"unknown environment id 'NoSuchEnv-v0'"),
    ("FrozenLake-v1", r"FrozenLake-v1 has a Discrete observation space; attribution needs a Box"),
])
def test_environments_that_cannot_be_explained(tmp_path, env_id, message):
    small_policy().save(tmp_path / "mine.keras")
    with pytest.raises(PolicyError, match=message):
        load_policy_file(tmp_path / "mine.keras", env_id)


def test_an_uploaded_policy_gets_reference_states_from_its_own_rollouts():
    data = (POLICY_DIR / "CartPole-v1.keras").read_bytes()
    policy = load_uploaded_policy(data, "folder/mine.keras", "CartPole-v0")
    reference = policy.info.reference_states
    assert policy.info.env_id == "CartPole-v0" and policy.info.source == "mine.keras"
    assert reference.shape == (256, 4) and len(np.unique(reference, axis=0)) == 256
    assert np.abs(reference[:, 2]).max() < 0.21  # a good CartPole policy keeps the pole up in its own rollouts


def test_an_environment_that_cannot_be_created_is_named():
    gym.register("NeedsAMissingPackage-v0", entry_point="no_such_package.envs:Env")  # like MuJoCo's ids without MuJoCo
    try:
        with pytest.raises(PolicyError, match=r"environment 'NeedsAMissingPackage-v0' could not be created"):
            load_uploaded_policy(b"never read", "mine.keras", "NeedsAMissingPackage-v0")
    finally:
        del gym.registry["NeedsAMissingPackage-v0"]


def test_policy_errors_are_value_errors():
    assert issubclass(PolicyError, ValueError)


def test_policy_from_model_checks_the_fit():
    with pytest.raises(PolicyError, match="takes inputs of shape"):
        policy_from_model(small_policy(n_in=5), "CartPole-v1")


def test_a_sidecar_with_the_wrong_number_of_action_names_is_refused(tmp_path):
    small_policy().save(tmp_path / "mine.keras")
    (tmp_path / "mine.json").write_text(json.dumps({"env_id": "CartPole-v1", "action_names": ["left", "right", "up"]}))
    with pytest.raises(PolicyError, match=r"need 2 action names for CartPole-v1; the sidecar gives 3"):
        load_policy_file(tmp_path / "mine.keras", "CartPole-v1")
