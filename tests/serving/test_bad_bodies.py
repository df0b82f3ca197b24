"""A body the service cannot read at all gets the documented 422, not FastAPI's bare 400."""

from fastapi.testclient import TestClient

from serving.service import app


def test_a_body_that_is_not_utf8_is_refused_with_422_saying_why() -> None:
    client = TestClient(app)
    for path in ("/api/v1/recs/experiments", "/api/v1/recs/experiments/e1/stop"):
        response = client.post(path, content=b"R\xffI\xfe",
                               headers={"content-type": "application/json"})
        assert response.status_code == 422, path
        (error,) = response.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"] == ["body"]
        assert "UTF-8" in error["msg"]


def test_other_http_errors_keep_their_status_and_detail() -> None:
    response = TestClient(app).get("/no-such-route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
