from fastapi.testclient import TestClient

from app.main import app

client = TestClient(app)


def test_health_says_ok():
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "{{project}}"}


def test_unknown_path_is_404():
    assert client.get("/nope").status_code == 404
