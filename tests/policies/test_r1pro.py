"""R1Pro's layout constants: the action groups partition the 23 dims, the proprio slices are disjoint and inside
256 dims, and the module stays free of imports so the dataset writer can use it without a model framework."""

import ast
import pathlib

from openpi.policies import r1pro


def test_action_groups_partition_the_action_vector():
    ranges = [r1pro.BASE, r1pro.TRUNK, r1pro.LEFT_ARM, r1pro.RIGHT_ARM]
    dims = [d for start, end in ranges for d in range(start, end)] + r1pro.LEFT_GRIPPER + r1pro.RIGHT_GRIPPER
    assert sorted(dims) == list(range(r1pro.R1PRO_ACTION_DIM))
    assert r1pro.PADDING == (r1pro.R1PRO_ACTION_DIM, r1pro.PADDED_ACTION_DIM)


def test_proprio_slices_are_disjoint_and_inside_the_vector():
    slices = [v for k, v in vars(r1pro).items() if k.startswith("PROPRIO_") and isinstance(v, slice)]
    assert len(slices) >= 10
    covered = [d for s in slices for d in range(*s.indices(r1pro.PROPRIO_DIM))]
    assert len(covered) == len(set(covered))
    assert all(s.stop <= r1pro.PROPRIO_DIM for s in slices)
    # Sizes from B1K.md: 7 arm joints, 2 fingers, 4 trunk joints, 3 base velocities, pos + quat end effectors.
    sizes = {
        "ARM_LEFT_QPOS": 7, "ARM_RIGHT_QPOS": 7, "GRIPPER_LEFT_QPOS": 2, "GRIPPER_RIGHT_QPOS": 2,
        "TRUNK_QPOS": 4, "BASE_QVEL": 3, "EEF_LEFT": 7, "EEF_RIGHT": 7, "JOINT_QPOS": 28,
    }
    for name, size in sizes.items():
        part = getattr(r1pro, f"PROPRIO_{name}")
        assert part.stop - part.start == size, name


def test_module_imports_nothing():
    tree = ast.parse(pathlib.Path(r1pro.__file__).read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
