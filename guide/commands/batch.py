"""`guide batch`: erase many identities from one job file (YAML or JSON)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click


def describe(job) -> str:
    """A few lines saying what the job will do."""
    kinds = {}
    for e in job.identities:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    who = ", ".join(f"{n} {k}" for k, n in kinds.items())
    sampled = f", {job.sample_identities} identities per step" if job.sample_identities else ""
    return "\n".join([
        f"job {job.source}: mode {job.mode}, {len(job.identities)} identities ({who}), "
        f"retain set {len(job.retain)}",
        f"  method {job.erase.method}, {job.erase.ltu.iters} steps, lr {job.erase.ltu.lr:g}, "
        f"target distance {job.erase.target.distance:g}, seed {job.erase.seed}{sampled}",
        f"  generator {job.generator or 'ffhqrebalanced512-128.pkl (checkpoints folder)'}, networks {job.networks}, "
        f"devices {', '.join(job.devices)}, executor {job.resolved_executor()}",
    ])


def resume_command(job_file, out_dir, overrides) -> str:
    """The command that continues this batch (with the same --set overrides: a resume checks them)."""
    import shlex

    words = ["guide", "batch", str(job_file), "--out", str(out_dir)]
    for item in overrides:
        words += ["--set", item]
    return " ".join(shlex.quote(w) for w in words + ["--resume"])


@click.command()
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (one sub-folder per identity, status.json, report.json/.md).")
@click.option("--resume", is_flag=True, help="Continue an interrupted batch in --out (done identities are skipped; "
              "failed ones are retried).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run's results in --out (only the files a run "
              "writes are removed; other files stay).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a job-file option (repeatable; VALUE is YAML; dotted keys reach into mappings), "
                   "e.g. --set iters=1 --set evaluation.views=2.")
@click.option("--check", is_flag=True, help="Only validate the job file and print what it would do.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def batch(job_file: Path, out_dir: Optional[Path], resume: bool, overwrite: bool, overrides, check: bool,
          quiet: bool) -> None:
    """Erase the identities listed in JOB_FILE (modes: independent, joint, sequential).

    The job file lists the identities (photos, latents or random seeds) and shared options;
    its schema is in docs/batch.md and examples/batch-demo.yaml. Every identity's state is
    kept in DIR/status.json: an interrupted batch continues with --resume, and one failing
    identity is recorded without stopping the others. Exit status: 0 all erased, 1 some
    failed, 2 usage or job-file error.
    """
    from guide.batch.runner import run_batch
    from guide.batch.schema import load_job

    job = load_job(job_file, overrides)
    if check:
        click.echo(describe(job))
        click.echo("job file OK")
        return
    if out_dir is None:
        raise click.UsageError("--out DIR is required (or --check to only validate)")
    click.echo(describe(job), err=True)
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    try:
        summary = run_batch(job, out_dir, resume=resume, overwrite=overwrite, progress=not quiet, log=log)
    except KeyboardInterrupt:
        click.echo(f"interrupted; continue with: {resume_command(job_file, out_dir, overrides)}", err=True)
        raise SystemExit(130)
    click.echo(summary.line())
    click.get_current_context().exit(summary.exit_code)


command = batch
