"""``docs/performance.md`` from one run of every benchmark, with PNG plots of latencies.

``microneedling bench --write-docs docs`` runs all suites and writes the page, the plots
under ``docs/performance/`` and the raw results (``results.json``), so every figure on the
page comes from the same run on the same machine, with the command that gives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Row = tuple[str, str, str, str, str]  # suite, engine, figure, value, command


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def _runs(summary: dict[str, Any]) -> str:
    """How many runs a median and p95 are of: below 20, the nearest-rank p95 is the slowest
    run, and the page says so rather than let it pass for a tail."""
    runs = summary.get("runs")
    if not isinstance(runs, int):
        return ""
    return f" ({runs} runs{'; p95 = the slowest' if runs < 20 else ''})"


def _engine_rows(suite: dict[str, Any]) -> Iterator[Row]:
    command = "microneedling bench --only engines"
    for key, what in (
        ("baseline_parse_intakes", "intakes"),
        ("baseline_parse_triage_reports", "side-effect reports"),
    ):
        if key in suite:
            figure = f"parse {suite['size']} {what} (baseline)"
            yield ("engines", "none", figure, _ms(suite[key]["median_s"]), command)
    for name in ("screen", "plan", "triage"):
        part = suite[name]
        ratio = part.get("ratio_to_baseline_median")
        yield (
            "engines",
            "none",
            f"{name} {suite['size']} items: median / p95",
            f"{_ms(part['median_s'])} / {_ms(part['p95_s'])}{_runs(part)} "
            + (
                f"({ratio:.2f}× parsing its input)"
                if ratio is not None
                else "(no baseline: its input is not parsed)"
            ),
            command,
        )


def _per_engine_rows(name: str, suite: dict[str, Any]) -> Iterator[Row]:
    command = f"microneedling bench --only {name}"
    for engine, result in suite.items():
        if "error" in result:
            yield (name, engine, "error", " ".join(result["error"]), command)
            continue
        for figure, value in _figures(name, result):
            yield (name, engine, figure, value, command)


def _figures(name: str, r: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if name == "scheduling":
        month = r["month_availability"]
        course: dict[str, Any] = next(
            (v for k, v in r.items() if k.startswith("course_search")), {}
        )
        yield (
            "a month of slots: median / p95",
            f"{_ms(month['median_s'])} / {_ms(month['p95_s'])}{_runs(month)}",
        )
        yield ("naive per-day loop ÷ engine (median)", f"{r['ratio_naive_to_engine_median']:.1f}×")
        if course:
            yield (
                "course search: median / p95",
                f"{_ms(course['median_s'])} / {_ms(course['p95_s'])}{_runs(course)}",
            )
    elif name == "notifications":
        yield (
            "messages delivered per second (median)",
            f"{r['deliver']['messages_per_second_median']:.0f}",
        )
        yield ("outbox ÷ direct SMTP time (median)", f"{r['ratio_outbox_to_direct_median']:.1f}×")
        yield (
            "queueing per message (median)",
            f"{r['queue_in_one_transaction']['per_message_median_ms']:.2f} ms",
        )
    elif name == "rehoming":
        for key, value in r.items():
            if isinstance(value, dict) and "median_s" in value:
                yield (
                    f"{key.replace('_', ' ')}: median / p95",
                    f"{value['median_s']:.1f} s / {value['p95_s']:.1f} s{_runs(value)}",
                )
            elif isinstance(value, int | float) and not isinstance(value, bool):
                yield (key.replace("_", " "), f"{value:g}")
    elif name == "load":
        each = r.get("booking_to_trivial_throughput_runs") or []
        spread = (
            f"; median of {len(each)} runs: " + ", ".join(f"{v:.3f}" for v in each)
            if len(each) > 1
            else ""
        )
        yield (
            "booking ÷ trivial endpoint throughput",
            f"{r['booking_to_trivial_throughput']:.2f} (target ≥ {r['target_ratio']}{spread})",
        )
        for endpoint, cost in r.get("cpu_ms_per_request", {}).items():
            if cost.get("total") is not None:
                parts = ", ".join(
                    f"{part.replace('_', ' ')} {value:.2f}"
                    for part, value in cost.items()
                    if part != "total" and value is not None
                )
                yield (
                    f"CPU per request, {endpoint} alone",
                    f"{cost['total']:.2f} ms ({parts})",
                )
        for phase, share in r.get("cpu_busy_share", {}).items():
            if share is not None:
                yield (
                    f"share of the cores busy, {phase.replace('_', ' ')}",
                    f"{share:.0%}",
                )
        if r.get("cpu_cost_ratio_trivial_to_booking") is not None:
            yield (
                "trivial ÷ booking CPU per request (the bound on the throughput ratio)",
                f"{r['cpu_cost_ratio_trivial_to_booking']:.2f}",
            )
        yield ("double bookings", str(r["double_bookings"]))
        yield ("server and connection errors", str(r["server_and_connection_errors"]))
        if "unsuccessful_answers" in r:
            yield (
                "answers that did not do the work (any non-2xx, a 202 booking)",
                str(r["unsuccessful_answers"]),
            )
        for phase in ("trivial_only", "booking_only", "busiest_hour_mixed"):
            for endpoint, s in r[phase].items():
                if not s.get("requests"):
                    continue
                ok = s.get("successes_per_second")
                yield (
                    f"{phase.replace('_', ' ')}: {endpoint}",
                    f"{s['requests_per_second']:.0f} req/s"
                    + (f" ({ok:.0f} 2xx/s)" if ok is not None else "")
                    + f"; p50 {s['p50_ms']:.1f} / p95 "
                    f"{s['p95_ms']:.1f} / p99 {s['p99_ms']:.1f} ms; statuses {s['statuses']}",
                )


def rows(results: dict[str, Any]) -> list[Row]:
    """Every figure of a ``run_benchmarks`` result as a table row."""
    found: list[Row] = []
    for name, suite in results["suites"].items():
        if name == "engines":
            found += _engine_rows(suite)
        else:
            found += _per_engine_rows(name, suite)
    return found


def _plots(results: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib  # noqa: PLC0415 (only for the page)

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    written = []
    load = results["suites"].get("load", {}).get("postgresql", {})
    if "busiest_hour_mixed" in load:
        figure, axis = plt.subplots(figsize=(8, 4.5))
        for phase, label in (("busiest_hour_mixed", ""), ("trivial_only", " (alone)")):
            for endpoint, s in load[phase].items():
                samples = s.get("samples_ms") or []
                if samples:
                    share = [(i + 1) / len(samples) for i in range(len(samples))]
                    axis.plot(samples, share, label=f"{endpoint}{label}")
        axis.set_xscale("log")
        axis.set_xlabel("latency (ms, log scale)")
        axis.set_ylabel("share of requests answered within")
        axis.set_title("Busiest hour on two app servers (PostgreSQL): latency CDF")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(folder / "load-latency.png", dpi=110)
        plt.close(figure)
        written.append("load-latency.png")
    series: list[tuple[str, list[float]]] = []
    for name in ("scheduling", "notifications", "rehoming"):
        for engine, result in results["suites"].get(name, {}).items():
            for key, value in result.items():
                if isinstance(value, dict) and value.get("samples_s"):
                    series.append((f"{name} {engine}: {key}", value["samples_s"]))
    if series:
        figure, axis = plt.subplots(figsize=(9, 0.45 * len(series) + 1.5))
        axis.boxplot(
            [s for _, s in series], orientation="horizontal", tick_labels=[n for n, _ in series]
        )
        axis.set_xscale("log")
        axis.set_xlabel("seconds per run (log scale)")
        axis.set_title("Run times of every measured step")
        axis.grid(True, which="both", axis="x", alpha=0.3)
        figure.tight_layout()
        figure.savefig(folder / "run-times.png", dpi=110)
        plt.close(figure)
        written.append("run-times.png")
    return written


def write_report(results: dict[str, Any], docs: Path, command: str) -> Path:
    """Write ``docs/performance.md``, its plots and ``results.json``; returns the page."""
    folder = docs / "performance"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plots = _plots(results, folder)
    machine = results["machine"]
    lines = [
        "# Performance",
        "",
        f"Generated by `{command}` (writes this page, `docs/performance/results.json` and the",
        "plots). Every figure comes from that one run, on this machine:",
        "",
        f"- {machine['platform']}, {machine['processor']}, Python {machine['python']}, "
        f"{machine.get('cpus', '?')} CPUs",
        f"- run on {machine.get('date', '?')}; each suite notes how noisy the machine was "
        "(`machine_reference` in the JSON: the spread of a fixed workload timed before and "
        "after).",
        "",
        "Ratios to a baseline measured in the same run matter more than single times: these "
        "machines are shared and noisy.",
        "",
        "| suite | engine | figure | value | command |",
        "| --- | --- | --- | --- | --- |",
    ]
    for suite, engine, figure, value, cmd in rows(results):
        lines.append(f"| {suite} | {engine} | {figure} | {value} | `{cmd}` |")
    lines.append("")
    if "load" in results["suites"]:
        lines += [
            "The load test's CPU rows say where the machine's time went in each lone phase: the",
            "app servers, the backends serving the bench's database on the local PostgreSQL",
            "server (ones that ended mid-phase included; not the server's shared background",
            "processes, nor other databases' backends on that shared server) and the load",
            "generator itself (every one of its client processes), read from `/proc` during",
            "and after the phase. With every core busy, requests per second is the CPU on hand",
            "divided by the CPU a request costs, so the booking ÷ trivial throughput ratio",
            "cannot exceed the ratio of their costs.",
            "",
        ]
    for plot in plots:
        lines += [f"![{plot}](performance/{plot})", ""]
    page = docs / "performance.md"
    page.write_text("\n".join(lines))
    return page
