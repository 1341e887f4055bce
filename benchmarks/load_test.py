"""Load test of the API: locust (headless, its own process) against a server this script starts on
loopback, once with the result cache off and once on. Prints requests/s, p50/p95/p99, error rate,
the mean batch size, the CPU time per request of the server and of locust, and the load average.

Usage:
    python benchmarks/load_test.py [--duration 60] [--users 8] [--model DIR] [--modes off,on]

Without --model (and without MODEL_PATH or a shipped model) a checkpoint of ``--recipe`` (default
small) is trained for one epoch on toy documents: throughput does not depend on the weights' quality.
Everything stops by itself: locust after --duration, the server right after it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_model(recipe: str, out: Path) -> Path:
    """A one-epoch checkpoint on toy documents (tests/toydata.py), for when no model is given."""
    sys.path.insert(0, str(ROOT / "tests"))
    from invoicegen.model.recipes import get_recipe
    from invoicegen.model.train import TrainConfig, train
    from toydata import write_toy_dataset

    data = write_toy_dataset(out / "data", n=8)
    train(TrainConfig(data=data, out=out / "model", recipe=get_recipe(recipe).with_overrides(epochs=1),
                      progress=False))
    return out / "model"


def resolve_model(args: argparse.Namespace, tmp: Path) -> Path:
    if args.model:
        return Path(args.model)
    from invoicegen.extract.pipeline import default_model_path

    default = default_model_path()
    if default.is_dir():
        return default
    print(f"no model at {default}: training a one-epoch '{args.recipe}' checkpoint for the load test", flush=True)
    return make_model(args.recipe, tmp)


def start_server(model: Path, cache: bool, log: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MODEL_PATH": str(model), "API_HOST": "127.0.0.1", "API_PORT": str(port),
           "API_WORKERS": "1", "CACHE_SIZE": "1024" if cache else "0", "RATE_LIMIT": "off",
           "LOG_LEVEL": "warning", "REDIS_URL": "", "API_KEY_REQUIRED": "false", **extra_env}
    proc = subprocess.Popen([sys.executable, "-m", "invoicegen.cli", "serve"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise TimeoutError("server not ready within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this script's finished child processes (locust)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_locust(url: str, users: int, duration: int, prefix: Path, env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "-u", str(users),
           "-r", str(users), "-t", f"{duration}s", "--host", url, "--csv", str(prefix), "--only-summary",
           "--stop-timeout", "10", "--loglevel", "WARNING"]
    subprocess.run(cmd, env={**os.environ, **env}, check=False, timeout=duration + 120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv", newline="") as fh:
        rows = {r["Name"]: r for r in csv.DictReader(fh)}
    agg = {k: float(v) if v not in ("", "N/A") else float("nan") for k, v in rows["Aggregated"].items()
           if k not in ("Type", "Name")}
    n = agg["Request Count"]
    fails = agg["Failure Count"]
    return {"requests": n, "failures": fails, "rps": agg["Requests/s"],
            "p50_ms": agg["50%"], "p95_ms": agg["95%"], "p99_ms": agg["99%"],
            "error_rate": fails / n if n else 0.0}


STAGES = ("load", "ocr", "model", "postprocess")


def server_means(url: str) -> dict[str, float]:
    """From the server's metrics: mean documents per model call (``mean_batch``) and the mean wall
    time per document of each stage (``load_ms``, ``model_ms``, ...; cache misses only)."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text):
        for s in fam.samples:
            for prefix, name in (("invoicegen_batch_size_", "batch"),
                                 ("invoicegen_stage_duration_seconds_", s.labels.get("stage", ""))):
                kind = s.name.removeprefix(prefix)
                if kind != s.name and kind in ("sum", "count"):
                    sums[(name, kind)] = s.value

    def mean(name: str) -> float:
        count = sums.get((name, "count"), 0.0)
        return sums.get((name, "sum"), 0.0) / count if count else 0.0

    return {"mean_batch": mean("batch"), **{f"{stage}_ms": mean(stage) * 1000 for stage in STAGES}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=60, help="Seconds per mode.")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--model", help="Checkpoint directory.")
    ap.add_argument("--recipe", default="small", help="Recipe of the stand-in model when none is given.")
    ap.add_argument("--modes", default="off,on", help="Cache modes to run: off, on or both.")
    ap.add_argument("--doc", help="Document to send (default: the bundled sample invoice).")
    ap.add_argument("--variants", type=int, default=16, help="Distinct documents (cache keys).")
    ap.add_argument("--batch-wait-ms", default="5")
    ap.add_argument("--json", help="Also write the results to this JSON file.")
    args = ap.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="invoicegen-load-") as tmpdir:
        tmp = Path(tmpdir)
        model = resolve_model(args, tmp)
        locust_env = {"LOAD_TEST_VARIANTS": str(args.variants)}
        if args.doc:
            locust_env["LOAD_TEST_DOC"] = args.doc
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            proc, url = start_server(model, mode == "on", tmp / f"server-{mode}.log",
                                     {"BATCH_WAIT_MS": args.batch_wait_ms, "MAX_UPLOAD_MB": "20"})
            try:
                httpx.post(url + "/predict", files={"file": ("warmup.pdf", (ROOT / "src/invoicegen/samples/"
                           "sample_invoice.pdf").read_bytes())}, timeout=120)
                load_before = os.getloadavg()[0]
                server_cpu, locust_cpu = process_cpu_s(proc.pid), children_cpu_s()
                stats = run_locust(url, args.users, args.duration, tmp / f"locust-{mode}", locust_env)
                n = max(1.0, stats["requests"])
                stats["server_cpu_ms"] = (process_cpu_s(proc.pid) - server_cpu) * 1000 / n
                stats["locust_cpu_ms"] = (children_cpu_s() - locust_cpu) * 1000 / n
                stats["load_before"], stats["load_after"] = load_before, os.getloadavg()[0]
                stats.update(server_means(url))
            finally:
                stop_server(proc)
            results[f"cache {mode}"] = stats
    print(f"\n{args.users} users, {args.duration} s per mode, model {model.name}, {os.cpu_count()} CPUs")
    print(f"{'mode':<10}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'errors':>8}"
          f"{'batch':>7}{'server CPU ms/req':>19}{'locust CPU ms/req':>19}{'load1 before/after':>20}")
    for mode, s in results.items():
        print(f"{mode:<10}{s['requests']:>9.0f}{s['rps']:>8.2f}{s['p50_ms']:>8.0f}{s['p95_ms']:>8.0f}"
              f"{s['p99_ms']:>8.0f}{s['error_rate']:>8.1%}{s['mean_batch']:>7.2f}{s['server_cpu_ms']:>19.1f}"
              f"{s['locust_cpu_ms']:>19.1f}{s['load_before']:>11.2f} /{s['load_after']:>6.2f}")
    for mode, s in results.items():
        stages = ", ".join(f"{stage} {s[f'{stage}_ms']:.1f}" for stage in STAGES)
        print(f"{mode}: mean wall ms per document and stage (server metrics, cache misses): {stages}")
    print("load1: the 1-minute load average before and after each run; on this many CPUs, more than the "
          "server and locust account for means something else ran at the same time.")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
