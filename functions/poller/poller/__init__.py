"""s3-to-wistia: the status poller, the scheduled safety net under the webhooks."""
