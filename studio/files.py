"""Serving stored files (outputs, thumbnails, posters, assets, exports), wherever they are stored.

- On object storage (STORAGE_BACKEND=s3) the answer is a redirect to a short-lived presigned URL:
  the bytes never pass through the studio, and the object store answers Range requests itself.
- On the local disk the file is streamed from the studio with byte ranges: `Range: bytes=a-b`
  gets 206 and just those bytes (video scrubbing; Safari and iPad ask for nothing else), an
  unsatisfiable range 416. Under ASGI the chunks come from an async iterator, so uvicorn sends
  them as they are read (Django would otherwise read a sync iterator whole into memory first).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.storage import Storage
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

CHUNK_SIZE = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def is_remote(storage: Storage) -> bool:
    """Whether `storage` hands out its own (presigned) URLs rather than being served by us."""
    return hasattr(storage, "bucket_name")


def serve(
    request: HttpRequest,
    field: Any,
    *,
    content_type: str,
    as_attachment: bool = False,
    filename: str | None = None,
    cache_control: str = "private, max-age=86400, immutable",
    redirect: bool = True,
) -> HttpResponse:
    """Answer with the stored file `field` (a FieldFile): a presigned redirect on object storage
    (unless `redirect` is False), a ranged stream otherwise."""
    name = filename or field.name.rsplit("/", 1)[-1]
    disposition = content_disposition_header(as_attachment, name)
    if redirect and is_remote(field.storage):
        parameters = {"ResponseContentType": content_type, "ResponseCacheControl": cache_control}
        if disposition:
            parameters["ResponseContentDisposition"] = disposition
        url = field.storage.url(
            field.name, parameters=parameters, expire=settings.STORAGE_URL_MAX_AGE
        )
        response: HttpResponse = HttpResponseRedirect(url)
        # The presigned URL expires: never cache the redirect itself for longer than it lives.
        response["Cache-Control"] = "private, no-store"
        return response
    return ranged(
        request,
        field.open("rb"),
        size=field.size,
        content_type=content_type,
        disposition=disposition,
        cache_control=cache_control,
    )


def ranged(
    request: HttpRequest,
    handle: IO[bytes],
    *,
    size: int,
    content_type: str,
    disposition: str | None = None,
    cache_control: str = "private, no-store",
) -> HttpResponse:
    """Stream `handle` (`size` bytes), honouring a single `Range: bytes=` request."""
    start, end, status = 0, size - 1, 200
    header = request.headers.get("Range", "").strip()
    if header and (match := _RANGE.match(header)) and (match[1] or match[2]):
        first, last = match[1], match[2]
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:  # a suffix: the last N bytes
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            response["Accept-Ranges"] = "bytes"
            return response
        status = 206
    length = end - start + 1 if size else 0
    chunks = _aread(handle, start, length) if isinstance(request, ASGIRequest) else None
    response = StreamingHttpResponse(
        chunks if chunks is not None else _read(handle, start, length),
        status=status,
        content_type=content_type,
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    if disposition:
        response["Content-Disposition"] = disposition
    return response


def _read(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    with handle:
        if start:
            handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


async def _aread(handle: IO[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    # Each read runs in a worker thread (not the request's sync thread): a slow disk or a remote
    # storage never holds up the event loop, and at most one chunk is in memory at a time.
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        if start:
            await sync_to_async(handle.seek, thread_sensitive=False)(start)
        while length > 0:
            chunk = await read(min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()
