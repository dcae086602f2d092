"""Compares attachment / media throughput with OpenSSL's AES-256-CBC and SHA-256 on this machine.

    python benches/media_vs_openssl.py [--seconds 1] [--size-mib 64]

Runs ``openssl speed -evp aes-256-cbc`` (encrypt and decrypt) and ``openssl speed -evp sha256``
with 1 MiB blocks, measures ours in the same run (one thread, in-memory one-shot calls) and
prints the ratios against the targets (both sides in bytes per CPU second, which is what
``openssl speed`` reports by default):

* encrypt >= 85% of the serial floor 1 / (1/AES_enc + 1/SHA);
* decrypt >= 85% of SHA-256.

Note what each format costs per byte: Signal encryption needs AES-CBC, one HMAC pass (shared
by the blob MAC and the incremental MAC) and one SHA-256 pass (the digest); WhatsApp needs AES,
HMAC, SHA-256 of the plaintext and SHA-256 of the file. The floors above count one hash pass.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from textsecure import attachments as att


def openssl_speed(args: list[str], seconds: int) -> float:
    """Bytes per second for 1 MiB blocks."""
    cmd = ["openssl", "speed", "-seconds", str(seconds), "-bytes", str(1 << 20), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = out.strip().splitlines()[-1]
    m = re.search(r"([\d.]+)k\s*$", line)
    if not m:
        raise RuntimeError(f"cannot parse openssl output: {line!r}")
    return float(m.group(1)) * 1000


def ours(fn: Callable[[], object], n: int, seconds: float) -> float:
    """Bytes per CPU second of this thread, like ``openssl speed`` (which divides by user CPU
    time, not wall time, unless given ``-elapsed``): fair on a machine shared with others."""
    fn()
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.thread_time()
        fn()
        best = max(best, n / max(time.thread_time() - t0, 1e-9))
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=1)
    p.add_argument("--size-mib", type=int, default=64)
    a = p.parse_args()
    if shutil.which("openssl") is None:
        print("openssl not found", file=sys.stderr)
        return 1
    aes_enc = openssl_speed(["-evp", "aes-256-cbc"], a.seconds)
    aes_dec = openssl_speed(["-decrypt", "-evp", "aes-256-cbc"], a.seconds)
    sha = openssl_speed(["-evp", "sha256"], a.seconds)
    floor_enc = 1 / (1 / aes_enc + 1 / sha)
    n = a.size_mib << 20
    pt = os.urandom(n)
    sig = att.encrypt(pt)
    wa = att.encrypt_whatsapp(pt, "video")
    rows = [
        ("signal encrypt", ours(lambda: att.encrypt(pt, key=sig.key), n, a.seconds), floor_enc),
        (
            "signal decrypt",
            ours(
                lambda: att.decrypt(sig.blob, key=sig.key, digest=sig.digest, size=n),
                len(sig.blob),
                a.seconds,
            ),
            sha,
        ),
        (
            "signal decrypt (no digest)",
            ours(
                lambda: att.decrypt(sig.blob, key=sig.key, digest=None, size=n),
                len(sig.blob),
                a.seconds,
            ),
            sha,
        ),
        (
            "whatsapp encrypt",
            ours(lambda: att.encrypt_whatsapp(pt, "video", media_key=wa.media_key), n, a.seconds),
            floor_enc,
        ),
        (
            "whatsapp decrypt (MAC only)",
            ours(
                lambda: att.decrypt_whatsapp(wa.blob, "video", wa.media_key),
                len(wa.blob),
                a.seconds,
            ),
            sha,
        ),
        (
            "whatsapp decrypt (+ both hashes)",
            ours(
                lambda: att.decrypt_whatsapp(
                    wa.blob,
                    "video",
                    wa.media_key,
                    file_sha256=wa.file_sha256,
                    file_enc_sha256=wa.file_enc_sha256,
                ),
                len(wa.blob),
                a.seconds,
            ),
            sha,
        ),
    ]
    mb = 1e6
    print(f"openssl aes-256-cbc encrypt {aes_enc / mb:8.0f} MB/s")
    print(f"openssl aes-256-cbc decrypt {aes_dec / mb:8.0f} MB/s")
    print(f"openssl sha256              {sha / mb:8.0f} MB/s")
    print(f"serial floor 1/(1/AES+1/SHA) {floor_enc / mb:7.0f} MB/s")
    print(
        f"{'ours (' + str(a.size_mib) + ' MiB, one thread)':34} {'MB/s':>8} {'ref':>8} {'ratio':>6}"
    )
    for name, speed, ref in rows:
        target = "ok" if speed >= 0.85 * ref else "below 85%"
        print(f"{name:34} {speed / mb:8.0f} {ref / mb:8.0f} {speed / ref:6.2f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
