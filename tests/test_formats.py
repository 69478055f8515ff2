"""Policies from other libraries (Stable-Baselines3, CleanRL, ONNX) reproduce what the original library computes.

The fixtures in tests/data/foreign were made with the real libraries by make_fixtures.py there; CI
has no torch, so these tests only read them."""

import json
import os
import re
import subprocess
import sys

import gymnasium as gym
import keras
import numpy as np
import pytest
from foreign_on_backend import FIXTURES, FOREIGN, converted_outputs

from attribution.rl.formats.cleanrl import load_cleanrl
from attribution.rl.formats.normalization import read_normalization
from attribution.rl.policies import MAX_UPLOAD_BYTES, PolicyError, load_uploaded_policy

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
