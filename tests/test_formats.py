"""Policies from other libraries (Stable-Baselines3, CleanRL, ONNX) reproduce what the original library computes.

The fixtures in tests/data/foreign were made with the real libraries by make_fixtures.py there; CI
has no torch, so these tests only read them."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import pytest
from foreign_on_backend import FIXTURES, FOREIGN, converted_outputs
from hostile_archives import bomb, copy_members
from torch_files import op_global, op_str, state_dict, state_dict_file, torch_file

from attribution.rl.formats.cleanrl import load_cleanrl
from attribution.rl.formats.normalization import read_normalization
from attribution.rl.formats.torch_state import read_state_dict, read_state_dicts
from attribution.rl.policies import MAX_UPLOAD_BYTES, PolicyError, load_policy_file, load_uploaded_policy

TOLERANCE = 1e-5
DECISIVE = 1e-4  # actions must match wherever the top two outputs differ by more than this


def check_against_recording(name: str, outputs: dict[str, np.ndarray]) -> None:
    recorded = np.load(FOREIGN / f"{name}.npz")
    heads = [key for key in recorded.files if key not in ("observations", "actions", "note")]
    assert heads, f"{name}.npz records no outputs"
    for head in heads:
        np.testing.assert_allclose(outputs[head], recorded[head], atol=TOLERANCE, rtol=TOLERANCE,
                                   err_msg=f"{name}: {head}")
    actor = next(head for head in ("logits", "q_values", "mean") if head in heads)
    if actor == "mean":
        np.testing.assert_allclose(np.asarray(outputs["actions"], np.float64).reshape(recorded["actions"].shape),
                                   recorded["actions"], atol=TOLERANCE)
        return
    top_two = np.sort(recorded[actor], axis=1)[:, -2:]
    decisive = top_two[:, 1] - top_two[:, 0] > DECISIVE
    assert decisive.sum() >= len(decisive) // 2, f"{name}: too few decisive states to compare actions"
    np.testing.assert_array_equal(np.asarray(outputs["actions"])[decisive], recorded["actions"][decisive].reshape(-1))


@pytest.mark.parametrize("name", FIXTURES)
def test_a_converted_policy_reproduces_the_original_on_tensorflow(name):
    check_against_recording(name, converted_outputs(name))


def test_converted_policies_reproduce_the_originals_on_jax(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, str(FOREIGN.parents[1] / "foreign_on_backend.py"), str(tmp_path / "jax.npz")],
                   env=env, check=True, timeout=600)
    found = np.load(tmp_path / "jax.npz")
    for name in FIXTURES:
        check_against_recording(name, {key.split("/", 1)[1]: found[key] for key in found.files
                                       if key.startswith(f"{name}/")})


def test_a_folded_normalisation_is_what_vecnormalize_does_before_the_policy(tmp_path):
    rng = np.random.default_rng(0)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    stats = {"mean": [0.1, -2.0, 0.0, 5.0], "var": [4.0, 0.25, 1e-6, 9.0], "epsilon": 1e-8, "clip_obs": 3.0}
    normalization = read_normalization(json.dumps(stats).encode(), "stats.json", (4,))
    raw = rng.normal(0, 5, size=(64, 4)).astype(np.float32)  # many beyond the clip
    folded = normalization.fold(inner)
    expected = inner(normalization.apply(raw).astype(np.float32))
    np.testing.assert_allclose(folded(raw), expected, atol=1e-5)
    assert np.abs(normalization.apply(raw)).max() == 3.0  # the clip is reached, so it is tested
    np.savez(tmp_path / "stats.npz", **stats)
    from_npz = read_normalization((tmp_path / "stats.npz").read_bytes(), "stats.npz", (4,))
    np.testing.assert_array_equal(from_npz.var, normalization.var)


@pytest.mark.parametrize("content, message", [
    (b"not json", "not a normalisation file"),
    (json.dumps({"mean": [0, 0, 0, 0], "var": [1, 1, 1, 1]}).encode(), "lacks clip_obs, epsilon"),
    (json.dumps({"mean": [0, 0], "var": [1, 1], "epsilon": 0, "clip_obs": 10}).encode(), "mean has shape (2,)"),
    (json.dumps({"mean": [0, 0, 0, 0], "var": [1, -1, 1, 1], "epsilon": 0, "clip_obs": 10}).encode(), "non-negative"),
    (json.dumps({"mean": [0, 0, 0, 0], "var": [1, 1, 1, 1], "epsilon": 0, "clip_obs": 0}).encode(), "clip_obs > 0"),
])
def test_a_bad_normalisation_file_is_refused_saying_what_was_expected(content, message):
    with pytest.raises(PolicyError, match=re.escape(message)):
        read_normalization(content, "stats.json", (4,))


def test_a_pickled_npz_is_never_unpickled(tmp_path):
    np.savez(tmp_path / "evil.npz", mean=np.array([object()] * 4), var=np.ones(4), epsilon=0.0, clip_obs=10.0)
    with pytest.raises(PolicyError, match="not a normalisation file"):
        read_normalization((tmp_path / "evil.npz").read_bytes(), "evil.npz", (4,))


def test_cleanrl_layouts_are_recognised_by_their_keys_and_rebuilt_as_the_script_computes():
    """ppo.py's Agent: actor and critic, Linear-Tanh-Linear-Tanh-Linear each; checked against numpy."""
    rng = np.random.default_rng(1)
    shapes = {"actor": [(64, 4), (64, 64), (2, 64)], "critic": [(64, 4), (64, 64), (1, 64)]}
    state = {f"{net}.{2 * i}.{kind}": rng.normal(0, 0.3, size=shape if kind == "weight" else shape[:1]).astype(
        np.float32) for net, layer_shapes in shapes.items() for i, shape in enumerate(layer_shapes)
        for kind in ("weight", "bias")}
    observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    model, description = load_cleanrl([state], "ppo.cleanrl_model", observation_space, gym.spaces.Discrete(2))
    assert description == "CleanRL ppo network"
    x = rng.normal(size=(16, 4)).astype(np.float32)

    def forward(net):
        h = x
        for i in range(3):
            h = h @ state[f"{net}.{2 * i}.weight"].T + state[f"{net}.{2 * i}.bias"]
            h = np.tanh(h) if i < 2 else h
        return h

    outputs = model(x)
    np.testing.assert_allclose(outputs["logits"], forward("actor"), atol=1e-5)
    np.testing.assert_allclose(outputs["value"], forward("critic"), atol=1e-5)


def test_a_state_dict_of_no_known_cleanrl_layout_is_refused_with_the_layouts_that_are_known():
    state = {"fc.weight": np.zeros((2, 4), np.float32), "fc.bias": np.zeros(2, np.float32)}
    with pytest.raises(PolicyError, match=r"not a network of a CleanRL script.*fc\.bias.*Known layouts: dqn\.py"):
        load_cleanrl([state], "mine.cleanrl_model", gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))


def test_an_upload_of_another_kind_or_over_the_size_limit_is_refused():
    with pytest.raises(PolicyError, match=r"expected a policy file ending in \.keras, \.zip, \.cleanrl_model, \.onnx"):
        load_uploaded_policy(b"{}", "policy.txt", "CartPole-v1")
    with pytest.raises(PolicyError, match="at most 50 MB"):
        load_uploaded_policy(bytes(MAX_UPLOAD_BYTES + 1), "big.zip", "CartPole-v1")


def replaced(zip_bytes: bytes, members: dict[str, bytes]) -> bytes:
    """An SB3 zip with ``members`` written in place of (or beside) its own."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        copy_members(zip_bytes, target, skip=tuple(members))
        for member, data in members.items():
            target.writestr(member, data)
    return buffer.getvalue()


MARKER = "/tmp/rl-attribution-hostile-marker"
RUNS_A_COMMAND = torch_file(state_dict({"weight": op_global("os.system") + b"(" + op_str(f"touch {MARKER}") + b"tR"}),
                            {})


@pytest.mark.parametrize("kind", ["SB3 zip", "cleanrl_model"])
def test_a_pickle_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path, kind):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    if kind == "SB3 zip":
        path = tmp_path / "evil.zip"
        path.write_bytes(replaced((FOREIGN / "sb3_ppo_cartpole.zip").read_bytes(), {"policy.pth": RUNS_A_COMMAND}))
    else:
        path = tmp_path / "evil.cleanrl_model"
        path.write_bytes(RUNS_A_COMMAND)
    with pytest.raises(PolicyError, match="asks for os.system; a state_dict holds only tensors"):
        load_policy_file(path, "CartPole-v1")
    assert not os.path.exists(MARKER)


def test_an_sb3_zip_that_climbs_out_of_its_folder_or_inflates_without_end_is_refused(tmp_path):
    good = (FOREIGN / "sb3_ppo_cartpole.zip").read_bytes()
    (tmp_path / "climbs.zip").write_bytes(replaced(good, {"../../etc/evil": b"x"}))
    with pytest.raises(PolicyError, match=r"'\.\./\.\./etc/evil'"):
        load_policy_file(tmp_path / "climbs.zip", "CartPole-v1")
    bomb(good, tmp_path / "bomb.zip", "data", 2**31)  # 2 GiB of JSON from about 2 MB
    with pytest.raises(PolicyError, match="may declare at most 512.0 MB"):
        load_policy_file(tmp_path / "bomb.zip", "CartPole-v1")


@pytest.mark.parametrize("fixture", ["sb3_ppo_cartpole.zip", "cleanrl_ppo_cartpole.cleanrl_model",
                                     "onnx_mlp_cartpole.onnx"])
def test_a_truncated_or_junk_file_of_each_format_is_refused(tmp_path, fixture):
    data = (FOREIGN / fixture).read_bytes()
    for label, content in (("truncated", data[: len(data) // 2]), ("junk", os.urandom(4096))):
        path = tmp_path / f"{label}{Path(fixture).suffix}"
        path.write_bytes(content)
        with pytest.raises(PolicyError):
            load_policy_file(path, "CartPole-v1")


def test_onnx_with_external_data_is_refused_and_the_data_file_is_never_read(tmp_path):
    with pytest.raises(PolicyError, match="external"):
        load_policy_file(FOREIGN / "onnx_external_data.onnx", "CartPole-v1")


def test_a_file_of_the_wrong_environment_or_of_several_state_dicts_says_what_it_expected():
    with pytest.raises(PolicyError, match=r"trained on observations of shape \(4,\); the environment's are \(3,\)"):
        load_policy_file(FOREIGN / "sb3_ppo_cartpole.zip", "Pendulum-v1")
    with pytest.raises(PolicyError, match="holds 3 state_dicts; expected one"):
        read_state_dict(FOREIGN / "cleanrl_td3_pendulum.cleanrl_model", "td3.cleanrl_model")


def test_a_normalisation_file_beside_the_policy_or_given_is_folded_in_and_described(tmp_path):
    beside = load_policy_file(FOREIGN / "sb3_ppo_cartpole_vecnorm.zip", "CartPole-v1")
    assert "sb3_ppo_cartpole_vecnorm.normalization.json's observation normalisation" in beside.info.description
    shutil.copy(FOREIGN / "sb3_ppo_cartpole_vecnorm.zip", tmp_path / "alone.zip")
    alone = load_policy_file(tmp_path / "alone.zip", "CartPole-v1")
    given = load_policy_file(tmp_path / "alone.zip", "CartPole-v1",
                             normalization=FOREIGN / "sb3_ppo_cartpole_vecnorm.normalization.npz")
    observations = np.load(FOREIGN / "sb3_ppo_cartpole_vecnorm.npz")["observations"]
    np.testing.assert_allclose(given.heads(observations)["logits"], beside.heads(observations)["logits"], atol=1e-6)
    assert not np.allclose(alone.heads(observations)["logits"], beside.heads(observations)["logits"], atol=1e-3)


def test_each_format_says_what_it_found():
    descriptions = {name: load_policy_file(FOREIGN / FIXTURES[name][0], FIXTURES[name][1]).info.description
                    for name in ("sb3_ppo_cartpole", "sb3_a2c_cartpole_relu", "sb3_dqn_cnn_pong",
                                 "cleanrl_td3_pendulum", "onnx_mlp_cartpole")}
    assert descriptions["sb3_ppo_cartpole"].startswith("Stable-Baselines3 PPO, MlpPolicy 64-64 tanh")
    assert descriptions["sb3_a2c_cartpole_relu"].startswith("Stable-Baselines3 A2C, MlpPolicy 32-32 relu")
    assert descriptions["sb3_dqn_cnn_pong"].startswith("Stable-Baselines3 DQN, CnnPolicy")
    assert descriptions["cleanrl_td3_pendulum"] == "CleanRL td3_continuous_action network"
    assert descriptions["onnx_mlp_cartpole"].startswith("ONNX, opset 17")


def sb3_zip(data_changes: dict, weights: dict | None = None, base: str = "sb3_ppo_pendulum.zip") -> bytes:
    """A committed SB3 zip with its 'data' entries changed (None removes one) and, if given, other weights."""
    original = (FOREIGN / base).read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        attributes = json.loads(archive.read("data"))
    for path, value in data_changes.items():
        *parents, last = path.split("/")
        entry = attributes
        for parent in parents:
            entry = entry[parent]
        if value is None:
            entry.pop(last, None)
        else:
            entry[last] = value
    members = {"data": json.dumps(attributes).encode()}
    if weights is not None:
        members["policy.pth"] = state_dict_file(weights)
    return replaced(original, members)


def pendulum_weights(rng, hidden: int = 8) -> dict:
    """An SB3 PPO MlpPolicy's weights for Pendulum (3 observations, 1 action), hidden-hidden wide."""
    shapes = {"log_std": (1,), "action_net.weight": (1, hidden), "action_net.bias": (1,),
              "value_net.weight": (1, hidden), "value_net.bias": (1,)}
    for net in ("policy_net", "value_net"):
        shapes |= {f"mlp_extractor.{net}.0.weight": (hidden, 3), f"mlp_extractor.{net}.0.bias": (hidden,),
                   f"mlp_extractor.{net}.2.weight": (hidden, hidden), f"mlp_extractor.{net}.2.bias": (hidden,)}
    return {key: rng.normal(0, 0.7, shape).astype(np.float32) for key, shape in shapes.items()}


def mean_by_numpy(weights: dict, x: np.ndarray, activation) -> np.ndarray:
    h = x
    for layer in ("mlp_extractor.policy_net.0", "mlp_extractor.policy_net.2"):
        h = activation(h @ weights[f"{layer}.weight"].T + weights[f"{layer}.bias"])
    return h @ weights["action_net.weight"].T + weights["action_net.bias"]


def test_sb3_activations_keep_pytorchs_constants_and_gsde_squashes_the_mean(tmp_path, rng):
    weights = pendulum_weights(rng)
    x = rng.normal(0, 2, size=(32, 3)).astype(np.float32)
    (tmp_path / "leaky.zip").write_bytes(sb3_zip({"policy_kwargs": {"activation_fn": "<class 'torch.nn.modules."
                                                                     "activation.LeakyReLU'>"}}, weights))
    leaky = load_policy_file(tmp_path / "leaky.zip", "Pendulum-v1")
    expected = mean_by_numpy(weights, x, lambda h: np.where(h > 0, h, 0.01 * h))  # nn.LeakyReLU's slope
    np.testing.assert_allclose(leaky.heads(x)["mean"], expected, atol=1e-5)
    (tmp_path / "gsde.zip").write_bytes(sb3_zip({"policy_kwargs": {"squash_output": True, "use_sde": True}}, weights))
    squashed = load_policy_file(tmp_path / "gsde.zip", "Pendulum-v1")
    np.testing.assert_allclose(squashed.heads(x)["mean"], 2 * np.tanh(mean_by_numpy(weights, x, np.tanh)), atol=1e-5)


@pytest.mark.parametrize("changes, message", [
    ({"observation_space/_shape": 3}, r"has shape 3; expected a list of sizes"),
    ({"observation_space/:type:": "<class 'gymnasium.spaces.dict.Dict'>"}, r"a Dict observation space"),
    ({"action_space/low": None}, r"trained with actions in \[\[\]"),
    ({"action_space/:type:": "<class 'gymnasium.spaces.discrete.Discrete'>"}, r"a Discrete action space"),
    ({"policy_kwargs": {"activation_fn": "<class 'torch.nn.modules.activation.Mish'>"}}, r"activation 'Mish'"),
])
def test_an_sb3_zip_whose_plain_text_does_not_fit_is_refused_saying_why(tmp_path, changes, message):
    (tmp_path / "odd.zip").write_bytes(sb3_zip(changes))
    with pytest.raises(PolicyError, match=message):
        load_policy_file(tmp_path / "odd.zip", "Pendulum-v1")


def test_an_sb3_zip_with_weights_it_does_not_place_is_refused(tmp_path, rng):
    weights = pendulum_weights(rng) | {"mlp_extractor.shared_net.0.weight": np.zeros((3, 3), np.float32)}
    (tmp_path / "shared.zip").write_bytes(sb3_zip({}, weights))
    with pytest.raises(PolicyError, match=r"leaves weights unused \(mlp_extractor\.shared_net\.0\.weight\)"):
        load_policy_file(tmp_path / "shared.zip", "Pendulum-v1")


def test_normalisation_folds_into_a_policy_of_a_table_of_numbers():
    inner = keras.Sequential([keras.Input((5, 5)), keras.layers.Flatten(), keras.layers.Dense(3)])
    stats = {"mean": np.arange(25.0).reshape(5, 5).tolist(), "var": np.full((5, 5), 4.0).tolist(), "epsilon": 0.0,
             "clip_obs": 10.0}
    normalization = read_normalization(json.dumps(stats).encode(), "stats.json", (5, 5))
    raw = np.random.default_rng(0).normal(10, 5, size=(8, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(normalization.fold(inner)(raw), inner(normalization.apply(raw).astype(np.float32)),
                               atol=1e-5)


def test_a_cleanrl_atari_network_on_frames_too_small_for_it_is_refused_not_crashed(tmp_path):
    small = gym.spaces.Box(0, 255, (4, 20, 20), np.uint8)
    states = read_state_dicts(FOREIGN / "cleanrl_dqn_atari_pong.cleanrl_model", "dqn_atari.cleanrl_model")
    with pytest.raises(PolicyError, match=r"does not fit images of"):
        load_cleanrl(states, "dqn_atari.cleanrl_model", small, gym.spaces.Discrete(6))
