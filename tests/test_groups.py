"""Feature groups: their sums add up to the total, on the device and on the host, and bad groups are refused."""

import numpy as np
import pytest

from attribution import FeatureGroups, integrated_gradients

from networks import mlp, small_cnn


def test_group_sums_on_the_device_equal_the_maps_added_up_and_keep_completeness(rng):
    model, states = small_cnn(), rng.uniform(size=(5, 12, 12, 2)).astype(np.float32)
    masks = np.zeros((5, 2, 12, 12, 2), bool)  # per state: a moving square, and one channel's top rows
    for i in range(5):
        masks[i, 0, i:i + 3, i:i + 3, :] = True
        masks[i, 1, :2, :, 1] = True
        masks[i, 1, i:i + 3, i:i + 3, :] = False
    groups = FeatureGroups.from_masks(("square", "top"), masks, per_state=True)
    assert groups.names == ("square", "top", "everything else")

    full = integrated_gradients(model, states, groups=groups, target="all", refine=False)
    sums_only = integrated_gradients(model, states, groups=groups, target="all", refine=False, attributions=False)
    assert sums_only.attributions is None and sums_only.group_sums.shape == (5, 3, 3)
    by_hand = np.stack([[full.attributions[i, t][masks[i, g]].sum() for g in range(2)] for i in range(5)
                        for t in range(3)]).reshape(5, 3, 2)
    np.testing.assert_allclose(full.group_sums[..., :2], by_hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums_only.group_sums, full.group_sums, rtol=1e-4, atol=1e-6)
    # the rest is a group: the sums add up to the whole attribution, and the gap is the same
    np.testing.assert_allclose(sums_only.group_sums.sum(-1), full.attributions.reshape(5, 3, -1).sum(-1),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sums_only.delta, full.delta, atol=1e-5)


def test_refinement_works_from_group_sums_alone(rng):
    model, states = mlp(), rng.normal(size=(6, 4)) * 3
    groups = FeatureGroups(("first two", "last two"), np.array([0, 0, 1, 1]))
    full = integrated_gradients(model, states, steps=2, method="riemann_left", groups=groups)
    sums_only = integrated_gradients(model, states, steps=2, method="riemann_left", groups=groups, attributions=False)
    assert full.steps.max() > 2
    np.testing.assert_array_equal(sums_only.steps, full.steps)
    np.testing.assert_allclose(sums_only.group_sums, full.group_sums, rtol=1e-4, atol=1e-6)


def test_the_groups_of_a_vector_observation_are_its_features(rng):
    model, states = mlp(), rng.normal(size=(7, 4))
    names = ("a", "b", "c", "d")
    result = integrated_gradients(model, states, groups=FeatureGroups.identity(names), attributions=False)
    plain = integrated_gradients(model, states)
    assert result.group_names == names
    np.testing.assert_allclose(result.group_sums, plain.attributions, rtol=1e-5, atol=1e-6)


def test_identity_groups_follow_a_matrix_observation(rng):
    groups = FeatureGroups.identity([f"f{i}" for i in range(6)], (2, 3))
    maps = rng.normal(size=(4, 2, 3))
    np.testing.assert_array_equal(groups.sums(maps), maps.reshape(4, 6))


def test_bad_groups_say_what_was_expected():
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        FeatureGroups(("a", "b"), np.array([0, 2]))
    with pytest.raises(ValueError, match="must not overlap"):
        FeatureGroups.from_masks(("a", "b"), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="one mask per group name"):
        FeatureGroups.from_masks(("a", "b", "c"), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match=r"shape \(4,\).*received shape \(3,\)"):
        integrated_gradients(mlp(), np.zeros((2, 4)), groups=FeatureGroups(("a",), np.zeros(3, int)))
    with pytest.raises(ValueError, match="needs groups"):
        integrated_gradients(mlp(), np.zeros((2, 4)), attributions=False)
