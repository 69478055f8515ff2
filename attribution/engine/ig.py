"""Batched Integrated Gradients (Sundararajan et al., 2017).

For each state x, baseline x' and explained output F_t:

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF_t(x' + alpha (x - x')) / dx_i  d alpha

The integral is a quadrature (``quadrature.py``). All states, targets and path
points go through the model together: one (paths * steps, *shape) tensor per
compiled call, built on the device from the states and baselines, chunked along
that flattened axis when it would exceed the memory budget. For a Sequential model
that starts with a Dense or convolution layer, the path is built after that layer's
affine map, which gives the same integral for less work (``split.py``). With feature groups
(``groups.py``) the attributions are also added up per group, on the device when only the sums
are wanted.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from attribution.engine import backend
from attribution.engine.groups import FeatureGroups
from attribution.engine.quadrature import MAX_STEPS, check_method, check_steps, quadrature_rule

MEMORY_BUDGET_BYTES = 256 * 2**20  # interpolated rows and their activations, per compiled call on a CPU
PIECES_PER_CALL = 64  # refinement: pieces of paths integrated per call (their ends are copies of states)


@dataclasses.dataclass(frozen=True)
class IGResult:
    """What ``integrated_gradients`` found, as numpy arrays.

    Shapes (T = number of outputs, only with ``target="all"``; G = number of groups):
        attributions: float32 (N, *obs_shape), or (N, T, *obs_shape); None when only group sums were asked for.
        delta: float (N,) or (N, T): sum(attributions) - (F(x)[t] - F(x')[t]), the completeness gap.
        targets: int (N,) or (N, T): the output index explained in each slot.
        outputs: float32 (N, n_outputs): F(states).
        baseline_outputs: float32 (N, n_outputs): F(baselines).
        steps: int (N,): path points used per state (more than asked where ``refine`` raised them).
        method: the quadrature rule.
        group_sums: float (N, G) or (N, T, G), each group's attribution, with ``groups``; else None.
        group_names: (G,) with ``groups``; else None.
    """

    attributions: np.ndarray | None
    delta: np.ndarray
    targets: np.ndarray
    outputs: np.ndarray
    baseline_outputs: np.ndarray
    steps: np.ndarray
    method: str
    group_sums: np.ndarray | None = None
    group_names: tuple[str, ...] | None = None

    @property
    def output_change(self) -> np.ndarray:
        """F(x)[t] - F(x')[t], what the attributions should add up to; shape of ``delta``."""
        return _selected(self.outputs, self.targets) - _selected(self.baseline_outputs, self.targets)

    @property
    def relative_delta(self) -> np.ndarray:
        """|delta| / |F(x)[t] - F(x')[t]|; 0 where the output does not change."""
        change = np.abs(self.output_change)
        return np.abs(self.delta) / np.where(change > 0, change, np.inf)


def output_resolution(at_state, at_baseline) -> np.ndarray:
    """The smallest completeness gap float32 outputs F(x), F(x') can show (shape of theirs): 1e-5 of
    their size, the rounding that builds up through a network, plus 1e-7."""
    return 1e-5 * (np.abs(at_state) + np.abs(at_baseline)) + 1e-7


def integrated_gradients(
    model: keras.Model,
    states,
    baseline=None,
    target=None,
    steps: int = 64,
    method: str = "gausslegendre",
    batch_size: int | None = None,
    *,
    refine: bool = True,
    rtol: float = 0.01,
    max_steps: int = 1024,
    jit_compile: bool | None = None,
    groups: FeatureGroups | None = None,
    attributions: bool = True,
) -> IGResult:
    """Integrated Gradients of ``model`` at every state, in as few compiled calls as memory allows.

    Args:
        model: keras.Model mapping float32 (batch, *obs_shape) to (batch, n_outputs).
        states: array-like (N, *obs_shape), in the units the model takes.
        baseline: None (zeros), (*obs_shape,) shared by all states, or (N, *obs_shape).
        target: None (argmax of model(states) per state), an int, an int array (N,), or "all".
        steps: path points per state, 1 to MAX_STEPS.
        method: "gausslegendre" (default), "riemann_left", "riemann_right",
            "riemann_middle" or "riemann_trapezoid".
        batch_size: most interpolated rows per compiled call; None picks it from a memory budget.
            Any value gives the same result up to float32 rounding.
        refine: on by default: where |delta| exceeds ``rtol * |F(x)[t] - F(x')[t]|`` (plus
            float32's resolution of the outputs), split the path where its gap is (``_bisect``),
            ``steps`` points a piece, until the gap is within that or a path has ``max_steps``
            points; ``result.steps`` says what each state used. Most states meet 1% at 64
            Gauss-Legendre points and cost nothing more; a policy whose probability jumps within a
            sliver of the path (a sharp decision boundary) gets its points there. False computes
            exactly ``steps`` points.
        jit_compile: XLA on or off; None chooses per device and model (see ``backend``).
        groups: FeatureGroups partitioning the features (shared, or one partition per state): the
            result also holds each group's sum.
        attributions: False (with ``groups``) adds the attributions up per group on the device and
            brings back only the sums: ``result.attributions`` is None.

    Returns:
        IGResult. Raises ValueError, naming the received value, on bad input.
    """
    states = _as_float_array(states, "states")
    obs_shape = _check_states(model, states)
    baselines = _check_baseline(baseline, states)
    method = check_method(method)
    steps = check_steps(steps, method)
    batch_size = _check_batch_size(batch_size)
    if refine:
        max_steps = check_steps(max_steps, method)
        if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
            raise ValueError(f"rtol must be a number between 0 and 1; received {rtol!r}.")
    n_outputs = backend.output_size(model, obs_shape)
    per_path = _check_target(target, len(states), n_outputs)  # (N, K); -1 = the argmax, found in the call
    labels = _check_groups(groups, attributions, len(states), obs_shape)  # (1 or N, *obs) or None
    sums_only = not attributions
    if jit_compile is None:
        jit_compile = backend.default_jit_compile(model)
    if sums_only:
        run = backend.compiled(model, obs_shape, explain_group_sums, jit_compile, len(groups.names))
    else:
        run = backend.compiled(model, obs_shape, explain_paths, jit_compile)
    rows_per_call = batch_size or backend.cached(
        model, ("rows_per_call", obs_shape), lambda: _rows_per_call(model, obs_shape)
    )
    n, k = per_path.shape

    alphas, weights = quadrature_rule(method, steps)
    x = states if k == 1 else np.repeat(states, k, axis=0)
    x0 = baselines if len(baselines) == 1 else np.repeat(baselines, k, axis=0)
    path_labels = () if not sums_only else (labels if len(labels) == 1 else np.repeat(labels, k, axis=0),)
    found, targets, outputs, baseline_outputs = (
        array.reshape(n, k, *array.shape[1:])
        for array in _integrate(run, x, x0, per_path.reshape(-1), alphas, weights, rows_per_call, *path_labels))
    found = np.require(found, requirements="W")  # JAX hands back read-only arrays
    outputs, baseline_outputs = outputs[:, 0], baseline_outputs[:, 0]
    steps_used = np.full(n, steps)
    at_state, at_baseline = _selected(outputs, targets), _selected(baseline_outputs, targets)
    change = at_state - at_baseline
    delta = _sums(found) - change
    if refine:
        tolerance = rtol * np.abs(change) + output_resolution(at_state, at_baseline)

        def pieces(paths: np.ndarray, low: np.ndarray, high: np.ndarray):
            """IG of ``paths`` (M,) along alpha in [low, high] (M,): each piece's attributions (M, *obs), or
            its group sums (M, G), and its own completeness gap (M,), float64."""
            found_parts, gap_parts = [], []
            for first in range(0, len(paths), PIECES_PER_CALL):  # pieces' ends are arrays the size of states
                chunk = slice(first, first + PIECES_PER_CALL)
                begin = x0 if len(x0) == 1 else x0[paths[chunk]]
                span = x[paths[chunk]] - begin
                at = (-1,) + (1,) * (x.ndim - 1)
                start = (begin + low[chunk].reshape(at) * span).astype(np.float32)
                stop = (begin + high[chunk].reshape(at) * span).astype(np.float32)
                extra = tuple(array if len(array) == 1 else array[paths[chunk]] for array in path_labels)
                piece, chosen, at_stop, at_start = _integrate(run, stop, start, targets.reshape(-1)[paths[chunk]],
                                                              alphas, weights, rows_per_call, *extra)
                rows = np.arange(len(piece))
                found_parts.append(piece)
                gap_parts.append(piece.reshape(len(piece), -1).sum(axis=1, dtype=np.float64)
                                 - (at_stop[rows, chosen].astype(np.float64) - at_start[rows, chosen]))
            return np.concatenate(found_parts), np.concatenate(gap_parts)

        flat_found, flat_delta = found.reshape(n * k, *found.shape[2:]), delta.reshape(-1)
        missing = np.flatnonzero(np.abs(flat_delta) > tolerance.reshape(-1))  # paths, state-major
        if missing.size:
            refined, points = _bisect(pieces, missing, flat_found[missing], flat_delta[missing],
                                      tolerance.reshape(-1)[missing], steps, max_steps)
            flat_found[missing] = refined
            found = flat_found.reshape(found.shape)
            delta = _sums(found) - change
            np.maximum.at(steps_used, missing // k, points)

    maps, group_sums = (None, found) if sums_only else (found, None)
    if groups is not None and not sums_only:  # the maps are here anyway: add them up in float64
        shared = labels if len(labels) == 1 else np.repeat(labels, k, axis=0)
        flat_maps = maps.reshape(n * k, *obs_shape)
        group_sums = FeatureGroups(groups.names, shared[0] if len(shared) == 1 else shared).sums(flat_maps)
        group_sums = group_sums.reshape(n, k, -1)
    if not (isinstance(target, str) and target == "all"):
        delta, targets = delta[:, 0], targets[:, 0]
        maps = None if maps is None else maps[:, 0]
        group_sums = None if group_sums is None else group_sums[:, 0]
    return IGResult(maps, delta, targets, outputs, baseline_outputs, steps_used, method, group_sums,
                    None if groups is None else groups.names)


def explain_paths(split, vjp, x, x0, targets, alphas, weights):
    """The compiled core, in keras.ops: one forward and one backward pass over every path point.

    The path is built after the model's affine head (``split.py``; the identity for most models):
    z = (1 - alpha) head(x') + alpha head(x), which is head at the input path's point. Each path also
    carries its two ends (alpha = 0 and 1, weight 0), so the same pass gives F(x') and F(x) for the
    completeness check.

    Args:
        x, x0: float32 (P, *obs), the two ends of P paths; x0 may be (1, *obs), shared by all.
        targets: int32 (P,), the output explained on each path; -1 means F(x)'s argmax.
        alphas, weights: float32 (S,), the quadrature rule.
    Returns:
        attributions (P, *obs) = (x - x0) * sum_s weights[s] * dF_t/dx at x0 + alphas[s] (x - x0),
        targets (P,), F(x) (P, n_outputs), F(x0) (P, n_outputs).
    """
    z, head_pullback = vjp(split.head, x)  # head is affine: its pullback is the same at every point
    z0 = split.head(x0)
    hidden_shape = tuple(z.shape[1:])
    alphas = ops.concatenate([alphas, ops.array([0.0, 1.0], "float32")])
    weights = ops.concatenate([weights, ops.zeros((2,), "float32")])
    n_points = ops.shape(alphas)[0]
    alpha = ops.reshape(alphas, (1, -1) + (1,) * len(hidden_shape))
    rows = (1.0 - alpha) * ops.expand_dims(z0, 1) + alpha * ops.expand_dims(z, 1)  # (P, S + 2, *hidden)
    outputs, pullback = vjp(split.tail, ops.reshape(rows, (-1, *hidden_shape)))
    n_outputs = outputs.shape[-1]
    outputs = ops.reshape(outputs, (-1, n_points, n_outputs))
    x_outputs, baseline_outputs = outputs[:, -1], outputs[:, -2]
    targets = ops.where(targets < 0, ops.cast(ops.argmax(x_outputs, axis=1), "int32"), targets)

    # The quadrature weight rides on the cotangent, so the backward pass returns weighted
    # gradients and the integral is a plain sum over each path's points, pulled back through
    # the head once per path.
    cotangents = ops.expand_dims(ops.one_hot(targets, n_outputs), 1) * ops.reshape(weights, (1, -1, 1))
    grads = pullback(ops.reshape(cotangents, (-1, n_outputs)))
    integral = head_pullback(ops.sum(ops.reshape(grads, (-1, n_points, *hidden_shape)), axis=1))
    return integral * (x - x0), targets, x_outputs, baseline_outputs


def explain_group_sums(split, vjp, x, x0, targets, alphas, weights, labels, n_groups):
    """``explain_paths`` with each path's attributions added up per group before they leave the device.

    labels: int32 (1 or P, *obs), each feature's group in [0, n_groups).
    Returns group sums (P, n_groups) in place of the attributions, then what ``explain_paths`` returns.
    """
    attributions, targets, x_outputs, baseline_outputs = explain_paths(split, vjp, x, x0, targets, alphas, weights)
    n_features = math.prod(x.shape[1:])
    members = ops.one_hot(ops.reshape(labels, (-1, n_features)), n_groups)  # (1 or P, F, G)
    sums = ops.sum(ops.expand_dims(ops.reshape(attributions, (-1, n_features)), -1) * members, axis=1)
    return sums, targets, x_outputs, baseline_outputs


def _integrate(run, x, x0, targets, alphas, weights, rows_per_call, *labels):
    """Chunk the (paths * points) rows under ``rows_per_call``: by paths, and by path points
    when one path alone is too long (the rule is a weighted sum, so point chunks add up).
    ``labels``: the group labels (1 or P, *obs) when ``run`` adds attributions up per group.
    Returns what ``explain_paths`` (or ``explain_group_sums``) returns, for all paths, as numpy arrays."""
    n_points = len(alphas)
    paths_per_call = max(1, rows_per_call // (n_points + 2))  # + each path's two ends
    paths_per_call = 1 << (paths_per_call.bit_length() - 1)  # a power of two is a bucket: JAX pads no full chunk
    points_per_call = min(n_points, max(1, rows_per_call - 2))
    alphas, weights, targets = alphas.astype(np.float32), weights.astype(np.float32), targets.astype(np.int32)
    chunks = []
    try:
        for p in range(0, len(x), paths_per_call):
            paths = slice(p, p + paths_per_call)
            ends = x[paths], x0 if len(x0) == 1 else x0[paths]
            groups = tuple(array if len(array) == 1 else array[paths] for array in labels)
            parts = [run(*ends, targets[paths], alphas[s:s + points_per_call], weights[s:s + points_per_call],
                         *groups)
                     for s in range(0, n_points, points_per_call)]
            chunks.append((parts[0][0] if len(parts) == 1 else sum(part[0] for part in parts), *parts[0][1:]))
    except Exception as error:  # keep the framework's message, behind one that says what was tried
        raise ValueError(f"the model failed on float32 inputs of shape (N, {', '.join(map(str, x.shape[1:]))}): "
                         f"{type(error).__name__}: {error}") from error
    return chunks[0] if len(chunks) == 1 else tuple(np.concatenate(arrays) for arrays in zip(*chunks, strict=True))


def _bisect(pieces, paths: np.ndarray, found: np.ndarray, gaps: np.ndarray, tolerance: np.ndarray, steps: int,
            max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive composite quadrature for the ``paths`` (M,) whose completeness gap misses ``tolerance``.

    A piece of a path is alpha in [low, high] with its own gap (its attributions' sum minus F's change
    along it); the pieces' gaps add up to the path's. Each path starts as one piece, [0, 1] (``found``
    (M, ...) and ``gaps`` (M,) from the first pass). Round by round, each path still missing halves its
    worst pieces (at least half the largest |gap|, and above their share, ``tolerance * width``), both
    halves integrated with ``steps`` points by ``pieces(paths, low, high)``, until its gaps add up to
    within ``tolerance`` or it holds ``max_steps`` points. Where the output jumps within a sliver of the
    path, a few rounds put the points there, which doubling them everywhere would need far more for.
    Returns each path's attributions (the sum of its pieces') and the points it used (M,)."""
    held = [[(0.0, 1.0, found[m], gaps[m])] for m in range(len(paths))]  # per path: (low, high, found, gap)
    while True:
        halved = []  # (path's position, piece's position)
        for m, parts in enumerate(held):
            if abs(sum(gap for *_, gap in parts)) <= tolerance[m]:
                continue
            worst = max(abs(gap) for *_, gap in parts)
            over = [j for j, (low, high, _, gap) in enumerate(parts)
                    if abs(gap) >= worst / 2 and abs(gap) > tolerance[m] * (high - low)]
            room = max(0, (max_steps - steps * len(parts)) // steps)  # halvings that still fit
            halved += [(m, j) for j in sorted(over, key=lambda j: -abs(parts[j][3]))[:room]]
        if not halved:
            break
        ends = np.array([held[m][j][:2] for m, j in halved])  # (H, 2): each halved piece's low and high
        middle = ends.mean(axis=1)
        low = np.stack([ends[:, 0], middle], axis=1).reshape(-1)  # (2H,): the halves, each piece's in order
        high = np.stack([middle, ends[:, 1]], axis=1).reshape(-1)
        piece, piece_gaps = pieces(paths[[m for m, _ in halved for _ in (0, 1)]], low, high)
        halves = {(m, j): [(low[2 * i + h], high[2 * i + h], piece[2 * i + h], piece_gaps[2 * i + h]) for h in (0, 1)]
                  for i, (m, j) in enumerate(halved)}
        held = [[half for j, part in enumerate(parts) for half in halves.get((m, j), [part])]
                for m, parts in enumerate(held)]
    totals = np.stack([np.sum([f for _, _, f, _ in parts], axis=0, dtype=np.float64) for parts in held])
    return totals.astype(found.dtype), np.array([steps * len(parts) for parts in held])


def _rows_per_call(model, obs_shape) -> int:
    """Rows per compiled call from the memory budget (MEMORY_BUDGET_BYTES, or a quarter of an
    accelerator's memory): each row holds its input, every layer's activation and their gradients (float32)."""
    floats = math.prod(obs_shape)
    try:  # nested models (the explain wrappers) count once per layer inside them; dict outputs count every head
        floats += sum(math.prod(d or 1 for d in tensor.shape[1:])
                      for layer in backend.all_layers(model) for tensor in keras.tree.flatten(layer.output))
    except (AttributeError, ValueError):  # a subclassed model has no symbolic outputs: assume wide layers
        floats *= 16
    budget = backend.accelerator_memory_bytes() // 4 or MEMORY_BUDGET_BYTES
    return max(1, budget // (3 * 4 * floats))


def _sums(attributions: np.ndarray) -> np.ndarray:
    """(N, K, *obs) attributions or (N, K, G) group sums -> (N, K) in float64, so the completeness
    check adds no rounding of its own."""
    return attributions.reshape(*attributions.shape[:2], -1).sum(axis=-1, dtype=np.float64)


def _selected(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """outputs (N, n_outputs), targets (N,) or (N, K) -> float64 of targets' shape."""
    index = targets.reshape(len(targets), -1)
    return np.take_along_axis(outputs.astype(np.float64), index, axis=1).reshape(targets.shape)


# ---- input checks: each raises ValueError naming what was expected and what was received ----

def _as_float_array(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array of numbers; received {type(values).__name__}: {error}") from None
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite; received {int(bad.sum())} NaN or inf value(s), "
                         f"the first at index {where}: {array[where]}.")
    return array


def _model_obs_shape(model) -> tuple | None:
    try:
        return tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _check_states(model, states: np.ndarray) -> tuple:
    if not isinstance(model, keras.Layer):
        raise ValueError(f"model must be a keras.Model; received {type(model).__name__}.")
    expected = _model_obs_shape(model)
    if states.ndim == 0 or len(states) == 0:
        raise ValueError(f"states must be an array (N, *obs_shape) with N >= 1; received shape {states.shape}.")
    if expected is not None:
        compatible = states.ndim == len(expected) + 1 and all(
            e is None or e == s for e, s in zip(expected, states.shape[1:], strict=True)
        )
        if not compatible:
            hint = " (one state? pass states[None])" if states.shape == tuple(expected) else ""
            raise ValueError(f"states must have shape (N, {', '.join(map(str, expected))}) to fit the model; "
                             f"received shape {states.shape}{hint}.")
    return tuple(states.shape[1:])


def _check_baseline(baseline, states: np.ndarray) -> np.ndarray:
    """-> (1, *obs) when all states share it (sent to the device once), else (N, *obs)."""
    if baseline is None:
        return np.zeros((1, *states.shape[1:]), np.float32)
    baseline = _as_float_array(baseline, "baseline")
    if baseline.shape == states.shape[1:]:
        return baseline[None]
    if baseline.shape == states.shape:
        return baseline
    raise ValueError(f"baseline must have shape {states.shape[1:]} (one for all states) or {states.shape} "
                     f"(one per state); received shape {baseline.shape}.")


def _check_target(target, n: int, n_outputs: int) -> np.ndarray:
    """-> int64 (N, K): K = 1, or n_outputs for "all"; -1 stands for the argmax of F(x)."""
    if target is None:
        return np.full((n, 1), -1)
    if isinstance(target, str):
        if target != "all":
            raise ValueError(f'target must be None, an int, an int array (N,) or "all"; received {target!r}.')
        return np.broadcast_to(np.arange(n_outputs), (n, n_outputs)).copy()
    array = np.asarray(target)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"target must be an integer output index in [0, {n_outputs}); received {target!r}.")
    if array.ndim == 0:
        array = np.full(n, int(array))
    if array.shape != (n,):
        raise ValueError(f"target must be one int or an int array of shape ({n},); received shape {array.shape}.")
    out_of_range = (array < 0) | (array >= n_outputs)
    if out_of_range.any():
        raise ValueError(f"target must lie in [0, {n_outputs}) for a model with {n_outputs} outputs; "
                         f"received {array[out_of_range][0]}.")
    return array.astype(np.int64)[:, None]


def _check_groups(groups, attributions: bool, n: int, obs_shape: tuple) -> np.ndarray | None:
    """-> the group labels int32 (1 or N, *obs), or None without groups."""
    if not isinstance(attributions, bool):
        raise ValueError(f"attributions must be True or False; received {attributions!r}.")
    if groups is None:
        if not attributions:
            raise ValueError("attributions=False keeps only group sums, so it needs groups; received groups=None.")
        return None
    if not isinstance(groups, FeatureGroups):
        raise ValueError(f"groups must be a FeatureGroups; received {type(groups).__name__}.")
    return groups.for_states(n, obs_shape)


def _check_batch_size(batch_size) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be None or a positive integer; received {batch_size!r}.")
    return int(batch_size)


__all__ = ["IGResult", "integrated_gradients", "MAX_STEPS", "MEMORY_BUDGET_BYTES"]
