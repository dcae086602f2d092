"""textsecure against every peer: per-operation times of the same workloads in each library,
each in its own process, the programs alternated round after round.

    .venv/bin/python benches/peers/run.py                # `make bench-peers`: 3 rounds,
                                                         # writes docs/benchmarks.md + .png
    BENCH_QUICK=1 .venv/bin/python benches/peers/run.py  # smoke test: 1 round, tiny budgets,
                                                         # writes benches/peers/results/

At bench time only, and never into the project's .venv or tests/interop: the Python peers are
installed into benches/peers/.venv-peers (pip, pinned below), the Node peers into
benches/peers/node_modules (npm ci from package-lock.json). A peer that cannot be installed or
loaded is skipped and the reason is written into the results.

Workloads (100-byte messages): handshake (process the recipient's bundle, encrypt the first
message, the recipient decrypts it), in-chain encrypt, in-chain decrypt, ping-pong round trip
(each message a DH ratchet step), group encrypt and group decrypt (sender keys; Megolm for the
Matrix libraries), and one X25519 agreement where the library exposes it. Every workload is
verified to round-trip (decrypt returns the plaintext) before it is timed (harness.py).

The machine's speed drifts (shared cores), so the programs run A, B, C, ..., A, B, C, ...
for BENCH_ROUNDS rounds (3; 1 with BENCH_QUICK=1) and a speedup is the median over rounds of
the ratio of the two times measured in the same round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS_VENV = HERE / ".venv-peers"
PEERS_PY = PEERS_VENV / "bin" / "python"
TS_PY = Path(os.environ.get("BENCH_TS_PYTHON", ROOT / ".venv" / "bin" / "python"))
QUICK = os.environ.get("BENCH_QUICK") == "1"

# Python peers: name -> pinned requirements (installed one peer at a time, so one that fails
# to install skips only itself).
PY_REQUIREMENTS: dict[str, list[str]] = {
    "vodozemac": ["vodozemac==0.10.0"],
    "python-olm": ["python-olm==3.2.16"],
    "python-axolotl": ["python-axolotl==0.2.3", "protobuf==3.20.3"],
    "doubleratchet+x3dh": ["doubleratchet==1.3.0", "x3dh==1.3.0"],
    "matplotlib": ["matplotlib==3.11.2"],  # the chart, not a peer
}


class Program:
    def __init__(self, name: str, argv: list[str], kind: str) -> None:
        self.name = name
        self.argv = argv
        self.kind = kind  # "textsecure", "python" or "node"
        self.skip: str | None = None  # why it does not run
        self.version = ""
        self.rounds: list[dict[str, Any]] = []  # one worker report per round


def programs() -> list[Program]:
    py = str(PEERS_PY)
    return [
        Program("textsecure", [str(TS_PY), str(HERE / "ts_worker.py")], "textsecure"),
        Program("vodozemac", [py, str(HERE / "vodozemac_worker.py")], "python"),
        Program("python-olm", [py, str(HERE / "olm_worker.py")], "python"),
        Program("python-axolotl", [py, str(HERE / "axolotl_worker.py")], "python"),
        Program("doubleratchet+x3dh", [py, str(HERE / "syndace_worker.py")], "python"),
        Program("libsignal-client", ["node", str(HERE / "libsignal_client.mjs")], "node"),
        Program("libsignal-node", ["node", str(HERE / "libsignal_node.mjs")], "node"),
    ]


def log(msg: str) -> None:
    print(f"[bench-peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 6) -> str:
    return " / ".join(x.strip() for x in text.strip().splitlines()[-lines:] if x.strip())


# -- installation (bench time only) ---------------------------------------------------------


def install_python_peers() -> dict[str, str]:
    """Returns {peer: why it could not be installed}."""
    failed: dict[str, str] = {}
    if not PEERS_PY.exists():
        log(f"creating {PEERS_VENV.relative_to(ROOT)}")
        base = getattr(sys, "_base_executable", sys.executable)
        r = subprocess.run([base, "-m", "venv", str(PEERS_VENV)], capture_output=True, text=True)
        if r.returncode != 0:
            reason = f"python -m venv failed: {tail(r.stderr)}"
            return dict.fromkeys(PY_REQUIREMENTS, reason)
    for name, reqs in PY_REQUIREMENTS.items():
        stamp = PEERS_VENV / f".installed-{name.replace('+', '-')}"
        if stamp.exists() and stamp.read_text() == " ".join(reqs):
            continue
        log(f"pip install {' '.join(reqs)}")
        r = subprocess.run(
            [str(PEERS_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            failed[name] = f"pip install {' '.join(reqs)} failed: {tail(r.stderr or r.stdout)}"
            log(failed[name])
            stamp.unlink(missing_ok=True)
        else:
            stamp.write_text(" ".join(reqs))
    return failed


def install_node_peers() -> str | None:
    """Returns why the Node peers cannot run, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    lock = HERE / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes() + (HERE / "package.json").read_bytes()).hexdigest()
    stamp = HERE / "node_modules" / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return None
    log("npm ci in benches/peers")
    r = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return f"npm ci failed: {tail(r.stderr or r.stdout)}"
    stamp.write_text(digest)
    return None


def wait_for_textsecure() -> str | None:
    """The extension may be being rebuilt by someone else: retry the import for a while."""
    last = ""
    for attempt in range(20):
        r = subprocess.run(
            [str(TS_PY), "-c", "import textsecure; print(textsecure.__version__)"],
            capture_output=True,
            text=True,
        )
        if r.returncode == 0:
            return None
        last = tail(r.stderr, 2)
        log(f"textsecure does not import yet ({last}); retrying in 15 s ({attempt + 1}/20)")
        time.sleep(15)
    return f"textsecure does not import: {last}"


# -- running --------------------------------------------------------------------------------


def run_program(p: Program, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for attempt in range(3):
        t0 = time.perf_counter()
        try:
            r = subprocess.run(
                p.argv, cwd=HERE, capture_output=True, text=True, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            return {"impl": p.name, "error": f"timed out after {timeout:.0f} s"}
        took = time.perf_counter() - t0
        sys.stderr.write(r.stderr)
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        try:
            out: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            out = {"impl": p.name, "error": f"exit {r.returncode}, no result: {tail(r.stderr)}"}
        out["seconds"] = took
        # textsecure's extension may be mid-rebuild: try again shortly.
        if p.kind == "textsecure" and "cannot import" in out.get("error", "") and attempt < 2:
            log(f"textsecure: {out['error']}; retrying in 20 s")
            time.sleep(20)
            continue
        return out
    return out


def key(row: dict[str, Any]) -> str:
    return f"{row['workload']}/{row['variant']}"


def aggregate(progs: list[Program]) -> dict[str, Any]:
    """Per program and workload: the median over rounds of the per-round medians, and for
    peers the median over rounds of peer / textsecure (the textsecure time of the same round)."""
    ts = next(p for p in progs if p.name == "textsecure")
    out: dict[str, Any] = {}
    for p in progs:
        rows: dict[str, dict[str, Any]] = {}
        for rnd, rep in enumerate(p.rounds):
            for row in rep.get("rows", []):
                agg = rows.setdefault(key(row), {**row, "times": [], "ratios": [], "errors": []})
                if "median_s" in row:
                    agg["times"].append(row["median_s"])
                elif "error" in row:
                    agg["errors"].append(row["error"])
                if p is ts or "median_s" not in row or not row.get("compare"):
                    continue
                if rnd >= len(ts.rounds):
                    continue
                ref = {key(r): r for r in ts.rounds[rnd].get("rows", [])}
                tsrow = ref.get(f"{row['workload']}/{row['compare']}")
                if tsrow and "median_s" in tsrow:
                    agg["ratios"].append(row["median_s"] / tsrow["median_s"])
        for agg in rows.values():
            agg.pop("median_s", None)
            agg.pop("samples", None)
            agg["median_s"] = statistics.median(agg["times"]) if agg["times"] else None
            agg["speedup"] = statistics.median(agg["ratios"]) if agg["ratios"] else None
        out[p.name] = rows
    return out


# -- report ---------------------------------------------------------------------------------

WORKLOADS = [
    ("handshake", "handshake (process bundle + first message + its decryption)"),
    ("encrypt", "in-chain encrypt"),
    ("decrypt", "in-chain decrypt"),
    ("pingpong", "ping-pong round trip (2 messages, 2 DH ratchet steps)"),
    ("group_encrypt", "group encrypt"),
    ("group_decrypt", "group decrypt"),
]
TS_FORMS = {
    "v3": "MemoryStore, v3 (X3DH)",
    "v4": "MemoryStore, v4 (PQXDH + SPQR)",
    "sqlite-v3": "SQLiteStore, v3",
    "sqlite-v4": "SQLiteStore, v4",
    "current": "GroupCipher (libsignal's format)",
    "legacy": "LegacyGroupCipher (WhatsApp-era format)",
}


def ts_form(variant: str) -> str:
    if variant == "":
        return "`PrivateKey.agree`"
    if variant in TS_FORMS:
        return TS_FORMS[variant]
    if variant.startswith("batch"):
        senders, _, rest = variant[5:].partition("-")
        store = "SQLiteStore" if rest.startswith("sqlite") else "MemoryStore"
        v = rest.rsplit("-", 1)[-1]
        what = "1 session" if senders == "1" else f"{senders} sessions"
        return f"`*_many` batch, {store}, {v}, {what}"
    return variant


def us(s: float | None) -> str:
    if s is None:
        return "—"
    v = s * 1e6
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" if v >= 10 else f"{v:.2f}"


def times(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def spread(ratios: list[float]) -> str:
    if len(ratios) < 2:
        return ""
    return f" ({times(min(ratios))}-{times(max(ratios))})"


def cpu_model() -> tuple[str, int]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown", os.cpu_count() or 0
    models = [
        ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")
    ]
    cores = sum(1 for ln in text.splitlines() if ln.startswith("processor"))
    return (models[0] if models else "unknown"), cores


def load() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def why_not(p: Program, rows: dict[str, Any], workload: str) -> str:
    if p.skip:
        return f"skipped: {p.skip}"
    errors = [r.get("error") for r in p.rounds if r.get("error")]
    if errors:
        return f"failed: {errors[0]}"
    cand = [r for k, r in rows.items() if k.startswith(workload + "/")]
    for r in cand:
        if r.get("unsupported"):
            return f"not supported: {r['unsupported']}"
        if r["errors"]:
            return f"failed: {r['errors'][0]}"
    return "not measured"


def write_report(
    progs: list[Program], agg: dict[str, Any], meta: dict[str, Any], out: Path, chart: bool
) -> dict[str, Any]:
    ts_rows = agg.get("textsecure", {})
    peers = [p for p in progs if p.name != "textsecure"]
    cpu, cores = cpu_model()
    lines: list[str] = []
    w = lines.append
    # Not in a toctree of its own yet: orphan keeps `make docs` (-W) from failing on it.
    w("---")
    w("orphan: true")
    w("---")
    w("")
    w("# textsecure against other implementations")
    w("")
    w(
        "Per-operation times of the same workloads in textsecure and in every other implementation"
        " we could install from a registry, 100-byte messages, each library through its own"
        " in-memory store (textsecure also on `SQLiteStore` and through its batch calls). Written"
        " by `benches/peers/run.py`; a new run replaces this file and the chart."
    )
    w("")
    w(
        f"- Machine: {cpu}, {cores} cores (`/proc/cpuinfo`),"
        f" {platform.system()} {platform.release()}"
    )
    w(f"- Date: {meta['date']} UTC, {meta['seconds'] / 60:.1f} min")
    w(f"- Command: `{meta['command']}` (`make bench-peers`)")
    w(
        f"- Rounds: {meta['rounds']}, the programs alternated in this order each round: "
        + ", ".join(p.name for p in progs)
        + f"; each workload: about {meta['budget']} s per repetition, {meta['reps']} repetitions"
        " (median per operation), then the median over rounds."
    )
    w(f"- Load average (1/5/15 min): {meta['load_before']} before, {load()} after.")
    w(
        "- Versions: "
        + ", ".join(f"{p.name} {p.version}" for p in progs if p.version)
        + f"; Python {platform.python_version()}, Node {meta['node'] or 'absent'}."
    )
    if meta["quick"]:
        w("- **BENCH_QUICK=1**: one round, tiny budgets: a smoke test, not a measurement.")
    w("")
    w(
        "**speedup** = peer time / textsecure time, each the median of its repetitions in one"
        " round, then the median over rounds of these per-round ratios (min-max in brackets). The"
        " machine's speed drifts by up to 2x within minutes, so only ratios within a round mean"
        " much; the absolute times are this shared machine's, under its load. Each peer is"
        " compared with the textsecure form that does the same work: X3DH peers (python-axolotl,"
        " libsignal-node, Syndace's libraries) and Olm with textsecure v3 on `MemoryStore`,"
        " libsignal-client 0.103 (PQXDH + SPQR only) with v4, Megolm and libsignal-client's"
        " sender keys with `GroupCipher`, python-axolotl's sender keys with `LegacyGroupCipher`."
    )
    w("")
    if chart:
        w(f"![per-operation times, log scale]({out.with_suffix('.png').name})")
        w("")
    w("## Peers")
    w("")
    w(
        "A speedup above 1 means textsecure is faster, below 1 that the peer is (e.g. 0.50x: the"
        " peer takes half textsecure's time)."
    )
    w("")
    w(
        "| workload | implementation | what | µs per op | textsecure form | textsecure µs"
        " | speedup (min-max) |"
    )
    w("|---|---|---|---:|---|---:|---:|")
    chart_data: list[dict[str, Any]] = []
    for wname, title in WORKLOADS:
        groups: dict[str, list[dict[str, Any]]] = {}  # textsecure form -> its bars
        for p in peers:
            rows = agg.get(p.name, {})
            cand = [r for k, r in rows.items() if k.startswith(wname + "/") and r["median_s"]]
            if not cand:
                w(f"| {title} | {p.name} | {why_not(p, rows, wname)} | | | | |")
                continue
            for r in cand:
                ref = ts_rows.get(f"{wname}/{r['compare']}", {})
                w(
                    f"| {title} | {p.name} | {r.get('note') or ''} | {us(r['median_s'])} |"
                    f" {ts_form(r['compare'])} | {us(ref.get('median_s'))} |"
                    f" **{times(r['speedup'])}**{spread(r['ratios'])} |"
                )
                if not ref.get("median_s"):
                    continue
                bars = groups.setdefault(
                    r["compare"],
                    [
                        {
                            "label": f"textsecure {r['compare']}",
                            "us": ref["median_s"] * 1e6,
                            "ts": True,
                        }
                    ],
                )
                bars.append(
                    {
                        "label": p.name,
                        "us": r["median_s"] * 1e6,
                        "speedup": r["speedup"],
                        "ts": False,
                    }
                )
        flat = [b for bars in groups.values() for b in bars]
        chart_data.append({"workload": title, "bars": flat})
    w("")
    w("## textsecure's forms")
    w("")
    w(
        "The same workloads on `SQLiteStore` (one temporary database file, WAL, one account"
        " per store; each cipher call its own transaction) and through"
        " `textsecure.encrypt_many` / `decrypt_many` (one call for the whole batch, items in"
        " order; with 32 sessions the items alternate between 32 senders, so the batch can"
        " spread over the cores; the batch rows' sessions are set up once and their chains"
        " continue from repetition to repetition). **vs MemoryStore**: this form's time / the"
        " MemoryStore per-call time of the same version in the same round (below 1 is faster)."
    )
    w("")
    w("| workload | form | µs per op | vs MemoryStore per call |")
    w("|---|---|---:|---:|")
    ts_p = next(p for p in progs if p.name == "textsecure")
    for wname, title in [*WORKLOADS, ("x25519", "one X25519 agreement")]:
        for k, r in ts_rows.items():
            if not k.startswith(wname + "/"):
                continue
            if r["median_s"] is None:
                w(f"| {title} | {ts_form(r['variant'])} | failed: {(r['errors'] or ['?'])[0]} | |")
                continue
            base = r["variant"].rsplit("-", 1)[-1]
            rel: list[float] = []
            if base in ("v3", "v4") and r["variant"] != base:
                for rep in ts_p.rounds:
                    idx = {key(x): x for x in rep.get("rows", [])}
                    a, b = idx.get(k), idx.get(f"{wname}/{base}")
                    if a and b and "median_s" in a and "median_s" in b:
                        rel.append(a["median_s"] / b["median_s"])
            ratio = f"{times(statistics.median(rel))}{spread(rel)}" if rel else ""
            w(f"| {title} | {ts_form(r['variant'])} | {us(r['median_s'])} | {ratio} |")
    batch = any(r.get("info", {}).get("batch_calls") for r in ts_p.rounds)
    if not batch:
        w("")
        w("This build of textsecure has no `decrypt_many` / `encrypt_many`: no batch rows.")
    w("")
    w("## The X25519 floor")
    w("")
    w(
        "A ping-pong round trip costs each side one DH ratchet step per received message: two"
        " X25519 agreements and one key generation, so at least 4 agreements and 2 key"
        " generations per round trip whatever the implementation (a key generation, a fixed-base"
        " multiplication, is cheaper than an agreement). One agreement, measured through each"
        " library's own call where it exposes one (textsecure: `PrivateKey.agree`;"
        " libsignal-client: `PrivateKey.agree`; libsignal-node: its `curve.calculateAgreement`;"
        " python-axolotl: `Curve.calculateAgreement`; Syndace: `xeddsa.x25519`):"
    )
    w("")
    w("| implementation | µs per X25519 | ping-pong µs | ping-pong / X25519 |")
    w("|---|---:|---:|---:|")
    for p in progs:
        rows = agg.get(p.name, {})
        x = rows.get("x25519/", {}).get("median_s")
        if not x:
            continue
        pp = [
            (f"{p.name} ({r['variant']})" if p.name == "textsecure" else p.name, r["median_s"])
            for k, r in rows.items()
            if k.startswith("pingpong/") and r["median_s"] and "sqlite" not in k
        ]
        for label, v in pp or [(p.name, None)]:
            ratio = f"{v / x:.1f}" if v else "—"
            w(f"| {label} | {us(x)} | {us(v)} | {ratio} |")
    w("")
    w("## Notes")
    w("")
    w(
        "- Wire formats: every timed encrypt ends with the bytes a transport carries and every"
        " decrypt starts from them (textsecure, libsignal-client, libsignal-node, python-axolotl,"
        " vodozemac: binary; python-olm: libolm's base64 text, and its decrypt returns `str`,"
        " encoded back to bytes). Syndace's libraries define no wire format: their messages are"
        " passed as objects, so their rows carry no serialization."
    )
    w(
        "- Stores: textsecure `MemoryStore`; libsignal-client and libsignal-node: Maps holding the"
        " libraries' record objects (no serialization); python-axolotl: the in-memory store it"
        " ships (it keeps records serialized); vodozemac, python-olm and Syndace: the session"
        " objects themselves."
    )
    w(
        "- Handshakes: the recipient's keys are generated before the timing starts. textsecure,"
        " libsignal-client, libsignal-node and python-axolotl verify the signed prekey's"
        " signature while processing the bundle, Syndace's X3DH too; the Olm rows verify the"
        " Ed25519 signature on the one-time key (as Matrix clients do) before creating the"
        " outbound session. The Olm handshake is a triple DH, no signed prekey, no PQ KEM."
    )
    w(
        "- In-chain rows: after the session carried one message each way, one more message goes"
        " to the receiver before the batch, so no DH ratchet step is timed in them."
    )
    w(
        "- The Node workers await every call (the libraries' APIs are async); Syndace's"
        " coroutines are driven without an event loop (they never suspend)."
    )
    skipped = [p for p in progs if p.skip]
    if skipped:
        w("")
        w("## Skipped")
        w("")
        for p in skipped:
            w(f"- **{p.name}**: {p.skip}")
    failed = [(p, rep["error"]) for p in progs for rep in p.rounds if rep.get("error")]
    if failed:
        w("")
        w("## Failed runs")
        w("")
        for p, err in failed:
            w(f"- **{p.name}**: {err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return {"workloads": chart_data, "title": f"{cpu}, {cores} cores, {meta['date']} UTC"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, help="the markdown to write (the PNG goes beside it)")
    ap.add_argument(
        "--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 1 if QUICK else 3))
    )
    ap.add_argument("--only", help="comma-separated programs (textsecure always runs)")
    ap.add_argument("--no-install", action="store_true", help="use what is installed")
    args = ap.parse_args()
    out: Path = args.out or (
        HERE / "results" / "benchmarks-quick.md" if QUICK else ROOT / "docs" / "benchmarks.md"
    )
    started = time.time()
    load_before = load()
    progs = programs()
    if args.only:
        keep = {"textsecure", *args.only.split(",")}
        progs = [p for p in progs if p.name in keep]

    py_failed: dict[str, str] = {}
    node_failed: str | None = None
    if not args.no_install:
        py_failed = install_python_peers()
        node_failed = install_node_peers()
    if shutil.which("node") is None:
        node_failed = node_failed or "`node` is not on PATH"
    for p in progs:
        if p.kind == "python" and p.name in py_failed:
            p.skip = py_failed[p.name]
        elif p.kind == "python" and not PEERS_PY.exists():
            p.skip = f"no {PEERS_VENV.relative_to(ROOT)}"
        elif p.kind == "node" and node_failed:
            p.skip = node_failed
    ts_missing = wait_for_textsecure()
    if ts_missing:
        sys.exit(f"bench-peers: {ts_missing} (run `make build`)")

    timeout = 300.0 if QUICK else 900.0
    for rnd in range(args.rounds):
        for p in progs:
            if p.skip:
                continue
            log(f"round {rnd + 1}/{args.rounds}: {p.name}")
            rep = run_program(p, timeout)
            p.rounds.append(rep)
            p.version = rep.get("version", p.version)
            if rep.get("error"):
                log(f"{p.name}: {rep['error']}")
    for p in progs:
        if not p.skip and p.rounds and all(r.get("error") for r in p.rounds):
            p.skip = p.rounds[0]["error"]  # e.g. the library does not load: say so, once

    agg = aggregate(progs)
    budget = os.environ.get("BENCH_BUDGET", "0.02" if QUICK else "0.15")
    reps = os.environ.get("BENCH_REPS", "3" if QUICK else "5")
    node_v = ""
    if shutil.which("node"):
        node_v = subprocess.run(
            ["node", "--version"], capture_output=True, text=True
        ).stdout.strip()
    cmd = " ".join(
        [*(["BENCH_QUICK=1"] if QUICK else []), os.path.relpath(sys.executable, ROOT), *sys.argv]
    )
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "seconds": time.time() - started,
        "command": cmd,
        "rounds": args.rounds,
        "budget": budget,
        "reps": reps,
        "load_before": load_before,
        "node": node_v,
        "quick": QUICK,
    }
    raw = HERE / "results" / f"raw-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(
        json.dumps(
            {
                "meta": meta,
                "programs": [{"name": p.name, "skip": p.skip, "rounds": p.rounds} for p in progs],
            },
            indent=1,
        )
    )
    can_chart = "matplotlib" not in py_failed and PEERS_PY.exists()
    chart_data = write_report(progs, agg, meta, out, can_chart)
    if can_chart:
        data = HERE / "results" / "chart.json"
        data.write_text(json.dumps(chart_data))
        r = subprocess.run(
            [str(PEERS_PY), str(HERE / "chart.py"), str(data), str(out.with_suffix(".png"))],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            log(f"chart failed: {tail(r.stderr)}")
            write_report(progs, agg, meta, out, False)  # without the missing picture
    log(
        f"wrote {out} (raw results: {raw.relative_to(ROOT)})"
        f" in {(time.time() - started) / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
