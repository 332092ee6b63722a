"""{{project}}: an HTTP service."""

from fastapi import FastAPI

app = FastAPI(title="{{project}}")


@app.get("/health")
def health() -> dict:
    """Says the service is up."""
    return {"status": "ok", "service": "{{project}}"}
