"""The reliability suite: the import function on its worst day, with counts.

Objects are uploaded to moto's S3, their notifications are delivered the way AWS delivers
them (at least once, reordered, a failed invocation retried twice and then sent to the
dead-letter queue in Lambda's on-failure format) to several concurrent stand-ins for Lambda
instances, while faults are injected at Wistia (the emulator) and at AWS (aws_faults). At the
end of every scenario the invariants are checked: every object imported exactly once,
skipped with a reason, or in the dead-letter queue with a reason; no duplicate media; no
secret or signature in logs, records or messages.

    PYTHONPATH=functions/importer:tests python -m reliability [--quick] [--objects N]
"""
