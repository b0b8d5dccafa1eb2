"""What CloudFormation and Lambda would do with the app's template, done here with the real handlers.

- **Order**: resources are created in dependency order (:func:`template.dependency_order`) and
  deleted in reverse. A custom resource gets Create, Update (with ``OldResourceProperties``) and
  Delete events; its properties arrive as strings. An Update that returns a new
  ``PhysicalResourceId`` is a replacement: the old ID gets a Delete, with the old properties, in the
  cleanup phase after every other change, as do resources the template no longer has.
- **Provider framework** (``aws_cdk.custom_resources.Provider``): the ``ServiceToken`` is the
  framework's function; its environment names the user's on-event and is-complete functions. The
  on-event result is merged into the event; is-complete is polled until ``IsComplete`` as the
  waiter state machine retries (``IntervalSeconds`` apart, on the runtime's clock, at most
  ``MaxAttempts`` times); ``Data`` is merged; a response over 4 KB fails.
- **Time**: every wait here and in the handlers is on the runtime's clock
  (:mod:`org_bootstrap.engine.clock`): simulated in the local tools (:mod:`local_deploy.simulated_time`),
  so an operation's ``seconds`` is what it takes at AWS's quotas.
- **Lambda**: a function is its ``Handler`` imported from the runtime package and called with a
  JSON copy of the event and a context whose remaining time counts down from its ``Timeout``, in
  its ``Environment`` (references resolved: the job bucket's and snapshot table's names) plus
  ``AWS_REGION`` and ``AWS_LAMBDA_FUNCTION_NAME``. Every invocation is a cold start (module caches
  cleared). An asynchronous ``lambda:Invoke`` of a function of the stack is queued and run once
  the resource has its answer.
- **Step Functions**: a ``StartExecution`` of a state machine of the stack (a contacts job
  continuing in its workflow past the deploy wait) is queued and, once the resource has its
  answer, its definition from the template is run (:mod:`simulation.workflow`: Retry, Catch,
  Choice, Wait) with the real handlers; its waits and retry delays are slept on the runtime's clock.
- **CloudFormation**: ``DescribeStacks`` of the stack gives its status as it changes (a handler
  reads it to tell a rollback's requests from others).
- **Accounts**: everything a stack's deploy or destroy does (its buckets and tables, its handlers'
  calls) comes from the stack's own account: the simulated caller is switched to it
  (:func:`simulation.organization.acting_as`), so the delegated administrator's stack runs as the
  delegated administrator.
- **Simulated resources**: S3 buckets and DynamoDB tables are created in the simulated account;
  IAM, logs and the other supporting resources are recorded with names and ARNs, not simulated.

**Rollback** (the default, as ``cdk deploy``): a failed Create (``ROLLBACK_IN_PROGRESS``) deletes
what was created, in reverse dependency order, the failed resource too (``ROLLBACK_COMPLETE``). A
failed Update (``UPDATE_ROLLBACK_IN_PROGRESS``) is an update back to the previous template, in its
dependency order: each resource changed in place, the failed one too, gets an Update whose
``ResourceProperties`` are its previous properties and ``OldResourceProperties`` the attempted ones,
with the physical ID it has; a replaced resource goes back to its previous physical ID without a
request. Then ``UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS`` deletes what the update created (new
resources, new physical IDs), and the stack record is the previous one again
(``UPDATE_ROLLBACK_COMPLETE``). A failed rollback step stops there: ``ROLLBACK_FAILED`` or
``UPDATE_ROLLBACK_FAILED``, after which, as in CloudFormation, the stack can only be destroyed; a
failed cleanup delete is left behind (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html).
The FAILED answer of the Provider framework keeps the request's physical ID, or on a failed Create
of on-event its marker, whose rollback Delete the framework answers without calling the handler.

Without rollback (``cdk deploy --no-rollback``), a failure stops the run and leaves what was done
(``CREATE_FAILED``, ``UPDATE_FAILED``); the next deploy picks up from there. Updates of buckets and
tables are recorded, never replacements.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError

from local_deploy.stack import ResourceState, StackState
from local_deploy.template import Template, TemplateError, Unresolved, as_sent, dependency_order, is_custom, resolve
from org_bootstrap.engine import clock as clocks
from simulation.organization import acting_as
from simulation.workflow import Executions

LOG = logging.getLogger("local_deploy.lambda")
# What the simulated world changes in a function's environment in real time (--real-time), unless
# its template sets it: the simulated organization's Regions are then ENABLED at the first read
# after the request, so following them every 15 s (the handlers' default, for AWS's minutes to
# hours) would only wait. On the simulated clock Regions take their time and the default stands.
SIMULATED_ENVIRONMENT = {"REGION_FOLLOW_SECONDS": "1"}

CREATE, UPDATE, DELETE, RETAIN, NO_CHANGE = "Create", "Update", "Delete", "Retain", "No change"
PROVIDER_ON_EVENT = "framework.onEvent"  # the CDK Provider framework's entry point
USER_ON_EVENT, USER_IS_COMPLETE = "USER_ON_EVENT_FUNCTION_ARN", "USER_IS_COMPLETE_FUNCTION_ARN"
WAITER = "WAITER_STATE_MACHINE_ARN"
DEFAULT_MAX_POLLS = 360  # the Provider framework's defaults: 30 minutes, polled every 5 seconds
DEFAULT_POLL_SECONDS = 5.0
RESPONSE_LIMIT_BYTES = 4096  # CloudFormation refuses a larger custom-resource response
RESPONSE_URL = "https://local-deploy.invalid/cloudformation-response"  # never called: the framework answers
# The physical ID of the Provider framework's FAILED answer to a Create whose on-event failed; the
# framework answers the rollback's Delete of it without calling the handler.
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
STACK_TYPE = "AWS::CloudFormation::Stack"
DEPLOY, CLEANUP, ROLLBACK, ROLLBACK_CLEANUP, DESTROY = "deploy", "cleanup", "rollback", "rollback cleanup", "destroy"
_VERB = {CREATE: "CREATE", UPDATE: "UPDATE", DELETE: "DELETE"}

BUCKET, TABLE, GLOBAL_TABLE = "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"
FUNCTION, STATE_MACHINE = "AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"
SIMULATED = (BUCKET, TABLE, GLOBAL_TABLE)
RESOLVED = (*SIMULATED, FUNCTION, STATE_MACHINE)  # their properties are resolved and kept
_NAME_PROPERTY = {
    BUCKET: "BucketName",
    TABLE: "TableName",
    GLOBAL_TABLE: "TableName",
    FUNCTION: "FunctionName",
    STATE_MACHINE: "StateMachineName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
}


def simulated(resource_type: str) -> bool:
    """Whether the local deploy does something for this type (the rest is recorded only)."""
    return is_custom(resource_type) or resource_type in SIMULATED


class ResourceError(Exception):
    """A resource operation failed the way CloudFormation would report it."""


@dataclass
class Change:
    action: str  # Create | Update | Delete | No change
    logical_id: str
    resource_type: str
    properties: list[str] = field(default_factory=list)  # what an Update changes

    @property
    def custom(self) -> bool:
        return is_custom(self.resource_type)


@dataclass
class Operation:
    action: str  # Create | Update | Delete | Retain
    logical_id: str
    resource_type: str
    phase: str  # deploy | cleanup | rollback | rollback cleanup | destroy
    physical_id: str = ""  # when failed: the one CloudFormation records from the FAILED answer
    properties: dict[str, Any] = field(default_factory=dict, repr=False)  # what the request carried
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    invocations: int = 0  # handler invocations: on-event, is-complete polls, asynchronous, workflow steps
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def custom(self) -> bool:
        return is_custom(self.resource_type)

    @property
    def simulated(self) -> bool:
        return simulated(self.resource_type)


@dataclass
class StackEvent:
    """One line of the stack's events, as CloudFormation writes them: the stack's status changes and
    each resource's ``<ACTION>_IN_PROGRESS`` and ``<ACTION>_COMPLETE`` (or ``_FAILED``, ``DELETE_SKIPPED``)."""

    logical_id: str
    resource_type: str
    status: str
    reason: str = ""
    physical_id: str = ""
    operation: Operation | None = field(default=None, repr=False, compare=False)  # a resource's

    @property
    def of_stack(self) -> bool:
        return self.resource_type == STACK_TYPE


@dataclass
class Result:
    status: str
    operations: list[Operation]
    events: list[StackEvent] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(operation.ok for operation in self.operations)

    @property
    def failure(self) -> Operation | None:
        """The failure that stopped the deploy (a rollback's own failure comes after it)."""
        return next((operation for operation in self.operations if not operation.ok), None)

    @property
    def invocations(self) -> int:
        return sum(operation.invocations for operation in self.operations)


class StackStateError(TemplateError):
    """The stack is in a state CloudFormation refuses the operation in."""


class ResourceFailed(Exception):
    def __init__(self, operation: Operation) -> None:
        super().__init__(f"{operation.logical_id} ({operation.resource_type}) {operation.action}: {operation.error}")
        self.operation = operation


class Listener:
    """What a progress display hears about; every method is optional."""

    def started(self, operation: Operation) -> None: ...

    def finished(self, operation: Operation) -> None: ...

    def polled(self, operation: Operation, polls: int) -> None: ...

    def on_event_returned(self, operation: Operation, function: ResourceState, result: dict[str, Any]) -> None: ...

    def stack_status(self, status: str, reason: str) -> None: ...


@dataclass
class _Attempt:
    """What a deploy changed, for its cleanup phase or its rollback."""

    before: dict[str, ResourceState]  # the stack's resources as the deploy found them
    old_order: list[str]  # their deletion order
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # in place
    replaced: list[str] = field(default_factory=list)  # a new physical ID; the old one is still there


@dataclass(frozen=True)
class Waiter:
    """The Provider framework's waiter state machine: how often it polls is-complete, how many times."""

    max_attempts: int
    interval: float
    backoff: float


class LambdaContext:
    """The context object a Python Lambda handler receives."""

    def __init__(self, name: str, arn: str, memory: int, seconds: float) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = clocks.monotonic() + seconds  # the runtime's clock: simulated locally

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - clocks.monotonic()) * 1000))


class LocalCloudFormation:
    def __init__(
        self,
        stack: StackState,
        session: boto3.Session | None = None,
        *,
        listener: Listener | None = None,
        invocation_seconds: float | None = None,
    ) -> None:
        """``session`` is where the handlers' clients come from (the simulated world's); only a
        change set needs none. ``invocation_seconds`` caps every invocation's time (default: each
        function's own Timeout), which makes long jobs run in more is-complete polls."""
        self.stack = stack
        self.session = session
        self.listener = listener or Listener()
        self.invocation_seconds = invocation_seconds
        self._background: list[tuple[ResourceState, dict[str, Any]]] = []
        self._events: list[StackEvent] = []
        self.executions = Executions(self._state_machines)

    # -- what a deploy would do ---------------------------------------------------------------

    def change_set(self, template: Template) -> list[Change]:
        changes = []
        for logical_id in template.creation_order():
            action, changed = self._compare(template, logical_id)
            changes.append(Change(action, logical_id, template.type_of(logical_id), changed))
        for logical_id in self._deletion_order():
            if logical_id not in template.resources:
                changes.append(Change(DELETE, logical_id, self.stack.resources[logical_id].type))
        return changes

    # -- doing it -----------------------------------------------------------------------------

    def deploy(self, template: Template, *, rollback: bool = True) -> Result:
        """Create or update the stack to ``template``; a failure is rolled back unless ``rollback``
        is False (``cdk deploy --no-rollback``)."""
        if self.stack.status in ("ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED"):
            reason = (self.stack.status_reason.splitlines() or [""])[0]
            raise StackStateError(
                f"stack {self.stack.name} is {self.stack.status} ({reason}) and cannot be updated; "
                "as in CloudFormation, destroy it (python -m local_deploy destroy) and deploy again"
            )
        self._events = []
        if all(change.action == NO_CHANGE for change in self.change_set(template)):
            for logical_id in template.creation_order():
                self.stack.resources[logical_id] = self._refreshed(template, logical_id)
            return Result(self.stack.status, [])  # CloudFormation: "No updates are to be performed"
        creating = not self.stack.deployed
        if creating and self.stack.status == "ROLLBACK_COMPLETE":
            self.stack.new_stack_id()  # cdk deploy deletes a rolled-back stack and creates it again
        prefix = "CREATE" if creating else "UPDATE"
        attempt = _Attempt(copy.deepcopy(self.stack.resources), self._deletion_order())
        operations: list[Operation] = []
        with self._in_stack_account(), self._lambda_service():
            self._status(f"{prefix}_IN_PROGRESS", "User Initiated")
            try:
                for logical_id in template.creation_order():
                    action, _ = self._compare(template, logical_id)
                    if action == NO_CHANGE:
                        self.stack.resources[logical_id] = self._refreshed(template, logical_id)
                    else:
                        operations.append(self._apply(template, logical_id, action, attempt))
            except ResourceFailed as failure:
                operations.append(failure.operation)
                if not rollback:
                    return self._finish(f"{prefix}_FAILED", operations, failure.operation)
                self._status(
                    f"{'' if creating else 'UPDATE_'}ROLLBACK_IN_PROGRESS",
                    f"The following resource(s) failed to {_VERB[failure.operation.action].lower()}: "
                    f"[{failure.operation.logical_id}].",
                )
                if creating:
                    return self._roll_back_create(template, operations, failure.operation)
                return self._roll_back_update(template, attempt, operations, failure.operation)
            # Cleanup: replaced physical resources and removed ones, in reverse dependency order.
            if not creating:
                self._status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
            old = attempt.before
            cleanup = [(lid, old[lid]) for lid in attempt.replaced]
            cleanup += [(lid, old[lid]) for lid in attempt.old_order if lid not in template.resources]
            operations += self._clean_up(sorted(cleanup, key=lambda item: attempt.old_order.index(item[0])), CLEANUP)
            for logical_id in old:
                if logical_id not in template.resources:
                    del self.stack.resources[logical_id]
        return self._finish(f"{prefix}_COMPLETE", operations)

    def _roll_back_create(self, template: Template, operations: list[Operation], failed: Operation) -> Result:
        """Delete what was created, the failed resource too, in reverse dependency order."""
        doomed = dict(self.stack.resources)
        if failed.custom:  # CloudFormation sends it a Delete with the physical ID of the FAILED answer
            doomed[failed.logical_id] = self._state(template, failed)
        for logical_id in reversed(template.creation_order()):
            if logical_id not in doomed:
                continue
            try:
                operations.append(self._delete(logical_id, doomed[logical_id], ROLLBACK))
            except ResourceFailed as failure:
                operations.append(failure.operation)
                return self._finish("ROLLBACK_FAILED", operations, failure.operation)
            self.stack.resources.pop(logical_id, None)
        return self._finish("ROLLBACK_COMPLETE", operations, failed)

    def _roll_back_update(
        self, template: Template, attempt: _Attempt, operations: list[Operation], failed: Operation
    ) -> Result:
        """Update back to the previous template, then delete what the update created."""
        before, lid = attempt.before, failed.logical_id
        created = [(name, self.stack.resources[name]) for name in attempt.created]
        replacements = [(name, self.stack.resources[name]) for name in attempt.replaced]
        if failed.action == CREATE and failed.custom:
            created.append((lid, self._state(template, failed)))
        elif failed.action == UPDATE and failed.physical_id != before[lid].physical_id:
            replacements.append((lid, self._state(template, failed)))  # the FAILED answer named a new one
        elif failed.action == UPDATE:
            self.stack.resources[lid] = self._state(template, failed)  # the attempted properties
            attempt.updated.append(lid)
        leftovers: list[tuple[str, ResourceState]] = []
        try:
            for logical_id in reversed(attempt.old_order):  # the previous template's dependency order
                if logical_id in attempt.updated:
                    operations.append(self._restore(logical_id, before[logical_id], leftovers))
                elif logical_id in attempt.replaced:
                    self.stack.resources[logical_id] = before[logical_id]  # the old one is still there
        except ResourceFailed as failure:
            operations.append(failure.operation)
            return self._finish("UPDATE_ROLLBACK_FAILED", operations, failure.operation)
        for logical_id, state in before.items():  # the rest as the previous template has them
            if logical_id not in attempt.updated:
                self.stack.resources[logical_id] = state
        self._status("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        order = template.creation_order()
        doomed = sorted(created + replacements, key=lambda item: order.index(item[0]), reverse=True)
        operations += self._clean_up([*leftovers, *doomed], ROLLBACK_CLEANUP)
        for logical_id, _ in created:
            self.stack.resources.pop(logical_id, None)
        return self._finish("UPDATE_ROLLBACK_COMPLETE", operations, failed)

    def _clean_up(self, doomed: list[tuple[str, ResourceState]], phase: str) -> list[Operation]:
        """Deletes of a cleanup phase. CloudFormation completes the update (or its rollback) even
        when one fails, and leaves that physical resource behind."""
        operations = []
        for logical_id, state in doomed:
            try:
                operations.append(self._delete(logical_id, state, phase))
            except ResourceFailed as failure:
                failure.operation.notes.append("CloudFormation completes the stack operation and leaves it behind")
                operations.append(failure.operation)
        return operations

    def destroy(self) -> Result:
        self._events = []
        operations: list[Operation] = []
        with self._in_stack_account(), self._lambda_service():
            self._status("DELETE_IN_PROGRESS", "User Initiated")
            for logical_id in self._deletion_order():
                try:
                    operations.append(self._delete(logical_id, self.stack.resources[logical_id], DESTROY))
                except ResourceFailed as failure:
                    operations.append(failure.operation)
                    return self._finish("DELETE_FAILED", operations, failure.operation)
                del self.stack.resources[logical_id]
        return self._finish("DELETE_COMPLETE", operations)

    def invoke(self, logical_id: str, payload: dict[str, Any], *, trigger: str) -> tuple[Any, Operation]:
        """Run one function of the stack as its trigger would (an SQS batch, a schedule), outside any
        deploy: in the stack's account, then whatever it queued to run in the background.
        Raises :class:`ResourceError` when the invocation fails (what the trigger would retry)."""
        operation = Operation("Invoke", logical_id, FUNCTION, trigger, self.stack.resources[logical_id].physical_id)
        with self._in_stack_account(), self._lambda_service():
            result = self._invoke(self.stack.resources[logical_id], payload, operation)
            self._run_background(operation)
        return result, operation

    def _status(self, status: str, reason: str = "") -> None:
        self.stack.status = status
        self._events.append(StackEvent(self.stack.name, STACK_TYPE, status, reason, self.stack.stack_id))
        self.listener.stack_status(status, reason)

    def _finish(self, status: str, operations: list[Operation], failed: Operation | None = None) -> Result:
        self._status(status)
        self.stack.status_reason = f"{failed.logical_id}: {failed.error}" if failed else ""
        return Result(status, operations, list(self._events))

    # -- one resource -------------------------------------------------------------------------

    def _compare(self, template: Template, logical_id: str) -> tuple[str, list[str]]:
        existing = self.stack.resources.get(logical_id)
        if existing is None:
            return CREATE, []
        resource_type = template.type_of(logical_id)
        if resource_type != existing.type:
            raise TemplateError(
                f"{logical_id}: changing its type from {existing.type} to {resource_type} is not supported"
            )
        if is_custom(resource_type) or resource_type in RESOLVED:
            try:
                new = self._properties(template, logical_id)
            except Unresolved:
                return UPDATE, ["(known after deploy)"]
            keys = sorted(set(new) | set(existing.properties))
            changed = [key for key in keys if new.get(key) != existing.properties.get(key)]
            return (UPDATE, changed) if changed else (NO_CHANGE, [])
        return (UPDATE, []) if _definition(template, logical_id) != existing.definition else (NO_CHANGE, [])

    def _properties(self, template: Template, logical_id: str) -> dict[str, Any]:
        resolved = resolve(template.properties(logical_id), ref=self._ref(template), get_att=self._get_att)
        return as_sent(resolved) if is_custom(template.type_of(logical_id)) else resolved

    def _refreshed(self, template: Template, logical_id: str) -> ResourceState:
        state = self.stack.resources[logical_id]
        state.depends_on = sorted(template.dependencies(logical_id))
        state.retain = template.retained(logical_id)
        state.definition = _definition(template, logical_id)
        return state

    def _apply(self, template: Template, logical_id: str, action: str, attempt: _Attempt) -> Operation:
        resource_type = template.type_of(logical_id)
        old = self.stack.resources.get(logical_id)
        operation = Operation(action, logical_id, resource_type, DEPLOY, old.physical_id if old else "")
        with self._reported(operation):
            kept = is_custom(resource_type) or resource_type in RESOLVED
            properties = self._properties(template, logical_id) if kept else {}
            operation.properties = properties
            if is_custom(resource_type):
                if old is None:
                    physical_id, attributes = self._provider_request(operation, properties)
                else:
                    if properties.get("ServiceToken") != old.properties.get("ServiceToken"):
                        raise ResourceError("Modifying service token is not allowed.")
                    physical_id, attributes = self._provider_request(
                        operation, properties, physical_id=old.physical_id, old_properties=old.properties
                    )
                    if physical_id != old.physical_id:
                        operation.notes.append("a new physical ID: the old one is deleted in the cleanup phase")
            elif old is None:
                physical_id, attributes = self._name(
                    logical_id, resource_type, properties or template.properties(logical_id)
                )
                if resource_type in SIMULATED:
                    self._provision(resource_type, physical_id, properties)
            else:
                physical_id, attributes = old.physical_id, old.attributes
            operation.physical_id = physical_id
            operation.data = attributes if is_custom(resource_type) else {}
            self.stack.resources[logical_id] = ResourceState(
                type=resource_type,
                physical_id=physical_id,
                properties=properties,
                attributes=attributes,
                depends_on=sorted(template.dependencies(logical_id)),
                retain=template.retained(logical_id),
                definition=_definition(template, logical_id),
            )
        if old is None:
            attempt.created.append(logical_id)
        elif operation.physical_id != old.physical_id:
            attempt.replaced.append(logical_id)
        else:
            attempt.updated.append(logical_id)
        return operation

    def _state(self, template: Template, failed: Operation) -> ResourceState:
        """What CloudFormation records of a resource whose request failed: the physical ID of the
        FAILED answer, and the properties the request carried."""
        logical_id = failed.logical_id
        previous = self.stack.resources.get(logical_id)
        return ResourceState(
            type=failed.resource_type,
            physical_id=failed.physical_id,
            properties=failed.properties,
            attributes=previous.attributes if previous and previous.physical_id == failed.physical_id else {},
            depends_on=sorted(template.dependencies(logical_id)),
            retain=template.retained(logical_id),
            definition=_definition(template, logical_id),
        )

    def _restore(
        self, logical_id: str, previous: ResourceState, leftovers: list[tuple[str, ResourceState]]
    ) -> Operation:
        """Update a resource back to its previous properties (a custom resource: an Update event
        whose OldResourceProperties are the attempted ones, with the physical ID it has)."""
        current = self.stack.resources[logical_id]
        operation = Operation(UPDATE, logical_id, previous.type, ROLLBACK, current.physical_id)
        with self._reported(operation):
            physical_id, attributes = previous.physical_id, previous.attributes
            if is_custom(previous.type):
                operation.properties = previous.properties
                physical_id, attributes = self._provider_request(
                    operation, previous.properties, physical_id=current.physical_id, old_properties=current.properties
                )
                operation.data = attributes
                if physical_id != current.physical_id:  # a replacement, in the rollback: the other one goes
                    leftovers.append((logical_id, current))
                    operation.notes.append("a new physical ID: the one it had is deleted in the cleanup phase")
            operation.physical_id = physical_id
            self.stack.resources[logical_id] = dataclasses.replace(
                previous, physical_id=physical_id, attributes=attributes
            )
        return operation

    def _delete(self, logical_id: str, state: ResourceState, phase: str) -> Operation:
        operation = Operation(RETAIN if state.retain else DELETE, logical_id, state.type, phase, state.physical_id)
        operation.properties = state.properties
        with self._reported(operation):
            if state.retain:
                operation.notes.append("DeletionPolicy Retain: left in place")
            elif is_custom(state.type):  # the handler's answer (a contacts job's counts) is the result
                _, operation.data = self._provider_request(operation, state.properties, physical_id=state.physical_id)
            elif state.type in SIMULATED:
                self._deprovision(state)
        return operation

    @contextlib.contextmanager
    def _reported(self, operation: Operation) -> Iterator[None]:
        """Tell the listener an operation started and finished, timing it, and write its events; a
        failure fails the resource."""
        verb = "DELETE_SKIPPED" if operation.action == RETAIN else _VERB[operation.action]
        if operation.action != RETAIN:
            self._event(operation, f"{verb}_IN_PROGRESS")
        self.listener.started(operation)
        started = clocks.monotonic()
        try:
            yield
        except (ResourceError, TemplateError, ClientError, BotoCoreError) as error:
            operation.error = str(error)
            raise ResourceFailed(operation) from error
        finally:
            operation.seconds = clocks.monotonic() - started
            if operation.action == RETAIN:
                self._event(operation, verb)
            else:
                self._event(operation, f"{verb}_FAILED" if operation.error else f"{verb}_COMPLETE")
            self.listener.finished(operation)

    def _event(self, operation: Operation, status: str) -> None:
        reason = operation.error.splitlines()[0] if operation.error and status.endswith("_FAILED") else ""
        self._events.append(
            StackEvent(operation.logical_id, operation.resource_type, status, reason, operation.physical_id, operation)
        )

    # -- the Provider framework ---------------------------------------------------------------

    def _provider_request(
        self,
        operation: Operation,
        properties: dict[str, Any],
        *,
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        request = operation.action
        # A FAILED answer carries the request's physical ID, or (a Create) the framework's marker.
        operation.physical_id = physical_id if physical_id is not None else CREATE_FAILED_MARKER
        if request == DELETE and physical_id == CREATE_FAILED_MARKER:
            operation.notes.append("the Provider framework answers the Delete of a failed Create without the handler")
            return physical_id, {}
        framework = self._function(properties.get("ServiceToken"), operation.logical_id)
        if framework.properties.get("Handler") != PROVIDER_ON_EVENT:
            raise ResourceError(
                f"its ServiceToken is {framework.physical_id}, not a CDK Provider framework function "
                "(the only custom-resource provider the local deploy runs)"
            )
        variables = framework.properties.get("Environment", {}).get("Variables", {})
        on_event = self._function(variables.get(USER_ON_EVENT), operation.logical_id)
        is_complete = (
            self._function(variables[USER_IS_COMPLETE], operation.logical_id) if USER_IS_COMPLETE in variables else None
        )
        event: dict[str, Any] = {
            "RequestType": request,
            "ServiceToken": properties["ServiceToken"],
            "ResponseURL": RESPONSE_URL,
            "StackId": self.stack.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": operation.logical_id,
            "ResourceType": operation.resource_type,
            "ResourceProperties": properties,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        result = self._invoke(on_event, event, operation) or {}
        if not isinstance(result, dict):
            raise ResourceError(f"on-event returned {type(result).__name__}, not an object")
        self.listener.on_event_returned(operation, on_event, result)
        new_id = result.get("PhysicalResourceId") or (event["RequestId"] if request == CREATE else physical_id)
        if request == DELETE and new_id != physical_id:
            raise ResourceError(
                f'DELETE: cannot change the physical resource ID from "{physical_id}" to "{new_id}" during deletion'
            )
        response = {**event, **result, "PhysicalResourceId": new_id}
        operation.physical_id = str(new_id)  # is-complete's events (and a FAILED answer) carry it from now on
        if is_complete is not None:
            response = self._wait(operation, is_complete, response, self._waiter(variables.get(WAITER)))
        self._run_background(operation)
        data = dict(response.get("Data") or {})
        answer = {
            "Status": "SUCCESS",
            "Reason": "OK",
            "PhysicalResourceId": response["PhysicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": operation.logical_id,
            "NoEcho": False,
            "Data": data,
        }
        if len(json.dumps(answer)) > RESPONSE_LIMIT_BYTES:
            raise ResourceError(f"Response object is too long ({len(json.dumps(answer))} bytes, limit 4096).")
        return str(response["PhysicalResourceId"]), data

    def _wait(
        self, operation: Operation, is_complete: ResourceState, event: dict[str, Any], waiter: Waiter
    ) -> dict[str, Any]:
        # The waiter state machine invokes is-complete at once, then retries up to MaxAttempts times,
        # IntervalSeconds apart (times BackoffRate after each), on the runtime's clock.
        max_polls = waiter.max_attempts
        for poll in range(1, max_polls + 2):
            if poll > 1:
                clocks.sleep(waiter.interval * waiter.backoff ** (poll - 2))
            outcome = self._invoke(is_complete, event, operation) or {}
            self.listener.polled(operation, poll)
            if outcome.get("IsComplete"):
                return {**event, **outcome, "Data": {**(event.get("Data") or {}), **(outcome.get("Data") or {})}}
            if outcome.get("Data"):
                raise ResourceError('"Data" is not allowed if "IsComplete" is "False"')
        raise ResourceError(f"Operation timed out (is-complete still false after {max_polls + 1} polls)")

    def _waiter(self, waiter_arn: str | None) -> Waiter:
        machine = next(
            (
                state
                for state in self.stack.resources.values()
                if state.type == STATE_MACHINE and state.physical_id == waiter_arn
            ),
            None,
        )
        definition = str(machine.properties.get("DefinitionString", "")) if machine else ""

        def number(name: str, default: float) -> float:
            found = re.search(rf'"{name}"\s*:\s*([0-9.]+)', definition)
            return float(found.group(1)) if found else default

        return Waiter(
            int(number("MaxAttempts", DEFAULT_MAX_POLLS)),
            number("IntervalSeconds", DEFAULT_POLL_SECONDS),
            number("BackoffRate", 1.0),
        )

    def _function(self, arn: Any, logical_id: str) -> ResourceState:
        for state in self.stack.resources.values():
            if state.type == FUNCTION and arn in (state.attributes.get("Arn"), state.physical_id):
                return state
        raise ResourceError(f"{logical_id}: no Lambda function {arn} in the stack")

    # -- Lambda -------------------------------------------------------------------------------

    def _invoke(self, function: ResourceState, payload: dict[str, Any], operation: Operation) -> Any:
        properties = function.properties
        runtime = str(properties.get("Runtime", ""))
        if not runtime.startswith("python"):
            raise ResourceError(
                f"{function.physical_id} runs {runtime or 'no runtime'}; only Python handlers run locally"
            )
        module_name, _, attribute = str(properties.get("Handler", "")).rpartition(".")
        timeout = float(properties.get("Timeout", 3))
        seconds = min(timeout, self.invocation_seconds) if self.invocation_seconds else timeout
        memory = int(properties.get("MemorySize", 128))
        variables = {key: str(value) for key, value in properties.get("Environment", {}).get("Variables", {}).items()}
        variables = self._with_layers(function, variables)
        environment = {
            **(SIMULATED_ENVIRONMENT if clocks.installed() is clocks.REAL else {}),
            **variables,
            "AWS_LAMBDA_FUNCTION_NAME": function.physical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_REGION": self.stack.region,
            "AWS_DEFAULT_REGION": self.stack.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        }
        context = LambdaContext(function.physical_id, str(function.attributes.get("Arn", "")), memory, seconds)
        _cold_start(module_name)
        LOG.info(
            "START RequestId: %s Function: %s (%s)", context.aws_request_id, function.physical_id, operation.logical_id
        )
        started = clocks.monotonic()
        operation.invocations += 1
        try:
            with mock.patch.dict(os.environ, environment):
                try:
                    handler = getattr(importlib.import_module(module_name), attribute)
                except (ImportError, AttributeError, ValueError) as error:
                    handler_name = properties.get("Handler")
                    raise ResourceError(f"Runtime.ImportModuleError: handler {handler_name!r}: {error}") from error
                try:
                    result = handler(json.loads(json.dumps(payload)), context)
                except Exception as error:  # the Provider framework answers FAILED with the message
                    LOG.exception("handler %s failed", properties.get("Handler"))
                    raise ResourceError(f"{type(error).__name__}: {error}") from error
        finally:
            elapsed = clocks.monotonic() - started
            LOG.info("END RequestId: %s Duration: %.0f ms", context.aws_request_id, elapsed * 1000)
        if elapsed > seconds:
            raise ResourceError(f"Task timed out after {seconds:.2f} seconds ({function.physical_id})")
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as error:
            raise ResourceError(f"Runtime.MarshalError: the handler's result is not JSON ({error})") from error

    def _with_layers(self, function: ResourceState, variables: dict[str, str]) -> dict[str, str]:
        """Lambda mounts a function's layers at /opt: here their recorded files go to a folder of
        their own, and the environment's /opt paths point there."""
        names = {str(name) for name in function.properties.get("Layers", [])}
        layers = [
            files
            for logical_id, files in self.stack.layers.items()
            if self.stack.resources.get(logical_id) and self.stack.resources[logical_id].physical_id in names
        ]
        if not layers:
            return variables
        content = json.dumps(layers, sort_keys=True)
        folder = Path(tempfile.gettempdir()) / f"local-deploy-opt-{hashlib.sha256(content.encode()).hexdigest()[:16]}"
        for files in layers:
            for relative, text in files.items():
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                (folder / relative).write_text(text, encoding="utf-8")
        mounted = str(folder)
        return {key: mounted + value[4:] if value.startswith("/opt/") else value for key, value in variables.items()}

    def _in_stack_account(self) -> contextlib.AbstractContextManager[Any]:
        """The simulated caller becomes the stack's account (a no-op outside the simulation)."""
        if "MOTO_ACCOUNT_ID" not in os.environ:
            return contextlib.nullcontext()
        return acting_as(self.stack.account)

    @contextlib.contextmanager
    def _lambda_service(self) -> Iterator[None]:
        """Lambda's asynchronous invocations, Step Functions' executions, and CloudFormation's answer
        to the handlers' reading of their own stack's status, for the handlers' clients."""
        session = self._session()
        stop = self.executions.register(session)
        try:
            with (
                _Registration(session, "before-call.lambda.Invoke", self._invoke_asynchronously),
                _Registration(session, "before-call.cloudformation.DescribeStacks", self._describe_stack),
            ):
                yield
        finally:
            stop()

    def _describe_stack(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """botocore hook: DescribeStacks of this stack (by ID or name) gives its current status."""
        body = params.get("body")
        name = body.get("StackName") if isinstance(body, dict) else None
        if name not in (self.stack.stack_id, self.stack.name):
            return None
        stack = {"StackId": self.stack.stack_id, "StackName": self.stack.name, "StackStatus": self.stack.status}
        return AWSResponse(str(params.get("url", "")), 200, {}, None), {"Stacks": [stack]}

    def _state_machines(self) -> dict[str, dict[str, Any]]:
        return {
            state.physical_id: json.loads(str(state.properties["DefinitionString"]))
            for state in self.stack.resources.values()
            if state.type == STATE_MACHINE and isinstance(state.properties.get("DefinitionString"), str)
        }

    def _session(self) -> boto3.Session:
        if self.session is None:
            raise RuntimeError("deploying needs the boto3 session the handlers' clients come from")
        return self.session

    def _invoke_asynchronously(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """botocore hook: queue an asynchronous invocation of a function of the stack."""
        if params.get("headers", {}).get("X-Amz-Invocation-Type") != "Event":
            return None
        name = unquote(str(params.get("url_path", "")).split("/functions/", 1)[-1].split("/", 1)[0])
        function = next(
            (
                state
                for state in self.stack.resources.values()
                if state.type == FUNCTION and name in (state.physical_id, state.attributes.get("Arn"))
            ),
            None,
        )
        if function is None:
            return None
        self._background.append((function, json.loads(params.get("body") or b"{}")))
        return AWSResponse(str(params.get("url", "")), 202, {}, None), {"StatusCode": 202}

    def _run_background(self, operation: Operation) -> None:
        ran = 0
        while self._background:
            function, payload = self._background.pop(0)
            ran += 1
            try:
                self._invoke(function, payload, operation)
            except ResourceError as error:  # CloudFormation already has its answer
                operation.notes.append(f"background invocation {ran} failed: {error}")
        if ran:
            operation.notes.append(f"continued in the background: {ran} invocation(s)")
        waited: list[float] = []

        def invoke(arn: str, payload: dict[str, Any]) -> Any:
            return self._invoke(self._function(arn, operation.logical_id), payload, operation)

        def sleep(seconds: float) -> None:
            waited.append(seconds)
            clocks.sleep(seconds)

        for execution in self.executions.run_pending(invoke, sleep=sleep):
            outcome = execution.outcome
            assert outcome is not None
            batches = outcome.steps.count(outcome.steps[0])
            note = f"continued in its workflow: execution {execution.name} {outcome.status} after {batches} batch(es)"
            if outcome.error:
                note += f" ({outcome.error}: {outcome.cause}; the alarm fires, the next deploy resumes the job)"
            operation.notes.append(note + f", {sum(waited):.0f} s of waits and retry delays")

    # -- names and simulated resources ------------------------------------------------------

    def _ref(self, template: Template) -> Any:
        pseudo = {
            "AWS::AccountId": self.stack.account,
            "AWS::Region": self.stack.region,
            "AWS::Partition": self.stack.partition,
            "AWS::StackName": self.stack.name,
            "AWS::StackId": self.stack.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }

        def ref(name: str) -> Any:
            if name in pseudo:
                return pseudo[name]
            if name in template.parameters:
                return template.parameters[name].get("Default", "")
            if name not in self.stack.resources:
                raise Unresolved(name)
            return self.stack.resources[name].physical_id

        return ref

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        state = self.stack.resources.get(logical_id)
        if state is None:
            raise Unresolved(logical_id)
        if attribute in state.attributes:
            return state.attributes[attribute]
        if is_custom(state.type):
            raise ResourceError(f"CustomResource attribute error: Vendor response doesn't contain {attribute} key")
        # An attribute of a resource that is only recorded (a queue's URL, a topic's name): a
        # placeholder, so that a function referencing it still deploys; no handler reads these.
        return f"local-deploy:not-simulated:{logical_id}.{attribute}"

    def _name(self, logical_id: str, resource_type: str, properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A physical name the way CloudFormation makes one (``<stack>-<logical id>-<suffix>``), and
        the ARNs that ``Fn::GetAtt`` reads."""
        explicit = properties.get(_NAME_PROPERTY.get(resource_type, ""))
        suffix = hashlib.sha256(f"{self.stack.stack_id}/{logical_id}".encode()).hexdigest()[:12].upper()
        if isinstance(explicit, str):
            name = explicit
        elif resource_type == BUCKET:
            name = f"{self.stack.name}-{logical_id}"[:50].lower() + "-" + suffix.lower()
        else:
            name = f"{self.stack.name}-{logical_id}"[:51] + "-" + suffix
        partition, region, account = self.stack.partition, self.stack.region, self.stack.account
        if resource_type == FUNCTION:
            return name, {"Arn": f"arn:{partition}:lambda:{region}:{account}:function:{name}"}
        if resource_type == STATE_MACHINE:
            arn = f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"
            return arn, {"Arn": arn, "Name": name}
        if resource_type == BUCKET:
            return name, {"Arn": f"arn:{partition}:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}
        if resource_type in (TABLE, GLOBAL_TABLE):
            return name, {"Arn": f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"}
        if resource_type == "AWS::IAM::Role":
            return name, {"Arn": f"arn:{partition}:iam::{account}:role/{name}", "RoleId": f"AROA{suffix}"}
        if resource_type == "AWS::SNS::Topic":  # Ref of a topic is its ARN
            arn = f"arn:{partition}:sns:{region}:{account}:{name}"
            return arn, {"TopicArn": arn, "TopicName": name}
        if resource_type == "AWS::Logs::LogGroup":
            return name, {"Arn": f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*"}
        service = resource_type.split("::")[1].lower()
        return name, {"Arn": f"arn:{partition}:{service}:{region}:{account}:{name}"}

    def _provision(self, resource_type: str, name: str, properties: dict[str, Any]) -> None:
        region = self.stack.region
        if resource_type == BUCKET:
            location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            self._session().client("s3", region_name=region).create_bucket(Bucket=name, **location)
            return
        throughput = {}
        if properties.get("BillingMode") == "PROVISIONED":
            throughput = {"ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}
        self._session().client("dynamodb", region_name=region).create_table(
            TableName=name,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
            **throughput,
        )

    def _deprovision(self, state: ResourceState) -> None:
        if state.type == BUCKET:  # fails when the bucket is not empty, as CloudFormation's delete does
            self._session().client("s3", region_name=self.stack.region).delete_bucket(Bucket=state.physical_id)
        else:
            self._session().client("dynamodb", region_name=self.stack.region).delete_table(TableName=state.physical_id)

    def _deletion_order(self) -> list[str]:
        resources = self.stack.resources
        declared = {logical_id: index for index, logical_id in enumerate(resources)}
        order = dependency_order(resources, lambda lid: set(resources[lid].depends_on) & set(resources), declared)
        return list(reversed(order))


class _Registration:
    """A botocore event handler, registered for the duration of a ``with`` block."""

    def __init__(self, session: boto3.Session, event: str, handler: Any) -> None:
        self.session, self.event, self.handler = session, event, handler

    def __enter__(self) -> None:
        self.session.events.register(self.event, self.handler)

    def __exit__(self, *_: object) -> None:
        self.session.events.unregister(self.event, self.handler)


def _definition(template: Template, logical_id: str) -> str:
    return hashlib.sha256(json.dumps(template.resources[logical_id], sort_keys=True).encode()).hexdigest()


def _cold_start(module_name: str) -> None:
    """A fresh Lambda container: forget what the handler's package cached at module level (clients)."""
    package = module_name.split(".", 1)[0]
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(f"{package}."):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()


def operations_of(result: Result, *, simulated_only: bool = True) -> Iterator[Operation]:
    return (operation for operation in result.operations if operation.simulated or not simulated_only)
