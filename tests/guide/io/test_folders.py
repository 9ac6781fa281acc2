"""Output folders: planning a run's use of --out, removing only its own files, stale temporaries."""

import os

import pytest

from guide.io.folders import (
    NEW, REPLACE, RESUME, OutputFolderError, open_output_folder, plan_output_folder, refuse_overwriting_inputs,
    remove_stale_temps,
)

OUTPUTS = ("config.json", "renders/before_*.png", "checkpoint/state.pt")


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _earlier_run(folder):
    for name in ("config.json", "renders/before_00.png", "renders/before_10.png", "checkpoint/state.pt",
                 "notes.txt", "renders/my_sketch.png", "drafts/config.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)


def test_plans(tmp_path):
    plan = lambda **kw: plan_output_folder(tmp_path / "out", patterns=OUTPUTS, **{  # noqa: E731
        "overwrite": False, "resume": False, "resumable": False, **kw})
    assert plan() == NEW and not (tmp_path / "out").exists()  # planning creates nothing
    (tmp_path / "out").mkdir()
    assert plan(resume=True) == NEW  # an empty folder: --resume starts it
    _earlier_run(tmp_path / "out")
    with pytest.raises(OutputFolderError, match="not empty"):
        plan()
    with pytest.raises(OutputFolderError, match="holds no resumable run"):
        plan(resume=True)  # no saved state: never writes over what is there
    assert plan(resume=True, resumable=True) == RESUME
    assert plan(overwrite=True) == REPLACE
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        plan_output_folder(tmp_path / "file", patterns=OUTPUTS, overwrite=True, resume=False, resumable=False)


def test_replace_removes_only_declared_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _earlier_run(out)
    open_output_folder(out, REPLACE, OUTPUTS)
    assert _files(out) == ["drafts/config.json", "notes.txt", "renders/my_sketch.png"]
    assert not (out / "checkpoint").exists()  # emptied folders of the run go too


def test_inputs_that_a_run_would_write_or_remove_are_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _earlier_run(out)
    kw = dict(patterns=OUTPUTS, overwrite=True, resume=False, resumable=False)
    with pytest.raises(OutputFolderError, match="is an input of this run"):
        plan_output_folder(out, inputs=[out / "renders" / "before_10.png"], **kw)
    with pytest.raises(OutputFolderError, match="is also the input"):
        plan_output_folder(out, inputs=[out], **kw)
    assert plan_output_folder(out, inputs=[out / "notes.txt", None], **kw) == REPLACE
    with pytest.raises(OutputFolderError, match="would overwrite the input"):
        refuse_overwriting_inputs([tmp_path / "x" / ".." / "out" / "notes.txt"], [out / "notes.txt"])


def test_stale_temporary_files_are_removed_unless_their_writer_runs(tmp_path):
    dead = 4194304 + 7  # above Linux's largest pid: no such process
    (tmp_path / "renders").mkdir()
    stale = [tmp_path / f".config.json.tmp-{dead}-0123abcd", tmp_path / "renders" / f".x.png.tmp-{dead}-89abcdef"]
    live = tmp_path / f".status.json.tmp-{os.getppid()}-0123abcd"
    lookalike = tmp_path / ".notes.tmp-1-xyz"
    for path in stale:
        path.write_text("partial")
    # a folder holding only what interrupted writes left counts as empty
    assert plan_output_folder(tmp_path, patterns=OUTPUTS, overwrite=False, resume=False, resumable=False) == NEW
    for path in (live, lookalike):
        path.write_text("partial")
    assert remove_stale_temps(tmp_path) == 2
    assert not any(p.exists() for p in stale) and live.exists() and lookalike.exists()
