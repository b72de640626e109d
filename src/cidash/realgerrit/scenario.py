"""The scripted scenario the real-Gerrit tests post: every kind of thing a CI community does.

Changes in every project; Zuul start markers and results (check and gate pipelines, a merge
conflict); third-party results in each style (Zuul v3 with and without the pipeline in the
header, Zuul v2, Jenkins gerrit-trigger, GerritForge marks), voting and not; human rechecks; a
repeat result that leaves the vote unchanged; a new patch set through a change edit; a late
result on the older patch set; a vote removed by an admin; an abandoned and a merged change;
non-ASCII text and markup. `midpoint` runs half-way (the tests cut cidash's stream there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from cidash.realgerrit.community import REFERENCE, THIRD_PARTY, Person
from cidash.realgerrit.poster import ChangeRef, Poster
from cidash.sim.ci_texts import HOSTILE_DETAIL, Job
from cidash.sim.personas import Style

CISCO, NETAPP, POWERKVM, HYPERV, NSX, FORGE, STORPOOL, NEXENTA, DELLEMC, QNAP = THIRD_PARTY
ZUUL = REFERENCE


def jobs_for(
    ci: Person, change: ChangeRef, patchset: int, results: dict[str, str], pipeline: str = "check"
) -> list[Job]:
    """Job lines as `ci` writes them: names, URLs in its scheme, durations only from Zuul."""
    jobs = []
    for index, (name, result) in enumerate(results.items()):
        voting = not name.endswith("-nv")
        if ci.style in (Style.ZUUL3, Style.ZUUL2, Style.BULLETS):
            url = f"https://logs.{ci.username}.example.org/{change.number}/{patchset}/{pipeline}/{name}/{index:07x}"
            duration = None if result in ("NODE_FAILURE", "ERROR") else 300 + 97 * index + change.number
            if ci.style is Style.BULLETS and duration is not None:
                duration -= duration % 60  # it writes whole minutes
        elif ci.style is Style.JENKINS:
            url, duration = f"https://jenkins.{ci.username}.example.org/job/{name}/{100 + change.number}/", None
        else:
            url, duration = f"https://ci.gerritforge.example.org/job/{name}/{200 + patchset}/consoleText", None
        jobs.append(Job(name, url, result, duration, voting))
    return jobs


def _ok(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "SUCCESS")


ZUUL_JOBS = ("openstack-tox-pep8", "openstack-tox-py312", "tempest-integrated-compute", "nova-next-nv")


async def run_scenario(
    poster: Poster, projects: Sequence[str] | None = None, midpoint: Callable[[], Awaitable[None]] | None = None
) -> None:
    """`projects`: three project names (default: the community's)."""
    nova, neutron, cinder = projects or poster.community.projects

    # 1. three changes, patch set 1 each
    fix = await poster.create_change("alice", nova, "libvirt: stop leaking file descriptors on migration")
    ovn = await poster.create_change("zoe", neutron, "OVN: handle ports without a binding — «edge case»")
    rbd = await poster.create_change("alice", cinder, "RBD: retry <connect> & report 'timeouts'")

    # 2. the reference CI on every change: start marker, then its verdict
    for change in (fix, ovn, rbd):
        await poster.ci_start(ZUUL, change, 1)
    await poster.ci_report(
        ZUUL,
        fix,
        1,
        jobs_for(
            ZUUL, fix, 1, {**_ok(*ZUUL_JOBS[:2]), "tempest-integrated-compute": "FAILURE", "nova-next-nv": "SUCCESS"}
        ),
        pipeline_header=True,
    )
    await poster.ci_report(ZUUL, ovn, 1, jobs_for(ZUUL, ovn, 1, _ok(*ZUUL_JOBS)), pipeline_header=True)
    await poster.ci_report(ZUUL, rbd, 1, [], merge_failed=True)

    # 3. third-party CIs, each in its own style
    await poster.ci_start(CISCO, fix, 1)
    await poster.ci_report(
        CISCO, fix, 1, jobs_for(CISCO, fix, 1, {"cisco-ml2-tempest": "FAILURE", "cisco-ml2-unit": "SUCCESS"})
    )
    await poster.ci_report(NETAPP, fix, 1, jobs_for(NETAPP, fix, 1, _ok("netapp-cinder-nfs", "netapp-cinder-iscsi")))
    await poster.ci_report(POWERKVM, fix, 1, jobs_for(POWERKVM, fix, 1, {"powerkvm-tempest-dsvm": "NODE_FAILURE"}))
    await poster.ci_start(HYPERV, ovn, 1)
    await poster.ci_report(
        HYPERV, ovn, 1, jobs_for(HYPERV, ovn, 1, {"hyperv-neutron-ovs": "UNSTABLE", "hyperv-neutron-unit": "SUCCESS"})
    )
    await poster.ci_report(
        NSX,
        ovn,
        1,
        jobs_for(NSX, ovn, 1, {"vmware-nsx-tempest": "SUCCESS", "vmware-nsx-api-nv": "FAILURE"}),
        pipeline_header=True,
    )
    hostile = jobs_for(FORGE, rbd, 1, {"notedb-ünïcode": "FAILURE", "rbd-smoke": "SUCCESS"})
    await poster.ci_report(FORGE, rbd, 1, hostile)
    await poster.ci_report(STORPOOL, rbd, 1, jobs_for(STORPOOL, rbd, 1, _ok("storpool-cinder-tempest")))

    # the wider world's styles: bullets with a recheck footer, one line, the vote alone
    await poster.ci_report(
        NEXENTA, ovn, 1, jobs_for(NEXENTA, ovn, 1, {"edge-tempest": "FAILURE", "edge-unit": "SUCCESS"})
    )
    await poster.ci_report(DELLEMC, rbd, 1, jobs_for(DELLEMC, rbd, 1, {"powerstore-iscsi": "NODE_FAILURE"}))
    await poster.ci_report(QNAP, rbd, 1, jobs_for(QNAP, rbd, 1, _ok("qnap-cinder-tempest")))

    # 4. humans: a review with markup and non-ASCII, rechecks
    await poster.review("zoe", fix, 1, "Ça a l'air bien, mais <b>pourquoi</b> & comment? ✓\n\n* point one\n* point two")
    await poster.review("alice", fix, 1, "recheck")
    await poster.ci_start(ZUUL, fix, 1)
    rerun = jobs_for(ZUUL, fix, 1, _ok(*ZUUL_JOBS))
    await poster.ci_report(ZUUL, fix, 1, [job._replace(url=job.url + "-2") for job in rerun], pipeline_header=True)
    # the same CI fails again: Gerrit writes no vote in the header (Verified was already -1)
    again = jobs_for(CISCO, fix, 1, {"cisco-ml2-tempest": "FAILURE", "cisco-ml2-unit": "SUCCESS"})
    await poster.ci_report(CISCO, fix, 1, [job._replace(url=job.url + "-2") for job in again])

    if midpoint is not None:
        await midpoint()

    # 5. a new patch set through a change edit; CIs run on it; a late result lands on patch set 1
    await poster.new_patchset("alice", fix, "nova/virt/libvirt/migration.py", "# fixed\nclose_fds = True\n")
    await poster.ci_start(ZUUL, fix, 2)
    await poster.ci_report(ZUUL, fix, 2, jobs_for(ZUUL, fix, 2, _ok(*ZUUL_JOBS)), pipeline_header=True)
    await poster.ci_report(
        NETAPP,
        fix,
        1,
        jobs_for(NETAPP, fix, 1, {"netapp-cinder-nfs": "POST_FAILURE", "netapp-cinder-iscsi": "SUCCESS"}),
    )
    await poster.ci_report(CISCO, fix, 2, jobs_for(CISCO, fix, 2, _ok("cisco-ml2-tempest", "cisco-ml2-unit")))
    zuul_detail = jobs_for(NSX, fix, 2, {"vmware-nsx-tempest": "FAILURE"})
    await poster.ci_report(NSX, fix, 2, [zuul_detail[0]._replace(detail=HOSTILE_DETAIL)])
    await poster.ci_report(HYPERV, fix, 2, jobs_for(HYPERV, fix, 2, {"hyperv-nova-tempest": "ABORTED"}))

    # 6. an admin removes a broken CI's vote; a non-voting result without a vote
    await poster.remove_vote(fix, HYPERV.username)
    await poster.ci_report(POWERKVM, fix, 2, jobs_for(POWERKVM, fix, 2, _ok("powerkvm-tempest-dsvm")))
    # the CI whose vote was removed reports once more without voting: it holds no vote now
    await poster.ci_report(HYPERV, fix, 2, jobs_for(HYPERV, fix, 2, {"hyperv-nova-unit": "SUCCESS"}), vote=False)
    # a repeat failure with the vote unchanged, after the cut: only REST can bring it
    again = jobs_for(NSX, fix, 2, {"vmware-nsx-tempest": "FAILURE"})
    await poster.ci_report(NSX, fix, 2, [job._replace(url=job.url + "-2") for job in again])

    # 7. the OVN change is approved, gated and merged; the RBD change is abandoned
    await poster.review("bob", ovn, 1, "Looks good to me — merci!")
    await poster.ci_start(ZUUL, ovn, 1, pipeline="gate")
    gate = jobs_for(ZUUL, ovn, 1, _ok(*ZUUL_JOBS[:3]), pipeline="gate")
    await poster.ci_report(ZUUL, ovn, 1, gate, pipeline="gate", pipeline_header=True)
    await poster.approve_and_submit(ovn, 1)
    await poster.abandon("alice", rbd, "Superseded by a better approach (see «I123»).")
    await poster.ci_report(FORGE, fix, 2, jobs_for(FORGE, fix, 2, _ok("notedb-ünïcode", "rbd-smoke")))
