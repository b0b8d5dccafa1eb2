"""The continuation workflow of contact jobs: a Step Functions Standard state machine, as a construct.

It carries a job that outlived the invocations its caller gave it (the deploy wait, the drift
check's first invocation), batch after batch, with the function's own handler:

    Work (invoke the function with {"ContinueJob": <job>}; any error retried with backoff)
      -> Busy?     another worker holds the job's lease: wait a minute, then Work
      -> Done?     failed accounts beyond the tolerance: Fail (AccountsFailed); else Succeed
      -> otherwise Work (the next batch)
    Work's retries run out -> Fail (RetriesExhausted)

Every execution is named after its job (``org_bootstrap.engine.continuation``), so a job has one
execution at a time; a failed, timed-out or aborted execution raises the alarm, and the next deploy
or drift run resumes the job. The state machine's name is fixed (from the stack's name), so the
function can address it without depending on it.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from constructs import Construct
from constructs.nag_findings import acknowledge
from constructs.org_provider import LOG_RETENTION, RuntimeFunction
from org_bootstrap.engine.continuation import CONTINUE_JOB, STATE_MACHINE_ENV

RETRY_INTERVAL = Duration.seconds(30)
RETRY_ATTEMPTS = 8  # 30 s doubling to at most 10 minutes: about 45 minutes of retries per batch
RETRY_MAX_DELAY = Duration.minutes(10)
BUSY_WAIT = Duration.minutes(1)
DEFAULT_TIMEOUT = Duration.days(7)


class JobWorkflow(Construct):
    """Continues ``function``'s jobs; alarms to ``topic`` when an execution does not succeed.

    Grants the function what it needs to start (and inspect) the workflow's executions and sets
    ``JOB_WORKFLOW_ARN`` in its environment.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: RuntimeFunction,
        name_suffix: str,
        topic: sns.ITopic,
        description: str,
        timeout: Duration = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        name = Fn.join("-", [Aws.STACK_NAME, name_suffix])
        self.state_machine_arn = Fn.join(
            "", [f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:stateMachine:", name]
        )
        executions = Fn.join("", [f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:", name, ":*"])

        work = tasks.LambdaInvoke(
            self,
            "Work",
            comment="One batch of the job, under its lease",
            lambda_function=function.function,
            payload=sfn.TaskInput.from_object({CONTINUE_JOB: sfn.JsonPath.string_at("$.Job")}),
            payload_response_only=True,
            retry_on_service_exceptions=False,  # every error is retried below, the same way
            result_path="$.Batch",
        )
        work.add_retry(
            errors=[sfn.Errors.ALL],
            interval=RETRY_INTERVAL,
            max_attempts=RETRY_ATTEMPTS,
            backoff_rate=2,
            max_delay=RETRY_MAX_DELAY,
            jitter_strategy=sfn.JitterType.FULL,
        )
        work.add_catch(
            sfn.Fail(
                self,
                "RetriesExhausted",
                error="RetriesExhausted",
                cause="A batch failed after every retry; the next deploy or drift run resumes the job",
            ),
            errors=[sfn.Errors.ALL],
            result_path="$.Error",
        )
        wait = sfn.Wait(self, "OtherWorkerHoldsTheJob", time=sfn.WaitTime.duration(BUSY_WAIT))
        done = (
            sfn.Choice(self, "JobDone")
            .when(sfn.Condition.boolean_equals("$.Batch.Busy", True), wait.next(work))
            .when(
                sfn.Condition.and_(
                    sfn.Condition.boolean_equals("$.Batch.Complete", True),
                    sfn.Condition.boolean_equals("$.Batch.FailedBeyondTolerance", True),
                ),
                sfn.Fail(
                    self,
                    "AccountsFailed",
                    error="AccountsFailed",
                    cause="More accounts failed than the failure tolerance: see the job's report",
                ),
            )
            .when(sfn.Condition.boolean_equals("$.Batch.Complete", True), sfn.Succeed(self, "Done"))
            .otherwise(work)
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            comment=description,
            definition_body=sfn.DefinitionBody.from_chainable(work.next(done)),
            timeout=timeout,
            tracing_enabled=True,
            # The executions' data is a job ID and counts: never contacts.
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions logging (logs:CreateLogDelivery and related) and X-Ray tracing (xray:PutTraceSegments "
            "and related) accept only '*'.",
        )
        acknowledge(
            self.state_machine,
            f"AwsSolutions-IAM5[Resource::<{function.logical_id}.Arn>:*]",
            "The LambdaInvoke task invokes any version ('<arn>:*') of the job's function.",
        )

        function.function.add_environment(STATE_MACHINE_ENV, self.state_machine_arn)
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartJobContinuation", actions=["states:StartExecution"], resources=[self.state_machine_arn]
            )
        )
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadJobContinuations", actions=["states:DescribeExecution"], resources=[executions]
            )
        )
        acknowledge(
            function.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            "<AWS::StackName>-" + name_suffix + ":*]",
            "DescribeExecution on the executions of the job's own workflow, which are named after jobs.",
        )

        self.alarm = cloudwatch.Alarm(
            self,
            "FailedAlarm",
            alarm_description=f"{description}: an execution failed, timed out or was aborted; its history shows "
            "the error. The next deploy or drift run resumes the job, or resume it now: start an execution named "
            '<job ID>-r<N> with the input {"Job": "<job ID>"}.',
            metric=cloudwatch.MathExpression(
                expression="failed + timedOut + aborted",
                using_metrics={
                    "failed": self.state_machine.metric_failed(statistic="Sum"),
                    "timedOut": self.state_machine.metric_timed_out(statistic="Sum"),
                    "aborted": self.state_machine.metric_aborted(statistic="Sum"),
                },
                period=Duration.minutes(5),
                label="Job continuations not succeeded",
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
