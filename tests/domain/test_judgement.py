"""The one relative judgement (:mod:`cidash.domain.judgement`), on patch sets built by hand: whose
failure a failed run is, from every CI's newest result on its patch set."""

from __future__ import annotations

from cidash.domain.judgement import judge_on_patchset

REFERENCE, ACME, BETA, GAMMA, DELTA = 1, 2, 3, 4, 5
FAILURE = "FAILURE"
SUCCESS = "SUCCESS"


def verdict(ci: int, results: list[tuple[int, str]]) -> str:
    return judge_on_patchset("failure", ci, results, {REFERENCE})[0]


def test_a_change_broken_for_every_ci_is_nobodys_failure() -> None:
    results = [(REFERENCE, FAILURE), (ACME, FAILURE), (BETA, FAILURE), (GAMMA, FAILURE)]
    assert {ci: verdict(ci, results) for ci in (REFERENCE, ACME, BETA, GAMMA)} == dict.fromkeys(
        (REFERENCE, ACME, BETA, GAMMA), "inhibited"
    )


def test_a_ci_failing_alone_fails() -> None:
    results = [(REFERENCE, SUCCESS), (ACME, FAILURE), (BETA, SUCCESS)]
    assert verdict(ACME, results) == "fail"
    assert judge_on_patchset("success", BETA, results, {REFERENCE}) == ("pass", SUCCESS)


def test_without_a_reference_result_most_others_decide() -> None:
    assert verdict(ACME, [(ACME, FAILURE), (BETA, SUCCESS), (GAMMA, SUCCESS), (DELTA, FAILURE)]) == "fail"
    assert verdict(ACME, [(ACME, FAILURE), (BETA, FAILURE), (GAMMA, SUCCESS)]) == "inhibited"  # a tie is not most
    assert verdict(ACME, [(ACME, FAILURE)]) == "pending"


def test_the_reference_is_judged_by_the_others_consensus() -> None:
    assert verdict(REFERENCE, [(REFERENCE, FAILURE), (ACME, SUCCESS), (BETA, SUCCESS)]) == "fail"
    assert verdict(REFERENCE, [(REFERENCE, FAILURE), (ACME, FAILURE), (BETA, SUCCESS)]) == "inhibited"


def test_each_cis_newest_result_is_the_one_judged_against() -> None:
    # the reference failed, then passed on a recheck; beta passed, then failed
    results = [(REFERENCE, FAILURE), (BETA, SUCCESS), (ACME, FAILURE), (REFERENCE, SUCCESS), (BETA, FAILURE)]
    assert judge_on_patchset("failure", ACME, results, {REFERENCE}) == ("inhibited", SUCCESS)
    assert verdict(ACME, results[:4]) == "fail"
