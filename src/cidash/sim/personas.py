"""Who lives in the simulated Gerrit: projects, humans, the reference Zuul and ~40 third-party CIs.

The third-party roster is a fixed table (stable names across seeds, so a demo or a test can
point at "the broken one"); only account ids, human names and outage windows depend on the seed.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Any


class Style(enum.StrEnum):
    """How a CI writes its result comment."""

    ZUUL3 = "zuul3"  # Build succeeded. / Build failed. + `- job url : RESULT in 3m 02s`
    ZUUL2 = "zuul2"  # old Zuul v2 / Jenkins era: long failure header, same job lines
    JENKINS = "jenkins"  # gerrit-trigger: `Build Successful \n\n<url> : SUCCESS`
    GERRITFORGE = "gerritforge"  # `✅ job : SUCCESS\n    (url)`
    # the wider world's third-party CIs (see cidash.parsing): Zuul-like with `* job url : success
    # in 42 mins` lines and recheck/contact lines after them; one line with a result word and a
    # log URL; one line of its own next to the Verified vote, which alone says how it went
    BULLETS = "bullets"
    ONELINE = "oneline"
    VOTEONLY = "voteonly"


ZUUL_STYLES = frozenset({Style.ZUUL3, Style.ZUUL2})
ZUUL_LIKE_STYLES = frozenset({Style.ZUUL3, Style.ZUUL2, Style.BULLETS})  # Zuul's job lines, durations, hosts
ONE_JOB_STYLES = frozenset({Style.ONELINE, Style.VOTEONLY})  # one log URL, no job lines
ZUUL_RUNNERS = ZUUL_LIKE_STYLES | ONE_JOB_STYLES  # Zuul underneath: its job results


class Persona(enum.StrEnum):
    HEALTHY = "healthy"
    FLAKY = "flaky"  # random failures, usually green again on recheck
    BROKEN = "broken"  # fails even when the reference CI passes
    SLOW = "slow"  # answers hours after the patch set
    SILENT = "silent"  # stops commenting at `silent_at`
    OUTAGE = "outage"  # periods of infra errors or silence


# probability that a run fails although the change is fine
FLAKE_RATE = {
    Persona.HEALTHY: 0.03,
    Persona.SLOW: 0.04,
    Persona.SILENT: 0.04,
    Persona.OUTAGE: 0.04,
    Persona.FLAKY: 0.30,
    Persona.BROKEN: 0.82,
}
REFERENCE_FLAKE_RATE = 0.06


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    duration_s: int  # typical run time
    voting: bool = True


@dataclass(slots=True, eq=False)
class Account:
    account_id: int
    username: str
    name: str
    email: str | None
    attr: dict[str, Any] = field(default_factory=dict)  # stream AccountAttribute
    info: dict[str, Any] = field(default_factory=dict)  # REST AccountInfo
    info_detailed: dict[str, Any] = field(default_factory=dict)  # REST AccountInfo + DETAILED_ACCOUNTS

    def __post_init__(self) -> None:
        self.attr = {"name": self.name, **({"email": self.email} if self.email else {}), "username": self.username}
        self.info = {"_account_id": self.account_id}
        detailed: dict[str, Any] = {"_account_id": self.account_id, "name": self.name}
        if self.email:
            detailed["email"] = self.email
        detailed["username"] = self.username
        self.info_detailed = detailed


@dataclass(slots=True, eq=False)
class CI:
    """A CI system voting (or commenting) on changes."""

    index: int
    account: Account
    style: Style
    persona: Persona
    voting: bool  # casts Verified; non-voting CIs comment without a vote
    projects: tuple[str, ...]
    jobs: tuple[JobSpec, ...]
    host: str
    start_marker: bool  # posts "Starting check jobs." / "Build Started <url>" first
    pipeline_header: bool = False  # Zuul header names the pipeline: "Build succeeded (check pipeline)."
    logs_urls: bool = False  # Zuul job URLs point at a log server instead of the build page
    hostile: bool = False  # error details carrying markup
    reference: bool = False  # the project's own Zuul
    tag: str | None = None
    silent_at: float | None = None  # epoch seconds; SILENT persona only
    queue_s: tuple[float, float] = (120.0, 2400.0)  # delay before the run starts
    build_no: int = 0  # Jenkins build counter
    skip_share: float = 0.0  # share of its projects' patch sets it never tests (filters, capacity)

    @property
    def username(self) -> str:
        return self.account.username

    @property
    def voting_jobs(self) -> tuple[JobSpec, ...]:
        return tuple(job for job in self.jobs if job.voting)


# -- projects ---------------------------------------------------------------------------------

_COMMON_JOBS = (
    JobSpec("openstack-tox-pep8", 300),
    JobSpec("openstack-tox-py310", 720),
    JobSpec("openstack-tox-py312", 780),
    JobSpec("openstack-tox-docs", 330),
    JobSpec("build-openstack-releasenotes", 240),
)


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    weight: float
    stable: bool  # has a stable/2025.2 branch that sees backports
    jobs: tuple[JobSpec, ...]
    components: tuple[str, ...]


PROJECTS: tuple[Project, ...] = (
    Project(
        "openstack/nova",
        18,
        True,
        (
            *_COMMON_JOBS,
            JobSpec("nova-tox-functional-py312", 1500),
            JobSpec("tempest-integrated-compute", 5400),
            JobSpec("nova-ceph-multistore", 6300),
            JobSpec("nova-live-migration", 4800),
            JobSpec("nova-next", 6000),
            JobSpec("nova-grenade-multinode", 6600),
            JobSpec("tempest-integrated-compute-enforce-scope-new-defaults", 5700, False),
        ),
        ("compute manager", "libvirt driver", "scheduler", "placement report client", "API", "conductor"),
    ),
    Project(
        "openstack/neutron",
        16,
        True,
        (
            *_COMMON_JOBS,
            JobSpec("neutron-functional-with-uwsgi", 2700),
            JobSpec("neutron-fullstack-with-uwsgi", 3300),
            JobSpec("neutron-ovn-tempest-ovs-release", 5100),
            JobSpec("neutron-ovs-tempest-multinode-full", 6000),
            JobSpec("neutron-ovs-grenade-multinode", 6300),
            JobSpec("neutron-ovn-rally-task", 4200, False),
        ),
        ("OVN driver", "L3 agent", "DHCP agent", "ML2 plugin", "security groups", "port binding"),
    ),
    Project(
        "openstack/cinder",
        12,
        True,
        (
            *_COMMON_JOBS,
            JobSpec("cinder-tempest-plugin-lvm-lio-barbican", 4500),
            JobSpec("cinder-plugin-ceph-tempest", 4800),
            JobSpec("cinder-grenade-mn-sub-volbak", 5700),
            JobSpec("cinder-tempest-plugin-lvm-multiattach", 4200, False),
        ),
        ("volume manager", "backup service", "RBD driver", "LVM driver", "scheduler filters", "quota"),
    ),
    Project(
        "openstack/glance",
        5,
        False,
        (*_COMMON_JOBS, JobSpec("glance-multistore-cinder-import", 3900), JobSpec("tempest-integrated-storage", 4500)),
        ("image import", "store drivers", "metadefs", "cache"),
    ),
    Project(
        "openstack/keystone",
        6,
        False,
        (*_COMMON_JOBS, JobSpec("keystone-dsvm-py3-functional", 3000), JobSpec("keystone-protection-functional", 3600)),
        ("token provider", "LDAP backend", "application credentials", "federation mapping"),
    ),
    Project(
        "openstack/swift",
        5,
        False,
        (
            JobSpec("swift-tox-py312", 900),
            JobSpec("swift-tox-func-py312", 1500),
            JobSpec("swift-probetests-centos-9-stream", 2400),
            JobSpec("swift-tox-func-s3api-ceph-s3tests", 1800, False),
            JobSpec("openstack-tox-pep8", 300),
        ),
        ("object server", "proxy", "replicator", "s3api middleware"),
    ),
    Project(
        "openstack/horizon",
        6,
        False,
        (*_COMMON_JOBS, JobSpec("horizon-nodejs-npm-run-test", 900), JobSpec("horizon-integration-tests", 3000)),
        ("instances panel", "angular workflows", "network topology", "project overview"),
    ),
    Project(
        "openstack/ironic",
        9,
        True,
        (
            *_COMMON_JOBS,
            JobSpec("ironic-tempest-uefi-redfish-vmedia", 5400),
            JobSpec("ironic-tempest-ipa-wholedisk-direct", 4800),
            JobSpec("ironic-grenade", 6000),
            JobSpec("ironic-tempest-ovn-uefi-ipxe", 5100, False),
        ),
        ("conductor", "redfish driver", "deploy steps", "inspection", "API"),
    ),
    Project(
        "openstack/manila",
        7,
        True,
        (
            *_COMMON_JOBS,
            JobSpec("manila-tempest-plugin-lvm", 5400),
            JobSpec("manila-tempest-plugin-cephfs-native", 5700),
            JobSpec("manila-grenade", 6000, False),
        ),
        ("share manager", "CephFS driver", "share networks", "scheduler"),
    ),
    Project(
        "openstack/octavia",
        5,
        False,
        (
            *_COMMON_JOBS,
            JobSpec("octavia-v2-dsvm-scenario", 4800),
            JobSpec("octavia-v2-dsvm-tls-barbican", 4200),
            JobSpec("octavia-v2-act-stdby-dsvm-scenario", 5100, False),
        ),
        ("amphora driver", "health manager", "API", "listener flows"),
    ),
)
PROJECT_BY_NAME = {project.name: project for project in PROJECTS}
STABLE_BRANCH = "stable/2025.2"

# -- the third-party CI roster -------------------------------------------------------------------

_NOVA, _NEUTRON, _CINDER, _GLANCE, _KEYSTONE = (
    "openstack/nova",
    "openstack/neutron",
    "openstack/cinder",
    "openstack/glance",
    "openstack/keystone",
)
_SWIFT, _HORIZON, _IRONIC, _MANILA, _OCTAVIA = (
    "openstack/swift",
    "openstack/horizon",
    "openstack/ironic",
    "openstack/manila",
    "openstack/octavia",
)

_Z3, _Z2, _JK, _GF = Style.ZUUL3, Style.ZUUL2, Style.JENKINS, Style.GERRITFORGE
_BU, _OL, _VO = Style.BULLETS, Style.ONELINE, Style.VOTEONLY
_H, _F, _B, _SL, _SI, _O = (
    Persona.HEALTHY,
    Persona.FLAKY,
    Persona.BROKEN,
    Persona.SLOW,
    Persona.SILENT,
    Persona.OUTAGE,
)

# username, display name, operator domain, style, persona, voting, projects, start marker
_ROSTER: tuple[tuple[str, str, str, Style, Persona, bool, tuple[str, ...], bool], ...] = (
    ("cisco-ci", "Cisco CI", "cisco", _Z3, _H, True, (_NEUTRON,), True),
    ("vmware-nsx-ci", "VMware NSX CI", "vmware", _Z2, _F, True, (_NEUTRON, _NOVA), False),
    ("hyperv-ci", "Microsoft Hyper-V CI", "cloudbasesolutions", _Z2, _H, True, (_NOVA, _NEUTRON, _CINDER), False),
    ("ibm-powerkvm-ci", "IBM PowerKVM CI", "ibm", _JK, _SL, True, (_NOVA,), True),
    ("xenserver-ci", "Citrix XenServer CI", "citrix", _JK, _B, True, (_NOVA,), True),
    ("netapp-ci", "NetApp CI", "netapp", _Z3, _H, True, (_CINDER, _MANILA), True),
    ("dell-emc-ci", "Dell EMC CI", "dell", _JK, _F, True, (_CINDER,), True),
    ("hpe-storage-ci", "HPE Storage CI", "hpe", _Z3, _O, True, (_CINDER,), True),
    ("pure-storage-ci", "Pure Storage CI", "purestorage", _OL, _H, True, (_CINDER,), False),
    ("huawei-ci", "Huawei Storage CI", "huawei", _JK, _SI, True, (_CINDER, _MANILA), True),
    ("mellanox-ci", "Mellanox CI", "mellanox", _Z3, _H, False, (_NEUTRON, _NOVA), True),
    ("big-switch-ci", "Big Switch Networks CI", "bigswitch", _Z2, _B, True, (_NEUTRON,), False),
    ("arista-ci", "Arista CI", "arista", _Z3, _H, True, (_NEUTRON,), True),
    ("brocade-ci", "Brocade CI", "brocade", _JK, _SI, True, (_NEUTRON,), True),
    ("midokura-ci", "Midokura CI", "midokura", _Z2, _F, True, (_NEUTRON,), False),
    ("nec-openflow-ci", "NEC OpenFlow CI", "nec", _Z2, _H, True, (_NEUTRON,), False),
    ("dell-ironic-ci", "Dell Ironic CI", "dell", _Z3, _H, True, (_IRONIC,), True),
    ("hpe-ilo-ci", "HPE iLO CI", "hpe", _Z3, _F, True, (_IRONIC,), True),
    ("fujitsu-ironic-ci", "Fujitsu iRMC CI", "fujitsu", _Z3, _O, True, (_IRONIC,), False),
    ("lenovo-xclarity-ci", "Lenovo XClarity CI", "lenovo", _GF, _H, True, (_IRONIC,), False),
    ("ceph-ci", "Ceph CI", "ceph", _Z3, _H, True, (_NOVA, _CINDER, _GLANCE, _MANILA), True),
    ("quobyte-ci", "Quobyte CI", "quobyte", _Z2, _SL, True, (_CINDER, _NOVA), False),
    ("zadara-ci", "Zadara VPSA CI", "zadara", _JK, _H, True, (_CINDER,), True),
    ("infinidat-ci", "Infinidat CI", "infinidat", _BU, _H, True, (_CINDER,), True),
    ("datera-ci", "Datera CI", "datera", _Z3, _B, True, (_CINDER,), True),
    ("kaminario-ci", "Kaminario K2 CI", "kaminario", _JK, _F, True, (_CINDER,), True),
    ("nexenta-ci", "Nexenta CI", "nexenta", _Z2, _O, True, (_CINDER, _MANILA), False),
    ("swiftstack-ci", "SwiftStack CI", "swiftstack", _GF, _H, False, (_SWIFT,), False),
    ("radware-lbaas-ci", "Radware LBaaS CI", "radware", _OL, _H, False, (_OCTAVIA,), True),
    ("a10-networks-ci", "A10 Networks CI", "a10networks", _JK, _F, False, (_OCTAVIA, _NEUTRON), True),
    ("f5-networks-ci", "F5 Networks CI", "f5", _Z3, _SL, False, (_OCTAVIA, _NEUTRON), True),
    ("vmware-ci", "VMware Minesweeper CI", "vmware", _Z3, _H, True, (_NOVA, _CINDER, _GLANCE), True),
    ("powervm-ci", "IBM PowerVM CI", "ibm", _VO, _H, True, (_NOVA,), True),
    ("virtuozzo-ci", "Virtuozzo CI", "virtuozzo", _JK, _B, False, (_NOVA,), True),
    ("intel-nfv-ci", "Intel NFV CI", "intel", _GF, _F, True, (_NOVA, _NEUTRON), False),
    ("sap-ci", "SAP CI", "sap", _VO, _H, True, (_KEYSTONE, _HORIZON), False),
    ("cloudbase-ci", "Cloudbase Windows CI", "cloudbasesolutions", _Z3, _H, True, (_NOVA, _HORIZON), True),
    ("gluster-ci", "GlusterFS CI", "gluster", _BU, _H, True, (_MANILA, _CINDER), False),
    ("nvidia-ci", "NVIDIA CI", "nvidia", _GF, _H, True, (_NOVA, _NEUTRON), False),
    ("ovh-ci", "OVHcloud CI", "ovh", _JK, _H, True, (_SWIFT, _GLANCE, _KEYSTONE), True),
)
_LOG_SERVER_STYLES = frozenset({Style.ZUUL3, Style.BULLETS, Style.ONELINE, Style.VOTEONLY})
HOSTILE_CI = "vmware-ci"  # its failing job lines sometimes carry markup in the error detail
SKIP_SHARES = {"ovh-ci": 0.4, "nec-openflow-ci": 0.2}
"""CIs that never test a share of their projects' patch sets (coverage gaps the demo shows)."""
THIRD_PARTY_GROUP = "Third-Party CI"

_JOB_SUFFIXES = (
    ("tempest-full", 4800, True),
    ("tempest-scenario", 3600, True),
    ("devstack-functional", 2400, True),
    ("tempest-multinode", 5400, False),
    ("unit", 900, True),
)


def _ci_jobs(username: str, style: Style, index: int) -> tuple[JobSpec, ...]:
    prefix = username.removesuffix("-ci")
    count = 1 + index % 4
    if style is Style.GERRITFORGE:
        names = ("tempest", "functional", "codestyle", "integration")
        return tuple(JobSpec(name, 1800 + 600 * i) for i, name in enumerate(names[:count]))
    jobs = []
    for i in range(count):
        suffix, duration, voting = _JOB_SUFFIXES[(index + i) % len(_JOB_SUFFIXES)]
        jenkins = style is Style.JENKINS
        name = f"{prefix}-{suffix}" if not jenkins else f"{prefix}-{suffix}-dsvm"
        jobs.append(JobSpec(name, duration, voting or jenkins or count == 1))
    if not any(job.voting for job in jobs):
        jobs[0] = JobSpec(jobs[0].name, jobs[0].duration_s, True)
    return tuple(jobs)


def build_third_party(rng: random.Random, ids: list[int]) -> list[CI]:
    cis: list[CI] = []
    for index, (username, name, domain, style, persona, voting, projects, marker) in enumerate(_ROSTER):
        email = f"openstack-ci@{domain}.example.com" if index % 5 else f"{username}-operators@{domain}.example.com"
        account = Account(ids[index], username, name, email)
        host = f"ci.{domain}.example.com" if style in ZUUL_LIKE_STYLES else f"jenkins.{domain}.example.com"
        queue = (3 * 3600.0, 9 * 3600.0) if persona is Persona.SLOW else (120.0, 2700.0)
        tag = "autogenerated:zuul:check" if style is Style.ZUUL3 else None
        if style in (Style.JENKINS, Style.GERRITFORGE):
            tag = "autogenerated:jenkins"
        cis.append(
            CI(
                index=index + 1,
                account=account,
                style=style,
                persona=persona,
                voting=voting,
                projects=projects,
                jobs=_ci_jobs(username, style, index),
                host=host,
                start_marker=marker,
                pipeline_header=style is Style.ZUUL3 and index % 3 == 0,
                logs_urls=style in _LOG_SERVER_STYLES and index % 2 == 1,
                hostile=username == HOSTILE_CI,
                tag=tag,
                queue_s=queue,
                build_no=rng.randrange(100, 5000),
                skip_share=SKIP_SHARES.get(username, 0.0),
            )
        )
    return cis


def build_reference(account_id: int) -> CI:
    account = Account(account_id, "zuul", "Zuul", None)
    return CI(
        index=0,
        account=account,
        style=Style.ZUUL3,
        persona=Persona.HEALTHY,
        voting=True,
        projects=tuple(p.name for p in PROJECTS),
        jobs=(),  # per project, see PROJECTS
        host="zuul.opendev.org",
        start_marker=True,
        pipeline_header=True,
        reference=True,
        tag="autogenerated:zuul:check",
        queue_s=(15.0, 120.0),
    )


# -- humans ---------------------------------------------------------------------------------------

_FIRST = (
    "Sylvain Ghanshyam Slawek Rodolfo Brian Takashi Dmitriy Julia Jay Riccardo Balazs Lajos Rajat Pierre Tobias "
    "Goutham Carlos Vida Artom Sean Elod Mohammed Gregory Kendall Stephen Dan Jeremy Clark Ian Tristan Amy Lucas "
    "Pavlo Yatin Bence Maksim Gorka Eric Alan Hervé Thierry Jens Ade Előd Kristi Monty Sofia Ana Wei Priya"
).split()
_LAST = (
    "Bauza Mann Kaplonski Martinez Haley Kajinami Shtilman Kreger Faulkner Pittau Gibizer Katona Dhasmana Riteau "
    "Urdin Ravi Silva Lopez Naranjo Cheng Mooney Gombos Naser Thiemann Nelson Finucane Smith Stanley Boylan Wienand "
    "Cacqueray Marin Vaz Odling Bernat Kocsis Ortega Harney Fried Beraud Carrez Juszkiewicz Lee Nowak Rossi Costa "
    "Zhang Patel"
).split()
_COMPANIES = ("redhat", "canonical", "suse", "nvidia", "intel", "ibm", "ovhcloud", "vexxhost", "gmail", "cern")


def build_humans(rng: random.Random, count: int, ids: list[int]) -> list[Account]:
    humans: list[Account] = []
    seen: set[str] = set()
    while len(humans) < count:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        base = (first[0] + last).lower().replace("é", "e").replace("ő", "o")
        if f"{first} {last}" in seen or base in seen:
            continue
        seen.add(f"{first} {last}")
        seen.add(base)
        email = f"{base}@{rng.choice(_COMPANIES)}.example.com"
        humans.append(Account(ids[len(humans)], base, f"{first} {last}", email))
    return humans


# -- outage windows -------------------------------------------------------------------------------

_OUTAGE_PERIOD = 86400.0


def outage_mode(
    seed: int,
    ci: CI,
    moment: float,
    cache: dict[tuple[int, int], tuple[float, float, str] | None],
    origin: float,
) -> str | None:
    """'errors' or 'silence' while an OUTAGE-persona CI is down at `moment` (epoch s), else None.

    Each day counted from `origin` (the world's start) holds at most one window, drawn from a RNG
    keyed by (seed, CI, day), so the answer does not depend on the order in which the world asks,
    and a world is the same whatever the date it starts on (the calendar day would make it differ).
    """
    day = int((moment - origin) // _OUTAGE_PERIOD)
    for k in (day, day - 1):
        key = (ci.index, k)
        if key not in cache:
            rng = random.Random(f"{seed}/{ci.username}/{k}")
            if rng.random() < 0.75:
                begin = origin + k * _OUTAGE_PERIOD + rng.uniform(0, 20 * 3600)
                end = begin + rng.uniform(1.5 * 3600, 5 * 3600)
                cache[key] = (begin, end, "errors" if rng.random() < 0.6 else "silence")
            else:
                cache[key] = None
        window = cache[key]
        if window is not None and window[0] <= moment < window[1]:
            return window[2]
    return None
