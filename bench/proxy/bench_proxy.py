"""Proxy throughput and latency, side by side: direct, through our proxy, through nginx.

Starts a Flask+gunicorn upstream, the manager under gunicorn's gevent worker (the production
setup) and Debian's nginx as a reference proxy, all on loopback, then runs ``wrk --latency`` for a
small and a 1 MiB response at 1 and 16 connections against each. Prints requests/s, p50 and p99,
the ratio ours/nginx per cell, and the p50 latency our proxy adds over direct.

    python bench/proxy/bench_proxy.py [--duration 5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
USERNAME = "bench"
PASSWORD = "bench-password-1"

NGINX_CONF = """
worker_processes 1;
user root;  # the worker writes the decision cache under the bench's folder
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream session {{
        server 127.0.0.1:{upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/ {{
            proxy_pass http://session/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $proxy_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Prefix {prefix};
        }}
    }}
    # "authz": nginx carries the bytes to the session, the manager only decides (auth_request).
    map $http_upgrade $sm_connection {{ default upgrade; '' ''; }}
    proxy_cache_path {root}/authz-cache keys_zone=sm_authz:1m max_size=16m inactive=10s;
    upstream scriptsmanager {{ server 127.0.0.1:{manager}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{authz_port};
        include {locations};
    }}
}}
"""
LOCATIONS = REPO / "deploy" / "nginx" / "session-host-locations.conf"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0, **kwargs: object) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
            return
        except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def pin(pid: int, cpu: int) -> None:
    """Pin a process, its threads and its children (the server's workers) to one CPU."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})
    for child in children:
        pin(int(child), cpu)


def gunicorn(app: str, port: int, worker: str, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        worker,
        "--workers",
        "1",
        "--log-level",
        "warning",
        *extra,
        app,
    ]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(url: str, connections: int, duration: int, headers: list[str]) -> Result:
    args = [WRK, "--latency", "-t", "1", "-c", str(connections), "-d", f"{duration}s"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(
            f"  warning: {url} -c{connections}: "
            + " ".join(
                line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket" in line
            )
        )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99)


def login(base: str, username: str, password: str) -> tuple[requests.Session, int]:
    """Log in to the manager; returns the logged-in client and the user id."""
    http = requests.Session()
    response = http.post(
        f"{base}/api/auth/login", json={"username": username, "password": password}, timeout=10
    )
    response.raise_for_status()
    return http, int(response.json()["user"]["id"])


def enter(http: requests.Session, base: str, prefix: str) -> list[str]:
    """Take the manager's ticket into the session's own host (as a browser does on opening
    it); returns the Host and Cookie headers a browser then sends there."""
    response = http.get(f"{base}{prefix}/", allow_redirects=False, timeout=10)
    if response.status_code != 302 or "/__sm/enter" not in response.headers.get("Location", ""):
        # A manager without session hosts: its own cookie on its own origin.
        return [f"Cookie: sm_session={http.cookies['sm_session']}"]
    location = response.headers["Location"]
    host = location.split("/")[2]
    port = base.rsplit(":", 1)[1]
    entered = requests.get(
        f"http://127.0.0.1:{port}/" + location.split("/", 3)[3],
        headers={"Host": host},
        allow_redirects=False,
        timeout=10,
    )
    cookie = entered.headers["Set-Cookie"].split(";", 1)[0]
    return [f"Host: {host}", f"Cookie: {cookie}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="repeat and keep the best")
    parser.add_argument("--threads", type=int, default=8, help="upstream gthread threads")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the upstream to the last CPU and both proxies to the first, as a session "
        "container with its own CPU would run",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sm-bench-proxy-") as tmp:
        root = Path(tmp)
        up_port, sm_port, ngx_port = free_port(), free_port(), free_port()
        authz_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": f"{HERE}{os.pathsep}{REPO}",
            "SM_BENCH_DIR": str(root),
            "SM_BENCH_UPSTREAM_PORT": str(up_port),
            "SM_BENCH_USERNAME": USERNAME,
            "SM_BENCH_PASSWORD": PASSWORD,
        }
        upstream_cmd = gunicorn(
            "upstream_app:app", up_port, "gthread", ["--threads", str(args.threads)]
        )
        manager_cmd = gunicorn("manager_wsgi:app", sm_port, "gevent", ["--keep-alive", "30"])
        with (
            process(upstream_cmd, env, root / "upstream.log") as upstream,
            process(manager_cmd, env, root / "manager.log") as manager,
        ):
            wait_for(f"http://127.0.0.1:{up_port}/")
            wait_for(f"http://127.0.0.1:{sm_port}/login")
            base = f"http://localhost:{sm_port}"
            http, user_id = login(base, USERNAME, PASSWORD)
            prefix = f"/project/1/script/1/user/{user_id}"
            ours_headers = enter(http, base, prefix)
            (root / "nginx.conf").write_text(
                NGINX_CONF.format(
                    root=root,
                    upstream=up_port,
                    port=ngx_port,
                    prefix=prefix,
                    manager=sm_port,
                    authz_port=authz_port,
                    locations=LOCATIONS,
                )
            )
            nginx_cmd = [NGINX, "-c", str(root / "nginx.conf"), "-p", str(root)]
            with process(nginx_cmd, env, root / "nginx.log") as nginx:
                wait_for(f"http://127.0.0.1:{ngx_port}{prefix}/")
                if args.pin:
                    last = max(os.sched_getaffinity(0))
                    pin(upstream.pid, last)
                    pin(manager.pid, 0)
                    pin(nginx.pid, 0)
                run(args, up_port, sm_port, ngx_port, prefix, ours_headers, authz_port)


def run(
    args: argparse.Namespace,
    up_port: int,
    sm_port: int,
    ngx_port: int,
    prefix: str,
    ours_headers: list[str],
    authz_port: int,
) -> None:
    ways = {
        "direct": (f"http://127.0.0.1:{up_port}", []),
        "ours": (f"http://127.0.0.1:{sm_port}{prefix}", ours_headers),
        "nginx": (f"http://127.0.0.1:{ngx_port}{prefix}", []),
        "authz": (f"http://127.0.0.1:{authz_port}{prefix}", ours_headers),
    }
    check = requests.get(
        ways["ours"][0] + "/big",
        headers=dict(line.split(": ", 1) for line in ours_headers),
        timeout=10,
    )
    assert check.status_code == 200 and len(check.content) == 1 << 20, check.status_code
    cells = [("small", "/", c) for c in (1, 16)] + [("1 MiB", "/big", c) for c in (1, 16)]
    runs: dict[tuple[str, str, int], dict[str, list[Result]]] = {
        cell: {way: [] for way in ways} for cell in cells
    }
    # Rounds interleave the three ways, so a noisy neighbour hurts them alike; best run kept.
    for round_number in range(args.rounds):
        for label, path, conns in cells:
            for way, (base, headers) in ways.items():
                if round_number == 0:
                    wrk(base + path, conns, 1, headers)  # warm connections and caches
                runs[(label, path, conns)][way].append(
                    wrk(base + path, conns, args.duration, headers)
                )
    pinned = "; pinned: upstream on its own CPU, proxies on another" if args.pin else ""
    print(
        f"wrk --latency -t 1 -d {args.duration}s, best of {args.rounds} interleaved rounds"
        f"{pinned}; "
        f"upstream: Flask on gunicorn gthread (1 worker x {args.threads} threads); "
        "ours: manager on gunicorn gevent; nginx: keepalive upstream"
    )
    print(f"{'response':8} {'conns':>5} | {'way':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for (label, _, conns), by_way in runs.items():
        best = {way: max(results, key=lambda r: r.rps) for way, results in by_way.items()}
        for way, result in best.items():
            print(
                f"{label:8} {conns:>5} | {way:6} {result.rps:>9.0f} {result.p50_ms:>8.3f} "
                f"{result.p99_ms:>8.3f}"
            )
        ours, nginx, direct = best["ours"], best["nginx"], best["direct"]
        print(
            f"{'':8} {'':>5} | authz/nginx {best['authz'].rps / nginx.rps:4.0%}   "
            f"ours/nginx {ours.rps / nginx.rps:4.0%}   "
            f"nginx/direct {nginx.rps / direct.rps:4.0%}   "
            f"added p50: ours {ours.p50_ms - direct.p50_ms:+.3f} ms, "
            f"nginx {nginx.p50_ms - direct.p50_ms:+.3f} ms"
        )


if __name__ == "__main__":
    main()
