"""The S3 Batch Operations stand-in behind an API shaped like boto3's `s3control` client.

    operations = BatchOperations({"arn:aws:lambda:...:function:backfill": handler})
    job_id = operations.create_job(AccountId=..., Operation=..., Manifest=..., Report=...,
                                   Priority=10, RoleArn=...)["JobId"]
    operations.describe_job(AccountId=..., JobId=job_id)["Job"]["Status"]
    operations.wait(job_id)        # JobResult, once the job is Complete, Failed or Cancelled

`create_job`, `describe_job` and `update_job_status` take and return what s3control's do (the
parts a LambdaInvoke job uses), so code written against `boto3.client("s3control")` runs
against this object unchanged. Each job runs on its own thread; see batch_operations.py for
what is emulated and what is not. `submit` starts a job from the typed pieces instead.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import boto3

from local_stack.batch_manifest import (
    CSV_MANIFEST_FORMAT,
    GENERATED_MANIFEST_FORMAT,
    ManifestOutput,
    ObjectFilter,
)
from local_stack.batch_operations import (
    CsvManifest,
    GeneratedManifest,
    Handler,
    InvalidJobRequest,
    Job,
    JobResult,
    LambdaInvoke,
    Manifest,
    RunnerSettings,
    handler_for,
)
from local_stack.batch_report import REPORT_FORMAT, REPORT_SCOPES, CompletionReport

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
S3_ARN = "arn:aws:s3:::"


class NoSuchJob(KeyError):
    """DescribeJob and UpdateJobStatus for an id no job has (S3's NoSuchJobException)."""


def bucket_from_arn(arn: str) -> str:
    if not isinstance(arn, str) or not arn.startswith(S3_ARN) or "/" in arn[len(S3_ARN) :]:
        raise InvalidJobRequest(f"expected a bucket ARN arn:aws:s3:::<bucket>, got {arn!r}")
    return arn[len(S3_ARN) :]


def object_from_arn(arn: str) -> tuple[str, str]:
    if not isinstance(arn, str) or not arn.startswith(S3_ARN) or "/" not in arn:
        raise InvalidJobRequest(f"expected an object ARN arn:aws:s3:::<bucket>/<key>, got {arn!r}")
    bucket, _, key = arn[len(S3_ARN) :].partition("/")
    return bucket, key


def operation_from_request(operation: Mapping[str, Any]) -> LambdaInvoke:
    if set(operation) != {"LambdaInvoke"}:
        raise InvalidJobRequest(f"the stand-in runs LambdaInvoke jobs only, not {list(operation)}")
    invoke = operation["LambdaInvoke"]
    if "FunctionArn" not in invoke:
        raise InvalidJobRequest("LambdaInvoke needs a FunctionArn")
    return LambdaInvoke(
        function_arn=invoke["FunctionArn"],
        invocation_schema_version=invoke.get("InvocationSchemaVersion", "1.0"),
        user_arguments=invoke.get("UserArguments", {}),
    )


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def object_filter_from_request(spec: Mapping[str, Any]) -> ObjectFilter:
    unsupported = set(spec) - {
        "CreatedAfter",
        "CreatedBefore",
        "KeyNameConstraint",
        "ObjectSizeGreaterThanBytes",
        "ObjectSizeLessThanBytes",
        "MatchAnyStorageClass",
    }
    if unsupported:
        raise InvalidJobRequest(f"the stand-in does not filter on {sorted(unsupported)}")
    names = spec.get("KeyNameConstraint", {})
    try:
        return ObjectFilter(
            prefixes=tuple(names.get("MatchAnyPrefix", ())),
            suffixes=tuple(names.get("MatchAnySuffix", ())),
            substrings=tuple(names.get("MatchAnySubstring", ())),
            created_after=_moment(spec["CreatedAfter"]) if "CreatedAfter" in spec else None,
            created_before=_moment(spec["CreatedBefore"]) if "CreatedBefore" in spec else None,
            size_greater_than=spec.get("ObjectSizeGreaterThanBytes"),
            size_less_than=spec.get("ObjectSizeLessThanBytes"),
            storage_classes=tuple(spec.get("MatchAnyStorageClass", ())),
        )
    except ValueError as error:
        raise InvalidJobRequest(str(error)) from error


def manifest_from_request(
    manifest: Mapping[str, Any] | None, generator: Mapping[str, Any] | None
) -> Manifest:
    if (manifest is None) == (generator is None):
        raise InvalidJobRequest("give exactly one of Manifest and ManifestGenerator")
    if manifest is not None:
        spec, location = manifest.get("Spec", {}), manifest.get("Location", {})
        if spec.get("Format") != CSV_MANIFEST_FORMAT:
            raise InvalidJobRequest(
                f"the stand-in reads {CSV_MANIFEST_FORMAT} manifests, not {spec.get('Format')!r}"
            )
        if "ETag" not in location:
            raise InvalidJobRequest("the manifest's Location needs its ETag")
        bucket, key = object_from_arn(location.get("ObjectArn", ""))
        return CsvManifest(
            bucket=bucket,
            key=key,
            fields=tuple(spec.get("Fields", ("Bucket", "Key"))),
            etag=location["ETag"],
            version_id=location.get("ObjectVersionId"),
        )
    assert generator is not None
    if set(generator) != {"S3JobManifestGenerator"}:
        raise InvalidJobRequest("ManifestGenerator takes an S3JobManifestGenerator")
    spec = generator["S3JobManifestGenerator"]
    if "EnableManifestOutput" not in spec:
        raise InvalidJobRequest("S3JobManifestGenerator needs EnableManifestOutput")
    output = None
    if spec["EnableManifestOutput"]:
        location = spec.get("ManifestOutputLocation")
        if not location:
            raise InvalidJobRequest("EnableManifestOutput needs a ManifestOutputLocation")
        if location.get("ManifestFormat") != GENERATED_MANIFEST_FORMAT:
            raise InvalidJobRequest(f"ManifestFormat must be {GENERATED_MANIFEST_FORMAT}")
        output = ManifestOutput(
            bucket_from_arn(location.get("Bucket", "")), location.get("ManifestPrefix", "")
        )
    return GeneratedManifest(
        source_bucket=bucket_from_arn(spec.get("SourceBucket", "")),
        filter=object_filter_from_request(spec.get("Filter", {})),
        output=output,
    )


def report_from_request(report: Mapping[str, Any]) -> CompletionReport | None:
    if not report.get("Enabled"):
        return None
    if report.get("Format", REPORT_FORMAT) != REPORT_FORMAT:
        raise InvalidJobRequest(f"the report Format must be {REPORT_FORMAT}")
    scope = report.get("ReportScope", "AllTasks")
    if scope not in REPORT_SCOPES:
        raise InvalidJobRequest(f"ReportScope must be one of {REPORT_SCOPES}")
    return CompletionReport(
        bucket_from_arn(report.get("Bucket", "")), report.get("Prefix", ""), scope
    )


class BatchOperations:
    """S3 Batch Operations for one account on the local stack: jobs that invoke local
    handlers. `functions` is one handler for every FunctionArn, or handlers by ARN or name."""

    def __init__(
        self,
        functions: Mapping[str, Handler] | Handler,
        settings: RunnerSettings | None = None,
        s3: Any = None,
        account_id: str = ACCOUNT_ID,
        region: str = REGION,
    ) -> None:
        self._functions = functions
        self.settings = settings or RunnerSettings()
        # Made on the caller's thread (creating boto3 clients is not thread-safe), then shared.
        self._s3 = s3 if s3 is not None else boto3.client("s3")
        self.account_id = account_id
        self.region = region
        self._jobs: dict[str, tuple[Job, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # --- typed entry ---

    def submit(
        self,
        operation: LambdaInvoke,
        manifest: Manifest,
        report: CompletionReport | None = None,
        *,
        confirmation_required: bool = False,
        priority: int = 10,
        role_arn: str = "",
        description: str = "",
        request: dict[str, Any] | None = None,
    ) -> str:
        """Start a job on its own thread; its id."""
        handler = handler_for(self._functions, operation.function_arn)
        job = Job(
            handler,
            operation,
            manifest,
            report,
            self.settings,
            self._s3,
            confirmation_required=confirmation_required,
        )
        details = {
            "Priority": priority,
            "RoleArn": role_arn,
            "Description": description,
            **(request or {}),
        }
        with self._lock:
            self._jobs[job.job_id] = (job, details)
        threading.Thread(
            target=self._run, args=(job,), name=f"batch-job-{job.job_id[:8]}", daemon=True
        ).start()
        return job.job_id

    @staticmethod
    def _run(job: Job) -> None:
        try:
            job.run()
        except Exception:  # the job's FailureReasons say so; the trace is for whoever debugs it
            traceback.print_exc()

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Block until the job ends; its result. TimeoutError if it is still running."""
        job = self._job(job_id)[0]
        if not job.done.wait(timeout):
            raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
        return job.result()

    def job(self, job_id: str) -> Job:
        return self._job(job_id)[0]

    def _job(self, job_id: str) -> tuple[Job, dict[str, Any]]:
        with self._lock:
            if job_id not in self._jobs:
                raise NoSuchJob(job_id)
            return self._jobs[job_id]

    # --- s3control's shape ---

    def create_job(
        self,
        *,
        Operation: Mapping[str, Any],
        Report: Mapping[str, Any],
        Priority: int,
        RoleArn: str,
        Manifest: Mapping[str, Any] | None = None,
        ManifestGenerator: Mapping[str, Any] | None = None,
        ConfirmationRequired: bool = False,
        Description: str = "",
        AccountId: str | None = None,
        ClientRequestToken: str | None = None,
        Tags: Any = None,
    ) -> dict[str, str]:
        """s3control's CreateJob for a LambdaInvoke job: `{"JobId": ...}`."""
        if AccountId not in (None, self.account_id):
            raise InvalidJobRequest(f"this stand-in holds account {self.account_id}")
        request: dict[str, Any] = {"Operation": dict(Operation), "Report": dict(Report)}
        if Manifest is not None:
            request["Manifest"] = dict(Manifest)
        if ManifestGenerator is not None:
            request["ManifestGenerator"] = dict(ManifestGenerator)
        job_id = self.submit(
            operation_from_request(Operation),
            manifest_from_request(Manifest, ManifestGenerator),
            report_from_request(Report),
            confirmation_required=ConfirmationRequired,
            priority=Priority,
            role_arn=RoleArn,
            description=Description,
            request=request,
        )
        return {"JobId": job_id}

    def describe_job(self, *, JobId: str, AccountId: str | None = None) -> dict[str, Any]:
        """s3control's DescribeJob: `{"Job": JobDescriptor}`."""
        job, details = self._job(JobId)
        return {"Job": self._descriptor(job, details)}

    def update_job_status(
        self,
        *,
        JobId: str,
        RequestedJobStatus: str,
        AccountId: str | None = None,
        StatusUpdateReason: str | None = None,
    ) -> dict[str, Any]:
        """s3control's UpdateJobStatus: Ready confirms a Suspended job, Cancelled stops one."""
        job = self._job(JobId)[0]
        if RequestedJobStatus == "Ready":
            job.confirm()
        elif RequestedJobStatus == "Cancelled":
            job.cancel()
        else:
            raise InvalidJobRequest("RequestedJobStatus is Ready or Cancelled")
        answer: dict[str, Any] = {"JobId": JobId, "Status": job.status}
        if StatusUpdateReason:
            answer["StatusUpdateReason"] = StatusUpdateReason
        return answer

    def _descriptor(self, job: Job, details: dict[str, Any]) -> dict[str, Any]:
        result = job.result()
        descriptor: dict[str, Any] = {
            "JobId": job.job_id,
            "ConfirmationRequired": job.confirmation_required,
            "Description": details.get("Description", ""),
            "JobArn": f"arn:aws:s3:{self.region}:{self.account_id}:job/{job.job_id}",
            "Status": result.status,
            "Operation": details.get("Operation") or _operation_document(job.operation),
            "Priority": details.get("Priority", 10),
            "ProgressSummary": {
                "TotalNumberOfTasks": result.total_tasks,
                "NumberOfTasksSucceeded": result.succeeded,
                "NumberOfTasksFailed": result.failed,
                "Timers": {"ElapsedTimeInActiveSeconds": int(job.active_seconds())},
            },
            "FailureReasons": [
                {"FailureCode": failure.code, "FailureReason": failure.reason}
                for failure in result.failure_reasons
            ],
            "Report": details.get("Report") or _report_document(job.report),
            "CreationTime": job.created_at,
            "RoleArn": details.get("RoleArn", ""),
        }
        if "Manifest" in details:
            descriptor["Manifest"] = details["Manifest"]
        if "ManifestGenerator" in details:
            descriptor["ManifestGenerator"] = details["ManifestGenerator"]
        if job.terminated_at is not None:
            descriptor["TerminationDate"] = job.terminated_at
        if job.generated_manifest_key and isinstance(job.manifest, GeneratedManifest):
            output = job.manifest.output
            assert output is not None
            descriptor["GeneratedManifestDescriptor"] = {
                "Format": GENERATED_MANIFEST_FORMAT,
                "Location": {
                    "ObjectArn": f"{S3_ARN}{output.bucket}/{job.generated_manifest_key}",
                    "ETag": job.generated_manifest_etag,
                },
            }
        return descriptor


def _operation_document(operation: LambdaInvoke) -> dict[str, Any]:
    invoke: dict[str, Any] = {
        "FunctionArn": operation.function_arn,
        "InvocationSchemaVersion": operation.invocation_schema_version,
    }
    if operation.user_arguments:
        invoke["UserArguments"] = dict(operation.user_arguments)
    return {"LambdaInvoke": invoke}


def _report_document(report: CompletionReport | None) -> dict[str, Any]:
    if report is None:
        return {"Enabled": False}
    return {
        "Bucket": f"{S3_ARN}{report.bucket}",
        "Format": REPORT_FORMAT,
        "Enabled": True,
        "Prefix": report.prefix,
        "ReportScope": report.scope,
    }
