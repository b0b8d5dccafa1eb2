"""The simulated AWS the local deploy runs against, kept in a state directory between runs.

moto holds everything in memory, so each command rebuilds the simulated world from the state
directory (``.local-org/`` by default, git-ignored), runs, and writes it back, even when the run
fails half-way, so that the organization and the stack's record always agree:

- ``world.json``: the organization (in the organization file's format, with every ID: OUs, accounts
  and their status, trusted access, delegated administrators, contacts), the S3 objects and
  DynamoDB items of the stack's bucket and table (contact jobs, reports, pre-change snapshots), and
  the history of what changed after the deploys and why (day-two events, drift checks);
- ``stack.json``: what CloudFormation remembers of the stack (:class:`local_deploy.stack.StackState`);
- ``stack-delegated-administrator.json``: the same for the delegated administrator's stack, in
  delegated-administrator mode (its bucket and table are in that account, and kept as such);
- ``handlers.log``: the handlers' logs, as CloudWatch Logs would have them.

The first run seeds the organization from the organization file; ``reset`` starts over.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_deploy.api_calls import ApiCalls
from local_deploy.organization_file import load_organization_file
from local_deploy.simulated_time import REAL_TIME_REGION_OPT_SECONDS, REGION_OPT_SECONDS, Timing, running
from local_deploy.stack import StackState, write_json
from simulation.organization import ApiLog, Organization, acting_as, strict_aws

FORMAT = 1


class StateDirError(RuntimeError):
    pass


@dataclass(frozen=True)
class StateDir:
    path: Path

    @property
    def world_file(self) -> Path:
        return self.path / "world.json"

    @property
    def stack_file(self) -> Path:
        return self.path / "stack.json"

    @property
    def delegated_stack_file(self) -> Path:
        return self.path / "stack-delegated-administrator.json"

    @property
    def log_file(self) -> Path:
        return self.path / "handlers.log"

    def seeded_from(self) -> str | None:
        if not self.world_file.exists():
            return None
        return str(json.loads(self.world_file.read_text(encoding="utf-8")).get("seeded_from"))

    def reset(self) -> bool:
        """Forget the simulated world and the stack; True if there was anything to forget. Refuses a
        directory holding anything the local deploy does not write (a mistyped --state-dir)."""
        if not self.path.exists():
            return False
        ours = {self.world_file.name, self.stack_file.name, self.delegated_stack_file.name, self.log_file.name}
        foreign = [p.name for p in self.path.iterdir() if p.name.removesuffix(".partial") not in ours]
        if foreign or not self.path.is_dir():
            raise StateDirError(f"not removing {self.path}: it is not a local-deploy state directory ({foreign[:3]})")
        shutil.rmtree(self.path)
        return True


@dataclass
class World:
    organization: Organization
    api_log: ApiLog  # the simulated Account Management API's own count of calls
    session: boto3.Session  # every handler's and the plan's clients come from it
    calls: ApiCalls
    stack: StackState | None
    seeded_from: str
    state: StateDir
    delegated_stack: StackState | None = None  # the delegated administrator's, in its account
    # What changed in the organization after the deploys, and why (an event, a check, a person),
    # oldest first: {"at", "what", "why", "account", "changes"}
    history: list[dict[str, Any]] = field(default_factory=list)
    timing: Timing | None = None  # the clock the run is on, and how long it has taken

    def stacks(self) -> list[StackState]:
        """The deployed stacks in deployment order: the management account's first."""
        return [stack for stack in (self.stack, self.delegated_stack) if stack is not None]


@contextlib.contextmanager
def open_world(state: StateDir, seed: str | Path, *, real_time: bool = False) -> Iterator[World]:
    """The simulated world as the state directory left it (or as the organization file seeds it),
    on a simulated clock (:mod:`local_deploy.simulated_time`) unless ``real_time``."""
    saved: dict[str, Any] = {}
    if state.world_file.exists():
        saved = json.loads(state.world_file.read_text(encoding="utf-8"))
        organization_data, seeded_from = saved["organization"], str(saved.get("seeded_from"))
    else:
        organization_data, seeded_from = load_organization_file(seed), str(Path(seed).resolve())
    stack = StackState.load(state.stack_file)
    delegated_stack = StackState.load(state.delegated_stack_file)
    state.path.mkdir(parents=True, exist_ok=True)
    with (
        strict_aws(management_account=organization_data["management_account_id"]) as api_log,
        _handler_logs(state.log_file),
        contextlib.ExitStack() as stack_of_contexts,
    ):
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        timing = stack_of_contexts.enter_context(
            running(session, real_time=real_time, resume_at=float(saved.get("clock", 0.0)))
        )
        api_log.region_opt_seconds = REAL_TIME_REGION_OPT_SECONDS if real_time else REGION_OPT_SECONDS
        organization = Organization.from_mapping(organization_data, api_log)
        _restore_storage(session, saved, organization.management_account_id)
        world = World(organization, api_log, session, ApiCalls(session), stack, seeded_from, state, delegated_stack)
        world.history = list(saved.get("history", []))
        world.timing = timing
        try:
            yield world
        finally:
            management = organization.management_account_id
            stored = [*saved.get("s3", {}).values(), *saved.get("dynamodb", {}).values()]
            accounts = {management, *(item.get("account", management) for item in stored)}
            accounts.update(each.account for each in world.stacks())
            regions = {"us-east-1", *(table["region"] for table in saved.get("dynamodb", {}).values())}
            regions.update(each.region for each in world.stacks())
            write_json(
                state.world_file,
                {
                    "format": FORMAT,
                    "seeded_from": seeded_from,
                    "organization": organization.to_mapping(api_log),
                    "history": world.history,
                    "clock": max(timing.clock.time(), float(saved.get("clock", 0.0))),
                    **_storage_snapshot(session, sorted(accounts), regions),
                },
            )
            for kept, path in ((world.stack, state.stack_file), (world.delegated_stack, state.delegated_stack_file)):
                if kept is not None:
                    kept.save(path)
                else:
                    path.unlink(missing_ok=True)


@contextlib.contextmanager
def _handler_logs(path: Path) -> Iterator[None]:
    """The handlers log to the root logger, as in Lambda; here that goes to a file, not the screen."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # The batches' metric lines (stdout in Lambda, for CloudWatch to extract) go to the same file.
    metrics = logging.getLogger("org_bootstrap.metrics")
    stdout = list(metrics.handlers)
    metrics.handlers = [handler]
    try:
        yield
    finally:
        metrics.handlers = stdout
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _storage_snapshot(session: boto3.Session, accounts: list[str], regions: set[str]) -> dict[str, Any]:
    """Every account's buckets and tables (the management account's, and the delegated administrator's)."""
    buckets: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    for account in accounts:
        with acting_as(account):
            found_buckets, found_tables = _account_storage(session, regions)
        buckets.update({name: {**bucket, "account": account} for name, bucket in found_buckets.items()})
        tables.update({name: {**table, "account": account} for name, table in found_tables.items()})
    return {"s3": buckets, "dynamodb": tables}


def _account_storage(session: boto3.Session, regions: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    s3 = session.client("s3", region_name="us-east-1")
    buckets: dict[str, Any] = {}
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
        objects = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=name, Key=item["Key"])["Body"].read()
                objects[item["Key"]] = base64.b64encode(body).decode()
        buckets[name] = {"region": region, "objects": objects}
    tables: dict[str, Any] = {}
    for region in sorted(regions):
        dynamodb = session.client("dynamodb", region_name=region)
        for name in dynamodb.list_tables().get("TableNames", []):
            table = dynamodb.describe_table(TableName=name)["Table"]
            items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=name) for item in page["Items"]]
            tables[name] = {
                "region": region,
                "key_schema": table["KeySchema"],
                "attribute_definitions": table["AttributeDefinitions"],
                "items": items,
            }
    return buckets, tables


def _restore_storage(session: boto3.Session, saved: dict[str, Any], management: str) -> None:
    for name, bucket in saved.get("s3", {}).items():
        with acting_as(bucket.get("account", management)):
            _restore_bucket(session, name, bucket)
    for name, table in saved.get("dynamodb", {}).items():
        with acting_as(table.get("account", management)):
            _restore_table(session, name, table)


def _restore_bucket(session: boto3.Session, name: str, bucket: dict[str, Any]) -> None:
    s3 = session.client("s3", region_name=bucket["region"])
    location = {}
    if bucket["region"] != "us-east-1":
        location = {"CreateBucketConfiguration": {"LocationConstraint": bucket["region"]}}
    s3.create_bucket(Bucket=name, **location)
    for key, body in bucket["objects"].items():
        s3.put_object(Bucket=name, Key=key, Body=base64.b64decode(body))


def _restore_table(session: boto3.Session, name: str, table: dict[str, Any]) -> None:
    dynamodb = session.client("dynamodb", region_name=table["region"])
    dynamodb.create_table(
        TableName=name,
        KeySchema=table["key_schema"],
        AttributeDefinitions=table["attribute_definitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in table["items"]:
        dynamodb.put_item(TableName=name, Item=item)
