"""The simulated Gerrit's REST JSON shapes: ChangeInfo, ChangeMessageInfo, RevisionInfo, LabelInfo.

Fields in the order Gerrit 3.x writes them (dicts keep it), shaped by the ListChangesOptions
asked for; a 2.x world leaves out what Gerrit 2.13 did not have.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from cidash.gerrit.events import change_ref
from cidash.sim.personas import Account
from cidash.sim.state import LABELS, Change, Message, PatchSet, rest_time
from cidash.sim.world import World


def _account(account: Account, detailed: bool) -> dict[str, Any]:
    return account.info_detailed if detailed else account.info


def message_info(world: World, message: Message, detailed: bool) -> dict[str, Any]:
    """ChangeMessageInfo: id, tag, author, date, message, accounts_in_message, _revision_number."""
    author = _account(message.author, detailed)
    info: dict[str, Any] = {"id": message.id}
    if message.tag is not None:
        info["tag"] = message.tag
    info["author"] = author
    # Gerrit sends real_author only when someone posted on the author's behalf (never, here)
    info["date"] = rest_time(message.date)
    info["message"] = message.text
    if not world.legacy_2x:
        info["accounts_in_message"] = []  # accounts behind <GERRIT_ACCOUNT_n> templates in the text
    info["_revision_number"] = message.patchset
    return info


def _git_person(account: Account, when: int) -> dict[str, Any]:
    return {"name": account.name, "email": account.email or "", "date": rest_time(when), "tz": 0}


def _revision_info(change: Change, ps: PatchSet, options: frozenset[str], detailed: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "kind": ps.kind,
        "_number": ps.number,
        "created": rest_time(ps.created),
        "uploader": _account(ps.uploader, detailed),
        "ref": change_ref(change.number, ps.number),
        "fetch": {},  # download schemes come from a plugin Gerrit does not ship
        "branch": f"refs/heads/{change.branch}",
    }
    if "ALL_COMMITS" in options or ("CURRENT_COMMIT" in options and ps is change.current):
        info["commit"] = {
            "parents": [{"commit": ps.parent, "subject": 'Merge "Bump the branch"'}],
            "author": _git_person(change.owner, ps.created),
            "committer": _git_person(ps.uploader, ps.created),
            "subject": change.subject,
            "message": change.commit_message,
        }
    return info


def change_info(world: World, change: Change, options: frozenset[str]) -> dict[str, Any]:
    """ChangeInfo in Gerrit's field order, shaped by the ListChangesOptions given."""
    detailed = "DETAILED_ACCOUNTS" in options
    project = quote(change.project, safe="")
    triplet = f"{project}~{quote(change.branch, safe='')}~{change.change_id}"
    current = change.current
    info: dict[str, Any]
    if world.legacy_2x:
        info = {"id": triplet}
    else:
        info = {"id": f"{project}~{change.number}", "triplet_id": triplet}
    info["project"] = change.project
    info["branch"] = change.branch
    if not world.legacy_2x:
        info["attention_set"] = _attention_set(change, detailed)
        info["removed_from_attention_set"] = {}
    info["hashtags"] = []
    info["change_id"] = change.change_id
    info["subject"] = change.subject
    info["status"] = change.status
    info["created"] = rest_time(change.created)
    info["updated"] = rest_time(change.updated)
    if change.submitted is not None:
        info["submitted"] = rest_time(change.submitted)
        info["submitter"] = _account(world.zuul, detailed)
    elif not world.legacy_2x:
        info["submit_type"] = "MERGE_IF_NECESSARY"
    info["insertions"] = current.insertions
    info["deletions"] = current.deletions
    if not world.legacy_2x:
        info["total_comment_count"] = change.inline_comments
        info["unresolved_comment_count"] = 0
        info["has_review_started"] = True
        if change.submitted is not None:
            info["submission_id"] = str(change.number)
        info["meta_rev_id"] = change.meta_rev
    info["_number"] = change.number
    if not world.legacy_2x:
        info["virtual_id_number"] = change.number
    info["owner"] = _account(change.owner, detailed)
    if "LABELS" in options or "DETAILED_LABELS" in options:
        info["labels"] = _labels(current, world, detailed)
    if "MESSAGES" in options:
        info["messages"] = [message_info(world, message, detailed) for message in change.messages]
    if not world.legacy_2x:
        info["current_revision_number"] = current.number
    if "ALL_REVISIONS" in options:
        info["current_revision"] = current.revision
        info["revisions"] = {ps.revision: _revision_info(change, ps, options, detailed) for ps in change.patchsets}
    elif "CURRENT_REVISION" in options or "CURRENT_COMMIT" in options:
        info["current_revision"] = current.revision
        info["revisions"] = {current.revision: _revision_info(change, current, options, detailed)}
    if not world.legacy_2x:
        info["requirements"] = []
        info["submit_records"] = [_submit_record(world, change, detailed)]
    return info


def mark_more_changes(info: dict[str, Any]) -> None:
    """`_more_changes: true` where Gerrit's ChangeInfo has it: after `revisions`, before `requirements`."""
    tail: dict[str, Any] = {key: info.pop(key) for key in ("requirements", "submit_records") if key in info}
    info["_more_changes"] = True
    info.update(tail)


def _attention_set(change: Change, detailed: bool) -> dict[str, Any]:
    """The owner, once others replied on an open change (Gerrit's most common attention reason)."""
    if change.status != "NEW" or len(change.messages) < 2:
        return {}
    entry = {
        "account": _account(change.owner, detailed),
        "last_update": rest_time(change.updated),
        "reason": "Someone else replied on the change",
    }
    return {str(change.owner.account_id): entry}


def _submit_record(world: World, change: Change, detailed: bool) -> dict[str, Any]:
    """Gerrit's DefaultSubmitRule record: Code-Review must be approved, Verified may be."""
    current = change.current
    review: dict[str, Any] = {"label": "Code-Review", "status": "OK" if current.approved else "NEED"}
    if current.approved:
        review["applied_by"] = _account(world.admin, detailed)
    verified: dict[str, Any] = {"label": "Verified", "status": "MAY"}
    if current.vote(world.zuul.account_id, "Verified"):
        verified["applied_by"] = _account(world.zuul, detailed)
    if change.status != "NEW":
        status = "CLOSED"
    else:
        status = "OK" if current.approved else "NOT_READY"
    return {"rule_name": "gerrit~DefaultSubmitRule", "status": status, "labels": [review, verified]}


_LABEL_RANGES = {"Verified": (-2, 2), "Code-Review": (-2, 2), "Workflow": (-1, 1)}


def _labels(ps: PatchSet, world: World, detailed: bool) -> dict[str, Any]:
    """LabelInfo, quick form: the decisive vote per label (rejected/approved/disliked/recommended)."""
    labels: dict[str, Any] = {}
    for label in LABELS:
        entry: dict[str, Any] = {}
        values = sorted((votes[label][0], account_id) for account_id, votes in ps.votes.items() if label in votes)
        if values:
            lowest, highest = _LABEL_RANGES[label]
            (low, low_by), (high, high_by) = values[0], values[-1]
            if low == lowest:
                entry["rejected"] = _account(world.accounts[low_by], detailed)
            elif high == highest:
                entry["approved"] = _account(world.accounts[high_by], detailed)
            elif low < 0:
                entry["disliked"] = _account(world.accounts[low_by], detailed)
            else:
                entry["recommended"] = _account(world.accounts[high_by], detailed)
            entry["value"] = low if low < 0 else high
        labels[label] = entry
    return labels
