"""`make bench`, side by side: the studio's real processes against the official client.

One run starts the studio as it runs in production (uvicorn ASGI web, the sandbox in a uvicorn
process of its own, Celery workers: provider I/O in one process per core, media and exports
in one each, beat, Redis, the database), the sandbox at 1 s
processing and no queue time, and measures:

- makespan: N text→image jobs made in one transaction through `jobs_create` (the casting-run /
  bulk path), from the first create to the last output stored; the same N jobs sent by the
  official `imagepipeline` client (PyPI, unchanged: its README's blocking call, which submits
  and polls every 3 s) in a pool of 8 threads, and sequentially (a sample of jobs, scaled);
- notification latency: provider completion (the sandbox's own finish time) → output stored,
  and → the live event at a connected browser (an SSE client), for single jobs on the webhook
  path and on the polling path (JOB_WEBHOOKS off); for the client, → its call returning;
- provider API calls per job (submits + status calls, counted by the sandbox);
- in-flight capacity: M jobs of 60 s processing arriving over a minute, on one I/O worker process:
  submit lag, submissions per second, the worker's peak RSS;
- live fan-out: S open event streams on one web process, delivery latency and memory;
- ingest memory: a 200 MB result downloaded, previews of a 4096 x 4096 image and a 200 MB WAV,
  each in a fresh process, its peak RSS growth.

On PostgreSQL when DATABASE_URL points at one (a fresh database, dropped afterwards),
otherwise on a throwaway SQLite file. It prints one table and writes it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks.report import replace_section

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "var" / "bench-logs"
PROMPT = "a lighthouse at dusk, benchmark"
SIZE = 512
CLK = os.sysconf("SC_CLK_TCK")


def pct(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_stats() -> Iterator[tuple[str, str, list[str]]]:
    """(pid, command name, the fields after it) of every process, from /proc/*/stat."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        yield stat.parent.name, name, text.rsplit(")", 1)[1].split()


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process and its live children (a prefork pool's
    processes) have used so far, plus what its exited children used."""
    total = 0.0
    for process, _, fields in _proc_stats():
        if process == str(pid):
            total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / CLK
        elif fields[1] == str(pid):  # a child of it
            total += (int(fields[11]) + int(fields[12])) / CLK
    return total


def services_cpu() -> dict[str, float]:
    """CPU seconds used so far by the database and Redis servers on this machine (every
    `postgres` process, its backends included, and every `redis-server`)."""
    names = {"postgres": "PostgreSQL", "redis-server": "Redis"}
    totals = dict.fromkeys(names.values(), 0.0)
    for _, name, fields in _proc_stats():
        if name in names:
            totals[names[name]] += (int(fields[11]) + int(fields[12])) / CLK
    return totals


def proc_kib(pid: int, key: str) -> int:
    """VmRSS or VmHWM (peak RSS) of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# --- the studio's processes ---------------------------------------------------------------------


@dataclass
class Stack:
    web: str
    sandbox: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], **extra_env: str) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = (LOGS / f"{name}.log").open("ab")
        # PGAPPNAME names the process's database sessions (pg_stat_activity, the server log).
        env = {**self.env, "PGAPPNAME": f"studio-{name}", **extra_env}
        self.processes[name] = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            with contextlib.suppress(Exception):
                self.stop(name)

    def cpu(self) -> dict[str, float]:
        return {name: proc_cpu(p.pid) for name, p in self.processes.items()}


# A log line per task received and done is CPU the bench would count against the studio.
QUIET = ["--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"]


def uvicorn(port: int, module: str = "studio.asgi") -> list[str]:
    interface = "wsgi" if module.endswith(".wsgi") else "asgi3"
    return [
        sys.executable, "-m", "uvicorn", f"{module}:application", "--interface", interface,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def io_workers() -> dict[str, list[str]]:
    """The provider-I/O worker processes `runstudio` starts ("worker", "worker-2", ...)."""
    from studio.management.commands.runstudio import worker_commands

    return {
        name: [*argv, *QUIET]
        for name, argv in worker_commands().items()
        if name == "worker" or name.startswith("worker-")
    }


def start_stack(io_concurrency: int) -> Stack:
    from studio.management.commands.runstudio import worker_commands

    web_port, sandbox_port = free_port(), free_port()
    web = f"http://127.0.0.1:{web_port}"
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {
        **os.environ,
        "PUBLIC_BASE_URL": web,
        "SANDBOX_URL": f"{sandbox}/sandbox",
        "WORKER_IO_CONCURRENCY": str(io_concurrency),
        "PYTHONUNBUFFERED": "1",
    }
    stack = Stack(web=web, sandbox=sandbox, env=env)
    stack.start("web", uvicorn(web_port))
    stack.start("sandbox", uvicorn(sandbox_port, "sandbox.wsgi"))
    for name, argv in worker_commands().items():
        stack.start(name, [*argv, *QUIET])
    stack.start(
        "beat",
        [
            sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "WARNING",
            "--schedule", str(LOGS / f"celerybeat-{uuid.uuid4().hex[:6]}"),
        ],
    )  # fmt: skip
    wait_for(lambda: _healthy(web), 60, "the studio did not become healthy")
    wait_for(lambda: _answers(f"{sandbox}/sandbox/control/"), 60, "the sandbox did not start")
    return stack


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).json().get("status") == "ok"
    except (httpx.HTTPError, ValueError):
        return False


def _answers(url: str) -> bool:
    from django.conf import settings

    try:
        headers = {"X-API-Key": settings.SANDBOX_API_KEY}
        return httpx.get(url, headers=headers, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(
    condition: Callable[[], Any], timeout: float, message: str, every: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s: {message}")
        time.sleep(every)


def knobs(stack: Stack, **changes: Any) -> None:
    from django.conf import settings

    response = httpx.put(
        f"{stack.sandbox}/sandbox/control/",
        json=changes,
        headers={"X-API-Key": settings.SANDBOX_API_KEY},
        timeout=10,
    )
    response.raise_for_status()


# --- measurements -----------------------------------------------------------------------------


def create_jobs(team: Any, user: Any, count: int, tag: str) -> list[int]:
    """Make `count` jobs in one transaction, as a casting run or a bulk submit does."""
    from jobs import catalog, services

    endpoint = catalog.get("text-to-image")
    requests = [
        services.JobRequest(
            endpoint, {"prompt": f"{PROMPT} {tag} {i}", "width": SIZE, "height": SIZE}
        )
        for i in range(count)
    ]
    return [job.pk for job in services.jobs_create(team=team, user=user, requests=requests)]


def wait_done(ids: list[int], timeout: float) -> None:
    from jobs.models import Job

    wait_for(
        lambda: not Job.objects.filter(pk__in=ids).active().exists(),
        timeout,
        f"{len(ids)} jobs did not finish",
    )


def provider_finish(provider_ids: list[str]) -> dict[str, float]:
    """The sandbox's own finish time of each of its jobs (epoch seconds)."""
    from sandbox import engine
    from sandbox.models import SandboxJob

    return {
        job.id: engine.finished_at(job).timestamp()
        for job in SandboxJob.objects.filter(pk__in=provider_ids)
    }


def provider_calls(provider_ids: list[str]) -> float:
    from django.db.models import Sum

    from sandbox.models import SandboxJob

    rows = SandboxJob.objects.filter(pk__in=provider_ids)
    status = rows.aggregate(total=Sum("status_calls"))["total"] or 0
    return (rows.count() + status) / max(1, len(provider_ids))


@dataclass
class Makespan:
    seconds: float
    cpu: dict[str, float]
    services: dict[str, float]  # PostgreSQL and Redis, not in the studio's floor
    calls: float
    submit_lag: list[float]
    stored_lag: list[float]
    previews_done: float
    failed: int


def studio_makespan(stack: Stack, team: Any, user: Any, count: int) -> Makespan:
    from jobs.models import Job, Output

    cpu_before = stack.cpu()
    services_before = services_cpu()
    bench_before = time.process_time()
    started = time.time()
    ids = create_jobs(team, user, count, "makespan")
    wait_done(ids, timeout=600)
    jobs = list(Job.objects.filter(pk__in=ids))
    finished = max(j.finished_at.timestamp() for j in jobs)
    wait_for(
        lambda: not Output.objects.filter(job_id__in=ids, preview="").exists(),
        120,
        "previews were not made",
    )
    previews = time.time() - started
    cpu_after = stack.cpu()
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    cpu["bench (job_create)"] = time.process_time() - bench_before
    services = {name: value - services_before[name] for name, value in services_cpu().items()}
    ended = provider_finish([j.provider_job_id for j in jobs if j.provider_job_id])
    return Makespan(
        seconds=finished - started,
        cpu=cpu,
        services=services,
        calls=provider_calls([j.provider_job_id for j in jobs if j.provider_job_id]),
        submit_lag=[
            (j.submitted_at - j.created_at).total_seconds() for j in jobs if j.submitted_at
        ],
        stored_lag=[
            j.finished_at.timestamp() - ended[j.provider_job_id]
            for j in jobs
            if j.provider_job_id in ended and j.status == Job.Status.COMPLETED
        ],
        previews_done=previews,
        failed=sum(1 for j in jobs if j.status != Job.Status.COMPLETED),
    )


class LiveListener:
    """One browser's event stream, in a thread: when each job's card first arrived completed."""

    def __init__(self, url: str, cookie: str) -> None:
        self.url, self.cookie = url, cookie
        self.completed: dict[int, float] = {}
        self.ready = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.ready.wait(30)

    def _run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("GET", f"{self.url}/events/", cookies={"sessionid": self.cookie}) as r,
        ):
            event = ""
            for line in r.iter_lines():
                self.ready.set()
                if self._stop:
                    return
                if line.startswith("event: job-") and line[11:].isdigit():
                    event = line[11:]
                elif line.startswith("data:") and event and 'data-status="completed"' in line:
                    self.completed.setdefault(int(event), time.time())
                elif not line:
                    event = ""

    def close(self) -> None:
        self._stop = True


def single_jobs(
    team: Any, user: Any, count: int, listener: LiveListener | None, gap: float
) -> tuple[list[float], list[float], float]:
    """Jobs one at a time: (provider finish → stored, → live event at the browser), calls/job."""
    from jobs.models import Job

    ids = []
    for i in range(count):
        ids += create_jobs(team, user, 1, f"single {i}")
        time.sleep(gap)
    wait_done(ids, timeout=300)
    if listener is not None:
        wait_for(lambda: all(i in listener.completed for i in ids), 30, "live events missing")
    jobs = list(Job.objects.filter(pk__in=ids, status=Job.Status.COMPLETED))
    ended = provider_finish([j.provider_job_id for j in jobs])
    stored = [j.finished_at.timestamp() - ended[j.provider_job_id] for j in jobs]
    live = []
    if listener is not None:
        live = [listener.completed[j.pk] - ended[j.provider_job_id] for j in jobs]
    return stored, live, provider_calls([j.provider_job_id for j in jobs])


@dataclass
class Baseline:
    makespan: float
    per_job: float
    calls: float
    latency: list[float]


def official_client(stack: Stack, count: int, threads: int) -> Baseline:
    """The official client as its README shows it: `generate.image` blocks until done."""
    from django.conf import settings
    from imagepipeline import ImagePipeline

    local = threading.local()
    results: list[tuple[str, float]] = []

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ImagePipeline(
                settings.SANDBOX_API_KEY, base_url=f"{stack.sandbox}/sandbox/imagepipeline"
            )
        job = client.generate.image(prompt=f"{PROMPT} official {i}", width=SIZE, height=SIZE)
        results.append((job.job_id, time.time()))

    started = time.time()
    if threads == 1:
        for i in range(count):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(count)))
    seconds = time.time() - started
    ended = provider_finish([job_id for job_id, _ in results])
    return Baseline(
        makespan=seconds,
        per_job=seconds / count,
        calls=provider_calls([job_id for job_id, _ in results]),
        latency=[returned - ended[job_id] for job_id, returned in results],
    )


@dataclass
class InFlight:
    jobs: int
    window: float  # the arrivals were spread over this many seconds
    arrived: float  # when the last job was made, after the first
    seconds: float  # when the last job was submitted, after the first was made
    lag: list[float]  # submitted_at - created_at, in the order the jobs were made
    peak_rss_mib: float
    rss_before_mib: float

    @property
    def rate(self) -> float:
        return self.jobs / max(self.seconds, 1e-9)

    def lag_of(self, part: slice) -> float:
        return pct(self.lag[part], 0.95)


def in_flight(stack: Stack, team: Any, user: Any, count: int, window: float) -> InFlight:
    """`count` jobs of 60 s arriving steadily over `window` seconds (ten batches a second), so
    that all of them are in flight at once at the end: does submission keep up (the lag
    stays flat) while the provider holds thousands of jobs?"""
    from jobs.models import Job

    knobs(stack, processing_seconds=60)
    for name in io_workers():
        if name != "worker":
            stack.stop(name)  # the goal: thousands in flight on one I/O worker process
    pid = stack.processes["worker"].pid
    rss_before = proc_kib(pid, "VmRSS") / 1024
    batches = max(1, round(window * 10))
    per_batch = -(-count // batches)
    ids: list[int] = []
    started = time.time()
    for index, first in enumerate(range(0, count, per_batch)):
        time.sleep(max(0.0, started + index * window / batches - time.time()))
        ids += create_jobs(team, user, min(per_batch, count - first), "in flight")
    arrived = time.time() - started
    wait_for(
        lambda: not Job.objects.filter(pk__in=ids, provider_job_id="").active().exists(),
        600,
        "submissions did not finish",
        every=0.2,
    )
    jobs = sorted(Job.objects.filter(pk__in=ids).exclude(submitted_at=None), key=lambda j: j.pk)
    last = max(j.submitted_at.timestamp() for j in jobs)
    knobs(stack, processing_seconds=None)
    return InFlight(
        jobs=len(jobs),
        window=window,
        arrived=arrived,
        seconds=last - started,
        lag=[(j.submitted_at - j.created_at).total_seconds() for j in jobs],
        peak_rss_mib=proc_kib(pid, "VmHWM") / 1024,
        rss_before_mib=rss_before,
    )


@dataclass
class FanOut:
    streams: int
    events: int
    latency: list[float]
    rss_per_stream_kib: float
    db_connections_idle: tuple[int, int] | None
    cost_ms: float


def fan_out(stack: Stack, sessions: list[str], streams: int, events: int, job_id: int) -> FanOut:
    """`streams` event streams open on the one web process, spread over several users; each
    of `events` job events is published once and timed to its arrival on every stream."""
    from studio.live import publish

    pid = stack.processes["web"].pid
    team_id = team_id_of_job(job_id)
    rss_before = proc_kib(pid, "VmRSS")
    arrivals: dict[int, list[float]] = {}
    sent: dict[int, float] = {}

    async def listen(
        client: httpx.AsyncClient, session: str, opened: asyncio.Event, counter: list[int]
    ) -> None:
        headers = {"Cookie": f"sessionid={session}"}
        async with client.stream("GET", f"{stack.web}/events/", headers=headers) as r:
            seen = 0
            async for line in r.aiter_lines():
                if line.startswith("retry:"):
                    counter[0] += 1
                    if counter[0] == streams:
                        opened.set()
                elif line.startswith("data:") and f'id="job-{job_id}"' in line:
                    arrivals.setdefault(seen, []).append(time.time())
                    seen += 1
                    if seen >= events:
                        return

    async def main() -> tuple[int, int | None, float]:
        opened = asyncio.Event()
        counter = [0]
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(30, read=None),
            limits=httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0),
        )
        tasks = [
            asyncio.create_task(listen(client, sessions[i % len(sessions)], opened, counter))
            for i in range(streams)
        ]
        await asyncio.wait_for(opened.wait(), 120)
        await asyncio.sleep(1.0)
        rss_open = proc_kib(pid, "VmRSS")
        idle = await asyncio.to_thread(_db_connections)
        cpu_before = proc_cpu(pid)
        for n in range(events):
            sent[n] = time.time()
            await asyncio.to_thread(publish, team_id, "job", job_id=job_id)
            await asyncio.sleep(0.5)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        cost = (proc_cpu(pid) - cpu_before) / events * 1000
        await client.aclose()
        return rss_open, idle, cost

    rss_open, idle, cost = asyncio.run(main())
    latency = [t - sent[n] for n, times in arrivals.items() for t in times]
    return FanOut(
        streams=streams,
        events=events,
        latency=latency,
        rss_per_stream_kib=(rss_open - rss_before) / streams,
        db_connections_idle=idle,
        cost_ms=cost,
    )


def team_id_of_job(job_id: int) -> int:
    from jobs.models import Job

    return Job.objects.values_list("team_id", flat=True).get(pk=job_id)


def _db_connections() -> tuple[int, int] | None:
    """The web process's connections to the benchmark database (its sessions are named by
    PGAPPNAME): (in use: in a query or a transaction, idle: waiting in its pool)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FILTER (WHERE state = "
            "'idle') FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'studio-web'"
        )
        busy, idle = cursor.fetchone()
        return busy, idle


# --- profiles -----------------------------------------------------------------------------------

PROFILES = ROOT / "var" / "bench-profile"


@contextlib.contextmanager
def profiling(stack: Stack, enabled: bool) -> Iterator[None]:
    """Sample the studio's processes with py-spy while the block runs; print where they spent
    their time (own time by function, and time under each of the studio's own functions)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not enabled or not Path(spy).exists():
        yield
        return
    PROFILES.mkdir(parents=True, exist_ok=True)
    spies = {
        name: subprocess.Popen(  # noqa: S603
            [
                spy,
                "record",
                "--pid",
                str(stack.processes[name].pid),
                "--rate",
                os.environ.get("BENCH_PROFILE_RATE", "200"),
                "--format",
                "raw",
                "--nonblocking",
                *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else []),
                *(["--idle"] if os.environ.get("BENCH_PROFILE_IDLE") else []),
                "--output",
                str(PROFILES / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("web", "sandbox", *io_workers(), "media")
    }
    time.sleep(1.0)
    try:
        yield
    finally:
        for process in spies.values():
            process.send_signal(2)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        for name in spies:
            summarise(name, PROFILES / f"{name}.txt")


def summarise(name: str, path: Path, top: int = 12) -> None:
    if not path.exists():
        return
    own: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        samples = int(count)
        total += samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples
        for frame in set(frames):
            if any(f"({app}/" in frame for app in ("jobs", "sandbox", "studio", "review")):
                ours[frame] = ours.get(frame, 0) + samples
    print(f"\n== {name}: {total} active samples")
    for label, table in (("own time", own), ("under the studio's functions", ours)):
        print(f"-- {label}")
        for frame, samples in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{samples / max(1, total) * 100:5.1f} %  {frame[:150]}")


# --- ingest memory (each in a fresh process) ----------------------------------------------------

INGEST_PROBE = r"""
import json, os, resource, sys, time
import django
django.setup()
from pathlib import Path
from jobs import catalog, fetch, media

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

what, arg = sys.argv[1], sys.argv[2]
before = hwm()
started = time.perf_counter()
if what == "download":
    guard = fetch.Guard(exempt_prefixes=[arg.rsplit("/", 1)[0] + "/"])
    got = fetch.download(arg, max_bytes=300 * 1024 * 1024, timeout=120, guard=guard)
    size = got.size
    got.discard()
elif what == "stored-check":
    info = media.inspect(catalog.Output(sys.argv[3]), Path(arg), preview=False)
    size = os.path.getsize(arg)
else:
    with open(arg, "rb") as handle:
        preview = media.make_preview(catalog.Output(what), handle)
    size = len(preview or b"")
print(json.dumps({"growth_kib": hwm() - before, "seconds": time.perf_counter() - started,
                  "size": size}))
"""


def probe(*args: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", INGEST_PROBE, *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = folder / self.path.lstrip("/")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with path.open("rb") as handle:
                shutil.copyfileobj(handle, self.wfile, 1024 * 1024)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def ingest(folder: Path) -> dict[str, dict[str, Any]]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    big = folder / "big.bin"
    with big.open("wb") as handle:
        chunk = os.urandom(1024 * 1024)
        for _ in range(200):
            handle.write(chunk)
    picture = Image.effect_noise((4096, 4096), 64).convert("RGB")
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")):
        picture.save(folder / f"big.{ext}", fmt, quality=90)
    wav = folder / "big.wav"
    import wave

    with wave.open(str(wav), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        block = os.urandom(4 * 48000)
        for _ in range(200 * 1024 * 1024 // len(block)):
            out.writeframes(block)
    results = {}
    with file_server(folder) as url:
        results["download 200 MB"] = probe("download", f"{url}/big.bin")
    for ext in ("jpg", "png", "webp"):
        results[f"thumbnail 4096² {ext}"] = probe("image", str(folder / f"big.{ext}"))
    results["waveform 200 MB WAV"] = probe("audio", str(wav))
    shutil.rmtree(folder, ignore_errors=True)
    return results


# --- the run -----------------------------------------------------------------------------------


def setup_django(keep: bool) -> tuple[str, str]:
    from benchmarks.run import _prepare_database

    os.environ.setdefault("BENCH_DB_NAME", "studio_bench_throughput")
    vendor, name = _prepare_database(keep)
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "studio.settings.local",
            "DEBUG": "false",
            "MEDIA_ROOT": str(ROOT / "var" / "bench-media"),
            "SANDBOX_QUEUE_SECONDS": "0",
            "SANDBOX_PROCESSING_SECONDS": "1",
            "SANDBOX_WEBHOOK_DELAY_SECONDS": "0",
            "CELERY_QUEUE": queue,
            "LIVE_CHANNEL_PREFIX": queue,
            "SANDBOX_ENABLED": "true",
            # A load test: the per-user submit rate (issue 10) would refuse the batch.
            "SUBMIT_RATE_LIMIT": "1000000",
        }
    )
    shutil.rmtree(ROOT / "var" / "bench-media", ignore_errors=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return vendor, name


def people(count: int) -> tuple[Any, list[Any], list[str]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from studio.models import Membership, Role, Team

    team = Team.objects.create(name="Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
    users, sessions = [], []
    for i in range(count):
        user = get_user_model().objects.create_user(username=f"bench-{team.slug}-{i}")
        Membership.objects.create(team=team, user=user, role=Role.OWNER if i == 0 else Role.EDITOR)
        client = Client()
        client.force_login(user)
        users.append(user)
        sessions.append(client.cookies["sessionid"].value)
    return team, users, sessions


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=10, help="jobs run one by one")
    parser.add_argument(
        "--scale-jobs", type=int, default=1000, help="a larger batch: does the makespan scale?"
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--single", type=int, default=30, help="single jobs per latency path")
    parser.add_argument("--in-flight", type=int, default=5000, help="jobs of 60 s in flight")
    parser.add_argument(
        "--in-flight-window", type=float, default=60.0, help="seconds the in-flight jobs come over"
    )
    parser.add_argument("--in-flight-only", action="store_true", help="measure in flight only")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--io-concurrency", type=int, default=24)
    parser.add_argument("--io-processes", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the processes during the makespan"
    )
    parser.add_argument("--makespan-only", action="store_true", help="measure the makespan only")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)

    os.environ["WORKER_IO_CONCURRENCY"] = str(args.io_concurrency)
    os.environ["WORKER_IO_PROCESSES"] = str(args.io_processes)
    vendor, db_name = setup_django(args.keep)
    load_start = os.getloadavg()
    stack = start_stack(args.io_concurrency)
    try:
        figures = run(args, stack)
    finally:
        stack.stop_all()
        if vendor == "postgresql" and not args.keep:
            from benchmarks.run import _drop_database

            _drop_database(db_name)
    if args.in_flight_only:
        flight = figures["inflight"]
        tenth = max(1, flight.jobs // 10)
        print(
            f"in flight {flight.jobs} over {flight.arrived:.1f} s, all submitted at "
            f"{flight.seconds:.1f} s ({flight.rate:.0f}/s); lag p50 {pct(flight.lag, 0.5):.2f} s, "
            f"p95 {pct(flight.lag, 0.95):.2f} s, max {max(flight.lag):.2f} s; p95 of the first "
            f"tenth {flight.lag_of(slice(0, tenth)):.2f} s, of the last "
            f"{flight.lag_of(slice(-tenth, None)):.2f} s; peak RSS {flight.peak_rss_mib:.0f} MiB"
        )
        return 0
    if args.makespan_only:
        studio = figures["studio"]
        cpu = {name: round(value, 2) for name, value in {**studio.cpu, **studio.services}.items()}
        per_job = sum(studio.cpu.values()) / len(studio.submit_lag) * 1000
        print(
            f"makespan {studio.seconds:.2f} s; CPU {cpu}; studio {per_job:.0f} ms per job; "
            f"calls {studio.calls:.2f}"
        )
        return 0
    lines = report(args, vendor, figures, load_start)
    replace_section(Path(args.output), "throughput", lines)
    print("\n".join(lines))
    print(f"\nWrote {args.output}")
    return 0


def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    team, users, sessions = people(10)
    user = users[0]
    figures: dict[str, Any] = {"loads": []}

    def note(label: str) -> None:
        load = os.getloadavg()[0]
        figures["loads"].append(load)
        print(f"[{time.strftime('%H:%M:%S')}] {label} (load {load:.1f})", flush=True)

    knobs(stack, balance_usd="1000000")  # the default account would run dry
    note("warming up")
    warm = create_jobs(team, user, 5, "warm-up")
    wait_done(warm, 60)
    official_client(stack, 2, 1)

    note(f"studio: {args.jobs} jobs in one transaction")
    with profiling(stack, args.profile):
        figures["studio"] = studio_makespan(stack, team, user, args.jobs)
    if args.scale_jobs and not (args.makespan_only or args.in_flight_only):
        note(f"studio: {args.scale_jobs} jobs in one transaction (scaling)")
        figures["scale"] = studio_makespan(stack, team, user, args.scale_jobs)
    if args.in_flight_only:
        note(f"in flight: {args.in_flight} jobs of 60 s over {args.in_flight_window:g} s")
        figures["inflight"] = in_flight(stack, team, user, args.in_flight, args.in_flight_window)
        return figures
    if args.makespan_only:
        return figures
    note(f"official client, {args.threads} threads: {args.jobs} jobs")
    figures["threads"] = official_client(stack, args.jobs, args.threads)
    note(f"official client, sequential: {args.sequential} jobs")
    figures["sequential"] = official_client(stack, args.sequential, 1)

    note("single jobs, webhook path")
    listener = LiveListener(stack.web, sessions[0])
    figures["webhook"] = single_jobs(team, user, args.single, listener, gap=0.4)
    listener.close()

    note("single jobs, polling path (JOB_WEBHOOKS off)")
    for name, argv in io_workers().items():
        stack.stop(name)
        stack.start(name, argv, JOB_WEBHOOKS="false")
    figures["polling"] = single_jobs(team, user, max(10, args.single // 2), None, gap=0.4)
    for name, argv in io_workers().items():
        stack.stop(name)
        stack.start(name, argv)

    note(f"live fan-out: {args.streams} streams")
    card_job = warm[0]
    figures["fanout"] = fan_out(stack, sessions, args.streams, 10, card_job)

    note(f"in flight: {args.in_flight} jobs of 60 s over {args.in_flight_window:g} s")
    figures["inflight"] = in_flight(stack, team, user, args.in_flight, args.in_flight_window)

    stack.stop_all()  # the in-flight jobs would finish during the ingest probes otherwise
    note("ingest memory")
    figures["ingest"] = ingest(ROOT / "var" / "bench-ingest")
    note("done")
    return figures


def fmt(value: float, unit: str = "", digits: int = 2) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def report(args: argparse.Namespace, vendor: str, f: dict[str, Any], load: Any) -> list[str]:
    import django

    studio: Makespan = f["studio"]
    threads: Baseline = f["threads"]
    sequential: Baseline = f["sequential"]
    stored_w, live_w, calls_w = f["webhook"]
    stored_p, _, calls_p = f["polling"]
    fan: FanOut = f["fanout"]
    flight: InFlight = f["inflight"]
    cpu_total = sum(studio.cpu.values())
    cores = os.cpu_count() or 1
    floor = cpu_total / cores
    services_total = sum(studio.services.values())
    full_floor = (cpu_total + services_total) / cores
    seq_makespan = sequential.per_job * args.jobs
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()

    def lat(samples: list[float]) -> str:
        if not samples:
            return "n/a"
        return " / ".join(f"{pct(samples, q) * 1000:,.0f}" for q in (0.5, 0.95, 0.99)) + " ms"

    rows = [
        (
            f"makespan, {args.jobs} text→image jobs (1 s processing)",
            fmt(studio.seconds, " s"),
            f"{fmt(threads.makespan, ' s')} (8 threads); {fmt(seq_makespan, ' s', 0)} sequential "
            f"({args.sequential} run × {args.jobs // args.sequential})",
            f"{threads.makespan / studio.seconds:.1f}× / {seq_makespan / studio.seconds:.0f}×",
        ),
        *(
            [
                (
                    f"makespan, {args.scale_jobs} jobs (scaling)",
                    f"{fmt(scale.seconds, ' s')}: {scale.seconds / args.scale_jobs * 1000:.1f} ms "
                    f"per job against {studio.seconds / args.jobs * 1000:.1f} for {args.jobs} "
                    f"({scale.seconds / args.scale_jobs / (studio.seconds / args.jobs):.2f}×); "
                    f"{scale.failed} not completed",
                    "",
                    "",
                )
            ]
            if (scale := f.get("scale"))
            else []
        ),
        (
            "makespan ÷ CPU floor (all studio processes' CPU ÷ cores)",
            f"{studio.seconds / floor:.2f} (floor {floor:.1f} s: "
            f"{cpu_total / args.jobs * 1000:.0f} ms CPU per job); with PostgreSQL's and "
            f"Redis's CPU too {studio.seconds / full_floor:.2f} ({full_floor:.1f} s: "
            f"{(cpu_total + services_total) / args.jobs * 1000:.0f} ms per job)",
            "",
            "",
        ),
        (
            "notification, provider done → output stored, webhook path (p50 / p95 / p99)",
            lat(stored_w),
            "n/a (no webhook receiver)",
            "",
        ),
        (
            "notification, provider done → live event at the browser, webhook path",
            lat(live_w),
            "n/a (no live view)",
            "",
        ),
        (
            "notification, provider done → stored (studio) / call returns (client), polling path",
            lat(stored_p),
            lat(sequential.latency) + " (polls every 3 s)",
            f"{pct(sequential.latency, 0.5) / max(1e-3, pct(stored_p, 0.5)):.1f}× at p50",
        ),
        (
            f"notification during the {args.jobs}-job batch, done → stored",
            lat(studio.stored_lag),
            lat(threads.latency) + " (8 threads)",
            "",
        ),
        (
            "provider API calls per job (submit + status)",
            f"{calls_w:.2f} single, {studio.calls:.2f} batch; {calls_p:.2f} polling path",
            f"{threads.calls:.2f}",
            f"{threads.calls / studio.calls:.1f}× fewer",
        ),
        (
            f"in flight: {flight.jobs:,} jobs of 60 s on one I/O worker process, arriving "
            f"steadily over {flight.window:g} s",
            f"all made in {flight.arrived:.1f} s and submitted by {flight.seconds:.1f} s "
            f"({flight.rate:.0f}/s); submit lag p50 {pct(flight.lag, 0.5):.2f} s, p95 "
            f"{pct(flight.lag, 0.95):.2f} s, max {max(flight.lag):.2f} s (p95 of the first tenth "
            f"{flight.lag_of(slice(0, max(1, flight.jobs // 10))):.2f} s, of the last "
            f"{flight.lag_of(slice(-max(1, flight.jobs // 10), None)):.2f} s); "
            f"peak RSS {flight.peak_rss_mib:.0f} MiB",
            f"{args.threads} (one per thread; 1 sequential)",
            f"{flight.jobs / args.threads:.0f}×",
        ),
        (
            f"live fan-out: {fan.streams:,} open streams on one web process, {fan.events} events",
            f"delivery p50 {pct(fan.latency, 0.5) * 1000:.0f} ms, p95 "
            f"{pct(fan.latency, 0.95) * 1000:.0f} ms; {fan.rss_per_stream_kib:.0f} KiB per "
            f"stream; {fan.cost_ms:.0f} ms web CPU per event; "
            + (
                "web DB connections while the streams are idle: "
                f"{fan.db_connections_idle[0]} in use, "
                f"{fan.db_connections_idle[1]} idle in its pool"
                if fan.db_connections_idle is not None
                else "DB connections not counted (SQLite)"
            ),
            "n/a",
            "",
        ),
    ]
    for name, result in f["ingest"].items():
        rows.append(
            (
                f"ingest: {name}",
                f"peak RSS +{result['growth_kib'] / 1024:.1f} MiB, {result['seconds']:.2f} s",
                "n/a (the client only returns the URL)" if "download" in name else "n/a",
                "",
            )
        )
    cpu_lines = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in studio.cpu.items())
    loads = f["loads"]
    lines = [
        "## Throughput: the studio against the official client, side by side",
        "",
        f"`make bench` (`python -m benchmarks.throughput`), "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit `{commit}`. The figures are the "
        "ones this run measured.",
        "",
        f"- Machine: {cores} cores ({_cpu()}), {platform.platform(terse=True)}, Python "
        f"{platform.python_version()}, Django {django.get_version()}, "
        f"{'PostgreSQL' if vendor == 'postgresql' else 'SQLite'}, Redis (embedded).",
        f"- Load average (1 min) at the start {load[0]:.1f}, during the phases "
        f"{min(loads):.1f}–{max(loads):.1f} (the run's own processes included)"
        + (
            ": the machine was shared, so absolute figures are noisy; the ratios are measured "
            "in the same run."
            if load[0] > 1.0
            else "; the machine was otherwise quiet when the run began."
        ),
        "- Studio: web (uvicorn, ASGI), sandbox (uvicorn, own process), Celery workers for "
        f"provider I/O ({args.io_processes} processes of {args.io_concurrency} threads, one per "
        "core; the in-flight measure on one), media (2 processes) and exports (1), beat, "
        "Redis. Sandbox: 1 s processing, no queue, webhooks on unless said.",
        f"- Official client: `imagepipeline` 0.4.0 from PyPI, unchanged, `generate.image` as its "
        f"README shows (submits, then polls every 3 s); in {args.threads} threads, and "
        f"sequentially on {args.sequential} jobs (scaled to {args.jobs}: 200 sequential jobs "
        "take over 10 minutes). It only returns the result URL; the studio also downloads, "
        "checks and stores every result and makes its thumbnail.",
        f"- Studio CPU during the {args.jobs}-job batch: {cpu_lines}; beside it, "
        + ", ".join(f"{name} {value:.1f} s" for name, value in studio.services.items())
        + " (the servers' own processes).",
        f"- {studio.failed} of the {args.jobs} studio jobs did not complete; previews were all "
        f"made {studio.previews_done:.1f} s after the first create. Submit lag in the batch: "
        f"p50 {pct(studio.submit_lag, 0.5):.2f} s, max {max(studio.submit_lag):.2f} s.",
        "",
        "| measure | studio | official client | ratio |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    return lines


def _cpu() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
