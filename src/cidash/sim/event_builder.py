"""The world's state changes written as Gerrit stream events (3.x, or 2.x with `legacy`).

The world decides what happens; this module only says it as Gerrit would. Attributes are
cached on the change and patch set (and approvals by value), so events share nested dicts:
treat them as read-only. `eventCreatedOn` jitter (+1 s) has its own random generator, so the
world evolves identically whether or not events are built.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from cidash.gerrit.events import (
    NULL_REV,
    StreamEvent,
    approval_attr,
    change_abandoned,
    change_attr,
    change_merged,
    change_ref,
    comment_added,
    patchset_attr,
    patchset_created,
    ref_updated,
)
from cidash.sim.personas import Account
from cidash.sim.state import LABELS, Change, Message, PatchSet


class EventBuilder:
    """Stream events of one world; `change_url` is the world's (its base URL may change)."""

    def __init__(self, seed: int, *, legacy: bool, change_url: Callable[[Change], str]) -> None:
        self.legacy = legacy
        self._change_url = change_url
        self._rng = random.Random(seed * 7919 + 17)
        self._approval_cache: dict[tuple[str, int, int | None], dict[str, Any]] = {}
        self._approvals_cache: dict[tuple[int, ...], list[dict[str, Any]]] = {}

    # -- the events ------------------------------------------------------------------------------
    def comment(
        self,
        change: Change,
        ps: PatchSet,
        author: Account,
        message: Message,
        body: str,
        changed: dict[str, int],
        old_meta: str,
        given: tuple[str, ...] = (),
    ) -> list[StreamEvent]:
        """comment-added and the meta ref's ref-updated (`body`: the 2.x comment, without the header)."""
        created = self._event_time(message.date)
        event = comment_added(
            author=author.attr,
            approvals=self._approvals(ps, author, changed, given),
            comment=body if self.legacy else message.text,
            patchset=self.patchset_attr(change, ps),
            change=self.change_attr(change),
            event_created_on=created,
            legacy=self.legacy,
        )
        return [event, self._meta_event(change, author, old_meta, created)]

    def upload(self, change: Change, ps: PatchSet, uploader: Account, old_meta: str) -> list[StreamEvent]:
        """patchset-created, the patch set's ref and the meta ref."""
        created = self._event_time(ps.created)
        return [
            patchset_created(
                uploader=uploader.attr,
                patchset=self.patchset_attr(change, ps),
                change=self.change_attr(change),
                event_created_on=created,
                legacy=self.legacy,
            ),
            ref_updated(
                submitter=uploader.attr,
                old_rev=NULL_REV,
                new_rev=ps.revision,
                ref_name=change_ref(change.number, ps.number),
                project=change.project,
                event_created_on=created,
            ),
            self._meta_event(change, uploader, old_meta, created),
        ]

    def abandon(self, change: Change, ps: PatchSet, reason: str | None, stamp: int, old_meta: str) -> list[StreamEvent]:
        created = self._event_time(stamp)
        return [
            change_abandoned(
                abandoner=change.owner.attr,
                reason=reason,
                patchset=self.patchset_attr(change, ps),
                change=self.change_attr(change),
                event_created_on=created,
                legacy=self.legacy,
            ),
            self._meta_event(change, change.owner, old_meta, created),
        ]

    def merge(
        self, change: Change, ps: PatchSet, submitter: Account, tips: tuple[str, str], stamp: int, old_meta: str
    ) -> list[StreamEvent]:
        """change-merged, the meta ref and the branch moving from `tips[0]` to `tips[1]`."""
        old_tip, new_tip = tips
        created = self._event_time(stamp)
        return [
            change_merged(
                submitter=submitter.attr,
                new_rev=new_tip,
                patchset=self.patchset_attr(change, ps),
                change=self.change_attr(change),
                event_created_on=created,
                legacy=self.legacy,
            ),
            self._meta_event(change, submitter, old_meta, created),
            ref_updated(
                submitter=submitter.attr,
                old_rev=old_tip,
                new_rev=new_tip,
                ref_name=f"refs/heads/{change.branch}",
                project=change.project,
                event_created_on=created,
            ),
        ]

    # -- attributes ------------------------------------------------------------------------------
    def change_attr(self, change: Change) -> dict[str, Any]:
        attr = change.attr
        if attr is None:
            attr = change.attr = change_attr(
                project=change.project,
                branch=change.branch,
                change_id=change.change_id,
                number=change.number,
                subject=change.subject,
                owner=change.owner.attr,
                url=self._change_url(change),
                commit_message=change.commit_message,
                created_on=change.created,
                status=change.status,
                legacy=self.legacy,
            )
        return attr

    def patchset_attr(self, change: Change, ps: PatchSet) -> dict[str, Any]:
        attr = ps.attr
        if attr is None:
            attr = ps.attr = patchset_attr(
                change=change.number,
                number=ps.number,
                revision=ps.revision,
                parents=[ps.parent],
                uploader=ps.uploader.attr,
                created_on=ps.created,
                author=change.owner.attr,
                kind=ps.kind,
                size_insertions=ps.insertions,
                size_deletions=-ps.deletions if self.legacy else ps.deletions,
                legacy=self.legacy,
            )
        return attr

    def _approval(self, label: str, value: int, old: int | None) -> dict[str, Any]:
        key = (label, value, old)
        cached = self._approval_cache.get(key)
        if cached is None:
            cached = self._approval_cache[key] = approval_attr(label, value, old, legacy=self.legacy)
        return cached

    def _approvals(
        self, ps: PatchSet, account: Account, changed: dict[str, int], given: tuple[str, ...]
    ) -> list[dict[str, Any]] | None:
        """`approvals` of a comment-added.

        Gerrit 2.12+: every label with the author's current value, `oldValue` on the changed ones.
        Gerrit 2.x: only the labels the review set (`given`), changed or not, without `oldValue`.
        """
        votes = ps.votes.get(account.account_id) or {}
        approval = self._approval
        if self.legacy:
            found = [approval(label, votes[label][0] if label in votes else 0, None) for label in given]
            return found or None
        verified, review, workflow = votes.get("Verified"), votes.get("Code-Review"), votes.get("Workflow")
        key = (
            verified[0] if verified else 0,
            review[0] if review else 0,
            workflow[0] if workflow else 0,
            changed.get("Verified", 9),
            changed.get("Code-Review", 9),
            changed.get("Workflow", 9),
        )
        cached = self._approvals_cache.get(key)
        if cached is None:
            cached = [approval(label, key[i], changed.get(label)) for i, label in enumerate(LABELS)]
            self._approvals_cache[key] = cached
        return cached

    def _event_time(self, stamp: int) -> int:
        return stamp + 1 if self._rng.random() < 0.2 else stamp

    def _meta_event(self, change: Change, who: Account, old_meta: str, created: int) -> StreamEvent:
        return ref_updated(
            submitter=who.attr,
            old_rev=old_meta,
            new_rev=change.meta_rev,
            ref_name=change_ref(change.number, "meta"),
            project=change.project,
            event_created_on=created,
        )
