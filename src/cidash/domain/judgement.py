"""Relative judgement: whether a CI's failed run counts against the CI, or was the change's own.

A failure counts against a CI only when the reference CI passed the same patch set, or, with no
reference result, when most of the other CIs that reported on it passed. When they failed too (or
most others failed although the reference passed, on a recheck) the change was broken: the failure
is *inhibited* (shown, never counted). A failure nobody else has judged yet is *pending* until
someone does. The reference CI is judged against the other CIs' consensus.

The incidents (:mod:`cidash.alerts.model`) and the recheck burden (:mod:`cidash.store.rechecks`)
both judge this way, over each CI's newest result on the patch set, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Literal

from cidash.domain.results import FAILED_CLASSES, ResultClass, result_class

RunVerdict = Literal["pass", "fail", "inhibited", "pending", "other"]
# other CIs that must have failed a patch set (and outnumber its passes) to outvote a reference
# success: a reference that passed on a recheck does not make a broken change fine
CONSENSUS_MIN = 1


def judge(cls: ResultClass, *, reference: str | None, others: Iterable[ResultClass]) -> RunVerdict:
    """The verdict on one run of class `cls`: `reference` is the reference CI's newest result on the
    same patch set (None when it has none, or when this run is the reference CI's own), `others`
    the newest result class of every other CI there."""
    if cls == "success":
        return "pass"
    if cls not in FAILED_CLASSES:
        return "other"
    passed = failed = 0
    for other in others:
        passed += other == "success"
        failed += other in FAILED_CLASSES
    if reference is not None:
        ref_cls = result_class(reference)
        if ref_cls in FAILED_CLASSES:
            return "inhibited"
        if ref_cls == "success":
            # a reference that passed on a recheck while most others failed: the change is suspect
            return "inhibited" if failed >= CONSENSUS_MIN and failed > passed else "fail"
    if passed + failed == 0:
        return "pending"
    return "fail" if passed > failed else "inhibited"


def judge_on_patchset(
    cls: ResultClass, ci_id: int, results: Iterable[tuple[int, str]], references: Collection[int]
) -> tuple[RunVerdict, str | None]:
    """The verdict on a run of class `cls` by CI `ci_id`, from every CI's results on its patch set
    (``(ci id, result)``, oldest first: the last one of each CI is its newest), with the reference
    CI's newest result there (`references`: the reference CIs' ids; the reference CI itself is
    judged against the others)."""
    newest: dict[int, str] = {}
    reference = None
    for other_ci, result in results:
        if other_ci in references:
            reference = result
        elif other_ci != ci_id:
            newest[other_ci] = result
    verdict = judge(
        cls,
        reference=None if ci_id in references else reference,
        others=[result_class(result) for result in newest.values()],
    )
    return verdict, reference
