"""Dry runs of single targets from an empty results/: a table builds exactly what it needs."""

import re

from tests._workflow import make_workdir, snakemake


def _jobs(output: str) -> dict[str, int]:
    """{rule: count} from the "Job stats" table of a dry run."""
    stats = output[output.index("Job stats:") :]
    return {
        m[1]: int(m[2])
        for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, flags=re.M)
        if m[1] != "total"
    }


def test_the_ablation_table_needs_its_metrics_and_nothing_else(tmp_path):
    res = snakemake(make_workdir(tmp_path), "-n", "results/tables/ablation.csv")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _jobs(res.stdout)
    assert jobs["table_ablation"] == 1
    # Every evaluation the table's columns come from, and the stages before them...
    for rule in ("evaluate_zeroshot", "evaluate_grounding", "evaluate_probe", "pretrain"):
        assert jobs.get(rule, 0) > 0, (rule, jobs)
    assert jobs.get("finetune_cls", 0) > 0 and jobs.get("finetune_seg", 0) > 0
    # ...but no other table, no figure, no contact sheet.
    extra = [r for r in jobs if r.startswith(("table_", "figure_")) and r != "table_ablation"]
    assert not extra and "contact_sheet" not in jobs, jobs
