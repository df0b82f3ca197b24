"""Which requests the fast path answers itself: only those the route would take as they are."""

import pytest
from fastapi import FastAPI

from serving.endpoint_labels import label_endpoints_by_route
from serving.fast_recs import plain_request

app = FastAPI()


@app.get("/api/v1/recs/models")
def models() -> dict:
    return {}


@app.get("/api/v1/recs/{user_id}")
def recs(user_id: str) -> dict:
    return {}


label_endpoints_by_route(app)


def scope(path: str, query: bytes = b"", method: str = "GET") -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query}


@pytest.mark.parametrize(("path", "query", "expected"), [
    ("/api/v1/recs/u1", b"", ("u1", 10)),
    ("/api/v1/recs/u1", b"limit=7", ("u1", 7)),
    ("/api/v1/recs/u1", b"limit=100", ("u1", 100)),
    ("/api/v1/recs/u1", b"limit=0", None),  # out of range: the route's 422
    ("/api/v1/recs/u1", b"limit=101", None),
    ("/api/v1/recs/u1", b"limit=abc", None),
    ("/api/v1/recs/u1", b"limit=-1", None),
    ("/api/v1/recs/u1", b"limit=5&explain=true", None),  # any other parameter
    ("/api/v1/recs/u1", b"type=popular", None),
    ("/api/v1/recs/models", b"", None),  # another route's path
    ("/api/v1/recs/ u1", b"", None),  # the route normalizes it
    ("/api/v1/recs/Caf\u00e9", b"", None),
    ("/api/v1/recs/u\x01", b"", None),
    ("/api/v1/recs/" + "u" * 129, b"", None),  # too long
    ("/api/v1/recs/a/b", b"", None),
    ("/api/v1/recs/", b"", None),
    ("/recommend", b"", None),
])
def test_only_plain_requests_take_the_fast_path(path: str, query: bytes, expected) -> None:  # noqa: ANN001
    assert plain_request(scope(path, query)) == expected


def test_other_methods_go_to_the_route() -> None:
    assert plain_request(scope("/api/v1/recs/u1", method="HEAD")) is None
    assert plain_request(scope("/api/v1/recs/u1", method="POST")) is None
