"""`make bench`: ours vs Rasa's stock starter bot, same load, same run, side by side.

Writes reports/bench.json and reports/bench_latency.png and prints the table, the ratio line
(ours/stock throughput and p99 at the highest concurrency) and which targets were met.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from bot.bench.load import peak_rss_mb, run_load, scripts_for
from bot.paths import ROOT

TARGETS = {"ratio_throughput": 10.0, "p99_ms_at_max": 300.0, "p50_ms_at_1": 40.0}


def _measure(url: str, kind: str, levels: List[int], seconds: float, pid: int) -> List[Dict]:
    rows = []
    for users in levels:
        result = asyncio.run(run_load(f"{url}/webhooks/rest/webhook", users, seconds, scripts_for(kind)))
        rows.append({"bot": kind, **result.summary(), "peak_rss_mb": peak_rss_mb(pid)})
        print(f"  {kind:<5} {users:>3} users: {rows[-1]}", flush=True)
    return rows


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    import requests

    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server at {url} exited")
        try:
            if requests.get(url, timeout=2).ok:
                return time.time() - start
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def bench_ours(levels: List[int], seconds: float) -> List[Dict]:
    sys.path.insert(0, str(ROOT))
    from tests.servers import running_assistant

    with tempfile.TemporaryDirectory() as tmp, running_assistant(Path(tmp), console=False) as urls:
        return _measure(urls["rasa"], "ours", levels, seconds, urls["rasa_pid"])


def bench_stock(levels: List[int], seconds: float) -> List[Dict]:
    """`rasa init` in a temp folder with our .venv: its default config, REST channel, English."""
    rasa = str(Path(sys.executable).parent / "rasa")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        print("  training the stock starter bot (rasa init)…", flush=True)
        subprocess.run([rasa, "init", "--no-prompt", "--init-dir", tmp], cwd=tmp, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from tests.servers import free_port

        port = free_port()
        with open(Path(tmp) / "server.log", "w") as log:
            proc = subprocess.Popen([rasa, "run", "-m", "models", "-i", "127.0.0.1", "--port", str(port)],
                                    cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(f"http://127.0.0.1:{port}/", proc)
            return _measure(f"http://127.0.0.1:{port}", "stock", levels, seconds, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def plot(rows: List[Dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for bot in ("ours", "stock"):
        mine = [r for r in rows if r["bot"] == bot]
        for key, style in (("p50_ms", "-o"), ("p99_ms", "--s")):
            ax.plot([r["users"] for r in mine], [r[key] for r in mine], style, label=f"{bot} {key[:3]}")
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("REST latency vs concurrency (2 cores, loopback)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,20,50")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "reports"))
    args = parser.parse_args(argv)
    levels = [int(u) for u in args.users.split(",")]
    rows = bench_ours(levels, args.seconds)
    if not args.skip_stock:
        rows += bench_stock(levels, args.seconds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"\n{'bot':<6}{'users':>6}{'msg/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}{'RSS MB':>8}")
    for r in rows:
        print(f"{r['bot']:<6}{r['users']:>6}{r['throughput_msg_s']:>9}{r['p50_ms']:>9}{r['p95_ms']:>9}"
              f"{r['p99_ms']:>9}{r['error_rate']:>8}{r['peak_rss_mb']:>8}")
    report = {"rows": rows, "seconds_per_level": args.seconds}
    top = max(levels)
    ours = next(r for r in rows if r["bot"] == "ours" and r["users"] == top)
    stock = next((r for r in rows if r["bot"] == "stock" and r["users"] == top), None)
    one = next(r for r in rows if r["bot"] == "ours" and r["users"] == min(levels))
    if stock:
        ratio = ours["throughput_msg_s"] / stock["throughput_msg_s"] if stock["throughput_msg_s"] else float("inf")
        p99_ratio = ours["p99_ms"] / stock["p99_ms"] if stock["p99_ms"] else float("nan")
        report.update(ratio_throughput=round(ratio, 2), ratio_p99=round(p99_ratio, 3))
        print(f"\nratio ours/stock at {top} users: throughput {ratio:.2f}x, p99 {p99_ratio:.2f}x")
        print(f"target throughput >= {TARGETS['ratio_throughput']}x: {'met' if ratio >= TARGETS['ratio_throughput'] else 'MISSED'}")
    print(f"target p99 <= {TARGETS['p99_ms_at_max']} ms at {top} users: "
          f"{'met' if ours['p99_ms'] <= TARGETS['p99_ms_at_max'] else 'MISSED'} ({ours['p99_ms']} ms)")
    print(f"target p50 <= {TARGETS['p50_ms_at_1']} ms at {min(levels)} user: "
          f"{'met' if one['p50_ms'] <= TARGETS['p50_ms_at_1'] else 'MISSED'} ({one['p50_ms']} ms)")
    errors = sum(r["error_rate"] for r in rows if r["bot"] == "ours")
    print(f"target zero errors: {'met' if errors == 0 else 'MISSED'}")
    (out / "bench.json").write_text(json.dumps(report, indent=1))
    plot(rows, out / "bench_latency.png")
    print(f"report: {out / 'bench.json'}, plot: {out / 'bench_latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
