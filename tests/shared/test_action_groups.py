import math

import numpy as np
import pytest

from openpi.policies import b1k_policy
from openpi.shared import action_groups as ag
from openpi.shared import loss_weighting as lw

R1PRO = b1k_policy.R1PRO_ACTION_GROUPS
R1PRO_WEIGHTS = {
    "base": 1.0,
    "trunk": 2.0,
    "left_arm": 3.0,
    "left_gripper": 2.5,
    "right_arm": 3.0,
    "right_gripper": 2.5,
    "padding": 0.0,
}


def test_r1pro_layout_expands_to_true_dims():
    groups = ag.ActionGroups.create(R1PRO, 32)
    expected = np.array([0] * 3 + [1] * 4 + [2] * 7 + [3] + [4] * 7 + [5] + [6] * 9)
    np.testing.assert_array_equal(groups.dim_to_group, expected)
    assert groups.membership.sum(axis=1).tolist() == [1.0] * 32
    weights = groups.dimension_weight_vector(R1PRO_WEIGHTS)
    assert weights[14] == 2.5 and weights[22] == 2.5 and weights[21] == 3.0 and weights[6] == 2.0
    assert weights[23:].tolist() == [0.0] * 9


def test_group_forms_are_equivalent():
    forms = [
        {"a": (0, 2), "b": [2, 3]},
        {"a": range(0, 2), "b": "2,3"},
        {"a": "0:2", "b": (2, 4)},
    ]
    dims = {ag.ActionGroups.create(f, 4).dims for f in forms}
    assert dims == {((0, 1), (2, 3))}


INVALID = [
    # (groups, weights, action_dim, words the message must contain)
    ({"base": (0, 3), "arm": (3, 40)}, None, 32, ["arm", "outside", "32"]),
    ({"base": (0, 3), "neg": [-1, 3]}, None, 32, ["neg", "-1"]),
    ({"base": (0, 10), "arm": (8, 32)}, None, 32, ["base", "arm", "overlap", "[8, 9]"]),
    ({"base": (0, 3), "arm": (7, 32)}, None, 32, ["3:7", "no group"]),
    ({"base": (0, 3), "arm": (3, 32)}, {"base": 1.0, "arm": 1.0, "legs": 2.0}, 32, ["legs", "unknown"]),
    ({"base": (0, 3), "arm": (3, 32)}, {"base": 1.0}, 32, ["arm", "3:32", "no weight"]),
    ({"base": (0, 3), "arm": (3, 32)}, {"base": 1.0, "arm": -0.5}, 32, ["arm", "negative"]),
    ({"base": (0, 3), "arm": (3, 32)}, {"base": 1.0, "arm": math.nan}, 32, ["arm", "nan"]),
    ({"base": (0, 3), "arm": (3, 32)}, {"base": math.inf, "arm": 1.0}, 32, ["base", "inf"]),
    ({"base": (0, 3), "arm": (3, 32)}, {"base": 0.0, "arm": 0.0}, 32, ["all", "zero"]),
    ({"base": (3, 0), "arm": (3, 32)}, None, 32, ["base", "(3, 0)"]),
    ({"base": (0, 1, 2), "arm": (3, 32)}, None, 32, ["base", "tuple"]),
    ({"base": "0-3", "arm": (3, 32)}, None, 32, ["base", "0-3"]),
    ({"base": [0, 1, 1, 2], "arm": (3, 32)}, None, 32, ["base", "[1]", "more than once"]),
]


@pytest.mark.parametrize(("groups", "weights", "action_dim", "words"), INVALID)
def test_invalid_configs_are_rejected_with_a_precise_message(groups, weights, action_dim, words):
    with pytest.raises(ValueError) as info:
        spec = ag.ActionGroups.create(groups, action_dim)
        spec.group_weight_vector(weights)
    message = str(info.value).lower()
    for word in words:
        assert word.lower() in message, (word, message)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(strategy="per_group"), ["per_group", "group_weights"]),
        (dict(strategy="weighted"), ["Unknown", "weighted"]),
        (dict(strategy="per_dimension", dimension_weights=[1.0] * 31), ["31", "32"]),
        (dict(strategy="per_dimension", dimension_weights=[1.0] * 31 + [-1.0]), ["dim 31", "negative"]),
        (dict(strategy="uniform", dimension_weights=[1.0] * 32), ["per_dimension"]),
        (dict(strategy="per_group", group_weights={"base": 1.0}), ["without action_groups"]),
    ],
)
def test_invalid_strategy_inputs(kwargs, words):
    kwargs = dict(kwargs)
    strategy = kwargs.pop("strategy")
    with pytest.raises(ValueError) as info:
        lw.LossWeighting.create(strategy, 32, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_widely_quoted_wrong_layout_warns_naming_real_groups():
    wrong = {
        "base": (0, 3),
        "trunk": (3, 7),
        "left_arm": (7, 14),
        "right_arm": (14, 21),
        "grippers": (21, 23),
        "padding": (23, 32),
    }
    with pytest.warns(UserWarning) as record:
        problems = b1k_policy.check_r1pro_layout(wrong)
    text = " ".join(str(r.message) for r in record)
    assert len(problems) == 2
    assert "'right_arm'" in text and "left_gripper [14]" in text
    assert "'grippers'" in text and "right_arm [21]" in text and "right_gripper [22]" in text


@pytest.mark.parametrize("layout", [R1PRO, b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS])
def test_true_layouts_do_not_warn(layout, recwarn):
    assert b1k_policy.check_r1pro_layout(layout) == []
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
