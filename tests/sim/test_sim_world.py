"""The simulated world: determinism, wire shapes of its events, the CI comment formats, personas."""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import orjson
import pytest

from cidash.gerrit.events import StreamEvent
from cidash.gerrit.wire import parse_timestamp
from cidash.sim.ci_texts import HOSTILE_DETAIL, Job, overall_result, zuul_duration
from cidash.sim.personas import Persona, Style
from cidash.sim.state import Change, Message
from cidash.sim.world import World

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HEX40 = re.compile(r"[0-9a-f]{40}")
RECHECK = re.compile(r"\n\nrecheck(?:-([a-z0-9-]+))?$")
TEST_FAILURES = {"FAILURE", "POST_FAILURE", "TIMED_OUT", "UNSTABLE"}
INFRA = {"ERROR", "NODE_FAILURE", "RETRY_LIMIT", "MERGE_CONFLICT", "CONFIG_ERROR", "DISK_FULL", "ABORTED", "LOST"}
CHANGE_EVENT_TAIL = ["patchSet", "change", "project", "refName", "changeKey", "type", "eventCreatedOn"]


@cache
def history_world(days: int = 3, seed: int = 42) -> World:
    world = World(seed, start=START)
    world.generate_history(timedelta(days=days))
    return world


def live_events(world: World, activities: int) -> list[list[StreamEvent]]:
    return [world.next_activity() for _ in range(activities)]


def message_index(world: World) -> dict[str, tuple[Change, Message]]:
    return {m.id: (c, m) for c in world.changes.values() for m in c.messages}


# -- determinism -------------------------------------------------------------------------------


def test_same_seed_same_world_and_events() -> None:
    def build(seed: int) -> tuple[list[bytes], list[bytes]]:
        world = World(seed, start=START)
        world.generate_history(timedelta(hours=12))
        lines = [event.to_line() for batch in live_events(world, 400) for event in batch]
        return lines, list(world.truth_lines())

    first, second, other = build(7), build(7), build(8)
    assert first == second
    assert len(first[0]) > 400 and len(first[1]) > 100
    assert first[0] != other[0]
    assert first[1] != other[1]


def test_world_never_uses_the_global_rng() -> None:
    import random

    random.seed(1)
    a = World(3, start=START)
    a.generate_history(timedelta(hours=6))
    random.seed(2)
    b = World(3, start=START)
    b.generate_history(timedelta(hours=6))
    assert list(a.truth_lines()) == list(b.truth_lines())


# -- event shapes ---------------------------------------------------------------------------------


def test_event_key_order_and_companion_ref_updates() -> None:
    world = World(5, start=START)
    world.generate_history(timedelta(days=1))
    seen: Counter[str] = Counter()
    for batch in live_events(world, 3000):
        assert 1 <= len(batch) <= 4
        head = batch[0]
        keys = list(head.raw)
        seen[head.type] += 1
        if head.type == "comment-added":
            assert keys == ["author", "approvals", "comment", *CHANGE_EVENT_TAIL]
        elif head.type == "patchset-created":
            assert keys == ["uploader", *CHANGE_EVENT_TAIL]
            ps_ref = batch[1].raw["refUpdate"]
            assert ps_ref["oldRev"] == "0" * 40
            assert ps_ref["newRev"] == head.raw["patchSet"]["revision"]
            assert ps_ref["refName"] == head.raw["patchSet"]["ref"]
        elif head.type == "change-merged":
            assert keys == ["submitter", "newRev", *CHANGE_EVENT_TAIL]
            assert head.raw["change"]["status"] == "MERGED"
            assert batch[-1].raw["refUpdate"]["refName"] == f"refs/heads/{head.raw['change']['branch']}"
        elif head.type == "change-abandoned":
            assert keys[0] == "abandoner" and keys[-len(CHANGE_EVENT_TAIL) :] == CHANGE_EVENT_TAIL
        else:
            pytest.fail(f"unexpected event {head.type}")
        number = head.raw["change"]["number"]
        metas = [e for e in batch[1:] if e.is_meta_ref_update]
        assert len(metas) == 1
        meta = metas[0]
        assert list(meta.raw) == ["submitter", "refUpdate", "type", "eventCreatedOn"]
        assert meta.raw["refUpdate"]["refName"] == f"refs/changes/{number % 100:02d}/{number}/meta"
        assert all(e.raw["eventCreatedOn"] == head.raw["eventCreatedOn"] for e in batch)
        assert isinstance(number, int)
        assert head.raw["changeKey"] == {"id": head.raw["change"]["id"]}
        assert head.raw["change"]["url"] == f"{world.base_url}/c/{head.raw['change']['project']}/+/{number}"
    assert seen["comment-added"] > 1000 and seen["patchset-created"] > 20 and seen["change-merged"] > 3


def test_comment_added_approvals_mark_vote_changes() -> None:
    world = World(6, start=START)
    world.generate_history(timedelta(days=1))
    ci_names = {ci.username for ci in world.cis}
    changed_verified = unchanged = 0
    for batch in live_events(world, 2000):
        event = batch[0]
        if event.type != "comment-added" or event.raw["author"]["username"] not in ci_names:
            continue
        approvals = event.raw["approvals"]
        assert [a["type"] for a in approvals] == ["Verified", "Code-Review", "Workflow"]
        assert all(isinstance(a["value"], str) for a in approvals)
        verified = approvals[0]
        header = event.raw["comment"].split("\n", 1)[0]
        if "oldValue" in verified:
            changed_verified += 1
            assert verified["oldValue"] != verified["value"]
            assert "Verified" in header
        else:
            unchanged += 1
        if re.search(r"Verified[+-]\d", header):
            assert header.endswith(f"Verified{int(verified['value']):+d}")
    assert changed_verified > 100 and unchanged > 100


def test_legacy_mode_events() -> None:
    world = World(5, legacy_2x=True, start=START)
    world.generate_history(timedelta(hours=12))
    comments = ci_votes = 0
    for batch in live_events(world, 600):
        event = batch[0]
        assert next(iter(event.raw)) == "type"
        assert isinstance(event.raw["change"]["number"], str)
        assert isinstance(event.raw["patchSet"]["number"], str)
        assert "changeKey" not in event.raw
        assert event.raw["change"]["url"] == f"{world.base_url}/{event.raw['change']['number']}"
        if event.type == "comment-added":
            comments += 1
            assert not event.raw["comment"].startswith("Patch Set")
            for approval in event.raw.get("approvals", []):
                assert approval["type"] in ("VRIF", "CRVW", "APRV")
                assert "oldValue" not in approval
            ci = world.ci_by_username.get(event.raw["author"]["username"])
            if ci is not None and ci.voting:  # 2.x lists the labels the review set, changed or not
                assert [a["type"] for a in event.raw["approvals"]] == ["VRIF"]
                ci_votes += 1
    assert comments > 200 and ci_votes > 100
    assert world.version.startswith("2.")


def test_event_times_follow_messages_and_base_url_is_settable() -> None:
    world = World(9, start=START)
    world.generate_history(timedelta(hours=6))
    world.base_url = "http://127.0.0.1:18080/"
    index_before = len(world.truth)
    batches = live_events(world, 300)
    by_id = message_index(world)
    times = {(c.number, m.date) for c, m in by_id.values()}
    for batch in batches:
        head = batch[0]
        created = head.raw["eventCreatedOn"]
        number = head.raw["change"]["number"]
        assert (number, created) in times or (number, created - 1) in times
        assert head.raw["change"]["url"].startswith("http://127.0.0.1:18080/c/")
    assert len(world.truth) > index_before


# -- history ---------------------------------------------------------------------------------------


def test_history_is_never_streamed() -> None:
    world = World(4, start=START)
    world.generate_history(timedelta(days=1))
    history_truth = len(world.truth)
    start = int(START.timestamp())
    assert history_truth > 1000
    assert all(record.posted_at < start for record in world.truth)
    results = 0
    for batch in live_events(world, 500):
        for event in batch:
            assert event.raw["eventCreatedOn"] >= start
        head = batch[0]
        if head.type == "comment-added" and head.raw["author"]["username"] in world.ci_by_username:
            if not re.search(r"\n\n(Starting \w+ jobs\.|Build Started )", head.raw["comment"]):
                results += 1
    assert len(world.truth) - history_truth == results
    with pytest.raises(RuntimeError):
        world.generate_history(timedelta(hours=1))


def test_history_size_and_speed() -> None:
    world = World(1, start=START)
    began = time.process_time()
    world.generate_history(timedelta(days=7))
    elapsed = time.process_time() - began
    assert 18_000 <= len(world.truth) <= 35_000
    assert elapsed < 8.0  # budget is 3 s on a quiet machine; this guards against regressions only
    sparse, dense = World(1, start=START), World(1, start=START, scale=2.0)
    sparse.generate_history(timedelta(days=1))
    dense.generate_history(timedelta(days=1))
    assert 1.6 * len(sparse.truth) < len(dense.truth) < 2.5 * len(sparse.truth)


def test_next_activity_is_cheap() -> None:
    clone = World(42, start=START)
    clone.generate_history(timedelta(days=1))
    count = 0
    began = time.process_time()
    for _ in range(5000):
        count += len(clone.next_activity())
    per_event = (time.process_time() - began) / count
    assert per_event < 200e-6  # target < 20 µs; generous bound against pathological regressions


# -- the CI comments --------------------------------------------------------------------------------

_ZUUL_LINE = re.compile(
    r"- (?P<name>\S+) (?P<url>\S+) : (?P<result>[A-Z_]+)(?: (?P<detail>.+?))??"
    r"(?: in (?P<elapsed>(?:\d+h )?(?:\d+m )?\d+s))?(?P<nv> \(non-voting\))?"
)


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    total = 0
    for part in text.split():
        total += int(part[:-1]) * {"h": 3600, "m": 60, "s": 1}[part[-1]]
    return total


def parse_ci_body(style: Style, body: str) -> tuple[str, list[dict[str, Any]]]:
    """(header, jobs) read back from a CI's text, independently of the generator."""
    if style in (Style.ZUUL3, Style.ZUUL2):
        header, _, rest = body.partition("\n\n")
        jobs = []
        for line in rest.split("\n"):
            match = _ZUUL_LINE.fullmatch(line)
            assert match, line
            jobs.append(
                {
                    "name": match["name"],
                    "url": match["url"],
                    "result": match["result"],
                    "duration_s": _seconds(match["elapsed"]),
                    "voting": match["nv"] is None,
                }
            )
        return header, jobs
    if style is Style.BULLETS:
        header, _, rest = body.partition("\n\n")
        lines, _, footer = rest.partition("\n\n")
        assert footer.startswith("To recheck only this CI, leave a comment with 'recheck-"), footer
        jobs = []
        for line in lines.split("\n"):
            match = re.fullmatch(r"\* (\S+) (\S+) : ([a-z_]+)(?: in (\d+) mins)?( \(non-voting\))?", line)
            assert match, line
            minutes = match[4]
            jobs.append(
                {
                    "name": match[1],
                    "url": match[2],
                    "result": match[3].upper(),
                    "duration_s": int(minutes) * 60 if minutes is not None else None,
                    "voting": match[5] is None,
                }
            )
        return header, jobs
    if style is Style.ONELINE or style is Style.VOTEONLY:
        pattern = (
            r"Tests (passed|failed|errored)\. Logs: (\S+)"
            if style is Style.ONELINE
            else (r"Thank you for your patch\. This run's logs are at (\S+)\n\nTo recheck only this CI, .*")
        )
        match = re.fullmatch(pattern, body, re.DOTALL)
        assert match, body
        url = match[match.lastindex or 1] if style is Style.ONELINE else match[1]
        word = match[1] if style is Style.ONELINE else None
        result = {"passed": "SUCCESS", "failed": "FAILURE", "errored": "ERROR"}.get(word or "", "")
        name = url.split("/job/", 1)[1].split("/", 1)[0]
        return body, [{"name": name, "url": url, "result": result, "duration_s": None, "voting": True}]
    if style is Style.JENKINS:
        header, _, rest = body.partition("\n\n")
        jobs = []
        for block in rest.split("\n\n"):
            url, _, result = block.partition(" : ")
            name = url.split("/job/", 1)[1].split("/", 1)[0]
            jobs.append({"name": name, "url": url, "result": result, "duration_s": None, "voting": True})
        return header, jobs
    jobs = []
    for match in re.finditer(r"(✅|❌) (\S+) : ([A-Z_]+)\n    \((\S+)\)", body):
        assert (match[1] == "✅") == (match[3] == "SUCCESS")
        jobs.append({"name": match[2], "url": match[4], "result": match[3], "duration_s": None, "voting": True})
    return "", jobs


def expected_result(jobs: list[dict[str, Any]]) -> str:
    counted = [j for j in jobs if j["voting"]] or jobs
    if any(j["result"] in TEST_FAILURES for j in counted):
        return "FAILURE"
    for job in counted:
        if job["result"] in INFRA:
            return str(job["result"])
    return "SUCCESS"


def test_every_result_comment_agrees_with_its_truth_record() -> None:
    world = history_world()
    messages = message_index(world)
    checked: Counter[Style] = Counter()
    nonvoting_failed_in_success = 0
    last_vote: dict[tuple[int, int, str], int | None] = {}
    assert len(world.truth) > 5000
    for line in world.truth_lines():
        record = orjson.loads(line)
        change, message = messages[record["message_id"]]
        ci = world.ci_by_username[record["author"]]
        assert record["change"] == change.number and record["patchset"] == message.patchset
        vote = record["vote"]
        prefix = f"Patch Set {record['patchset']}:" + (f" Verified{vote:+d}" if vote is not None else "") + "\n\n"
        held = (record["change"], record["patchset"], record["author"])
        if vote is not None and message.text.startswith(f"Patch Set {record['patchset']}:\n\n"):
            assert last_vote.get(held) == vote, "a header names the vote unless the CI already held it (as Gerrit)"
            prefix = f"Patch Set {record['patchset']}:\n\n"
        else:
            assert message.text.startswith(prefix)
        last_vote[held] = vote
        assert (vote is None) == (not ci.voting)
        if vote is not None:
            assert (vote > 0) == (record["result"] == "SUCCESS")
        body = message.text[len(prefix) :]
        if record["result"] == "MERGE_CONFLICT" and not record["jobs"]:
            assert body.startswith("Merge Failed.\n\nThis change or one of its cross-repo dependencies")
            continue
        header, jobs = parse_ci_body(ci.style, body)
        if ci.style is Style.VOTEONLY:  # only the vote says how it went
            jobs[0]["result"] = record["result"]
            assert record["result"] in ("SUCCESS", "FAILURE")
        assert jobs == record["jobs"]
        assert record["result"] == expected_result(jobs)
        ok = record["result"] == "SUCCESS"
        if ci.style is Style.ZUUL3:
            assert header.startswith("Build succeeded") == ok and header.startswith("Build failed") != ok
            assert record["pipeline"] in ("check", "gate")
            assert message.tag == f"autogenerated:zuul:{record['pipeline']}"
        elif ci.style is Style.ZUUL2:
            expected = "Build succeeded." if ok else "Build failed.  For information on how to proceed, see "
            assert header.startswith(expected)
            assert record["pipeline"] is None
        elif ci.style is Style.JENKINS:
            assert (header == "Build Successful ") == ok
            assert header in ("Build Successful ", "Build Failed ", "Build Unstable ")
            assert message.tag == "autogenerated:jenkins" and record["pipeline"] is None
        if ok and any(not j["voting"] and j["result"] != "SUCCESS" for j in jobs):
            nonvoting_failed_in_success += 1
        checked[ci.style] += 1
    assert all(checked[style] > 100 for style in Style), checked
    assert nonvoting_failed_in_success > 10


def test_overall_result_rule() -> None:
    def job(result: str, voting: bool = True) -> Job:
        return Job("j", "u", result, 1, voting)

    assert overall_result([job("SUCCESS"), job("FAILURE", False)]) == "SUCCESS"
    assert overall_result([job("NODE_FAILURE"), job("FAILURE")]) == "FAILURE"
    assert overall_result([job("RETRY_LIMIT"), job("NODE_FAILURE")]) == "RETRY_LIMIT"
    assert overall_result([job("FAILURE", False), job("SUCCESS", False)]) == "FAILURE"
    assert overall_result([job("SUCCESS"), job("ERROR", False)]) == "SUCCESS"
    assert overall_result([job("SKIPPED"), job("SUCCESS")]) == "SUCCESS"


def test_zuul_duration_format() -> None:
    assert zuul_duration(45) == "45s"
    assert zuul_duration(192) == "3m 12s"
    assert zuul_duration(182) == "3m 02s"
    assert zuul_duration(3723) == "1h 02m 03s"
    assert zuul_duration(0) == "0s"


def test_message_formats_and_identifiers() -> None:
    world = history_world()
    texts: Counter[str] = Counter()
    for change in world.changes.values():
        assert re.fullmatch(r"I[0-9a-f]{40}", change.change_id)
        assert change.commit_message.endswith(f"Change-Id: {change.change_id}\n")
        assert [ps.number for ps in change.patchsets] == list(range(1, len(change.patchsets) + 1))
        dates = [m.date for m in change.messages]
        assert dates == sorted(dates)
        for ps in change.patchsets:
            assert HEX40.fullmatch(ps.revision)
            assert ps.kind in ("REWORK", "TRIVIAL_REBASE", "NO_CODE_CHANGE")
        for message in change.messages:
            assert HEX40.fullmatch(message.id)
            first = message.text.split("\n", 1)[0]
            if message.tag == "autogenerated:gerrit:newPatchSet":
                assert first.startswith(f"Uploaded patch set {message.patchset}")
                texts["upload"] += 1
            elif message.author.username in world.ci_by_username and "Starting check jobs." in message.text:
                texts["start-reset" if first.endswith(": -Verified") else "start"] += 1
            elif RECHECK.search(message.text):
                texts["recheck"] += 1
            elif "Looks good to me" in message.text:
                texts["lgtm"] += 1
            elif re.search(r"\(\d+ comments?\)", message.text):
                texts["inline"] += 1
            elif first.endswith("Code-Review+2 Workflow+1"):
                texts["approval"] += 1
            elif "Build Started https://" in message.text:
                texts["jenkins-start"] += 1
    assert all(texts[kind] > 5 for kind in texts) and len(texts) == 8, texts
    statuses = Counter(change.status for change in world.changes.values())
    assert statuses["MERGED"] > 50 and statuses["ABANDONED"] > 5 and statuses["NEW"] > 50
    assert any(change.branch == "stable/2025.2" for change in world.changes.values())
    assert len({change.project for change in world.changes.values()}) == 10


def test_recheck_reruns_the_cis_on_the_same_patch_set() -> None:
    world = history_world()
    reruns = 0
    named: Counter[str] = Counter()
    for change in world.changes.values():
        for i, message in enumerate(change.messages):
            match = RECHECK.search(message.text)
            if match is None:
                continue
            if match.group(1):
                named[match.group(1)] += 1
            later = [
                m
                for m in change.messages[i + 1 :]
                if m.patchset == message.patchset and m.author.username == "zuul" and "Build " in m.text
            ]
            reruns += bool(later)
    assert reruns > 20
    # after a flaky third-party CI's failure, people use the form its footer asks for
    flaky = {ci.username.removesuffix("-ci") for ci in world.third_party if ci.persona is Persona.FLAKY}
    assert named and set(named) <= flaky, named


def test_gate_pipeline_then_merge() -> None:
    world = history_world()
    merged = [c for c in world.changes.values() if c.status == "MERGED"]
    assert merged
    for change in merged:
        gate = [m for m in change.messages if m.tag == "autogenerated:zuul:gate" and "Build succeeded" in m.text]
        assert gate, change.number
        assert gate[-1].text.startswith(
            f"Patch Set {change.current.number}: Verified+2\n\nBuild succeeded (gate pipeline)."
        )
        assert change.messages[-1].tag == "autogenerated:gerrit:merged"
        approvals = [m for m in change.messages if "Workflow+1" in m.text.split("\n", 1)[0]]
        assert approvals and approvals[-1].date <= gate[-1].date


# -- personas -------------------------------------------------------------------------------------


def _failure_rates_when_reference_passes(world: World) -> dict[str, float]:
    reference_ok: set[tuple[int, int]] = set()
    for record in world.truth:
        if record.author == "zuul" and record.pipeline == "check" and record.result == "SUCCESS":
            reference_ok.add((record.change, record.patchset))
    runs: dict[str, list[bool]] = defaultdict(list)
    for record in world.truth:
        if record.author != "zuul" and (record.change, record.patchset) in reference_ok:
            runs[record.author].append(record.result in TEST_FAILURES)
    return {name: sum(fails) / len(fails) for name, fails in runs.items() if len(fails) >= 30}


def test_personas_show_in_statistics() -> None:
    world = history_world(days=4, seed=3)
    rates = _failure_rates_when_reference_passes(world)
    by_persona: dict[Persona, list[float]] = defaultdict(list)
    for ci in world.third_party:
        if ci.username in rates:
            by_persona[ci.persona].append(rates[ci.username])
    assert min(by_persona[Persona.BROKEN]) > 0.6
    assert max(by_persona[Persona.HEALTHY]) < 0.2  # four days of runs: a 10 % rate may draw 15 %
    assert 0.15 < statistics.mean(by_persona[Persona.FLAKY]) < 0.5

    # slow CIs answer hours after the patch set; healthy ones within about an hour or two
    created = {(c.number, ps.number): ps.created for c in world.changes.values() for ps in c.patchsets}
    delays: dict[Persona, list[float]] = defaultdict(list)
    for record in world.truth:
        ci = world.ci_by_username[record.author]
        if ci.reference:
            continue
        delays[ci.persona].append(record.posted_at - created[(record.change, record.patchset)])
    assert statistics.median(delays[Persona.SLOW]) > 3 * 3600
    assert statistics.median(delays[Persona.HEALTHY]) < 2 * 3600

    # silent CIs stop at their time; outage CIs show infra errors
    for ci in world.third_party:
        posted = [r.posted_at for r in world.truth if r.author == ci.username]
        if ci.persona is Persona.SILENT:
            assert ci.silent_at is not None
            assert posted and min(posted) < ci.silent_at
            assert max(posted) < ci.silent_at
        if not ci.voting:
            assert all(r.vote is None for r in world.truth if r.author == ci.username)
    outage = Counter(r.result for r in world.truth if world.ci_by_username[r.author].persona is Persona.OUTAGE)
    assert outage["NODE_FAILURE"] + outage["RETRY_LIMIT"] + outage["ERROR"] > 20


def test_hostile_ci_writes_markup_in_error_details() -> None:
    world = history_world()
    hostile = [
        job
        for record in world.truth
        for job in record.jobs
        if job.detail == HOSTILE_DETAIL and record.author == "vmware-ci"
    ]
    assert hostile and all(job.result in TEST_FAILURES for job in hostile)
    messages = message_index(world)
    record = next(r for r in world.truth if any(j.detail for j in r.jobs))
    text = messages[record.message_id][1].text
    assert re.search(r" : (FAILURE|TIMED_OUT|POST_FAILURE) " + re.escape(HOSTILE_DETAIL) + r" in \d", text)


def test_merge_conflicts_and_third_party_group() -> None:
    world = history_world()
    conflicts = [r for r in world.truth if r.result == "MERGE_CONFLICT"]
    assert conflicts and all(r.jobs == [] and r.vote in (-1, -2, None) for r in conflicts)
    members = world.group_members()
    assert len(members) == 40 and world.zuul not in members
    assert len({m.username for m in members}) == 40
    assert {ci.style for ci in world.third_party} == set(Style)
    assert {ci.persona for ci in world.third_party} == set(Persona)


def test_truth_lines_shape() -> None:
    world = history_world()
    line = next(iter(world.truth_lines()))
    assert line.endswith(b"\n")
    record = orjson.loads(line)
    assert list(record) == [
        "change",
        "patchset",
        "author",
        "posted_at",
        "message_id",
        "result",
        "pipeline",
        "vote",
        "jobs",
    ]
    assert parse_timestamp(record["posted_at"]).tzinfo is UTC
    assert record["posted_at"].endswith(".000000000")
    assert list(record["jobs"][0]) == ["name", "url", "result", "duration_s", "voting"]


# -- live running -------------------------------------------------------------------------------------


async def test_run_publishes_wall_clock_events_until_the_count() -> None:
    world = World(2, start=START)
    world.generate_history(timedelta(hours=6))
    got: list[StreamEvent] = []

    async def publish(batch: list[StreamEvent]) -> None:
        got.extend(batch)

    before = int(time.time())
    published = await world.run(publish, rate=None, events=200)
    assert 200 <= published <= 203 and published == len(got)
    assert all(before <= event.raw["eventCreatedOn"] <= int(time.time()) + 1 for event in got)
    stamps = [event.raw["eventCreatedOn"] for event in got]
    assert all(later >= earlier - 1 for earlier, later in itertools.pairwise(stamps))  # +1 s jitter only


async def test_run_respects_rate_and_duration() -> None:
    world = World(2, start=START)
    count = 0

    async def publish(batch: list[StreamEvent]) -> None:
        nonlocal count
        count += len(batch)
        await asyncio.sleep(0)

    began = time.monotonic()
    published = await world.run(publish, rate=100.0, duration=0.5)
    elapsed = time.monotonic() - began
    assert published == count
    assert 0.45 <= elapsed < 1.5
    assert 20 <= published <= 60


async def test_realtime_world_stamps_now() -> None:
    world = World(2)
    batch = world.next_activity()
    assert abs(batch[0].raw["eventCreatedOn"] - time.time()) < 5
