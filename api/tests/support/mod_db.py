"""The mod database stub's content for mod management tests: real-shaped records whose release
files the stub serves, as zips built here around real `modinfo.json` files."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.stub_server import FIXTURES, StubServer

CDN = "https://moddbcdn.vintagestory.at/"


def carryon_modinfo(version: str) -> bytes:
    """Carry On's real `modinfo.json` (1.12.1, byte for byte), as another release would have it."""
    return (FIXTURES / "modinfo.json").read_bytes().replace(b'"1.12.1"', f'"{version}"'.encode())


def smex_modinfo(version: str) -> bytes:
    return (
        (FIXTURES / "modinfo-smex.json").read_bytes().replace(b'"0.9.4"', f'"{version}"'.encode())
    )


def modinfo(modid: str, version: str, dependencies: dict[str, str] | None = None) -> bytes:
    return json.dumps(
        {
            "type": "code",
            "modid": modid,
            "name": modid.title(),
            "version": version,
            "dependencies": {"game": "1.22.0", **(dependencies or {})},
        },
        indent="\t",
    ).encode()


def zip_bytes(modinfo_json: bytes | None, extra: dict[str, bytes] | None = None) -> bytes:
    """A mod archive: `modinfo.json` at the top (when given), a code file, `extra` entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if modinfo_json is not None:
            archive.writestr("modinfo.json", modinfo_json)
        archive.writestr("modicon.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_bomb(modinfo_json: bytes) -> bytes:
    """A real mod archive plus 24 MiB of zeros that pack into about 24 KiB."""
    return zip_bytes(modinfo_json, {"assets/padding.bin": bytes(24 * 1024 * 1024)})


@dataclass
class PublishedMod:
    record: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # version -> stub path of its zip

    def path_of(self, version: str) -> str:
        return self.files[version]


def publish(
    stub: StubServer,
    fixture: str,
    zips: dict[str, bytes],
    *,
    record: dict[str, Any] | None = None,
) -> PublishedMod:
    """Serve the mod record `mod-<fixture>.json` (or `record`) under its modid string and its
    numeric id, each release's `mainfile` pointing at the stub; `zips` are the release files."""
    payload = record or json.loads((FIXTURES / f"mod-{fixture}.json").read_bytes())
    published = PublishedMod(payload)
    for release in payload["mod"]["releases"]:
        url = release["mainfile"]
        release["mainfile"] = url.replace(CDN, f"{stub.versions_url}/cdn/")
        path = urlsplit(release["mainfile"]).path
        published.files[release["modversion"]] = path
        if release["modversion"] in zips:
            stub.bodies[path] = zips[release["modversion"]]
    # PHP's json_encode style, as the real database sends it.
    body = json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()
    mod = payload["mod"]
    for key in {str(mod["modid"]), *(r["modidstr"] for r in mod["releases"])}:
        stub.bodies[f"/api/mod/{key}"] = body
    return published


def derived_record(
    fixture: str, *, modid: str, numeric_id: int, versions: list[str]
) -> dict[str, Any]:
    """A record shaped like `mod-<fixture>.json` for a mod the fixtures do not have (a
    dependency), its releases tagged like the fixture's newest."""
    payload: dict[str, Any] = json.loads((FIXTURES / f"mod-{fixture}.json").read_bytes())
    mod = payload["mod"]
    template = mod["releases"][0]
    mod.update(modid=numeric_id, assetid=numeric_id * 10, name=modid.title(), urlalias=modid)
    releases = []
    for n, version in enumerate(versions):
        filename = f"{modid}_{version}.zip"
        releases.append(
            {
                **template,
                "releaseid": numeric_id * 100 + n,
                "fileid": numeric_id * 100 + n,
                "mainfile": f"{CDN}{modid}_{version}_{numeric_id:032x}.zip?dl={filename}",
                "filename": filename,
                "modidstr": modid,
                "modversion": version,
            }
        )
    mod["releases"] = releases
    return payload


def mods_folder(data_dir: Path) -> Path:
    return data_dir / "serverdata" / "Mods"


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` (hidden ones too) and its bytes: what a failed change must keep."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
