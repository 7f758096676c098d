"""Writes docs/reference/api.md from the OpenAPI document the app serves, so the site's API
reference cannot go stale: `make docs` runs it before every build (the file is not kept in
the repository).

Per operation: method and path, who may call it, the summary and description, the request
body's schema name, and every response with its status and the problem codes it carries.
"""

import sys
import tempfile
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.main import create_app

TARGET = Path(__file__).with_name("reference") / "api.md"


def _schema_name(content: dict[str, Any]) -> str:
    names = []
    for media_type, body in content.items():
        schema = body.get("schema", {})
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        name = ref.rsplit("/", 1)[-1] if ref else schema.get("type", "object")
        names.append(f"`{name}` ({media_type})")
    return ", ".join(names)


def _codes(response: dict[str, Any]) -> str:
    codes = []
    for body in response.get("content", {}).values():
        codes += [f"`{code}`" for code in body.get("examples", {})]
    return ", ".join(codes)


def render(document: dict[str, Any]) -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the OpenAPI document the server serves (`/openapi.json`, browsable at",
        "`/docs` on a running server) by `docs/gen_reference.py`; every field and example is",
        "there. Paths are under `/api/v1` unless they start elsewhere.",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        for method, path, operation in by_tag[tag]:
            lines += [f"### `{method} {path}`", ""]
            summary = operation.get("summary")
            if summary:
                lines += [f"**{summary}.**", ""]
            description = operation.get("description", "").strip()
            if description:
                lines += [description, ""]
            body = operation.get("requestBody")
            if body:
                lines += [f"Body: {_schema_name(body.get('content', {}))}", ""]
            lines += ["| status | meaning | codes |", "|---|---|---|"]
            for status, response in operation.get("responses", {}).items():
                meaning = response.get("description", "").replace("\n", " ").replace("|", "/")
                lines.append(f"| {status} | {meaning} | {_codes(response)} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        # Never opened: the document needs no database.
        database_url=f"sqlite:///{tempfile.gettempdir()}/wijkbudget-docs.db",
        secret_key="docs-" + "x7Kq2mP9vR4tW8yZ3bN6cF1hJ5gD0sL" * 2,
    )
    document = create_app(settings).openapi()
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render(document), encoding="utf-8")
    print(f"wrote {TARGET} ({len(document['paths'])} paths)", file=sys.stderr)


if __name__ == "__main__":
    main()
