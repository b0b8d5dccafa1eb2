"""The simulated AWS the local deploy runs against, kept in a state directory between runs.

moto holds everything in memory, so each command rebuilds the simulated world from the state
directory (``.local-org/`` by default, git-ignored; :mod:`local_deploy.state`), runs, and writes it
back as a whole, even when the run fails or is interrupted half-way, so that the organization and
the stack's record always agree:

- ``state.json``: the organization (in the organization file's format, with every ID: OUs, accounts
  and their status, trusted access, delegated administrators, contacts), the S3 objects and
  DynamoDB items of the stacks' buckets and tables (contact jobs, reports, pre-change snapshots),
  what CloudFormation remembers of the stack (:class:`local_deploy.stack.StackState`) and, in
  delegated-administrator mode, of the delegated administrator's stack (its bucket and table are in
  that account, and kept as such), the history of what changed after the deploys and why (day-two
  events, drift checks), where the simulated wall clock stopped (the next run resumes there:
  :mod:`local_deploy.simulated_time`), and which run wrote it;
- ``lock``: who is changing the state now;
- ``handlers.log``: the handlers' logs, as CloudWatch Logs would have them.

The first run seeds the organization from the organization file; ``reset`` starts over.

A contacts job's lease is held by the invocation working on it until that invocation must have
ended (its Lambda timeout). Here every invocation runs inside the command, so a lease found in the
saved state belongs to a run that was stopped (Ctrl-C) and is gone: a command that changes the
state holds the lock, so no other run is alive, and it takes such leases over at once (a line says
so) instead of waiting out the timeout.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session

from local_deploy.api_calls import ApiCalls
from local_deploy.organization_file import load_organization_file
from local_deploy.simulated_time import REAL_TIME_REGION_OPT_SECONDS, REGION_OPT_SECONDS, Timing, running
from local_deploy.stack import StackState
from local_deploy.state import Run, StateDir, StateDirError, StateLocked
from org_bootstrap.engine.continuation import LEASE
from org_bootstrap.engine.stores import JOB_PREFIX
from simulation.organization import ApiLog, Organization, acting_as, strict_aws

__all__ = ["StateDir", "StateDirError", "StateLocked", "World", "open_world"]

BATCH_WRITE_ITEMS = 25  # DynamoDB's BatchWriteItem takes at most 25 requests


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
    taken_over: list[str] = field(default_factory=list)  # one line per lease of a run that is gone
    timing: Timing | None = None  # the clock the run is on, and how long it has taken

    def stacks(self) -> list[StackState]:
        """The deployed stacks in deployment order: the management account's first."""
        return [stack for stack in (self.stack, self.delegated_stack) if stack is not None]


@contextlib.contextmanager
def open_world(
    state: StateDir,
    seed: str | Path,
    *,
    read_only: bool = False,
    run: Run | None = None,
    real_time: bool = False,
) -> Iterator[World]:
    """The simulated world as the state directory left it (or as the organization file seeds it),
    on a simulated clock (:mod:`local_deploy.simulated_time`) unless ``real_time``, saved back as a
    whole when the block ends, however it ends; ``read_only``: never saved, and leases left as
    found. ``run``: the command holding the lock, recorded as the state's writer."""
    saved = state.load() or {}
    if saved:
        organization_data, seeded_from = saved["organization"], str(saved.get("seeded_from"))
    else:
        organization_data, seeded_from = load_organization_file(seed), str(Path(seed).resolve())
    taken_over = [] if read_only else _take_over_leases(saved, real_time=real_time)
    stack = StackState.from_dict(saved["stack"]) if saved.get("stack") else None
    delegated_stack = StackState.from_dict(saved["delegated_stack"]) if saved.get("delegated_stack") else None
    state.path.mkdir(parents=True, exist_ok=True)
    with (
        strict_aws(management_account=organization_data["management_account_id"]) as api_log,
        _handler_logs(state.log_file),
        contextlib.ExitStack() as stack_of_contexts,
    ):
        session = boto3.DEFAULT_SESSION = _new_session()
        timing = stack_of_contexts.enter_context(
            running(session, real_time=real_time, resume_at=float(saved.get("clock", 0.0)))
        )
        api_log.region_opt_seconds = REAL_TIME_REGION_OPT_SECONDS if real_time else REGION_OPT_SECONDS
        organization = Organization.from_mapping(organization_data, api_log)
        _restore_storage(session, saved, organization.management_account_id)
        world = World(organization, api_log, session, ApiCalls(session), stack, seeded_from, state, delegated_stack)
        world.history = list(saved.get("history", []))
        world.taken_over = taken_over
        world.timing = timing
        try:
            yield world
        finally:
            if not read_only:
                _save(world, saved, run)


# The service models (botocore's JSON files) every world's clients are made from, parsed once per
# process: a session's own loader parses each again, which cost a world ~0.1-0.3 s of its opening
# (the chaos run opens ~26 worlds per seed). The loader caches what it parsed; nothing changes it.
_service_models: list[botocore.loaders.Loader] = []  # the first session's loader, once there is one


def _new_session() -> boto3.Session:
    """A session of its own for a world (its clients, credentials and event handlers: those the
    simulated clock and strict_aws register go away with it) reading the process's service models."""
    core = botocore.session.get_session()
    if _service_models:
        core.register_component("data_loader", _service_models[0])
    session = boto3.Session(botocore_session=core)
    loader = core.get_component("data_loader")
    _service_models[:] = [loader]
    # boto3 adds its own folder of models to the loader's search path, once per session.
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


def _save(world: World, saved: dict[str, Any], run: Run | None) -> None:
    organization, session = world.organization, world.session
    management = organization.management_account_id
    stored = [*saved.get("s3", {}).values(), *saved.get("dynamodb", {}).values()]
    accounts = {management, *(item.get("account", management) for item in stored)}
    accounts.update(each.account for each in world.stacks())
    regions = {"us-east-1", *(table["region"] for table in saved.get("dynamodb", {}).values())}
    regions.update(each.region for each in world.stacks())
    clock = float(saved.get("clock", 0.0))  # the simulated wall clock resumes here (never goes back)
    if world.timing is not None:
        clock = max(clock, world.timing.clock.time())
    world.state.save(
        {
            "seeded_from": world.seeded_from,
            "clock": clock,
            "organization": organization.to_mapping(world.api_log),
            "history": world.history,
            **_storage_snapshot(session, sorted(accounts), regions),
            "stack": world.stack.to_dict() if world.stack is not None else None,
            "delegated_stack": world.delegated_stack.to_dict() if world.delegated_stack is not None else None,
            "written_by": None if run is None else asdict(run),
        }
    )


def _take_over_leases(saved: dict[str, Any], *, real_time: bool) -> list[str]:
    """Free the job leases in the saved state (see the module's description), in place; a line for
    each that had not yet expired at the time the run starts on (the simulated wall clock resumes
    where the last run's ended)."""
    now = time.time() if real_time else max(time.time(), float(saved.get("clock", 0.0)))
    writer = Run.from_dict(saved.get("written_by"))
    lines = []
    for bucket in saved.get("s3", {}).values():
        for key, body in bucket.get("objects", {}).items():
            if not (key.startswith(f"{JOB_PREFIX}/jobs/") and key.endswith(".json")):
                continue
            job = json.loads(base64.b64decode(body))
            held = job.pop(LEASE, None) if isinstance(job, dict) else None
            if not held:
                continue
            bucket["objects"][key] = base64.b64encode(json.dumps(job).encode()).decode()
            if float(held.get("until", 0)) > now:
                left = f"{held.get('until', 0) - now:.0f} s"
                by = f"run {writer}" if writer else "an earlier run"
                lines.append(
                    f"Took over job {job.get('id', key)}: its lease ({left} left) was held by {by}, "
                    "which is no longer running"
                )
    return lines


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
    items = table["items"]
    for start in range(0, len(items), BATCH_WRITE_ITEMS):  # one call per 25 items, not one per item
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_ITEMS]]
        while requests:
            left = dynamodb.batch_write_item(RequestItems={name: requests}).get("UnprocessedItems", {})
            requests = left.get(name, [])
