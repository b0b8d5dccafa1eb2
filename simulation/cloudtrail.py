"""Organizations, Control Tower and Account Management events as AWS documents them: the
EventBridge envelope around a CloudTrail record. The handler tests and the local deploy's day-two
commands send the same shapes.

- Organizations: https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html
- Control Tower: https://docs.aws.amazon.com/controltower/latest/userguide/lifecycle-events.html
- The EventBridge envelope: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
"""

from __future__ import annotations

import uuid
from typing import Any

ORG_ID = "o-aa111bb222"


def envelope(source: str, detail_type: str, detail: dict[str, Any], management: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": management,
        "time": "2026-11-20T21:20:53Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def create_account_result(account_id: str | None, management: str, state: str = "SUCCEEDED") -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": "car-examplecreateaccountrequestid111",
        "state": state,
        "accountName": "****",
        "requestedTimestamp": "Sep 16, 2020 9:20:50 PM",
        "completedTimestamp": "Sep 16, 2020 9:20:53 PM",
    }
    if state == "SUCCEEDED":
        status["accountId"] = account_id
    else:
        status["failureReason"] = "EMAIL_ALREADY_EXISTS"
    detail = {
        "eventVersion": "1.05",
        "userIdentity": {"accountId": management, "invokedBy": "AWS Internal"},
        "eventTime": "2020-09-16T21:20:53Z",
        "eventSource": "organizations.amazonaws.com",
        "eventName": "CreateAccountResult",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "requestParameters": None,
        "responseElements": None,
        "eventID": "EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE",
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "recipientAccountId": management,
        "serviceEventDetails": {"createAccountStatus": status},
    }
    return envelope("aws.organizations", "AWS Service Event via CloudTrail", detail, management)


def api_call(name: str, caller: str, request: Any, response: Any, management: str, **extra: Any) -> dict[str, Any]:
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:platform",
            "arn": f"arn:aws:sts::{caller}:assumed-role/platform/platform",
            "accountId": caller,
        },
        "eventTime": "2026-11-20T21:20:53Z",
        "eventSource": "organizations.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.0",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": "EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE",
        "eventID": "EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": caller,
        "eventCategory": "Management",
        **extra,
    }
    return envelope("aws.organizations", "AWS API Call via CloudTrail", detail, management)


def accept_handshake(account_id: str, management: str, action: str = "invite") -> dict[str, Any]:
    handshake = {
        "id": "h-examplehandshakeid111",
        "arn": f"arn:aws:organizations::{management}:handshake/{ORG_ID}/invite/h-examplehandshakeid111",
        "parties": [{"type": "ORGANIZATION", "id": ORG_ID}, {"type": "ACCOUNT", "id": account_id}],
        "state": "ACCEPTED",
        "action": action,
        "requestedTimestamp": "Nov 18, 2026 9:41:16 PM",
        "expirationTimestamp": "Dec 2, 2026 9:41:16 PM",
        "resources": [
            {
                "type": "ORGANIZATION",
                "value": ORG_ID,
                "resources": [{"type": "ORGANIZATION_FEATURE_SET", "value": "ALL"}],
            },
            {"type": "ACCOUNT", "value": account_id},
        ],
    }
    return api_call(
        "AcceptHandshake",
        account_id,
        {"handshakeId": "h-examplehandshakeid111"},
        {"handshake": handshake},
        management,
    )


def account_joined(account_id: str, management: str, method: str = "INVITED") -> dict[str, Any]:
    """Organizations' membership event, logged in the management account for created and invited
    accounts: https://docs.aws.amazon.com/organizations/latest/APIReference/API_AcceptHandshake.html
    names its fields (joinedMethod, joinedTime); the rest is a CloudTrail service event's envelope."""
    detail = {
        "eventVersion": "1.11",
        "userIdentity": {"accountId": management, "invokedBy": "organizations.amazonaws.com"},
        "eventTime": "2026-11-20T21:20:53Z",
        "eventSource": "organizations.amazonaws.com",
        "eventName": "AccountJoinedOrganization",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "organizations.amazonaws.com",
        "userAgent": "organizations.amazonaws.com",
        "requestParameters": None,
        "responseElements": None,
        "eventID": "EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE",
        "readOnly": False,
        "resources": [
            {
                "accountId": management,
                "type": "AWS::Organizations::Account",
                "ARN": f"arn:aws:organizations::{management}:account/{ORG_ID}/{account_id}",
            }
        ],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": management,
        "serviceEventDetails": {"accountId": account_id, "joinedMethod": method, "joinedTime": "2026-11-20T21:20:53Z"},
        "eventCategory": "Management",
    }
    return envelope("aws.organizations", "AWS Service Event via CloudTrail", detail, management)


def move_account(account_id: str, source: str, destination: str, management: str, **extra: Any) -> dict[str, Any]:
    request = {"accountId": account_id, "sourceParentId": source, "destinationParentId": destination}
    return api_call("MoveAccount", management, request, None, management, **extra)


def managed_account(
    name: str, account_id: str, ou_id: str, management: str, state: str = "SUCCEEDED"
) -> dict[str, Any]:
    key = "createManagedAccountStatus" if name == "CreateManagedAccount" else "updateManagedAccountStatus"
    detail = {
        "eventVersion": "1.05",
        "userIdentity": {"accountId": management, "invokedBy": "AWS Internal"},
        "eventTime": "2026-11-20T20:30:00Z",
        "eventSource": "controltower.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "eventID": "aaaabbbb-1111-2222-3333-444455556666",
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "serviceEventDetails": {
            key: {
                "organizationalUnit": {"organizationalUnitName": "Prod", "organizationalUnitId": ou_id},
                "account": {"accountName": "TestAccount", "accountId": account_id},
                "state": state,
                "message": "AWS Control Tower successfully created a managed account."
                if state == "SUCCEEDED"
                else "AWS Control Tower failed to create a managed account.",
                "requestedTimestamp": "2026-11-20T20:00:00Z",
                "completedTimestamp": "2026-11-20T20:30:00Z",
            }
        },
    }
    return envelope("aws.controltower", "AWS Service Event via CloudTrail", detail, management)


def account_api_call(
    name: str, caller: str, request: Any, management: str, *, source: str = "aws.account"
) -> dict[str, Any]:
    """An API call of another service (Account Management by default), recorded in ``caller``'s trail."""
    event = api_call(name, caller, request, None, management)
    service = source.removeprefix("aws.")
    event["source"] = source
    event["account"] = caller
    event["detail"]["eventSource"] = f"{service}.amazonaws.com"
    return event
