"""The report's statistics on fixed per-seed numbers with known answers (scipy and textbook values)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from litlab.sweeps.collect import Job, group_jobs
from litlab.sweeps.stats import compare, holm, power, seeds_needed, t_interval
from litlab.sweeps.summary import parse_baseline, summarise

BASE = [0.70, 0.75, 0.80, 0.85, 0.90]  # seeds differ a lot (split, label subset) ...
GAIN = [0.010, 0.012, 0.009, 0.011, 0.010]  # ... but the arm beats the baseline on every one of them


def by_seed(values: list[float], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{i}": v for i, v in enumerate(values)}


def test_t_interval_is_the_textbook_one():
    low, high = t_interval([1.0, 2.0, 3.0, 4.0])
    half = stats.t.ppf(0.975, 3) * stats.sem([1.0, 2.0, 3.0, 4.0])
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half)) and low == pytest.approx(0.44574, abs=1e-5)
    assert all(math.isnan(x) for x in t_interval([0.5]))


def test_paired_design_finds_a_difference_welch_misses():
    arm = [b + g for b, g in zip(BASE, GAIN, strict=True)]
    paired = compare(by_seed(arm), by_seed(BASE))
    assert paired.test == "paired" and paired.n == 5
    assert paired.delta == pytest.approx(0.0104)
    assert paired.p == pytest.approx(stats.ttest_rel(arm, BASE).pvalue) and paired.p < 1e-4
    half = stats.t.ppf(0.975, 4) * stats.sem(GAIN)
    assert (paired.low, paired.high) == pytest.approx((0.0104 - half, 0.0104 + half))
    assert paired.low > 0  # the CI of the gain excludes 0

    # the same numbers on different seeds: nothing is paired, Welch sees only the seed-to-seed spread
    welch = compare(by_seed(arm, "other"), by_seed(BASE))
    assert welch.test == "welch" and welch.p == pytest.approx(
        stats.ttest_ind(arm, BASE, equal_var=False).pvalue
    )
    assert welch.p > 0.5 and welch.low < 0 < welch.high


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, 0.01]) == pytest.approx([0.2, 0.02])
    adjusted = holm([0.3, math.nan, 0.9])  # an untested arm does not count towards m
    assert adjusted[0] == pytest.approx(0.6) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.9)


def test_seeds_needed_matches_the_standard_power_tables():
    # paired t-test, two-sided α = 0.05, 80 % power: d = 1 needs 10, d = 0.5 needs 34 (G*Power, Cohen)
    assert seeds_needed(1.0, 1.0) == 10 and seeds_needed(0.5, 1.0) == 34
    # two independent samples: d = 1 needs 17 per group, d = 0.5 needs 64
    assert seeds_needed(1.0, 1.0, paired=False) == 17 and seeds_needed(0.5, 1.0, paired=False) == 64
    assert power(10, 1.0, 1.0) >= 0.8 > power(9, 1.0, 1.0)
    assert seeds_needed(1.0, 0.0) is None


def study(arms: dict[str, list[float]]) -> list[Job]:
    return [
        Job((f"regulariser={name}", f"seed={seed}"), "completed", metrics={"test/acc": value})
        for name, values in arms.items()
        for seed, value in enumerate(values)
    ]


def test_summary_marks_best_arm_baseline_and_indistinguishable_arms():
    arms = {
        "none": BASE,
        "better": [b + g for b, g in zip(BASE, GAIN, strict=True)],
        "noise": [b + g for b, g in zip(BASE, [0.01, -0.012, 0.004, -0.006, 0.002], strict=True)],
    }
    groups = group_jobs(study(arms), ["regulariser"])
    summary = summarise(groups, "test/acc", parse_baseline("regulariser=none"))
    none, better, noise = summary.arms
    assert none.is_baseline and none.comparison is None and none.n == 5
    assert better.best and not noise.best and not none.best
    assert better.comparison.distinguishable and not noise.comparison.distinguishable
    raw = [better.comparison.p, noise.comparison.p]
    assert [better.comparison.p_holm, noise.comparison.p_holm] == pytest.approx(holm(raw))
    assert "seeds per arm detect Δ = 0.5 points at 80 % power (paired" in summary.power_hint
    assert "this study has 5" in summary.power_hint


def test_baseline_may_fix_some_keys_only():
    jobs = [
        Job((f"act={a}", f"depth={d}", f"seed={s}"), "completed", metrics={"test/acc": 0.5 + s / 100})
        for a in ("relu", "tanh")
        for d in ("2", "10")
        for s in range(3)
    ]
    summary = summarise(group_jobs(jobs, ["act", "depth"]), "test/acc", parse_baseline({"act": "relu"}))
    assert [a.is_baseline for a in summary.arms] == [True, True, False, False]
    assert all(a.comparison.delta == pytest.approx(0.0) for a in summary.arms[2:])
    with pytest.raises(ValueError, match="key=value"):
        parse_baseline("relu")


def test_reports_show_no_machine_paths(tmp_path):
    from litlab.sweeps.collect import public
    from litlab.sweeps.report import markdown, write_csv

    assert public("paths.data_dir", "/work/shared/data") == "paths.data_dir=<data>"
    assert public("ckpt_path", "~/runs/last.ckpt") == "ckpt_path=<path>"
    assert public("ckpt_path", "C:/runs/last.ckpt") == "ckpt_path=<path>"
    assert public("model", "cnn") == "model=cnn"
    jobs = [
        Job(
            (f"regulariser={r}", f"seed={s}", "paths.data_dir=/home/me/data"),
            "completed",
            tmp_path / f"{r}{s}",
        )
        for r in ("none", "l2")
        for s in range(2)
    ]
    for i, job in enumerate(jobs):
        job.metrics = {"test/acc": 0.5 + i / 100}
    groups = group_jobs(jobs, ["regulariser"])
    summary = summarise(groups, "test/acc", {})
    text = markdown(tmp_path, jobs, groups, ["regulariser"], ["test/acc"], [], summary)
    write_csv(tmp_path / "results.csv", jobs, ["regulariser"])
    assert "`paths.data_dir=<data>`" in text and "/home/me" not in text
    assert "/home/me" not in (tmp_path / "results.csv").read_text()
    assert "paths.data_dir=<data>" in (tmp_path / "results.csv").read_text()
