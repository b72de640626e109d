"""Share of CI comments read as results: the simulator's and ../shared/gerrit-samples' (the
copy in tests/data/gerrit-samples), with this tree's parser and with the parser of an older
commit (`--before`, default: main before issue #13's parsing change).

The older parser is `src/cidash/parsing.py` of that commit (from git), loaded beside this tree's
modules. Both read the same comments with the same CI accounts:

* simulator: `--hours` of a seeded simulated Gerrit, its REST messages, the reference Zuul in the
  config and every third-party CI in the CI group (as `make demo` runs it). The truth knows which
  comments are results, so the figure is "truth results read as results, with the truth's result".
* samples: every JSON object in the sample files with a comment text (`comment` or `message`) and
  an author; CI accounts are the authors named like a CI (Zuul, Jenkins, "... CI").

Usage: .venv/bin/python benchmarks/read_share.py [--before REV] [--hours 48] [--seed 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cidash import parsing
from cidash.config import CISystemConfig
from cidash.domain.comments import ObservedComment
from cidash.gerrit.normalize import comments_from_change
from cidash.parsing.explain import loose_comment
from cidash.sim.rest_shapes import change_info
from cidash.sim.world import World

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "data" / "gerrit-samples"
BEFORE = "b40f2b3^"  # main just before "parsing: read every CI's comments ..."
START = datetime(2026, 11, 30, tzinfo=UTC)  # a fixed world, so the figure repeats (the clock never matters)
OPTIONS = frozenset({"MESSAGES", "ALL_REVISIONS", "DETAILED_ACCOUNTS"})
CI_NAME = re.compile(r"(?i)\b(zuul|jenkins|ci)\b")
Parse = Callable[[ObservedComment], Any]


def parser_module(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:src/cidash/parsing.py"], check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader(f"parsing_{rev}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:parsing.py", "exec"), module.__dict__)
    return module


def kinds(parse: Parse, comments: list[ObservedComment]) -> Counter[str]:
    return Counter(str(parse(comment).kind.value) for comment in comments)


def simulator(hours: float, seed: int) -> tuple[World, list[ObservedComment], list[CISystemConfig], list[str]]:
    world = World(seed, start=START)
    world.generate_history(timedelta(hours=hours))
    group = [ci.username for ci in world.third_party]
    comments = [
        comment
        for change in world.changes.values()
        for comment in comments_from_change(change_info(world, change, OPTIONS), "review")
        if comment.author.key in {"zuul", *group}
    ]
    return world, comments, [CISystemConfig(account="zuul", reference=True)], group


def _objects(text: str) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    index = 0
    while (start := min((i for i in (text.find("{", index), text.find("[", index)) if i >= 0), default=-1)) >= 0:
        try:
            value, index = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        yield value


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def samples() -> tuple[list[ObservedComment], list[CISystemConfig]]:
    comments: list[ObservedComment] = []
    for path in sorted(SAMPLES.iterdir()):
        for value in _objects(path.read_text(encoding="utf-8")):
            for raw in _walk(value):
                found = loose_comment(raw, "samples")
                author = raw.get("author")
                if found is None or not isinstance(author, dict):
                    continue
                names = " ".join(str(author.get(key, "")) for key in ("name", "username"))
                if CI_NAME.search(names):
                    comments.append(found[0])
    accounts = sorted({comment.author.key for comment in comments})
    return comments, [CISystemConfig(account=account) for account in accounts]


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} = {100 * part / whole:.1f} %" if whole else "0/0"


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--before", default=BEFORE, help="git revision of the parser to compare with")
    cli.add_argument("--hours", type=float, default=48.0)
    cli.add_argument("--seed", type=int, default=1)
    args = cli.parse_args()
    modules = {f"before ({args.before})": parser_module(args.before), "after (this tree)": parsing}

    world, sim_comments, sim_configs, group = simulator(args.hours, args.seed)
    truth = {record.message_id: record.result for record in world.truth}
    print(f"simulator: seed {args.seed}, {args.hours:g} h, {len(sim_comments)} CI comments, {len(truth)} results")
    for label, module in modules.items():
        parser = module.CommentParser(sim_configs)
        parser.set_group_members("review", group)
        read = [(comment, parser.parse(comment)) for comment in sim_comments]
        right = sum(
            1
            for comment, parsed in read
            if parsed.kind.value == "result" and parsed.result == truth.get(comment.message_id or "")
        )
        counted = Counter(parsed.kind.value for _, parsed in read)
        print(f"  {label}: truth results read right {_share(right, len(truth))}; kinds {dict(sorted(counted.items()))}")

    comments, configs = samples()
    print(f"samples: {len(comments)} CI comments in {SAMPLES.relative_to(REPO)}")
    for label, module in modules.items():
        counted = kinds(module.CommentParser(configs).parse, comments)
        print(
            f"  {label}: read as results {_share(counted['result'], len(comments))}; "
            f"unread {_share(counted['other'], len(comments))}; kinds {dict(sorted(counted.items()))}"
        )


if __name__ == "__main__":
    main()
