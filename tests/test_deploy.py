"""The deployment kit against the real app: what the dashboards and alerts query is what the app
exports, the Dockerfiles' CMD starts a healthy server, nginx proxies to it with its limits, and the
static files (compose, Kubernetes, .env.example) agree with the settings the app really has.

The tool checks (hadolint, yamllint, kubernetes-validate, nginx -t, promtool, compose schema) run in
scripts/check_deploy.sh; here each check needs the app, or the consistency between files.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from api_helpers import LiveServer, free_port, invoice_pdf
from invoicegen.deployment.metrics import PREDICTION_STATUSES
from invoicegen.deployment.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILES = ("Dockerfile", "Dockerfile.prod", "Dockerfile.gpu")
SYNTHETIC_METRICS = {"up"}
"""Series Prometheus makes itself (not exported by the app)."""
TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus attaches to every scraped series."""

# ------------------------------------------------------------------------------------------------
# PromQL: the metric names and label matchers an expression uses
# ------------------------------------------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan", "atan2"}
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"((?:[^\"\\]|\\.)*)\"")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords, labels and durations left out)."""
    s = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        before = s[m.start() - 1] if m.start() else " "
        if before.isalnum() or before in "._$":  # inside a number (1e-9), a duration or a $variable
            continue
        if s[m.end():].lstrip().startswith("(") or m.group(0).lower() in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def promql_matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every label matcher written as ``metric{...}``."""
    out = []
    for sel in _SELECTOR.finditer(expr):
        for m in _MATCHER.finditer(sel.group(2)):
            out.append((sel.group(1), m.group(1), m.group(2), m.group(3)))
    return out


def test_promql_parser_finds_metrics_not_functions_labels_or_variables() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, stage) (rate(invoicegen_stage_duration_seconds_bucket'
            '{job="$job", stage=~"ocr|model"}[$__rate_interval]))) / clamp_min(up offset 5m, 1e-9) > bool 2')
    assert promql_metric_names(expr) == {"invoicegen_stage_duration_seconds_bucket", "up"}
    assert promql_matchers(expr) == [("invoicegen_stage_duration_seconds_bucket", "job", "=", "$job"),
                                     ("invoicegen_stage_duration_seconds_bucket", "stage", "=~", "ocr|model")]


def alert_exprs() -> dict[str, str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "invoicegen.json").read_text())


def dashboard_exprs() -> dict[str, str]:
    return {f"{p['title']} [{t['refId']}]": t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])}


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as plain PromQL (Grafana's variables replaced)."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$job", "invoicegen")


# ------------------------------------------------------------------------------------------------
# A running app with some traffic, and its /metrics
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("deploy-api")
    srv = LiveServer({"MODEL_PATH": str(tiny_model_dir), "RATE_LIMIT": "off", "REDIS_URL": "",
                      "API_KEY_REQUIRED": "false", "CACHE_SIZE": "64", "LOG_LEVEL": "warning",
                      "PROMETHEUS_ENABLED": "true", "METRICS_PORT": ""}, workdir / "server.log")
    try:
        srv.wait_ready(120)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def exported(server: LiveServer) -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> values seen, after a miss, a hit, a batch and a 404."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        pdf = invoice_pdf("deploy-metrics")
        for _ in range(2):  # miss, then hit
            assert c.post("/predict", files={"file": ("a.pdf", pdf)}).status_code == 200
        r = c.post("/predict/batch", files=[("files", ("b.pdf", invoice_pdf("b"))), ("files", ("c.txt", b"hi"))])
        assert r.status_code == 200
        assert c.get("/no-such-page").status_code == 404
        text = c.get("/metrics").text
    out: dict[str, dict[str, set[str]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = out.setdefault(s.name, {})
            for k, v in s.labels.items():
                labels.setdefault(k, set()).add(v)
    return out


def _check_queries(queries: dict[str, str], exported: dict[str, dict[str, set[str]]]) -> list[str]:
    known_values = {("http_requests_total", "status"): {f"{d}xx" for d in range(1, 6)},
                    ("invoicegen_predictions_total", "status"): set(PREDICTION_STATUSES)}
    problems = []
    for where, expr in queries.items():
        names = promql_metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric found in {expr!r}")
        for name in sorted(names - SYNTHETIC_METRICS - set(exported)):
            problems.append(f"{where}: {name} is not exported by the app")
        for metric, label, op, value in promql_matchers(expr):
            if metric in SYNTHETIC_METRICS or label in TARGET_LABELS or metric not in exported:
                continue
            if label not in exported[metric]:
                problems.append(f"{where}: {metric} has no label {label!r} (has {sorted(exported[metric])})")
                continue
            values = exported[metric][label] | known_values.get((metric, label), set())
            if op == "=" and value not in values:
                problems.append(f"{where}: {metric}{{{label}={value!r}}} matches none of {sorted(values)}")
            if op == "=~" and not any(re.fullmatch(value, v) for v in values):
                problems.append(f"{where}: {metric}{{{label}=~{value!r}}} matches none of {sorted(values)}")
    return problems


def test_alert_rules_query_only_metrics_the_app_exports(exported: dict[str, dict[str, set[str]]]) -> None:
    exprs = alert_exprs()
    assert {"InvoiceGenTargetDown", "InvoiceGenNotReady", "InvoiceGenHighErrorRate",
            "InvoiceGenHighLatencyP95"} <= set(exprs)
    assert _check_queries(exprs, exported) == []


def test_dashboard_queries_only_metrics_the_app_exports(exported: dict[str, dict[str, set[str]]]) -> None:
    exprs = {k: grafana_to_promql(v) for k, v in dashboard_exprs().items()}
    assert _check_queries(exprs, exported) == []
    text = " ".join(exprs.values())
    for needed in ("histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
                   "invoicegen_cache_hits_total", "invoicegen_batch_size_", "invoicegen_stage_duration_seconds_",
                   "sum by (status)"):
        assert needed in text, f"the dashboard has no {needed} panel"
    # every histogram_quantile reads _bucket series and keeps the le label
    for expr in exprs.values():
        for m in re.finditer(r"histogram_quantile\(", expr):
            tail = expr[m.end():]
            assert "_bucket" in tail and re.search(r"by \([^)]*\ble\b", tail), expr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as a recording rule)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus; scripts/setup.sh does)")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)}
        for i, e in enumerate(dashboard_exprs().values())]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_uses_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    dash = dashboard()
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in dash["panels"]:
        assert p["datasource"]["uid"] in uids, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] in uids, p["title"]
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "invoicegen.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    dash_dir = provider["providers"][0]["options"]["path"]
    assert (ROOT / mounts[dash_dir] / "invoicegen.json").is_file()


# ------------------------------------------------------------------------------------------------
# The Dockerfiles' CMD, run directly with the Dockerfile's environment
# ------------------------------------------------------------------------------------------------


def dockerfile_final_stage(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined, comments dropped."""
    instrs: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, args = buf.strip().partition(" ")
        instrs.append((word.upper(), args.strip()))
        buf = ""
    last_from = max(i for i, (w, _) in enumerate(instrs) if w == "FROM")
    return instrs[last_from:]


def dockerfile_env(instrs: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instrs:
        if word != "ENV":
            continue
        parts = shlex.split(args)
        if parts and "=" not in parts[0]:  # legacy form: ENV KEY value with spaces
            env[parts[0]] = " ".join(parts[1:])
            continue
        for part in parts:
            key, _, value = part.partition("=")
            env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    """A CMD/HEALTHCHECK CMD in exec form (JSON array); the shell form runs through /bin/sh -c."""
    args = args.strip()
    return json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]


def dockerfile_cmd(instrs: list[tuple[str, str]]) -> list[str]:
    return exec_form([a for w, a in instrs if w == "CMD"][-1])


def dockerfile_healthcheck(instrs: list[tuple[str, str]]) -> list[str] | None:
    checks = [a for w, a in instrs if w == "HEALTHCHECK"]
    if not checks:
        return None
    _, _, cmd = checks[-1].partition("CMD ")
    return exec_form(cmd)


def container_env(docker_env: dict[str, str], tmp: Path, **overrides: str) -> dict[str, str]:
    """The process environment minus every app setting, plus the Dockerfile's ENV (its /tmp mapped
    into ``tmp``, PATH to this venv), plus ``overrides``."""
    app_vars = {name.upper() for name in Settings.model_fields} | {
        "FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR", "TESSDATA_PREFIX", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in app_vars}
    for key, value in docker_env.items():
        if key in ("PATH", "VIRTUAL_ENV"):
            continue
        env[key] = str(tmp) + value[4:] if value == "/tmp" or value.startswith("/tmp/") else value
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    env.update(overrides)
    return env


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_cmd_starts_a_server_that_answers_health(dockerfile: str, tiny_model_dir: Path,
                                                             tmp_path: Path) -> None:
    instrs = dockerfile_final_stage(ROOT / dockerfile)
    cmd = dockerfile_cmd(instrs)
    assert cmd == ["invoicegen", "serve"]
    docker_env = dockerfile_env(instrs)
    assert docker_env["MODEL_PATH"].startswith("/app/models/") and docker_env["API_PORT"] == "8000"
    port = free_port()
    env = container_env(docker_env, tmp_path, MODEL_PATH=str(tiny_model_dir), API_HOST="127.0.0.1",
                        API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and status != 200:
            assert proc.poll() is None, f"{dockerfile}: CMD exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                status = httpx.get(url + "/health", timeout=2).status_code
            except httpx.HTTPError:
                time.sleep(0.3)
        assert status == 200, f"{dockerfile}: no /health within 120 s:\n{log.read_text()[-3000:]}"
        health = dockerfile_healthcheck(instrs)
        if health is not None:
            ok = subprocess.run(health, env=env, cwd=tmp_path, capture_output=True, timeout=30)
            assert ok.returncode == 0, ok.stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    if health is not None:  # the health check must notice a dead server
        dead = subprocess.run(health, env=env, cwd=tmp_path, capture_output=True, timeout=30)
        assert dead.returncode != 0


def test_production_images_run_as_non_root_with_a_healthcheck() -> None:
    for name in ("Dockerfile.prod", "Dockerfile.gpu"):
        instrs = dockerfile_final_stage(ROOT / name)
        users = [a for w, a in instrs if w == "USER"]
        assert users and users[-1].split(":")[0] not in ("root", "0"), name
        health = dockerfile_healthcheck(instrs)
        assert health is not None and "/health" in " ".join(health), name
    prod = (ROOT / "Dockerfile.prod").read_text()
    assert prod.count("FROM ") >= 2 and "AS builder" in prod and "pip wheel" in prod
    ignore = (ROOT / ".dockerignore").read_text().split()
    for excluded in (".venv", "data", "runs", "reports", ".git", ".env"):
        assert excluded in ignore
    assert "models" not in ignore  # the images copy models/


# ------------------------------------------------------------------------------------------------
# nginx in front of the running app
# ------------------------------------------------------------------------------------------------


def _location_block(conf: str, head: str) -> str:
    start = conf.index(head)
    depth, i = 0, conf.index("{", start)
    for j in range(i, len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[j], 0)
        if depth == 0:
            return conf[i:j]
    raise AssertionError(f"unbalanced block {head}")


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def _seconds(value: str) -> float:
    return float(value[:-1]) * {"s": 1, "m": 60}[value[-1]] if value[-1].isalpha() else float(value)


def test_nginx_limits_follow_the_service_settings() -> None:
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    predict = _location_block(conf, "location = /predict {")
    batch = _location_block(conf, "location = /predict/batch {")
    body = re.compile(r"client_max_body_size\s+(\S+);")
    # the API's own limits (api.py: + 64 KiB multipart overhead per file) must fit through nginx
    assert _size(body.search(predict).group(1)) >= s.max_upload_bytes + 64 * 1024
    assert _size(body.search(batch).group(1)) >= (s.max_upload_bytes + 64 * 1024) * s.max_batch_size
    for timeout in re.findall(r"proxy_read_timeout\s+(\S+);", conf):
        assert _seconds(timeout) > s.inference_timeout
    http_block = conf[conf.index("http {"):conf.index("server {")]
    assert "limit_req_zone" in http_block and "limit_req_zone" not in conf[conf.index("server {"):]
    assert re.search(r"upstream invoicegen_api \{\s*least_conn;", conf)


@pytest.fixture()
def nginx_url(server: LiveServer, tmp_path: Path) -> Iterator[str]:
    """The real nginx.conf on a free loopback port, its upstream the test server, /tmp -> tmp_path."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx not installed (apt-get install nginx; scripts/setup.sh does)")
    port = free_port()
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    conf = conf.replace("/tmp/", f"{tmp_path}/")
    conf = conf.replace("server invoicegen-api:8000", f"server 127.0.0.1:{server.port}")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    log = (tmp_path / "nginx.log").open("wb")
    proc = subprocess.Popen([binary, "-e", "stderr", "-p", str(tmp_path), "-c", str(path), "-g", "daemon off;"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "nginx.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_nginx_proxies_with_request_ids_gzip_limits_and_json_errors(nginx_url: str) -> None:
    with httpx.Client(base_url=nginx_url, timeout=60) as c:
        r = c.get("/health", headers={"X-Request-ID": "order-4711"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "order-4711"
        assert re.fullmatch(r"[0-9a-f]{32}", c.get("/ready", headers={"X-Request-ID": "bad id!"})
                            .headers["x-request-id"])
        r = c.post("/predict", files={"file": ("a.pdf", invoice_pdf("via-nginx"))},
                   headers={"Accept-Encoding": "gzip", "X-Request-ID": "trace-1"})
        assert r.status_code == 200, r.text
        assert r.headers.get("content-encoding") == "gzip" and r.json()["document"]["filename"] == "a.pdf"
        assert r.headers["x-request-id"] == "trace-1"
        assert c.get("/metrics").status_code == 404  # not through the public entry
        # bigger than MAX_UPLOAD_MB + overhead: nginx answers itself, in the API's JSON shape
        big = b"%PDF-1.4\n" + b"0" * (22 * 1024 * 1024)
        r = c.post("/predict", content=big, headers={"Content-Type": "application/pdf", "X-Request-ID": "big-1"})
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
        assert r.json()["request_id"] == "big-1"
        # rate limit (10 r/s, burst 20 per address): a quick burst gets JSON 429s with Retry-After
        codes = []
        for _ in range(40):
            resp = c.get("/version")  # not limited
            codes.append(resp.status_code)
        assert set(codes) == {200}
    # concurrent, so the burst outruns the refill even on a busy machine
    with httpx.Client(base_url=nginx_url, timeout=60) as c, ThreadPoolExecutor(16) as pool:
        limited = list(pool.map(lambda _: c.get("/docs"), range(120)))
        too_many = [x for x in limited if x.status_code == 429]
        assert too_many and too_many[0].json()["error"] == "rate_limited" and "retry-after" in too_many[0].headers


def test_nginx_answers_json_when_the_api_is_down(tmp_path: Path) -> None:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx not installed")
    port, dead = free_port(), free_port()
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text().replace("/tmp/", f"{tmp_path}/")
    conf = conf.replace("server invoicegen-api:8000", f"server 127.0.0.1:{dead}")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([binary, "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        r = None
        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert r is not None and r.status_code == 503
        assert r.json()["error"] == "upstream_unavailable" and r.headers["retry-after"]
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


# ------------------------------------------------------------------------------------------------
# Settings everywhere: .env.example, compose, Kubernetes
# ------------------------------------------------------------------------------------------------


def env_example() -> tuple[dict[str, str], set[str]]:
    """(active NAME=value lines, names only mentioned as commented ``# NAME=`` lines)."""
    active, commented = {}, set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        if m := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            active[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"#\s*([A-Z][A-Z0-9_]*)=.*", line):
            commented.add(m.group(1))
    return active, commented


def test_env_example_lists_every_setting_with_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    active, commented = env_example()
    fields = {name.upper() for name in Settings.model_fields}
    assert fields <= set(active) | commented, f"missing from .env.example: {sorted(fields - set(active) - commented)}"
    for name in fields:
        monkeypatch.delenv(name, raising=False)
    settings_lines = "\n".join(f"{k}={v}" for k, v in active.items() if k in fields)
    (tmp_path / "settings.env").write_text(settings_lines)
    from_file = Settings(_env_file=tmp_path / "settings.env")  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_file.model_dump() == defaults.model_dump()


def test_compose_is_consistent_with_the_app_and_the_other_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"invoicegen-api", "invoicegen-api-gpu", "redis", "prometheus", "grafana", "nginx"} <= set(services)
    api = services["invoicegen-api"]
    assert api["env_file"] == ".env" and api["build"]["dockerfile"] in DOCKERFILES
    assert "./models:/app/models:ro" in api["volumes"]
    assert {"./data:/app/data", "./outputs:/app/outputs", "./logs:/app/logs"} <= set(api["volumes"])
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert {"limits", "reservations"} <= set(api["deploy"]["resources"])
    gpu = services["invoicegen-api-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    # every bind mount of the stack's own files exists in the repository
    for svc in services.values():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./deploy/"):
                assert (ROOT / src).exists(), src
    # nginx and Prometheus find the API under its service name and port
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert "server invoicegen-api:8000" in conf
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "invoicegen")
    assert job["dns_sd_configs"][0]["names"] == ["invoicegen-api"] and job["dns_sd_configs"][0]["port"] == 8000
    assert job["job_name"] == "invoicegen" and 'job="invoicegen"' in (DEPLOY / "prometheus" / "alerts.yml").read_text()


def k8s_docs(path: Path) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(path.read_text()) if d}


def test_kubernetes_manifests_agree_with_the_settings() -> None:
    base = DEPLOY / "k8s" / "base"
    config = k8s_docs(base / "configmap.yaml")["ConfigMap"]["data"]
    allowed = {n.upper() for n in Settings.model_fields} | {"FORWARDED_ALLOW_IPS", "OMP_THREAD_LIMIT",
                                                            "PROMETHEUS_MULTIPROC_DIR"}
    assert set(config) <= allowed, sorted(set(config) - allowed)
    Settings.model_validate({k.lower(): v for k, v in config.items()
                             if k.lower() in Settings.model_fields and k not in ("API_KEYS_FILE", "API_KEY_REQUIRED")})
    dep = k8s_docs(base / "deployment.yaml")["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert config["MODEL_PATH"].startswith(mounts["models"]["mountPath"] + "/") and mounts["models"]["readOnly"]
    assert volumes["models"]["persistentVolumeClaim"]["readOnly"]
    assert config["API_KEYS_FILE"].startswith(mounts["api-keys"]["mountPath"] + "/")
    key_file = config["API_KEYS_FILE"].rsplit("/", 1)[1]
    secret = k8s_docs(DEPLOY / "k8s" / "secret.example.yaml")["Secret"]
    assert volumes["api-keys"]["secret"]["secretName"] == secret["metadata"]["name"] and key_file in secret["stringData"]
    assert container["ports"][0]["containerPort"] == int(config["API_PORT"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert "startupProbe" in container
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]
    assert mounts["tmp"]["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert {"requests", "limits"} <= set(container["resources"])
    assert pod["terminationGracePeriodSeconds"] > float(config["INFERENCE_TIMEOUT"]) + 5
    hpa = k8s_docs(base / "hpa.yaml")["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    kust = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"} == set(kust["resources"])


# ------------------------------------------------------------------------------------------------
# invoicegen verify-model
# ------------------------------------------------------------------------------------------------


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoicegen.cli", "verify-model", str(path)], capture_output=True,
                          text=True, timeout=180)


def test_verify_model_ok_on_a_good_checkpoint(tiny_model_dir: Path) -> None:
    proc = _verify(tiny_model_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: the model loads and runs" in proc.stdout
    assert proc.stdout.count("[  OK]") == 6


def test_verify_model_names_what_is_wrong(tiny_model_dir: Path, tmp_path: Path) -> None:
    from invoicegen.deployment.verify import verify_model

    missing = verify_model(tmp_path / "nope")
    assert not missing.ok and missing.checks[0].status == "fail" and "does not exist" in missing.checks[0].detail

    labels = tmp_path / "labels"
    shutil.copytree(tiny_model_dir, labels)
    data = json.loads((labels / "labels.json").read_text())
    data["ner"] = data["ner"][:-1] + ["B-NOT_A_FIELD"]
    (labels / "labels.json").write_text(json.dumps(data))
    report = verify_model(labels)
    status = {c.name: c.status for c in report.checks}
    assert status["labels"] == "fail" and status["weights"] == "skip" and not report.ok
    assert "B-NOT_A_FIELD" in report.render() and "FAIL: labels" in report.render()

    weights = tmp_path / "weights"
    shutil.copytree(tiny_model_dir, weights)
    raw = (weights / "model.safetensors").read_bytes()
    (weights / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    report = verify_model(weights)
    assert {c.name: c.status for c in report.checks}["weights"] == "fail"

    gone = tmp_path / "gone"
    shutil.copytree(tiny_model_dir, gone)
    (gone / "recipe.json").unlink()
    proc = _verify(gone)
    assert proc.returncode == 1 and "missing: recipe.json" in proc.stdout


# ------------------------------------------------------------------------------------------------
# The guide's commands refer to things that exist
# ------------------------------------------------------------------------------------------------


def test_deployment_guide_commands_use_existing_files_commands_and_options() -> None:
    from invoicegen.cli import app

    guide = (ROOT / "docs" / "deployment.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", guide, flags=re.S))
    assert blocks
    k8s_refs = {"deploy/invoicegen-api"}  # kubectl's kind/name notation, not a file
    for path in set(re.findall(r"(?<![\w/.-])((?:deploy|scripts|benchmarks|src|docs)/[\w./-]+\w)", guide)) - k8s_refs:
        assert (ROOT / path).exists(), f"docs/deployment.md names {path}, which does not exist"
    for name in set(re.findall(r"-f (Dockerfile[\w.]*)", blocks)) | {"Dockerfile"}:
        assert (ROOT / name).is_file(), name
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    for m in re.finditer(r"(?<!-n )\binvoicegen ([a-z-]+)([^\n]*)", blocks):  # not kubectl's -n namespace
        assert m.group(1) in commands, f"no invoicegen command {m.group(1)!r}"
        help_text = subprocess.run([sys.executable, "-m", "invoicegen.cli", m.group(1), "--help"],
                                   capture_output=True, text=True, timeout=60).stdout
        for flag in re.findall(r"(?<!\S)(--[a-z0-9-]+)", m.group(2)):
            assert flag in help_text, f"invoicegen {m.group(1)} has no option {flag}"
    for script in set(re.findall(r"scripts/(\w+\.sh) ([^\n]*)", blocks)):
        name, args = script
        usage = (ROOT / "scripts" / name).read_text()
        for flag in re.findall(r"(?<!\S)(-{1,2}[a-zA-Z][\w-]*)", args):
            assert flag in usage, f"scripts/{name} has no option {flag}"
