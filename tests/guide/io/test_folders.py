"""clear_folder empties a folder except the entries it is told to keep."""
from guide.io.folders import clear_folder


def test_clear_folder_keeps_only_the_named_entries(tmp_path):
    (tmp_path / "keep.txt").write_text("k")
    (tmp_path / "kept_dir").mkdir()
    (tmp_path / "kept_dir" / "state.pt").write_text("s")
    (tmp_path / "drop.txt").write_text("d")
    (tmp_path / "drop_dir" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "kept_dir")
    clear_folder(tmp_path, keep=("keep.txt", "kept_dir"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "kept_dir"]
    assert (tmp_path / "kept_dir" / "state.pt").read_text() == "s"  # a symlink is removed, not followed


def test_clear_folder_without_keep_empties_it(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").mkdir()
    clear_folder(tmp_path)
    assert tmp_path.is_dir() and not any(tmp_path.iterdir())
