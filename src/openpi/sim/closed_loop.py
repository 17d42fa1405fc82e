"""Closed-loop evaluation in the simulator: success rate per task with a 95% Wilson interval, steps to
success, a filmstrip of a success and a failure, JSON + markdown.

Layouts are ``EVAL_SEED_START + k`` (k = 0 .. episodes − 1, the same for every policy), disjoint from every
training layout (see ``openpi.sim.dataset``). ``batch_size`` environments run together (``rollout.run_episodes``:
one batched model call per step for the policies that replan); the per-episode outcomes are those of one
environment at a time, up to the float rounding of batched model calls (the scripted experts' are equal).

The mobile tasks (``evaluate_mobile``) score each episode three ways -- navigation (the base reached its
pre-grasp region), manipulation (the task's own check) and overall (both) -- and report the arm activity
ratio: the executed arm motion over the scripted expert's on the same layouts, motion = Σ_t Σ_arm dims
|a[t] − a[t−1]| (the offline evaluator's definition, openpi.analysis.evaluation), in total and per executed
step (a failing policy runs to the step limit while the expert stops at success). A policy whose arm stays
put scores near 0; the expert scores 1.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import json
import math
import pathlib
from typing import Any

import numpy as np
from PIL import Image
import tqdm

from openpi.sim import dataset as _dataset
from openpi.sim import metaworld_env
from openpi.sim import rollout

WILSON_Z = 1.959964  # two-sided 95%
# Environments stepped together by the scripts and comparisons. Measured (benchmarks/comparison_speed.py, 2 CPU
# cores): the tiny simulator model answers in ~5 ms a call, one call per 5 steps, while each extra Meta-World
# environment costs ~1.2 s to build (model and renderer) and batches of new sizes compile anew, so one at a time
# is fastest here; batching pays for a model whose calls dominate the episode.
BATCH_SIZE = 1


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927, JASA 22:209); (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(
    make_policy: Callable[[str], rollout.StepPolicy],
    tasks: Sequence[str],
    episodes: int,
    *,
    image_size: int = 64,
    max_steps: int = 150,
    output_dir: pathlib.Path | None = None,
    progress: bool = True,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Runs ``make_policy(task)`` (called once per environment) for ``episodes`` held-out layouts of every task,
    ``batch_size`` environments at a time; writes eval.json, eval.md and filmstrips to ``output_dir`` when given.
    Returns the JSON report."""
    report: dict[str, Any] = {"tasks": {}, "episodes": episodes, "max_steps": max_steps,
                              "layout_seeds": [_dataset.EVAL_SEED_START + k for k in range(episodes)]}
    bar = tqdm.tqdm(total=len(tasks) * episodes, desc="Closed-loop episodes", disable=not progress)
    for task_name in tasks:
        envs = [metaworld_env.MetaWorldEnv(task_name, image_size=image_size, max_steps=max_steps)
                for _ in range(_environments(batch_size, episodes))]
        try:
            runs, filmstrips = _run_task(envs, [make_policy(task_name) for _ in envs], task_name,
                                         report["layout_seeds"], output_dir, bar)
        finally:
            for env in envs:
                env.close()
        results = [{"seed": e.seed, "success": e.success, "steps": e.steps} for e in runs]
        report["tasks"][task_name] = {**_rate(results, "success"), "mean_steps_to_success": _mean_steps(results),
                                      "episodes": results, **filmstrips}
    bar.close()
    _write(report, output_dir, markdown)
    return report


def evaluate_mobile(
    make_policy: Callable[[Any], rollout.StepPolicy],
    tasks: Sequence[str],
    episodes: int,
    *,
    image_size: int = 64,
    max_steps: int = 200,
    output_dir: pathlib.Path | None = None,
    progress: bool = True,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Runs ``make_policy(env)`` (a ``MobileEnv``; the scripted expert reads it) for ``episodes`` held-out
    layouts of every mobile task, ``batch_size`` environments at a time; scores navigation, manipulation and
    overall success with Wilson intervals and the arm activity ratio against the expert on the same layouts. Writes eval.json, eval.md and filmstrips to
    ``output_dir`` when given. Returns the JSON report."""
    from openpi.sim import mobile_env
    from openpi.sim import mobile_expert

    report: dict[str, Any] = {"suite": "mobile", "tasks": {}, "episodes": episodes, "max_steps": max_steps,
                              "layout_seeds": [_dataset.EVAL_SEED_START + k for k in range(episodes)]}
    bar = tqdm.tqdm(total=2 * len(tasks) * episodes, desc="Closed-loop episodes", disable=not progress)
    for task_name in tasks:
        envs = [mobile_env.MobileEnv(task_name, image_size=image_size, max_steps=max_steps)
                for _ in range(_environments(batch_size, episodes))]
        try:
            runs, filmstrips = _run_task(envs, [make_policy(env) for env in envs], task_name, report["layout_seeds"],
                                         output_dir, bar)
            # The reference: the expert on the same layouts (it reads the state: no cameras).
            for env in envs:
                env.cameras = False
            reference = rollout.run_episodes(envs, [mobile_expert.Expert(env) for env in envs],
                                             report["layout_seeds"], on_episode=lambda _episode: bar.update())
        finally:
            for env in envs:
                env.close()
        results = [
            {"seed": e.seed, "navigation": bool(e.navigated), "manipulation": e.success,
             "overall": bool(e.navigated) and e.success, "steps": e.steps,
             "arm_motion": arm_motion(e.actions), "expert_arm_motion": arm_motion(r.actions),
             "expert_steps": r.steps}
            for e, r in zip(runs, reference, strict=True)
        ]
        motion, expert_motion = (sum(r[key] for r in results) for key in ("arm_motion", "expert_arm_motion"))
        steps, expert_steps = (sum(r[key] for r in results) for key in ("steps", "expert_steps"))
        report["tasks"][task_name] = {
            **{kind: _rate(results, kind) for kind in ("navigation", "manipulation", "overall")},
            "arm_activity_ratio": motion / expert_motion if expert_motion else None,
            # The same per executed step: a failing policy runs to the step limit, the expert stops at success.
            "arm_activity_per_step_ratio": (motion / steps) / (expert_motion / expert_steps) if expert_motion else None,
            "expert_manipulation": _rate([{"ok": r.success} for r in reference], "ok"),
            "mean_steps_to_success": _mean_steps([{**r, "success": r["manipulation"]} for r in results]),
            "episodes": results,
            **filmstrips,
        }
    bar.close()
    _write(report, output_dir, mobile_markdown)
    return report


def arm_motion(actions: np.ndarray) -> float:
    """Σ_t Σ_arm dims |a[t] − a[t−1]| of a mobile episode's executed actions."""
    from openpi.sim import mobile_env

    start, stop = mobile_env.ACTION_GROUPS["arm"]
    return float(np.abs(np.diff(actions[:, start:stop], axis=0)).sum())


def _environments(batch_size: int, episodes: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size (environments stepped together) must be at least 1, got {batch_size}.")
    return min(batch_size, episodes)


def suite(name: str) -> tuple[Any, Callable[..., dict[str, Any]], Callable[[dict], str]]:
    """A simulator suite's (environment module, evaluator, report renderer): "metaworld" or "mobile"."""
    from openpi.sim import mobile_env

    if name == "mobile":
        return mobile_env, evaluate_mobile, mobile_markdown
    return metaworld_env, evaluate, markdown


def _run_task(envs, policies, task_name, seeds, output_dir, bar) -> tuple[list[rollout.Episode], dict]:
    """The episodes of the policies on ``seeds``, and the filmstrip entry of a success and a failure."""
    finished, shown, kept = [], {}, [0]  # kept[0]: episodes in progress that keep their frames

    def keep(_seed: int) -> bool:
        # Keep frames until a success and a failure were seen (for the filmstrips), then stop keeping; at most as
        # many episodes at a time as outcomes are missing (frames cost a render every step).
        wanted = output_dir is not None and len(shown) + kept[0] < 2
        kept[0] += wanted
        return wanted

    def on_episode(episode: rollout.Episode) -> None:
        kept[0] -= bool(episode.frames)
        if episode.frames and episode.success not in shown:
            shown[episode.success] = episode
        finished.append(episode)
        bar.update()
        bar.set_postfix(task=task_name, success=sum(e.success for e in finished))

    runs = rollout.run_episodes(envs, policies, seeds, keep_frames=keep, on_episode=on_episode)
    if output_dir is None:
        return runs, {}
    return runs, {"filmstrips": {
        ("success" if ok else "failure"): str(
            write_filmstrip(ep, output_dir / f"filmstrip_{task_name}_{'success' if ok else 'failure'}.png")
        )
        for ok, ep in shown.items()
    }}


def _rate(results: list[dict], key: str) -> dict[str, Any]:
    successes = sum(bool(r[key]) for r in results)
    low, high = wilson_interval(successes, len(results))
    return {"success_rate": successes / len(results), "successes": successes, "wilson95": [low, high]}


def _mean_steps(results: list[dict]) -> float | None:
    steps = [r["steps"] for r in results if r["success"]]
    return float(np.mean(steps)) if steps else None


def _write(report: dict[str, Any], output_dir: pathlib.Path | None, render: Callable[[dict], str]) -> None:
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "eval.json").write_text(json.dumps(report, indent=1))
        (output_dir / "eval.md").write_text(render(report))


def write_filmstrip(episode: rollout.Episode, path: pathlib.Path, frames: int = 8) -> pathlib.Path:
    """Evenly spaced scene and wrist frames of an episode, one column per time (PNG)."""
    picks = np.linspace(0, len(episode.frames) - 1, frames).round().astype(int)
    rows = [np.concatenate([episode.frames[i][key] for i in picks], axis=1) for key in episode.frames[0]]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Closed loop: {report['episodes']} held-out layouts per task (seeds {report['layout_seeds'][0]}..."
        f"{report['layout_seeds'][-1]}), at most {report['max_steps']} steps.",
        "",
        "| task | success | 95% Wilson interval | mean steps to success |",
        "|---|---|---|---|",
    ]
    for name, entry in report["tasks"].items():
        low, high = entry["wilson95"]
        steps = entry["mean_steps_to_success"]
        lines.append(
            f"| {name} | {entry['successes']}/{len(entry['episodes'])} ({entry['success_rate']:.0%}) | "
            f"[{low:.2f}, {high:.2f}] | {'n/a' if steps is None else f'{steps:.0f}'} |"
        )
    return "\n".join(lines) + "\n"


def mobile_markdown(report: dict[str, Any]) -> str:
    """The mobile report as a table: navigation, manipulation and overall success with intervals, arm activity."""
    lines = [
        f"Closed loop (mobile): {report['episodes']} held-out layouts per task (seeds {report['layout_seeds'][0]}..."
        f"{report['layout_seeds'][-1]}), at most {report['max_steps']} steps. Success with 95% Wilson intervals; "
        "arm activity = executed arm motion / the expert's on the same layouts.",
        "",
        "| task | navigation | manipulation | overall | arm activity ratio (per step) | expert manipulation |",
        "|---|---|---|---|---|---|",
    ]

    def cell(entry: dict) -> str:
        low, high = entry["wilson95"]
        return f"{entry['successes']}/{report['episodes']} ({entry['success_rate']:.0%}) [{low:.2f}, {high:.2f}]"

    for name, entry in report["tasks"].items():
        ratio, per_step = entry["arm_activity_ratio"], entry["arm_activity_per_step_ratio"]
        activity = "n/a" if ratio is None else f"{ratio:.2f} ({per_step:.2f})"
        lines.append(
            f"| {name} | {cell(entry['navigation'])} | {cell(entry['manipulation'])} | {cell(entry['overall'])} | "
            f"{activity} | {cell(entry['expert_manipulation'])} |"
        )
    return "\n".join(lines) + "\n"
