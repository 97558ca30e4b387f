"""GHL's error answers (NestJS shapes; the common DTOs BadRequestDTO, UnauthorizedDTO, UnprocessableDTO).

Where GHL's documents are silent the sandbox follows what integrators observed of the real API:

- An unknown contact id answers 400 ``Contact with id {id} not found`` (GHL treats ``/contacts/lookup``
  as an id and answers exactly that); tasks and notes answer 400 the same way.
- A missing ``Version`` header answers 401 ``version header was not found.``, an unsupported value
  401 ``version header is invalid`` (both observed live by third-party integrations).
- A token used for another location answers 403 ``The token does not have access to this location.``
- A token without the scope a route needs (docs/oauth/Scopes.md) answers 401 ``The token is not
  authorized for this scope.``
- A duplicate contact (location not allowing duplicates) answers 400 with ``meta`` naming the
  existing contact and the matching field.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse


class GhlApiError(Exception):
    """An error answer with GHL's JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def nest_error(status: int, message: str | list[str]) -> GhlApiError:
    """NestJS's default exception body: ``{statusCode, message, error}``."""
    return GhlApiError(status, {"statusCode": status, "message": message, "error": _phrase(status)})


def bad_request(message: str) -> GhlApiError:
    return nest_error(400, message)


def unauthorized(message: str) -> GhlApiError:
    return nest_error(401, message)


def missing_scope() -> GhlApiError:
    return unauthorized("The token is not authorized for this scope.")


def forbidden_location() -> GhlApiError:
    return GhlApiError(
        403, {"statusCode": 403, "message": "The token does not have access to this location."}
    )


def unprocessable(messages: list[str]) -> GhlApiError:
    return nest_error(422, messages)


def not_found(kind: str, record_id: str) -> GhlApiError:
    return bad_request(f"{kind.capitalize()} with id {record_id} not found")


def duplicate_contact(contact_id: str, contact_name: str, matching_field: str) -> GhlApiError:
    return GhlApiError(
        400,
        {
            "statusCode": 400,
            "message": "This location does not allow duplicated contacts.",
            "meta": {"contactName": contact_name, "contactId": contact_id, "matchingField": matching_field},
        },
    )


def status_error(status: int) -> GhlApiError:
    """The body for an injected fault or an unrouted path."""
    return GhlApiError(status, {"statusCode": status, "message": _phrase(status)})
