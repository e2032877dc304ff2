"""The Upload API (`POST /`) and the Data API subset (`/v1/...`, `/modern/...`), apart from
the HTTP server: a Request goes in, a Response (possibly "drop the connection") comes out.

Order of checks, as the brief for the emulator fixes it: injected faults, then the
account's rate limit, then authentication and the token's rights, then the request itself.
A token's rights: the Upload API needs upload rights, Data API reads need read rights,
Data API changes (delete, swap, archive) need full rights; too few rights answer 401 as a
bad token does (Wistia keeps 403 for plan features).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from wistia_emulator.faults import Fault
from wistia_emulator.multipart import (
    BadRequestBody,
    BodyReader,
    ClientDisconnected,
    MultipartForm,
    StoredFile,
    read_multipart_form,
)
from wistia_emulator.processing import MediaProcessor
from wistia_emulator.state import (
    MAX_BULK_IDS,
    PERMITS,
    Account,
    ApiError,
    MediaDraft,
    RequestRecord,
    UploadRejected,
    media_type,
)

ERROR_STYLES = ("legacy", "current")
MAX_NAME_LENGTH = 255
MAX_FORM_BYTES = 1024 * 1024
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
UNAUTHORIZED_PAGE = b"""<!DOCTYPE html>
<html><head><title>401 Unauthorized</title></head>
<body><h1>401 Unauthorized</h1>
<p>Authentication failed. Check your API token or api_password.</p></body></html>
"""
MEDIA_PATH = re.compile(r"^/v1/medias/([A-Za-z0-9]+)\.json$")
SWAP_PATH = re.compile(r"^/modern/medias/([A-Za-z0-9]+)/swap$")
JOB_PATH = re.compile(r"^/modern/background_job_status/([A-Za-z0-9]+)$")
ARCHIVE_PATH = "/modern/medias/archive"
MODERN_PREFIX = "/modern/"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: Message
    body: BodyReader
    query_pairs: list[tuple[str, str]] = field(default_factory=list)  # repeated names kept


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = TEXT_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    dropped: bool = False  # close the connection without answering anything
    # Send the answer one byte every this many seconds (the body, or everything).
    trickle_seconds: float = 0.0
    trickle_headers: bool = False

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload).encode(), JSON_TYPE)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = TEXT_TYPE) -> Response:
        return cls(status, text.encode(), content_type)

    @classmethod
    def drop(cls) -> Response:
        return cls(0, dropped=True)


def unauthorized() -> Response:
    return Response(401, UNAUTHORIZED_PAGE, "text/html; charset=utf-8")


def unauthorized_json(code: str, message: str) -> Response:
    """The newer Data API's 401: JSON with a machine-readable code."""
    return Response.json(401, {"code": code, "error": message})


def rate_limited(retry_after: int) -> Response:
    return Response(429, b"Rate limit exceeded", TEXT_TYPE, {"Retry-After": str(retry_after)})


def not_found(message: str = "Not found") -> Response:
    return Response.json(404, {"error": message})


def method_not_allowed(*allowed: str) -> Response:
    response = Response.json(405, {"error": "Method not allowed"})
    response.headers["Allow"] = ", ".join(allowed)
    return response


def _submitted_url(request: Request) -> str:
    """The url parameter of a form-encoded request (query string or body), as sent."""
    params = dict(request.query)
    if request.headers.get_content_type() == "application/x-www-form-urlencoded":
        raw = request.body.read_all(MAX_FORM_BYTES)
        params.update(parse_params(raw.decode("utf-8", errors="replace")))
    return params.get("url", "")


def parse_params(text: str) -> dict[str, str]:
    """Form or query parameters; a repeated name keeps its last value, as Rails does."""
    return dict(parse_qsl(text, keep_blank_values=True))


@dataclass(frozen=True)
class Credential:
    kind: str | None  # "bearer", "access_token", "api_password" or None
    token: str | None


def find_credential(headers: Message, params: dict[str, str], *kinds: str) -> Credential:
    """The first credential presented, among the `kinds` this API accepts."""
    authorization = headers.get("Authorization") or ""
    scheme, _, token = authorization.strip().partition(" ")
    if "bearer" in kinds and scheme.lower() == "bearer" and token.strip():
        return Credential("bearer", token.strip())
    for kind in kinds:
        if kind != "bearer" and params.get(kind):
            return Credential(kind, params[kind])
    return Credential(None, None)


class WistiaApi:
    """Answers the Upload API and the Data API subset for one account."""

    def __init__(
        self, account: Account, processor: MediaProcessor, data_dir: str, error_style: str
    ) -> None:
        self._account = account
        self._processor = processor
        self._data_dir = data_dir
        self._error_style = error_style

    def handle(self, request: Request) -> Response:
        """Answer one request. ClientDisconnected escapes: there is nobody to answer."""
        record = self._account.record_request(request.method, request.path, request.query)
        faults = self._account.select_faults(request.method, request.path)
        if faults:
            self._account.update_record(record, fault="+".join(f.kind for f in faults))
        for fault in faults:
            if fault.kind == "latency":
                time.sleep(fault.seconds)
        decisive = faults[-1].kind if faults else None
        if decisive in ("drop", "status", "rate_limit"):
            response = self._injected(faults[-1], request)
        else:
            response = self._serve(request, record)
            if decisive == "drop_after_create":
                response = Response.drop()  # Wistia acted; the answer is lost on the way
            if decisive == "trickle":
                response.trickle_seconds = faults[-1].seconds
                response.trickle_headers = faults[-1].trickle_headers
        self._account.update_record(record, status=None if response.dropped else response.status)
        return response

    @staticmethod
    def _injected(fault: Fault, request: Request) -> Response:
        if fault.kind == "drop":
            return Response.drop()
        if fault.kind == "rate_limit":
            return rate_limited(fault.retry_after)
        body = fault.body
        if body is None:
            body = f"{fault.status} {_reason_phrase(fault.status)}"
        if "{url}" in body or "{url_quoted}" in body:
            url = _submitted_url(request)
            body = body.replace("{url}", url).replace("{url_quoted}", quote(url, safe=""))
        return Response.text(fault.status, body, fault.content_type)

    def _serve(self, request: Request, record: RequestRecord) -> Response:
        retry_after = self._account.admit()
        if retry_after is not None:
            return rate_limited(retry_after)
        if request.path == "/":
            if request.method != "POST":
                return method_not_allowed("POST")
            return self._upload(request, record)
        return self._data_api(request, record)

    # --- Upload API --------------------------------------------------------------------------

    def _upload(self, request: Request, record: RequestRecord) -> Response:
        form, problem = self._read_upload_body(request)
        accepted = False
        try:
            response = self._answer_upload(request, record, form, problem)
            accepted = response.status == 200
            return response
        finally:
            if form.file is not None and not accepted:
                form.file.delete()

    def _answer_upload(
        self, request: Request, record: RequestRecord, form: MultipartForm, problem: str | None
    ) -> Response:
        # Every parameter but `file` may come in the query string; the body wins.
        params = {**request.query, **form.fields}
        credential = find_credential(
            request.headers, params, "bearer", "access_token", "api_password"
        )
        shown_form = dict(form.fields)
        if form.file is not None:
            shown_form["file"] = form.file.filename
        self._account.update_record(record, auth=credential.kind, form=shown_form)
        if not self._account.allows(credential.token, "upload"):
            return unauthorized()
        try:
            if problem is not None:
                raise UploadRejected(problem)
            draft = self._media_draft(params, form.file)
            answer = self._account.create_media(
                draft, status="queued" if form.file is None else "processing"
            )
        except UploadRejected as rejection:
            return self._bad_request(str(rejection), code="upload_failed")
        if form.file is not None:
            self._processor.process_upload(answer["hashed_id"], form.file)
        elif draft.source_url is not None:
            self._processor.process_import(answer["hashed_id"], draft.source_url)
        return Response.json(200, answer)

    def _read_upload_body(self, request: Request) -> tuple[MultipartForm, str | None]:
        """The body's fields (and file), or why it cannot be read. The caller drains the rest."""
        body = request.body
        if body.finished:
            return MultipartForm(), None  # everything may come in the query string
        content_type = request.headers.get_content_type()
        try:
            if content_type == "multipart/form-data":
                boundary = request.headers.get_param("boundary")
                if not isinstance(boundary, str):
                    return MultipartForm(), "multipart/form-data needs a boundary parameter"
                return read_multipart_form(body, boundary, self._data_dir), None
            if content_type == "application/x-www-form-urlencoded":
                raw = body.read_all(MAX_FORM_BYTES)
                return MultipartForm(fields=parse_params(raw.decode("utf-8", "replace"))), None
        except ClientDisconnected:
            raise
        except BadRequestBody as error:
            return MultipartForm(), str(error)
        return MultipartForm(), (
            f"Unsupported Content-Type {content_type}: send multipart/form-data with a file "
            "or application/x-www-form-urlencoded with a url"
        )

    @staticmethod
    def _media_draft(params: dict[str, str], stored: StoredFile | None) -> MediaDraft:
        """Check the parameters that need no account state (the account checks the rest)."""
        url = params.get("url") or None
        if stored is not None and url is not None:
            raise UploadRejected("Please provide either a file or a url, not both.")
        name = params.get("name") or None
        if name is not None and len(name) > MAX_NAME_LENGTH:
            raise UploadRejected(f"name is too long (maximum is {MAX_NAME_LENGTH} characters)")
        contact_id = params.get("contact_id") or None
        if contact_id is not None and not re.fullmatch(r"[0-9]+", contact_id.strip()):
            raise UploadRejected(f"contact_id must be an integer, got {contact_id!r}")
        common: dict[str, Any] = {
            "project_hashed_id": params.get("project_id") or None,
            "description": params.get("description", ""),
            "low_priority": params.get("low_priority", "").strip().lower() in TRUE_WORDS,
        }
        if contact_id is not None:
            common["contact_id"] = int(contact_id)
        if stored is not None:
            return MediaDraft(
                name=name or stored.filename or "Untitled",
                type=media_type(stored.filename, stored.content_type),
                bytes=stored.size,
                sha256=stored.sha256,
                **common,
            )
        if url is None:
            raise UploadRejected("Please provide either a file or a url.")
        try:
            parts = urlsplit(url)
            valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises on a port that is not a number
        except ValueError:
            valid = False
        if not valid:
            raise UploadRejected(f"url must be an http or https URL, got {url[:100]!r}")
        file_name = unquote(parts.path.rsplit("/", 1)[-1])
        return MediaDraft(
            name=name or file_name or "Untitled",
            type=media_type(file_name),
            source_url=url,
            **common,
        )

    def _bad_request(self, message: str, code: str) -> Response:
        if self._error_style == "current":
            return Response.json(400, {"error": {"code": code, "detail": message}})
        return Response.json(400, {"error": message})

    # --- Data API ------------------------------------------------------------------------------

    def _data_api(self, request: Request, record: RequestRecord) -> Response:
        modern = request.path.startswith(MODERN_PREFIX)
        credential = find_credential(request.headers, request.query, "bearer", "access_token")
        self._account.update_record(record, auth=credential.kind)
        rights = self._account.rights_of(credential.token)
        if rights is None:
            if modern:
                return unauthorized_json("unauthorized_credentials", "Invalid credentials.")
            return unauthorized()
        action = "read" if request.method in ("GET", "HEAD") else "write"
        if action not in PERMITS[rights]:
            if modern:
                return unauthorized_json(
                    "unauthorized_scope", f"This token's rights ({rights}) do not allow this."
                )
            return unauthorized()
        try:
            if modern:
                return self._modern_api(request)
            return self._v1_api(request)
        except ApiError as error:
            return Response.json(error.status, {"error": error.message})

    def _v1_api(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/v1/medias.json":
            return self._list_medias(request) if method == "GET" else method_not_allowed("GET")
        if match := MEDIA_PATH.match(path):
            hashed_id = match.group(1)
            if method == "GET":
                found = self._account.media_json(hashed_id)
            elif method == "DELETE":
                found = self._account.delete_media(hashed_id)
            else:
                return method_not_allowed("GET", "DELETE")
            return Response.json(200, found) if found else not_found("Media not found")
        if path == "/v1/projects.json":
            if method != "GET":
                return method_not_allowed("GET")
            try:
                page, per_page = _paging(request.query)
            except ValueError as error:
                return self._bad_request(str(error), code="bad_request")
            return Response.json(200, self._account.list_projects(page, per_page))
        return not_found()

    def _modern_api(self, request: Request) -> Response:
        path, method = request.path, request.method
        if match := SWAP_PATH.match(path):
            if method != "PUT":
                return method_not_allowed("PUT")
            params = _body_params(request)
            replacement = params.get("replacement_media_id")
            if replacement is not None and not isinstance(replacement, str):
                raise ApiError(400, "replacement_media_id must be a media's hashed id")
            answer, job_id = self._account.start_swap(match.group(1), replacement)
            self._processor.run_job_later(job_id)
            return Response.json(200, answer)
        if path == ARCHIVE_PATH:
            if method != "PUT":
                return method_not_allowed("PUT")
            params = _body_params(request)
            hashed_ids = params.get("hashed_ids", params.get("hashed_ids[]"))
            answer, job_id = self._account.start_archive(hashed_ids)
            self._processor.run_job_later(job_id)
            return Response.json(200, answer)
        if match := JOB_PATH.match(path):
            if method != "GET":
                return method_not_allowed("GET")
            job = self._account.job_json(match.group(1))
            return Response.json(200, job) if job else not_found("Background job not found")
        return not_found()

    def _list_medias(self, request: Request) -> Response:
        query = request.query
        try:
            page, per_page = _paging(query)
            sort_by = query.get("sort_by") or "created"
            if sort_by not in ("created", "updated", "name"):
                raise ValueError("sort_by must be created, updated or name")
            direction = query.get("sort_direction") or "1"
            if direction not in ("0", "1"):
                raise ValueError("sort_direction must be 1 (ascending) or 0 (descending)")
            hashed_ids = [v for k, v in request.query_pairs if k == "hashed_ids[]"]
            if len(hashed_ids) > MAX_BULK_IDS:
                raise ValueError(f"hashed_ids[] takes at most {MAX_BULK_IDS} hashed ids")
            archived_word = (query.get("archived") or "").strip().lower()
            if archived_word and archived_word not in BOOLEAN_WORDS:
                raise ValueError("archived must be true or false")
        except ValueError as error:
            return self._bad_request(str(error), code="bad_request")
        medias = self._account.list_medias(
            project_id=query.get("project_id") or None,
            name=query.get("name"),
            sort_by=sort_by,
            ascending=direction == "1",
            page=page,
            per_page=per_page,
            hashed_ids=hashed_ids or None,
            archived=BOOLEAN_WORDS.get(archived_word),
        )
        return Response.json(200, medias)


def _body_params(request: Request) -> dict[str, Any]:
    """A JSON object body, or a form body (names ending in [] collect every value), over the
    query string's parameters (the body wins)."""
    params: dict[str, Any] = _collect_pairs(request.query_pairs)
    if request.body.finished:
        return params
    raw = request.body.read_all(MAX_FORM_BYTES)
    if request.headers.get_content_type() == "application/x-www-form-urlencoded":
        return {**params, **_collect_pairs(parse_qsl(raw.decode("utf-8", "replace")))}
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return {**params, **data}


def _collect_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    collected: dict[str, Any] = {}
    for name, value in pairs:
        if name.endswith("[]"):
            collected.setdefault(name, []).append(value)
        else:
            collected[name] = value
    return collected


def _paging(query: dict[str, str]) -> tuple[int, int]:
    """`page` (1-based) and `per_page` (default 10, at most 100, larger asks get 100)."""
    try:
        page = int(query.get("page") or 1)
        per_page = int(query.get("per_page") or DEFAULT_PER_PAGE)
    except ValueError:
        raise ValueError("page and per_page must be integers") from None
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page must be at least 1")
    return page, min(per_page, MAX_PER_PAGE)


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
