"""A CI community on a fresh Gerrit, made through its REST API as the admin.

Humans, the reference Zuul, third-party CI bots (each with an SSH key and an HTTP password) in
a `Third-Party CI` group, the `Verified` label on All-Projects with who may vote it, projects with
an initial commit, and the account cidash watches with (the global Stream Events capability).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from cidash.realgerrit.site import ADMIN_PASSWORD, ADMIN_USER
from cidash.realgerrit.writer import GerritWriter, ident
from cidash.sim.personas import Style

CI_GROUP = "Third-Party CI"
REFERENCE_GROUP = "Reference CI"  # not "Service Users": Gerrit makes that one itself
STREAM_GROUP = "Event Streaming"
WATCHER = "cidash-watcher"
PROJECTS = ("openstack/nova", "openstack/neutron", "openstack/cinder")


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    name: str
    email: str | None
    style: Style | None = None  # how a CI writes its report; None for humans
    voting: bool = True  # a CI that casts Verified


REFERENCE = Person("zuul", "Zuul", "zuul@opendev.example.org", Style.ZUUL3)
HUMANS = (
    Person("alice", "Alice Developer", "alice@dev.example.org"),
    Person("bob", "Bob Core", "bob@dev.example.org"),
    Person("zoe", "Zoë Ångström-Øre", "zoe@dev.example.org"),  # non-ASCII display name
)
# Some with e-mail, some without; every username differs from its display name, and one wildly so.
THIRD_PARTY = (
    Person("cisco-ml2-ci", "Cisco ML2 CI", "ml2-ci@cisco.example.org", Style.ZUUL3),
    Person("netapp-ci", "NetApp CI", "openstack-ci@netapp.example.org", Style.ZUUL2),
    Person("ibm-powerkvm-ci", "IBM PowerKVM CI", None, Style.ZUUL3, voting=False),
    Person("hyperv-ci", "Microsoft Hyper-V CI (Cloudbase)", None, Style.JENKINS),
    Person("vmware-nsx-ci", "VMware NSX CI", "nsx-ci@vmware.example.org", Style.ZUUL3),
    Person("gf-ci", "GerritForge verification bot", "ci@gerritforge.example.org", Style.GERRITFORGE),
    Person("storpool-ci", "StorPool CI", None, Style.JENKINS, voting=False),
    Person("nexenta-ci", "Nexenta Edge CI", "edge-ci@nexenta.example.org", Style.BULLETS),
    Person("dellemc-ci", "Dell EMC PowerStore CI", None, Style.ONELINE),
    Person("qnap-ci", "QNAP Storage CI", "qnap-ci@qnap.example.org", Style.VOTEONLY),
)
WATCHER_PERSON = Person(WATCHER, "cidash watcher", "cidash@ops.example.org")


def password_of(username: str) -> str:
    return f"pw-{username}-0123456789"


@dataclass
class Account:
    person: Person
    account_id: int
    password: str
    key_path: Path | None = None  # its SSH private key, when it has one

    @property
    def username(self) -> str:
        return self.person.username


@dataclass
class Community:
    url: str
    accounts: dict[str, Account] = field(default_factory=dict)
    projects: tuple[str, ...] = PROJECTS
    ci_group_uuid: str = ""
    admin_key: Path | None = None  # the admin's SSH key (gerrit show-connections, close-connection)

    @property
    def watcher(self) -> Account:
        return self.accounts[WATCHER]

    def writer(self, username: str) -> GerritWriter:
        if username == ADMIN_USER:
            return GerritWriter(self.url, ADMIN_USER, ADMIN_PASSWORD)
        return GerritWriter(self.url, username, self.accounts[username].password)

    @property
    def third_party(self) -> list[Account]:
        return [self.accounts[p.username] for p in THIRD_PARTY]


def _key(directory: Path, username: str) -> tuple[Path, str]:
    """An ed25519 key pair on disk (private key file, public key line)."""
    path = directory / f"{username}_ed25519"
    if not path.exists():
        asyncssh.generate_private_key("ssh-ed25519", comment=username).write_private_key(path)
        path.chmod(0o600)  # OpenSSH refuses keys others can read
    key = asyncssh.read_private_key(path)
    return path, key.export_public_key().decode().strip()


async def _create_account(admin: GerritWriter, person: Person, keys: Path) -> Account:
    key_path, public = _key(keys, person.username)
    body: dict[str, object] = {"name": person.name, "ssh_key": public, "http_password": password_of(person.username)}
    if person.email:
        body["email"] = person.email
    info = await admin.put(f"accounts/{ident(person.username)}", body)
    return Account(person, int(info["_account_id"]), password_of(person.username), key_path)


async def _create_group(admin: GerritWriter, name: str, members: list[str]) -> str:
    info = await admin.put(f"groups/{ident(name)}", {"visible_to_all": True, "description": f"{name} accounts"})
    await admin.post(f"groups/{ident(name)}/members.add", {"members": members})
    # Gerrit makes the creator a member: the admin is not a CI
    await admin.post(f"groups/{ident(name)}/members.delete", {"members": [ADMIN_USER]})
    return str(info["id"])


async def build_community(url: str, keys: Path) -> Community:
    """Everything a CI community needs, on a Gerrit fresh from `init --dev`."""
    keys.mkdir(parents=True, exist_ok=True)
    community = Community(url=url)
    async with GerritWriter(url, ADMIN_USER, ADMIN_PASSWORD) as admin:
        people = [*HUMANS, REFERENCE, *THIRD_PARTY, WATCHER_PERSON]
        for person in people:  # one by one: Gerrit allocates account ids in order
            community.accounts[person.username] = await _create_account(admin, person, keys)
        community.ci_group_uuid = await _create_group(admin, CI_GROUP, [p.username for p in THIRD_PARTY])
        reference_uuid = await _create_group(admin, REFERENCE_GROUP, [REFERENCE.username])
        stream_uuid = await _create_group(admin, STREAM_GROUP, [WATCHER])
        await admin.put(
            "projects/All-Projects/labels/Verified",
            {
                "commit_message": "Add the Verified label (CI votes)",
                "values": {
                    "-2": "Fails",
                    "-1": "Doesn't seem to work",
                    " 0": "No score",
                    "+1": "Works for me",
                    "+2": "Verified",
                },
                "function": "NoBlock",
                "copy_condition": "changekind:NO_CHANGE",
            },
        )
        await admin.post(
            "projects/All-Projects/access",
            {
                "message": "CI may vote Verified; cidash may stream events",
                "add": {
                    "refs/heads/*": {
                        "permissions": {
                            "label-Verified": {
                                "label": "Verified",
                                "rules": {
                                    community.ci_group_uuid: {"action": "ALLOW", "min": -1, "max": 1},
                                    reference_uuid: {"action": "ALLOW", "min": -2, "max": 2},
                                },
                            }
                        }
                    },
                    "GLOBAL_CAPABILITIES": {
                        "permissions": {"streamEvents": {"rules": {stream_uuid: {"action": "ALLOW"}}}}
                    },
                },
            },
        )
        community.admin_key, admin_public = _key(keys, ADMIN_USER)
        await admin.call("POST", "accounts/self/sshkeys", raw=admin_public.encode())
    await create_projects(url, community.projects)
    return community


async def create_projects(url: str, names: Sequence[str]) -> None:
    """Projects with an initial (empty) commit on master."""
    async with GerritWriter(url, ADMIN_USER, ADMIN_PASSWORD) as admin:
        await asyncio.gather(*(admin.put(f"projects/{ident(name)}", {"create_empty_commit": True}) for name in names))
