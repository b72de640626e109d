"""Humans' recheck comments as the parser reads them (:mod:`cidash.parsing.rechecks`): the forms
seen in the wild, which CI each names, and a bad ``recheck_patterns`` refused at load."""

from __future__ import annotations

import pytest

from cidash.config import CISystemConfig, load_settings
from cidash.errors import ConfigError
from cidash.parsing import CommentKind, CommentParser
from cidash.parsing.rechecks import PLAIN, Recheck, RecheckReader, names_of
from tests.support.store_fixtures import HUMAN, THIRD_PARTY, observed

CONFIGS = [
    CISystemConfig(account="zuul", reference=True),
    CISystemConfig(account="acme-ci"),
    CISystemConfig(account="beta_ci"),
    CISystemConfig(account="vmware-nsx", recheck_patterns=[r"(?im)^\s*vmware-recheck\b"]),
    # the Hyper-V CI's report asked for "check hyper-v" (tests/parsing/test_parsing.py has the report)
    CISystemConfig(account="hyperv-ci", recheck_patterns=[r"(?im)^\s*check hyper-v\b"]),
]
FAILED = "Build failed.\n\n- tempest-full https://logs.example/1 : FAILURE in 1h 00m 00s"


def _read(text: str) -> Recheck | None:
    return RecheckReader(CONFIGS).read(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recheck", PLAIN),
        ("Recheck", PLAIN),
        ("  recheck\n", PLAIN),
        # OpenStack's recheck with a reason (the elastic-recheck era and after)
        ("recheck bug 1234567", PLAIN),
        ("recheck no bug", PLAIN),
        ("recheck - tempest timed out on a slow node", PLAIN),
        ("recheck\n\nThe failure in test_volume_boot looks unrelated.", PLAIN),
        # third-party CIs' footers ask for these
        ("recheck-acme", Recheck("acme-ci")),
        ("recheck-acme-ci", Recheck("acme-ci")),
        ("RECHECK-beta", Recheck("beta_ci")),
        ("acme-ci: recheck", Recheck("acme-ci")),
        ("beta: recheck please", Recheck("beta_ci")),
        ("recheck acme", Recheck("acme-ci")),
        ("recheck acme-ci, the lab was down", Recheck("acme-ci")),
        # a CI-specific form naming a CI cidash does not know yet: kept as written
        ("recheck-Cinder-NetApp", Recheck("cinder-netapp")),
        # the CI's own recheck_patterns
        ("vmware-recheck", Recheck("vmware-nsx")),
        ("check hyper-v", Recheck("hyperv-ci")),
        ("recheck hyperv", Recheck("hyperv-ci")),
        # not rechecks
        ("rechecking now, the node died", None),
        ("I think this needs a recheck", None),
        ("Looks good to me", None),
        ("", None),
    ],
)
def test_recheck_forms(text: str, expected: Recheck | None) -> None:
    assert _read(text) == expected


def test_names_a_ci_is_called_by() -> None:
    assert names_of("Acme-CI") == {"acme-ci", "acme"}
    assert names_of("zuul") == {"zuul"}
    assert names_of("ci") == {"ci"}


def test_parser_reads_humans_rechecks_only() -> None:
    parser = CommentParser(CONFIGS)
    human = parser.parse(observed("Patch Set 3: Code-Review+1\n\nrecheck-acme", author=HUMAN))
    assert (human.kind, human.is_ci, human.recheck) == (CommentKind.OTHER, False, Recheck("acme-ci"))
    assert "recheck" in human.why
    plain = parser.parse(observed("Patch Set 3:\n\nrecheck", author=HUMAN))
    assert plain.recheck == PLAIN
    # a CI's report footer telling how to recheck it is the CI's comment, not a recheck
    footer = parser.parse(observed(f"{FAILED}\n\nrecheck-acme", author=THIRD_PARTY))
    assert (footer.kind, footer.recheck) == (CommentKind.RESULT, None)
    assert parser.parse(observed("Patch Set 3:\n\nNice work", author=HUMAN)).recheck is None


def test_group_members_are_known_names() -> None:
    parser = CommentParser([])
    assert parser.parse(observed("recheck ovh", author=HUMAN)).recheck == PLAIN  # a reason until it is a CI
    parser.set_group_members("review", ["ovh-ci"])
    assert parser.parse(observed("recheck ovh", author=HUMAN)).recheck == Recheck("ovh-ci")


def test_a_bad_recheck_pattern_is_a_clear_config_error(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "cidash.toml"
    path.write_text('[[ci]]\naccount = "acme-ci"\nrecheck_patterns = ["recheck-(acme"]\n')
    with pytest.raises(ConfigError, match=r"ci\.0\.recheck_patterns.*'recheck-\(acme' is not a valid regex"):
        load_settings(path)
