"""Provisioning template.yaml's resources on the local stack.

Tables, queues, buckets and secrets are created from the template's own properties, and
the function's environment is resolved from the template's own Environment, so the
local stack cannot drift from what `sam deploy` creates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION_TYPE = "AWS::Serverless::Function"
_names = itertools.count(1)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...) as long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
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
    # The function's environment variables, as the template sets them.
    function_environment: dict[str, str]

    def environment_for(self, wistia_url: str) -> dict[str, str]:
        """The function's environment with both Wistia APIs pointed at one emulator."""
        return {
            **self.function_environment,
            "WISTIA_UPLOAD_URL": wistia_url,
            "WISTIA_API_URL": wistia_url,
        }


def provision(token: str, template: dict[str, Any] | None = None) -> Stack:
    """Create the template's resources under fresh names; boto3 reads the endpoint from env."""
    template = template or load_template()
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
            physical[logical] = _queue(name, props)
        elif kind == "AWS::SecretsManager::Secret":
            physical[logical] = _secret(name, token)
    environment = function_environment(template, physical)
    by_type = {r["Type"]: logical for logical, r in template["Resources"].items()}
    return Stack(
        bucket=physical[by_type["AWS::S3::Bucket"]],
        table_name=physical[by_type["AWS::DynamoDB::Table"]],
        queue_url=physical[by_type["AWS::SQS::Queue"]],
        secret_id=physical[by_type["AWS::SecretsManager::Secret"]],
        function_environment=environment,
    )


def function_environment(template: dict[str, Any], physical: dict[str, str]) -> dict[str, str]:
    """The import function's Environment.Variables (Globals merged), resolved locally."""
    functions = [r for r in template["Resources"].values() if r["Type"] == FUNCTION_TYPE]
    if len(functions) != 1:
        raise ValueError(f"template.yaml must declare one {FUNCTION_TYPE}, found {len(functions)}")
    variables = {
        **template.get("Globals", {})
        .get("Function", {})
        .get("Environment", {})
        .get("Variables", {}),
        **functions[0]["Properties"].get("Environment", {}).get("Variables", {}),
    }
    resolved = {name: _resolve(value, template, physical) for name, value in variables.items()}
    return {name: str(value) for name, value in resolved.items() if value is not None}


def _resolve(value: Any, template: dict[str, Any], physical: dict[str, str]) -> Any:
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        ref = value["Ref"]
        if ref == "AWS::NoValue":
            return None
        if ref in physical:
            return physical[ref]
        parameter = template.get("Parameters", {}).get(ref)
        if parameter is not None:
            return parameter.get("Default", "")
        raise ValueError(f"cannot resolve !Ref {ref} locally")
    if "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        chosen = when_true if _condition(condition, template, physical) else when_false
        return _resolve(chosen, template, physical)
    raise ValueError(f"cannot resolve {value} locally")


def _condition(name: str, template: dict[str, Any], physical: dict[str, str]) -> bool:
    return bool(_evaluate(template["Conditions"][name], template, physical))


def _evaluate(expression: Any, template: dict[str, Any], physical: dict[str, str]) -> Any:
    if isinstance(expression, dict):
        if "Fn::Not" in expression:
            return not _evaluate(expression["Fn::Not"][0], template, physical)
        if "Fn::Equals" in expression:
            left, right = (_evaluate(x, template, physical) for x in expression["Fn::Equals"])
            return left == right
        if "Condition" in expression:
            return _condition(expression["Condition"], template, physical)
        return _resolve(expression, template, physical)
    return expression


def _bucket(name: str, props: dict[str, Any]) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _table(name: str, props: dict[str, Any]) -> str:
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
    )
    return name


def _queue(name: str, props: dict[str, Any]) -> str:
    attributes = {}
    if "MessageRetentionPeriod" in props:
        attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
    return str(boto3.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _secret(name: str, token: str) -> str:
    return str(boto3.client("secretsmanager").create_secret(Name=name, SecretString=token)["ARN"])
