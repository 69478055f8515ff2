"""Make the foreign-policy fixtures in this folder with the real libraries (torch, Stable-Baselines3, ONNX).

    pip install torch==2.13.0 stable-baselines3 onnx onnxscript onnxruntime
    python tests/data/foreign/make_fixtures.py

Run by hand only: these libraries are not project dependencies, and CI (which has no torch) never
runs this script; it only reads what the script wrote (tests/test_formats.py).

For each fixture NAME it writes the policy file (NAME.zip, NAME.cleanrl_model or NAME.onnx) and
NAME.npz with ``observations`` (32 of them, float32), the original library's outputs under the head
names the app uses (``logits``, ``value``, ``q_values``, ``mean``: float32 arrays (32, width)) and
``actions`` (the action the library itself takes, deterministically). Seed 0 everywhere.

- Observations: for images, uint8 values 0..255 stored as float32 (see image_observations); for
  vectors, 16 states the environment visits under random actions and 16 drawn uniformly from a
  reasonable range (Pendulum: an angle in [-pi, pi) and a speed in [-8, 8] as (cos, sin, speed)).
- SB3 models are trained for a few hundred steps so that no layer is as initialised (SB3's
  orthogonal init leaves every bias at zero). ``logits`` are the raw action_net outputs, the
  logits before the softmax: torch's ``Categorical(logits=...).logits`` (what
  ``policy.get_distribution(obs).distribution.logits`` returns) is log_softmax of them, which the
  script checks.
- The two CNN zips are saved with fresh (empty) optimizer states after training, so that Adam's two
  moment buffers (as large as the 3136 x 32 layer) do not triple their size; the weights are the
  trained ones, and SB3 loads such a zip as usual.
- CleanRL: the network classes below are copied unchanged from github.com/vwxyzjn/cleanrl at commit
  fe8d8a03c41a7ef5b523e2e354bd01c363e786bb (2026-04-20): cleanrl/dqn.py, dqn_atari.py, ppo.py,
  ppo_atari.py, ppo_continuous_action.py, td3_continuous_action.py. They are saved as those scripts
  do: dqn ``torch.save(q_network.state_dict())``, td3 ``torch.save((actor.state_dict(),
  qf1.state_dict(), qf2.state_dict()))``, ppo_continuous_action ``torch.save(agent.state_dict())``;
  ppo.py and ppo_atari.py have no save option at that commit, so their agents are saved the way
  ppo_continuous_action.py saves (and cleanrl_utils/evals/ppo_eval.py loads) an Agent.
  CleanRL's ``layer_init`` sets every bias to zero; to make a dropped or misplaced bias visible, the
  PPO agents' biases are then drawn from N(0, 0.1) (as training would move them). The Atari
  networks' Linear(3136, 512) weight is multiplied by a random mask that keeps 2% of its entries,
  scaled by 1/sqrt(0.02) (like inverted dropout, so the layer's output keeps its scale): the file is
  then mostly zeros, which git compresses. Every other weight is as CleanRL initialises it.
- ONNX: exported with torch.onnx.export(opset 17, the classic exporter, dynamo=False), input
  "observation" with a dynamic batch axis; outputs are recorded with onnxruntime and checked
  against torch within 1e-5.
"""

import json
import types
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from gymnasium import spaces

torch.set_num_threads(1)

HERE = Path(__file__).resolve().parent
SEED = 0
COUNT = 32
TOLERANCE = 1e-5


# ---------------------------------------------------------------------------------------------
# observations


def vector_observations(env_id: str) -> np.ndarray:
    """16 visited states (random actions, seed 0) and 16 uniform samples in a reasonable range."""
    env = gym.make(env_id)
    env.action_space.seed(SEED)
    observation, _ = env.reset(seed=SEED)
    visited = []
    while len(visited) < 160:
        visited.append(observation)
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    visited = np.asarray(visited[::10], np.float32)
    rng = np.random.default_rng(SEED)
    if env_id == "CartPole-v1":
        scale = np.array([2.4, 3.0, 0.2095, 3.5])
        sampled = rng.uniform(-scale, scale, size=(16, 4))
    elif env_id == "Pendulum-v1":
        angle, speed = rng.uniform(-np.pi, np.pi, 16), rng.uniform(-8.0, 8.0, 16)
        sampled = np.stack([np.cos(angle), np.sin(angle), speed], axis=1)
    else:
        raise ValueError(env_id)
    return np.concatenate([visited, sampled.astype(np.float32)]).astype(np.float32)


IMAGE_SPACE = spaces.Box(0, 255, (4, 84, 84), np.uint8)


def image_observations() -> np.ndarray:
    """2 stacks sampled pixel by pixel from Box(0, 255, (4, 84, 84), uint8), then 30 of 4x4 blocks.

    Each block stack is a sample of Box(0, 255, (4, 22, 22), uint8) repeated over 4x4 pixels and cut
    to 84x84 at a random offset: still random along both axes and across the four frames (so a
    transposed kernel, a flipped one or a wrong flatten order shows), but 1/16 of the entropy, which
    keeps the five image fixtures' npz files (32 x 4 x 84 x 84 float32 each) small.
    """
    pixels = spaces.Box(0, 255, (4, 84, 84), np.uint8, seed=SEED)
    blocks = spaces.Box(0, 255, (4, 22, 22), np.uint8, seed=SEED)
    rng = np.random.default_rng(SEED)
    stacks = [pixels.sample() for _ in range(2)]
    for _ in range(COUNT - 2):
        row, column = rng.integers(0, 4, size=2)
        stacks.append(blocks.sample().repeat(4, axis=1).repeat(4, axis=2)[:, row:row + 84, column:column + 84])
    return np.stack(stacks).astype(np.float32)


class FakePong(gym.Env):
    """Observations shaped like the app's Pong (4 stacked 84x84 grayscale frames, channels first), random frames."""

    observation_space = IMAGE_SPACE
    action_space = spaces.Discrete(6)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._frame(), {}

    def step(self, action):
        self.steps += 1
        return self._frame(), float(self.np_random.normal()), False, self.steps >= 50, {}

    def _frame(self):
        return self.np_random.integers(0, 256, (4, 84, 84), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# recording


def as_float32(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, np.float32)


def check_outputs(name: str, heads: dict) -> None:
    """Heads are (32, width), finite, depend on the observation, and (discrete) mostly decide clearly."""
    for head, values in heads.items():
        assert values.shape[0] == COUNT and values.ndim == 2, (name, head, values.shape)
        assert np.all(np.isfinite(values)), (name, head)
        assert values.std(axis=0).max() > 1e-3, f"{name}: {head} hardly depends on the observation"
    for head in ("logits", "q_values"):
        if head in heads:
            top_two = np.sort(heads[head], axis=1)[:, -2:]
            decisive = (top_two[:, 1] - top_two[:, 0] > 1e-4).mean()
            assert decisive >= 0.75, f"{name}: only {decisive:.0%} of the states decide clearly"


def record(name: str, observations: np.ndarray, heads: dict, actions, note: str | None = None) -> None:
    heads = {head: as_float32(values) for head, values in heads.items()}
    check_outputs(name, heads)
    arrays = dict(observations=observations.astype(np.float32), **heads, actions=np.asarray(actions))
    if note:
        arrays["note"] = np.array([note])
    np.savez_compressed(HERE / f"{name}.npz", **arrays)
    summary = ", ".join(f"{key} {value.shape} {value.dtype}" for key, value in arrays.items())
    print(f"{name}: {summary}")


# ---------------------------------------------------------------------------------------------
# Stable-Baselines3


def sb3_models():
    from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    def tensor(policy, observations):
        policy.set_training_mode(False)
        return policy.obs_to_tensor(observations)[0]

    def actor_critic_heads(model, observations):
        """logits (raw action_net output) or mean, and value, as ActorCriticPolicy computes them."""
        policy = model.policy
        obs = tensor(policy, observations)
        with torch.no_grad():
            distribution = policy.get_distribution(obs).distribution
            value = policy.predict_values(obs)
            if isinstance(policy.action_space, spaces.Discrete):
                # get_distribution's own path: features -> mlp_extractor.forward_actor -> action_net
                features = BasePolicy.extract_features(policy, obs, policy.pi_features_extractor)
                logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
                assert torch.allclose(torch.log_softmax(logits, dim=1), distribution.logits, atol=1e-6)
                return {"logits": logits, "value": value}
            return {"mean": distribution.mean, "value": value}

    def predict(model, observations):
        return model.predict(observations, deterministic=True)[0]

    def check_actions(name, heads, actions, low=None, high=None):
        if "mean" in heads:
            expected = heads["mean"] if low is None else np.clip(heads["mean"], low, high)
            assert np.allclose(np.asarray(actions, np.float32).reshape(expected.shape), expected, atol=1e-6), name
        else:
            table = heads.get("logits", heads.get("q_values"))
            assert np.array_equal(np.asarray(actions), as_float32(table).argmax(axis=1)), name

    def save_actor_critic(model, name, observations, low=None, high=None):
        heads = actor_critic_heads(model, observations)
        actions = predict(model, observations)
        check_actions(name, {k: as_float32(v) for k, v in heads.items()}, actions, low, high)
        model.save(HERE / f"{name}.zip")
        record(name, observations, heads, actions)

    def fresh_optimizer(policy):
        """An empty optimizer state (no Adam moments), to keep the zip small; weights stay as trained."""
        policy.optimizer = policy.optimizer_class(policy.parameters(), lr=1e-4, **policy.optimizer_kwargs)

    cartpole, pendulum = vector_observations("CartPole-v1"), vector_observations("Pendulum-v1")
    pong = image_observations()
    pendulum_space = gym.make("Pendulum-v1").action_space
    low, high = pendulum_space.low, pendulum_space.high

    # PPO CartPole, default MlpPolicy (64-64 tanh, shared Flatten features extractor)
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=128, batch_size=64, n_epochs=2, seed=SEED, device="cpu")
    model.learn(256)
    save_actor_critic(model, "sb3_ppo_cartpole", cartpole)
    yield "sb3_ppo_cartpole", model

    # PPO Pendulum: DiagGaussian, mean = action_net output; predict clips it to the bounds
    model = PPO("MlpPolicy", "Pendulum-v1", n_steps=128, batch_size=64, n_epochs=2, seed=SEED, device="cpu")
    model.learn(256)
    save_actor_critic(model, "sb3_ppo_pendulum", pendulum, low, high)

    # A2C CartPole, ReLU and separate pi/vf nets
    model = A2C("MlpPolicy", "CartPole-v1", seed=SEED, device="cpu",
                policy_kwargs=dict(activation_fn=torch.nn.ReLU, net_arch=dict(pi=[32, 32], vf=[16])))
    model.learn(200)
    save_actor_critic(model, "sb3_a2c_cartpole_relu", cartpole)

    # DQN CartPole
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=0, buffer_size=1000, batch_size=32, train_freq=4,
                seed=SEED, device="cpu", policy_kwargs=dict(net_arch=[64, 64]))
    model.learn(200)
    obs = tensor(model.policy, cartpole)
    with torch.no_grad():
        heads = {"q_values": model.policy.q_net(obs)}
    actions = predict(model, cartpole)
    check_actions("sb3_dqn_cartpole", {"q_values": as_float32(heads["q_values"])}, actions)
    model.save(HERE / "sb3_dqn_cartpole.zip")
    record("sb3_dqn_cartpole", cartpole, heads, actions)

    # SAC Pendulum: predict = unscale_action(tanh(mu)); value = first critic at the squashed action
    model = SAC("MlpPolicy", "Pendulum-v1", learning_starts=0, buffer_size=1000, batch_size=32, seed=SEED,
                device="cpu", policy_kwargs=dict(net_arch=[64, 64]))
    model.learn(200)
    policy = model.policy
    obs = tensor(policy, pendulum)
    with torch.no_grad():
        squashed = policy.actor(obs, deterministic=True)
        heads = {"mean": policy.unscale_action(as_float32(squashed)), "value": policy.critic(obs, squashed)[0]}
    actions = predict(model, pendulum)
    check_actions("sb3_sac_pendulum", heads, actions)
    model.save(HERE / "sb3_sac_pendulum.zip")
    record("sb3_sac_pendulum", pendulum, heads, actions)

    # TD3 Pendulum: actor.mu ends in Tanh; value = critic.q1_forward at that action
    model = TD3("MlpPolicy", "Pendulum-v1", learning_starts=0, buffer_size=1000, batch_size=32, seed=SEED,
                device="cpu", policy_kwargs=dict(net_arch=[64, 64]))
    model.learn(200)
    policy = model.policy
    obs = tensor(policy, pendulum)
    with torch.no_grad():
        squashed = policy.actor(obs)
        heads = {"mean": policy.unscale_action(as_float32(squashed)), "value": policy.critic.q1_forward(obs, squashed)}
    actions = predict(model, pendulum)
    check_actions("sb3_td3_pendulum", heads, actions)
    model.save(HERE / "sb3_td3_pendulum.zip")
    record("sb3_td3_pendulum", pendulum, heads, actions)
    yield "sb3_td3_pendulum", model

    # PPO CnnPolicy on (4, 84, 84) uint8, channels first already (no VecTransposeImage)
    cnn_kwargs = dict(features_extractor_kwargs=dict(features_dim=32), normalize_images=True)
    model = PPO("CnnPolicy", FakePong(), n_steps=64, batch_size=32, n_epochs=1, seed=SEED, device="cpu",
                policy_kwargs=cnn_kwargs)
    assert model.observation_space.shape == (4, 84, 84), model.observation_space
    model.learn(64)
    fresh_optimizer(model.policy)
    save_actor_critic(model, "sb3_ppo_cnn_pong", pong)
    yield "sb3_ppo_cnn_pong", model

    # DQN CnnPolicy, same fake env
    model = DQN("CnnPolicy", FakePong(), learning_starts=0, buffer_size=200, batch_size=16, train_freq=4,
                seed=SEED, device="cpu", policy_kwargs=cnn_kwargs)
    assert model.observation_space.shape == (4, 84, 84), model.observation_space
    model.learn(100)
    fresh_optimizer(model.policy)
    obs = tensor(model.policy, pong)
    with torch.no_grad():
        heads = {"q_values": model.policy.q_net(obs)}
    actions = predict(model, pong)
    check_actions("sb3_dqn_cnn_pong", {"q_values": as_float32(heads["q_values"])}, actions)
    model.save(HERE / "sb3_dqn_cnn_pong.zip")
    record("sb3_dqn_cnn_pong", pong, heads, actions)

    # PPO CartPole inside VecNormalize: outputs of raw observation -> normalize_obs -> policy
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_obs=True, norm_reward=True,
                        clip_obs=10.0)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=64, n_epochs=2, seed=SEED, device="cpu")
    model.learn(512)
    venv.training = False
    normalized = venv.normalize_obs(cartpole).astype(np.float32)
    heads = actor_critic_heads(model, normalized)
    actions = predict(model, normalized)
    check_actions("sb3_ppo_cartpole_vecnorm", {k: as_float32(v) for k, v in heads.items()}, actions)
    model.save(HERE / "sb3_ppo_cartpole_vecnorm.zip")
    stats = {"mean": venv.obs_rms.mean.tolist(), "var": venv.obs_rms.var.tolist(),
             "epsilon": float(venv.epsilon), "clip_obs": float(venv.clip_obs)}
    (HERE / "sb3_ppo_cartpole_vecnorm.normalization.json").write_text(json.dumps(stats, indent=2) + "\n")
    np.savez(HERE / "sb3_ppo_cartpole_vecnorm.normalization.npz", mean=venv.obs_rms.mean, var=venv.obs_rms.var,
             epsilon=np.float64(venv.epsilon), clip_obs=np.float64(venv.clip_obs))
    record("sb3_ppo_cartpole_vecnorm", cartpole, heads, actions,
           note="observations are raw; the heads are those of the policy on VecNormalize.normalize_obs(observations)")


# ---------------------------------------------------------------------------------------------
# CleanRL networks, copied unchanged (see the docstring for the commit)


# cleanrl/dqn.py
class QNetwork(nn.Module):
    def __init__(self, env):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(np.array(env.single_observation_space.shape).prod(), 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, env.single_action_space.n),
        )

    def forward(self, x):
        return self.network(x)


# cleanrl/dqn_atari.py (QNetwork there)
class AtariQNetwork(nn.Module):
    def __init__(self, env):
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Linear(512, env.single_action_space.n),
        )

    def forward(self, x):
        return self.network(x / 255.0)


# cleanrl/ppo.py, ppo_atari.py, ppo_continuous_action.py
def layer_init(layer, std=np.sqrt(2), bias_const=0.0):  # noqa: B008 (CleanRL verbatim)
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


# cleanrl/ppo.py (Agent there; get_action_and_value omitted: it samples)
class PPOAgent(nn.Module):
    def __init__(self, envs):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(np.array(envs.single_observation_space.shape).prod(), 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(np.array(envs.single_observation_space.shape).prod(), 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, envs.single_action_space.n), std=0.01),
        )

    def get_value(self, x):
        return self.critic(x)


# cleanrl/ppo_atari.py (Agent there)
class PPOAtariAgent(nn.Module):
    def __init__(self, envs):
        super().__init__()
        self.network = nn.Sequential(
            layer_init(nn.Conv2d(4, 32, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, 512)),
            nn.ReLU(),
        )
        self.actor = layer_init(nn.Linear(512, envs.single_action_space.n), std=0.01)
        self.critic = layer_init(nn.Linear(512, 1), std=1)

    def get_value(self, x):
        return self.critic(self.network(x / 255.0))


# cleanrl/ppo_continuous_action.py (Agent there)
class PPOContinuousAgent(nn.Module):
    def __init__(self, envs):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(np.array(envs.single_observation_space.shape).prod(), 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(np.array(envs.single_observation_space.shape).prod(), 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, np.prod(envs.single_action_space.shape)), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, np.prod(envs.single_action_space.shape)))

    def get_value(self, x):
        return self.critic(x)


# cleanrl/td3_continuous_action.py
class TD3QNetwork(nn.Module):
    def __init__(self, env):
        super().__init__()
        self.fc1 = nn.Linear(
            np.array(env.single_observation_space.shape).prod() + np.prod(env.single_action_space.shape),
            256,
        )
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, x, a):
        x = torch.cat([x, a], 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


class Actor(nn.Module):
    def __init__(self, env):
        super().__init__()
        self.fc1 = nn.Linear(np.array(env.single_observation_space.shape).prod(), 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc_mu = nn.Linear(256, np.prod(env.single_action_space.shape))
        # action rescaling
        self.register_buffer(
            "action_scale",
            torch.tensor(
                (env.single_action_space.high - env.single_action_space.low) / 2.0,
                dtype=torch.float32,
            ),
        )
        self.register_buffer(
            "action_bias",
            torch.tensor(
                (env.single_action_space.high + env.single_action_space.low) / 2.0,
                dtype=torch.float32,
            ),
        )

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = torch.tanh(self.fc_mu(x))
        return x * self.action_scale + self.action_bias


def stand_in(env_id: str | None = None):
    """What CleanRL's networks read from their (vector) envs: the single observation and action spaces."""
    if env_id is None:
        return types.SimpleNamespace(single_observation_space=IMAGE_SPACE, single_action_space=spaces.Discrete(6))
    env = gym.make(env_id)
    return types.SimpleNamespace(single_observation_space=env.observation_space, single_action_space=env.action_space)


def perturb_zero_biases(module: nn.Module, generator: torch.Generator) -> None:
    """layer_init leaves biases at 0; draw them from N(0, 0.1) so the fixtures test biases too."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith(".bias") or name == "bias":
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def sparsify(linear: nn.Linear, generator: torch.Generator, keep: float = 0.02) -> None:
    """Keep 2% of the weight's entries (scaled by 1/sqrt(keep)), zero the rest: a small, compressible file."""
    with torch.no_grad():
        mask = torch.rand(linear.weight.shape, generator=generator) < keep
        linear.weight.mul_(mask / np.sqrt(keep))


def cleanrl_models():
    cartpole, pendulum = vector_observations("CartPole-v1"), vector_observations("Pendulum-v1")
    pong = image_observations()
    generator = torch.Generator().manual_seed(SEED)

    def save(name, state):
        torch.save(state, HERE / f"{name}.cleanrl_model")

    with torch.no_grad():
        torch.manual_seed(SEED)
        q_network = QNetwork(stand_in("CartPole-v1"))
        q_values = q_network(torch.as_tensor(cartpole))
        save("cleanrl_dqn_cartpole", q_network.state_dict())
        record("cleanrl_dqn_cartpole", cartpole, {"q_values": q_values}, as_float32(q_values).argmax(axis=1))

        torch.manual_seed(SEED)
        agent = PPOAgent(stand_in("CartPole-v1"))
        perturb_zero_biases(agent, generator)
        x = torch.as_tensor(cartpole)
        logits = agent.actor(x)
        save("cleanrl_ppo_cartpole", agent.state_dict())
        record("cleanrl_ppo_cartpole", cartpole, {"logits": logits, "value": agent.get_value(x)},
               as_float32(logits).argmax(axis=1))

        torch.manual_seed(SEED)
        envs = stand_in("Pendulum-v1")
        agent = PPOContinuousAgent(envs)
        perturb_zero_biases(agent, generator)
        x = torch.as_tensor(pendulum)
        mean = agent.actor_mean(x)
        save("cleanrl_ppo_continuous_pendulum", agent.state_dict())
        actions = np.clip(as_float32(mean), envs.single_action_space.low, envs.single_action_space.high)
        record("cleanrl_ppo_continuous_pendulum", pendulum, {"mean": mean, "value": agent.get_value(x)}, actions,
               note="the network's own outputs on these observations as given; ppo_continuous_action.py trains "
                    "behind NormalizeObservation and clips observations to [-10, 10], statistics it does not save")

        torch.manual_seed(SEED)
        envs = stand_in("Pendulum-v1")
        actor, qf1, qf2 = Actor(envs), TD3QNetwork(envs), TD3QNetwork(envs)
        x = torch.as_tensor(pendulum)
        mean = actor(x)
        save("cleanrl_td3_pendulum", (actor.state_dict(), qf1.state_dict(), qf2.state_dict()))
        record("cleanrl_td3_pendulum", pendulum, {"mean": mean, "value": qf1(x, mean)}, as_float32(mean))

        torch.manual_seed(SEED)
        q_network = AtariQNetwork(stand_in())
        sparsify(q_network.network[7], generator)
        q_values = q_network(torch.as_tensor(pong))
        save("cleanrl_dqn_atari_pong", q_network.state_dict())
        record("cleanrl_dqn_atari_pong", pong, {"q_values": q_values}, as_float32(q_values).argmax(axis=1))

        torch.manual_seed(SEED)
        agent = PPOAtariAgent(stand_in())
        perturb_zero_biases(agent, generator)
        sparsify(agent.network[7], generator)
        x = torch.as_tensor(pong)
        hidden = agent.network(x / 255.0)
        logits = agent.actor(hidden)
        save("cleanrl_ppo_atari_pong", agent.state_dict())
        record("cleanrl_ppo_atari_pong", pong, {"logits": logits, "value": agent.get_value(x)},
               as_float32(logits).argmax(axis=1))


# ---------------------------------------------------------------------------------------------
# ONNX


class ActorCriticHeads(nn.Module):
    """An SB3 MlpPolicy (shared Flatten extractor) as observation -> (logits, value)."""

    def __init__(self, policy):
        super().__init__()
        self.policy_net, self.action_net = policy.mlp_extractor.policy_net, policy.action_net
        self.value_trunk, self.value_net = policy.mlp_extractor.value_net, policy.value_net

    def forward(self, observation):
        return self.action_net(self.policy_net(observation)), self.value_net(self.value_trunk(observation))


class CnnLogits(nn.Module):
    """An SB3 CnnPolicy as uint8-valued observation -> logits, dividing by 255 as SB3's preprocess_obs does."""

    def __init__(self, policy):
        super().__init__()
        self.features_extractor, self.policy_net = policy.features_extractor, policy.mlp_extractor.policy_net
        self.action_net = policy.action_net

    def forward(self, observation):
        return self.action_net(self.policy_net(self.features_extractor(observation / 255.0)))


class TD3Mean(nn.Module):
    """An SB3 TD3 actor as observation -> action in the environment's bounds (SB3's unscale_action of tanh)."""

    def __init__(self, policy):
        super().__init__()
        self.mu = policy.actor.mu
        low, high = policy.action_space.low, policy.action_space.high
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("half_range", torch.as_tensor((high - low) / 2, dtype=torch.float32))

    def forward(self, observation):
        return self.low + (self.mu(observation) + 1.0) * self.half_range


def export_onnx(module: nn.Module, example: np.ndarray, path: Path, outputs: list[str]) -> None:
    module.eval()
    arguments = dict(input_names=["observation"], output_names=outputs, opset_version=17,
                     dynamic_axes={"observation": {0: "batch"}, **{name: {0: "batch"} for name in outputs}})
    try:
        torch.onnx.export(module, (torch.as_tensor(example[:2]),), str(path), dynamo=False, **arguments)
    except TypeError:  # a torch without the classic exporter
        torch.onnx.export(module, (torch.as_tensor(example[:2]),), str(path), **arguments)


def onnx_models(sb3: dict):
    import onnx
    import onnxruntime

    def run(name, module, observations, outputs, recorded=None):
        path = HERE / f"{name}.onnx"
        export_onnx(module, observations, path, outputs)
        onnx.checker.check_model(onnx.load(str(path)))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        found = dict(zip(outputs, session.run(outputs, {"observation": observations}), strict=True))
        with torch.no_grad():
            expected = module(torch.as_tensor(observations))
        expected = expected if isinstance(expected, tuple) else (expected,)
        for output, value in zip(outputs, expected, strict=True):
            np.testing.assert_allclose(found[output], as_float32(value), atol=TOLERANCE, rtol=TOLERANCE,
                                       err_msg=f"{name}: onnxruntime and torch disagree on {output}")
            if recorded is not None:  # the exported graph is the SB3 policy it came from
                np.testing.assert_allclose(found[output], recorded[output], atol=TOLERANCE, rtol=TOLERANCE)
        return found

    def recorded(name):
        return np.load(HERE / f"{name}.npz")

    cartpole = vector_observations("CartPole-v1")
    found = run("onnx_mlp_cartpole", ActorCriticHeads(sb3["sb3_ppo_cartpole"].policy), cartpole, ["logits", "value"],
                recorded("sb3_ppo_cartpole"))
    record("onnx_mlp_cartpole", cartpole, found, found["logits"].argmax(axis=1))

    pong = image_observations()
    found = run("onnx_cnn_pong", CnnLogits(sb3["sb3_ppo_cnn_pong"].policy), pong, ["logits"],
                recorded("sb3_ppo_cnn_pong"))
    record("onnx_cnn_pong", pong, found, found["logits"].argmax(axis=1))

    pendulum = vector_observations("Pendulum-v1")
    found = run("onnx_pendulum_mean", TD3Mean(sb3["sb3_td3_pendulum"].policy), pendulum, ["mean"],
                {"mean": recorded("sb3_td3_pendulum")["mean"]})
    record("onnx_pendulum_mean", pendulum, found, found["mean"])

    # the same CartPole graph with its weights in a separate file, for the app's refusal of external data
    model = onnx.load(str(HERE / "onnx_mlp_cartpole.onnx"))
    (HERE / "onnx_external_data.onnx.data").unlink(missing_ok=True)  # onnx appends to an existing file
    onnx.save_model(model, str(HERE / "onnx_external_data.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="onnx_external_data.onnx.data", size_threshold=0)
    (HERE / "onnx_external_data.onnx.data").chmod(0o644)
    assert onnx.load(str(HERE / "onnx_external_data.onnx")).graph.initializer[0].raw_data
    print("onnx_external_data: onnx_external_data.onnx + onnx_external_data.onnx.data")


def main():
    sb3 = dict(sb3_models())
    cleanrl_models()
    onnx_models(sb3)


if __name__ == "__main__":
    main()
