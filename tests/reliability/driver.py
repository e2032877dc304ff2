"""Lambda's asynchronous invocation, stood in for at volume.

S3 invokes the function asynchronously: Lambda queues the event, one of the function's
concurrent instances runs it, and when the handler raises, Lambda runs it again twice (1 and
2 minutes later on AWS; `retry_delays` here) and then sends its on-failure record to the
destination, the dead-letter queue. When the destination cannot be written either, Lambda
still holds the event: this driver keeps trying to deliver the record (bounded) and counts
the event as lost only if it never can.

Unlike local_stack.delivery.AsyncInvoker (one event at a time per instance, sleeping through
the back-off), a failed event goes back on a timed queue, so an instance is never idle while
events wait for their retry. The on-failure record is delivery.on_failure_record's.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local_stack.delivery import DEFAULT_FUNCTION_ARN, on_failure_record
from local_stack.harness import LambdaContext

Handler = Callable[[Any, LambdaContext], Any]
# Lambda waits 1 minute, then 2; the suite's clock runs faster.
RETRY_DELAYS = (1.0, 2.0)
DESTINATION_RETRY_SECONDS = 0.5
DESTINATION_MAX_TRIES = 120
MAX_WAIT_SLICE = 0.5


@dataclass(frozen=True)
class Attempt:
    """One run of the handler."""

    label: str
    attempt: int  # 1 for the first delivery of the event, 2 and 3 for Lambda's retries
    instance: str
    seconds: float
    error_type: str | None = None
    error: str | None = None


@dataclass
class DriverStats:
    invocations: int = 0
    failed: int = 0
    retries: int = 0
    on_failure_records: int = 0
    destination_failures: int = 0
    overruns: int = 0  # invocations that ran past their timeout (Lambda would have killed them)
    errors: Counter[str] = field(default_factory=Counter)
    # Events that ended nowhere: their on-failure record could never be delivered.
    abandoned: list[str] = field(default_factory=list)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event: Any = field(compare=False)
    label: str = field(compare=False)
    attempt: int = field(compare=False, default=1)
    request_id: str = field(compare=False, default="")
    # Set once the retries are spent: the job now delivers the on-failure record.
    failure: dict[str, Any] | None = field(compare=False, default=None)
    destination_tries: int = field(compare=False, default=0)


class LambdaAsync:
    """A function's asynchronous invocation: an event queue, one thread per instance."""

    def __init__(
        self,
        instances: Sequence[tuple[str, Handler]],
        failure_queue_url: str,
        timeout_seconds: float,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        function_arn: str = DEFAULT_FUNCTION_ARN,
    ) -> None:
        self._instances = list(instances)
        self._failure_queue_url = failure_queue_url
        self._timeout_seconds = timeout_seconds
        self._retry_delays = tuple(retry_delays)
        self._function_arn = function_arn
        # Made here, on the caller's thread: creating clients is not thread-safe.
        self._sqs = boto3.session.Session().client(
            "sqs", config=Config(retries={"mode": "standard", "max_attempts": 1})
        )
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._busy = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.stats = DriverStats()
        self.attempts: list[Attempt] = []
        self.first_attempts_done = 0
        # When the last first delivery of an event ended (epoch seconds): after it, only
        # Lambda's retries are left.
        self.last_first_attempt_at = 0.0

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> LambdaAsync:
        for name, handler in self._instances:
            thread = threading.Thread(
                target=self._work, args=(name, handler), name=f"lambda-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def invoke(self, event: Any, label: str, delay: float = 0.0) -> None:
        """Queue an event, as Lambda's Invoke API with InvocationType=Event does (`delay`
        seconds from now)."""
        due = time.monotonic() + delay
        self._push(_Job(due, next(self._seq), event, label, 1, str(uuid.uuid4())))

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._busy

    def wait_idle(self, timeout: float) -> bool:
        """True once every event has ended (handled, or its record delivered)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, MAX_WAIT_SLICE))
            return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the instances; events still queued are reported as abandoned."""
        with self._cond:
            self._stopping = True
            for job in self._heap:
                self.stats.abandoned.append(job.label)
            self._heap.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- the instances ---------------------------------------------------------------------

    def _push(self, job: _Job) -> None:
        with self._cond:
            heapq.heappush(self._heap, job)
            self._cond.notify()

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._busy += 1
                    return heapq.heappop(self._heap)
                wait = MAX_WAIT_SLICE if not self._heap else self._heap[0].due - now
                self._cond.wait(min(wait, MAX_WAIT_SLICE))
            return None

    def _work(self, name: str, handler: Handler) -> None:
        while (job := self._next()) is not None:
            try:
                if job.failure is not None:
                    self._deliver_record(job)
                else:
                    self._run(job, name, handler)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _run(self, job: _Job, name: str, handler: Handler) -> None:
        context = LambdaContext(
            timeout_seconds=self._timeout_seconds,
            aws_request_id=job.request_id,
            invoked_function_arn=self._function_arn,
        )
        started = time.monotonic()
        error: BaseException | None = None
        try:
            handler(job.event, context)
        except Exception as failure:  # Lambda treats any unhandled error alike
            error = failure
        seconds = time.monotonic() - started
        with self._cond:
            self.stats.invocations += 1
            if job.attempt == 1:
                self.first_attempts_done += 1
                self.last_first_attempt_at = time.time()
            if seconds > self._timeout_seconds:
                self.stats.overruns += 1
            self.attempts.append(
                Attempt(
                    job.label,
                    job.attempt,
                    name,
                    seconds,
                    type(error).__name__ if error else None,
                    str(error)[:500] if error else None,
                )
            )
            if error is not None:
                self.stats.failed += 1
                self.stats.errors[type(error).__name__] += 1
        if error is None:
            return
        if job.attempt <= len(self._retry_delays):
            with self._cond:
                self.stats.retries += 1
            delay = self._retry_delays[job.attempt - 1]
            self._push(
                _Job(
                    time.monotonic() + delay,
                    next(self._seq),
                    job.event,
                    job.label,
                    job.attempt + 1,
                    job.request_id,
                )
            )
            return
        record = on_failure_record(
            job.event, error, job.request_id, self._function_arn, job.attempt
        )
        job.failure = record
        self._deliver_record(job)

    def _deliver_record(self, job: _Job) -> None:
        assert job.failure is not None
        try:
            self._sqs.send_message(
                QueueUrl=self._failure_queue_url,
                MessageBody=json.dumps(job.failure, default=str, ensure_ascii=False),
            )
        except Exception:
            with self._cond:
                self.stats.destination_failures += 1
                give_up = job.destination_tries + 1 >= DESTINATION_MAX_TRIES
                if give_up:
                    self.stats.abandoned.append(job.label)
            if not give_up:
                job.destination_tries += 1
                job.due = time.monotonic() + DESTINATION_RETRY_SECONDS
                job.seq = next(self._seq)
                self._push(job)
            return
        with self._cond:
            self.stats.on_failure_records += 1
