"""What CloudFormation and Lambda would do with the app's template, done here with the real handlers.

- **Order**: resources are created in dependency order (:func:`template.dependency_order`) and
  deleted in reverse. A custom resource gets Create, Update (with ``OldResourceProperties``) and
  Delete events; its properties arrive as strings. An Update that returns a new
  ``PhysicalResourceId`` is a replacement: the old ID gets a Delete, with the old properties, in the
  cleanup phase after every other change, as do resources the template no longer has.
- **Provider framework** (``aws_cdk.custom_resources.Provider``): the ``ServiceToken`` is the
  framework's function; its environment names the user's on-event and is-complete functions. The
  on-event result is merged into the event; is-complete is polled until ``IsComplete``, at most as
  often as the waiter state machine retries; ``Data`` is merged; a response over 4 KB fails.
- **Lambda**: a function is its ``Handler`` imported from the runtime package and called with a
  JSON copy of the event and a context whose remaining time counts down from its ``Timeout``, in
  its ``Environment`` (references resolved: the job bucket's and snapshot table's names) plus
  ``AWS_REGION`` and ``AWS_LAMBDA_FUNCTION_NAME``. Every invocation is a cold start (module caches
  cleared). An asynchronous ``lambda:Invoke`` of a function of the stack is queued and run once
  the resource has its answer.
- **Step Functions**: a ``StartExecution`` of a state machine of the stack (a contacts job
  continuing in its workflow past the deploy wait) is queued and, once the resource has its
  answer, its definition from the template is run (:mod:`simulation.workflow`: Retry, Catch,
  Choice, Wait) with the real handlers, in simulated time: waits and retry delays take none.
- **Accounts**: everything a stack's deploy or destroy does (its buckets and tables, its handlers'
  calls) comes from the stack's own account: the simulated caller is switched to it
  (:func:`simulation.organization.acting_as`), so the delegated administrator's stack runs as the
  delegated administrator.
- **Simulated resources**: S3 buckets and DynamoDB tables are created in the simulated account;
  IAM, logs and the other supporting resources are recorded with names and ARNs, not simulated.

A failure stops the run and leaves what was done (``cdk deploy --no-rollback``); the next deploy
picks up from there. Updates of buckets and tables are recorded, never replacements.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError

from local_deploy.stack import ResourceState, StackState
from local_deploy.template import Template, TemplateError, Unresolved, as_sent, dependency_order, is_custom, resolve
from simulation.organization import acting_as
from simulation.workflow import Executions

LOG = logging.getLogger("local_deploy.lambda")

CREATE, UPDATE, DELETE, RETAIN, NO_CHANGE = "Create", "Update", "Delete", "Retain", "No change"
PROVIDER_ON_EVENT = "framework.onEvent"  # the CDK Provider framework's entry point
USER_ON_EVENT, USER_IS_COMPLETE = "USER_ON_EVENT_FUNCTION_ARN", "USER_IS_COMPLETE_FUNCTION_ARN"
WAITER = "WAITER_STATE_MACHINE_ARN"
DEFAULT_MAX_POLLS = 360  # the Provider framework's defaults: 30 minutes, polled every 5 seconds
RESPONSE_LIMIT_BYTES = 4096  # CloudFormation refuses a larger custom-resource response
RESPONSE_URL = "https://local-deploy.invalid/cloudformation-response"  # never called: the framework answers

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
    phase: str  # deploy | cleanup | destroy
    physical_id: str = ""
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
class Result:
    status: str
    operations: list[Operation]

    @property
    def ok(self) -> bool:
        return all(operation.ok for operation in self.operations)

    @property
    def failure(self) -> Operation | None:
        return next((operation for operation in self.operations if not operation.ok), None)

    @property
    def invocations(self) -> int:
        return sum(operation.invocations for operation in self.operations)


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
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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

    def deploy(self, template: Template) -> Result:
        prefix = "UPDATE" if self.stack.deployed else "CREATE"
        old_order = self._deletion_order()
        old = dict(self.stack.resources)
        replaced: list[tuple[str, ResourceState]] = []
        operations: list[Operation] = []
        with self._in_stack_account(), self._lambda_service():
            try:
                for logical_id in template.creation_order():
                    action, _ = self._compare(template, logical_id)
                    if action == NO_CHANGE:
                        self.stack.resources[logical_id] = self._refreshed(template, logical_id)
                    else:
                        operations.append(self._apply(template, logical_id, action, replaced))
            except ResourceFailed as failure:
                operations.append(failure.operation)
                return self._finish(f"{prefix}_FAILED", operations, failure.operation)
            # Cleanup: replaced physical resources and removed ones, in reverse dependency order.
            # CloudFormation completes the update even when a cleanup delete fails.
            cleanup = replaced + [(lid, old[lid]) for lid in old_order if lid not in template.resources]
            for logical_id, state in sorted(cleanup, key=lambda item: old_order.index(item[0])):
                try:
                    operations.append(self._delete(logical_id, state, "cleanup"))
                except ResourceFailed as failure:
                    failure.operation.notes.append("CloudFormation completes the update and leaves it behind")
                    operations.append(failure.operation)
                if logical_id not in template.resources:
                    del self.stack.resources[logical_id]
        if not operations:  # CloudFormation: "No updates are to be performed"; the stack is as it was
            return Result(self.stack.status, operations)
        return self._finish(f"{prefix}_COMPLETE", operations)

    def destroy(self) -> Result:
        operations: list[Operation] = []
        with self._in_stack_account(), self._lambda_service():
            for logical_id in self._deletion_order():
                try:
                    operations.append(self._delete(logical_id, self.stack.resources[logical_id], "destroy"))
                except ResourceFailed as failure:
                    operations.append(failure.operation)
                    return self._finish("DELETE_FAILED", operations, failure.operation)
                del self.stack.resources[logical_id]
        return self._finish("DELETE_COMPLETE", operations)

    def _finish(self, status: str, operations: list[Operation], failed: Operation | None = None) -> Result:
        self.stack.status = status
        self.stack.status_reason = f"{failed.logical_id}: {failed.error}" if failed else ""
        return Result(status, operations)

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

    def _apply(
        self, template: Template, logical_id: str, action: str, replaced: list[tuple[str, ResourceState]]
    ) -> Operation:
        resource_type = template.type_of(logical_id)
        operation = Operation(action, logical_id, resource_type, "deploy")
        old = self.stack.resources.get(logical_id)
        with self._reported(operation):
            kept = is_custom(resource_type) or resource_type in RESOLVED
            properties = self._properties(template, logical_id) if kept else {}
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
                        replaced.append((logical_id, old))
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
        return operation

    def _delete(self, logical_id: str, state: ResourceState, phase: str) -> Operation:
        operation = Operation(RETAIN if state.retain else DELETE, logical_id, state.type, phase, state.physical_id)
        with self._reported(operation):
            if state.retain:
                operation.notes.append("DeletionPolicy Retain: left in place")
            elif is_custom(state.type):
                self._provider_request(operation, state.properties, physical_id=state.physical_id)
            elif state.type in SIMULATED:
                self._deprovision(state)
        return operation

    @contextlib.contextmanager
    def _reported(self, operation: Operation) -> Iterator[None]:
        """Tell the listener an operation started and finished, timing it; a failure fails the resource."""
        self.listener.started(operation)
        started = time.monotonic()
        try:
            yield
        except (ResourceError, TemplateError, ClientError, BotoCoreError) as error:
            operation.error = str(error)
            raise ResourceFailed(operation) from error
        finally:
            operation.seconds = time.monotonic() - started
            self.listener.finished(operation)

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
        if is_complete is not None:
            response = self._wait(operation, is_complete, response, self._max_polls(variables.get(WAITER)))
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
        self, operation: Operation, is_complete: ResourceState, event: dict[str, Any], max_polls: int
    ) -> dict[str, Any]:
        # The waiter state machine invokes is-complete at once, then retries up to MaxAttempts times.
        for poll in range(1, max_polls + 2):
            outcome = self._invoke(is_complete, event, operation) or {}
            self.listener.polled(operation, poll)
            if outcome.get("IsComplete"):
                return {**event, **outcome, "Data": {**(event.get("Data") or {}), **(outcome.get("Data") or {})}}
            if outcome.get("Data"):
                raise ResourceError('"Data" is not allowed if "IsComplete" is "False"')
        raise ResourceError(f"Operation timed out (is-complete still false after {max_polls + 1} polls)")

    def _max_polls(self, waiter_arn: str | None) -> int:
        machine = next(
            (
                state
                for state in self.stack.resources.values()
                if state.type == STATE_MACHINE and state.physical_id == waiter_arn
            ),
            None,
        )
        found = (
            re.search(r'"MaxAttempts"\s*:\s*(\d+)', str(machine.properties.get("DefinitionString", "")))
            if machine
            else None
        )
        return int(found.group(1)) if found else DEFAULT_MAX_POLLS

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
        environment = {
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
        started = time.monotonic()
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
            elapsed = time.monotonic() - started
            LOG.info("END RequestId: %s Duration: %.0f ms", context.aws_request_id, elapsed * 1000)
        if elapsed > seconds:
            raise ResourceError(f"Task timed out after {seconds:.2f} seconds ({function.physical_id})")
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as error:
            raise ResourceError(f"Runtime.MarshalError: the handler's result is not JSON ({error})") from error

    def _in_stack_account(self) -> contextlib.AbstractContextManager[Any]:
        """The simulated caller becomes the stack's account (a no-op outside the simulation)."""
        if "MOTO_ACCOUNT_ID" not in os.environ:
            return contextlib.nullcontext()
        return acting_as(self.stack.account)

    @contextlib.contextmanager
    def _lambda_service(self) -> Iterator[None]:
        """Lambda's asynchronous invocations and Step Functions' executions, for the handlers' clients."""
        stop = self.executions.register(self._session())
        try:
            with _Registration(self._session(), "before-call.lambda.Invoke", self._invoke_asynchronously):
                yield
        finally:
            stop()

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

        for execution in self.executions.run_pending(invoke, sleep=waited.append):
            outcome = execution.outcome
            assert outcome is not None
            batches = outcome.steps.count(outcome.steps[0])
            note = f"continued in its workflow: execution {execution.name} {outcome.status} after {batches} batch(es)"
            if outcome.error:
                note += f" ({outcome.error}: {outcome.cause}; the alarm fires, the next deploy resumes the job)"
            operation.notes.append(note + f", {sum(waited):.0f} s of waits and retry delays simulated")

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
