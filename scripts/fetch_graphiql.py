#!/usr/bin/env python3
"""Vendor GraphiQL's pinned npm builds into gateway/server/static/graphiql/vendor (needs npm)."""

# Run by hand when bumping a version, then commit the result: the gateway serves the committed
# files, so a fresh machine with only Python needs nothing from npm or a CDN.
#   python3 scripts/fetch_graphiql.py           # (re)write the vendor folder
#   python3 scripts/fetch_graphiql.py --check   # fail unless the folder is byte-identical to npm

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = (
    Path(__file__).resolve().parent.parent / "gateway" / "server" / "static" / "graphiql" / "vendor"
)

# graphiql 4.1.2 is the last release line with a prebuilt UMD bundle (5.x is ESM + Monaco and
# needs a bundler); react 18.3.1 is the last React with UMD builds; plugin-explorer 4.0.6 is the
# release that pairs with graphiql 4 (@graphiql/react ^0.34).
# folder: (npm package, exact version, {file in the tarball: name in the folder})
PACKAGES: dict[str, tuple[str, str, dict[str, str]]] = {
    "react": (
        "react",
        "18.3.1",
        {"umd/react.production.min.js": "react.production.min.js", "LICENSE": "LICENSE"},
    ),
    "react-dom": (
        "react-dom",
        "18.3.1",
        {"umd/react-dom.production.min.js": "react-dom.production.min.js", "LICENSE": "LICENSE"},
    ),
    "graphiql": (
        "graphiql",
        "4.1.2",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "LICENSE",
        },
    ),
    "plugin-explorer": (
        "@graphiql/plugin-explorer",
        "4.0.6",
        {"dist/index.umd.js": "index.umd.js", "dist/style.css": "style.css"},
    ),
    # The explorer's tarball has no LICENSE file: it is the graphiql monorepo's MIT licence, and
    # its UMD bundle embeds graphiql-explorer, whose licence comes from that package's tarball.
    "plugin-explorer/licenses": (
        "graphiql",
        "4.1.2",
        {"LICENSE": "LICENSE.graphiql-monorepo"},
    ),
    "plugin-explorer/licenses/graphiql-explorer": (
        "graphiql-explorer",
        "0.9.0",
        {"LICENSE": "LICENSE"},
    ),
}


def _pack(spec: str, into: Path) -> dict[str, str]:
    """`npm pack` one exact version (npm checks the registry's integrity); return its metadata."""
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--silent", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta: dict[str, str] = json.loads(out)[0]
    return meta


def fetch(dest: Path) -> dict[str, object]:
    """Write every vendored file under `dest`; return the manifest (versions and checksums)."""
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tarballs: dict[str, tuple[Path, dict[str, str]]] = {}
        for folder, (name, version, files) in PACKAGES.items():
            spec = f"{name}@{version}"
            if spec not in tarballs:
                meta = _pack(spec, Path(tmp))
                tarballs[spec] = (Path(tmp) / meta["filename"], meta)
            tarball, meta = tarballs[spec]
            target = dest / folder
            target.mkdir(parents=True, exist_ok=True)
            entry: dict[str, object] = {"package": name, "version": version}
            entry["integrity"] = meta["integrity"]
            checksums: dict[str, str] = {}
            with tarfile.open(tarball) as tar:
                for member, local in files.items():
                    # Only named members are read, so a hostile tarball cannot write elsewhere.
                    extracted = tar.extractfile(f"package/{member}")
                    if extracted is None:
                        raise SystemExit(f"{spec}: {member} is not a file")
                    data = extracted.read()
                    (target / local).write_bytes(data)
                    checksums[local] = hashlib.sha256(data).hexdigest()
            entry["files"] = checksums
            manifest[folder] = entry
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare with npm, write nothing")
    args = parser.parse_args()
    if shutil.which("npm") is None:
        print("fetch_graphiql: npm is needed (apt-get install -y npm)", file=sys.stderr)
        return 2
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fetch(Path(tmp))
            if _tree(Path(tmp)) != _tree(VENDOR):
                print(f"fetch_graphiql: {VENDOR} differs from npm; rerun without --check")
                return 1
        print("fetch_graphiql: vendored files match npm")
        return 0
    shutil.rmtree(VENDOR, ignore_errors=True)
    fetch(VENDOR)
    total = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    print(f"fetch_graphiql: wrote {VENDOR} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
