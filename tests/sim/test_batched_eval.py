"""Closed-loop evaluation's speed levers change no outcome: observations rendered only when a policy reads them
leave the physics as it was, and environments stepped together (one batched policy call per replanning step)
give the episodes of one environment at a time."""

import numpy as np
import pytest

pytest.importorskip("metaworld", reason="needs the sim extra: pip install -e '.[sim]'")

from openpi.serving.chunking import ChunkingConfig
from openpi.sim import closed_loop
from openpi.sim import metaworld_env
from openpi.sim import rollout

SEEDS = [11, 12, 13, 14]


def _sequential(env, policy, seed: int) -> tuple[np.ndarray, bool, int]:
    """An episode stepped by hand, rendering every step (the loop the evaluator ran before)."""
    obs, done, actions, success = env.reset(seed), False, [], False
    policy.reset()
    while not done:
        actions.append(np.array(policy.act(obs), dtype=np.float32))
        obs, success, done = env.step(actions[-1])
    return np.stack(actions), success, env.steps


def test_skipping_renders_leaves_states_and_rendered_images_unchanged():
    envs = [metaworld_env.MetaWorldEnv("push-v3", image_size=32) for _ in range(2)]
    first, second = (env.reset(5) for env in envs)
    rng = np.random.default_rng(0)
    for t in range(12):
        action = rng.uniform(-1, 1, metaworld_env.ACTION_DIM).astype(np.float32)
        first, _, _ = envs[0].step(action)
        second, _, _ = envs[1].step(action, render=t % 4 == 3)
        np.testing.assert_array_equal(first["state"], second["state"])
        if t % 4 == 3:
            for key in metaworld_env.CAMERAS.values():
                np.testing.assert_array_equal(first["images"][key], second["images"][key])
        else:
            assert second["images"] == {}
    for env in envs:
        env.close()


def test_batched_expert_episodes_equal_sequential_ones():
    envs = [metaworld_env.MetaWorldEnv("push-v3", image_size=32, max_steps=40) for _ in range(3)]
    batched = rollout.run_episodes(envs, [metaworld_env.Expert("push-v3") for _ in envs], SEEDS)
    for seed, episode in zip(SEEDS, batched, strict=True):
        actions, success, steps = _sequential(envs[0], metaworld_env.Expert("push-v3"), seed)
        assert (episode.seed, episode.success, episode.steps) == (seed, success, steps)
        np.testing.assert_array_equal(episode.actions, actions)
    for env in envs:
        env.close()
    # The evaluator's report: the same episodes one at a time and three at a time.
    reports = [closed_loop.evaluate(metaworld_env.Expert, ["reach-v3"], 3, image_size=32, max_steps=80,
                                    progress=False, batch_size=b)["tasks"]["reach-v3"] for b in (1, 3)]
    assert reports[0] == reports[1] and reports[0]["successes"] > 0


class _ReachPolicy:
    """A deterministic stand-in for ``openpi.policies.policy.Policy``: a chunk toward the goal (from the state),
    nudged by the scene image's mean so that the chunk depends on the images; counts its batched calls."""

    action_horizon = 6

    def __init__(self):
        self.calls, self.queries = 0, 0

    def infer_batch(self, observations, *, prefix=None, prefix_weights=None):
        self.calls += 1
        self.queries += len(observations)
        chunks = []
        for obs in observations:
            state, image = obs["observation.state"], obs["observation.images.scene"]  # KeyError: not rendered
            direction = np.tanh(10 * (state[36:39] - state[:3])) * (0.9 + 0.1 * image.mean() / 255)
            chunk = np.tile(np.append(direction, -1.0), (self.action_horizon, 1)).astype(np.float32)
            chunk *= np.linspace(1.0, 0.5, self.action_horizon)[:, None]
            if prefix is not None:  # the committed actions lead the chunk
                k = prefix.shape[1]
                chunk[:k] = prefix[len(chunks)]
            chunks.append(chunk)
        return {"actions": np.stack(chunks)}

    def infer(self, obs, *, prefix=None, prefix_weights=None):
        prefix = None if prefix is None else prefix[None]
        return {k: v[0] for k, v in self.infer_batch([obs], prefix=prefix, prefix_weights=prefix_weights).items()}


@pytest.mark.parametrize("mode", ["receding", "prefix"])
def test_batched_model_policy_queries_once_per_step_and_matches_sequential(mode):
    config = ChunkingConfig(mode=mode, replan_every=3, prefix_hard=1)
    envs = [metaworld_env.MetaWorldEnv("reach-v3", image_size=32, max_steps=20) for _ in range(3)]
    sequential_policy = _ReachPolicy()
    sequential = [_sequential(envs[0], rollout.model_policy(sequential_policy, config), seed) for seed in SEEDS]
    batched_policy = _ReachPolicy()
    batched = rollout.run_episodes(envs, [rollout.model_policy(batched_policy, config) for _ in envs], SEEDS)
    for (actions, success, steps), episode in zip(sequential, batched, strict=True):
        assert (episode.success, episode.steps) == (success, steps)
        np.testing.assert_array_equal(episode.actions, actions)
    # The same queries, in fewer calls: the environments that replan at a step share one.
    assert batched_policy.queries == sequential_policy.queries == sum(-(-s // 3) for _, _, s in sequential)
    assert batched_policy.calls < sequential_policy.calls
    for env in envs:
        env.close()


def test_one_policy_object_per_environment():
    env = metaworld_env.MetaWorldEnv("reach-v3", render=False)
    expert = metaworld_env.Expert("reach-v3")
    with pytest.raises(ValueError, match="policy object of its own"):
        rollout.run_episodes([env, env], [expert, expert], SEEDS)
    env.close()


def test_batched_mobile_expert_episodes_equal_sequential_ones():
    pytest.importorskip("robosuite", reason="needs the sim extra: pip install -e '.[sim]'")
    from openpi.sim import mobile_env
    from openpi.sim import mobile_expert

    envs = [mobile_env.MobileEnv("touch", image_size=32, max_steps=15) for _ in range(2)]
    experts = [mobile_expert.Expert(env) for env in envs]
    seeds = SEEDS[:3]
    batched = rollout.run_episodes(envs, experts, seeds)
    for seed, episode in zip(seeds, batched, strict=True):
        actions, success, steps = _sequential(envs[0], experts[0], seed)
        assert (episode.success, episode.steps) == (success, steps)
        np.testing.assert_array_equal(episode.actions, actions)
    # Rendering only some observations leaves the physics as it was.
    first, second = (env.reset(7)["state"] for env in envs)
    action = np.concatenate([[0.4, 0.1, 0.2], envs[0].arm_qpos, [1.0]])
    for t in range(6):
        first, _, _ = envs[0].step(action)
        second, _, _ = envs[1].step(action, render=t == 5)
        np.testing.assert_array_equal(first["state"], second["state"])
    for key in mobile_env.CAMERAS:
        np.testing.assert_array_equal(first["images"][key], second["images"][key])
    for env in envs:
        env.close()
