"""Ids from webhooks go into upstream URLs as one escaped path segment each: a hostile id can reach
neither another path nor the query. Seen at the network edge, as the raw request line would carry it."""

from __future__ import annotations

import httpx
import pytest

from app.integrations.ghl.client import GhlClient, static_token
from app.integrations.rankr.client import RankrClient
from app.kit.http import url_path

pytestmark = pytest.mark.anyio

HOSTILE = ["../../rankr/_sandbox/state", "zz?locationId=evil#", "a/b", "100%", "sp ace", "x#frag"]


class Recorder:
    def __init__(self) -> None:
        self.paths: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path)
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600, "token_type": "Bearer"})
        return httpx.Response(404, json={"message": "not found"})


def ghl(recorder: Recorder) -> GhlClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return GhlClient(
        http, base_url="https://ghl.test/v2", version="2021-07-28", location_id="L1", token=static_token("t")
    )


def rankr(recorder: Recorder) -> RankrClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return RankrClient(http, base_url="https://rankr.test/v1", client_id="c", client_secret="s")


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_a_ghl_id_stays_one_segment_of_the_path(hostile: str) -> None:
    recorder = Recorder()
    client = ghl(recorder)
    assert await client.get_contact(hostile) is None
    assert await client.get_task("c1", hostile) is None
    assert await client.get_note(hostile, "n1") is None
    for raw in recorder.paths:
        path, _, query = raw.partition(b"?")
        assert query == b""
        assert path.startswith(b"/v2/contacts/")
        assert b"#" not in raw
        assert not {b".", b".."} & set(path.split(b"/"))
    escaped = url_path(hostile).encode()
    assert recorder.paths[0] == b"/v2/contacts" + escaped


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_a_rankr_id_stays_one_segment_of_the_path(hostile: str) -> None:
    recorder = Recorder()
    client = rankr(recorder)
    assert await client.get_contact(hostile) is None
    assert await client.get_note("c1", hostile) is None
    api = [raw for raw in recorder.paths if not raw.endswith(b"/oauth/token")]
    assert api == [
        b"/v1/contacts" + url_path(hostile).encode(),
        b"/v1" + url_path("contacts", "c1", "notes", hostile).encode(),
    ]


@pytest.mark.parametrize("segment", ["", ".", ".."])
def test_segments_no_escaping_makes_safe_are_refused(segment: str) -> None:
    with pytest.raises(httpx.InvalidURL):
        url_path("contacts", segment)


def test_url_path_escapes_what_would_leave_the_segment() -> None:
    assert url_path("contacts", "../x?y=1#z%") == "/contacts/..%2Fx%3Fy%3D1%23z%25"
    assert url_path("contacts", "abc123", "tasks") == "/contacts/abc123/tasks"
