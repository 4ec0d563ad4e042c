"""Pattern 17: a batch job that runs to completion as an AWS Fargate task.

It processes BATCHES batches of RECORDS_PER_BATCH records (simulated: SLEEP_SECONDS of work
each), writes a JSON summary to s3://OUTPUT_BUCKET/results/JOB_ID.json, and exits. The exit
code tells ECS how it went: 0 done, 2 bad configuration.
"""

import json
import os
import sys
import time
from datetime import UTC, datetime

import boto3


def now():
    """The current UTC time as ISO 8601 text."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def settings():
    """The job's configuration from its environment, or exit 2 naming what is wrong."""
    try:
        batches = int(os.environ.get("BATCHES", "5"))
        per_batch = int(os.environ.get("RECORDS_PER_BATCH", "1000"))
        sleep_seconds = float(os.environ.get("SLEEP_SECONDS", "2"))
    except ValueError as error:
        print(f"configuration error: {error}", flush=True)
        sys.exit(2)
    if not (1 <= batches <= 100 and per_batch >= 1 and 0 <= sleep_seconds <= 60):
        print(
            "configuration error: need 1 <= BATCHES <= 100, RECORDS_PER_BATCH >= 1, "
            "0 <= SLEEP_SECONDS <= 60",
            flush=True,
        )
        sys.exit(2)
    return batches, per_batch, sleep_seconds


def main():
    """Run the batches, write the summary to S3, print progress for CloudWatch Logs."""
    job_id = os.environ.get("JOB_ID", "job-001")
    bucket = os.environ["OUTPUT_BUCKET"]
    batches, per_batch, sleep_seconds = settings()
    print(f"[{now()}] starting batch job {job_id}: {batches} batches", flush=True)
    results = []
    for batch in range(1, batches + 1):
        time.sleep(sleep_seconds)  # stands in for real work
        results.append({"batch": batch, "recordsProcessed": batch * per_batch, "at": now()})
        print(f"  batch {batch}/{batches} done", flush=True)
    summary = {
        "jobId": job_id,
        "completedAt": now(),
        "totalBatches": len(results),
        "totalRecords": sum(r["recordsProcessed"] for r in results),
        "batches": results,
    }
    key = f"results/{job_id}.json"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(summary, indent=2))
    print(
        f"[{now()}] {summary['totalRecords']} records; summary in s3://{bucket}/{key}", flush=True
    )


if __name__ == "__main__":
    main()
