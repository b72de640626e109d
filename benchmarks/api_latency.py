"""API latency on MariaDB holding N simulated CI runs: `GET /api/v1/systems` and the grid.

1. Load (skipped with --reuse when the database already holds a finished load): a generator
   makes a realistic history ending now: about 40 CI systems (one reference CI that follows every
   project, the others a handful of projects each, some healthy, some failing, slow, flaky or
   silent), a few hundred projects of very uneven activity, changes with several patch sets,
   each answered by the CIs following its project (rechecks after failures), job results for the
   CIs that list their jobs. The schema comes from the migrations; rows go in with
   `LOAD DATA LOCAL INFILE` in large chunks, written by this process while MariaDB loads the
   previous chunk, into `ci_runs` / `job_results` stripped of their secondary indexes and
   foreign keys, which are then rebuilt in one sorted pass each (and checked to match the
   migrated schema exactly). The derived tables come from the product's own code
   (`rebuild_rollups`: INSERT ... SELECT ... GROUP BY), CI systems' first/last seen from the runs.
2. Measure: `cidash serve --role api --no-migrate` in a subprocess, then sequential requests
   from this process (after a warm-up): p50 / p95 / p99 per endpoint.

Usage: .venv/bin/python benchmarks/api_latency.py [--runs 10000000] [--reuse] [--requests 300]
Target (issue 4): p95 < 30 ms for the systems summary and the grid at 10 M runs (issue 15: the 30 d
summary too, its run-level metrics computed in the background; the time they first take is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench_server import Server, api_server, cpu_seconds, quantile
from cidash.store.engine import create_engine
from cidash.store.migrate import upgrade
from cidash.store.rollups import rebuild_rollups

DEFAULT_ADMIN_URL = "mysql+aiomysql://cidash_test:cidash_test@127.0.0.1:3306/"
DEFAULT_DATABASE = "cidash_bench"
RUNS_PER_DAY = 47_000  # 5x OpenStack's third-party CI comment rate: more runs mean a longer history
CHUNK_RUNS = 250_000  # runs per LOAD DATA file
TAIL_S = 3 * 3600.0  # about the answer time of the CIs
TEMP_TABLE_BYTES = 6 << 30
TARGET_P95_MS = 30.0
MONTH_PATH = "/api/v1/systems?window=30d"
SERVER = "review.example.org"
INFRA = ("NODE_FAILURE", "RETRY_LIMIT", "ERROR")
VENDORS = (
    "acme",
    "bigblue",
    "cobalt",
    "delta",
    "ember",
    "falcon",
    "garnet",
    "helix",
    "indigo",
    "jade",
    "krypton",
    "lumen",
    "magnet",
    "nimbus",
    "onyx",
    "photon",
    "quartz",
    "radius",
    "sierra",
    "tundra",
    "umbra",
    "vertex",
    "wolfram",
    "xenon",
    "yonder",
    "zephyr",
    "arbor",
    "basalt",
    "cinder",
    "dune",
    "echo",
    "fjord",
    "glacier",
    "harbor",
    "iris",
    "juniper",
    "kestrel",
    "lotus",
    "meridian",
)
ZUUL_JOBS = ("openstack-tox-pep8", "openstack-tox-py311", "tempest-full-py3", "grenade")
VENDOR_JOBS = ("vendor-tempest-dsvm", "vendor-functional")
LOADED_TABLES = ("changes", "patchsets", "ci_runs", "job_results")


# -- the simulated world --------------------------------------------------------------------------


@dataclass
class CI:
    id: int
    name: str
    reference: bool
    answer: float  # share of the patch sets it follows that it answers
    fail_extra: float  # failures on top of the change's own (a broken CI: high)
    infra: float  # infra error share
    latency_median_s: float
    jobs: tuple[str, ...]
    stops_at: float | None = None  # a CI that went silent


@dataclass
class Shape:
    runs: int
    projects: int = 300
    systems: int = 40
    runs_per_day: int = RUNS_PER_DAY
    seed: int = 4


@dataclass
class Chunk:
    """TSV lines per table, in id order (the columns of :data:`COLUMNS`)."""

    changes: list[str] = field(default_factory=list)
    patchsets: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


def make_systems(shape: Shape, rng: random.Random, now: float) -> list[CI]:
    systems = [CI(1, "zuul", True, 0.99, 0.0, 0.02, 2400.0, ZUUL_JOBS)]
    for index in range(1, shape.systems):
        name = f"{VENDORS[(index - 1) % len(VENDORS)]}-ci" + (f"-{index}" if index > len(VENDORS) else "")
        kind = index % 10
        ci = CI(
            id=index + 1,
            name=name,
            reference=False,
            answer=0.6 if kind == 3 else rng.uniform(0.9, 0.99),
            fail_extra=0.6 if kind == 7 else rng.uniform(0.0, 0.08),
            infra=0.25 if kind == 5 else rng.uniform(0.0, 0.05),
            latency_median_s=5 * 3600.0 if kind == 9 else rng.uniform(900, 7200),
            jobs=VENDOR_JOBS if index % 8 == 1 else (),
        )
        if index == 11:
            ci.stops_at = now - 3 * 86400  # silent for three days
        systems.append(ci)
    return systems


def followers_by_project(shape: Shape, systems: list[CI], weights: list[float], rng: random.Random) -> list[list[CI]]:
    """Per project, the CIs commenting on it: the reference everywhere, each other CI on 3-40
    projects, popular ones more likely."""
    followers: list[list[CI]] = [[systems[0]] for _ in range(shape.projects)]
    for ci in systems[1:]:
        count = rng.randint(3, 40)
        chosen: set[int] = set()
        while len(chosen) < min(count, shape.projects):
            chosen.add(rng.choices(range(shape.projects), weights)[0])
        for project in chosen:
            followers[project].append(ci)
    return followers


def _ts(moment: float) -> str:
    return str(int(moment))


def _nullable(value: object) -> str:
    return "\\N" if value is None else str(value)


class Generator:
    """Changes, patch sets, runs and jobs in time order, `Shape.runs` runs ending at `now`."""

    def __init__(self, shape: Shape, now: float) -> None:
        self.shape = shape
        self.now = now
        self.rng = random.Random(shape.seed)
        self.systems = make_systems(shape, self.rng, now)
        self.project_names = [f"openstack/project-{i:03d}" for i in range(shape.projects)]
        weights = [1.0 / (i + 1) ** 1.1 for i in range(shape.projects)]
        self.cum_weights = list(_accumulate(weights))
        self.followers = followers_by_project(shape, self.systems, weights, self.rng)
        self.step_s = 86400.0 / shape.runs_per_day  # clock advance per run made
        # runs answered after `now` are never made: start a little earlier to make up for them
        self.clock = now - shape.runs * self.step_s - TAIL_S
        self.change_id = self.patchset_id = self.run_id = self.job_id = 0

    def chunks(self, chunk_runs: int) -> Iterator[Chunk]:
        chunk = Chunk()
        while self.run_id < self.shape.runs and self.clock <= self.now:
            self._change(chunk)
            if len(chunk.runs) >= chunk_runs:
                yield chunk
                chunk = Chunk()
        yield chunk

    def _change(self, chunk: Chunk) -> None:
        rng = self.rng
        self.change_id += 1
        number = 900_000 + self.change_id
        project_no = min(bisect.bisect(self.cum_weights, rng.random() * self.cum_weights[-1]), self.shape.projects - 1)
        project = self.project_names[project_no]
        branch = "master" if rng.random() < 0.9 else rng.choice(("stable/2025.2", "stable/2025.1"))
        patchsets = min(1 + int(rng.expovariate(0.7)), 12)
        created = self.clock
        made = 0
        for ps_number in range(1, patchsets + 1):
            self.patchset_id += 1
            chunk.patchsets.append(
                f"{self.patchset_id}\t{self.change_id}\t{ps_number}\t{_ts(created)}\tREWORK\t{self.patchset_id:040x}"
            )
            made += self._answers(chunk, project_no, branch, number, ps_number, created)
            created += rng.expovariate(1 / (8 * 3600))
            if created > self.now or self.run_id >= self.shape.runs:
                break
        recent = created > self.now - 2 * 86400
        status = "NEW" if recent else rng.choices(("MERGED", "ABANDONED", "NEW"), (0.6, 0.1, 0.3))[0]
        chunk.changes.append(
            f"{self.change_id}\t1\t{number}\tI{number:040x}\t{project}\t{branch}\t{status}\t"
            f"Change {number} of {project}\thttps://{SERVER}/c/{project}/+/{number}\t{_ts(self.now)}"
        )
        self.clock += max(made, 1) * self.step_s

    def _answers(self, chunk: Chunk, project_no: int, branch: str, change: int, ps: int, created: float) -> int:
        """Every following CI's runs on one patch set; returns how many."""
        rng = self.rng
        project = self.project_names[project_no]
        broken = rng.random() < 0.12  # the patch set itself is bad: good CIs fail it
        made = 0
        for ci in self.followers[project_no]:
            if rng.random() > ci.answer:
                continue
            posted = created + rng.lognormvariate(math.log(ci.latency_median_s), 0.6)
            for attempt in range(3):
                if posted > self.now or (ci.stops_at is not None and posted > ci.stops_at):
                    break
                if self.run_id >= self.shape.runs:
                    return made
                result = self._result(ci, broken)
                self._run(chunk, ci, project, branch, change, ps, created, posted, result)
                made += 1
                if result == "SUCCESS" or rng.random() > 0.3 or attempt == 2:
                    break
                posted += rng.uniform(1800, 4 * 3600)  # someone typed "recheck"
        return made

    def _result(self, ci: CI, broken: bool) -> str:
        draw = self.rng.random()
        if draw < ci.infra:
            return INFRA[int(draw * 1000) % len(INFRA)]
        if broken and draw < 0.9:
            return "FAILURE"
        return "FAILURE" if self.rng.random() < ci.fail_extra + 0.03 else "SUCCESS"

    def _run(
        self,
        chunk: Chunk,
        ci: CI,
        project: str,
        branch: str,
        change: int,
        ps: int,
        created: float,
        posted: float,
        result: str,
    ) -> None:
        self.run_id += 1
        run_id = self.run_id
        ok = result == "SUCCESS"
        vote = 1 if ok else -1
        words = "Build succeeded." if ok else "Build failed."
        pipeline = "gate" if ci.reference and run_id % 5 == 0 else "check"
        message_id = f"m{run_id:x}" if run_id % 2 else None
        chunk.runs.append(
            f"{run_id}\t1\t{ci.id}\t{self.patchset_id}\t{project}\t{branch}\t{change}\t{ps}\t{result}\t{vote}\t"
            f"{pipeline}\t{_ts(posted)}\t{int(posted) - int(created)}\t{run_id:032x}\t{run_id:064x}\t"
            f"{_nullable(message_id)}\tstream\tPatch Set {ps}: Verified{vote:+d}\\n\\n{words}\tbench"
        )
        failed_job = run_id % len(ci.jobs) if ci.jobs else -1
        for position, job in enumerate(ci.jobs):
            self.job_id += 1
            job_result = result if not ok and position == failed_job else "SUCCESS"
            url = f"https://logs.example.org/{change % 100:02d}/{change}/{ps}/{pipeline}/{job}/{run_id:07x}/"
            chunk.jobs.append(
                f"{self.job_id}\t{run_id}\t{position}\t{job}\t{url}\t{job_result}\t{600 + run_id % 3000}\t1\t\\N"
            )


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


# -- loading ----------------------------------------------------------------------------------------

# LOAD DATA column lists: `@t` columns are epoch seconds, converted by MariaDB (UTC session)
COLUMNS = {
    "changes": "(id, server_id, number, change_id, project, branch, status, subject, url, @t) "
    "SET updated_at = FROM_UNIXTIME(@t)",
    "patchsets": "(id, change_db_id, number, @t, kind, revision) SET created_at = FROM_UNIXTIME(@t)",
    "ci_runs": "(id, server_id, ci_system_id, patchset_id, project, branch, change_number, patchset_number, result, "
    "vote, pipeline, @t, latency_s, content_key, dedup_key, message_id, source, raw_comment, parsed_with) "
    "SET posted_at = FROM_UNIXTIME(@t)",
    "job_results": "(id, run_id, position, name, url, result, duration_s, voting, detail)",
}
_KEY_LINE = re.compile(r"^\s*((?:UNIQUE )?KEY `([^`]+)` .*?),?$")
_FK_LINE = re.compile(r"^\s*(CONSTRAINT `([^`]+)` FOREIGN KEY .*?),?$")


def connect(url: sa.URL, database: str | None) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=database,
        local_infile=True,
        charset="utf8mb4",
        autocommit=True,
    )


def create_table_sql(cur: Any, table: str) -> str:
    cur.execute(f"SHOW CREATE TABLE `{table}`")
    text: str = cur.fetchone()[1]
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)


@dataclass
class Stripped:
    """A table's secondary keys and foreign keys, as SHOW CREATE TABLE prints them."""

    table: str
    original: str
    keys: list[tuple[str, str]]
    foreign: list[tuple[str, str]]

    @classmethod
    def strip(cls, cur: Any, table: str) -> Stripped:
        original = create_table_sql(cur, table)
        keys, foreign = [], []
        for line in original.splitlines():
            if match := _KEY_LINE.match(line):
                keys.append((match.group(2), match.group(1)))
            elif match := _FK_LINE.match(line):
                foreign.append((match.group(2), match.group(1)))
        if foreign:
            cur.execute(f"ALTER TABLE `{table}` " + ", ".join(f"DROP FOREIGN KEY `{name}`" for name, _ in foreign))
        if keys:
            cur.execute(f"ALTER TABLE `{table}` " + ", ".join(f"DROP INDEX `{name}`" for name, _ in keys))
        return cls(table, original, keys, foreign)

    def restore(self, cur: Any) -> None:
        """Every key in one ALTER (one scan, a sort per index), then the foreign keys unchecked."""
        if self.keys:
            cur.execute(f"ALTER TABLE `{self.table}` " + ", ".join(f"ADD {line}" for _, line in self.keys))
        if self.foreign:
            cur.execute(f"ALTER TABLE `{self.table}` " + ", ".join(f"ADD {line}" for _, line in self.foreign))
        now = create_table_sql(cur, self.table)
        if now != self.original:
            raise RuntimeError(f"{self.table}: rebuilt schema differs from the migrated one:\n{now}\n{self.original}")


def write_static(cur: Any, gen: Generator) -> None:
    """Server, accounts and CI systems (first/last seen are set from the runs afterwards)."""
    cur.execute("INSERT INTO gerrit_servers (id, name) VALUES (1, %s)", (SERVER,))
    for ci in gen.systems:
        cur.execute(
            "INSERT INTO accounts (id, server_id, account_key, gerrit_account_id, username, name, email) "
            "VALUES (%s, 1, %s, %s, %s, %s, %s)",
            (ci.id, ci.name, 10_000 + ci.id, ci.name, f"{ci.name} bot", f"{ci.name}@ci.example.org"),
        )
        cur.execute(
            "INSERT INTO ci_systems (id, server_id, account_id, display_name, owner, is_reference, source, confirmed) "
            "VALUES (%s, 1, %s, %s, %s, %s, 'group', 1)",
            (ci.id, ci.id, ci.name.replace("-", " ").title(), f"team@{ci.name}.example.org", ci.reference),
        )


def load_file(url: sa.URL, database: str, table: str, path: Path) -> None:
    conn = connect(url, database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00', foreign_key_checks = 0, unique_checks = 0")
            cur.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 {COLUMNS[table]}", (str(path),)
            )
    finally:
        conn.close()
        path.unlink()


def write_chunk(directory: Path, number: int, chunk: Chunk) -> list[tuple[str, Path]]:
    files = []
    for table, lines in zip(LOADED_TABLES, (chunk.changes, chunk.patchsets, chunk.runs, chunk.jobs), strict=True):
        if lines:
            path = directory / f"{table}.{number}.tsv"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            files.append((table, path))
    return files


def load_rows(url: sa.URL, database: str, gen: Generator) -> None:
    """Generate chunk k+1 while MariaDB loads chunk k (one loader thread, in table order)."""
    pending: Future[None] | None = None
    with tempfile.TemporaryDirectory(prefix="cidash-bench-") as tmp, ThreadPoolExecutor(1) as loader:
        for number, chunk in enumerate(gen.chunks(CHUNK_RUNS)):
            files = write_chunk(Path(tmp), number, chunk)
            if pending is not None:
                pending.result()
            pending = loader.submit(lambda files=files: [load_file(url, database, t, p) for t, p in files] and None)
            print(f"  generated {gen.run_id:,} runs", file=sys.stderr, flush=True)
        if pending is not None:
            pending.result()


async def derive(database_url: str) -> None:
    """Rollups with the product's own rebuild; CI systems' first/last comment from the runs."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            # the GROUP BY of every run: keep its temporary table (~3 GB at 10 M runs) in memory, this
            # session only; on disk it is a file in the server's tmpdir that is slower, and that
            # other software sharing /tmp has been seen deleting mid-statement
            size = TEMP_TABLE_BYTES
            await conn.execute(sa.text(f"SET SESSION tmp_table_size = {size}, max_heap_table_size = {size}"))
            await rebuild_rollups(conn)
            await conn.execute(
                sa.text(
                    "UPDATE ci_systems s JOIN (SELECT ci_system_id, MIN(posted_at) f, MAX(posted_at) l "
                    "FROM ci_runs GROUP BY ci_system_id) r ON r.ci_system_id = s.id "
                    "SET s.first_seen = r.f, s.last_seen = r.l"
                )
            )
    finally:
        await engine.dispose()


def load_state(url: sa.URL, database: str) -> tuple[int, str] | None:
    """(runs, stage) of an earlier load of `database` ("rows" loaded, or "done"), else None."""
    conn = connect(url, None)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'bench_load'",
                (database,),
            )
            if cur.fetchone() is None:
                return None
            cur.execute(f"SELECT runs, stage FROM `{database}`.bench_load")
            row = cur.fetchone()
            return (int(row[0]), str(row[1])) if row else None
    finally:
        conn.close()


def load_rows_stage(admin: sa.URL, database: str, shape: Shape) -> None:
    """(Re)create `database`, fill the tables the collector writes and mark the stage "rows"."""
    conn = connect(admin, None)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    conn.close()
    asyncio.run(upgrade(admin.set(database=database).render_as_string(hide_password=False)))
    gen = Generator(shape, time.time())
    conn = connect(admin, database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            write_static(cur, gen)
            stripped = [Stripped.strip(cur, table) for table in ("ci_runs", "job_results")]
            load_rows(admin, database, gen)
            stage = time.perf_counter()
            for table in stripped:
                table.restore(cur)
            print(f"  indexes rebuilt in {time.perf_counter() - stage:.0f} s", file=sys.stderr, flush=True)
            cur.execute(
                "CREATE TABLE bench_load (runs BIGINT NOT NULL, seed INT NOT NULL, stage VARCHAR(8) NOT NULL, "
                "loaded_at DATETIME NOT NULL)"
            )
            cur.execute("INSERT INTO bench_load VALUES (%s, %s, 'rows', UTC_TIMESTAMP())", (gen.run_id, shape.seed))
    finally:
        conn.close()


def derive_stage(admin: sa.URL, database: str) -> None:
    """The derived tables, fresh statistics, and the stage "done"."""
    stage = time.perf_counter()
    asyncio.run(derive(admin.set(database=database).render_as_string(hide_password=False)))
    print(f"  rollups rebuilt in {time.perf_counter() - stage:.0f} s", file=sys.stderr, flush=True)
    conn = connect(admin, database)
    try:
        with conn.cursor() as cur:
            for table in (*LOADED_TABLES, "ci_rollups", "ci_latency"):
                cur.execute(f"ANALYZE TABLE `{table}`")
                cur.fetchall()
            cur.execute("UPDATE bench_load SET stage = 'done'")
    finally:
        conn.close()


def load(admin: sa.URL, database: str, shape: Shape, reuse: bool) -> str | None:
    """Make `database` hold a finished load of about `shape.runs` runs; returns what it did and how
    fast (None when an earlier load is reused whole). With `reuse`, a load that stopped after its
    rows (e.g. the rollups failed) only redoes the rollups."""
    state = load_state(admin, database) if reuse else None
    if state is not None and state[0] >= shape.runs * 0.99 and state[1] == "done":
        print(f"reusing {database}: a finished load of {state[0]:,} runs", file=sys.stderr)
        return None
    started = time.perf_counter()
    if state is not None and state[0] >= shape.runs * 0.99:
        derive_stage(admin, database)
        return f"load: rows reused, derived tables rebuilt in {time.perf_counter() - started:.0f} s"
    print(f"loading {shape.runs:,} runs into {database}", file=sys.stderr, flush=True)
    load_rows_stage(admin, database, shape)
    derive_stage(admin, database)
    seconds = time.perf_counter() - started
    rate = shape.runs / seconds
    return f"load: {seconds:.0f} s = {rate:,.0f} runs/s (generation, LOAD DATA, index rebuild, rollups)"


def table_counts(url: sa.URL, database: str) -> dict[str, int]:
    conn = connect(url, database)
    try:
        with conn.cursor() as cur:
            found = {}
            for table in ("ci_runs", "job_results", "patchsets", "changes", "ci_rollups", "ci_latency", "ci_systems"):
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                found[table] = int(cur.fetchone()[0])
            cur.execute("SELECT TIMESTAMPDIFF(SECOND, MAX(posted_at), UTC_TIMESTAMP()) FROM ci_runs")
            found["age_s"] = int(cur.fetchone()[0] or 0)
            cur.execute("SELECT project FROM ci_rollups GROUP BY project ORDER BY SUM(runs) DESC LIMIT 1")
            row = cur.fetchone()
            found["top_project"] = row[0] if row else ""  # type: ignore[assignment]
            return found
    finally:
        conn.close()


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class Timing:
    label: str
    path: str
    first_ms: float = 0.0
    samples: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0  # CPU the API process spent on the measured requests

    def quantile(self, q: float) -> float:
        return quantile(self.samples, q)


async def background_ready_s(client: httpx.AsyncClient, path: str, limit_s: float = 600.0) -> float:
    """Seconds until `path` (a 30 d summary) no longer says its run-level metrics are pending."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        response = await client.get(path)
        response.raise_for_status()
        if not any(s["health"].get("metrics_pending") for s in response.json()):
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{path}: run-level metrics still pending after {limit_s:.0f} s")


async def measure(server: Server, timings: list[Timing], warmup: int, requests: int) -> float:
    """Sequential requests, endpoints interleaved (each sees the same cache and buffer state);
    returns how long the 30 d metrics took to be computed in the background first.
    The server's CPU time per request does not depend on what else the machine runs (the wall
    clock does); read in clock ticks, it is exact only as an average."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        ready_s = await background_ready_s(client, MONTH_PATH)
        for timing in timings:
            started = time.perf_counter()
            (await client.get(timing.path)).raise_for_status()
            timing.first_ms = (time.perf_counter() - started) * 1000
        for round_no in range(warmup + requests):
            for timing in timings:
                cpu = cpu_seconds(server.pid)
                started = time.perf_counter()
                response = await client.get(timing.path)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if round_no >= warmup:
                    timing.samples.append(elapsed)
                    timing.server_cpu_s += cpu_seconds(server.pid) - cpu
    return ready_s


def report(counts: dict[str, Any], loaded: str | None, timings: list[Timing]) -> bool:
    runs = counts["ci_runs"]
    print(
        f"database: {runs:,} runs, {counts['job_results']:,} job results, {counts['patchsets']:,} patch sets, "
        f"{counts['changes']:,} changes, {counts['ci_systems']} CI systems, {counts['ci_rollups']:,} rollup rows "
        f"(newest run {counts['age_s']} s old)"
    )
    if loaded is not None:
        print(loaded)
    print(f"{'endpoint':<44} {'n':>5} {'first':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'server CPU':>11}")
    met = True
    for t in timings:
        p95 = t.quantile(0.95)
        met = met and p95 < TARGET_P95_MS
        print(
            f"{t.label:<44} {len(t.samples):>5} {t.first_ms:>6.1f}ms {t.quantile(0.5):>6.1f}ms {p95:>6.1f}ms "
            f"{t.quantile(0.99):>6.1f}ms {max(t.samples):>6.1f}ms {t.server_cpu_s * 1000 / len(t.samples):>5.1f}ms/req"
        )
    print(f"target p95 < {TARGET_P95_MS:.0f} ms: {'met' if met else 'NOT met'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000_000, help="simulated CI runs to load (default 10,000,000)")
    parser.add_argument("--reuse", action="store_true", help="keep a database that holds a finished load of --runs")
    parser.add_argument("--mysql", default=DEFAULT_ADMIN_URL, help=f"server URL (default {DEFAULT_ADMIN_URL})")
    parser.add_argument(
        "--database", default=DEFAULT_DATABASE, help="database to (re)create; must start with cidash_bench"
    )
    parser.add_argument("--requests", type=int, default=300, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=30, help="requests per endpoint before measuring")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--load-only", action="store_true", help="load, print the counts, do not measure")
    opts = parser.parse_args()
    if not opts.database.startswith("cidash_bench"):
        parser.error("--database must start with cidash_bench (it is dropped and re-created)")
    admin = make_url(opts.mysql).set(database=None)
    loaded = load(admin, opts.database, Shape(opts.runs, seed=opts.seed), opts.reuse)
    counts = table_counts(admin, opts.database)
    database_url = admin.set(database=opts.database).render_as_string(hide_password=False)
    timings = [
        Timing("GET /api/v1/systems (24h)", "/api/v1/systems"),
        Timing("GET /api/v1/systems?window=30d", MONTH_PATH),
        Timing(f"GET /api/v1/grid?project={counts['top_project']}", f"/api/v1/grid?project={counts['top_project']}"),
        Timing("GET /api/v1/grid (every project)", "/api/v1/grid"),
    ]
    if opts.load_only:
        report(counts, loaded, [])
        return 0

    async def run() -> float:
        async with api_server(database_url) as server:
            return await measure(server, timings, opts.warmup, opts.requests)

    ready_s = asyncio.run(run())
    print(f"command: {' '.join(sys.argv)}")
    print(f"30 d coverage, agreement and flakiness first computed (in the background) after {ready_s:.1f} s")
    return 0 if report(counts, loaded, timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
