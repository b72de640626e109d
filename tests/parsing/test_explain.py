"""`cidash explain`: every line with a comment's text and author is read; what it lacks is named."""

from __future__ import annotations

import json

import orjson

from cidash.config import CISystemConfig, Settings
from cidash.parsing.explain import explain_lines
from tests.support.paths import GERRIT_SAMPLES

DATA = GERRIT_SAMPLES
SETTINGS = Settings(ci=[CISystemConfig(account="acme-ci"), CISystemConfig(account="zuul")])


def explain(*lines: object) -> list[dict[str, object]]:
    raw = [line if isinstance(line, bytes) else orjson.dumps(line) for line in lines]
    return list(explain_lines(SETTINGS, raw, "review"))


def test_a_comment_added_line_without_change_or_patch_set_is_read_and_says_so() -> None:
    line = {
        "type": "comment-added",
        "author": {"username": "acme-ci"},
        "approvals": [{"type": "Verified", "value": "-1", "oldValue": "0"}],
        "comment": "Patch Set 4: Verified-1\n\nSorry, see http://ci.acme.example/logs/9/",
    }
    [answer] = explain(line)
    assert (answer["kind"], answer["result"], answer["vote"], answer["ci"]) == ("result", "FAILURE", -1, "acme-ci")
    assert answer["missing"] == ["change", "patch set", "time", "project"]
    assert str(answer["why"]).endswith("(read without its change, patch set, time, project: not in the line)")
    assert "Verified vote (-1) decided" in str(answer["why"])


def test_a_rest_message_line_is_read_too() -> None:
    change = json.loads((DATA / "gerrit_haskell_test_data_GerritChange.json").read_text())
    message = next(m for m in change["messages"] if "Verified+1" in m["message"])
    message["author"] = {"username": "zuul"}  # the sample's author carries only an id
    [answer] = explain(message)
    assert (answer["kind"], answer["result"]) == ("result", "SUCCESS")
    assert answer["missing"] == ["change", "project"]


def test_a_full_sample_event_has_nothing_missing_and_what_cannot_be_read_says_why() -> None:
    line = (DATA / "gerrit_haskell_test_data_EventCommentAdded.json").read_text()
    event = json.loads(line)
    no_author = {"type": "comment-added", "comment": "Build failed."}
    answers = explain(event, no_author, b"not json", {"type": "ref-updated"})
    assert (answers[0]["kind"], answers[0]["missing"]) == ("start", [])
    assert answers[1]["why"] == "line 2 (comment-added) has no comment author to read"
    assert str(answers[2]["why"]).startswith("line 3 is not an event")
    assert answers[3]["why"] == "line 4 (ref-updated) has no comment text to read"
