"""A real S3-compatible server for the tests: moto's server mode (Werkzeug, HTTP on localhost),
spoken to by boto3 and django-storages exactly as they would speak to AWS or MinIO."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from .stack import free_port

ACCESS_KEY = "studio-test-access-key"
SECRET_KEY = "studio-test-secret-key"
REGION = "us-east-1"


@dataclass
class S3Server:
    url: str
    bucket: str
    server: ThreadedMotoServer

    def env(self, prefix: str | None = None) -> dict[str, str]:
        """The studio's environment for this server (STORAGE_BACKEND=s3 and S3_*)."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.url,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "S3_PREFIX": prefix or f"run-{uuid.uuid4().hex[:8]}",
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def start_s3() -> S3Server:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(url=f"http://127.0.0.1:{port}", bucket="studio-media", server=server)
    s3.client().create_bucket(Bucket=s3.bucket)
    return s3
