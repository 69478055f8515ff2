"""Can this explanation be believed? Checks of an IG explanation at one state, each with a verdict.

    convergence(model, state, target, baseline)             completeness gap against steps, every rule
    baseline_sensitivity(model, state, target, baselines)   the bars for several baselines, one call
    expected_gradients(model, state, target, references)    IG averaged over many reference baselines
    method_comparison(model, state, target, baseline)       gradient, gradient x input, IG, SmoothGrad-IG
    randomisation_check(policy_model, wrap, state, target, baseline)   Adebayo et al. 2018
    faithfulness(model, state, target, attributions, baseline)         deletion and insertion curves
    occlusion(model, state, target, groups, background)     each group painted over: a second opinion

``model`` is an explained model (``attribution.explain``): (batch, *obs) -> (batch, n_outputs); states
are one observation (*obs). Every check batches its work into a few engine calls.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from attribution.engine import backend
from attribution.engine.ig import integrated_gradients, output_resolution
from attribution.engine.quadrature import METHOD_LABELS, METHODS

STEPS_TRIED = (8, 16, 32, 64, 128, 256, 512)


@dataclasses.dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str   # one sentence with the number behind it

    @property
    def label(self) -> str:
        return "pass" if self.passed else "warn"


def spearman(a, b) -> float:
    """Rank correlation of two attribution vectors (1: same order, 0: unrelated, -1: reversed)."""
    ranks = [np.argsort(np.argsort(np.asarray(v, float).reshape(-1), kind="stable"), kind="stable") for v in (a, b)]
    if np.ptp(ranks[0]) == 0 or np.ptp(ranks[1]) == 0:
        return 1.0 if np.array_equal(ranks[0], ranks[1]) else 0.0
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


# ---- convergence ----

@dataclasses.dataclass(frozen=True)
class Convergence:
    steps: tuple[int, ...]
    relative_gap: dict[str, np.ndarray]   # method -> (len(steps),) |delta| / |F(x) - F(x')|
    used_steps: int
    used_method: str
    change: float             # F(x) - F(x')
    resolution: float         # the smallest gap float32 outputs show (``output_resolution``)

    @property
    def verdict(self) -> Verdict:
        gap = float(np.interp(self.used_steps, self.steps, self.relative_gap[self.used_method]))
        at = f"at {self.used_steps} points ({METHOD_LABELS[self.used_method]})"
        if gap > 0.01 and gap * abs(self.change) <= self.resolution:
            return Verdict(True, f"the output hardly changes from the baseline ({self.change:+.2g}); {at} the "
                                 f"attributions miss it by {gap * abs(self.change):.1g}, as fine as 32-bit "
                                 f"arithmetic resolves")
        return Verdict(gap <= 0.01, f"{at} the attributions miss the output's change by {100 * gap:.2g}% "
                                    f"(1% is the bar)")


def convergence(model, state, target: int, baseline=None, used_steps: int = 64, used_method: str = "gausslegendre",
                steps=STEPS_TRIED, methods=METHODS) -> Convergence:
    """The completeness gap for each rule and number of points (refinement off, so each count is what it says)."""
    state = np.asarray(state, np.float32)[None]
    gaps = {}
    for method in methods:
        results = [integrated_gradients(model, state, baseline, target, steps=n, method=method, refine=False)
                   for n in steps]
        gaps[method] = np.array([float(result.relative_delta[0]) for result in results])
    first = results[0]  # F(x) and F(x') are the same whatever the rule and points
    at_state, at_baseline = float(first.outputs[0, target]), float(first.baseline_outputs[0, target])
    return Convergence(tuple(steps), gaps, used_steps, used_method, at_state - at_baseline,
                       float(output_resolution(at_state, at_baseline)))


# ---- baselines ----

def baseline_sensitivity(model, state, target: int, baselines: dict) -> dict[str, np.ndarray]:
    """name -> attributions (*obs) for each baseline, all in one engine call."""
    names = list(baselines)
    states = np.repeat(np.asarray(state, np.float32)[None], len(names), axis=0)
    result = integrated_gradients(
        model, states, np.stack([np.asarray(baselines[n], np.float32) for n in names]), target
    )
    return dict(zip(names, result.attributions, strict=True))


def expected_gradients(model, state, target: int, references, steps: int = 16) -> np.ndarray:
    """IG averaged over reference states as baselines (expected-gradients style), one batched call.

    Each reference gets ``steps`` points: the average over many references, not each path, carries the accuracy.
    Returns (*obs).
    """
    references = np.asarray(references, np.float32)
    states = np.repeat(np.asarray(state, np.float32)[None], len(references), axis=0)
    return integrated_gradients(model, states, references, target, steps=steps, refine=False).attributions.mean(axis=0)


def baseline_verdict(by_baseline: dict[str, np.ndarray]) -> Verdict:
    names = list(by_baseline)
    worst = min((spearman(by_baseline[a], by_baseline[b]), a, b) for i, a in enumerate(names) for b in names[i + 1:])
    return Verdict(worst[0] >= 0.5, f"the order of the features agrees between baselines (lowest rank correlation "
                                    f"{worst[0]:+.2f}, {worst[1]} against {worst[2]})" if worst[0] >= 0.5 else
                   f"the order of the features depends on the baseline: rank correlation {worst[0]:+.2f} between "
                   f"{worst[1]} and {worst[2]}")


# ---- other methods ----

def gradients(model, states, target) -> np.ndarray:
    """dF_target/dx at each state, (N, *obs), through the engine's compiled call: with the baseline
    x - 1 and one right-Riemann point at alpha = 1, IG is exactly 1 * dF/dx at x."""
    states = np.asarray(states, np.float32)
    return integrated_gradients(model, states, states - 1, target, steps=1, method="riemann_right",
                                refine=False).attributions


def smoothgrad_ig(model, state, target: int, baseline=None, noise: float = 0.1, scale=None, samples: int = 32,
                  seed: int = 0) -> np.ndarray:
    """IG averaged over noisy copies of the state, one call. The noise's standard deviation is
    ``noise`` times each feature's ``scale`` (*obs; by default the state's own magnitude)."""
    state = np.asarray(state, np.float32)
    scale = np.maximum(np.abs(state), 1e-3) if scale is None else np.asarray(scale, np.float32)
    noisy = state[None] + noise * scale[None] * np.random.default_rng(seed).standard_normal((samples, *state.shape))
    return integrated_gradients(model, noisy.astype(np.float32), baseline, target).attributions.mean(axis=0)


def method_comparison(model, state, target: int, baseline=None, noise: float = 0.1, scale=None,
                      samples: int = 32) -> dict[str, np.ndarray]:
    """name -> (*obs) attributions by each method. Gradient x input multiplies by x itself (a zero
    baseline), which tutorials often call IG; IG integrates the gradient along the path."""
    state = np.asarray(state, np.float32)
    gradient = gradients(model, state[None], target)[0]
    return {"integrated gradients": integrated_gradients(model, state[None], baseline, target).attributions[0],
            "gradient": gradient,
            "gradient x input": gradient * state,
            "SmoothGrad over IG": smoothgrad_ig(model, state, target, baseline, noise, scale, samples)}


def agreement(by_method: dict[str, np.ndarray]) -> np.ndarray:
    """(M, M) rank correlations between the methods' attributions."""
    values = list(by_method.values())
    return np.array([[spearman(a, b) for b in values] for a in values])


def method_verdict(by_method: dict[str, np.ndarray]) -> Verdict:
    rho = spearman(by_method["integrated gradients"], by_method["SmoothGrad over IG"])
    return Verdict(rho >= 0.7, f"small noise on the state {'keeps' if rho >= 0.7 else 'changes'} the order of the "
                               f"features (rank correlation {rho:+.2f} between IG and SmoothGrad over IG)")


# ---- sanity check: model parameter randomisation ----

@dataclasses.dataclass(frozen=True)
class Randomisation:
    layers: tuple[str, ...]          # randomised cumulatively from the top: after 1, 2, ... layers
    similarity: np.ndarray           # (len(layers),) rank correlation with the trained network's attributions,
                                     # averaged over the random draws
    magnitude_similarity: float      # the same for |attributions| once every layer is random
    attributions: np.ndarray         # (len(layers) + 1, *obs): trained, then after each randomisation (first draw)

    @property
    def verdict(self) -> Verdict:
        if not self.layers:
            return Verdict(False, "the model has no trainable layers whose weights could be randomised")
        final = float(self.similarity[-1])
        meaning = ("they depend on what the network learned" if final < 0.5
                   else "too similar: they may reflect the input more than the network")
        return Verdict(final < 0.5, f"with every layer's weights random, the attributions keep a rank correlation of "
                                    f"{final:+.2f} with the trained network's ({meaning})")


def randomisation_check(policy_model: keras.Model, wrap, state, target: int, baseline=None, draws: int = 3,
                        seed: int = 0) -> Randomisation:
    """Cascading randomisation (Adebayo et al. 2018): a copy of the policy has its layers' weights
    re-drawn from the top layer down, and IG is recomputed after each; the policy itself is never touched.

    Signed attributions are compared (by rank): the ranks of their magnitudes tend to follow the input's
    own scale whatever the weights, which is reported as ``magnitude_similarity``. ``draws`` random
    draws are averaged, since a few features allow few rankings.

    Args:
        wrap: the explain wrapper the app uses (``explain.action_probabilities``, ...).
    """
    copy = keras.models.clone_model(policy_model)
    trained = policy_model.get_weights()
    copy.set_weights(trained)
    explained = wrap(copy)  # one copy for every draw, so the engine compiles it once
    state = np.asarray(state, np.float32)[None]
    layers = [
        layer for layer in backend.all_layers(copy) if layer.trainable_weights and not getattr(layer, "layers", None)
    ]
    rng = np.random.default_rng(seed)
    original = integrated_gradients(explained, state, baseline, target).attributions[0]
    similarity, magnitude, first_draw = np.zeros(len(layers)), [], [original]
    for draw in range(draws):
        copy.set_weights(trained)
        for k, layer in enumerate(reversed(layers)):
            for weight in layer.trainable_weights:
                value = np.asarray(weight.numpy())
                weight.assign((rng.standard_normal(value.shape) * (value.std() or 0.1)).astype(value.dtype))
            found = integrated_gradients(explained, state, baseline, target).attributions[0]
            similarity[k] += spearman(original, found) / draws
            if draw == 0:
                first_draw.append(found)
        magnitude.append(spearman(np.abs(original), np.abs(found)) if layers else 1.0)
    return Randomisation(tuple(layer.name for layer in reversed(layers)), similarity, float(np.mean(magnitude)),
                         np.stack(first_draw))


# ---- faithfulness: deletion and insertion ----

@dataclasses.dataclass(frozen=True)
class Faithfulness:
    deletion: np.ndarray           # (F + 1,) F after replacing the top k features by the baseline, k = 0..F
    insertion: np.ndarray          # (F + 1,) F after putting the top k features into the baseline
    random_deletion: np.ndarray    # (F + 1,) the same in random orders, averaged
    random_insertion: np.ndarray
    flips_at: float | None         # features reset before the top choice changes (mean over the states where it
                                   # does; None: it never does)
    states: int = 1                # curves are averaged over this many states

    @property
    def area_between(self) -> float:
        """Mean over k of (random − attribution order) for deletion plus (attribution − random) for insertion,
        in units of the explained output: positive when the attributions find the features that matter."""
        return float(np.mean(self.random_deletion - self.deletion) + np.mean(self.insertion - self.random_insertion))

    @property
    def verdict(self) -> Verdict:
        area = self.area_between
        return Verdict(area > 0, f"removing the features in the attributions' order moves the output "
                                 f"{'faster' if area > 0 else 'no faster'} than a random order "
                                 f"(area between the curves {area:+.3g})")


def faithfulness(model, states, targets, attributions, baseline=None, random_orders: int = 16,
                 seed: int = 0) -> Faithfulness:
    """Deletion and insertion curves for the attributions' order (largest first) and random orders,
    at one state (*obs) or averaged over many (N, *obs), every point in one forward call.

    Args:
        targets: the explained output, an int or (N,).
        attributions: (*obs) or (N, *obs), as ``states``.
        baseline: (*obs), the values features are reset to (zeros by default).
    """
    model_shape = tuple(model.inputs[0].shape[1:])
    states = np.asarray(states, np.float32).reshape(-1, int(np.prod(model_shape)))
    scores = np.asarray(attributions, float).reshape(len(states), -1)
    targets = np.broadcast_to(np.asarray(targets), (len(states),))
    n, f = states.shape
    base = np.zeros(f, np.float32) if baseline is None else np.asarray(baseline, np.float32).reshape(-1)
    rng = np.random.default_rng(seed)
    orders = np.stack([np.argsort(-scores, axis=1, kind="stable")]
                      + [np.argsort(rng.random((n, f)), axis=1) for _ in range(random_orders)])   # (1 + R, N, F)
    # step k of an order has its first k features switched: a (1 + R, N, F + 1, F) mask
    switched = np.zeros((*orders.shape[:2], f + 1, f), bool)
    rank_of = np.argsort(orders, axis=2)                                                          # (1 + R, N, F)
    switched[...] = rank_of[:, :, None, :] < np.arange(f + 1)[None, None, :, None]
    deleted = np.where(switched, base, states[None, :, None, :])
    inserted = np.where(switched, states[None, :, None, :], base)
    rows = np.stack([deleted, inserted], axis=2).reshape(-1, *model_shape)                       # (1+R, N, 2, F+1)
    outputs = np.asarray(backend.compiled_call(model)(rows), dtype=float).reshape(*orders.shape[:2], 2, f + 1, -1)
    curves = np.take_along_axis(outputs, targets[None, :, None, None, None], axis=4)[..., 0]     # (1 + R, N, 2, F + 1)
    choice = outputs[0, :, 0].argmax(axis=2)                                                      # (N, F + 1)
    flips = [int(np.flatnonzero(row != row[0])[0]) for row in choice if (row != row[0]).any()]
    mean = curves.mean(axis=1)
    return Faithfulness(mean[0, 0], mean[0, 1], mean[1:, 0].mean(axis=0), mean[1:, 1].mean(axis=0),
                        float(np.mean(flips)) if flips else None, n)


# ---- occlusion: a second opinion on groups of features ----

@dataclasses.dataclass(frozen=True)
class Occlusion:
    names: tuple[str, ...]          # the groups (objects), without the rest
    change: np.ndarray              # (G,) F(x) - F(x with the group painted over by the background)
    ig: np.ndarray                  # (G,) IG's attribution of each group

    @property
    def agreement(self) -> float:
        """Rank correlation of IG's group attributions with the occlusion changes."""
        return spearman(self.ig, self.change)

    @property
    def verdict(self) -> Verdict:
        strongest_ig, strongest_occluded = int(np.argmax(np.abs(self.ig))), int(np.argmax(np.abs(self.change)))
        same = strongest_ig == strongest_occluded
        return Verdict(same or self.agreement >= 0.5,
                       f"painting each object over with the background moves the output most for "
                       f"{self.names[strongest_occluded]}, and IG credits {self.names[strongest_ig]} most "
                       f"(rank correlation {self.agreement:+.2f} over {len(self.names)} objects)")


def occlusion(model, state, target: int, groups, ig_sums, background, skip_last: bool = True) -> Occlusion:
    """The output's change when each group of ``state`` (*obs) is replaced by ``background`` (*obs),
    every group in one forward call, beside IG's group sums ``ig_sums`` (G,).

    Args:
        groups: FeatureGroups of this one state; ``skip_last`` leaves out its last group (the rest),
            which painted over would be most of the picture.
    """
    state = np.asarray(state, np.float32)
    labels = np.broadcast_to(groups.for_states(1, state.shape)[0], state.shape)
    count = len(groups.names) - (1 if skip_last else 0)
    background = np.broadcast_to(np.asarray(background, np.float32), state.shape)
    rows = np.stack([state] + [np.where(labels == g, background, state) for g in range(count)])
    outputs = np.asarray(backend.compiled_call(model)(rows), dtype=float)[:, target]
    return Occlusion(tuple(groups.names[:count]), outputs[0] - outputs[1:], np.asarray(ig_sums, float)[:count])
