"""template.yaml, as CloudFormation will see it after the SAM transform: least privilege,
and every parameter doing what its description says.

The template is translated once with aws-sam-translator; each test then applies the
template's Conditions for the parameter values it deploys with (`apply_conditions`), as
CloudFormation does, and reads the resources that result.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from local_stack.template import ROOT, apply_conditions, load_template, parameter_values

MANAGED = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in [
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
        ("AWSXRayDaemonWriteAccess", ""),
    ]
}
# Every AWS call the import function makes, and nothing else.
CALLS_THE_CODE_MAKES = {
    "s3:GetObject",  # HEAD and the presigned GET
    "s3:GetObjectVersion",  # the same, for a versionId
    "s3:ListBucket",  # so a missing object is 404, not 403
    "dynamodb:UpdateItem",  # claim and finish
    "dynamodb:PutItem",  # SKIPPED records
    "dynamodb:Query",  # the hashed-id index: is a media another object's already?
    "sqs:SendMessage",  # dead letters (and Lambda's on-failure destination)
    "secretsmanager:GetSecretValue",  # the token (and the signing credentials, when set)
}
# ... and the webhook receiver's and the status poller's.
CALLS_BY_FUNCTION = {
    "ImportFunction": CALLS_THE_CODE_MAKES,
    # The same import path, invoked by S3 Batch Operations instead of S3's events.
    "BackfillFunction": CALLS_THE_CODE_MAKES,
    "WebhookFunction": {
        "dynamodb:Query",  # the hashed-id index: which record holds the event's media
        "dynamodb:UpdateItem",  # the media's status, conditionally; FAILED for a failed media
        "sqs:SendMessage",  # the dead letter of a failed media
        "secretsmanager:GetSecretValue",  # the webhook's secret key
    },
    "PollerFunction": {
        "dynamodb:Query",  # the pending-status index; a swap's key (OnOverwrite=replace)
        "dynamodb:GetItem",  # a swap's record
        "dynamodb:UpdateItem",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",  # the Wistia token (the Data API)
    },
}
# What the pseudo parameters render as in these tests.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "s3-to-wistia",
}
NEW_BUCKET = "s3-to-wistia-media-123456789012-us-east-1"
SIGNING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wistia-signer-AbCdEf"
TOPIC = "arn:aws:sns:us-east-1:123456789012:on-call"
# What the function's EMF metrics are published as (see importer/service.py).
EMF_METRICS = {
    "MediaReady",
    "MediaFailed",
    "MediaTimeToReady",
    "WebhookEventsApplied",
    "WebhookRejected",
    "StatusPollMediaChecked",
    "StatusPollThrottled",
    "StatusPollUnauthorized",
    "ImportsSubmitted",
    "ImportsFailed",
    "ImportsSkipped",
    "WistiaRetries",
    "VideoLimitReached",
    "DuplicateDeliveries",
    "LostAnswersRecovered",
}


class _StaticPolicies:
    def load(self) -> dict[str, str]:
        return MANAGED


@functools.cache
def _translated() -> str:
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
    return json.dumps(cloudformation)


def deployed(**parameters: str) -> dict[str, Any]:
    """The CloudFormation resources a deploy with these parameter values creates."""
    cloudformation = json.loads(_translated())
    values = parameter_values(cloudformation, parameters)
    resolved: dict[str, Any] = render(apply_conditions(cloudformation, values), values)
    return resolved


def render(value: Any, values: dict[str, str]) -> Any:
    """Refs to parameters and pseudo parameters, and Fn::Sub, as text; a Ref or GetAtt of a
    resource as "<Logical>" or "<Logical.Attribute>", so assertions read like the ARNs."""
    if isinstance(value, list):
        return [render(item, values) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        name = value["Ref"]
        return values.get(name, PSEUDO.get(name, f"<{name}>"))
    if set(value) == {"Fn::GetAtt"}:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if set(value) == {"Fn::Sub"}:
        text, variables = value["Fn::Sub"], {}
        if isinstance(text, list):
            text, variables = text[0], {k: render(v, values) for k, v in text[1].items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return f"<{name}>"
            return str(render({"Ref": name}, values))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)
    return {key: render(item, values) for key, item in value.items()}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    """The resources of a deploy with every parameter at its default."""
    found: dict[str, Any] = deployed()["Resources"]
    return found


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {logical: r for logical, r in resources.items() if r["Type"] == kind}


def _allow_statements(resources: dict[str, Any], owner: str | None = None) -> list[dict[str, Any]]:
    """The Allow statements of every role, or of one: a role's logical id, or a function's
    (its role's)."""
    roles = _of_type(resources, "AWS::IAM::Role")
    if owner is not None:
        role = owner
        if owner not in roles:
            role = _function(resources, owner)["Role"].strip("<>").removesuffix(".Arn")
        roles = {role: roles[role]}
    statements = []
    for found in roles.values():
        for policy in found["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    statements.append(statement)
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(resources: dict[str, Any], owner: str = "ImportFunction") -> dict[str, set[str]]:
    """Every action a role (or a function's role) allows and the resources it is allowed on."""
    grants: dict[str, set[str]] = {}
    for statement in _allow_statements(resources, owner):
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, set()).update(_as_list(statement["Resource"]))
    return grants


def _function(resources: dict[str, Any], logical_id: str = "ImportFunction") -> dict[str, Any]:
    function = resources[logical_id]
    assert function["Type"] == "AWS::Lambda::Function"
    properties: dict[str, Any] = function["Properties"]
    return properties


# --- least privilege -------------------------------------------------------------------------

DEPLOYS = {
    "defaults": {},
    "existing bucket": {"ExistingBucketName": "their-media", "KeyPrefix": "in/"},
    "signing secret": {"SigningCredentialsSecretArn": SIGNING_SECRET},
    "alarms": {"AlarmEmail": "ops@example.com", "AlarmTopicArn": TOPIC},
}


QUEUE_DEPLOYS = {
    **DEPLOYS,
    "queue intake": {"Intake": "Queue"},
    "existing bucket, queue intake": {"ExistingBucketName": "their-media", "Intake": "Queue"},
}


@pytest.mark.parametrize("parameters", QUEUE_DEPLOYS.values(), ids=QUEUE_DEPLOYS.keys())
def test_no_wildcard_actions_or_resources(parameters: dict[str, str]) -> None:
    resources = deployed(**parameters)["Resources"]
    for statement in _allow_statements(resources):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", statement
            assert not str(resource).endswith(":*"), statement


@pytest.mark.parametrize("function", CALLS_BY_FUNCTION)
@pytest.mark.parametrize("parameters", DEPLOYS.values(), ids=DEPLOYS.keys())
def test_each_role_allows_exactly_what_its_code_calls(
    parameters: dict[str, str], function: str
) -> None:
    resources = deployed(**parameters)["Resources"]

    assert set(_grants(resources, function)) == CALLS_BY_FUNCTION[function]


def test_every_function_has_a_role_of_its_own(resources: dict[str, Any]) -> None:
    roles = [_function(resources, function)["Role"] for function in CALLS_BY_FUNCTION]

    assert len(set(roles)) == len(roles)
    assert set(_of_type(resources, "AWS::Lambda::Function")) == set(CALLS_BY_FUNCTION)


def test_every_grant_is_scoped_to_the_stacks_own_resources(resources: dict[str, Any]) -> None:
    assert _grants(resources, "ImportFunction") == {
        "s3:GetObject": {f"arn:aws:s3:::{NEW_BUCKET}/*"},
        "s3:GetObjectVersion": {f"arn:aws:s3:::{NEW_BUCKET}/*"},
        "s3:ListBucket": {f"arn:aws:s3:::{NEW_BUCKET}"},
        "dynamodb:UpdateItem": {"<ImportsTable.Arn>", "<RateBudgetTable.Arn>"},
        "dynamodb:PutItem": {"<ImportsTable.Arn>"},
        # the hashed-id index; the key's records (OnOverwrite=replace, the default)
        "dynamodb:Query": {"<ImportsTable.Arn>/index/by-wistia-hashed-id", "<ImportsTable.Arn>"},
        "sqs:SendMessage": {"<DeadLetterQueue.Arn>"},
        "secretsmanager:GetSecretValue": {"<WistiaTokenSecret>"},
    }


def test_the_webhook_receiver_reads_its_key_and_writes_only_the_records_and_dead_letters(
    resources: dict[str, Any],
) -> None:
    assert _grants(resources, "WebhookFunction") == {
        "dynamodb:Query": {"<ImportsTable.Arn>/index/by-wistia-hashed-id"},
        "dynamodb:UpdateItem": {"<ImportsTable.Arn>"},
        "sqs:SendMessage": {"<DeadLetterQueue.Arn>"},
        "secretsmanager:GetSecretValue": {"<WistiaWebhookSecret>"},
    }


def test_the_poller_queries_the_pending_index_and_reads_only_the_token(
    resources: dict[str, Any],
) -> None:
    # With OnOverwrite=replace (the default) it also reads a swap's record and its key's.
    assert _grants(resources, "PollerFunction") == {
        "dynamodb:Query": {"<ImportsTable.Arn>/index/by-media-watch", "<ImportsTable.Arn>"},
        "dynamodb:GetItem": {"<ImportsTable.Arn>"},
        # its records, and its slots in the request budget
        "dynamodb:UpdateItem": {"<ImportsTable.Arn>", "<RateBudgetTable.Arn>"},
        "sqs:SendMessage": {"<DeadLetterQueue.Arn>"},
        "secretsmanager:GetSecretValue": {"<WistiaTokenSecret>"},
    }


def test_with_new_medias_for_overwrites_nothing_reads_a_keys_records() -> None:
    resources = deployed(OnOverwrite="new")["Resources"]

    assert _grants(resources)["dynamodb:Query"] == {"<ImportsTable.Arn>/index/by-wistia-hashed-id"}
    assert "dynamodb:GetItem" not in _grants(resources, "PollerFunction")
    assert _function(resources)["Environment"]["Variables"]["ON_OVERWRITE"] == "new"


def test_an_existing_bucket_is_the_only_bucket_the_function_reads() -> None:
    grants = _grants(deployed(ExistingBucketName="their-media")["Resources"], "ImportFunction")

    assert grants["s3:GetObject"] == {"arn:aws:s3:::their-media/*"}
    assert grants["s3:ListBucket"] == {"arn:aws:s3:::their-media"}


def test_the_signing_secret_is_readable_only_when_configured() -> None:
    default = deployed()["Resources"]
    signing = deployed(SigningCredentialsSecretArn=SIGNING_SECRET)["Resources"]

    token = {"<WistiaTokenSecret>"}
    assert _grants(default, "ImportFunction")["secretsmanager:GetSecretValue"] == token
    assert "SIGNING_CREDENTIALS_SECRET" not in _function(default)["Environment"]["Variables"]
    assert _grants(signing, "ImportFunction")["secretsmanager:GetSecretValue"] == {
        "<WistiaTokenSecret>",
        SIGNING_SECRET,
    }
    variables = _function(signing)["Environment"]["Variables"]
    assert variables["SIGNING_CREDENTIALS_SECRET"] == SIGNING_SECRET


def test_only_eventbridge_may_invoke_through_its_rules_and_send_them_dead_letters(
    resources: dict[str, Any],
) -> None:
    permissions = [
        p["Properties"]
        for p in _of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == "<ImportFunction>"
    ]
    rules = {
        "<ImportFunctionObjectCreatedInExistingBucket.Arn>",
        "<ImportFunctionObjectRemoved.Arn>",
    }
    policy = resources["DeadLetterQueuePolicy"]
    allow, deny = policy["Properties"]["PolicyDocument"]["Statement"]

    assert {p["SourceArn"] for p in permissions if p["Principal"] == "events.amazonaws.com"} == (
        rules
    )
    # S3 may invoke it from the stack's own bucket only (named, so nothing is circular).
    [s3] = [p for p in permissions if p["Principal"] == "s3.amazonaws.com"]
    assert s3["SourceAccount"] == "123456789012"
    assert s3["SourceArn"] == f"arn:aws:s3:::{NEW_BUCKET}"
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert set(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == rules
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- the function ----------------------------------------------------------------------------


def test_the_function_runs_on_python_3_13_arm64_with_its_layer(resources: dict[str, Any]) -> None:
    props = _function(resources)

    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "importer.handler.lambda_handler"
    assert [layer.strip("<>").rstrip("0123456789abcdef") for layer in props["Layers"]] == [
        "DependenciesLayer",
        "CoreLayer",
    ]


def test_memory_timeout_and_log_retention_are_parameters() -> None:
    default = deployed()["Resources"]
    tuned = deployed(FunctionMemorySize="512", FunctionTimeout="300", LogRetentionInDays="365")

    assert (_function(default)["MemorySize"], _function(default)["Timeout"]) == ("256", "60")
    assert default["ImportFunctionLogGroup"]["Properties"]["RetentionInDays"] == "30"
    function = _function(tuned["Resources"])
    assert (function["MemorySize"], function["Timeout"]) == ("512", "300")
    assert tuned["Resources"]["ImportFunctionLogGroup"]["Properties"]["RetentionInDays"] == "365"


@pytest.mark.parametrize(("value", "reserved"), [("5", "5"), ("20", "20"), ("0", None), ("", None)])
def test_reserved_concurrency_caps_the_function_unless_zero_or_empty(
    value: str, reserved: str | None
) -> None:
    function = _function(deployed(ReservedConcurrency=value)["Resources"])

    assert function.get("ReservedConcurrentExecutions") == reserved


def test_reserved_concurrency_defaults_under_wistias_rate_limit() -> None:
    parameter = load_template()["Parameters"]["ReservedConcurrency"]

    assert parameter["Default"] == "5"
    assert "600" in parameter["Description"]


def test_wistia_settings_reach_the_function_only_when_set() -> None:
    default = _function(deployed()["Resources"])["Environment"]["Variables"]
    project_map = '{"clients/acme/":"abc123def4"}'
    configured = _function(
        deployed(WistiaProjectId="p1", WistiaProjectMap=project_map, PresignedUrlExpires="3600")[
            "Resources"
        ]
    )["Environment"]["Variables"]

    assert not {"WISTIA_PROJECT_ID", "WISTIA_PROJECT_MAP", "IMPORT_EXTENSIONS"} & set(default)
    assert default["PRESIGNED_URL_EXPIRES"] == "21600"
    assert configured["WISTIA_PROJECT_ID"] == "p1"
    assert configured["WISTIA_PROJECT_MAP"] == project_map
    assert configured["PRESIGNED_URL_EXPIRES"] == "3600"


def test_failed_async_invocations_land_in_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    props = resources["ImportFunctionEventInvokeConfig"]["Properties"]

    assert props["MaximumRetryAttempts"] == 2
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == "<DeadLetterQueue.Arn>"


def test_a_failed_poller_run_is_not_retried_the_next_scheduled_run_does_the_work(
    resources: dict[str, Any],
) -> None:
    props = resources["PollerFunctionEventInvokeConfig"]["Properties"]

    assert props["FunctionName"] == "<PollerFunction>"
    assert props["MaximumRetryAttempts"] == 0


# --- where the events come from --------------------------------------------------------------


def test_the_bucket_notifies_the_function_of_every_created_object(
    resources: dict[str, Any],
) -> None:
    bucket = resources["MediaBucket"]["Properties"]
    [notification] = bucket["NotificationConfiguration"]["LambdaConfigurations"]

    assert notification["Event"] == "s3:ObjectCreated:*"
    # S3 refuses filter rules with empty values: no prefix or suffix, no filter at all
    assert "Filter" not in notification
    # and the EventBridge rule for an existing bucket is there, switched off
    assert resources["ImportFunctionObjectCreatedInExistingBucket"]["Properties"]["State"] == (
        "DISABLED"
    )


@pytest.mark.parametrize(
    ("parameters", "rules"),
    [
        ({"KeyPrefix": "incoming/"}, [{"Name": "prefix", "Value": "incoming/"}]),
        ({"KeySuffix": ".mp4"}, [{"Name": "suffix", "Value": ".mp4"}]),
        (
            {"KeyPrefix": "incoming/", "KeySuffix": ".mp4"},
            [{"Name": "prefix", "Value": "incoming/"}, {"Name": "suffix", "Value": ".mp4"}],
        ),
    ],
)
def test_key_filters_on_a_new_bucket_are_s3_filter_rules(
    parameters: dict[str, str], rules: list[dict[str, str]]
) -> None:
    bucket = deployed(**parameters)["Resources"]["MediaBucket"]["Properties"]
    [notification] = bucket["NotificationConfiguration"]["LambdaConfigurations"]

    assert notification["Filter"] == {"S3Key": {"Rules": rules}}


def test_an_existing_bucket_is_neither_created_nor_changed_and_eventbridge_delivers() -> None:
    resources = deployed(ExistingBucketName="their-media")["Resources"]

    # The stack's only bucket holds the backfill's manifests and reports, never media.
    assert set(_of_type(resources, "AWS::S3::Bucket")) == {"BackfillReportsBucket"}
    assert set(_of_type(resources, "AWS::S3::BucketPolicy")) == {"BackfillReportsBucketPolicy"}
    rule = resources["ImportFunctionObjectCreatedInExistingBucket"]["Properties"]
    assert rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["their-media"]}},
    }
    [target] = rule["Targets"]
    assert target["Arn"] == "<ImportFunction.Arn>"
    assert target["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}


@pytest.mark.parametrize(
    ("parameters", "key"),
    [
        ({"KeyPrefix": "incoming/"}, [{"prefix": "incoming/"}]),
        ({"KeySuffix": ".mp4"}, [{"suffix": ".mp4"}]),
        ({"KeyPrefix": "incoming/", "KeySuffix": ".mp4"}, [{"wildcard": "incoming/*.mp4"}]),
    ],
)
def test_key_filters_on_an_existing_bucket_are_in_the_event_pattern(
    parameters: dict[str, str], key: list[dict[str, str]]
) -> None:
    resources = deployed(ExistingBucketName="their-media", **parameters)["Resources"]
    pattern = resources["ImportFunctionObjectCreatedInExistingBucket"]["Properties"]["EventPattern"]

    assert pattern["detail"] == {"bucket": {"name": ["their-media"]}, "object": {"key": key}}


def test_key_filters_allow_only_characters_s3_and_eventbridge_match_alike() -> None:
    # EventBridge matches the key as S3 writes it into the event (URL-encoded), S3's filter
    # rules match the key itself: the two agree only on characters that need no encoding.
    parameters = load_template()["Parameters"]
    for name in ("KeyPrefix", "KeySuffix"):
        pattern = parameters[name]["AllowedPattern"]
        assert re.fullmatch(pattern, "incoming/2026_q4-final.v2")
        assert re.fullmatch(pattern, "")
        for bad in ("my videos/", "a+b", "100%", "*.mp4", "é/"):
            assert not re.fullmatch(pattern, bad), bad


# --- watching it -----------------------------------------------------------------------------


def _alarm(resources: dict[str, Any], metric: str) -> dict[str, Any]:
    [alarm] = [
        r["Properties"]
        for r in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if r["Properties"]["MetricName"] == metric
    ]
    return alarm


def test_alarms_watch_dead_letters_and_function_errors(resources: dict[str, Any]) -> None:
    depth = _alarm(resources, "ApproximateNumberOfMessagesVisible")
    errors = _alarm(resources, "Errors")

    assert depth["Namespace"] == "AWS/SQS"
    assert depth["Dimensions"] == [{"Name": "QueueName", "Value": "<DeadLetterQueue.QueueName>"}]
    assert (depth["Threshold"], depth["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": "<ImportFunction>"}]
    assert (errors["Threshold"], errors["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert _alarm(resources, "DestinationDeliveryFailures")["Statistic"] == "Sum"


@pytest.mark.parametrize(
    ("parameters", "actions"),
    [
        ({}, []),
        ({"AlarmEmail": "ops@example.com"}, ["<AlarmTopic>"]),
        ({"AlarmTopicArn": TOPIC}, [TOPIC]),
        ({"AlarmEmail": "ops@example.com", "AlarmTopicArn": TOPIC}, ["<AlarmTopic>", TOPIC]),
    ],
)
def test_alarms_notify_the_email_or_topic_given_and_nobody_otherwise(
    parameters: dict[str, str], actions: list[str]
) -> None:
    resources = deployed(**parameters)["Resources"]

    for alarm in _of_type(resources, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == actions
        assert alarm["Properties"]["OKActions"] == actions
    topics = _of_type(resources, "AWS::SNS::Topic")
    if "AlarmEmail" in parameters:
        [topic] = topics.values()
        assert topic["Properties"]["Subscription"] == [
            {"Protocol": "email", "Endpoint": "ops@example.com"}
        ]
    else:
        assert topics == {}


def test_the_dashboard_shows_the_functions_metrics_dead_letters_and_health(
    resources: dict[str, Any],
) -> None:
    [dashboard] = _of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"])
    metrics = [
        tuple(m for m in metric if not isinstance(m, dict))
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
    ]
    service = load_template()["Globals"]["Function"]["Environment"]["Variables"]

    emf = {m[1] for m in metrics if m[0] == service["POWERTOOLS_METRICS_NAMESPACE"]}
    assert emf == EMF_METRICS
    assert all(
        m[2:] == ("service", service["POWERTOOLS_SERVICE_NAME"])
        for m in metrics
        if m[0] == "S3ToWistia"
    )
    assert (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "<DeadLetterQueue.QueueName>",
    ) in metrics
    lambda_metrics = {m[1] for m in metrics if m[0] == "AWS/Lambda"}
    assert {"Errors", "Throttles", "Duration"} <= lambda_metrics
    assert all(
        m[2:] == ("FunctionName", "<ImportFunction>") for m in metrics if m[0] == "AWS/Lambda"
    )


# --- state -----------------------------------------------------------------------------------


def test_stateful_resources_are_encrypted_and_recoverable(resources: dict[str, Any]) -> None:
    table = resources["ImportsTable"]
    queue = resources["DeadLetterQueue"]

    assert table["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == "Retain"
    assert queue["DeletionPolicy"] == "Retain"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600


def test_outputs_name_the_bucket_in_use_and_how_events_reach_the_function() -> None:
    new = deployed()["Outputs"]
    existing = deployed(ExistingBucketName="their-media")["Outputs"]

    assert new["BucketName"]["Value"] == "<MediaBucket>"
    assert existing["BucketName"]["Value"] == "their-media"
    assert "EventBridge" in existing["EventSource"]["Value"]
    assert "their-media" in existing["EventSource"]["Value"]
    assert "AlarmTopicArn" not in new
    assert "AlarmTopicArn" in deployed(AlarmEmail="ops@example.com")["Outputs"]


# --- deploying it ----------------------------------------------------------------------------


def test_samconfig_deploys_with_safe_defaults_and_the_users_region() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))

    assert config["default"]["global"]["parameters"]["stack_name"] == "s3-to-wistia"
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    # the region comes from the user's AWS configuration, never from the repository
    assert not any(
        "region" in section.get("parameters", {}) for section in config["default"].values()
    )


# --- what S3 can serve, and keeping what matters ----------------------------------------------

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"


def test_kms_keys_are_decryptable_only_when_named_and_only_through_s3() -> None:
    default = deployed()["Resources"]
    with_keys = deployed(KmsKeyArns=KMS_KEY)["Resources"]

    assert "kms:Decrypt" not in _grants(default)
    [statement] = [
        s
        for s in _allow_statements(with_keys, "ImportFunctionRole")
        if s["Action"] == "kms:Decrypt"
    ]
    assert statement["Resource"] == KMS_KEY
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }


def test_the_records_table_refuses_to_be_deleted(resources: dict[str, Any]) -> None:
    table = resources["ImportsTable"]

    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_old_versions_in_the_created_bucket_expire_as_the_parameter_says() -> None:
    def rules(**parameters: str) -> dict[str, Any]:
        bucket = deployed(**parameters)["Resources"]["MediaBucket"]
        found = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        return {rule["Id"]: rule for rule in found}

    assert rules()["ExpireOldVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": "30"}
    assert rules(NoncurrentVersionDays="90")["ExpireOldVersions"][
        "NoncurrentVersionExpiration"
    ] == {"NoncurrentDays": "90"}
    assert "ExpireOldVersions" not in rules(NoncurrentVersionDays="0")
    assert rules()["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }


def test_the_created_token_secret_holds_the_placeholder_the_function_recognises(
    resources: dict[str, Any],
) -> None:
    from s3_to_wistia.adapters.secrets import PLACEHOLDER_TOKEN, token_from_secret
    from s3_to_wistia.errors import PermanentError

    initial = resources["WistiaTokenSecret"]["Properties"]["SecretString"]

    with pytest.raises(PermanentError, match="paste your Wistia API token into it"):
        token_from_secret(initial, "the-secret")
    assert PLACEHOLDER_TOKEN in initial


def test_an_alarm_fires_days_before_a_dead_letter_would_expire(resources: dict[str, Any]) -> None:
    alarm = resources["DeadLetterAgeAlarm"]["Properties"]
    queue = resources["DeadLetterQueue"]

    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    retention = int(queue["Properties"]["MessageRetentionPeriod"])
    assert 0 < int(alarm["Threshold"]) <= retention - 3 * 86400


def test_the_media_name_rule_reaches_the_function() -> None:
    variables = _function(deployed(MediaName="key", KeyPrefix="in/")["Resources"])["Environment"][
        "Variables"
    ]

    assert (variables["MEDIA_NAME_FROM"], variables["MEDIA_NAME_STRIP_PREFIX"]) == ("key", "in/")


# --- the request budget and tracing ------------------------------------------------------


def test_every_function_books_its_wistia_requests_on_the_one_budget_table() -> None:
    resources = deployed(WistiaRequestsPerMinute="900")["Resources"]
    table = resources["RateBudgetTable"]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "budget", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    for logical, function in _of_type(resources, "AWS::Lambda::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["RATE_BUDGET_TABLE_NAME"] == "<RateBudgetTable>", logical
        assert variables["WISTIA_REQUESTS_PER_MINUTE"] == "900", logical


def test_the_budget_defaults_to_wistias_published_limit() -> None:
    variables = _function(deployed()["Resources"])["Environment"]["Variables"]

    assert variables["WISTIA_REQUESTS_PER_MINUTE"] == "600"
    assert load_template()["Parameters"]["WistiaRequestsPerMinute"]["Default"] == 600


def test_the_budget_table_is_written_only_by_conditional_updates(resources: dict[str, Any]) -> None:
    on_budget = {a for a, held in _grants(resources).items() if "<RateBudgetTable.Arn>" in held}

    assert on_budget == {"dynamodb:UpdateItem"}


@pytest.mark.parametrize(("tracing", "expected"), [(None, "PassThrough"), ("Active", "Active")])
def test_tracing_is_a_parameter_off_by_default(tracing: str | None, expected: str) -> None:
    parameters = {} if tracing is None else {"Tracing": tracing}
    function = _function(deployed(**parameters)["Resources"])

    assert function["TracingConfig"] == {"Mode": expected}
    assert function["Environment"]["Variables"]["TRACING_MODE"] == expected
    assert load_template()["Parameters"]["Tracing"]["AllowedValues"] == ["Active", "PassThrough"]


# --- the intake: direct or through a queue ----------------------------------------------


def test_by_default_the_bucket_invokes_the_function_and_the_intake_queue_idles() -> None:
    resources = deployed()["Resources"]
    notifications = resources["MediaBucket"]["Properties"]["NotificationConfiguration"]

    assert set(notifications) == {"LambdaConfigurations"}
    assert "IntakeEventSource" not in resources
    assert "sqs:ReceiveMessage" not in _grants(resources)
    # the grants S3 checks when the notifications are written come first
    assert set(resources["MediaBucket"]["DependsOn"]) == {
        "ImportFunctionObjectCreatedPermission",
        "IntakeQueuePolicy",
    }


@pytest.mark.parametrize("filters", [{}, {"KeyPrefix": "incoming/", "KeySuffix": ".mp4"}])
def test_with_the_queue_intake_the_bucket_sends_to_the_queue_and_lambda_reads_it(
    filters: dict[str, str],
) -> None:
    resources = deployed(Intake="Queue", IntakeMaximumConcurrency="3", **filters)["Resources"]
    notifications = resources["MediaBucket"]["Properties"]["NotificationConfiguration"]
    [to_queue] = notifications["QueueConfigurations"]
    source = resources["IntakeEventSource"]["Properties"]

    assert "LambdaConfigurations" not in notifications  # no direct invocation besides
    assert to_queue["Queue"] == "<IntakeQueue.Arn>"
    assert to_queue["Event"] == "s3:ObjectCreated:*"
    if filters:
        rules = to_queue["Filter"]["S3Key"]["Rules"]
        assert rules == [
            {"Name": "prefix", "Value": "incoming/"},
            {"Name": "suffix", "Value": ".mp4"},
        ]
    assert source["EventSourceArn"] == "<IntakeQueue.Arn>"
    assert source["BatchSize"] == 10
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"] == {"MaximumConcurrency": "3"}


def test_the_queue_intake_reads_only_its_queue_and_only_s3_may_send_to_it() -> None:
    resources = deployed(Intake="Queue")["Resources"]
    grants = _grants(resources)
    [allow_s3, deny] = resources["IntakeQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert set(grants) == CALLS_THE_CODE_MAKES | {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert grants[action] == {"<IntakeQueue.Arn>"}
    assert allow_s3["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow_s3["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:s3:::{NEW_BUCKET}"}
    # Without its condition the Deny would refuse S3 and the function too: no event arrives.
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"Intake": "Queue"},
        {"Intake": "Queue", "ExistingBucketName": "their-media"},
        {"ExistingBucketName": "their-media", "AlarmEmail": "ops@example.com"},
    ],
)
def test_every_deny_in_a_resource_policy_denies_only_insecure_transport(
    parameters: dict[str, str],
) -> None:
    """A Deny of "*" without a condition locks everyone out of the resource, the stack's own
    functions and S3's notifications included: every one the template writes is the
    TLS-only guard."""
    resources = deployed(**parameters)["Resources"]
    denies = [
        (logical, statement)
        for logical, resource in resources.items()
        if resource["Type"].endswith("Policy") and "PolicyDocument" in resource["Properties"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
    ]

    assert denies
    for logical, statement in denies:
        assert statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}, logical


def test_a_failed_event_comes_back_from_the_queue_and_at_last_reaches_the_dead_letters() -> None:
    queue = deployed(Intake="Queue", FunctionTimeout="120")["Resources"]["IntakeQueue"]

    # Lambda requires a visibility timeout of at least the function's timeout
    assert queue["Properties"]["VisibilityTimeout"] == "120"
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == "<DeadLetterQueue.Arn>"
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_an_existing_bucket_with_the_queue_intake_goes_through_eventbridge_to_the_queue() -> None:
    resources = deployed(ExistingBucketName="their-media", Intake="Queue")["Resources"]
    rule = resources["IntakeFromExistingBucket"]["Properties"]
    statements = resources["IntakeQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    from_eventbridge = [
        s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]

    assert rule["Targets"] == [{"Id": "IntakeQueue", "Arn": "<IntakeQueue.Arn>"}]
    assert rule["EventPattern"]["detail"]["bucket"]["name"] == ["their-media"]
    assert from_eventbridge[0]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": "<IntakeFromExistingBucket.Arn>"}
    }
    # and the rule that would invoke the function directly is off
    direct = resources["ImportFunctionObjectCreatedInExistingBucket"]["Properties"]
    assert direct["State"] == "DISABLED"


# --- the backfill (S3 Batch Operations) --------------------------------------------------------


@pytest.mark.parametrize("parameters", DEPLOYS.values(), ids=DEPLOYS.keys())
def test_the_backfill_function_may_do_exactly_what_the_import_function_may(
    parameters: dict[str, str],
) -> None:
    # It runs the same import path: same bucket, records, dead letters and secrets, no more.
    resources = deployed(**parameters)["Resources"]

    assert _grants(resources, "BackfillFunctionRole") == _grants(resources, "ImportFunctionRole")


def test_the_backfill_job_role_is_s3_batch_operations_and_does_only_its_three_things(
    resources: dict[str, Any],
) -> None:
    role = resources["BackfillRole"]["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    # Read the manifest (or list the bucket to generate one), invoke the function, write the
    # report: never the media itself (the function reads it), never the table or the queue.
    assert _grants(resources, "BackfillRole") == {
        "lambda:InvokeFunction": {"<BackfillFunction.Arn>"},
        "s3:GetObject": {"<BackfillReportsBucket.Arn>/manifests/*"},
        "s3:GetObjectVersion": {"<BackfillReportsBucket.Arn>/manifests/*"},
        "s3:PutObject": {"<BackfillReportsBucket.Arn>/reports/*"},
        "s3:GetBucketLocation": {"<BackfillReportsBucket.Arn>"},
        "s3:ListBucket": {f"arn:aws:s3:::{NEW_BUCKET}"},
        "s3:ListBucketVersions": {f"arn:aws:s3:::{NEW_BUCKET}"},
    }


def test_the_backfill_job_role_lists_an_existing_bucket_and_no_other() -> None:
    grants = _grants(deployed(ExistingBucketName="their-media")["Resources"], "BackfillRole")

    assert grants["s3:ListBucket"] == {"arn:aws:s3:::their-media"}
    assert grants["s3:ListBucketVersions"] == {"arn:aws:s3:::their-media"}


def test_the_backfill_function_is_capped_and_told_its_share_of_wistias_rate() -> None:
    default = _function(deployed()["Resources"], "BackfillFunction")
    tuned = _function(
        deployed(BackfillConcurrency="8", BackfillRequestsPerMinute="480")["Resources"],
        "BackfillFunction",
    )

    assert default["Handler"] == "backfill.handler.lambda_handler"
    assert default["ReservedConcurrentExecutions"] == "3"
    variables = default["Environment"]["Variables"]
    assert (variables["BACKFILL_CONCURRENCY"], variables["BACKFILL_REQUESTS_PER_MINUTE"]) == (
        "3",
        "240",
    )
    assert tuned["ReservedConcurrentExecutions"] == "8"
    assert tuned["Environment"]["Variables"]["BACKFILL_CONCURRENCY"] == "8"
    assert tuned["Environment"]["Variables"]["BACKFILL_REQUESTS_PER_MINUTE"] == "480"
    # The same import settings as the import function, so both import an object alike
    # (deletions come to the import function only)
    imports = _function(deployed()["Resources"])["Environment"]["Variables"]
    imports.pop("ON_DELETE")
    assert {k: v for k, v in variables.items() if not k.startswith("BACKFILL_")} == imports


def test_by_default_imports_and_backfill_together_stay_under_wistias_600_a_minute() -> None:
    parameters = load_template()["Parameters"]
    # The import function's own description: about 60 requests a minute per instance.
    imports = 60 * int(parameters["ReservedConcurrency"]["Default"])
    backfill = int(parameters["BackfillRequestsPerMinute"]["Default"])

    assert imports + backfill <= 600


def test_nothing_invokes_the_backfill_function_but_the_job_role(resources: dict[str, Any]) -> None:
    permissions = _of_type(resources, "AWS::Lambda::Permission").values()
    targets = [p["Properties"]["FunctionName"] for p in permissions]

    assert "<BackfillFunction>" not in targets and "<BackfillFunction.Arn>" not in targets
    # Batch Operations invokes it synchronously and retries a task itself: no async config.
    configs = _of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    assert "<BackfillFunction>" not in [c["Properties"]["FunctionName"] for c in configs]


def test_the_reports_bucket_is_private_encrypted_https_only_and_expires_its_files(
    resources: dict[str, Any],
) -> None:
    bucket = resources["BackfillReportsBucket"]
    props = bucket["Properties"]
    [deny] = resources["BackfillReportsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    [expiry] = props["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == 90
    assert bucket["DeletionPolicy"] == "Retain"
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_outputs_name_the_backfill_function_its_role_and_where_reports_go() -> None:
    outputs = deployed()["Outputs"]

    assert outputs["BackfillFunctionArn"]["Value"] == "<BackfillFunction.Arn>"
    assert outputs["BackfillRoleArn"]["Value"] == "<BackfillRole.Arn>"
    assert outputs["BackfillReportsBucket"]["Value"] == "<BackfillReportsBucket>"
    assert outputs["BackfillRequestsPerMinute"]["Value"] == "240"


def test_deletions_are_neither_subscribed_nor_granted_unless_followed() -> None:
    resources = deployed()["Resources"]

    assert resources["ImportFunctionObjectRemoved"]["Properties"]["State"] == "DISABLED"
    assert (
        "EventBridgeConfiguration"
        not in resources["MediaBucket"]["Properties"]["NotificationConfiguration"]
    )
    assert _function(resources)["Environment"]["Variables"]["ON_DELETE"] == "keep"


@pytest.mark.parametrize("parameters", [{}, {"ExistingBucketName": "their-media"}])
@pytest.mark.parametrize("on_delete", ["archive", "delete"])
def test_followed_deletions_reach_the_function_through_eventbridge(
    parameters: dict[str, str], on_delete: str
) -> None:
    resources = deployed(OnDelete=on_delete, **parameters)["Resources"]
    rule = resources["ImportFunctionObjectRemoved"]["Properties"]
    bucket = parameters.get("ExistingBucketName", NEW_BUCKET)

    assert rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Deleted"],
        "detail": {"bucket": {"name": [bucket]}},
    }
    if "MediaBucket" in resources:  # a new bucket sends its events to EventBridge too
        notifications = resources["MediaBucket"]["Properties"]["NotificationConfiguration"]
        assert notifications["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
        [created] = notifications["LambdaConfigurations"]
        assert created["Event"] == "s3:ObjectCreated:*"
    # A deletion reads its key's records: the table itself, besides the index
    assert _grants(resources)["dynamodb:Query"] == {
        "<ImportsTable.Arn>",
        "<ImportsTable.Arn>/index/by-wistia-hashed-id",
    }
    assert _function(resources)["Environment"]["Variables"]["ON_DELETE"] == on_delete
