"""The event model against real Gerrit output, and the hub's Gerrit semantics (no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cidash.gerrit.events import (
    MAX_LINE_BYTES,
    StreamEvent,
    account_attr,
    approval_attr,
    change_attr,
    comment_added,
    patchset_attr,
    ref_updated,
)
from cidash.sim.faults import FaultRequest, Faults
from cidash.sim.hub import BATCH_SIZE, MAX_EVENTS, EventHub, event_line
from tests.support.paths import GERRIT_SAMPLES

SAMPLES = GERRIT_SAMPLES
TVL = SAMPLES / "tvl_depot_clbot_watcher_test_cl_tvl_fyi_comment_added.jsonl"
GERRITBOT = SAMPLES / "gerritbot_rs_test_event_json_constants.txt"


def compact_event_lines(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("{") and "type" in orjson.loads(line):
            lines.append(line)
    return lines


def tvl_line() -> str:
    (line,) = compact_event_lines(TVL)
    return line


# -- real lines, byte for byte -------------------------------------------------------------------


def test_sample_files_hold_the_expected_compact_lines() -> None:
    assert len(compact_event_lines(TVL)) == 1
    types = [orjson.loads(line)["type"] for line in compact_event_lines(GERRITBOT)]
    assert types == ["comment-added", "reviewer-added", "comment-added", "comment-added"]


@pytest.mark.parametrize("line", compact_event_lines(TVL) + compact_event_lines(GERRITBOT))
def test_real_compact_lines_reserialize_byte_for_byte(line: str) -> None:
    event = StreamEvent.from_json(line)
    assert event.to_json() == line
    assert event.to_line() == (line + "\n").encode("utf-8")
    assert event_line(event) == event.to_line()  # the hub's fast path writes the same bytes
    assert StreamEvent.from_json(line.encode("utf-8")).to_json() == line


# (file, lenient, type, eventCreatedOn, change number, patch set number)
PRETTY_SAMPLES = [
    ("gerrit_haskell_test_data_EventChangeAbandoned.json", False, "change-abandoned", 1622285180, 21916, 1),
    ("gerrit_haskell_test_data_EventChangeMerged.json", False, "change-merged", 1622233316, 21905, 2),
    ("gerrit_haskell_test_data_EventCommentAdded.json", False, "comment-added", 1622229444, 21905, 3),
    ("gerrit_haskell_test_data_EventPatchsetCreated.json", False, "patchset-created", 1622229383, 21905, 2),
    ("gerrit_haskell_test_data_EventProjectCreated.json", False, "project-created", 1622230530, None, None),
    ("gerrit_haskell_test_data_EventRefUpdated.json", False, "ref-updated", 1622228651, None, None),
    ("gerrit_haskell_test_data_EventWipStateChanged.json", False, "wip-state-changed", 1642513882, 23354, 6),
    ("sony_gerrit_events_DeserializeChangeDeletedTest.json", False, "change-deleted", 1710524800, 3, None),
    ("sony_gerrit_events_DeserializeEventCreatedOnTest.json", False, "change-restored", 1418133772, 654, 1),
    ("sony_gerrit_events_DeserializeHashtagsChangedTest.json", True, "hashtags-changed", 1539112429, 1000, None),
    ("sony_gerrit_events_DeserializeVoteDeletedTest.json", False, "vote-deleted", 1418133772, 654, 1),
    ("jenkins_gerrit_trigger_DeserializeEventCreatedOnTest.json", False, "change-restored", None, 654, 1),
]


@pytest.mark.parametrize(("name", "lenient", "type_", "created", "change", "patchset"), PRETTY_SAMPLES)
def test_every_sample_event_loads(
    name: str, lenient: bool, type_: str, created: int | None, change: int | None, patchset: int | None
) -> None:
    data = (SAMPLES / name).read_bytes()
    event = StreamEvent.from_json(data, lenient=lenient)
    assert event.type == type_
    assert event.event_created_on == created
    assert event.change_number == change
    assert event.patchset_number == patchset
    # a loaded event re-serialises to compact JSON that loads back to the same object
    again = StreamEvent.from_json(event.to_line())
    assert again == event
    assert b"\n" not in event.to_line()[:-1]


def test_sample_folder_has_no_unchecked_event_file() -> None:
    names = {path.name for path in SAMPLES.glob("*.json") if not path.name.startswith("gerrit_rest_java_client")}
    names.discard("gerrit_haskell_test_data_GerritChange.json")  # a REST ChangeInfo, not an event
    assert names == {sample[0] for sample in PRETTY_SAMPLES}


def test_hashtags_sample_needs_lenient_mode() -> None:
    data = (SAMPLES / "sony_gerrit_events_DeserializeHashtagsChangedTest.json").read_bytes()
    with pytest.raises(ValueError):
        StreamEvent.from_json(data)
    event = StreamEvent.from_json(data, lenient=True)
    assert event.raw["added"] == ["newtag", "newtag2"]
    assert event.account["username"] == "defer"


def test_sample_accounts_and_details() -> None:
    comment = StreamEvent.from_json((SAMPLES / "gerrit_haskell_test_data_EventCommentAdded.json").read_bytes())
    assert comment.account["username"] == "zuul"
    assert comment.comment == "Patch Set 3:\n\nStarting check jobs."
    assert [label for label, _, _ in comment.approvals()] == ["Verified", "Code-Review", "Workflow"]
    restored = StreamEvent.from_json((SAMPLES / "sony_gerrit_events_DeserializeEventCreatedOnTest.json").read_bytes())
    assert restored.raw["change"]["number"] == "654"  # Gerrit 2.x sent strings
    vote = StreamEvent.from_json((SAMPLES / "sony_gerrit_events_DeserializeVoteDeletedTest.json").read_bytes())
    assert vote.account.get("username") is not None


def test_oversized_line_is_refused() -> None:
    with pytest.raises(ValueError, match="too-long"):
        StreamEvent.from_json(b'{"type":"x","c":"' + b"a" * MAX_LINE_BYTES + b'"}')


# -- builders: Gson order and escaping --------------------------------------------------------------


def test_builders_rebuild_the_real_tvl_line() -> None:
    line = tvl_line()
    real = orjson.loads(line)
    tazjin = account_attr("tazjin", "mail@tazj.in", "tazjin")
    ps, ch = real["patchSet"], real["change"]
    patchset = patchset_attr(
        change=ch["number"],
        number=ps["number"],
        revision=ps["revision"],
        parents=ps["parents"],
        uploader=tazjin,
        created_on=ps["createdOn"],
        author=tazjin,
        kind="REWORK",
        size_insertions=83,
        size_deletions=-156,
    )
    change = change_attr(
        project="depot",
        branch="master",
        change_id=ch["id"],
        number=244,
        subject=ch["subject"],
        owner=tazjin,
        url="https://cl.tvl.fyi/c/depot/+/244",
        commit_message=ch["commitMessage"],
        created_on=ch["createdOn"],
        status="NEW",
    )
    event = comment_added(
        author=tazjin,
        approvals=[approval_attr("Code-Review", 2, 0)],
        comment="Patch Set 3: Code-Review+2",
        patchset=patchset,
        change=change,
        event_created_on=1592081929,
    )
    assert event.to_json() == line
    assert event_line(event) == (line + "\n").encode()
    assert list(event.raw) == [
        "author",
        "approvals",
        "comment",
        "patchSet",
        "change",
        "project",
        "refName",
        "changeKey",
        "type",
        "eventCreatedOn",
    ]


def test_gson_escaping() -> None:
    event = ref_updated(
        submitter=account_attr("O'Brien <ob@example.com>"),
        old_rev="0" * 40,
        new_rev="1" * 40,
        ref_name="refs/heads/a&b=c",
        project="p",
        event_created_on=1,
    )
    text = event.to_json()
    assert "\\u0027" in text and "\\u003c" in text and "\\u003e" in text
    assert "\\u0026" in text and "\\u003d" in text
    assert not any(ch in text for ch in "'<>&=")
    assert StreamEvent.from_json(text).raw["submitter"]["name"] == "O'Brien <ob@example.com>"
    assert event_line(event) == event.to_line()
    assert "é" in StreamEvent({"type": "x", "name": "José"}).to_json()  # non-ASCII stays raw UTF-8


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_fast_serialisation_equals_to_line(raw: dict[str, Any]) -> None:
    event = StreamEvent({**raw, "type": "comment-added"})
    assert event_line(event) == event.to_line()


# -- the hub (Gerrit's StreamEvents semantics) ------------------------------------------------------


def ev(n: int, type_: str = "comment-added") -> StreamEvent:
    return StreamEvent({"n": n, "type": type_, "eventCreatedOn": 1700000000 + n})


def decode(batch: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for item in batch for line in item.splitlines()]


async def test_hub_filters_by_exact_type() -> None:
    hub = EventHub()
    everything = hub.subscribe(None)
    comments = hub.subscribe(frozenset({"comment-added"}))
    await hub.publish([ev(1), ev(2, "patchset-created"), ev(3, "comment-added-not")])
    assert [e["n"] for e in decode(await everything.next_batch())] == [1, 2, 3]
    assert [e["n"] for e in decode(await comments.next_batch())] == [1]
    assert hub.published == 3


async def test_hub_serialises_each_event_once() -> None:
    hub = EventHub()
    subs = [hub.subscribe(None) for _ in range(3)]
    await hub.publish([ev(1)])
    batches = [await sub.next_batch() for sub in subs]
    assert batches[0][0] is batches[1][0] is batches[2][0]


async def test_hub_overflow_drops_then_reports_dropped_output() -> None:
    hub = EventHub(clock=lambda: 1234.9)
    sub = hub.subscribe(None)
    await hub.publish([ev(n) for n in range(MAX_EVENTS + 10)])
    assert hub.dropped == 10 and sub.lost == 10
    assert sub.queued == MAX_EVENTS
    first = decode(await sub.next_batch())
    assert first[0] == {"type": "dropped-output", "eventCreatedOn": 1234}
    assert [e["n"] for e in first[1:]] == list(range(BATCH_SIZE))
    rest: list[dict[str, Any]] = []
    while sub.queued:
        rest += decode(await sub.next_batch())
    assert [e["n"] for e in rest] == list(range(BATCH_SIZE, MAX_EVENTS))  # no second dropped-output
    await hub.publish([ev(500)])
    assert decode(await sub.next_batch()) == [orjson.loads(ev(500).to_line())]


async def test_hub_loses_events_nobody_listens_to() -> None:
    hub = EventHub()
    await hub.publish([ev(1), ev(2)])
    sub = hub.subscribe(None)
    await hub.publish([ev(3)])
    assert [e["n"] for e in decode(await sub.next_batch())] == [3]
    assert hub.unheard == 2


async def test_hub_batches_are_at_most_32_events() -> None:
    hub = EventHub()
    sub = hub.subscribe(None)
    await hub.publish([ev(n) for n in range(100)])
    sizes = []
    while sub.queued:
        sizes.append(len(await sub.next_batch()))
    assert sizes == [32, 32, 32, 4]


async def test_backpressure_waits_instead_of_dropping() -> None:
    hub = EventHub(backpressure=True)
    sub = hub.subscribe(None)
    publisher = asyncio.create_task(hub.publish([ev(n) for n in range(1000)]))
    got: list[int] = []
    while len(got) < 1000:
        got += [e["n"] for e in decode(await asyncio.wait_for(sub.next_batch(), 5))]
        assert sub.queued <= MAX_EVENTS
    await publisher
    assert got == list(range(1000))
    assert hub.dropped == 0


async def test_unsubscribe_releases_a_blocked_publisher_and_the_writer() -> None:
    hub = EventHub(backpressure=True)
    sub = hub.subscribe(None)
    publisher = asyncio.create_task(hub.publish([ev(n) for n in range(MAX_EVENTS + 5)]))
    await asyncio.sleep(0.05)  # the point: time to finish, which a blocked publisher must not use
    assert not publisher.done()  # the 129th event waits for room
    idle = hub.subscribe(frozenset({"nothing-matches"}))
    waiting_writer = asyncio.create_task(idle.next_batch())
    hub.unsubscribe(sub)
    await asyncio.wait_for(publisher, 5)
    assert hub.subscriber_count == 1
    hub.close()
    assert await asyncio.wait_for(waiting_writer, 5) == []
    assert hub.subscriber_count == 0


async def test_wait_drained_follows_the_writer() -> None:
    hub = EventHub()
    sub = hub.subscribe(None)
    await hub.publish([ev(1)])
    assert not hub.idle
    drained = asyncio.create_task(hub.wait_drained())
    await sub.next_batch()
    await asyncio.sleep(0.01)  # the point: time to report drained, which it must not use yet
    assert not drained.done()  # the batch is handed out but not yet written
    writer = asyncio.create_task(sub.next_batch())  # asking again = previous batch written
    await asyncio.wait_for(drained, 5)
    assert hub.idle
    writer.cancel()


async def test_fault_lines_are_extra_and_counted() -> None:
    faults = Faults()
    faults.apply(FaultRequest(malformed_rate=1.0, truncated_rate=1.0, oversized_rate=1.0))
    hub = EventHub(faults)
    sub = hub.subscribe(None)
    await hub.publish([ev(1), ev(2)])
    lines = b"".join(await sub.next_batch()).splitlines(keepends=True)
    assert len(lines) == 8  # per event: garbage, truncated copy, 2 MiB line, the real event
    assert faults.counts == {"malformed": 2, "truncated": 2, "oversized": 2}
    real = [line for line in lines if line in (ev(1).to_line(), ev(2).to_line())]
    assert real == [ev(1).to_line(), ev(2).to_line()]
    assert sum(len(line) > MAX_LINE_BYTES for line in lines) == 2
    assert lines[1] == ev(1).to_line()[: len(ev(1).to_line()) // 2] + b"\n"
    for line in lines:
        if line not in real and len(line) <= MAX_LINE_BYTES:
            with pytest.raises(ValueError):
                StreamEvent.from_json(line)


async def test_pending_drops_lose_events_then_report() -> None:
    faults = Faults()
    faults.apply(FaultRequest(dropped_output=3))
    hub = EventHub(faults)
    a, b = hub.subscribe(None), hub.subscribe(None)
    await hub.publish([ev(n) for n in range(5)])
    for sub in (a, b):
        got = decode(await sub.next_batch())
        assert got[0]["type"] == "dropped-output"
        assert [e["n"] for e in got[1:]] == [3, 4]
    assert faults.pending_drops == 0 and faults.counts["dropped_output"] == 3
