"""Compares attachment / media throughput with OpenSSL's AES-256-CBC and SHA-256 on this machine.

    python benches/media_vs_openssl.py [--seconds 1] [--size-mib 64] [--repeat 3] [--no-two]

Runs ``openssl speed -evp aes-256-cbc`` (encrypt and decrypt) and ``openssl speed -evp sha256``
with 1 MiB blocks, measures ours in the same run (in-memory one-shot calls through the public
API) and prints the ratios against the targets:

* encrypt >= 85% of the serial floor 1 / (1/AES_enc + 1/SHA);
* decrypt >= 85% of SHA-256.

One-thread rows (``threads=1``) are in bytes per CPU second of the calling thread, which is
what ``openssl speed`` reports by default: fair on a machine shared with others. Two-thread
rows (``threads=2``: the hashes on a helper thread) are in bytes per wall-clock second (what a
caller sees; pessimistic when other processes hold the cores), with bytes per CPU second of
the whole process beside them. With ``--repeat N`` the whole measurement (openssl included)
runs N times and the median ratios are printed at the end.

What each format costs per byte: Signal encryption needs AES-CBC, one HMAC pass (shared by the
blob MAC and the incremental MAC) and one SHA-256 pass (the digest); WhatsApp needs AES, HMAC,
SHA-256 of the plaintext and SHA-256 of the file. The floors above count one hash pass, so on
one core "ceiling" (the same openssl figures, every pass the format needs, back to back) is
the most any implementation can reach; it is printed beside each ratio.

Every one-shot call returns a new ``bytes`` object; its pages are faulted in fresh each time
(for large objects the allocator maps new memory). That cost is the machine's, and counted in
ours: the line "fresh memory" shows it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass
class Rates:
    thread_cpu: float
    process_cpu: float
    wall: float


def ours(fn: Callable[[], object], n: int, seconds: float) -> Rates:
    """Best bytes per second over repeated calls for `seconds`, by three clocks: this thread's
    CPU time (like ``openssl speed``, which divides by user CPU time unless given
    ``-elapsed``), the process's CPU time and wall-clock time."""
    fn()
    best = Rates(0.0, 0.0, 0.0)
    end = time.perf_counter() + seconds
    while True:
        w0, t0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        fn()
        w1, t1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
        best.thread_cpu = max(best.thread_cpu, n / max(t1 - t0, 1e-9))
        best.process_cpu = max(best.process_cpu, n / max(p1 - p0, 1e-9))
        best.wall = max(best.wall, n / max(w1 - w0, 1e-9))
        if w1 >= end:
            return best


def cases(n: int, threads: int) -> list[tuple[str, Callable[[], object], int, str, int]]:
    """(name, call, bytes, reference, hash passes beyond the first)."""
    pt = os.urandom(n)
    sig = att.encrypt(pt)
    wa = att.encrypt_whatsapp(pt, "video")
    t = threads
    return [
        ("signal encrypt", lambda: att.encrypt(pt, key=sig.key, threads=t), n, "enc", 1),
        (
            "signal decrypt",
            lambda: att.decrypt(sig.blob, key=sig.key, digest=sig.digest, size=n, threads=t),
            len(sig.blob),
            "dec",
            1,
        ),
        (
            "signal decrypt (no digest)",
            lambda: att.decrypt(sig.blob, key=sig.key, digest=None, size=n, threads=t),
            len(sig.blob),
            "dec",
            0,
        ),
        (
            "whatsapp encrypt",
            lambda: att.encrypt_whatsapp(pt, "video", media_key=wa.media_key, threads=t),
            n,
            "enc",
            2,
        ),
        (
            "whatsapp decrypt (MAC only)",
            lambda: att.decrypt_whatsapp(wa.blob, "video", wa.media_key, threads=t),
            len(wa.blob),
            "dec",
            0,
        ),
        (
            "whatsapp decrypt (+ both hashes)",
            lambda: att.decrypt_whatsapp(
                wa.blob,
                "video",
                wa.media_key,
                file_sha256=wa.file_sha256,
                file_enc_sha256=wa.file_enc_sha256,
                threads=t,
            ),
            len(wa.blob),
            "dec",
            2,
        ),
    ]


def fresh_memory_rate(n: int) -> float:
    """Bytes per second of filling a new n-byte ``bytes`` (allocation and page faults)."""
    one = b"\x01"
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        b = one * n
        best = max(best, n / max(time.perf_counter() - t0, 1e-9))
        del b
    return best


def run_once(a: argparse.Namespace) -> dict[str, float]:
    aes_enc = openssl_speed(["-evp", "aes-256-cbc"], a.seconds)
    aes_dec = openssl_speed(["-decrypt", "-evp", "aes-256-cbc"], a.seconds)
    sha = openssl_speed(["-evp", "sha256"], a.seconds)
    floor_enc = 1 / (1 / aes_enc + 1 / sha)
    refs = {"enc": floor_enc, "dec": sha}
    # One core, every pass back to back at openssl's speed.
    aes = {"enc": aes_enc, "dec": aes_dec}
    n = a.size_mib << 20
    mb = 1e6
    print(f"openssl aes-256-cbc encrypt  {aes_enc / mb:8.0f} MB/s")
    print(f"openssl aes-256-cbc decrypt  {aes_dec / mb:8.0f} MB/s")
    print(f"openssl sha256               {sha / mb:8.0f} MB/s")
    print(f"serial floor 1/(1/AES+1/SHA) {floor_enc / mb:8.0f} MB/s")
    print(f"fresh memory ({a.size_mib} MiB bytes)   {fresh_memory_rate(n) / mb:8.0f} MB/s")
    ratios: dict[str, float] = {}
    print(
        f"{'ours, ' + str(a.size_mib) + ' MiB, threads=1':34} {'MB/s':>7} {'ref':>6} "
        f"{'ratio':>6} {'ceiling':>8}"
    )
    for name, fn, nbytes, kind, extra in cases(n, 1):
        r = ours(fn, nbytes, a.seconds).thread_cpu
        ref = refs[kind]
        ceiling = 1 / (1 / aes[kind] + (1 + extra) / sha) / ref
        ratios[name] = r / ref
        target = "ok" if r >= 0.85 * ref else "below 85%"
        print(f"{name:34} {r / mb:7.0f} {ref / mb:6.0f} {r / ref:6.2f} {ceiling:8.2f}  {target}")
    if a.two:
        print(
            f"{'ours, ' + str(a.size_mib) + ' MiB, threads=2':34} {'MB/s':>7} {'ref':>6} "
            f"{'ratio':>6} {'cpu MB/s':>9}  (wall clock; cpu = whole process)"
        )
        for name, fn, nbytes, kind, _extra in cases(n, 2):
            rr = ours(fn, nbytes, a.seconds)
            ref = refs[kind]
            ratios[name + " [2 threads]"] = rr.wall / ref
            print(
                f"{name:34} {rr.wall / mb:7.0f} {ref / mb:6.0f} {rr.wall / ref:6.2f} "
                f"{rr.process_cpu / mb:9.0f}"
            )
    return ratios


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--seconds", type=int, default=1)
    p.add_argument("--size-mib", type=int, default=64)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--no-two", dest="two", action="store_false", help="skip the threads=2 rows")
    a = p.parse_args()
    if shutil.which("openssl") is None:
        print("openssl not found", file=sys.stderr)
        return 1
    runs = []
    for i in range(a.repeat):
        if a.repeat > 1:
            print(f"--- run {i + 1}/{a.repeat} (load average {os.getloadavg()[0]:.1f})")
        runs.append(run_once(a))
    if a.repeat > 1:
        print(f"--- median ratio over {a.repeat} runs ({a.size_mib} MiB)")
        for name in runs[0]:
            vals = [r[name] for r in runs]
            spread = " ".join(f"{v:.2f}" for v in vals)
            print(f"{name:46} {statistics.median(vals):6.2f}   ({spread})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
