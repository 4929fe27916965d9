"""`make bench`: gallery, review-queue and usage pages with 100,000 seeded outputs.

On PostgreSQL (when DATABASE_URL points at one) the benchmark creates its own database
(`studio_bench`, or BENCH_DB_NAME), seeds it, measures, writes BENCHMARKS.md and drops the
database again. Otherwise it says so and runs on a throwaway SQLite file, whose figures are
not the PostgreSQL ones.

Two teams are seeded in the same database: a baseline team with 1,000 outputs and a large one
with 100,000. Each page is requested through Django's test client in this process (server
time: middleware, queries and template rendering, no HTTP hop), a few times to warm up and then
REPEAT times; p50/p95 are of those. Queries per page are counted on a separate request. The
ratio column is the large team's p50 over the baseline's for the same page: near 1 means the
page does not slow down as the gallery grows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.report import replace_section

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "make bench"


@dataclass
class Result:
    page: str
    url: str
    p50: float
    p95: float
    queries: int
    rows: int


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _prepare_database(keep: bool) -> tuple[str, str]:
    """Point DATABASE_URL at a fresh benchmark database; return (vendor, note)."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        name = os.environ.get("BENCH_DB_NAME", "studio_bench")
        parts = urlsplit(url)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
        print(f"PostgreSQL: benchmarking in a fresh database “{name}” at {parts.hostname}.")
        return "postgresql", name
    path = ROOT / "var" / "bench.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    print(
        "DATABASE_URL does not point at PostgreSQL: running on a throwaway SQLite file. "
        "These are not the PostgreSQL figures; set DATABASE_URL=postgres://… for those."
    )
    return "sqlite", str(path)


def _drop_database(name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    # The connections go back to this process's pool (settings: DATABASE_POOL_MAX): close it.
    connections["default"].close_pool()
    url = os.environ["DATABASE_URL"]
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _machine(vendor: str) -> list[str]:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    system = platform.platform()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        fields = dict(
            line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line
        )
        system = fields.get("PRETTY_NAME", system).strip('"')
    debian = Path("/etc/debian_version")
    if debian.exists():
        system += f" (Debian {debian.read_text().strip()})"
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            cursor.execute("select sqlite_version()")
            database = f"SQLite {cursor.fetchone()[0]}"
    return [
        f"- CPU: {os.cpu_count()} cores, {cpu}",
        f"- Memory: {mem_kib / 1024 / 1024:.1f} GiB",
        f"- OS: {system}, kernel {platform.release()}",
        f"- Python {platform.python_version()}, Django {django.get_version()}, {database}",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)

    vendor, db_name = _prepare_database(args.keep)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")
    os.environ["DEBUG"] = "false"  # debug mode logs every query and slows templates
    os.environ.setdefault("MEDIA_ROOT", str(ROOT / "var" / "bench-media"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)
    try:
        return _run(args, vendor)
    finally:
        if vendor == "postgresql" and not args.keep:
            _drop_database(db_name)


def _run(args: argparse.Namespace, vendor: str) -> int:
    from django.db import connection

    from review.seeding import seed_outputs

    started = time.monotonic()
    small = seed_outputs(slug="bench-small", count=args.baseline, batch=5000, seed=1)
    seeded_small = time.monotonic() - started
    started = time.monotonic()
    large = seed_outputs(slug="bench-large", count=args.large, batch=5000, seed=2)
    seeded_large = time.monotonic() - started
    started = time.monotonic()
    for seeded in (small, large):
        _price(seeded)
    priced = time.monotonic() - started
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"Seeded {args.baseline:,} outputs in {seeded_small:.1f} s and "
        f"{args.large:,} in {seeded_large:.1f} s; priced and summed per day in {priced:.1f} s."
    )

    results = _measure_teams(small, large, args.repeat)

    lines = _report(args, vendor, results, small, large, seeded_large, priced)
    replace_section(Path(args.output), "pages", lines)
    print("\n".join(lines))
    print(f"\nWrote {args.output}")
    return 0


def _price(seeded: Any) -> None:
    """Give the seeded jobs the costs the sandbox reports per endpoint, then build the team's
    per-day usage rows from them (`usage_rebuild`, as `manage.py usage_rebuild` does)."""
    from jobs import catalog
    from jobs.models import Job
    from sandbox.engine import cost_for
    from usage.services import usage_rebuild

    for endpoint in catalog.ENDPOINTS:
        Job.objects.filter(team=seeded.team, endpoint=endpoint.key).update(
            cost_usd=cost_for(endpoint), processing_time_seconds=4.0
        )
    usage_rebuild(team=seeded.team)


def _pages(seeded: Any) -> list[tuple[str, str]]:
    from jobs.models import Job
    from review import selectors
    from review.models import Review, State

    team = seeded.team
    total = Job.objects.filter(team=team).count()
    deep_job = (
        Job.objects.filter(team=team)
        .order_by("-created_at", "-id")
        .values_list("created_at", "pk")[int(total * 0.9)]
    )
    pending = Review.objects.filter(team=team, state=State.PENDING)
    deep_review = pending.order_by("entered_at", "id").values_list("entered_at", "pk")[
        int(pending.count() * 0.9)
    ]
    return [
        ("gallery, first page", "/"),
        ("gallery, deep keyset page (90 %)", f"/?after={selectors.encode_cursor(*deep_job)}"),
        ("gallery, filtered (approved text→image)", "/?state=approved&endpoint=text-to-image"),
        ("gallery, filtered (one creator, rejected)", f"/?creator={_creator(team)}&state=rejected"),
        ("gallery, prompt search", "/?q=lighthouse+dusk"),
        ("gallery, starred by me", "/?starred=on"),
        ("review queue, first page", "/review/"),
        (
            "review queue, deep keyset page (90 %)",
            f"/review/?after={selectors.encode_cursor(*deep_review)}",
        ),
        ("review queue, filtered (image edit)", "/review/?endpoint=image-edit"),
        ("usage page, 30 days", "/usage/"),
        ("usage page, 365 days", "/usage/?days=365"),
        ("usage CSV, 365 days", "/usage/usage.csv?days=365"),
    ]


def _creator(team: Any) -> int:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=f"{team.slug}-editor2").pk


def _measure_teams(small: Any, large: Any, repeat: int) -> dict[str, list[Result]]:
    """Time each page for both teams, alternating one request of each, so that whatever else
    the machine does at that moment weighs on both sides of the ratio alike."""
    from django.test import Client

    teams = (small, large)
    clients = {}
    for seeded in teams:
        clients[seeded.team.slug] = Client()
        clients[seeded.team.slug].force_login(seeded.reviewer)
    pages = {seeded.team.slug: _pages(seeded) for seeded in teams}
    out: dict[str, list[Result]] = {seeded.team.slug: [] for seeded in teams}
    for index in range(len(pages[small.team.slug])):
        samples: dict[str, list[float]] = {seeded.team.slug: [] for seeded in teams}
        for slug in samples:
            for _ in range(3):
                _body(clients[slug], pages[slug][index][1])
        for _ in range(repeat):
            for slug in samples:
                begin = time.perf_counter()
                _body(clients[slug], pages[slug][index][1])
                samples[slug].append((time.perf_counter() - begin) * 1000)
        for slug, timed in samples.items():
            name, url = pages[slug][index]
            out[slug].append(_result(clients[slug], name, url, timed))
            print(f"  {slug:12} {name:44} p50 {out[slug][-1].p50:7.1f} ms")
    return out


def _result(client: Any, name: str, url: str, samples: list[float]) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        body = _body(client, url)
    if url.startswith("/usage/usage.csv"):
        rows = body.count("\n") - 1
    elif url.startswith("/usage/"):
        rows = body.count("<tr>")
    else:
        rows = body.count('class="card ') + body.count('class="queue-item ')
    return Result(
        page=name,
        url=url,
        p50=statistics.median(samples),
        p95=_percentile(samples, 0.95),
        queries=len(queries),
        rows=rows,
    )


def _body(client: Any, url: str) -> str:
    """Return the page (a streamed CSV read to its end), checking it answered 200."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _report(
    args: argparse.Namespace,
    vendor: str,
    results: dict[str, list[Result]],
    small: Any,
    large: Any,
    seeded_large: float,
    priced: float,
) -> list[str]:
    base = {r.page: r for r in results[small.team.slug]}
    lines = [
        "## Gallery, review queue and usage at 100,000 outputs",
        "",
        f"Produced by `{COMMAND}` (`python -m benchmarks.run`) on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Re-run it to refresh this file; "
        "the figures below are the ones that run measured, not edited.",
        "",
        "### Machine",
        "",
        *_machine(vendor),
        "",
        "### Method",
        "",
        f"- Database: {'PostgreSQL, a fresh `studio_bench` database created and dropped by the run' if vendor == 'postgresql' else 'SQLite (DATABASE_URL did not point at PostgreSQL): not the production figures'}.",  # noqa: E501
        f"- Data: `review.seeding` (as `manage.py seed_outputs`) puts {args.baseline:,} outputs in "
        f"a baseline team and {args.large:,} in a large team of the same database (seeding the "
        f"large team took {seeded_large:.0f} s): 10 endpoints, 4 creators, a year of history, "
        "55 % pending / 28 % approved / 9 % changes requested / 8 % rejected, 1 % on boards, "
        "2 % starred by the reviewer. All outputs share one tiny placeholder file. Each job "
        "then gets the sandbox's cost for its endpoint, and the per-day usage rows are built "
        f"from the jobs (`usage_rebuild`; both teams took {priced:.1f} s).",
        "- Each page is requested as the team's reviewer through Django's test client, in "
        f"process: 3 warm-up requests, then {args.repeat} timed ones, alternating one request "
        "of the baseline team with one of the large team (server time: middleware, "
        "session, queries, template rendering; no HTTP hop, no browser). Queries are counted on "
        "one more request.",
        "- Ratio = p50 with the large team ÷ p50 with the baseline team, same page, same run.",
        "",
        "### Figures",
        "",
        f"| page | rows ({args.baseline:,} / {args.large:,}) | p50 ms ({args.baseline:,}) "
        f"| p50 ms ({args.large:,}) | p95 ms ({args.large:,}) | ratio p50 "
        f"| queries ({args.baseline:,} / {args.large:,}) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results[large.team.slug]:
        b = base[result.page]
        lines.append(
            f"| {result.page} | {b.rows} / {result.rows} | {b.p50:.1f} | {result.p50:.1f} | "
            f"{result.p95:.1f} | {result.p50 / b.p50:.2f} | {b.queries} / {result.queries} |"
        )
    lines += [
        "",
        "Rows: cards (gallery) or queue items rendered on the page. The gallery shows 48 cards a "
        "page, the queue 30 items plus the oldest output open beside them. Usage pages: table "
        "rows of the breakdowns (per member, profile, endpoint, casting run); the CSV: its "
        "lines, one per day × endpoint × member × profile × run.",
        "",
        "URLs measured (large team):",
        "",
        *(f"- {r.page}: `{r.url}`" for r in results[large.team.slug]),
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
