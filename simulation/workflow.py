"""Step Functions state machines run here: the states the app's workflows use, as AWS runs them.

:func:`run` executes an Amazon States Language definition with a callable standing in for the
Lambda functions its Task states invoke (``payload_response_only`` tasks: the Resource is the
function's ARN). Task (Parameters with ``.$`` paths, ResultPath, Retry with IntervalSeconds,
BackoffRate, MaxAttempts and MaxDelaySeconds, Catch), Choice (BooleanEquals, And), Wait (Seconds),
Succeed and Fail; anything else is refused, so a workflow this cannot run fails loudly.
Waits and retry delays go to ``sleep`` (simulated time in tests and the local deploy).

:class:`Executions` answers StartExecution and DescribeExecution the way Step Functions does
(an execution's name is unique per state machine; the same name and input again while it runs is
the same execution), through botocore hooks on a session, and runs what was started on demand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

Invoke = Callable[[str, dict[str, Any]], Any]  # (function ARN, payload) -> result; raises on error
RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"
ALL_ERRORS = "States.ALL"


class WorkflowError(Exception):
    """The definition uses something this runner does not run."""


@dataclass
class Outcome:
    status: str
    output: Any = None
    error: str = ""
    cause: str = ""
    steps: list[str] = field(default_factory=list)  # the states entered, in order


def run(definition: dict[str, Any], data: Any, invoke: Invoke, *, sleep: Callable[[float], None]) -> Outcome:
    states = definition["States"]
    name = definition["StartAt"]
    outcome = Outcome(RUNNING)
    for _ in range(100_000):
        state = states[name]
        outcome.steps.append(name)
        kind = state["Type"]
        if kind == "Succeed":
            outcome.status, outcome.output = SUCCEEDED, data
            return outcome
        if kind == "Fail":
            outcome.status, outcome.error, outcome.cause = FAILED, state.get("Error", ""), state.get("Cause", "")
            return outcome
        if kind == "Wait":
            sleep(float(state["Seconds"]))
        elif kind == "Choice":
            name = next((c["Next"] for c in state["Choices"] if _holds(c, data)), state.get("Default", ""))
            if not name:
                outcome.status, outcome.error = FAILED, "States.NoChoiceMatched"
                return outcome
            continue
        elif kind == "Task":
            try:
                result = _task(state, data, invoke, sleep)
            except _TaskFailed as failure:
                catcher = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], failure.error)), None)
                if catcher is None:
                    outcome.status, outcome.error, outcome.cause = FAILED, failure.error, failure.cause
                    return outcome
                data = _put(data, catcher.get("ResultPath", "$"), {"Error": failure.error, "Cause": failure.cause})
                name = catcher["Next"]
                continue
            data = _put(data, state.get("ResultPath", "$"), result)
        else:
            raise WorkflowError(f"state {name}: type {kind} is not run locally")
        if state.get("End"):
            outcome.status, outcome.output = SUCCEEDED, data
            return outcome
        name = state["Next"]
    raise WorkflowError("the execution did not end within 100,000 states")


class _TaskFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


def _task(state: dict[str, Any], data: Any, invoke: Invoke, sleep: Callable[[float], None]) -> Any:
    resource = str(state["Resource"])
    if not resource.startswith("arn:") or ":lambda:" not in resource:
        raise WorkflowError(f"task resource {resource}: only Lambda functions (payload_response_only) run locally")
    payload = _parameters(state.get("Parameters", {}), data)
    attempts: dict[int, int] = {}
    while True:
        try:
            return invoke(resource, payload)
        except Exception as error:  # a function error: its type is the error name, as Lambda reports it
            failure = _TaskFailed(type(error).__name__, str(error))
        index = next(
            (i for i, r in enumerate(state.get("Retry", [])) if _matches(r["ErrorEquals"], failure.error)), None
        )
        if index is None:
            raise failure
        retrier = state["Retry"][index]
        done = attempts.get(index, 0)
        if done >= int(retrier.get("MaxAttempts", 3)):
            raise failure
        attempts[index] = done + 1
        delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** done
        sleep(min(delay, float(retrier.get("MaxDelaySeconds", delay))))


def _matches(errors: list[str], error: str) -> bool:
    return ALL_ERRORS in errors or error in errors


def _holds(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(_holds(part, data) for part in rule["And"])
    if "BooleanEquals" in rule:
        return _get(data, rule["Variable"]) is rule["BooleanEquals"]
    raise WorkflowError(f"choice rule {sorted(rule)} is not run locally")


def _parameters(template: dict[str, Any], data: Any) -> dict[str, Any]:
    return {
        (key[:-2] if key.endswith(".$") else key): (_get(data, value) if key.endswith(".$") else value)
        for key, value in template.items()
    }


def _path(path: str) -> list[str]:
    if path == "$":
        return []
    if not path.startswith("$."):
        raise WorkflowError(f"path {path}: only $.a.b paths run locally")
    return path[2:].split(".")


def _get(data: Any, path: str) -> Any:
    for part in _path(path):
        if not isinstance(data, dict) or part not in data:
            raise WorkflowError(f"States.Runtime: {path} is not in the state's input")
        data = data[part]
    return data


def _put(data: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return data
    parts = _path(path)
    if not parts:
        return value
    result = json.loads(json.dumps(data))
    target = result
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return result


# -- executions ----------------------------------------------------------------------------


@dataclass
class Execution:
    arn: str
    state_machine_arn: str
    name: str
    input: str
    definition: dict[str, Any]
    status: str = RUNNING
    outcome: Outcome | None = None


class Executions:
    """StartExecution and DescribeExecution for the state machines ``definitions`` returns
    (ARN -> definition), read when an execution starts."""

    def __init__(self, definitions: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.definitions = definitions
        self.executions: dict[str, Execution] = {}
        self.pending: list[Execution] = []

    def register(self, session: Any) -> Callable[[], None]:
        """Answer the calls made through ``session``'s clients; returns the function that stops it."""
        hooks = (
            ("before-call.sfn.StartExecution", self._start_execution),
            ("before-call.sfn.DescribeExecution", self._describe_execution),
        )
        for event, hook in hooks:
            session.events.register(event, hook)

        def unregister() -> None:
            for event, hook in hooks:
                session.events.unregister(event, hook)

        return unregister

    def start(self, state_machine_arn: str, name: str, data: str) -> Execution:
        definition = self.definitions().get(state_machine_arn)
        if definition is None:
            raise _client_error("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{state_machine_arn}'")
        arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        found = self.executions.get(arn)
        if found is not None:
            if found.status == RUNNING and found.input == data:
                return found  # the same execution, as Step Functions answers
            raise _client_error("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
        execution = Execution(arn, state_machine_arn, name, data, definition)
        self.executions[arn] = execution
        self.pending.append(execution)
        return execution

    def run_pending(self, invoke: Invoke, *, sleep: Callable[[float], None]) -> list[Execution]:
        """Run every started execution to its end (and those they start); return them in order."""
        ran = []
        while self.pending:
            execution = self.pending.pop(0)
            execution.outcome = run(execution.definition, json.loads(execution.input), invoke, sleep=sleep)
            execution.status = execution.outcome.status
            ran.append(execution)
        return ran

    def _start_execution(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        body = json.loads(params.get("body") or b"{}")
        try:
            execution = self.start(body["stateMachineArn"], body["name"], body.get("input", "{}"))
        except ClientError as error:
            return _error_response(params, error)
        return AWSResponse(str(params.get("url", "")), 200, {}, None), {
            "executionArn": execution.arn,
            "startDate": 0,
        }

    def _describe_execution(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        arn = json.loads(params.get("body") or b"{}")["executionArn"]
        found = self.executions.get(arn)
        if found is None:
            error = _client_error("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
            return _error_response(params, error)
        return AWSResponse(str(params.get("url", "")), 200, {}, None), {
            "executionArn": arn,
            "stateMachineArn": found.state_machine_arn,
            "name": found.name,
            "status": found.status,
            "startDate": 0,
            "input": found.input,
        }


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "StepFunctions")


def _error_response(params: dict[str, Any], error: ClientError) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse(str(params.get("url", "")), 400, {}, None), {
        "Error": error.response["Error"],
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
