"""The Lambda Function URL stand-in, over real HTTP: the payload-2.0 event a handler gets,
and the HTTP answer its result becomes, as Lambda builds them."""

from __future__ import annotations

import base64
import json
from typing import Any

import urllib3

from local_stack.function_url import MAX_REQUEST_BYTES, FunctionUrl

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))


class Recorder:
    """A handler that keeps each event and answers with `result`."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.result = result
        self.error = error

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        assert context.get_remaining_time_in_millis() > 0
        self.events.append(event)
        if self.error is not None:
            raise self.error
        return self.result


def test_a_json_post_arrives_as_text_with_lower_case_headers() -> None:
    handler = Recorder({"statusCode": 201, "headers": {"X-Answer": "yes"}, "body": '{"ok": 1}'})
    with FunctionUrl(handler) as url:
        answer = HTTP.request(
            "POST",
            url.url + "hooks?a=1&b=two",
            body=b'{"events": []}',
            headers={"Content-Type": "application/json", "X-Wistia-Signature": "abc"},
        )

    assert (answer.status, answer.headers["X-Answer"], answer.data) == (201, "yes", b'{"ok": 1}')
    [event] = handler.events
    assert event["version"] == "2.0"
    assert (event["rawPath"], event["rawQueryString"]) == ("/hooks", "a=1&b=two")
    assert event["queryStringParameters"] == {"a": "1", "b": "two"}
    assert event["headers"]["x-wistia-signature"] == "abc"
    assert (event["body"], event["isBase64Encoded"]) == ('{"events": []}', False)
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_a_binary_body_arrives_base64_encoded() -> None:
    handler = Recorder(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    with FunctionUrl(handler) as url:
        answer = HTTP.request(
            "POST",
            url.url,
            body=b"\xff\xfe\x00",
            headers={"Content-Type": "application/octet-stream"},
        )

    assert answer.data == b"\x00\x01"
    [event] = handler.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00"


def test_a_request_over_6_mb_is_refused_without_invoking_the_function() -> None:
    handler = Recorder({"statusCode": 200})
    with FunctionUrl(handler) as url:
        answer = HTTP.request("POST", url.url, body=b"x" * (MAX_REQUEST_BYTES + 1))

    assert answer.status == 413
    assert "must be smaller than" in json.loads(answer.data)["Message"]
    assert handler.events == []


def test_a_function_error_is_a_502_and_a_plain_result_a_200_json() -> None:
    with FunctionUrl(Recorder(error=RuntimeError("boom"))) as failing:
        failed = HTTP.request("POST", failing.url, body=b"{}")
    with FunctionUrl(Recorder({"hello": "world"})) as plain:
        inferred = HTTP.request("GET", plain.url)

    assert failed.status == 502
    assert (inferred.status, json.loads(inferred.data)) == (200, {"hello": "world"})
