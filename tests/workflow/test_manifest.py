"""``workflow.manifest``: the daily job removes only the files it wrote, as its manifest records them.

Real files in an empty home: a file is removed only when the manifest names it and it is still the regular
file of that size and time; a file a person put there or changed, a link, a folder, a name that leaves the
folder, and every file under a manifest that is missing, unreadable or another home's stay. The copy into a
folder refuses to write through a link.
"""

from __future__ import annotations

import json
import logging
import os

import pytest

from forecast.errors import BadInputError
from forecast.workflow import manifest
from forecast.workspace import Workspace


@pytest.fixture
def workspace(home) -> Workspace:
    return Workspace.at(home)


@pytest.fixture
def folder(home):
    path = home / "daily" / "2024-01-02"
    path.mkdir(parents=True)
    return path


def write_files(folder, **files: str) -> None:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- stamps


def test_a_regular_files_stamp_is_its_size_and_modification_time(folder):
    write_files(folder, **{"a.csv": "12345"})
    os.utime(folder / "a.csv", ns=(1_000_000_000, 2_000_000_000))
    assert manifest.stamp(folder / "a.csv") == {"size": 5, "mtime_ns": 2_000_000_000}


def test_a_missing_file_a_folder_and_a_link_have_no_stamp(folder):
    write_files(folder, **{"real.csv": "x"})
    (folder / "sub").mkdir()
    (folder / "link.csv").symlink_to(folder / "real.csv")
    assert manifest.stamp(folder / "gone.csv") is None
    assert manifest.stamp(folder / "sub") is None
    assert manifest.stamp(folder / "link.csv") is None


def test_stamps_lists_only_the_regular_files_among_the_names(folder):
    write_files(folder, **{"a.csv": "x", "b.csv": "yy"})
    found = manifest.stamps(folder, ["a.csv", "b.csv", "missing.csv"])
    assert set(found) == {"a.csv", "b.csv"}
    assert found["b.csv"]["size"] == 2


def test_a_file_is_unchanged_until_its_size_or_time_differs(folder):
    write_files(folder, **{"a.csv": "abc"})
    path = folder / "a.csv"
    recorded = manifest.stamp(path)
    assert manifest.unchanged(path, recorded)
    os.utime(path, ns=(1, recorded["mtime_ns"] + 1))
    assert not manifest.unchanged(path, recorded)
    os.utime(path, ns=(1, recorded["mtime_ns"]))
    assert manifest.unchanged(path, recorded)
    path.write_text("abcd", encoding="utf-8")
    assert not manifest.unchanged(path, {**recorded, "mtime_ns": manifest.stamp(path)["mtime_ns"]})  # a new size
    path.unlink()
    assert not manifest.unchanged(path, recorded)


# ---------------------------------------------------------------- reading and writing


def test_what_is_written_reads_back(workspace, folder):
    write_files(folder, **{"a.csv": "x", "b.png": "yy"})
    files = manifest.stamps(folder, ["b.png", "a.csv"])
    manifest.write(workspace, folder, files)
    assert manifest.read(workspace, folder) == files
    data = json.loads(Workspace.manifest_file(folder).read_text(encoding="utf-8"))
    assert data["home"] == str(workspace.root)
    assert list(data["files"]) == ["a.csv", "b.png"]  # sorted


def test_no_manifest_names_nothing(workspace, folder):
    assert manifest.read(workspace, folder) == {}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", json.dumps({"files": ["a.csv"]}), "<not utf-8>"])
def test_an_unreadable_manifest_or_one_of_another_shape_names_nothing(workspace, folder, text, caplog):
    path = Workspace.manifest_file(folder)
    if text == "<not utf-8>":
        path.write_bytes(b"\xff\xfe\x00bad")  # not UTF-8
    else:
        path.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="forecast.workflow.pipeline"):
        assert manifest.read(workspace, folder) == {}
    assert "no file found" in caplog.text


def test_another_homes_manifest_names_nothing(workspace, folder, tmp_path):
    write_files(folder, **{"a.csv": "x"})
    other = Workspace.at(tmp_path / "other-home")
    manifest.write(other, folder, manifest.stamps(folder, ["a.csv"]))
    assert manifest.read(workspace, folder) == {}
    assert manifest.read(other, folder) != {}


def test_entries_that_are_not_stamps_are_ignored(workspace, folder):
    Workspace.manifest_file(folder).write_text(json.dumps(
        {"home": str(workspace.root), "files": {"a.csv": {"size": 1, "mtime_ns": 2}, "b.csv": "nonsense"}}), encoding="utf-8")
    assert manifest.read(workspace, folder) == {"a.csv": {"size": 1, "mtime_ns": 2}}


# ---------------------------------------------------------------- removing


def test_only_the_files_the_job_wrote_and_nobody_changed_are_removed(workspace, folder):
    write_files(folder, **{"written.csv": "x", "changed.csv": "y", "theirs.csv": "z"})
    written = manifest.stamps(folder, ["written.csv", "changed.csv"])
    (folder / "changed.csv").write_text("edited by a person", encoding="utf-8")
    manifest.remove_written(workspace, folder, ["written.csv", "changed.csv", "theirs.csv"], written)
    assert sorted(p.name for p in folder.iterdir()) == ["changed.csv", "theirs.csv"]


def test_a_name_not_asked_for_is_kept_even_when_the_job_wrote_it(workspace, folder):
    write_files(folder, **{"a.csv": "x", "b.csv": "y"})
    written = manifest.stamps(folder, ["a.csv", "b.csv"])
    manifest.remove_written(workspace, folder, ["a.csv"], written)
    assert [p.name for p in folder.iterdir()] == ["b.csv"]


def test_a_link_or_folder_now_where_a_written_file_was_is_kept(workspace, folder, tmp_path):
    outside = tmp_path / "precious.csv"
    outside.write_text("keep me", encoding="utf-8")
    write_files(folder, **{"a.csv": "x"})
    (folder / "b").mkdir()
    written = {"a.csv": manifest.stamp(outside), "b": {"size": 0, "mtime_ns": 0}}
    (folder / "a.csv").unlink()
    (folder / "a.csv").symlink_to(outside)  # the same size and time as the recorded stamp, but a link
    manifest.remove_written(workspace, folder, ["a.csv", "b", "gone.csv"], {**written, "gone.csv": {"size": 1}})
    assert (folder / "a.csv").is_symlink() and outside.read_text(encoding="utf-8") == "keep me"
    assert (folder / "b").is_dir()


def test_a_name_that_leaves_the_folder_is_never_removed(workspace, folder, caplog):
    victim = folder.parent / "victim.csv"
    victim.write_text("x", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="forecast.workflow.pipeline"):
        manifest.remove_written(workspace, folder, ["../victim.csv"], {"../victim.csv": manifest.stamp(victim)})
    assert victim.exists()
    assert "nothing removed" in caplog.text


# ---------------------------------------------------------------- copying


def test_a_copy_writes_the_sources_bytes_over_what_was_there(tmp_path):
    source, target = tmp_path / "source.png", tmp_path / "target.png"
    source.write_bytes(b"new bytes")
    target.write_bytes(b"old bytes that were longer")
    manifest.copy_no_follow(source, target)
    assert target.read_bytes() == b"new bytes"


def test_a_copy_refuses_to_write_through_a_link(tmp_path):
    source, elsewhere, target = tmp_path / "source.png", tmp_path / "elsewhere.png", tmp_path / "target.png"
    source.write_bytes(b"new")
    elsewhere.write_bytes(b"untouched")
    target.symlink_to(elsewhere)
    with pytest.raises(BadInputError, match="is a link"):
        manifest.copy_no_follow(source, target)
    assert elsewhere.read_bytes() == b"untouched"


def test_a_copy_into_a_missing_folder_is_the_os_error(tmp_path):
    source = tmp_path / "source.png"
    source.write_bytes(b"x")
    with pytest.raises(FileNotFoundError):
        manifest.copy_no_follow(source, tmp_path / "no-such-folder" / "target.png")
