"""Load every foreign-policy fixture on whatever KERAS_BACKEND says and record its heads, for the cross-backend test.

    KERAS_BACKEND=jax python tests/foreign_on_backend.py OUT.npz
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from attribution.rl.policies import load_policy_file  # noqa: E402

FOREIGN = Path(__file__).with_name("data") / "foreign"
# fixture -> (policy file, environment); each has NAME.npz with the observations and the original's outputs
FIXTURES = {
    "sb3_ppo_cartpole": ("sb3_ppo_cartpole.zip", "CartPole-v1"),
    "sb3_ppo_pendulum": ("sb3_ppo_pendulum.zip", "Pendulum-v1"),
    "sb3_a2c_cartpole_relu": ("sb3_a2c_cartpole_relu.zip", "CartPole-v1"),
    "sb3_dqn_cartpole": ("sb3_dqn_cartpole.zip", "CartPole-v1"),
    "sb3_sac_pendulum": ("sb3_sac_pendulum.zip", "Pendulum-v1"),
    "sb3_td3_pendulum": ("sb3_td3_pendulum.zip", "Pendulum-v1"),
    "sb3_ppo_cnn_pong": ("sb3_ppo_cnn_pong.zip", "ALE/Pong-v5"),
    "sb3_dqn_cnn_pong": ("sb3_dqn_cnn_pong.zip", "ALE/Pong-v5"),
    "sb3_ppo_cartpole_vecnorm": ("sb3_ppo_cartpole_vecnorm.zip", "CartPole-v1"),
    "cleanrl_dqn_cartpole": ("cleanrl_dqn_cartpole.cleanrl_model", "CartPole-v1"),
    "cleanrl_ppo_cartpole": ("cleanrl_ppo_cartpole.cleanrl_model", "CartPole-v1"),
    "cleanrl_ppo_continuous_pendulum": ("cleanrl_ppo_continuous_pendulum.cleanrl_model", "Pendulum-v1"),
    "cleanrl_td3_pendulum": ("cleanrl_td3_pendulum.cleanrl_model", "Pendulum-v1"),
    "cleanrl_dqn_atari_pong": ("cleanrl_dqn_atari_pong.cleanrl_model", "ALE/Pong-v5"),
    "cleanrl_ppo_atari_pong": ("cleanrl_ppo_atari_pong.cleanrl_model", "ALE/Pong-v5"),
    "onnx_mlp_cartpole": ("onnx_mlp_cartpole.onnx", "CartPole-v1"),
    "onnx_cnn_pong": ("onnx_cnn_pong.onnx", "ALE/Pong-v5"),
    "onnx_pendulum_mean": ("onnx_pendulum_mean.onnx", "Pendulum-v1"),
}


def converted_outputs(name: str) -> dict[str, np.ndarray]:
    """The converted policy's heads on the fixture's observations, and its greedy actions."""
    file, env_id = FIXTURES[name]
    policy = load_policy_file(FOREIGN / file, env_id)
    observations = np.load(FOREIGN / f"{name}.npz")["observations"]
    outputs = policy.heads(observations)
    outputs["actions"] = np.array([policy.act(observation) for observation in observations])
    return outputs


if __name__ == "__main__":
    np.savez(sys.argv[1], **{f"{name}/{head}": value for name in FIXTURES
                             for head, value in converted_outputs(name).items()})
