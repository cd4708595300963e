"""The report: one Markdown table per workload from the raw results."""

from __future__ import annotations

import math
from typing import Any

from .servers import BATCH_WORKLOADS, SERVER_CLASSES
from .workloads import PUBLISHER_CONNS

# --------------------------------------------------------------------------- report

def _fmt(v: float | int | None, digits: int = 0, none: str = "–") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def _ratio(v: float | None, ref: float | None) -> str:
    if v is None or ref is None or not ref or math.isnan(v) or math.isnan(ref):
        return "–"
    return f"{v / ref:.2f}×"


def _get(results: dict[str, Any], wl: str, name: str, key: str) -> Any:
    r = results.get(wl, {}).get(name)
    if not r or "error" in r:
        return None
    return r.get(key)


def _dup_extra(lg: dict[str, Any]) -> str:
    return f"{lg['dups']}/{lg['extra']}"


def _notes(r: dict[str, Any], rate: float | None = None) -> str:
    notes = []
    lg, pub = r["loadgen"], r["publisher"]
    if pub.get("exit") != "complete":
        notes.append(f"publisher cut at deadline ({pub['ok']:,}/{pub['count']:,} accepted)")
    elif rate and pub["rate"] < 0.95 * rate:
        notes.append(f"could not take {rate:,.0f}/s")
    if pub.get("errors"):
        codes = {k: v for k, v in pub.get("status", {}).items() if not k.startswith("2")}
        notes.append(f"{pub['errors']:,} publish errors {codes or ''}".strip())
    if lg.get("exit") in ("drain-max", "timeout"):
        notes.append("still delivering at deadline")
    elif lg.get("exit") == "drain-idle" and r["delivered"] < r["expected"]:
        notes.append("delivery stopped")
    if lg.get("failed"):
        notes.append(f"{lg['failed']} subscriptions failed (HTTP {lg.get('first_bad_status') or 'connect'})")
    if lg.get("closed_by_server"):
        notes.append(f"{lg['closed_by_server']} streams closed by server")
    redis = r.get("redis")
    if redis and "evalsha" in redis:
        notes.append(f"redis: {redis['evalsha']['usec_per_call']:.1f} µs/publish script, "
                     f"{redis.get('cpu_s', 0):.2f} s CPU in all")
    if r.get("foreign_cpu_cores", 0) >= 0.15:
        notes.append(f"⚠ other processes used {r['foreign_cpu_cores']:.2f} cores meanwhile")
    return "; ".join(notes)


def _per_event_us(r: dict[str, Any]) -> str:
    """Server CPU time per delivered event (the per-request cost when each event is one POST)."""
    return f"{r['server_cpu_s'] * 1e6 / r['delivered']:.0f}" if r.get("delivered") else "–"


def _connect_rate(r: dict[str, Any] | None) -> float | None:
    if not r or "error" in r or not r.get("connect_s"):
        return None
    return float(r["loadgen"]["established"]) / float(r["connect_s"])


def _servers_for(wl: str, servers: list[str]) -> list[str]:
    return [n for n in servers if SERVER_CLASSES[n].batch == 1 or wl in BATCH_WORKLOADS]


def render(results: dict[str, Any], servers: list[str], workloads: list[str], cfgs: dict[str, Any]) -> str:
    out = []
    for wl in workloads:
        cfg = cfgs[wl]
        if wl in ("fanout", "topics"):
            if wl == "fanout":
                title = (f"fanout — 1 topic × {cfg['conns']:,} subscribers, {cfg['events']:,} events of "
                         f"{cfg['size']} B, {PUBLISHER_CONNS} keep-alive publishers, as fast as accepted")
            else:
                title = (f"topics — {cfg['topics']:,} topics × {cfg['conns'] // cfg['topics']} subscriber, "
                         f"{cfg['events']:,} events round-robin, as fast as accepted")
            out.append(f"### {title}\n")
            out.append("| server | delivered events/s | vs sse-starlette | vs nchan | delivered / expected "
                       "| missing | dup/extra | gaps | publishes/s | server CPU | server µs / event "
                       "| loadgen CPU | notes |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            ref_s = _get(results, wl, "sse-starlette", "delivered_per_s")
            ref_n = _get(results, wl, "nchan", "delivered_per_s")
            for name in _servers_for(wl, servers):
                r = results.get(wl, {}).get(name)
                if not r or "error" in r:
                    out.append(f"| {name} | {(r or {}).get('error', 'not run')[:160]} |" + " |" * 11)
                    continue
                lg, pub = r["loadgen"], r["publisher"]
                v = r["delivered_per_s"]
                out.append(
                    f"| {name} | {_fmt(v)} | {_ratio(v, ref_s)} | {_ratio(v, ref_n)} "
                    f"| {r['delivered']:,} / {r['expected']:,} | {max(0, r['expected'] - r['delivered']):,} "
                    f"| {_dup_extra(lg)} | {lg['gaps']} | {_fmt(pub['rate'])} "
                    f"| {_fmt(r['server_cpu_pct'])} % | {_per_event_us(r)} "
                    f"| {_fmt(r['loadgen_cpu_pct'])} % ({r['loadgen_cpu_s']:.2f} s) | {_notes(r)} |")
        elif wl == "latency":
            out.append(f"### latency — {cfg['conns']} subscribers of 1 topic, {cfg['rate']:,} events/s "
                       f"for {cfg['seconds']} s (send timestamp → parsed by the subscriber)\n")
            out.append("| server | p50 ms | p99 ms | p99.9 ms | max ms | p99 vs sse-starlette | p99 vs nchan "
                       "| p50 / p99 vs raw "
                       "| delivered / expected | missing | dup/extra | publish rate | server CPU "
                       "| loadgen CPU "
                       "| notes |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

            def pct(name: str, q: str, wl: str = wl) -> float | None:
                r = results.get(wl, {}).get(name)
                return r["loadgen"]["lat_us"][q] if r and "error" not in r else None

            ref_s, ref_n = pct("sse-starlette", "p99"), pct("nchan", "p99")
            raw50, raw99 = pct("raw", "p50"), pct("raw", "p99")
            for name in _servers_for(wl, servers):
                r = results.get(wl, {}).get(name)
                if not r or "error" in r:
                    out.append(f"| {name} | {(r or {}).get('error', 'not run')[:160]} |" + " |" * 13)
                    continue
                lg, pub = r["loadgen"], r["publisher"]
                lat = lg["lat_us"]
                out.append(
                    f"| {name} | {lat['p50'] / 1000:.2f} | {lat['p99'] / 1000:.2f} "
                    f"| {lat['p999'] / 1000:.2f} "
                    f"| {lat['max'] / 1000:.1f} | {_ratio(lat['p99'], ref_s)} | {_ratio(lat['p99'], ref_n)} "
                    f"| {_ratio(lat['p50'], raw50)} / {_ratio(lat['p99'], raw99)} "
                    f"| {r['delivered']:,} / {r['expected']:,} | {max(0, r['expected'] - r['delivered']):,} "
                    f"| {_dup_extra(lg)} | {_fmt(pub['rate'])}/s | {_fmt(r['server_cpu_pct'])} % "
                    f"| {_fmt(r['loadgen_cpu_pct'])} % | {_notes(r, cfg['rate'])} |")
        elif wl == "idle":
            out.append(f"### idle — {cfg['conns']:,} open subscribers on {cfg['topics']} topics: "
                       "server memory per connection\n")
            out.append("| server | RSS KiB / connection | vs sse-starlette | vs nchan | subscribed "
                       "| RSS before → after MiB "
                       "| connect all (s) | connects/s | connects/s vs nchan | then 1 event/topic delivered "
                       "| idle CPU (2 s) | loadgen CPU |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            nchan_rate = _connect_rate(results.get(wl, {}).get("nchan"))
            ref_s = _get(results, wl, "sse-starlette", "kib_per_conn")
            ref_n = _get(results, wl, "nchan", "kib_per_conn")
            for name in _servers_for(wl, servers):
                r = results.get(wl, {}).get(name)
                if not r or "error" in r:
                    out.append(f"| {name} | {(r or {}).get('error', 'not run')[:160]} |" + " |" * 10)
                    continue
                v = r["kib_per_conn"]
                out.append(
                    f"| {name} | {_fmt(v, 1)} | {_ratio(v, ref_s)} | {_ratio(v, ref_n)} "
                    f"| {r['loadgen']['established']:,} / {r['loadgen']['conns']:,} "
                    f"| {r['rss_before_kib'] / 1024:.1f} → {r['rss_after_kib'] / 1024:.1f} "
                    f"| {r['connect_s']:.2f} | {_fmt(_connect_rate(r))} "
                    f"| {_ratio(_connect_rate(r), nchan_rate)} "
                    f"| {r['delivered']:,} in {r['liveness_s'] * 1000:.0f} ms "
                    f"| {r['idle_cpu_2s']:.2f} s | {r['loadgen_cpu_s']:.2f} s |")
        out.append("")
    out.append("Ratios are this server ÷ reference: higher is better for events/s, lower is better for "
               "latency and memory. *expected* = events the server accepted × their subscribers; *missing* = "
               "expected events a subscribed stream had not received when the run ended; "
               "*dup/extra* = events received twice / with an unexpected sequence number; *gaps* = "
               "`event: gap` notices. CPU % is of one core over the delivery span (first send → last "
               "receive); the server runs on CPU 0, loadgen and publisher on CPU 1.")
    return "\n".join(out)
