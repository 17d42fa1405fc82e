"""pi0.5 on a Meta-World-style single arm (Sawyer): a complete config for a robot that is not B1K's R1Pro.

The robot's LeRobot dataset has a 4-dim action (xyz end-effector delta 0:3, gripper 3), a 39-dim state of
which the model sees the hand position and gripper opening (dims 0:4), and two cameras. Use it by path
wherever a config name is accepted, e.g.

    python scripts/compute_norm_stats.py --config-name examples/configs/metaworld_sawyer.py:metaworld_sawyer_demo
    python scripts/train.py examples/configs/metaworld_sawyer.py:metaworld_sawyer_demo --exp-name first

``metaworld_sawyer`` is the full-size model from openpi's pi0.5 base checkpoint; ``metaworld_sawyer_demo`` its
tiny CPU twin. Point ``root`` (or ``repo_id``) at your dataset and ``image_keys`` at its camera keys.
"""

from openpi.training import config as _config

DATA = _config.LeRobotDataConfig(
    repo_id="local/metaworld_sawyer",
    root="~/data/metaworld_sawyer",
    # Model camera slot → the dataset's video key; the third slot (right wrist) stays black and masked.
    image_keys={"base_0_rgb": "observation.images.top", "left_wrist_0_rgb": "observation.images.wrist"},
    state_key="observation.state",
    action_key="action",
    robot="identity",  # the state is used as stored (no B1K proprio conversion) ...
    state_dims=(0, 1, 2, 3),  # ... and only hand xyz and gripper opening go to the model
    robot_action_dim=4,
)


def metaworld_sawyer() -> _config.TrainConfig:
    """pi0.5 from openpi's base checkpoint (needs it in openpi's cache, and a GPU)."""
    return _config.TrainConfig(
        name="metaworld_sawyer",
        model=_config.ModelConfig(
            pi05=True,
            action_horizon=10,
            loss_weighting_strategy="per_group",
            # Every action dim in a named group; the model's padded dims 4:32 become the `padding` group (weight 0).
            action_groups={"xyz": "0:3", "gripper": "3"},
            group_weights={"xyz": 1.0, "gripper": 2.0},
            body_roles={"xyz": "arm"},  # `gripper` is recognised by its name; `xyz` moves the arm
        ),
        data=DATA,
        weight_path=_config.BASE_CHECKPOINTS["pi05"],
    )


def metaworld_sawyer_demo() -> _config.TrainConfig:
    """The tiny model and offline tokenizer: trains on a CPU in minutes."""
    return _config.demo_twin(metaworld_sawyer())
