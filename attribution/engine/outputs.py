"""What gets explained: the registry of explained outputs, and the wrappers that build each one.

A policy is a ``keras.Model`` from observations (batch, *obs_shape) to either one array or a
dict of named heads. The heads this project's policies expose:

    "logits": (batch, n_actions)   discrete actor, before the softmax
    "mean":   (batch, action_dim)  continuous actor, the action's mean
    "value":  (batch, 1)           critic, V(s)

A model with a single output is its own head (a logits network, a Q-network).
Each wrapper returns a new ``keras.Model`` from the same observations to (batch, n_outputs),
sharing the policy's weights. The engine compiles once per model object, so build a wrapper
once and reuse it.

>>> policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
>>> action_probabilities(policy).output_shape
(None, 2)

``OUTPUTS`` names every kind once, for the pages, the trust checks and batch jobs alike:

>>> output = OUTPUTS["probability"]
>>> output.label, output.target(1), output.output_name(("left", "right"), 1)
('action probability', 1, 'P(right)')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np
from keras import ops


def action_probabilities(policy: keras.Model, head: str = "logits") -> keras.Model:
    """P(action | s): softmax of the logits, (batch, n_actions)."""
    return _wrap(policy, head, "action_probabilities", lambda logits: ops.softmax(logits, axis=-1))


def action_logits(policy: keras.Model, head: str = "logits") -> keras.Model:
    """The logits, (batch, n_actions)."""
    return _wrap(policy, head, "action_logits", lambda logits: logits)


def action_log_probabilities(policy: keras.Model, head: str = "logits") -> keras.Model:
    """log P(action | s), (batch, n_actions)."""
    return _wrap(policy, head, "action_log_probabilities", lambda logits: ops.log_softmax(logits, axis=-1))


def q_values(network: keras.Model, head: str = "q_values") -> keras.Model:
    """Q(s, a) of a value-based agent, (batch, n_actions)."""
    return _wrap(network, head, "q_values", lambda q: q)


def state_value(policy: keras.Model, head: str = "value") -> keras.Model:
    """The critic's V(s), (batch, 1)."""
    return _wrap(policy, head, "state_value", lambda value: value)


def action_contrast(policy: keras.Model, action: int, rather_than: int, head: str = "logits") -> keras.Model:
    """Why ``action`` rather than ``rather_than``: log P(action | s) - log P(rather_than | s)
    (the difference of their logits), (batch, 1). Positive attributions favour ``action``."""
    n_actions = _head_width(policy, head)
    for name, value in (("action", action), ("rather_than", rather_than)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n_actions:
            raise ValueError(f"{name} must be an action index in [0, {n_actions}); received {value!r}.")
    if action == rather_than:
        raise ValueError(f"action and rather_than must differ to be contrasted; received {action} twice.")
    return _wrap(policy, head, f"contrast_{action}_vs_{rather_than}",
                 lambda logits: logits[:, action:action + 1] - logits[:, rather_than:rather_than + 1])


def action_mean(policy: keras.Model, head: str = "mean") -> keras.Model:
    """A continuous action's mean, (batch, action_dim)."""
    return _wrap(policy, head, "action_mean", lambda mean: mean)


def on_raw_observations(model: keras.Model, mean, std) -> keras.Model:
    """``model`` that was trained on (obs - mean) / std, made to take raw observations.

    Attributions of the result are in the environment's own units. (IG is unchanged by this
    affine change of variables when the baseline moves with it; the units are what differ.)
    """
    obs_shape = tuple(model.inputs[0].shape[1:])
    mean = np.broadcast_to(np.asarray(mean, np.float32), obs_shape)
    std = np.broadcast_to(np.asarray(std, np.float32), obs_shape)
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ValueError(f"mean must be finite and std finite and positive, shape {obs_shape}; "
                         f"received mean {mean.tolist()} and std {std.tolist()}.")
    raw = keras.Input(obs_shape, name="raw_observation")
    normalized = keras.layers.Normalization(mean=mean, variance=std**2, name="observation_normalization")(raw)
    return keras.Model(raw, model(normalized), name=f"{model.name}_on_raw_observations")


def _wrap(policy: keras.Model, head: str, name: str, transform) -> keras.Model:
    if not isinstance(policy, keras.Model):
        raise ValueError(f"policy must be a keras.Model; received {type(policy).__name__}.")
    observation = keras.Input(tuple(policy.inputs[0].shape[1:]), name="observation")
    return keras.Model(observation, transform(_select_head(policy(observation), head, policy)), name=name)


def _select_head(outputs, head: str, policy: keras.Model):
    if isinstance(outputs, dict):
        if head not in outputs:
            raise ValueError(f"policy {policy.name!r} has no head {head!r}; its heads are {sorted(outputs)}.")
        return outputs[head]
    if isinstance(outputs, (list, tuple)):
        raise ValueError(f"policy {policy.name!r} returns {len(outputs)} unnamed outputs; "
                         f"return a dict of named heads so that {head!r} can be found.")
    return outputs  # a single output is its own head


def _head_width(policy: keras.Model, head: str) -> int:
    observation = keras.KerasTensor((1, *policy.inputs[0].shape[1:]), dtype="float32")
    return int(_select_head(policy.compute_output_spec(observation), head, policy).shape[-1])


@dataclasses.dataclass(frozen=True)
class ExplainedOutput:
    """One kind of output the engine can explain.

    kind: its key in ``OUTPUTS``, used in code, settings and files ("probability").
    label: its name for people, as the sidebar lists it ("action probability").
    head: the policy head it reads; a policy supports it when it has that head.
    wrapper: the wrapper above that builds the explained model from the policy model.
    per_action: one output per action, of which the chosen action's is explained; otherwise
        the model has one output that is always explained (index 0).
    name_format: what the explained output reads as, with {action} (the explained action's name),
        {a} and {b} (a contrast's two actions).
    is_actions_score: the output is the chosen action's own score (a probability, a mean), so a
        sentence about the action needs no extra number; V(s) or a contrast gets its value said.
    contrasts: the wrapper takes two actions (``build(model, action_a, action_b)``).
    """

    kind: str
    label: str
    head: str
    wrapper: Callable[..., keras.Model]
    per_action: bool
    name_format: str
    is_actions_score: bool = True
    contrasts: bool = False

    def supports(self, heads) -> bool:
        """Whether a policy with these heads ("logits", "value", ...) has this output."""
        return self.head in heads

    def build(self, policy: keras.Model, action_a: int = 1, action_b: int = 0) -> keras.Model:
        """The explained model: policy observations (batch, *obs_shape) -> (batch, n_outputs)."""
        return self.wrapper(policy, action_a, action_b) if self.contrasts else self.wrapper(policy)

    def target(self, action) -> int:
        """The output index explained when the agent took ``action`` (an int, or a continuous action)."""
        return int(action) if self.per_action else 0

    def output_name(self, action_names, target: int, action_a: int = 1, action_b: int = 0) -> str:
        """What output ``target`` is, for people: "P(push left)", "V(s)", ..."""
        names = tuple(action_names)

        def name(index: int) -> str:
            return names[index] if 0 <= index < len(names) else f"output {index}"

        return self.name_format.format(action=name(target), a=name(action_a), b=name(action_b))


OUTPUTS: dict[str, ExplainedOutput] = {output.kind: output for output in (
    ExplainedOutput("probability", "action probability", "logits", action_probabilities, True, "P({action})"),
    ExplainedOutput("logit", "logit", "logits", action_logits, True, "logit({action})"),
    ExplainedOutput("log_probability", "log-probability", "logits", action_log_probabilities, True, "log P({action})"),
    ExplainedOutput("q_value", "Q-value", "q_values", q_values, True, "Q(s, {action})"),
    ExplainedOutput("mean", "continuous action", "mean", action_mean, False, "mean {action}"),
    ExplainedOutput("value", "critic value", "value", state_value, False, "V(s)", is_actions_score=False),
    ExplainedOutput("contrast", "A rather than B", "logits", action_contrast, False, "log P({a}) − log P({b})",
                    is_actions_score=False, contrasts=True),
)}


def outputs_for(heads) -> list[ExplainedOutput]:
    """The outputs a policy with these heads supports, the default (its actor's) first."""
    return [output for output in OUTPUTS.values() if output.supports(heads)]
