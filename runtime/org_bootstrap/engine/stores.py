"""Durable state in the deploying account: job progress and reports in S3, snapshots in DynamoDB.

Contacts are people's data: they are kept here, encrypted at rest by the bucket and the table,
and never written to logs.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code

ABSENT = "ABSENT"  # the account had no contact of this type
JOB_PREFIX = "alternate-contacts"  # the only key prefix the handlers' role may read and write
# S3 refuses a conditional write whose condition no longer holds (412), or one that races another
# conditional write to the same key (409): https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
_STALE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


class StaleWrite(Exception):
    """The object changed since it was read (someone else wrote it): nothing was written."""


class S3JobStore:
    """Jobs, their reports, and per-resource pointers to the last job, under one key prefix.

    Every write of a job can be conditional on the ETag it was read with (``if_match``), which
    is what makes a job's lease (:mod:`org_bootstrap.engine.continuation`) safe between invocations.
    """

    def __init__(self, s3: Any, bucket: str, prefix: str = JOB_PREFIX) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, kind: str, job_id: str) -> str:
        return f"{self.prefix}/{kind}/{job_id}.json"

    def load(self, job_id: str) -> dict[str, Any]:
        return self.load_versioned(job_id)[0]

    def load_versioned(self, job_id: str) -> tuple[dict[str, Any], str]:
        """The job and the ETag to make the next write conditional on."""
        found = self.s3.get_object(Bucket=self.bucket, Key=self._key("jobs", job_id))
        return json.loads(found["Body"].read()), str(found["ETag"])

    def save(self, job_id: str, data: dict[str, Any], *, if_match: str | None = None) -> str:
        """Write the job (only if it still has the ETag ``if_match``); return its new ETag."""
        condition = {"IfMatch": if_match} if if_match else {}
        try:
            written = self.s3.put_object(
                Bucket=self.bucket,
                Key=self._key("jobs", job_id),
                Body=json.dumps(data).encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as error:
            if error_code(error) in _STALE_CODES:
                raise StaleWrite(job_id) from None
            raise
        return str(written["ETag"])

    def last_job(self, name: str) -> dict[str, Any] | None:
        """The last job started for ``name`` (a custom resource, the drift check): None if there was
        none, or if it has expired from the bucket (its lifecycle rule)."""
        try:
            pointer = self.s3.get_object(Bucket=self.bucket, Key=self._key("last-job", name))
            return self.load(str(json.loads(pointer["Body"].read())["job"]))
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise

    def set_last_job(self, name: str, job_id: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._key("last-job", name),
            Body=json.dumps({"job": job_id}).encode(),
            ContentType="application/json",
        )

    def save_report(self, job_id: str, report: dict[str, Any]) -> str:
        key = self._key("reports", job_id)
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=json.dumps(report, indent=1).encode(), ContentType="application/json"
        )
        return f"s3://{self.bucket}/{key}"

    def load_report(self, job_id: str) -> dict[str, Any] | None:
        """A report saved by :meth:`save_report`; None if there is none (or it has expired)."""
        try:
            found = self.s3.get_object(Bucket=self.bucket, Key=self._key("reports", job_id))
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        loaded: dict[str, Any] = json.loads(found["Body"].read())
        return loaded


class DynamoDbSnapshots:
    """One item per account and contact type, written once: before the stack's first change."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    @staticmethod
    def _key(account_id: str, contact_type: str) -> dict[str, Any]:
        return {"AccountId": {"S": account_id}, "ContactType": {"S": contact_type}}

    def remember(self, account_id: str, contact_type: str, contact: Any) -> None:
        item = {**self._key(account_id, contact_type), "Contact": {"S": json.dumps(contact) if contact else ABSENT}}
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(AccountId)"
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise  # an existing record is the earlier, original value: keep it

    def recall(self, account_id: str, contact_type: str) -> tuple[bool, Any]:
        found = self.dynamodb.get_item(
            TableName=self.table, Key=self._key(account_id, contact_type), ConsistentRead=True
        ).get("Item")
        if not found:
            return False, None
        value = found["Contact"]["S"]
        return True, (None if value == ABSENT else json.loads(value))

    def forget(self, account_id: str, contact_type: str) -> None:
        self.dynamodb.delete_item(TableName=self.table, Key=self._key(account_id, contact_type))
