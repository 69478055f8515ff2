"""Why did the agent do that? Integrated Gradients for reinforcement-learning policies.

    from attribution import integrated_gradients, explain
    result = integrated_gradients(explain.action_probabilities(model), states)   # .attributions, .delta, ...
    integrated_gradients(model, states, groups=FeatureGroups(names, labels), attributions=False).group_sums
    env = attribution.make_env("CartPole-v1", render_mode="rgb_array")          # what the policy acts in

The layers, each importing only those below it: ``engine`` (IG, knows Keras and NumPy only),
``rl`` (environments, policies, episodes), ``analysis`` (episodes explained, bookmarks, trust
checks), ``presentation`` (charts, sentences, exports); ``training`` holds the command-line
tools that made the shipped policies. Importing ``attribution`` loads the engine only.
"""

from attribution.engine import outputs as explain
from attribution.engine.groups import FeatureGroups
from attribution.engine.ig import IGResult, integrated_gradients
from attribution.engine.quadrature import METHODS, quadrature_rule

__all__ = ["FeatureGroups", "IGResult", "METHODS", "explain", "integrated_gradients", "make_env", "quadrature_rule"]


def __getattr__(name: str):
    if name == "make_env":  # loaded on first use, so that the engine alone never imports gymnasium
        from attribution.rl.environments import make_env

        return make_env
    raise AttributeError(f"module 'attribution' has no attribute {name!r}")
