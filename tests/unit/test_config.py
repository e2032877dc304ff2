"""Configuration: read once, each problem naming its variable."""

from __future__ import annotations

import pytest

from s3_to_wistia.config import DEFAULT_EXTENSIONS, ConfigError, Settings

REQUIRED = {
    "WISTIA_TOKEN_SECRET": "wistia-token",
    "IMPORTS_TABLE_NAME": "imports",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/dlq",
}


def test_defaults_are_safe() -> None:
    settings = Settings.from_env(REQUIRED)

    assert settings.upload_url == "https://upload.wistia.com/"
    assert settings.project_id is None
    assert settings.extensions == DEFAULT_EXTENSIONS
    assert settings.presigned_url_expires == 21600


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_each_required_variable_is_named_when_missing(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}

    with pytest.raises(ConfigError, match=f"{missing} is required"):
        Settings.from_env(env)


def test_blank_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="IMPORTS_TABLE_NAME is required"):
        Settings.from_env({**REQUIRED, "IMPORTS_TABLE_NAME": "  "})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8089/",
        "http://localhost:9/",
        "http://[::1]:8089/",
        "https://upload.wistia.com/",
    ],
)
def test_upload_url_https_or_loopback(url: str) -> None:
    assert Settings.from_env({**REQUIRED, "WISTIA_UPLOAD_URL": url}).upload_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://upload.wistia.com/",
        "http://10.0.0.5/",
        "ftp://x/",
        "upload.wistia.com",
        # loopback, but not one of the contract's three hosts
        "http://127.0.0.2:8089/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost.example.com/",
    ],
)
def test_upload_url_refuses_plain_http_to_other_hosts(url: str) -> None:
    with pytest.raises(ConfigError, match="WISTIA_UPLOAD_URL"):
        Settings.from_env({**REQUIRED, "WISTIA_UPLOAD_URL": url})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PRESIGNED_URL_EXPIRES", "0"),
        ("PRESIGNED_URL_EXPIRES", "604801"),
        ("PRESIGNED_URL_EXPIRES", "1h"),
        ("WISTIA_CONTACT_ID", "abc"),
        ("WISTIA_MAX_ATTEMPTS", "0"),
        ("WISTIA_READ_TIMEOUT", "-1"),
        ("IMPORT_EXTENSIONS", "mp4,,mov"),
        ("IMPORT_EXTENSIONS", "mp4;mov"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**REQUIRED, name: value})


def test_extension_filter_is_normalised_and_star_means_everything() -> None:
    assert Settings.from_env({**REQUIRED, "IMPORT_EXTENSIONS": " .MP4, mov "}).extensions == {
        "mp4",
        "mov",
    }
    assert Settings.from_env({**REQUIRED, "IMPORT_EXTENSIONS": "*"}).extensions is None


def test_project_map_is_ordered_longest_prefix_first() -> None:
    env = {**REQUIRED, "WISTIA_PROJECT_MAP": '{"a/": "p1", "a/b/": "p2", "": "p3"}'}

    assert Settings.from_env(env).project_map == (("a/b/", "p2"), ("a/", "p1"), ("", "p3"))


@pytest.mark.parametrize("raw", ["[1]", "{bad", '{"a/": 3}', '{"a/": " "}'])
def test_a_bad_project_map_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="WISTIA_PROJECT_MAP"):
        Settings.from_env({**REQUIRED, "WISTIA_PROJECT_MAP": raw})


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("0", False), ("No", False)])
def test_lookup_switch(raw: str, value: bool) -> None:
    settings = Settings.from_env({**REQUIRED, "WISTIA_LOOKUP_BEFORE_RESUBMIT": raw})

    assert settings.lookup_before_resubmit is value


def test_signing_secret_is_optional() -> None:
    assert Settings.from_env(REQUIRED).signing_credentials_secret is None
    env = {**REQUIRED, "SIGNING_CREDENTIALS_SECRET": "arn:aws:secretsmanager:x"}
    assert Settings.from_env(env).signing_credentials_secret == "arn:aws:secretsmanager:x"


@pytest.mark.parametrize(
    ("variables", "region"),
    [
        ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "eu-west-2"}, "eu-west-2"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}, "eu-west-1"),
        ({}, None),
    ],
)
def test_the_region_comes_from_either_standard_variable(
    variables: dict[str, str], region: str | None
) -> None:
    assert Settings.from_env({**REQUIRED, **variables}).aws_region == region
