"""The stream-events event model: what `gerrit stream-events` writes, one JSON object per line.

A :class:`StreamEvent` keeps the object exactly as received (key order, unknown keys, string
or int numbers), so a real line re-serialises byte for byte, and offers tolerant typed
accessors. The builder functions produce new events in the key order Gerrit's Gson uses
(subclass fields first, then patchSet, change, project, refName, changeKey, type,
eventCreatedOn); the simulator writes only through them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cidash.gerrit.wire import gson_dumps, loads, loose_int

MAX_LINE_BYTES = 1 << 20  # a longer line is refused: no real event comes near a megabyte
NULL_REV = "0" * 40

# event type -> the key naming the account that caused it (Zuul's table, plus core names)
ACCOUNT_FIELD = {
    "patchset-created": "uploader",
    "comment-added": "author",
    "change-merged": "submitter",
    "merge-failed": "submitter",
    "ref-updated": "submitter",
    "change-abandoned": "abandoner",
    "change-restored": "restorer",
    "reviewer-added": "reviewer",
    "reviewer-deleted": "remover",
    "vote-deleted": "remover",
    "topic-changed": "changer",
    "wip-state-changed": "changer",
    "private-state-changed": "changer",
    "hashtags-changed": "editor",
    "change-deleted": "deleter",
}
_LEGACY_LABELS = {"Verified": "VRIF", "Code-Review": "CRVW", "Workflow": "APRV"}
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


class EventParseError(ValueError):
    """A line that cannot be used as an event; `reason` is short and stable (for counting)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def well_formed_approvals(approvals: Any) -> Iterator[tuple[str, int, bool]]:
    """(label, value, changed_by_this_event) for each well-formed entry of an `approvals` list
    (label from `type`, or `description` on old servers; the value a number or a numeric string)."""
    if not isinstance(approvals, list):
        return
    for approval in approvals:
        if not isinstance(approval, dict):
            continue
        label = approval.get("type") or approval.get("description")
        value = loose_int(approval.get("value"))
        if isinstance(label, str) and value is not None:
            yield label, value, "oldValue" in approval


class StreamEvent:
    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    # -- (de)serialisation ---------------------------------------------------------------
    @classmethod
    def from_json(cls, data: bytes | str, *, lenient: bool = False) -> StreamEvent:
        """Parse one event. `lenient` also accepts hand-edited JSON with trailing commas."""
        size = len(data)
        if size > MAX_LINE_BYTES:
            raise EventParseError("too-long", f"{size} bytes")
        try:
            value = loads(data)
        except ValueError as exc:
            if not lenient:
                raise EventParseError("not-json", str(exc)) from None
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            try:
                value = loads(_TRAILING_COMMA.sub(r"\1", text))
            except ValueError:
                raise EventParseError("not-json", str(exc)) from None
        if not isinstance(value, dict):
            raise EventParseError("not-an-object", type(value).__name__)
        event_type = value.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise EventParseError("no-type")
        return cls(value)

    def to_json(self) -> str:
        return gson_dumps(self.raw)

    def to_line(self) -> bytes:
        return (gson_dumps(self.raw) + "\n").encode("utf-8")

    def __repr__(self) -> str:
        return f"StreamEvent({self.type!r}, change={self.change_number}, ps={self.patchset_number})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamEvent) and other.raw == self.raw

    __hash__ = None  # type: ignore[assignment]

    # -- tolerant accessors -------------------------------------------------------------
    @property
    def type(self) -> str:
        return str(self.raw["type"])

    @property
    def event_created_on(self) -> int | None:
        return loose_int(self.raw.get("eventCreatedOn"))

    def _dict(self, key: str) -> Mapping[str, Any]:
        value = self.raw.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def change(self) -> Mapping[str, Any]:
        return self._dict("change")

    @property
    def patchset(self) -> Mapping[str, Any]:
        return self._dict("patchSet")

    @property
    def project(self) -> str | None:
        """Top-level `project` is a string on SSH and `{"name": ...}` from the webhooks plugin."""
        value = self.raw.get("project")
        if isinstance(value, dict):
            value = value.get("name")
        if isinstance(value, str):
            return value
        project = self.change.get("project")
        if isinstance(project, dict):
            project = project.get("name")
        if isinstance(project, str):
            return project
        ref_update = self._dict("refUpdate")
        name = ref_update.get("project")
        return name if isinstance(name, str) else None

    @property
    def change_number(self) -> int | None:
        return loose_int(self.change.get("number"))

    @property
    def patchset_number(self) -> int | None:
        return loose_int(self.patchset.get("number"))

    @property
    def account(self) -> Mapping[str, Any]:
        """The account that caused the event (author, uploader, submitter, ...)."""
        field = ACCOUNT_FIELD.get(self.type)
        value = self.raw.get(field) if field else None
        return value if isinstance(value, dict) else {}

    @property
    def comment(self) -> str | None:
        value = self.raw.get("comment")
        return value if isinstance(value, str) else None

    def approvals(self) -> Iterator[tuple[str, int, bool]]:
        """(label, value, changed_by_this_event) for each well-formed approval."""
        return well_formed_approvals(self.raw.get("approvals"))

    @property
    def ref_name(self) -> str | None:
        ref_update = self._dict("refUpdate")
        value = ref_update.get("refName") if ref_update else self.raw.get("refName")
        return value if isinstance(value, str) else None

    @property
    def is_meta_ref_update(self) -> bool:
        ref = self.ref_name
        return (
            self.type == "ref-updated"
            and ref is not None
            and ref.startswith("refs/changes/")
            and (ref.endswith("/meta"))
        )


# -- builders: attributes in Java declaration order, None omitted (Gson) -----------------


def _compact(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in pairs if value is not None}


def _number(value: int, legacy: bool) -> int | str:
    return str(value) if legacy else value


def change_ref(change: int, patchset: int | str) -> str:
    """`refs/changes/NN/N/P` where NN is the change number's last two digits, zero-padded."""
    return f"refs/changes/{change % 100:02d}/{change}/{patchset}"


def account_attr(name: str | None = None, email: str | None = None, username: str | None = None) -> dict[str, Any]:
    return _compact((("name", name), ("email", email), ("username", username)))


def approval_attr(label: str, value: int, old_value: int | None = None, *, legacy: bool = False) -> dict[str, Any]:
    kind = _LEGACY_LABELS.get(label, label) if legacy else label
    return _compact(
        (
            ("type", kind),
            ("description", label),
            ("value", str(value)),
            ("oldValue", None if old_value is None else str(old_value)),
        )
    )


def change_attr(
    *,
    project: str,
    branch: str,
    change_id: str,
    number: int,
    subject: str,
    owner: dict[str, Any],
    url: str,
    commit_message: str,
    created_on: int,
    status: str = "NEW",
    topic: str | None = None,
    wip: bool | None = None,
    legacy: bool = False,
) -> dict[str, Any]:
    return _compact(
        (
            ("project", project),
            ("branch", branch),
            ("topic", topic),
            ("id", change_id),
            ("number", _number(number, legacy)),
            ("subject", subject),
            ("owner", owner),
            ("url", url),
            ("commitMessage", commit_message),
            ("createdOn", created_on),
            ("status", status),
            ("wip", True if wip else None),
        )
    )


def patchset_attr(
    *,
    change: int,
    number: int,
    revision: str,
    parents: Sequence[str],
    uploader: dict[str, Any],
    created_on: int,
    author: dict[str, Any],
    kind: str = "REWORK",
    size_insertions: int = 0,
    size_deletions: int = 0,
    legacy: bool = False,
) -> dict[str, Any]:
    return _compact(
        (
            ("number", _number(number, legacy)),
            ("revision", revision),
            ("parents", list(parents)),
            ("ref", change_ref(change, number)),
            ("uploader", uploader),
            ("createdOn", created_on),
            ("author", author),
            ("isDraft", False if legacy else None),
            ("kind", kind),
            ("sizeInsertions", size_insertions),
            ("sizeDeletions", size_deletions),
        )
    )


def _change_event(
    own: Sequence[tuple[str, Any]],
    event_type: str,
    event_created_on: int,
    change: dict[str, Any],
    patchset: dict[str, Any] | None,
    *,
    legacy: bool = False,
) -> StreamEvent:
    if legacy:  # Gerrit 2.x: `type` first, no project/refName/changeKey at the top level
        pairs = [("type", event_type), *own, ("patchSet", patchset), ("change", change)]
        return StreamEvent(_compact([*pairs, ("eventCreatedOn", event_created_on)]))
    tail = (
        ("patchSet", patchset),
        ("change", change),
        ("project", change["project"]),
        ("refName", f"refs/heads/{change['branch']}"),
        ("changeKey", {"id": change["id"]}),
        ("type", event_type),
        ("eventCreatedOn", event_created_on),
    )
    return StreamEvent(_compact([*own, *tail]))


def comment_added(
    *,
    author: dict[str, Any],
    approvals: Sequence[dict[str, Any]] | None,
    comment: str,
    patchset: dict[str, Any],
    change: dict[str, Any],
    event_created_on: int,
    legacy: bool = False,
) -> StreamEvent:
    own = (("author", author), ("approvals", list(approvals) if approvals else None), ("comment", comment))
    return _change_event(own, "comment-added", event_created_on, change, patchset, legacy=legacy)


def patchset_created(
    *,
    uploader: dict[str, Any],
    patchset: dict[str, Any],
    change: dict[str, Any],
    event_created_on: int,
    legacy: bool = False,
) -> StreamEvent:
    return _change_event(
        (("uploader", uploader),), "patchset-created", event_created_on, change, patchset, legacy=legacy
    )


def change_merged(
    *,
    submitter: dict[str, Any],
    new_rev: str,
    patchset: dict[str, Any],
    change: dict[str, Any],
    event_created_on: int,
    legacy: bool = False,
) -> StreamEvent:
    own = (("submitter", submitter), ("newRev", new_rev))
    return _change_event(own, "change-merged", event_created_on, change, patchset, legacy=legacy)


def change_abandoned(
    *,
    abandoner: dict[str, Any],
    reason: str | None,
    patchset: dict[str, Any],
    change: dict[str, Any],
    event_created_on: int,
    legacy: bool = False,
) -> StreamEvent:
    own = (("abandoner", abandoner), ("reason", reason))
    return _change_event(own, "change-abandoned", event_created_on, change, patchset, legacy=legacy)


def ref_updated(
    *,
    submitter: dict[str, Any] | None,
    old_rev: str,
    new_rev: str,
    ref_name: str,
    project: str,
    event_created_on: int,
) -> StreamEvent:
    update = {"oldRev": old_rev, "newRev": new_rev, "refName": ref_name, "project": project}
    return StreamEvent(
        _compact(
            (
                ("submitter", submitter),
                ("refUpdate", update),
                ("type", "ref-updated"),
                ("eventCreatedOn", event_created_on),
            )
        )
    )


def dropped_output(event_created_on: int) -> StreamEvent:
    return StreamEvent({"type": "dropped-output", "eventCreatedOn": event_created_on})
