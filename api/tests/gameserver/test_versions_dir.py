"""Versions side by side, the current and previous links, and launching what is current."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vintagestory_api.gameserver.launch import LaunchConfig
from vintagestory_api.gameserver.versions_dir import Links, VersionsDir


def _add(versions: VersionsDir, version: str) -> None:
    staging = versions.new_staging(version)
    (staging / "VintagestoryServer.dll").write_text(version)
    versions.add(staging, version)


@pytest.fixture
def versions(tmp_path: Path) -> VersionsDir:
    return VersionsDir(tmp_path / "server")


def test_switch_keeps_the_one_before_as_previous_and_the_version_file_in_step(
    versions: VersionsDir,
) -> None:
    _add(versions, "1.21.5")
    assert versions.switch("1.21.5") == Links(current=None, previous=None)
    _add(versions, "1.21.6")
    before = versions.switch("1.21.6")
    assert before == Links(current="1.21.5", previous=None, file_version="1.21.5")
    assert versions.links() == Links("1.21.6", "1.21.5", "1.21.6")
    # Relative links: the server dir can be moved or mounted elsewhere.
    assert os.readlink(versions.root / "current") == "versions/1.21.6"
    assert (versions.root / "current_version").read_text() == "1.21.6\n"
    # A switch to the previous one is a rollback: they change places.
    versions.switch("1.21.5")
    assert versions.links() == Links("1.21.5", "1.21.6", "1.21.5")


def test_the_current_version_cannot_be_replaced(versions: VersionsDir) -> None:
    _add(versions, "1.21.5")
    versions.switch("1.21.5")
    staging = versions.new_staging("1.21.5")
    with pytest.raises(ValueError, match="current version"):
        versions.add(staging, "1.21.5")


def test_prune_keeps_current_and_previous_and_removes_leftovers(versions: VersionsDir) -> None:
    for version in ("1.21.4", "1.21.5", "1.21.6"):
        _add(versions, version)
        versions.switch(version)
    versions.new_staging("1.21.7")
    versions.download_path("1.21.7").write_bytes(b"partial")
    removed = versions.prune()
    assert sorted(removed)[0] == ".download-1.21.7.tar.gz"
    assert sorted(p.name for p in versions.versions.iterdir()) == ["1.21.5", "1.21.6"]


def test_putting_back_a_hand_made_install_restores_its_version_file(tmp_path: Path) -> None:
    root = tmp_path / "server"
    root.mkdir()
    (root / "VintagestoryServer.dll").write_text("hand-made")
    (root / "current_version").write_text("1.21.3\n")
    versions = VersionsDir(root)
    _add(versions, "1.21.5")
    before = versions.switch("1.21.5")
    assert (root / "current_version").read_text() == "1.21.5\n"
    versions.point(before)
    assert versions.links() == Links(None, None, "1.21.3")
    assert LaunchConfig(server_dir=root, data_path=tmp_path / "data").launch_dir == root


def test_a_stale_version_file_is_mended_and_foreign_links_are_ignored(
    versions: VersionsDir, tmp_path: Path
) -> None:
    _add(versions, "1.21.5")
    versions.switch("1.21.5")
    (versions.root / "current_version").write_text("1.20.0\n")
    versions.sync_version_file()
    assert versions.file_version() == "1.21.5"
    (versions.root / "previous").symlink_to(tmp_path)
    assert versions.previous() is None


def test_a_command_naming_the_server_dir_runs_the_current_version(
    versions: VersionsDir, tmp_path: Path
) -> None:
    config = LaunchConfig(
        server_dir=versions.root,
        data_path=tmp_path / "data",
        command="python3 '{server_dir}/server.py' --flag",
    )
    # With {server_dir}, nothing is installed until a version is.
    assert not config.installed
    assert "install one first" in config.not_installed_reason()
    _add(versions, "1.21.5")
    versions.switch("1.21.5")
    assert config.installed
    assert config.installed_version() == "1.21.5"
    where = versions.path("1.21.5")
    assert config.argv()[:3] == ["python3", f"{where}/server.py", "--flag"]
    assert config.cwd == where
    # A command that does not name it is installed as it is, as before.
    assert LaunchConfig(server_dir=tmp_path / "none", data_path=tmp_path, command="x").installed
