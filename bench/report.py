"""Write bench/out/report.md and its PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.results import FAIL, PASS, Section
from bench.server import RssSampler

RSS_PLOT, PHASES_PLOT = "rss.png", "rss_phases.png"
LATENCY_PLOT, THROUGHPUT_PLOT = "listing_latency.png", "throughput.png"


def plot_rss(sampler: RssSampler, out: Path) -> bool:
    if not sampler.times:
        return False
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(
        sampler.times, [r / 2**20 for r in sampler.rss], lw=1, color="black", label="server RSS (+ children)"
    )
    ax.axhline(200, color="red", ls="--", lw=1, label="limit 200 MB")
    colors = plt.get_cmap("tab10")
    for i, ph in enumerate(sampler.phases):
        end = ph.end if ph.end is not None else sampler.times[-1]
        ax.axvspan(ph.start, end, alpha=0.18, color=colors(i % 10), label=ph.name)
    ax.set_xlabel("seconds since the server was ready")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0, top=max(220, max(sampler.rss) / 2**20 * 1.1))
    ax.set_title("xnatd RSS, sampled every 50 ms, through the whole benchmark run")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def plot_rss_phases(sampler: RssSampler, out: Path) -> bool:
    """One small panel per phase, time relative to its start: the whole-run plot squeezes short phases."""
    phases = [ph for ph in sampler.phases if ph.end is not None]
    if not phases or not sampler.times:
        return False
    cols = 4
    rows = (len(phases) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.6 * rows), squeeze=False)
    top = max(220, max(sampler.rss) / 2**20 * 1.1)
    for ax, ph in zip(axes.flat, phases, strict=False):
        assert ph.end is not None
        pts = [(t - ph.start, r / 2**20) for t, r in zip(sampler.times, sampler.rss, strict=True)]
        pts = [(t, r) for t, r in pts if 0 <= t <= ph.end - ph.start]
        if pts:
            ax.plot([t for t, _ in pts], [r for _, r in pts], lw=1, color="black", marker=".", ms=2)
        ax.axhline(200, color="red", ls="--", lw=1)
        ax.set_ylim(0, top)
        peak = max((r for _, r in pts), default=0.0)
        ax.set_title(f"{ph.name}\n{ph.end - ph.start:.1f} s, max {peak:.0f} MB", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(phases) :]:
        ax.axis("off")
    fig.supxlabel("seconds since the phase started", fontsize=9)
    fig.supylabel("server RSS (MB)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True


def plot_latency(latencies: list[float], basic: list[float], out: Path) -> bool:
    if not latencies:
        return False
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(0.95 * (len(ms) - 1) + 0.5))]
    top = max(ms[-1], *(x * 1000 for x in basic)) if basic else ms[-1]
    show_target = top > 40  # otherwise the 100 ms line would squash the data into one bin
    fig, (h, c) = plt.subplots(1, 2, figsize=(11, 4))
    h.hist(ms, bins=40, color="steelblue")
    h.axvline(p95, color="black", ls=":", lw=1, label=f"p95 = {p95:.1f} ms")
    if show_target:
        h.axvline(100, color="red", ls="--", lw=1, label="p95 target 100 ms")
    h.set_xlabel("latency (ms)")
    h.set_ylabel("requests")
    h.set_title(f"Paged experiment listing: {len(ms)} requests" + ("" if show_target else " (target 100 ms)"))
    h.legend(fontsize=8)
    c.plot(ms, [(i + 1) / len(ms) for i in range(len(ms))], label="session cookie")
    if basic:
        bms = sorted(x * 1000 for x in basic)
        c.plot(bms, [(i + 1) / len(bms) for i in range(len(bms))], label="HTTP Basic every request")
    if show_target:
        c.axvline(100, color="red", ls="--", lw=1, label="target 100 ms")
    c.axhline(0.95, color="grey", ls=":", lw=1)
    c.set_xlabel("latency (ms)")
    c.set_ylabel("fraction of requests")
    c.set_title("CDF")
    c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def plot_throughput(items: list[tuple[str, float, float]], out: Path) -> bool:
    if not items:
        return False
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(items))
    ax.bar([x - 0.2 for x in xs], [s for _, s, _ in items], width=0.4, label="xnatd")
    ax.bar([x + 0.2 for x in xs], [b for _, _, b in items], width=0.4, label="baseline (same disk)")
    ax.set_xticks(list(xs), [label for label, _, _ in items], fontsize=8)
    ax.set_ylabel("MB/s")
    ax.set_title("Throughput: xnatd vs baseline (cp + fsync / zipfile ZIP_STORED)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(sections: list[Section], only_targets: bool) -> list[str]:
    lines = [
        "| # | measurement | value | baseline (same run, same disk) | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for sec in sections:
        num = sec.title.split(".")[0]
        for row in sec.rows:
            if only_targets and row.verdict not in (PASS, FAIL):
                continue
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "—"
            verdict = f"**{row.verdict}**" if row.verdict in (PASS, FAIL) else row.verdict
            cells = [num, row.measurement, row.value, row.baseline, ratio, row.target, verdict]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if sec.error and only_targets:
            lines.append(f"| {num} | {_cell(sec.title)} | did not complete | — | — | — | **ERROR** |")
    return lines


def write_report(
    out: Path,
    sections: list[Section],
    header: list[tuple[str, str]],
    sampler: RssSampler | None,
    latencies: list[float],
    basic: list[float],
    throughput: list[tuple[str, float, float]],
    quick: bool,
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plots: list[tuple[str, str]] = []
    if sampler is not None and plot_rss(sampler, out / RSS_PLOT):
        plots.append((RSS_PLOT, "Server RSS over the whole run; shaded spans are the benchmark phases"))
    if sampler is not None and plot_rss_phases(sampler, out / PHASES_PLOT):
        plots.append((PHASES_PLOT, "Server RSS during each phase (50 ms samples; red line: 200 MB limit)"))
    if plot_latency(latencies, basic, out / LATENCY_PLOT):
        plots.append((LATENCY_PLOT, "Latency of the paged experiment listings: histogram and CDF"))
    if plot_throughput(throughput, out / THROUGHPUT_PLOT):
        plots.append((THROUGHPUT_PLOT, "Throughput of xnatd and of its baseline"))

    verdicts = [v for s in sections for v in s.verdicts]
    errors = [s for s in sections if s.error]
    lines = ["# xnatd benchmark report", ""]
    if quick:
        lines += [
            "> **Quick smoke run** (`--quick`): small sizes, to check that the suite works end to end. "
            "The figures are not the issue's measurements; run `make bench` for those.",
            "",
        ]
    lines += [f"- **{k}**: {v}" for k, v in header]
    lines += [
        f"- **Result**: {verdicts.count(PASS)} PASS, {verdicts.count(FAIL)} FAIL"
        + (f", {len(errors)} benchmark(s) did not complete" if errors else ""),
        "- MB = 2^20 bytes. Ratios are baseline time / xnatd time (above 1 means xnatd was faster).",
        "",
        "## Summary (targets)",
        "",
        *_table(sections, only_targets=True),
        "",
    ]
    for sec in sections:
        lines += [f"## {sec.title}", "", sec.what, ""]
        if sec.rows:
            lines += [*_table([sec], only_targets=False), ""]
        if sec.notes:
            lines += [f"- {n}" for n in sec.notes] + [""]
        if sec.error:
            lines += ["**This benchmark did not complete:**", "", "```", sec.error.strip(), "```", ""]
    if plots:
        lines += ["## Plots", ""]
        for name, caption in plots:
            lines += [f"![{caption}]({name})", "", f"*{caption}.*", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
