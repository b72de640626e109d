"""What a CI's run did: every job's result, duration and log URL, drawn from the world's generator.

The job results are chosen first and the overall result follows from them (`ci_texts`). The
draws come from the world's one `random.Random`, in a fixed order (results, URLs, durations):
the same seed gives the same world.
"""

from __future__ import annotations

import random

from cidash.sim.ci_texts import HOSTILE_DETAIL, TEST_FAILURES, Job
from cidash.sim.personas import (
    CI,
    FLAKE_RATE,
    PROJECTS,
    REFERENCE_FLAKE_RATE,
    ZUUL_RUNNERS,
    JobSpec,
    Persona,
    Style,
)
from cidash.sim.state import Change, PatchSet, Run

PROJECT_JOBS: dict[str, tuple[JobSpec, ...]] = {project.name: project.jobs for project in PROJECTS}
_ZUUL_INFRA_ERRORS = ("NODE_FAILURE", "NODE_FAILURE", "RETRY_LIMIT", "ERROR")

# (jobs, indexes of voting jobs (all when none votes), indexes of non-voting jobs)
_Specs = tuple[tuple[JobSpec, ...], list[int], list[int]]


class CiRuns:
    """The jobs of the world's CIs' runs."""

    def __init__(self, rng: random.Random, cis: list[CI]) -> None:
        self._rng = rng
        self._url_bases = {ci.index: _url_base(ci) for ci in cis}
        self._spec_cache: dict[tuple[int, str, str], _Specs] = {}

    def jobs(self, change: Change, ps: PatchSet, ci: CI, run: Run, outage: str | None) -> list[Job]:
        """Every job's result, log URL and duration (`outage`: the CI's outage mode now, if any)."""
        rand = self._rng.random
        zuul = ci.style in ZUUL_RUNNERS
        specs, voting_idx, nonvoting_idx = self._specs(ci, change.project, run.pipeline)
        results = ["SUCCESS"] * len(specs)
        details: dict[int, str] = {}
        if outage == "errors":
            self._infra_errors(results, voting_idx, zuul)
        else:
            self._failures(results, details, ps, ci, run, voting_idx)
        for i in nonvoting_idx:
            if rand() < 0.25:
                results[i] = "FAILURE"
        urls = self.urls(change, ps, ci, run, specs)
        new = tuple.__new__
        jobs: list[Job] = []
        append = jobs.append
        for i, spec in enumerate(specs):
            result = results[i]
            duration: int | None
            if not zuul or result == "NODE_FAILURE" or result == "ERROR":
                duration = None
            elif result == "TIMED_OUT":
                duration = int(spec.duration_s * 1.6)
            else:
                duration = int(spec.duration_s * (0.75 + 0.55 * rand()))
            if ci.style is Style.BULLETS and duration is not None:
                duration -= duration % 60  # it writes whole minutes

            detail = details.get(i) if details and result in TEST_FAILURES else None
            append(new(Job, (spec.name, urls[i], result, duration, spec.voting, detail)))
        return jobs

    def _infra_errors(self, results: list[str], voting_idx: list[int], zuul: bool) -> None:
        """An outage's run: most voting jobs end in an infrastructure error."""
        rng = self._rng
        rand = rng.random
        infra = _ZUUL_INFRA_ERRORS if zuul else ("ABORTED",)
        hit = [i for i in voting_idx if rand() < 0.7] or [rng.choice(voting_idx)]
        for i in hit:
            results[i] = rng.choice(infra)

    def _failures(
        self, results: list[str], details: dict[int, str], ps: PatchSet, ci: CI, run: Run, voting_idx: list[int]
    ) -> None:
        """A normal run: bad code fails, good code flakes at the persona's rate, infra noise now and then."""
        rng = self._rng
        rand = rng.random
        style = ci.style
        zuul = style in ZUUL_RUNNERS
        if not ps.code_ok:
            fails = rand() < (0.95 if ci.persona is Persona.BROKEN else 0.9)
        else:
            flake = REFERENCE_FLAKE_RATE if ci.reference else FLAKE_RATE[ci.persona]
            fails = rand() < (flake * 0.7 if run.pipeline == "gate" else flake)
        if fails:
            count = 1 if len(voting_idx) < 2 or rand() < 0.7 else 2
            for i in rng.sample(voting_idx, count):
                roll = rand()
                if style is Style.JENKINS:
                    results[i] = "UNSTABLE" if roll < 0.35 else "FAILURE"
                elif zuul and roll < 0.08:
                    results[i] = "TIMED_OUT"
                elif zuul and roll < 0.13:
                    results[i] = "POST_FAILURE"
                else:
                    results[i] = "FAILURE"
                if ci.hostile and rand() < 0.5:
                    details[i] = HOSTILE_DETAIL
        if rand() < 0.012:  # background infra noise
            results[rng.choice(voting_idx)] = rng.choice(("NODE_FAILURE", "RETRY_LIMIT")) if zuul else "ABORTED"

    def urls(self, change: Change, ps: PatchSet, ci: CI, run: Run, specs: tuple[JobSpec, ...]) -> list[str]:
        """Build URLs of a run's jobs, in the CI's own URL scheme."""
        kind, base = self._url_bases[ci.index]
        if kind == "jenkins":
            tail = f"/{run.build_no}/"
            return [base + spec.name + tail for spec in specs]
        if kind == "forge":
            tail = f"/{run.build_no}/consoleText"
            return [base + spec.name + tail for spec in specs]
        count = len(specs)
        rng = self._rng
        if kind == "logs":
            number = change.number
            base = f"{base}{number % 100:02d}/{number}/{ps.number}/{run.pipeline}/"
            ids = f"{rng.getrandbits(28 * count):0{7 * count}x}"
            return [f"{base}{spec.name}/{ids[7 * i : 7 * i + 7]}" for i, spec in enumerate(specs)]
        if count == 1:
            return [f"{base}{rng.getrandbits(128):032x}"]
        ids = f"{rng.getrandbits(128 * count):0{32 * count}x}"
        return [base + ids[32 * i : 32 * i + 32] for i in range(count)]

    def _specs(self, ci: CI, project: str, pipeline: str) -> _Specs:
        key = (ci.index, project if ci.reference else "", pipeline if ci.reference else "")
        found = self._spec_cache.get(key)
        if found is None:
            if ci.reference:
                specs = tuple(job for job in PROJECT_JOBS[project] if job.voting or pipeline == "check")
            else:
                specs = ci.jobs
            voting = [i for i, spec in enumerate(specs) if spec.voting]
            nonvoting = [i for i, spec in enumerate(specs) if not spec.voting]
            found = self._spec_cache[key] = (specs, voting or list(range(len(specs))), nonvoting)
        return found


def _url_base(ci: CI) -> tuple[str, str]:
    """(scheme kind, URL prefix) of a CI's log links."""
    if ci.reference:
        return "build", "https://zuul.opendev.org/t/openstack/build/"
    if ci.style is Style.JENKINS:
        return "jenkins", f"https://{ci.host}/job/"
    if ci.style is Style.GERRITFORGE:
        return "forge", f"https://{ci.host}/job/"
    if ci.style is Style.ZUUL2 or ci.logs_urls:
        scheme = "http" if ci.style is Style.ZUUL2 else "https"
        return "logs", f"{scheme}://{ci.host.replace('ci.', 'logs.', 1)}/"
    return "build", f"https://{ci.host}/zuul/t/{ci.username.removesuffix('-ci')}/build/"
