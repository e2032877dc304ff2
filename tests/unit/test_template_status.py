"""template.yaml's processing-status pieces, as CloudFormation will see them: the webhook
receiver behind a public Function URL, the status poller on its schedule, the pending-status
index, the webhook secret, the alarm and the dashboard (helpers from test_template)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local_stack.template import load_template
from s3_to_wistia.adapters.records import MEDIA_INDEX, PENDING_INDEX
from s3_to_wistia.adapters.secrets import PLACEHOLDER_WEBHOOK_KEY, webhook_key_from_secret
from s3_to_wistia.config import ConfigError
from s3_to_wistia.contracts import MEDIA_WATCHING
from s3_to_wistia.errors import PermanentError
from s3_to_wistia.polling import PollerSettings
from s3_to_wistia.webhooks import WebhookSettings
from unit.test_template import _function, _of_type, deployed


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    found: dict[str, Any] = deployed()["Resources"]
    return found


def _environment(resources: dict[str, Any], function: str) -> dict[str, str]:
    variables: dict[str, str] = _function(resources, function)["Environment"]["Variables"]
    return variables


def test_the_webhook_url_is_public_and_invokes_only_the_receiver(
    resources: dict[str, Any],
) -> None:
    [url] = _of_type(resources, "AWS::Lambda::Url").values()
    permissions = [
        p["Properties"]
        for p in _of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == "<WebhookFunction>"
    ]

    # Wistia cannot sign AWS requests: the X-Wistia-Signature check is the authentication
    assert url["Properties"] == {
        "TargetFunctionArn": "<WebhookFunction>",
        "AuthType": "NONE",
        "InvokeMode": "BUFFERED",
    }
    # and anyone may invoke the receiver, but only through its URL
    assert sorted((p["Action"], p["Principal"]) for p in permissions) == [
        ("lambda:InvokeFunction", "*"),
        ("lambda:InvokeFunctionUrl", "*"),
    ]
    invoke = next(p for p in permissions if p["Action"] == "lambda:InvokeFunction")
    assert invoke["InvokedViaFunctionUrl"] is True


def test_the_receiver_is_configured_as_the_contract_says(resources: dict[str, Any]) -> None:
    variables = _environment(resources, "WebhookFunction")
    # Globals give every function Powertools' settings, the tracing mode and the request
    # budget (the receiver never calls Wistia, and may not write the budget table).
    shared = {"TRACING_MODE", "WISTIA_REQUESTS_PER_MINUTE", "RATE_BUDGET_TABLE_NAME"}
    own = {
        k: v for k, v in variables.items() if not k.startswith("POWERTOOLS_") and k not in shared
    }

    assert own == {
        "WISTIA_WEBHOOK_SECRET": "<WistiaWebhookSecret>",
        "IMPORTS_TABLE_NAME": "<ImportsTable>",
        "DEAD_LETTER_QUEUE_URL": "<DeadLetterQueue>",
    }
    assert WebhookSettings.from_env(variables).webhook_secret_id == "<WistiaWebhookSecret>"
    assert _function(resources, "WebhookFunction")["Handler"] == "webhook.handler.lambda_handler"


def test_outputs_give_the_webhook_url_to_paste_into_wistia_and_its_secret() -> None:
    outputs = deployed()["Outputs"]

    assert outputs["WebhookUrl"]["Value"] == "<WebhookFunctionUrl.FunctionUrl>"
    assert "Account Settings > Webhooks" in outputs["WebhookUrl"]["Description"]
    assert outputs["WistiaWebhookSecretArn"]["Value"] == "<WistiaWebhookSecret>"


def test_the_created_webhook_secret_holds_a_placeholder_the_receiver_never_signs_with(
    resources: dict[str, Any],
) -> None:
    initial = resources["WistiaWebhookSecret"]["Properties"]["SecretString"]

    assert PLACEHOLDER_WEBHOOK_KEY in initial
    with pytest.raises(PermanentError, match="paste the secret key"):
        webhook_key_from_secret(initial, "the-secret")


def test_the_pending_status_index_is_sparse_and_least_recently_checked_first(
    resources: dict[str, Any],
) -> None:
    table = resources["ImportsTable"]["Properties"]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}

    assert set(indexes) == {MEDIA_INDEX, PENDING_INDEX}
    pending = indexes[PENDING_INDEX]
    # Keyed by an attribute only an awaiting record holds (one value), sorted by last check
    assert pending["KeySchema"] == [
        {"AttributeName": "media_watch", "KeyType": "HASH"},
        {"AttributeName": "media_checked_at", "KeyType": "RANGE"},
    ]
    assert (types["media_watch"], types["media_checked_at"]) == ("S", "S")
    assert isinstance(MEDIA_WATCHING, str)
    # and it carries what the poller needs without reading each record
    assert pending["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["wistia_hashed_id", "media_status"],
    }


def test_the_poller_runs_on_the_schedule_and_budget_given() -> None:
    default = deployed()["Resources"]
    tuned = deployed(
        StatusPollSchedule="rate(1 hour)", StatusPollAfterSeconds="60", StatusPollMaxRequests="3"
    )["Resources"]

    assert default["PollerFunctionSchedule"]["Properties"]["ScheduleExpression"] == (
        "rate(5 minutes)"
    )
    assert tuned["PollerFunctionSchedule"]["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    variables = _environment(tuned, "PollerFunction")
    assert (variables["STATUS_POLL_AFTER_SECONDS"], variables["STATUS_POLL_MAX_REQUESTS"]) == (
        "60",
        "3",
    )
    settings = PollerSettings.from_env(variables)
    assert (settings.poll_after_seconds, settings.max_requests) == (60, 3)


def test_the_poller_takes_at_most_a_tenth_of_the_accounts_requests() -> None:
    parameter = load_template()["Parameters"]["StatusPollMaxRequests"]
    variables = _environment(deployed()["Resources"], "PollerFunction")

    assert PollerSettings.from_env(variables).max_requests == int(parameter["Default"])
    assert int(parameter["MaxValue"]) == 60  # a tenth of Wistia's 600 a minute
    assert PollerSettings.from_env({**variables, "STATUS_POLL_MAX_REQUESTS": "60"})
    with pytest.raises(ConfigError, match="STATUS_POLL_MAX_REQUESTS must be at most 6"):
        PollerSettings.from_env(
            {**variables, "STATUS_POLL_MAX_REQUESTS": "7", "WISTIA_REQUESTS_PER_MINUTE": "60"}
        )


def test_the_schedule_parameter_takes_eventbridge_expressions_only() -> None:
    pattern = load_template()["Parameters"]["StatusPollSchedule"]["AllowedPattern"]

    for good in ("rate(5 minutes)", "rate(1 minute)", "rate(2 hours)", "cron(0/10 * * * ? *)"):
        assert re.fullmatch(pattern, good), good
    for bad in ("rate(1 minutes)", "rate(0 minutes)", "every 5 minutes", ""):
        assert not re.fullmatch(pattern, bad), bad


def test_an_alarm_fires_when_wistia_fails_a_media(resources: dict[str, Any]) -> None:
    alarm = resources["MediaFailedAlarm"]["Properties"]
    service = load_template()["Globals"]["Function"]["Environment"]["Variables"]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("S3ToWistia", "MediaFailed")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service["POWERTOOLS_SERVICE_NAME"]}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )
    assert "make redrive" in alarm["AlarmDescription"]


def test_the_dashboard_shows_time_to_ready_and_failed_media(resources: dict[str, Any]) -> None:
    [dashboard] = _of_type(resources, "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(dashboard["Properties"]["DashboardBody"])["widgets"]
    by_title = {widget["properties"]["title"]: widget["properties"] for widget in widgets}

    time_to_ready = by_title["Time from submission to ready (s)"]["metrics"]
    assert {m[1] for m in time_to_ready} == {"MediaTimeToReady"}
    assert [m[-1]["stat"] for m in time_to_ready] == ["p50", "p90", "Maximum"]
    outcomes = by_title["Media at Wistia: ready and failed (per 5 minutes)"]["metrics"]
    assert [m[1] for m in outcomes] == ["MediaReady", "MediaFailed"]
