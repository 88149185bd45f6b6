"""What a benchmark reports: rows of (measurement, baseline, ratio, target, verdict) plus notes and plots."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, INFO = "PASS", "FAIL", "info"


@dataclass
class Row:
    measurement: str
    value: str
    baseline: str = "—"
    ratio: float | None = None
    target: str = "—"
    verdict: str = INFO

    @staticmethod
    def verdict_of(ok: bool) -> str:
        return PASS if ok else FAIL


@dataclass
class Section:
    key: str
    title: str
    what: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)  # (file name, caption)
    error: str | None = None

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    @property
    def verdicts(self) -> list[str]:
        return [r.verdict for r in self.rows if r.verdict in (PASS, FAIL)]


def mb(n: float) -> float:
    return n / (1024 * 1024)


def fmt_rate(nbytes: float, seconds: float) -> str:
    return f"{mb(nbytes) / seconds:,.1f} MB/s ({seconds:,.2f} s)" if seconds > 0 else "n/a"


def fmt_mb(nbytes: float) -> str:
    return f"{mb(nbytes):,.1f} MB"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"
