"""template.yaml, as CloudFormation will see it after the SAM transform: least privilege."""

from __future__ import annotations

from typing import Any

import pytest
from samtranslator.translator.transform import transform

from local_stack.template import load_template

MANAGED = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in [
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
        ("AWSXRayDaemonWriteAccess", ""),
    ]
}
# Every AWS call the function makes, and nothing else.
CALLS_THE_CODE_MAKES = {
    "s3:GetObject",  # HEAD and the presigned GET
    "s3:GetObjectVersion",  # the same, for a versionId
    "s3:ListBucket",  # so a missing object is 404, not 403
    "dynamodb:UpdateItem",  # claim and finish
    "dynamodb:PutItem",  # SKIPPED records
    "sqs:SendMessage",  # dead letters (and Lambda's on-failure destination)
    "secretsmanager:GetSecretValue",  # the token
}


class _StaticPolicies:
    def load(self) -> dict[str, str]:
        return MANAGED


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template = load_template()
    # What `sam package` does: local code folders become S3 artifacts.
    for resource in template["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://artifacts/code.zip"
    # The transform only needs a region name to build ARNs; it calls no AWS API here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        cloudformation = transform(template, {}, _StaticPolicies())
    found: dict[str, Any] = cloudformation["Resources"]
    return found


def _allow_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    statements = []
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    statements.append(statement)
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions_or_resources(resources: dict[str, Any]) -> None:
    for statement in _allow_statements(resources):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", statement


def test_the_role_allows_exactly_what_the_code_calls(resources: dict[str, Any]) -> None:
    actions = {
        action
        for statement in _allow_statements(resources)
        for action in _as_list(statement["Action"])
    }

    assert actions == CALLS_THE_CODE_MAKES


def test_the_function_runs_on_python_3_13_arm64_with_its_layer(resources: dict[str, Any]) -> None:
    [function] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    props = function["Properties"]

    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "importer.handler.lambda_handler"
    assert len(props["Layers"]) == 1


def test_failed_async_invocations_land_in_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    [config] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    props = config["Properties"]

    assert props["MaximumRetryAttempts"] == 2
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }


def test_the_bucket_notifies_the_function_of_every_created_object(
    resources: dict[str, Any],
) -> None:
    bucket = resources["MediaBucket"]["Properties"]
    [notification] = bucket["NotificationConfiguration"]["LambdaConfigurations"]

    assert notification["Event"] == "s3:ObjectCreated:*"


def test_stateful_resources_are_encrypted_and_recoverable(resources: dict[str, Any]) -> None:
    table = resources["ImportsTable"]
    queue = resources["DeadLetterQueue"]

    assert table["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == "Retain"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600
