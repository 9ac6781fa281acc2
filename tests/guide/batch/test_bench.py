"""`guide batch-bench`: what one measurement reports (exact and sampled joint steps) and its CLI."""
from dataclasses import asdict

import pytest
from click.testing import CliRunner

from guide.batch.bench import BatchBenchSettings, bench_one, format_table
from guide.cli import cli


def test_bench_rows_exact_and_sampled():
    settings = BatchBenchSettings(counts=(3, 5), nrr=16, identity_chunk=2, exact_max=3, sample=2, adj_batch=1,
                                  global_batch=1)
    exact, sampled = bench_one(settings, 3), bench_one(settings, 5)
    assert (exact.identities, exact.objective, exact.identities_per_step, exact.forward_passes_per_step) == \
        (3, "exact", 3, 2)
    assert exact.estimated_exact_step_s is None and exact.step_s > 0 and exact.peak_mb >= exact.base_mb > 0
    assert (sampled.objective, sampled.identities_per_step, sampled.forward_passes_per_step) == ("sampled", 2, 1)
    assert sampled.estimated_exact_step_s == pytest.approx(sampled.step_s * 5 / 2)
    table = format_table({"settings": asdict(settings), "rows": [asdict(exact), asdict(sampled)]}).splitlines()
    assert table[2].split()[:4] == ["3", "exact", "3", "2"] and table[3].split()[:4] == ["5", "sampled", "2", "1"]
    assert table[3].split()[6].startswith("~")


@pytest.mark.parametrize("counts", ["0,8", "one", ""])
def test_bench_cli_rejects_bad_counts(counts):
    result = CliRunner().invoke(cli, ["batch-bench", "--counts", counts])
    assert result.exit_code == 2 and "--counts" in result.output and "Traceback" not in result.output
