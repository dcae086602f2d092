#!/usr/bin/env python3
"""Static half of `make msrv`: what can be proved about the MSRV without its toolchain.

Checks, for the workspace (Cargo.toml) and for fuzz/ (its own workspace and Cargo.lock):

1. Every package of the resolved graph that Cargo.lock pins (`cargo metadata --locked
   --all-features`, every target platform, build and dev dependencies included) declares a
   `rust-version` no newer than the workspace's, or none. The set of packages metadata reports
   is compared with Cargo.lock itself, so a lock entry cannot escape the check.
2. Every package of ours (workspace members, the fuzz crate) declares exactly that
   `rust-version`, so clippy's `incompatible_msrv` and the MSRV-aware resolver both use it.
3. The configuration that enforces the rest is in place: `.cargo/config.toml` has
   `[resolver] incompatible-rust-versions = "fallback"` (new versions are picked within the
   MSRV), and `[workspace.lints.clippy] incompatible_msrv = "deny"` (clippy fails on a std API
   stabilised after the MSRV; `make lint` runs clippy) with no clippy.toml `msrv` overriding it.

What this does not prove: that the code compiles with that rustc (language features,
inference changes, lints). Only `cargo +<msrv> check`, which `make msrv` runs when that
toolchain is installed, does. A dependency without `rust-version` is reported, not judged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = [ROOT / "Cargo.toml", ROOT / "fuzz" / "Cargo.toml"]


def version(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def metadata(manifest: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "cargo",
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--all-features",
            "--manifest-path",
            str(manifest),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    meta: dict[str, Any] = json.loads(out)
    return meta


def check_config(msrv: str, errors: list[str]) -> None:
    config = ROOT / ".cargo" / "config.toml"
    policy = (
        load_toml(config).get("resolver", {}).get("incompatible-rust-versions")
        if config.exists()
        else None
    )
    if policy != "fallback":
        errors.append(
            f"{config.relative_to(ROOT)}: [resolver] incompatible-rust-versions must be "
            f'"fallback" (is {policy!r})'
        )
    lint = load_toml(ROOT / "Cargo.toml").get("workspace", {}).get("lints", {}).get("clippy", {})
    level = lint.get("incompatible_msrv")
    level = level.get("level") if isinstance(level, dict) else level
    if level != "deny":
        errors.append(
            f'Cargo.toml: [workspace.lints.clippy] incompatible_msrv must be "deny" (is {level!r})'
        )
    clippy = ROOT / "clippy.toml"
    if clippy.exists():
        override = load_toml(clippy).get("msrv")
        if override is not None and str(override) != msrv:
            errors.append(f"clippy.toml: msrv = {override!r} differs from rust-version {msrv}")


def check_graph(manifest: Path, msrv: str, errors: list[str]) -> None:
    name = manifest.parent.relative_to(ROOT).as_posix() or "."
    meta = metadata(manifest)
    members = set(meta["workspace_members"])
    lock_path = Path(meta["workspace_root"]) / "Cargo.lock"
    locked = {
        (p["name"], p["version"])
        for p in load_toml(lock_path)["package"]
        if p.get("source")  # path packages (ours) have no source
    }
    deps = {}
    for p in meta["packages"]:
        if p["id"] in members or p["source"] is None:
            if p.get("rust_version") != msrv:
                errors.append(
                    f"{name}: our package {p['name']} declares rust-version "
                    f"{p.get('rust_version')!r}, not {msrv}"
                )
            continue
        deps[(p["name"], p["version"])] = p
    if set(deps) != locked:
        errors.append(
            f"{name}: cargo metadata and {lock_path.relative_to(ROOT)} disagree: only in metadata "
            f"{sorted(set(deps) - locked)}, only in the lock {sorted(locked - set(deps))}"
        )
    newer, undeclared, newest = [], [], ("", "0")
    for (pkg, ver), p in sorted(deps.items()):
        rv = p.get("rust_version")
        if rv is None:
            undeclared.append(f"{pkg} {ver}")
        elif version(rv) > version(msrv):
            newer.append(f"{pkg} {ver} (rust-version {rv})")
        elif version(rv) > version(newest[1]):
            newest = (f"{pkg} {ver}", rv)
    for n in newer:
        errors.append(f"{name}: {n} is newer than the MSRV {msrv}")
    print(
        f"msrv: {name}: {len(deps)} locked dependencies, {len(deps) - len(undeclared)} declare a "
        f"rust-version, newest {newest[1]} ({newest[0]}), {len(newer)} above {msrv}; "
        f"{len(undeclared)} declare none"
    )


def main() -> int:
    msrv = load_toml(ROOT / "Cargo.toml")["workspace"]["package"]["rust-version"]
    errors: list[str] = []
    check_config(msrv, errors)
    for manifest in MANIFESTS:
        check_graph(manifest, msrv, errors)
    for e in errors:
        print(f"msrv: error: {e}", file=sys.stderr)
    if errors:
        print(
            "msrv: a dependency above the MSRV: `cargo update -p <name>` (in fuzz/ for its lock) "
            "picks the newest version within it (.cargo/config.toml)",
            file=sys.stderr,
        )
        return 1
    print(f"msrv: dependency graphs within rust-version {msrv}; resolver and clippy configured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
