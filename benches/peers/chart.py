"""The chart of docs/benchmarks.md: per-operation times (log scale) of each workload,
textsecure's like-for-like forms beside every peer, the speedup written on each peer's bar.

    benches/peers/.venv-peers/bin/python benches/peers/chart.py results/chart.json out.png

run.py writes the JSON and calls this with the peers' virtualenv (where matplotlib is)."""

from __future__ import annotations

import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter


def main() -> None:
    data = json.load(open(sys.argv[1]))
    panels = [w for w in data["workloads"] if w["bars"]]
    cols = 2
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.2 * rows + 0.8), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        bars = panel["bars"]
        labels = [b["label"] for b in bars]
        values = [b["us"] for b in bars]
        colors = ["#1f77b4" if b["ts"] else "#bbbbbb" for b in bars]
        y = range(len(bars))
        ax.barh(list(y), values, color=colors)
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(min(values) / 2, max(values) * 6)
        ax.set_title(panel["workload"], fontsize=10)
        ax.set_xlabel("µs per operation (log scale, lower is faster)", fontsize=8)
        ax.grid(axis="x", which="major", alpha=0.3)
        for i, b in enumerate(bars):
            text = f"{b['us']:,.1f} µs" if b["us"] < 100 else f"{b['us']:,.0f} µs"
            s = b.get("speedup")
            if not b["ts"] and s:
                if s >= 1:
                    text += (
                        f"  (textsecure {s:.2f}x faster)"
                        if s < 10
                        else f"  (textsecure {s:.0f}x faster)"
                    )
                else:
                    text += f"  (textsecure {1 / s:.2f}x slower)"
            ax.text(b["us"] * 1.08, i, text, va="center", fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"textsecure (blue) against other implementations, 100-byte messages\n{data['title']}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
