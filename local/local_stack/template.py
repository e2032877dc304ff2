"""Provisioning template.yaml's resources on the local stack.

Tables, queues, buckets and secrets are created from the template's own properties, and
the function's environment is resolved from the template's own Environment, so the
local stack cannot drift from what `sam deploy` creates. Parameters are applied as
CloudFormation applies them: a resource whose Condition is false is not created,
`Fn::If` picks its branch and `AWS::NoValue` disappears (see `apply_conditions`).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION_TYPE = "AWS::Serverless::Function"
IMPORT_FUNCTION = "ImportFunction"
# The resources Stack names; the template may hold more of the same types.
RECORDS_TABLE = "ImportsTable"
DEAD_LETTER_QUEUE = "DeadLetterQueue"
TOKEN_SECRET = "WistiaTokenSecret"
MEDIA_BUCKET = "MediaBucket"
_names = itertools.count(1)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...) as long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 (safe loader subclass)
    return document


@dataclass(frozen=True)
class Stack:
    """The physical names of one provisioned copy of the template."""

    bucket: str
    table_name: str
    queue_url: str
    secret_id: str
    # The import function's environment variables, as the template sets them.
    function_environment: dict[str, str]
    # The parameter values the stack was provisioned with (defaults included).
    parameters: dict[str, str] = field(default_factory=dict)
    # Every function's environment variables, by logical id.
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    # Every secret's ARN, by logical id (secret_id is the Wistia token's).
    secret_ids: dict[str, str] = field(default_factory=dict)
    # The physical name (or URL, ARN) of every resource created, by logical id.
    resources: dict[str, str] = field(default_factory=dict)

    def environment_for(self, wistia_url: str) -> dict[str, str]:
        """The function's environment with both Wistia APIs pointed at one emulator."""
        return {
            **self.function_environment,
            "WISTIA_UPLOAD_URL": wistia_url,
            "WISTIA_API_URL": wistia_url,
        }

    def environment_of(self, logical_id: str, wistia_url: str) -> dict[str, str]:
        """Another function's environment (e.g. BackfillFunction's), Wistia as above."""
        return {
            **self.environments[logical_id],
            "WISTIA_UPLOAD_URL": wistia_url,
            "WISTIA_API_URL": wistia_url,
        }


def provision(
    token: str,
    template: dict[str, Any] | None = None,
    parameters: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Stack:
    """Create the template's resources under fresh names; boto3 reads the endpoint from env.

    `parameters` override the template's defaults, as `sam deploy --parameter-overrides`
    does. With ExistingBucketName set, the template creates no bucket: that bucket (the
    user's own, created here unversioned if it does not exist yet) is the stack's bucket.
    Secrets hold `token`, or the value `secrets` gives their logical id (what a user pastes
    into them after deploying, such as the webhook's secret key).
    """
    template = template or load_template()
    values = parameter_values(template, parameters)
    template = apply_conditions(template, values)
    suffix = f"t{next(_names)}-{id(template) % 10000}"
    physical: dict[str, str] = {}
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        name = f"{logical.lower()}-{suffix}"
        if kind == "AWS::S3::Bucket":
            physical[logical] = _bucket(name, props)
        elif kind == "AWS::DynamoDB::Table":
            physical[logical] = _table(name, props)
        elif kind == "AWS::SQS::Queue":
            physical[logical] = _queue(name, props, values)
        elif kind == "AWS::SecretsManager::Secret":
            physical[logical] = _secret(name, (secrets or {}).get(logical, token))
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]:
            _redrive(physical[logical], resource["Properties"]["RedrivePolicy"], physical)
    environments = {
        logical: function_environment(template, physical, values, logical)
        for logical, resource in template["Resources"].items()
        if resource["Type"] == FUNCTION_TYPE
    }
    environment = environments[IMPORT_FUNCTION]
    by_type: dict[str, str] = {}
    for logical, resource in template["Resources"].items():
        by_type.setdefault(resource["Type"], logical)
    existing = values.get("ExistingBucketName", "")
    # The media bucket by its name: the template has other buckets (backfill reports).
    if MEDIA_BUCKET in physical:
        bucket = physical[MEDIA_BUCKET]
    elif existing:
        bucket = _existing_bucket(existing)
    else:
        raise ValueError("template.yaml creates no bucket and names no existing one")
    return Stack(
        bucket=bucket,
        table_name=physical[RECORDS_TABLE],
        queue_url=physical[DEAD_LETTER_QUEUE],
        secret_id=physical.get(TOKEN_SECRET) or physical[by_type["AWS::SecretsManager::Secret"]],
        function_environment=environment,
        parameters=values,
        environments=environments,
        secret_ids={
            logical: physical[logical]
            for logical, resource in template["Resources"].items()
            if resource["Type"] == "AWS::SecretsManager::Secret"
        },
        resources=physical,
    )


def parameter_values(
    template: dict[str, Any], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every parameter's value: its Default, replaced by an override. Unknown names fail,
    as they fail `sam deploy`, so a test cannot set a parameter the template lacks."""
    declared = template.get("Parameters", {})
    unknown = set(overrides or {}) - set(declared)
    if unknown:
        raise ValueError(f"template.yaml has no parameter {', '.join(sorted(unknown))}")
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
    values.update({name: str(value) for name, value in (overrides or {}).items()})
    return values


_NO_VALUE = object()


def apply_conditions(template: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the template as CloudFormation sees it for these parameter values: resources
    and outputs whose Condition is false are gone, every `Fn::If` is replaced by its chosen
    branch and `AWS::NoValue` is removed from its map or list. Works on SAM templates and on
    their transformed CloudFormation alike."""
    document = copy.deepcopy(template)
    conditions: dict[str, bool] = {}

    def holds(name: str) -> bool:
        if name not in conditions:
            conditions[name] = bool(_evaluate(document["Conditions"][name], holds, values))
        return conditions[name]

    for section in ("Resources", "Outputs"):
        entries = document.get(section, {})
        for logical in [k for k, v in entries.items() if "Condition" in v]:
            if holds(entries[logical]["Condition"]):
                del entries[logical]["Condition"]
            else:
                del entries[logical]
    for section in ("Resources", "Outputs", "Globals"):
        if section in document:
            document[section] = _choose(document[section], holds)
    return document


def _choose(value: Any, holds: Callable[[str], bool]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return _choose(when_true if holds(condition) else when_false, holds)
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        chosen = {key: _choose(item, holds) for key, item in value.items()}
        return {key: item for key, item in chosen.items() if item is not _NO_VALUE}
    if isinstance(value, list):
        return [item for item in (_choose(x, holds) for x in value) if item is not _NO_VALUE]
    return value


def _evaluate(expression: Any, holds: Callable[[str], bool], values: Mapping[str, str]) -> Any:
    if isinstance(expression, dict):
        if "Fn::Not" in expression:
            return not _evaluate(expression["Fn::Not"][0], holds, values)
        if "Fn::And" in expression:
            return all(_evaluate(x, holds, values) for x in expression["Fn::And"])
        if "Fn::Or" in expression:
            return any(_evaluate(x, holds, values) for x in expression["Fn::Or"])
        if "Fn::Equals" in expression:
            left, right = (_evaluate(x, holds, values) for x in expression["Fn::Equals"])
            return str(left) == str(right)
        if "Condition" in expression:
            return holds(expression["Condition"])
        if "Ref" in expression and expression["Ref"] in values:
            return values[expression["Ref"]]
        if "Fn::Join" in expression:
            # A CommaDelimitedList parameter is its items: join them.
            delimiter, items = expression["Fn::Join"]
            value = _evaluate(items, holds, values)
            parts = value.split(",") if isinstance(value, str) else list(value)
            return str(delimiter).join(part.strip() for part in parts)
        raise ValueError(f"cannot evaluate condition {expression} locally")
    return expression


def function_environment(
    template: dict[str, Any],
    physical: dict[str, str],
    values: Mapping[str, str] | None = None,
    logical_id: str = "ImportFunction",
) -> dict[str, str]:
    """A function's Environment.Variables (Globals merged), resolved locally."""
    values = parameter_values(template) if values is None else values
    template = apply_conditions(template, values)
    function = _function(template, logical_id)
    variables = {
        **template.get("Globals", {})
        .get("Function", {})
        .get("Environment", {})
        .get("Variables", {}),
        **function["Properties"].get("Environment", {}).get("Variables", {}),
    }
    lookup = {**values, **physical}
    resolved = {name: _resolve(value, lookup) for name, value in variables.items()}
    return {name: str(value) for name, value in resolved.items() if value is not None}


def function_setting(
    template: dict[str, Any],
    name: str,
    default: Any = None,
    parameters: Mapping[str, str] | None = None,
    logical_id: str = "ImportFunction",
) -> Any:
    """One of a function's properties (e.g. Timeout), Globals applied and resolved for
    these parameter values (the defaults when none are given)."""
    values = parameter_values(template, parameters)
    template = apply_conditions(template, values)
    properties = _function(template, logical_id)["Properties"]
    globals_ = template.get("Globals", {}).get("Function", {})
    value = properties.get(name, globals_.get(name, default))
    return _resolve(value, values)


def _function(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    function = template["Resources"].get(logical_id)
    if function is None or function["Type"] != FUNCTION_TYPE:
        raise ValueError(f"template.yaml declares no {FUNCTION_TYPE} {logical_id}")
    found: dict[str, Any] = function
    return found


def _resolve(value: Any, lookup: Mapping[str, str]) -> Any:
    """A value with its Refs to parameters and provisioned resources replaced (conditions
    already applied)."""
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        ref = value["Ref"]
        if ref == "AWS::NoValue":
            return None
        if ref in lookup:
            return lookup[ref]
        raise ValueError(f"cannot resolve !Ref {ref} locally")
    raise ValueError(f"cannot resolve {value} locally")


def _bucket(name: str, props: dict[str, Any]) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _table(name: str, props: dict[str, Any]) -> str:
    extra = {}
    if props.get("GlobalSecondaryIndexes"):
        extra["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        **extra,
    )
    return name


def _existing_bucket(name: str) -> str:
    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket=name)
    except ClientError:
        s3.create_bucket(Bucket=name)
    return name


def _queue(name: str, props: dict[str, Any], values: Mapping[str, str]) -> str:
    attributes = {}
    for attribute in ("MessageRetentionPeriod", "VisibilityTimeout"):
        if attribute in props:
            attributes[attribute] = str(_resolve(props[attribute], values))
    return str(boto3.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _redrive(queue_url: str, policy: dict[str, Any], physical: Mapping[str, str]) -> None:
    """A queue's RedrivePolicy, its dead-letter queue's !GetAtt Arn resolved (once every
    queue exists)."""
    target = policy["deadLetterTargetArn"]
    logical, attribute = target["Fn::GetAtt"]
    if attribute != "Arn":
        raise ValueError(f"cannot resolve !GetAtt {logical}.{attribute} locally")
    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=physical[logical], AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(policy["maxReceiveCount"]),
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)})


def _secret(name: str, token: str) -> str:
    return str(boto3.client("secretsmanager").create_secret(Name=name, SecretString=token)["ARN"])
