"""cidash.parsing: who is a CI, and what its comment says (real samples + every supported format)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.domain.results import INFRA_RESULTS, TEST_FAILURE_RESULTS, Result
from cidash.errors import ConfigError
from cidash.gerrit.messages import split_header_votes, strip_patchset_header
from cidash.parsing import (
    CommentKind,
    CommentParser,
    JobResult,
    ParsedComment,
    parse_duration,
)
from tests.support.comments import SAMPLE_AT, make_comment
from tests.support.paths import GERRIT_SAMPLES

DATA = GERRIT_SAMPLES


def parse(message: str, parser: CommentParser | None = None, **kwargs: Any) -> ParsedComment:
    return (parser or CommentParser()).parse(make_comment(message, **kwargs))


def assert_not_ci(parsed: ParsedComment) -> None:
    assert parsed.kind is CommentKind.OTHER
    assert parsed.is_ci is False
    assert parsed.ci is None
    assert parsed.result is None
    assert parsed.jobs == ()
    assert parsed.vote is None


def account_of(info: dict[str, Any]) -> AccountRef:
    return AccountRef(
        account_id=info.get("_account_id"),
        username=info.get("username") or None,
        name=info.get("name"),
        email=info.get("email"),
    )


def stream_comment(event: dict[str, Any], server: str = "review") -> ObservedComment:
    """A `comment-added` stream event as cidash.gerrit would normalise it (enough for the parser)."""
    approvals = {a["type"]: int(a["value"]) for a in event.get("approvals", [])}
    changed = frozenset(a["type"] for a in event.get("approvals", []) if "oldValue" in a)
    return ObservedComment(
        server=server,
        project=event["change"]["project"],
        branch=event["change"]["branch"],
        change_number=int(event["change"]["number"]),
        change_id=event["change"]["id"],
        patchset=ObservedPatchSet(int(event["patchSet"]["number"])),
        author=account_of(event["author"]),
        posted_at=SAMPLE_AT,
        message=event["comment"],
        source=Source.STREAM,
        approvals=approvals,
        changed_labels=changed,
    )


def gerritbot_events() -> list[dict[str, Any]]:
    lines = (DATA / "gerritbot_rs_test_event_json_constants.txt").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


# --------------------------------------------------------------------------------------------
# Small helpers


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h 02m 03s", 3723),
        ("3m 12s", 192),
        ("45s", 45),
        ("0s", 0),
        ("in 4m 12s", 252),
        ("12m 01s", 721),
        ("2h", 7200),
        ("5m", 300),
        ("12 mins 30 secs", 750),
        ("1 hour 5 minutes", 3900),
        ("", None),
        ("soon", None),
        ("3x", None),
        ("12m 01", None),
        ("3s 2m", None),
        ("1h 02m 03s extra", None),
        ("-5s", None),
    ],
)
def test_parse_duration(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("message", "body", "header"),
    [
        ("Patch Set 3: Verified+1\n\nBuild succeeded.", "Build succeeded.", "Patch Set 3: Verified+1"),
        ("Patch Set 3:\n\nStarting check jobs.", "Starting check jobs.", "Patch Set 3:"),
        ("Patch Set 3: Code-Review+2", "", "Patch Set 3: Code-Review+2"),
        ("Patch Set 12:", "", "Patch Set 12:"),
        ("Patch Set 3: -Verified\n\nStarting gate jobs.", "Starting gate jobs.", "Patch Set 3: -Verified"),
        ("Build succeeded.\n\n- noop noop : SUCCESS", "Build succeeded.\n\n- noop noop : SUCCESS", None),
        ("recheck", "recheck", None),
        ("Patch Set three: nope", "Patch Set three: nope", None),
        (
            "Patch Set 2: Verified-1\n\n(2 comments)\n\nBuild failed.",
            "(2 comments)\n\nBuild failed.",
            "Patch Set 2: Verified-1",
        ),
    ],
)
def test_strip_patchset_header(message: str, body: str, header: str | None) -> None:
    assert strip_patchset_header(message) == (body, header)


@pytest.mark.parametrize(
    ("header", "votes"),
    [
        ("Patch Set 3: Verified+1 Code-Review-2 -Workflow", {"Verified": 1, "Code-Review": -2, "Workflow": 0}),
        ("Patch Set 3: Verified+2", {"Verified": 2}),
        ("Patch Set 3: -Verified", {"Verified": 0}),
        ("Patch Set 1: VRIF+1", {"VRIF": 1}),
        ("Patch Set 3:", {}),
        ("Patch Set 3: Code-Review+2 Workflow+1", {"Code-Review": 2, "Workflow": 1}),
        ("Patch Set 1: This is the first message.", {}),  # Gerrit 2.7-era text on the header line
        ("Verified-1", {"Verified": -1}),
    ],
)
def test_split_header_votes(header: str, votes: dict[str, int]) -> None:
    assert split_header_votes(header) == votes


# --------------------------------------------------------------------------------------------
# Real samples


def test_real_rest_messages_from_softwarefactory() -> None:
    """Every message of a real ChangeInfo (softwarefactory-project.io, 2020): Zuul CI and a human."""
    change = json.loads((DATA / "gerrit_haskell_test_data_GerritChange.json").read_text())
    parser = CommentParser()
    got = []
    for message in change["messages"]:
        comment = ObservedComment(
            server="softwarefactory",
            project=change["project"],
            branch=change["branch"],
            change_number=change["_number"],
            change_id=change["change_id"],
            patchset=ObservedPatchSet(message["_revision_number"]),
            author=account_of(message["author"]),
            posted_at=SAMPLE_AT,
            message=message["message"],
            source=Source.REST,
            message_id=message["id"],
            tag=message.get("tag"),
        )
        parsed = parser.parse(comment)
        got.append((parsed.kind, parsed.is_ci, parsed.ci, parsed.result, parsed.pipeline, parsed.vote))
    assert got == [
        (CommentKind.OTHER, False, None, None, None, None),  # Uploaded patch set 1.
        (CommentKind.OTHER, False, None, None, None, None),
        (CommentKind.OTHER, False, None, None, None, None),
        (CommentKind.START, True, "zuul", None, "check", None),  # Starting check jobs. Status at
        (CommentKind.RESULT, True, "zuul", "SUCCESS", None, 1),  # Build succeeded. (no pipeline anywhere)
        (CommentKind.OTHER, False, None, None, None, None),  # human Code-Review+2 Workflow+1
        (CommentKind.OTHER, False, None, None, None, None),  # "Change has been successfully merged by Zuul CI"
        (CommentKind.START, True, "zuul", None, "gate", 0),  # -Verified, Starting gate jobs.
        (CommentKind.RESULT, True, "zuul", "SUCCESS", "gate", 2),  # Build succeeded (gate pipeline).
    ]
    success = parser.parse(make_comment(change["messages"][4]["message"], username="zuul", server="softwarefactory"))
    assert success.jobs == (
        JobResult(
            "noop",
            "https://softwarefactory-project.io/zuul/t/local/build/c6511d87e5f644e7b566b73741600392",
            "SUCCESS",
            0,
        ),
    )


def test_real_merged_message_is_a_gerrit_notice_of_a_listed_ci() -> None:
    change = json.loads((DATA / "gerrit_haskell_test_data_GerritChange.json").read_text())
    merged = next(m for m in change["messages"] if m.get("tag") == "autogenerated:gerrit:merged")
    parser = CommentParser([CISystemConfig(account="zuul")])
    for tag in (merged["tag"], None):  # by its tag (REST) or by its text (stream)
        parsed = parser.parse(make_comment(merged["message"], username="zuul", tag=tag))
        assert (parsed.kind, parsed.is_ci, parsed.ci, parsed.result, parsed.jobs) == (
            CommentKind.NOTICE,
            True,
            "zuul",
            None,
            (),
        )
        assert parsed.why == "listed in config; Gerrit's own message in the CI's name, not a CI report"


def test_real_stream_start_event_from_zuul() -> None:
    event = json.loads((DATA / "gerrit_haskell_test_data_EventCommentAdded.json").read_text())
    parsed = CommentParser().parse(stream_comment(event))
    assert parsed.kind is CommentKind.START
    assert parsed.is_ci and parsed.ci == "zuul"
    assert parsed.pipeline == "check"
    assert parsed.vote is None  # Verified 0 in approvals, not changed by this comment
    assert parsed.result is None


def test_real_gerritbot_prose_failure_is_not_a_ci() -> None:
    """'Just a buggy script. FAILURE' from a reviewer must not turn the reviewer into a CI."""
    events = [e for e in gerritbot_events() if e.get("type") == "comment-added"]
    prose = [e for e in events if "FAILURE" in e["comment"]]
    assert prose, "the sample should contain the prose FAILURE comment"
    parser = CommentParser()
    for event in events:
        assert_not_ci(parser.parse(stream_comment(event)))


def test_real_human_review_from_tvl_is_not_a_ci() -> None:
    lines = (DATA / "tvl_depot_clbot_watcher_test_cl_tvl_fyi_comment_added.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert events
    for event in events:
        assert event["comment"] == "Patch Set 3: Code-Review+2"
        assert_not_ci(CommentParser().parse(stream_comment(event)))


def test_real_jenkins_vote_from_query_approvals() -> None:
    """Gerrit 2.x era: no "Patch Set N:" header; the vote comes from Jenkins' approval in `gerrit query`."""
    jenkins_votes = []
    for line in (DATA / "zuul_fixture_gerrit_simple_query_pagination_old_1.txt").read_text().splitlines():
        if not line.startswith("{"):
            continue
        change = json.loads(line)
        for approval in change.get("currentPatchSet", {}).get("approvals", []):
            if approval["by"].get("username") == "jenkins" and approval["type"] == "Verified":
                jenkins_votes.append(int(approval["value"]))
    assert jenkins_votes == [2, 2, 2]
    # review.openstack.org 2014 comment text (protocol notes 1.5), with the query's approval
    message = (
        "Build succeeded.\n\n"
        "- gate-keystone-pep8 http://logs.openstack.org/44/60244/12/check/gate-keystone-pep8/5ef9f24 "
        ": SUCCESS in 1m 40s\n"
        "- gate-keystone-python27 http://logs.openstack.org/44/60244/12/check/gate-keystone-python27/3c1a2b4 "
        ": SUCCESS in 6m 02s"
    )
    parsed = parse(message, username="jenkins", name="Jenkins", approvals={"Verified": jenkins_votes[0]})
    assert parsed.kind is CommentKind.RESULT
    assert parsed.result == "SUCCESS"
    assert parsed.vote == 2
    assert [(job.name, job.duration_s) for job in parsed.jobs] == [
        ("gate-keystone-pep8", 100),
        ("gate-keystone-python27", 362),
    ]


def test_real_gerritforge_message() -> None:
    """gerrit-review.googlesource.com 2019 (protocol notes 2.4), REST message with tag autogenerated:jenkins."""
    message = (
        "Patch Set 2: Verified+1\n\n✅ notedb : SUCCESS\n"
        "    (https://gerrit-ci.gerritforge.com/job/Gerrit-verifier-bazel/76850/consoleText)"
    )
    parsed = parse(message, username=None, account_id=1022687, tag="autogenerated:jenkins", source=Source.REST)
    assert parsed.kind is CommentKind.RESULT
    assert parsed.is_ci and parsed.ci == "account:1022687"
    assert parsed.result == "SUCCESS"
    assert parsed.vote == 1
    assert parsed.pipeline is None
    assert parsed.jobs == (
        JobResult(
            "notedb", "https://gerrit-ci.gerritforge.com/job/Gerrit-verifier-bazel/76850/consoleText", "SUCCESS", None
        ),
    )


# --------------------------------------------------------------------------------------------
# Formats

ZUUL3_FAILED = (
    "Build failed (check pipeline).\n"
    "https://zuul.opendev.org/t/openstack/buildset/6e2d1b1a7f5c4c1c8f1d9d2b2b9b7a11\n\n"
    "- openstack-tox-pep8 https://zuul.opendev.org/t/openstack/build/0d5e7f2a : SUCCESS in 3m 51s\n"
    "- tempest-full https://zuul.opendev.org/t/openstack/build/8a1c9e3b : FAILURE in 1h 02m 03s\n"
    "- nova-grenade-multinode https://zuul.opendev.org/t/openstack/build/41ce0b9d : TIMED_OUT in 2h 00m 12s"
    " (non-voting)\n"
    "- nova-ceph-multistore https://zuul.opendev.org/t/openstack/build/77f0a1c2 : POST_FAILURE in 45s\n"
    "- nova-live-migration nova-live-migration : SKIPPED\n"
    "- nova-next : NODE_FAILURE Node request 300-0012345 failed\n"
    "- openstack-tox-docs https://zuul.opendev.org/t/openstack/build/e3b0c442 : ERROR Project openstack/x "
    "does not have the default branch master in 0s\n"
    "Skipped 2 jobs\n"
)


@pytest.mark.parametrize("with_header", [True, False])
def test_zuul_v3_failed_report(with_header: bool) -> None:
    message = "Patch Set 4: Verified-1\n\n" + ZUUL3_FAILED if with_header else ZUUL3_FAILED
    parsed = parse(message, parser=CommentParser([CISystemConfig(account="zuul", reference=True)]))
    assert parsed.kind is CommentKind.RESULT
    assert parsed.is_ci and parsed.ci == "zuul"
    assert parsed.result == "FAILURE"
    assert parsed.pipeline == "check"
    assert parsed.vote == (-1 if with_header else None)
    build = "https://zuul.opendev.org/t/openstack/build/"
    assert parsed.jobs == (
        JobResult("openstack-tox-pep8", build + "0d5e7f2a", "SUCCESS", 231),
        JobResult("tempest-full", build + "8a1c9e3b", "FAILURE", 3723),
        JobResult("nova-grenade-multinode", build + "41ce0b9d", "TIMED_OUT", 7212, voting=False),
        JobResult("nova-ceph-multistore", build + "77f0a1c2", "POST_FAILURE", 45),
        JobResult("nova-live-migration", None, "SKIPPED", None),
        JobResult("nova-next", None, "NODE_FAILURE", None),
        JobResult("openstack-tox-docs", build + "e3b0c442", "ERROR", 0),
    )
    assert [job.detail for job in parsed.jobs] == [
        None,
        None,
        None,
        None,
        None,
        "Node request 300-0012345 failed",
        "Project openstack/x does not have the default branch master",
    ]
    assert parsed.why == (
        "listed in config; Zuul header 'Build failed (check pipeline).'; 7 job lines; "
        "overall FAILURE because voting job tempest-full ended FAILURE"
    )


def test_zuul_v3_succeeded_report_with_non_voting_failure() -> None:
    message = (
        "Patch Set 2: Verified+1\n\nBuild succeeded (check pipeline).\n\n"
        "- cinder-tempest-plugin-lvm-lio-barbican https://zuul.opendev.org/t/openstack/build/a1 "
        ": SUCCESS in 1h 10m 22s\n"
        "- cinder-plugin-ceph-tempest https://zuul.opendev.org/t/openstack/build/a2 : FAILURE in 58m 01s (non-voting)"
    )
    parsed = parse(message, tag="autogenerated:zuul:check")
    assert (parsed.kind, parsed.result, parsed.pipeline, parsed.vote) == (CommentKind.RESULT, "SUCCESS", "check", 1)
    assert [(job.result, job.duration_s, job.voting) for job in parsed.jobs] == [
        ("SUCCESS", 4222, True),
        ("FAILURE", 3481, False),
    ]
    assert "auto-detected" in parsed.why
    assert "overall SUCCESS because the header says it succeeded" in parsed.why


def test_zuul_v3_infra_only_failure() -> None:
    message = (
        "Patch Set 7: Verified-1\n\nBuild failed (check pipeline).\n\n"
        "- tempest-full-py3 https://zuul.opendev.org/t/openstack/build/b1 : RETRY_LIMIT in 4m 03s\n"
        "- nova-multi-cell : NODE_FAILURE\n"
        "- openstack-tox-py38 https://zuul.opendev.org/t/openstack/build/b3 : SUCCESS in 9m 40s"
    )
    parsed = parse(message)
    assert parsed.result == "RETRY_LIMIT"
    assert parsed.result in INFRA_RESULTS
    assert "RETRY_LIMIT (infra)" in parsed.why


@pytest.mark.parametrize(
    ("word", "canonical"),
    [("MERGER_FAILURE", "MERGE_CONFLICT"), ("CANCELED", "ABORTED"), ("DISK_FULL", "DISK_FULL"), ("LOST", "LOST")],
)
def test_zuul_result_aliases(word: str, canonical: str) -> None:
    parsed = parse(f"Build failed.\n\n- job-a https://zuul.example.org/build/1 : {word}")
    assert parsed.jobs[0].result == canonical
    assert parsed.result == canonical


def test_unknown_result_word_is_kept_raw() -> None:
    parsed = parse("Build failed.\n\n- job-a https://zuul.example.org/build/1 : EXPLODED in 3s")
    assert parsed.jobs == (JobResult("job-a", "https://zuul.example.org/build/1", "EXPLODED", 3),)
    assert parsed.result == "FAILURE"


def test_zuul_merge_failed() -> None:
    message = (
        "Patch Set 5: Verified-1\n\nMerge Failed.\n\nThis change or one of its cross-repo dependencies was "
        "unable to be automatically merged with the current state of its repository. Please rebase the change "
        "and upload a new patchset."
    )
    parsed = parse(message, tag="autogenerated:zuul:gate")
    assert (parsed.kind, parsed.is_ci, parsed.result, parsed.jobs) == (
        CommentKind.RESULT,
        True,
        "MERGE_CONFLICT",
        (),
    )
    assert parsed.pipeline == "gate"
    assert parsed.vote == -1


ZUUL2_MESSAGE = (
    "Build failed.  For information on how to proceed, see "
    "http://docs.openstack.org/infra/manual/developers.html#automated-testing\n\n"
    "- gate-nova-pep8 http://logs.openstack.org/44/60244/12/check/gate-nova-pep8/5ef9f24 : SUCCESS in 4m 12s\n"
    "- gate-nova-python27 http://logs.openstack.org/44/60244/12/check/gate-nova-python27/1a2b3c4 : FAILURE in "
    "12m 01s\n"
    "- gate-nova-python34 http://logs.openstack.org/44/60244/12/check/gate-nova-python34/9f8e7d6 : FAILURE in "
    "10m 33s (non-voting)\n"
)


@pytest.mark.parametrize("with_header", [True, False])
def test_zuul_v2_openstack_jenkins(with_header: bool) -> None:
    message = "Patch Set 12: Verified-1\n\n" + ZUUL2_MESSAGE if with_header else ZUUL2_MESSAGE
    parsed = parse(message, username="jenkins", name="Jenkins")
    assert parsed.kind is CommentKind.RESULT
    assert parsed.ci == "jenkins"
    assert parsed.result == "FAILURE"
    assert parsed.pipeline is None
    assert parsed.vote == (-1 if with_header else None)
    assert [(j.name, j.result, j.duration_s, j.voting) for j in parsed.jobs] == [
        ("gate-nova-pep8", "SUCCESS", 252, True),
        ("gate-nova-python27", "FAILURE", 721, True),
        ("gate-nova-python34", "FAILURE", 633, False),
    ]
    assert all(j.url is not None and j.url.startswith("http://logs.openstack.org/") for j in parsed.jobs)
    assert "Zuul header 'Build failed.'" in parsed.why


def test_third_party_zuul_v2_recheck_variant() -> None:
    message = (
        "Patch Set 3: Verified-1\n\nBuild failed. For rechecking only on the Hyper-V CI, add a review comment "
        "with check hyper-v\n\n"
        "- nova-hyperv-tempest http://64.119.130.115/nova/60244/12/3c1a2b4 : FAILURE in 1h 15m 42s\n"
        "- nova-hyperv-unit http://64.119.130.115/nova/60244/12/77aa01b : SUCCESS in 8m 02s"
    )
    parsed = parse(message, username="hyperv-ci")
    assert (parsed.is_ci, parsed.result, parsed.vote) == (True, "FAILURE", -1)
    assert [j.duration_s for j in parsed.jobs] == [4542, 482]


JENKINS_FAILED = (
    "Build Failed \n\n"
    "https://jenkins.citrix.example.com/job/xenserver-tempest-dsvm/1234/ : FAILURE\n\n"
    "https://jenkins.citrix.example.com/job/xenserver-unit-dsvm/1234/ : SUCCESS\n\n"
    "https://jenkins.citrix.example.com/job/folder/job/nested-job/77/ : UNSTABLE (non-voting)\n"
    "https://ci.example.org/view/nova/builds/1234/ : NOT_BUILT"
)


@pytest.mark.parametrize("with_header", [True, False])
def test_jenkins_gerrit_trigger_failed(with_header: bool) -> None:
    message = "Patch Set 9: Verified-1\n\n" + JENKINS_FAILED if with_header else JENKINS_FAILED
    parsed = parse(message, username="xenserver-ci", tag="autogenerated:jenkins")
    assert parsed.kind is CommentKind.RESULT
    assert parsed.result == "FAILURE"
    assert parsed.pipeline is None
    assert parsed.jobs == (
        JobResult(
            "xenserver-tempest-dsvm",
            "https://jenkins.citrix.example.com/job/xenserver-tempest-dsvm/1234/",
            "FAILURE",
            None,
        ),
        JobResult(
            "xenserver-unit-dsvm", "https://jenkins.citrix.example.com/job/xenserver-unit-dsvm/1234/", "SUCCESS", None
        ),
        JobResult(
            "folder/nested-job",
            "https://jenkins.citrix.example.com/job/folder/job/nested-job/77/",
            "UNSTABLE",
            None,
            voting=False,
        ),
        JobResult("builds", "https://ci.example.org/view/nova/builds/1234/", "SKIPPED", None),
    )
    assert "gerrit-trigger header 'Build Failed'" in parsed.why


@pytest.mark.parametrize(
    ("header", "jobs", "expected"),
    [
        ("Build Successful ", "https://j.example.org/job/a/1/ : SUCCESS", "SUCCESS"),
        ("Build Unstable ", "https://j.example.org/job/a/1/ : UNSTABLE", "FAILURE"),
        ("Build Aborted ", "https://j.example.org/job/a/1/ : ABORTED", "ABORTED"),
        ("Build Failed ", "", "FAILURE"),
        ("Build Unstable ", "", "UNSTABLE"),
        ("Build Aborted", "", "ABORTED"),
        ("Build Failed ", "https://j.example.org/job/a/1/ : SUCCESS", "FAILURE"),
    ],
)
def test_jenkins_headers(header: str, jobs: str, expected: str) -> None:
    body = f"{header}\n\n{jobs}" if jobs else header
    parsed = parse(f"Patch Set 1: Verified-1\n\n{body}", username="dell-emc-ci")
    assert parsed.kind is CommentKind.RESULT
    assert parsed.result == expected


def test_gerritforge_failure_without_header() -> None:
    message = (
        "✅ notedb : SUCCESS\n    (https://gerrit-ci.gerritforge.com/job/Gerrit-verifier-notedb/76850/consoleText)\n"
        "❌ rbe : FAILURE\n    (https://gerrit-ci.gerritforge.com/job/Gerrit-verifier-rbe/76851/consoleText)\n"
        "✅ polygerrit : SUCCESS\n"
    )
    parsed = parse(message, username=None, account_id=1022687, approvals={"Verified": -1}, changed=["Verified"])
    assert parsed.kind is CommentKind.RESULT
    assert parsed.result == "FAILURE"
    assert parsed.vote == -1
    assert [(j.name, j.url, j.result, j.duration_s) for j in parsed.jobs] == [
        ("notedb", "https://gerrit-ci.gerritforge.com/job/Gerrit-verifier-notedb/76850/consoleText", "SUCCESS", None),
        ("rbe", "https://gerrit-ci.gerritforge.com/job/Gerrit-verifier-rbe/76851/consoleText", "FAILURE", None),
        ("polygerrit", None, "SUCCESS", None),
    ]
    assert "GerritForge check lines" in parsed.why


def test_gerritforge_all_green_with_skip_is_success() -> None:
    message = "Patch Set 4: Verified+1\n\n✅ tempest : SUCCESS\n    (https://ci.x/job/t/1/)\n✅ codestyle : SKIPPED"
    parsed = parse(message, username="nvidia-ci")
    assert parsed.result == "SUCCESS"
    assert parsed.why.endswith("overall SUCCESS because every voting job passed")


@pytest.mark.parametrize(
    ("body", "pipeline"),
    [
        ("Starting check jobs.", "check"),
        ("Starting gate jobs.", "gate"),
        ("Starting check jobs. Status at https://zuul.opendev.org/t/openstack/status/change/21905,3", "check"),
        ("Starting third-party-check jobs.", "third-party-check"),
        ("Build Started https://jenkins.example.org/job/foo/12/ (1/2)", None),
        ("Build Started https://jenkins.example.org/job/foo/12/", None),
    ],
)
@pytest.mark.parametrize("with_header", [True, False])
def test_start_markers(body: str, pipeline: str | None, with_header: bool) -> None:
    message = f"Patch Set 3:\n\n{body}" if with_header else body
    parsed = parse(message, username="cisco-ci")
    assert parsed.kind is CommentKind.START
    assert parsed.is_ci and parsed.ci == "cisco-ci"
    assert parsed.result is None
    assert parsed.jobs == ()
    assert parsed.pipeline == pipeline


def test_start_marker_pipeline_from_tag() -> None:
    parsed = parse(
        "Patch Set 3: -Verified\n\nBuild Started https://j.example.org/job/x/5/", tag="autogenerated:zuul:gate"
    )
    assert (parsed.kind, parsed.pipeline, parsed.vote) == (CommentKind.START, "gate", 0)


def test_inline_comment_count_before_report() -> None:
    message = (
        "Patch Set 2: Verified-1\n\n(2 comments)\n\nBuild failed.\n\n"
        "- tox-linters https://zuul.example.org/build/1 : FAILURE in 1m 02s"
    )
    parsed = parse(message)
    assert (parsed.kind, parsed.result, parsed.vote) == (CommentKind.RESULT, "FAILURE", -1)


def test_crlf_line_endings() -> None:
    message = (
        "Patch Set 2: Verified+1\r\n\r\nBuild succeeded.\r\n\r\n- tox https://z.example.org/b/1 : SUCCESS in 5s\r\n"
    )
    parsed = parse(message)
    assert parsed.result == "SUCCESS"
    assert parsed.vote == 1
    assert parsed.jobs == (JobResult("tox", "https://z.example.org/b/1", "SUCCESS", 5),)


def test_hostile_error_detail_is_kept_as_text() -> None:
    message = (
        "Build failed.\n\n"
        "- vmware-tempest-full https://ci.vmware.example.com/b/1 : FAILURE <script>alert(1)</script> in 1h 20m 00s"
    )
    parsed = parse(message, username="vmware-ci")
    (job,) = parsed.jobs
    assert (job.name, job.result, job.duration_s, job.detail) == (
        "vmware-tempest-full",
        "FAILURE",
        4800,
        "<script>alert(1)</script>",
    )


# --------------------------------------------------------------------------------------------
# The overall-result rule, edge cases


def zuul_body(header: str, *lines: str) -> str:
    return header + "\n\n" + "\n".join(f"- {line}" for line in lines)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # header success wins over any job
        (zuul_body("Build succeeded.", "a http://x/1 : FAILURE", "b http://x/2 : NODE_FAILURE"), "SUCCESS"),
        # test failure beats an earlier infra error
        (zuul_body("Build failed.", "a http://x/1 : RETRY_LIMIT", "b http://x/2 : TIMED_OUT"), "FAILURE"),
        # the first infra error in comment order
        (zuul_body("Build failed.", "a http://x/1 : DISK_FULL", "b http://x/2 : NODE_FAILURE"), "DISK_FULL"),
        # non-voting jobs do not count when some job votes
        (
            zuul_body("Build failed.", "a http://x/1 : SUCCESS", "b http://x/2 : NODE_FAILURE (non-voting)"),
            "FAILURE",
        ),
        (
            zuul_body("Build failed.", "a http://x/1 : SUCCESS", "b http://x/2 : FAILURE in 2s (non-voting)"),
            "FAILURE",
        ),
        (
            zuul_body(
                "Build failed.",
                "a http://x/1 : POST_FAILURE (non-voting)",
                "b http://x/2 : LOST",
                "c http://x/3 : SUCCESS",
            ),
            "LOST",
        ),
        # no voting job at all: every job counts
        (
            zuul_body("Build failed.", "a http://x/1 : SUCCESS (non-voting)", "b http://x/2 : ABORTED (non-voting)"),
            "ABORTED",
        ),
        (
            zuul_body("Build failed.", "a http://x/1 : POST_FAILURE (non-voting)", "b http://x/2 : ERROR (non-voting)"),
            "FAILURE",
        ),
        # all voting jobs green under a failed header: the header's FAILURE
        (zuul_body("Build failed.", "a http://x/1 : SUCCESS", "b http://x/2 : SKIPPED"), "FAILURE"),
        # no jobs
        ("Build failed.", "FAILURE"),
        ("Build succeeded.", "SUCCESS"),
        # no header (GerritForge-style lines)
        ("✅ a : SUCCESS\n✅ b : SKIPPED", "SUCCESS"),
        ("✅ a : SUCCESS\n❌ b : CONFIG_ERROR", "CONFIG_ERROR"),
        ("❌ a : UNSTABLE\n❌ b : ERROR", "FAILURE"),
        # Zuul job lines without a header
        ("- a http://x/1 : SUCCESS in 1s\n- b http://x/2 : SUCCESS in 2s", "SUCCESS"),
    ],
)
def test_overall_result_rule(message: str, expected: str) -> None:
    parsed = parse(message, parser=CommentParser([CISystemConfig(account="zuul")]))
    assert parsed.kind is CommentKind.RESULT
    assert parsed.result == expected


# --------------------------------------------------------------------------------------------
# Vote and pipeline sources


@pytest.mark.parametrize(
    ("message", "approvals", "changed", "vote"),
    [
        ("Patch Set 3: Verified-1\n\nBuild failed.", {"Verified": 1}, ["Verified"], -1),  # header wins
        ("Patch Set 3: Code-Review+1 VRIF+1\n\nBuild succeeded.", {}, [], 1),
        ("Patch Set 3: -Verified\n\nStarting check jobs.", {"Verified": 0}, ["Verified"], 0),
        ("Build failed.", {"Verified": -2, "Code-Review": 0}, ["Verified"], -2),  # changed label
        ("Build failed.", {"Verified": 0}, ["Verified"], 0),  # changed to 0
        ("Build failed.", {"Verified": 0, "Code-Review": 0}, [], None),  # Gerrit >= 2.12 lists zero votes
        ("Build failed.", {"VRIF": 1}, [], 1),  # Gerrit <= 2.5 category id, non-zero
        ("Build failed.", {"Verified": 1}, [], 1),
        ("Patch Set 3: Code-Review-1\n\nBuild failed.", {"Verified": -1}, [], -1),  # header without Verified
        ("Patch Set 3:\n\nBuild failed.", {}, [], None),
    ],
)
def test_vote_sources(message: str, approvals: dict[str, int], changed: list[str], vote: int | None) -> None:
    parsed = parse(message, approvals=approvals, changed=changed)
    assert parsed.is_ci
    assert parsed.vote == vote


@pytest.mark.parametrize(
    ("message", "tag", "pipeline"),
    [
        ("Build succeeded (gate pipeline).\n\n- a http://x/1 : SUCCESS", "autogenerated:zuul:check", "gate"),
        ("Build succeeded.\n\n- a http://x/1 : SUCCESS", "autogenerated:zuul:post", "post"),
        ("Build succeeded.\n\n- a http://x/1 : SUCCESS", "autogenerated:jenkins", None),
        ("Build succeeded.\n\n- a http://x/1 : SUCCESS", None, None),
        ("Starting experimental jobs.", None, "experimental"),
        ("Starting check jobs.", "autogenerated:zuul:check", "check"),
        ("Build failed (third-party-check pipeline).", None, "third-party-check"),
    ],
)
def test_pipeline_sources(message: str, tag: str | None, pipeline: str | None) -> None:
    parsed = parse(message, tag=tag)
    assert parsed.is_ci
    assert parsed.pipeline == pipeline


# --------------------------------------------------------------------------------------------
# Humans


@pytest.mark.parametrize(
    "message",
    [
        "recheck",
        "Patch Set 2:\n\nrecheck",
        "Patch Set 2:\n\nrecheck hyper-v",
        "Patch Set 2: Code-Review+1",
        "Patch Set 2: Code-Review+1\n\nLooks good",
        "Patch Set 2: Code-Review-1\n\n(3 comments)\n\nA few nits inline.",
        "Patch Set 1: Code-Review+2\n\nJust a buggy script. FAILURE\n\nAnd more problems. FAILURE",
        "Patch Set 4:\n\nBuild failed again :( looks like the mirror, recheck",
        "Patch Set 4:\n\n> Build failed.\n\nThe failure is unrelated, see bug 1234.",
        "Patch Set 4:\n\nNote : FAILURE to read the docs is not a CI result",
        "Patch Set 4:\n\nMy plan:\n- first : refactor\n- second : add tests",
        "Uploaded patch set 2.",
        "Patch Set 1:\n\nThis is the first message.",
        "Patch Set 5: Workflow+1\n\nStarting to review this now.",
    ],
)
def test_humans_are_not_ci(message: str) -> None:
    parsed = parse(message, username="jdoe", name="John Doe")
    assert_not_ci(parsed)
    assert "not a known CI account" in parsed.why


def test_non_ci_comment_carries_no_vote_even_with_verified() -> None:
    parsed = parse("Patch Set 2: Verified+1\n\nWorks on my machine", username="jdoe", approvals={"Verified": 1})
    assert_not_ci(parsed)


# --------------------------------------------------------------------------------------------
# Who is a CI: config, group, auto-detection


@pytest.mark.parametrize(
    ("account", "author"),
    [
        ("ibm-powerkvm-ci", AccountRef(username="ibm-powerkvm-ci")),
        ("powerkvm@ibm.example.com", AccountRef(account_id=7, email="powerkvm@ibm.example.com")),
        ("IBM PowerKVM CI", AccountRef(name="IBM PowerKVM CI", email="x@ibm.example.com")),
        ("account:1022687", AccountRef(account_id=1022687)),
        ("IBM PowerKVM CI", AccountRef(username="powerkvm", name="IBM PowerKVM CI")),
    ],
)
def test_listed_in_config_by_any_identity(account: str, author: AccountRef) -> None:
    parser = CommentParser([CISystemConfig(account=account)], auto_detect=False)
    comment = make_comment("Patch Set 1:\n\nrecheck")
    comment = ObservedComment(**{**_fields(comment), "author": author})
    parsed = parser.parse(comment)
    assert parsed.is_ci and parsed.kind is CommentKind.OTHER
    assert parsed.ci == author.key
    assert parsed.why == "listed in config; no report in the text"


def _fields(comment: ObservedComment) -> dict[str, Any]:
    return {name: getattr(comment, name) for name in ObservedComment.__dataclass_fields__}


def test_config_server_filter() -> None:
    parser = CommentParser([CISystemConfig(account="arista-ci", server="opendev")], auto_detect=False)
    report = "Build succeeded.\n\n- arista-tempest https://ci.arista.example.com/b/1 : SUCCESS in 1m 00s"
    on_server = parser.parse(make_comment(report, username="arista-ci", server="opendev"))
    elsewhere = parser.parse(make_comment(report, username="arista-ci", server="other"))
    assert on_server.is_ci and on_server.result == "SUCCESS"
    assert_not_ci(elsewhere)


def test_auto_detect_off_ignores_unlisted_reports() -> None:
    parser = CommentParser([CISystemConfig(account="zuul")], auto_detect=False)
    report = "Patch Set 1: Verified+1\n\nBuild succeeded.\n\n- noop noop : SUCCESS in 0s"
    assert parser.parse(make_comment(report, username="zuul")).result == "SUCCESS"
    parsed = parser.parse(make_comment(report, username="acme-ci"))
    assert_not_ci(parsed)
    assert "auto-detection is off" in parsed.why


def test_group_membership() -> None:
    parser = CommentParser(auto_detect=False)
    comment = make_comment("Patch Set 1:\n\nStarting check jobs.", username="netapp-ci", server="opendev")
    assert_not_ci(parser.parse(comment))
    parser.set_group_members("opendev", ["netapp-ci", "ceph-ci"])
    parsed = parser.parse(comment)
    assert (parsed.kind, parsed.is_ci, parsed.ci, parsed.pipeline) == (CommentKind.START, True, "netapp-ci", "check")
    assert parsed.why.startswith("member of CI group")
    # another server's group does not count, and replacing the members is seen at once (cache cleared)
    assert_not_ci(parser.parse(make_comment(comment.message, username="netapp-ci", server="other")))
    parser.set_group_members("opendev", ["ceph-ci"])
    assert_not_ci(parser.parse(comment))


def test_config_wins_over_group_and_why_says_so() -> None:
    parser = CommentParser([CISystemConfig(account="ceph-ci")])
    parser.set_group_members("review", ["ceph-ci"])
    parsed = parser.parse(make_comment("Build failed.\n\n- ceph-tempest http://x/1 : FAILURE", username="ceph-ci"))
    assert parsed.why.startswith("listed in config; ")


def test_auto_detection_is_per_comment() -> None:
    parser = CommentParser()
    report = parser.parse(make_comment("Build failed.\n\n- a http://x/1 : FAILURE", username="acme-ci"))
    chatter = parser.parse(make_comment("Patch Set 1:\n\nRebuilding the image, please wait", username="acme-ci"))
    assert report.is_ci and report.why.startswith("auto-detected")
    assert_not_ci(chatter)


# --------------------------------------------------------------------------------------------
# Per-CI regex overrides

CUSTOM = CISystemConfig(
    account="acme-ci",
    result_regex=r"^ACME CI: tests (?P<result>passed|failed|NODE_FAILURE)(?: \[(?P<pipeline>\w+)\])?",
    job_regex=(
        r"^\* (?P<name>[\w-]+) -> (?P<result>\w+)(?: after (?P<duration>[\dhms ]+?))?"
        r"(?: <(?P<url>https?://\S+)>)?(?P<voting> \[nv\])?$"
    ),
    start_regex=r"^ACME CI: queued for (?P<pipeline>\w+)",
)


def test_custom_regexes_result() -> None:
    message = (
        "Patch Set 2: Verified-1\n\nACME CI: tests failed [check]\n\n"
        "* acme-unit -> passed after 3m 12s <https://acme.example.com/r/1>\n"
        "* acme-integration -> FAILURE after 1h 02m 03s <https://acme.example.com/r/2>\n"
        "* acme-experimental -> failed [nv]"
    )
    parsed = CommentParser([CUSTOM]).parse(make_comment(message, username="acme-ci"))
    assert (parsed.kind, parsed.result, parsed.pipeline, parsed.vote) == (CommentKind.RESULT, "FAILURE", "check", -1)
    assert parsed.jobs == (
        JobResult("acme-unit", "https://acme.example.com/r/1", "SUCCESS", 192),
        JobResult("acme-integration", "https://acme.example.com/r/2", "FAILURE", 3723),
        JobResult("acme-experimental", None, "FAILURE", None, voting=False),
    )
    assert "result_regex" in parsed.why


def test_custom_result_regex_words() -> None:
    parser = CommentParser([CUSTOM])
    passed = parser.parse(make_comment("ACME CI: tests passed", username="acme-ci"))
    infra = parser.parse(make_comment("ACME CI: tests NODE_FAILURE", username="acme-ci"))
    assert (passed.kind, passed.result) == (CommentKind.RESULT, "SUCCESS")
    assert (infra.kind, infra.result) == (CommentKind.RESULT, "NODE_FAILURE")


def test_custom_start_regex_and_builtin_fallback() -> None:
    parser = CommentParser([CUSTOM])
    start = parser.parse(make_comment("Patch Set 1:\n\nACME CI: queued for gate", username="acme-ci"))
    assert (start.kind, start.pipeline) == (CommentKind.START, "gate")
    # the built-in formats still apply to a CI with overrides
    builtin = parser.parse(make_comment("Build failed.\n\n- x http://x/1 : NODE_FAILURE", username="acme-ci"))
    assert (builtin.kind, builtin.result) == (CommentKind.RESULT, "NODE_FAILURE")


def test_overrides_apply_only_to_their_ci() -> None:
    parsed = CommentParser([CUSTOM]).parse(make_comment("ACME CI: tests passed", username="someone"))
    assert_not_ci(parsed)


@pytest.mark.parametrize(
    ("field", "pattern", "message"),
    [
        ("result_regex", r"Build (?P<result>[a-z+", "not a valid regex"),
        ("job_regex", r"(?P<name>\S+) : (?P<result", "not a valid regex"),
        ("start_regex", r"Starting (", "not a valid regex"),
        ("result_regex", r"Build (succeeded|failed)", "lacks the named group (?P<result>...)"),
        ("job_regex", r"(?P<name>\S+) : \w+", "lacks the named group (?P<result>...)"),
    ],
)
def test_bad_regex_is_a_config_error(field: str, pattern: str, message: str) -> None:
    config = CISystemConfig.model_validate({"account": "broken-ci", field: pattern})
    with pytest.raises(ConfigError) as error:
        CommentParser([CISystemConfig(account="fine-ci"), config])
    text = str(error.value)
    assert "'broken-ci'" in text
    assert field in text
    assert message in text


# --------------------------------------------------------------------------------------------
# Object identity details


def test_parsed_jobs_equal_and_hash_like_constructed_ones() -> None:
    parsed = parse("Build failed.\n\n- a https://x/1 : FAILURE in 3s (non-voting)")
    expected = JobResult("a", "https://x/1", "FAILURE", 3, False)
    assert parsed.jobs == (expected,)
    assert hash(parsed.jobs[0]) == hash(expected)
    with pytest.raises(AttributeError):
        parsed.jobs[0].name = "b"  # type: ignore[misc]


def test_results_are_plain_result_values() -> None:
    parsed = parse(ZUUL3_FAILED)
    assert parsed.result == Result.FAILURE
    assert {job.result for job in parsed.jobs} <= {r.value for r in Result}
    assert Result.UNSTABLE in TEST_FAILURE_RESULTS


# --------------------------------------------------------------------------------------------
# Property: Zuul v3 reports round-trip

ZUUL_WORDS = {
    **{r.value: r.value for r in Result},
    "MERGER_FAILURE": "MERGE_CONFLICT",
    "CANCELED": "ABORTED",
}
DETAILS = ("Unable to freeze job graph", "Node request 300-0000123 failed", "<script>alert(1)</script>")


def zuul_elapsed(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@st.composite
def zuul_jobs(draw: st.DrawFn) -> tuple[str, JobResult, str | None]:
    name = draw(st.from_regex(r"[a-z][a-z0-9._-]{0,40}", fullmatch=True))
    url = draw(
        st.one_of(st.none(), st.from_regex(r"https?://[a-z0-9.-]{1,20}/[A-Za-z0-9/._~%-]{0,60}", fullmatch=True))
    )
    word = draw(st.sampled_from(sorted(ZUUL_WORDS)))
    duration = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=5 * 3600)))
    voting = draw(st.booleans())
    detail = draw(st.one_of(st.none(), st.sampled_from(DETAILS)))
    if url is None:
        middle = draw(st.sampled_from([f"{name} ", ""]))  # Zuul repeats the name, or writes nothing
    else:
        middle = f"{url} "
    line = f"- {name} {middle}: {word}"
    line += f" {detail}" if detail else ""
    line += f" in {zuul_elapsed(duration)}" if duration is not None else ""
    line += "" if voting else " (non-voting)"
    return line, JobResult(name, url, ZUUL_WORDS[word], duration, voting), detail


def expected_overall(succeeded: bool, jobs: Sequence[JobResult]) -> str:
    """The rule, spelled out independently of the implementation."""
    if succeeded:
        return "SUCCESS"
    counted = [job for job in jobs if job.voting] or list(jobs)
    if any(job.result in {"FAILURE", "POST_FAILURE", "TIMED_OUT", "UNSTABLE"} for job in counted):
        return "FAILURE"
    infra = [job.result for job in counted if job.result in {r.value for r in INFRA_RESULTS}]
    return infra[0] if infra else "FAILURE"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(zuul_jobs(), min_size=0, max_size=12),
    succeeded=st.booleans(),
    pipeline=st.one_of(st.none(), st.sampled_from(["check", "gate", "third-party-check"])),
    patchset_header=st.booleans(),
    buildset=st.booleans(),
    listed=st.booleans(),
)
def test_zuul_v3_round_trip(
    jobs: list[tuple[str, JobResult, str | None]],
    succeeded: bool,
    pipeline: str | None,
    patchset_header: bool,
    buildset: bool,
    listed: bool,
) -> None:
    word = "succeeded" if succeeded else "failed"
    header = f"Build {word} ({pipeline} pipeline)." if pipeline else f"Build {word}."
    if buildset:
        header += "\nhttps://zuul.example.org/t/tenant/buildset/0123456789abcdef"
    body = header + "\n\n" + "\n".join(line for line, _, _ in jobs)
    vote = 1 if succeeded else -1
    message = f"Patch Set 3: Verified{vote:+d}\n\n{body}" if patchset_header else body
    parser = CommentParser([CISystemConfig(account="zuul")] if listed else ())

    parsed = parser.parse(make_comment(message, username="zuul"))

    assert parsed.kind is CommentKind.RESULT
    assert parsed.is_ci and parsed.ci == "zuul"
    assert parsed.jobs == tuple(job for _, job, _ in jobs)
    assert [job.detail for job in parsed.jobs] == [detail for _, _, detail in jobs]
    assert parsed.result == expected_overall(succeeded, [job for _, job, _ in jobs])
    assert parsed.pipeline == pipeline
    assert parsed.vote == (vote if patchset_header else None)
    assert parsed.why.startswith("listed in config" if listed else "auto-detected")


FRAGMENTS = (
    "Patch Set 3: Verified-1",
    "Patch Set 3:",
    "",
    "Build failed.",
    "Build succeeded (check pipeline).",
    "Build Failed ",
    "Build Started",
    "Merge Failed.",
    "Starting check jobs.",
    "(2 comments)",
    "- a http://x/1 : FAILURE in 3m 02s (non-voting)",
    "- b : NODE_FAILURE",
    "- c c : SKIPPED in",
    "- : SUCCESS",
    "-  : ",
    "https://j.example.org/job/a/1/ : UNSTABLE",
    "http:// : ",
    "✅ x : SUCCESS",
    "❌ : ",
    "    (https://x/y)",
    "    (",
    "recheck",
    "Just a buggy script. FAILURE",
    " in 1h",
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=8),
    separator=st.sampled_from(["\n", "\n\n", " ", "\r\n"]),
    listed=st.booleans(),
)
def test_parse_never_fails_and_stays_consistent(pieces: list[str], separator: str, listed: bool) -> None:
    parser = CommentParser([CISystemConfig(account="zuul")] if listed else ())
    parsed = parser.parse(make_comment(separator.join(pieces), approvals={"Verified": -1}))
    if parsed.kind is CommentKind.RESULT:
        assert parsed.is_ci and parsed.ci == "zuul"
        assert parsed.result is not None
    else:
        assert parsed.result is None
        assert parsed.jobs == ()
    if listed:
        assert parsed.is_ci
    if not parsed.is_ci:
        assert (parsed.kind, parsed.vote, parsed.pipeline) == (CommentKind.OTHER, None, None)
    assert parsed.why
