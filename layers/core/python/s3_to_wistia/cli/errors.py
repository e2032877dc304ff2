"""Exit codes, and the one-line messages for failures an operator can fix.

A subcommand raises CliError (exit 1) or UsageProblem (exit 2) with a message that says
what went wrong and what to do; it need not catch AWS's, Wistia's or the file system's
usual failures: main() turns them into such a line through `explain`. Anything else is a
bug and says so.
"""

from __future__ import annotations

from typing import Any

from s3_to_wistia.adapters.wistia import WistiaUnreachable

OK = 0
FAILED = 1
USAGE = 2
INTERRUPTED = 130

_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    }
)


class CliError(Exception):
    """An expected failure: one line saying what went wrong and what to do. Exit code 1."""

    exit_code = FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageProblem(CliError):
    """The command line itself is wrong. Exit code 2, as for click's own usage errors."""

    exit_code = USAGE


def explain(error: BaseException) -> CliError | None:
    """The one-line error for a failure the operator can act on; None for a bug."""
    if isinstance(error, CliError):
        return error
    if isinstance(error, WistiaUnreachable):
        return CliError(
            f"Wistia is unreachable: {error.reason}; check your network and "
            "--upload-url / --api-url"
        )
    if type(error).__module__.startswith("botocore"):
        return _explain_aws(error)
    if isinstance(error, OSError) and error.filename is not None:
        return CliError(f"cannot use {error.filename}: {error.strerror or error}")
    return None


def _explain_aws(error: BaseException) -> CliError | None:
    # Imported here: the CLI's start-up and --help do not pay for botocore.
    from botocore import exceptions as aws

    if isinstance(error, aws.ClientError):
        return _explain_refusal(error)
    return _explain_sign_in(error) or _explain_connection(error)


def _explain_sign_in(error: BaseException) -> CliError | None:
    from botocore import exceptions as aws

    if isinstance(error, aws.NoCredentialsError | aws.PartialCredentialsError):
        return CliError(
            "no AWS credentials found: set AWS_PROFILE (or pass --profile), run "
            "`aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, aws.NoRegionError):
        return CliError("no AWS region is set: pass --region or set AWS_REGION")
    if isinstance(error, aws.ProfileNotFound):
        return CliError(f"{error}: check --profile / AWS_PROFILE against ~/.aws/config")
    if isinstance(error, aws.TokenRetrievalError | aws.SSOError):
        return CliError(f"your AWS sign-in has expired ({error}): run `aws sso login`")
    return None


def _explain_connection(error: BaseException) -> CliError | None:
    from botocore import exceptions as aws

    if isinstance(error, aws.EndpointConnectionError | aws.ConnectionClosedError):
        return CliError(
            f"AWS is unreachable at {_endpoint(error)}: check your network, --region and "
            "AWS_ENDPOINT_URL"
        )
    if isinstance(error, aws.ConnectTimeoutError | aws.ReadTimeoutError):
        return CliError(f"AWS did not answer in time ({_endpoint(error)}): try again")
    return None


def _explain_refusal(error: Any) -> CliError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "error"))
    message = str(details.get("Message", "")).rstrip(".")
    operation = error.operation_name
    if code in _EXPIRED:
        return CliError(
            "your AWS credentials have expired: refresh them (`aws sso login`, or new keys)"
        )
    if code in _BAD_CREDENTIALS:
        return CliError(
            f"AWS does not accept your credentials ({code}): check AWS_PROFILE or your keys"
        )
    if "AccessDenied" in code:
        return CliError(
            f"AWS denied {operation} ({message}): your AWS identity needs permission for it"
        )
    return CliError(f"AWS refused {operation}: {code}: {message}")


def _endpoint(error: Any) -> str:
    return str(getattr(error, "kwargs", {}).get("endpoint_url", "its endpoint"))
