"""Checks that the package under test is the *installed* one (a wheel or an sdist installed
into a fresh virtualenv), not the editable build in ``python/``.

``tests/packaging/run_installed.sh`` (``make test-wheel``) and the release workflow pass this
file to pytest explicitly, next to the unit tests; its name does not match ``test_*.py``, so
``pytest tests`` (``make test``), which runs against the editable build, never collects it.

``TEXTSECURE_EXPECT_NO_RUST=1``: also check that no Rust toolchain is on ``PATH`` (a wheel
must install and work without one). ``TEXTSECURE_EXPECT_VERSION``: the version the
distribution must have. ``TEXTSECURE_SOURCE_TREE``: the checkout, whose python/ the package
must not be imported from.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import textsecure
import textsecure as ts
from textsecure import _native


def test_imported_from_site_packages() -> None:
    package = Path(textsecure.__file__).resolve().parent
    site_dirs = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert package.parent in site_dirs, f"textsecure imported from {package}, not {site_dirs}"
    assert Path(sys.prefix).resolve() in package.parents
    assert Path(sys.prefix) != Path(sys.base_prefix), "not running in a virtualenv"
    source = os.environ.get("TEXTSECURE_SOURCE_TREE")
    if source:
        assert not package.is_relative_to(Path(source).resolve() / "python")


def test_native_extension_is_the_installed_abi3_one() -> None:
    native = Path(_native.__file__).resolve()
    assert native.parent == Path(textsecure.__file__).resolve().parent
    # abi3: one file for every CPython >= 3.11 (``_native.abi3.so``; ``_native.pyd`` on Windows)
    assert native.name in ("_native.abi3.so", "_native.pyd"), native.name


def test_distribution_metadata() -> None:
    dist = importlib.metadata.distribution("textsecure")
    assert dist.version == textsecure.__version__
    expected = os.environ.get("TEXTSECURE_EXPECT_VERSION")
    if expected:
        assert dist.version == expected
    assert dist.metadata["Requires-Python"] == ">=3.11"
    files = {str(f) for f in dist.files or ()}
    assert "textsecure/py.typed" in files
    assert "textsecure/_native.pyi" in files


def test_console_script() -> None:
    script = shutil.which("textsecure", path=str(Path(sys.executable).parent))
    assert script is not None, "the textsecure console script is not installed"
    out = subprocess.run([script, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == textsecure.__version__


def test_no_rust_toolchain_on_path() -> None:
    if os.environ.get("TEXTSECURE_EXPECT_NO_RUST") != "1":
        return  # sdist runs: building needed Rust
    for tool in ("cargo", "rustc", "rustup"):
        assert shutil.which(tool) is None, f"{tool} is on PATH: {shutil.which(tool)}"


def test_quick_start_round_trip(tmp_path: Path) -> None:
    """The README's quick start (PQXDH + SPQR by default), then the same on SQLite stores
    reopened from disk: the native code of the wheel, with no test helpers."""
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id=1)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id=2)
    bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1)
    to_bob = ts.SessionCipher(alice, ts.Address("bob", 1))
    to_bob.process_bundle(bundle)
    message = to_bob.encrypt(b"hello")
    to_alice = ts.SessionCipher(bob, ts.Address("alice", 1))
    assert to_alice.decrypt(ts.parse_message(message.type, bytes(message))) == b"hello"
    assert to_bob.decrypt(to_alice.encrypt(b"hi")) == b"hi"

    db = tmp_path / "stores.db"
    with ts.SQLiteStore(db, account="alice") as a, ts.SQLiteStore(db, account="bob") as b:
        bundle = b.new_bundle(7, prekey_id=3, signed_prekey_id=4)
        cipher = ts.SessionCipher(a, ts.Address("bob", 1))
        cipher.process_bundle(bundle)
        first = cipher.encrypt(b"durable")
        assert ts.SessionCipher(b, ts.Address("alice", 1)).decrypt(first) == b"durable"
    with ts.SQLiteStore(db, account="alice") as a, ts.SQLiteStore(db, account="bob") as b:
        reply = ts.SessionCipher(b, ts.Address("alice", 1)).encrypt(b"after a restart")
        assert ts.SessionCipher(a, ts.Address("bob", 1)).decrypt(reply) == b"after a restart"
