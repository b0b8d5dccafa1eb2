"""The contacts automation as deployed, run on this machine: EventBridge, SQS, Lambda and the schedule.

Everything is read from the templates of the deployed stacks (their last complete deploy):

- **EventBridge**: an event put on an account's default bus is matched against the ``EventPattern``
  of every ``AWS::Events::Rule`` of the stacks in that account that sits on that bus, with moto's
  implementation of EventBridge's pattern matching (:class:`moto.events.models.EventPattern`). A
  rule's target is a queue of its stack, or another account's default bus (the management account
  forwarding to the delegated administrator), where the event is matched again.
- **SQS**: each queue as its template declares it (``VisibilityTimeout``, ``RedrivePolicy``:
  ``maxReceiveCount`` and the dead-letter queue), in moto's SQS, which moves a message received
  ``maxReceiveCount`` times to the dead-letter queue. The queue's ``AWS::Lambda::EventSourceMapping``
  hands the function batches of ``BatchSize`` as Lambda does (records with ``ApproximateReceiveCount``),
  deletes the messages the handler did not report in ``batchItemFailures`` (the whole batch when
  the invocation fails), and the others become visible again after the visibility timeout: that
  wait is skipped here and said so.
- **Lambda**: the function's real handler, through :meth:`LocalCloudFormation.invoke`.
- **Scheduler**: ``drift`` runs the ``AWS::Scheduler::Schedule`` target with the schedule's ``Input``.

The handlers' own log lines (what CloudWatch Logs would hold) say what each event did.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from local_deploy.cloudformation import FUNCTION, LocalCloudFormation, ResourceError
from local_deploy.stack import StackState
from org_bootstrap.aws.clients import error_code
from org_bootstrap.engine import clock as clocks
from simulation.organization import acting_as

RULE, QUEUE, MAPPING, SCHEDULE = (
    "AWS::Events::Rule",
    "AWS::SQS::Queue",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Scheduler::Schedule",
)
DEFAULT_VISIBILITY_TIMEOUT = 30  # SQS's default, seconds
MAX_POLLS = 200  # receives per queue before the local run gives up (a message that never settles)


class AutomationError(RuntimeError):
    """The deployed stacks have no automation to run (or not the part asked for); says why."""


@dataclass
class Route:
    """Where an event went: the rule that matched it, and the queue (or bus) it put the event on."""

    stack: str
    rule: str
    target: str  # a queue's logical ID, or "bus <account>"


@dataclass
class Handled:
    """What the handler said about one event (its log line), or why the event was dead-lettered."""

    event: str
    event_id: str
    account: str
    status: str
    actions: dict[str, str] = field(default_factory=dict)
    reason: str = ""


@dataclass
class Delivery:
    """One event's way through the automation."""

    event: dict[str, Any]
    bus_account: str
    routes: list[Route] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)
    receives: int = 0  # deliveries to the handler
    dead_lettered: bool = False

    @property
    def name(self) -> str:
        return str(self.event.get("detail", {}).get("eventName", self.event.get("detail-type", "")))


@dataclass
class Batch:
    function: str
    queue: str
    messages: int
    failed: int
    error: str = ""


@dataclass
class DeliveryReport:
    deliveries: list[Delivery]
    batches: list[Batch]
    notes: list[str]


@dataclass
class DriftRun:
    function: str
    mode: str  # fix | report-only
    result: dict[str, Any]
    outcomes: list[dict[str, Any]]  # the report's outcomes: account, status, actions
    notifications: list[str]  # the subjects published to the topic
    notes: list[str]
    unfinished: str = ""  # why the check has no report yet (its job is busy, or continues): empty when it has


class Automation:
    """The deployed stacks' automation (rules, queues, mappings, schedule) in the simulated world."""

    def __init__(
        self, stacks: list[StackState], session: boto3.Session, *, invocation_seconds: float | None = None
    ) -> None:
        self.all_stacks = [stack for stack in stacks if stack.resources]
        self.stacks = [stack for stack in self.all_stacks if stack.template]
        self.session = session
        self.invocation_seconds = invocation_seconds

    # -- what is deployed ---------------------------------------------------------------------

    def rules(self, account: str) -> list[tuple[StackState, str, dict[str, Any]]]:
        """The rules on ``account``'s default bus: (stack, logical ID, properties)."""
        found = []
        for stack in self.stacks:
            if stack.account != account:
                continue
            for logical_id, resource in stack.template.get("Resources", {}).items():
                properties = resource.get("Properties", {})
                if resource["Type"] == RULE and properties.get("EventBusName", "default") == "default":
                    found.append((stack, logical_id, properties))
        return found

    @property
    def missing(self) -> str | None:
        """Why no automation runs here, or None when it is deployed."""
        if not self.all_stacks:
            return "the stack is not deployed (python -m local_deploy deploy first)"
        if len(self.stacks) < len(self.all_stacks):
            return "the stack's record keeps no template (it was deployed by an older local deploy): deploy again"
        if not any(self.rules(stack.account) for stack in self.stacks) and self._schedule() is None:
            return "no automation is deployed (the config has no [automation] section)"
        return None

    # -- EventBridge ----------------------------------------------------------------------------

    def route(self, event: Mapping[str, Any], account: str, seen: frozenset[str] = frozenset()) -> list[Route]:
        """The rules ``event`` matches on ``account``'s default bus, following bus targets."""
        routes: list[Route] = []
        for stack, logical_id, properties in self.rules(account):
            if properties.get("State", "ENABLED") != "ENABLED":
                continue
            pattern = EventPattern.load(json.dumps(properties.get("EventPattern", {})))
            if not pattern.matches_event(dict(event)):  # type: ignore[arg-type]
                continue
            for target in properties.get("Targets", []):
                queue = _get_att_target(target.get("Arn"))
                if queue is not None and queue in stack.template.get("Resources", {}):
                    routes.append(Route(stack.name, logical_id, queue))
                    continue
                bus_account = _bus_account(target.get("Arn"))
                if bus_account is not None and bus_account not in seen | {account}:
                    routes.append(Route(stack.name, logical_id, f"bus {bus_account}"))
                    routes += self.route(event, bus_account, seen | {account})
        return routes

    def deliver(self, events: list[tuple[dict[str, Any], str]]) -> DeliveryReport:
        """Put each (event, account) on that account's default bus; run the queues dry."""
        deliveries = [Delivery(event, account) for event, account in events]
        queues: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in deliveries:
            delivery.routes = self.route(delivery.event, delivery.bus_account)
            for route in delivery.routes:
                if not route.target.startswith("bus "):
                    queues.setdefault((route.stack, route.target), []).append(delivery)
        batches: list[Batch] = []
        notes: list[str] = []
        for (stack_name, queue), waiting in queues.items():
            stack = next(stack for stack in self.stacks if stack.name == stack_name)
            batches += self._drain(stack, queue, waiting, notes)
        return DeliveryReport(deliveries, batches, notes)

    # -- SQS and the event source mapping ----------------------------------------------------

    def _drain(self, stack: StackState, queue: str, waiting: list[Delivery], notes: list[str]) -> list[Batch]:
        resources = stack.template["Resources"]
        properties = resources[queue].get("Properties", {})
        visibility = int(properties.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT))
        redrive = properties.get("RedrivePolicy") or {}
        dead_letter = _get_att_target(redrive.get("deadLetterTargetArn"))
        max_receives = int(redrive.get("maxReceiveCount", 0))
        mapping = next(
            (
                resource.get("Properties", {})
                for resource in resources.values()
                if resource["Type"] == MAPPING
                and _get_att_target(resource.get("Properties", {}).get("EventSourceArn")) == queue
            ),
            None,
        )
        batches: list[Batch] = []
        with acting_as(stack.account):
            sqs = self.session.client("sqs", region_name=stack.region)
            attributes = {"VisibilityTimeout": str(visibility)}
            dead_letter_url = None
            if dead_letter and max_receives:
                dead_letter_url = _queue(sqs, stack, dead_letter, {})
                arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])
                policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": max_receives}
                attributes["RedrivePolicy"] = json.dumps(policy)
            url = _queue(sqs, stack, queue, attributes)
            by_id: dict[str, Delivery] = {}
            for delivery in waiting:
                sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(delivery.event))
                by_id[sent["MessageId"]] = delivery
            if mapping is None:
                notes.append(f"{queue}: no event source mapping reads this queue; the events wait there")
                return batches
            function = _ref_target(mapping.get("FunctionName"))
            if function is None or stack.resources.get(function) is None or stack.resources[function].type != FUNCTION:
                raise AutomationError(f"{queue}: its event source mapping names no function of {stack.name}")
            size = min(int(mapping.get("BatchSize", 10)), 10)
            partial = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
            engine = LocalCloudFormation(stack, self.session, invocation_seconds=self.invocation_seconds)
            retried = False
            for _ in range(MAX_POLLS):
                received = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=size, AttributeNames=["All"], MessageAttributeNames=["All"]
                ).get("Messages", [])
                if not received:
                    break
                records = [_record(message, stack, queue) for message in received]
                for message in received:
                    by_id[message["MessageId"]].receives += 1
                failed, error = self._invoke_batch(engine, function, records, by_id, partial)
                for message in received:
                    if message["MessageId"] in failed:  # visible again once the visibility timeout passes
                        sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
                    else:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                retried = retried or bool(failed)
                batches.append(Batch(function, queue, len(received), len(failed), error))
                if failed and clocks.installed() is not clocks.REAL:  # simulated: the timeout passes on the clock
                    clocks.sleep(float(visibility))
            if retried:
                notes.append(
                    f"{queue}: failed messages were retried after the visibility timeout ({visibility} s, "
                    f"on the simulated clock; at once with --real-time), at most {max_receives} receives each, "
                    "then moved to the dead-letter queue"
                )
            if dead_letter_url is not None:
                for message in _all_messages(sqs, dead_letter_url):
                    event_id = json.loads(message["Body"]).get("id")
                    for delivery in waiting:
                        if delivery.event.get("id") == event_id:
                            delivery.dead_lettered = True
        return batches

    def _invoke_batch(
        self,
        engine: LocalCloudFormation,
        function: str,
        records: list[dict[str, Any]],
        by_id: Mapping[str, Delivery],
        partial: bool,
    ) -> tuple[set[str], str]:
        """Run the handler on one batch; the message IDs to retry, and the invocation's error."""
        ids = {record["messageId"] for record in records}
        with _handler_lines() as lines:
            try:
                result, _ = engine.invoke(function, {"Records": records}, trigger="sqs")
            except ResourceError as error:
                return ids, str(error)
        for line in lines:
            event_id = line.get("event_id")
            for message_id in ids:
                delivery = by_id[message_id]
                if event_id is not None and delivery.event.get("id") == event_id:
                    delivery.handled.append(
                        Handled(
                            str(line.get("event", "")),
                            str(event_id),
                            str(line.get("account", "")),
                            str(line.get("status", "")),
                            dict(line.get("actions") or {}),
                            str(line.get("reason", "")),
                        )
                    )
                elif line.get("message") == message_id and "unusable_event" in line:
                    delivery.handled.append(Handled(delivery.name, "", "", "unusable", {}, str(line["unusable_event"])))
        if not partial:
            return set(), ""
        failures = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
        return {str(failure.get("itemIdentifier")) for failure in failures} & ids, ""

    # -- the drift schedule ---------------------------------------------------------------------

    def _schedule(self) -> tuple[StackState, str, dict[str, Any]] | None:
        for stack in self.stacks:
            for logical_id, resource in stack.template.get("Resources", {}).items():
                if resource["Type"] == SCHEDULE:
                    return stack, logical_id, resource.get("Properties", {})
        return None

    def run_drift(self) -> DriftRun:
        found = self._schedule()
        if found is None:
            raise AutomationError(f"no drift schedule to run: {self.missing or 'the stacks have none'}")
        stack, schedule, properties = found
        target = properties.get("Target", {})
        function = _get_att_target(target.get("Arn"))
        if function is None or function not in stack.resources:
            raise AutomationError(f"{schedule}: its target is not a function of {stack.name}")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clocks.time()))
        payload = json.loads(str(target.get("Input", "{}")).replace("<aws.scheduler.scheduled-time>", now))
        variables = stack.resources[function].properties.get("Environment", {}).get("Variables", {})
        topic = str(variables.get("TOPIC_ARN", ""))
        with acting_as(stack.account):
            sns = self.session.client("sns", region_name=stack.region)
            if topic.startswith("arn:"):
                sns.create_topic(Name=topic.rsplit(":", 1)[-1])  # idempotent: the stack's topic
        engine = LocalCloudFormation(stack, self.session, invocation_seconds=self.invocation_seconds)
        result, operation = engine.invoke(function, payload, trigger="schedule")
        outcomes: list[dict[str, Any]] = []
        unfinished = ""
        bucket = variables.get("JOB_BUCKET")
        answer = result if isinstance(result, dict) else {}
        job = answer.get("Job")
        if bucket and job:
            with acting_as(stack.account):
                s3 = self.session.client("s3", region_name=stack.region)
                try:
                    body = s3.get_object(Bucket=bucket, Key=f"alternate-contacts/reports/{job}.json")["Body"].read()
                    outcomes = json.loads(body).get("outcomes", [])
                except ClientError as error:
                    if error_code(error) != "NoSuchKey":
                        raise
                    unfinished = _why_unfinished(answer)
        mode = "report-only" if variables.get("REPORT_ONLY") == "true" else "fix"
        return DriftRun(function, mode, answer, outcomes, _published(stack, topic), operation.notes, unfinished)


def _why_unfinished(answer: Mapping[str, Any]) -> str:
    """Why a check's job has no report yet, from the handler's answer."""
    job = answer.get("Job")
    if answer.get("Busy"):
        return f"job {job} is being worked by another invocation: no report until it finishes; run drift again later"
    if answer.get("Status") == "PREVIOUS_CHECK_RUNNING":
        return f"the previous check (job {job}) has not finished: no new check starts until it does"
    if answer.get("Status") == "RESUMED":
        return f"the previous check (job {job}) had stopped: its workflow was started again to finish it"
    return (
        f"job {job} has not finished ({answer.get('Cursor', '?')} of {answer.get('Of', '?')} accounts): no report yet"
    )


def _queue(sqs: Any, stack: StackState, logical_id: str, attributes: dict[str, str]) -> str:
    name = stack.resources[logical_id].physical_id if logical_id in stack.resources else logical_id
    return str(sqs.create_queue(QueueName=name.rsplit("/", 1)[-1][:80], Attributes=attributes)["QueueUrl"])


def _all_messages(sqs: Any, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:  # received and left: they stay in the dead-letter queue for the next look
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        new = [message for message in page if message["MessageId"] not in {m["MessageId"] for m in found}]
        if not new:
            return found
        found += new


def _record(message: dict[str, Any], stack: StackState, queue: str) -> dict[str, Any]:
    """An SQS message as the event source mapping hands it to the function."""
    arn = f"arn:{stack.partition}:sqs:{stack.region}:{stack.account}:{queue}"
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": dict(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": stack.region,
    }


def _published(stack: StackState, topic: str) -> list[str]:
    """The subjects published to the stack's topic, read behind the API's back."""
    from moto.sns.models import sns_backends

    found = sns_backends[stack.account][stack.region].topics.get(topic)
    return [str(notification[2]) for notification in getattr(found, "sent_notifications", [])]


def _get_att_target(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    return None


def _ref_target(value: Any) -> str | None:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return None


def _bus_account(value: Any) -> str | None:
    """The account of a default event bus ARN (``Fn::Join`` of partition, region and account)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        text = separator.join(part if isinstance(part, str) else "" for part in parts)
    elif isinstance(value, str):
        text = value
    else:
        return None
    if ":event-bus/default" not in text:
        return None
    account = text.split(":event-bus/", 1)[0].rsplit(":", 1)[-1]
    return account if account.isdigit() else None


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            value = json.loads(record.getMessage())
        except (ValueError, TypeError):
            return
        if isinstance(value, dict):
            self.lines.append(value)


@contextmanager
def _handler_lines() -> Iterator[list[dict[str, Any]]]:
    """The handler's JSON log lines during one invocation, as CloudWatch Logs would keep them."""
    handler = _Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
