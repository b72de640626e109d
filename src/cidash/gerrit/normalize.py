"""Turn a stream `comment-added` event or a REST change message into an ObservedComment."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.gerrit.events import StreamEvent, well_formed_approvals
from cidash.gerrit.messages import split_header_votes, strip_patchset_header
from cidash.gerrit.wire import from_epoch, loose_int, parse_timestamp


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def account_from_wire(data: Mapping[str, Any] | None) -> AccountRef:
    """Stream AccountAttribute ({name,email,username}) or REST AccountInfo ({_account_id,...})."""
    if not data:
        return AccountRef()
    return AccountRef(
        account_id=loose_int(data.get("_account_id")),
        username=_text(data.get("username")),
        name=_text(data.get("name")) or _text(data.get("display_name")),
        email=_text(data.get("email")),
    )


_ACCOUNT_CACHE_LIMIT = 10_000
_accounts: dict[tuple[Any, ...], AccountRef] = {}


def _stream_account(data: Any) -> AccountRef:
    """:func:`account_from_wire` for the few accounts a stream repeats all day: one AccountRef per
    distinct wire value (built once, then found by its fields)."""
    if not isinstance(data, dict) or not data:
        return AccountRef()
    get = data.get
    account_id = get("_account_id")  # with its type: 1, 1.0 and True are equal keys but read differently
    key = (type(account_id), account_id, get("username"), get("name"), get("display_name"), get("email"))
    try:
        account = _accounts.get(key)
    except TypeError:  # a list or object where a name belongs: not cacheable, still usable
        return account_from_wire(data)
    if account is None:
        if len(_accounts) >= _ACCOUNT_CACHE_LIMIT:
            _accounts.clear()
        account = _accounts[key] = account_from_wire(data)
    return account


def read_approvals(approvals: Any) -> tuple[dict[str, int], frozenset[str]]:
    """label -> value of the well-formed approvals, and the labels this event changed (`oldValue`)."""
    values: dict[str, int] = {}
    changed: list[str] = []
    for label, value, was_changed in well_formed_approvals(approvals):
        values[label] = value
        if was_changed:
            changed.append(label)
    return values, frozenset(changed)


def comment_from_event(event: StreamEvent, server: str, source: Source = Source.STREAM) -> ObservedComment | None:
    """None when the event is not a usable comment-added (the caller decides what that means).

    Reads the event's dict directly (this runs for every comment on the stream): the same
    tolerance as the :class:`StreamEvent` accessors, without going through them field by field.
    """
    raw = event.raw
    if raw.get("type") != "comment-added":
        return None
    change = _dict(raw.get("change"))
    patchset = _dict(raw.get("patchSet"))
    number = loose_int(change.get("number"))
    ps_number = loose_int(patchset.get("number"))
    posted = loose_int(raw.get("eventCreatedOn"))
    project = raw.get("project")
    if not isinstance(project, str):
        project = event.project  # webhook shape, or only inside `change`
    comment = raw.get("comment")
    if number is None or ps_number is None or posted is None or project is None or not isinstance(comment, str):
        return None
    created = loose_int(patchset.get("createdOn"))
    approvals, changed = read_approvals(raw.get("approvals"))
    uploader = patchset.get("uploader")
    return ObservedComment(
        server=server,
        project=project,
        branch=_text(change.get("branch")) or "",
        change_number=number,
        change_id=_text(change.get("id")),
        patchset=ObservedPatchSet(
            number=ps_number,
            created_at=from_epoch(created) if created is not None else None,
            kind=_text(patchset.get("kind")),
            revision=_text(patchset.get("revision")),
            uploader=_stream_account(uploader) if isinstance(uploader, dict) else None,
        ),
        author=_stream_account(raw.get("author")),
        posted_at=from_epoch(posted),
        message=comment,
        source=source,
        approvals=approvals,
        changed_labels=changed,
        change_status=_text(change.get("status")),
        change_url=_text(change.get("url")),
        subject=_text(change.get("subject")),
    )


def patchsets_from_change(change: Mapping[str, Any]) -> dict[int, ObservedPatchSet]:
    """Patch sets known from a REST ChangeInfo's `revisions` (ALL_REVISIONS / CURRENT_REVISION)."""
    found: dict[int, ObservedPatchSet] = {}
    revisions = change.get("revisions")
    if not isinstance(revisions, dict):
        return found
    for sha, revision in revisions.items():
        if not isinstance(revision, dict):
            continue
        number = loose_int(revision.get("_number"))
        if number is None:
            continue
        created = _text(revision.get("created"))
        uploader = revision.get("uploader")
        found[number] = ObservedPatchSet(
            number=number,
            created_at=parse_timestamp(created) if created else None,
            kind=_text(revision.get("kind")),
            revision=sha,
            uploader=account_from_wire(uploader) if isinstance(uploader, dict) else None,
        )
    return found


# "Removed Verified-1 by <GERRIT_ACCOUNT_1000008>": Gerrit 3.x's message when someone deletes a vote
_REMOVED_VOTE_RE = re.compile(r"^Removed (?P<label>[A-Za-z][\w-]*)[+-]\d+ by <GERRIT_ACCOUNT_(?P<id>\d+)>", re.M)


class _HeldVotes:
    """The votes each account holds on each patch set, replayed from a change's messages in order.

    Gerrit's `Patch Set N:` header names only the votes a review CHANGED: a CI that fails again
    with Verified-1 already in place gets a header without a vote. The stream still says -1 (its
    approvals are the author's current votes), so a REST copy must know the held vote too.
    """

    def __init__(self) -> None:
        self._votes: dict[tuple[object, int], dict[str, int]] = {}

    def after(self, author: AccountRef, patchset: int, text: str) -> tuple[dict[str, int], frozenset[str]]:
        """(the author's votes once this message is applied, the labels it changed)."""
        votes = self._votes.setdefault((author.account_id or author.key, patchset), {})
        _, header = strip_patchset_header(text)
        changed = split_header_votes(header) if header is not None else {}
        votes.update(changed)
        for removal in _REMOVED_VOTE_RE.finditer(text):
            self._votes.get((int(removal["id"]), patchset), {}).pop(removal["label"], None)
        return dict(votes), frozenset(changed)


def comments_from_change(change: Mapping[str, Any], server: str) -> Iterator[ObservedComment]:
    """Every authored message of a REST ChangeInfo fetched with o=MESSAGES (system messages skipped)."""
    number = loose_int(change.get("_number"))
    project = _text(change.get("project"))
    messages = change.get("messages")
    if number is None or project is None or not isinstance(messages, list):
        return
    patchsets = patchsets_from_change(change)
    held = _HeldVotes()
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("author"), dict):
            continue
        ps_number = loose_int(message.get("_revision_number"))
        date = _text(message.get("date"))
        text = message.get("message")
        if ps_number is None or date is None or not isinstance(text, str):
            continue
        author = account_from_wire(message["author"])
        approvals, changed = held.after(author, ps_number, text)
        yield ObservedComment(
            server=server,
            project=project,
            branch=_text(change.get("branch")) or "",
            change_number=number,
            change_id=_text(change.get("change_id")),
            patchset=patchsets.get(ps_number) or ObservedPatchSet(number=ps_number),
            author=author,
            posted_at=parse_timestamp(date),
            message=text,
            source=Source.REST,
            approvals=approvals,
            changed_labels=changed,
            message_id=_text(message.get("id")),
            tag=_text(message.get("tag")),
            change_status=_text(change.get("status")),
            subject=_text(change.get("subject")),
        )
