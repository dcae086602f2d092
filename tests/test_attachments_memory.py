"""Encrypting and decrypting a 2 GiB file keeps peak RSS growth under 64 MiB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LIMIT = 64 * 2**20
SIZE = 2 * 2**30

CHILD = textwrap.dedent(
    """
    import json, os, sys, hashlib
    from textsecure import attachments as att

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")

    d = sys.argv[1]
    src, enc, dec = (os.path.join(d, n) for n in ("plain", "enc", "dec"))
    with open(src, "wb") as f:  # sparse: no memory, no disk
        f.truncate(int(sys.argv[2]))
    before = hwm()
    info = att.encrypt_file(src, enc)
    after_enc = hwm()
    att.decrypt_file(enc, dec, key=info.key, digest=info.digest, size=info.plaintext_size)
    after_dec = hwm()
    with open(dec, "rb") as f:
        size = f.seek(0, 2)
        samples = []
        for off in (0, size // 3, size - 4096):
            f.seek(off)
            samples.append(f.read(4096) == bytes(4096))
    print(json.dumps({"before": before, "after_enc": after_enc, "after_dec": after_dec,
                      "blob": os.path.getsize(enc), "blob_size": info.blob_size,
                      "size": size, "zeros": all(samples)}))
    """
)


@pytest.mark.slow
def test_two_gib_file_in_bounded_memory(tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (Linux)")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(SIZE)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["size"] == SIZE and r["zeros"]
    assert r["blob"] == r["blob_size"] == 16 + (SIZE // 16 + 1) * 16 + 32
    assert r["after_enc"] - r["before"] < LIMIT, r
    assert r["after_dec"] - r["before"] < LIMIT, r
