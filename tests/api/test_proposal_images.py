"""Proposal images (issue 11, item 8): uploads are decoded and re-encoded, so metadata (a
phone photo's GPS position) and trailing bytes never reach the public; pixel bombs, non-images
and oversized files are refused and store nothing; at most five per proposal, also when
uploads race; served with their type and cached for good."""

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin
from sqlmodel import Session

from app.models.process import Phase
from app.models.proposal import Proposal, ProposalImage
from tests.api.conftest import Actor, Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API, all_at_once, assert_problem, count_rows

GPS_IFD = 0x8825
PAYLOAD = b"PK\x03\x04 a zip file appended to the picture"


def picture(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    image = Image.new("RGB", size, (30, 120, 200))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: EXIF with the camera, a GPS position and an orientation
    (6: turn 90 degrees clockwise to view), and a payload after the image data."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 6
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (53.0, 13.0, 5.0), 3: "E", 4: (6.0, 34.0, 0.0)})
    return picture("JPEG", (64, 48), exif=exif.tobytes()) + PAYLOAD


def upload(
    client: TestClient | httpx.Client,
    proposal_id: int | None,
    who: Actor,
    data: bytes,
    *,
    base: str = API,
    name: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"{base}/proposals/{proposal_id}/images",
        files={"file": (name, data, content_type)},
        headers=who.headers,
    )
    return response


def served_upload(
    client: httpx.Client, proposal_id: int | None, who: Actor, data: bytes, *, base: str
) -> int:
    """The status of an upload sent again, as a client would, while the worker answers
    503 `busy` (every image slot taken by the other uploads of a race)."""
    for _ in range(100):
        response = upload(client, proposal_id, who, data, base=base)
        if response.status_code != 503:
            return response.status_code
        assert_problem(response, 503, "busy")
    raise AssertionError("busy 100 times in a row")


def stored_files(workdir: Path) -> list[Path]:
    root = workdir / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def proposal(session: Session, actors: Actors) -> Proposal:
    process = make_process(session, phase=Phase.submission)
    return make_proposal(session, process, actors.author.user)


def test_a_phone_photo_loses_its_metadata_and_payload(
    client: TestClient, actors: Actors, proposal: Proposal, workdir: Path
) -> None:
    original = phone_photo()
    assert b"PhoneMaker" in original
    response = upload(client, proposal.id, actors.author, original)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"] == f"{API}/proposals/{proposal.id}/images/{body['id']}"
    assert (body["width"], body["height"]) == (48, 64)  # turned upright, then stripped
    served = client.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    data = served.content
    assert b"PhoneMaker" not in data
    assert b"Exif" not in data
    assert PAYLOAD not in data
    assert data.endswith(b"\xff\xd9")  # nothing after the end-of-image marker
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.size == (48, 64)
        assert not image.getexif()
        assert "exif" not in image.info
    (file,) = stored_files(workdir)
    assert file.read_bytes() == data
    shown = client.get(f"{API}/proposals/{proposal.id}").json()
    assert shown["images"] == [body]


@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_keep_their_format_without_metadata(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    workdir: Path,
    fmt: str,
    content_type: str,
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    save: dict[str, Any] = {"exif": exif.tobytes()}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "home: Kerkstraat 1")
        save["pnginfo"] = info
    original = picture(fmt, (40, 30), **save)
    assert b"PhoneMaker" in original
    response = upload(client, proposal.id, actors.author, original, content_type=content_type)
    assert response.status_code == 201, response.text
    served = client.get(response.json()["url"])
    assert served.headers["content-type"] == content_type
    assert b"Kerkstraat" not in served.content
    assert b"PhoneMaker" not in served.content
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.format == fmt
        assert image.size == (40, 30)
        assert not image.getexif()


def test_an_animation_keeps_its_first_frame(
    client: TestClient, actors: Actors, proposal: Proposal, workdir: Path
) -> None:
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])
    response = upload(client, proposal.id, actors.author, out.getvalue(), content_type="image/png")
    assert response.status_code == 201, response.text
    with Image.open(io.BytesIO(client.get(response.json()["url"]).content)) as image:
        assert getattr(image, "n_frames", 1) == 1
        assert image.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def bomb() -> bytes:
    """48 megapixels (above the 25 allowed) in a PNG of a few kilobytes."""
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")
    return out.getvalue()


def truncated() -> bytes:
    return picture("JPEG", (200, 200))[:300]


def gif() -> bytes:
    return picture("GIF")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"plain text, not an image", id="text"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(b"", id="empty"),
        pytest.param(gif(), id="gif"),
        pytest.param(truncated(), id="truncated"),
        pytest.param(bomb(), id="48-megapixels"),
    ],
)
def test_what_is_not_an_accepted_image_is_refused_and_stores_nothing(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
    data: bytes,
) -> None:
    assert len(data) < 100_000
    assert_problem(upload(client, proposal.id, actors.author, data), 422, "invalid_image")
    assert count_rows(session, ProposalImage) == 0
    assert stored_files(workdir) == []


def test_a_file_over_the_size_limit_is_refused(
    client: TestClient, actors: Actors, proposal: Proposal, session: Session, workdir: Path
) -> None:
    limit = 5 * 1024 * 1024
    # Just over the file limit, within the request's room for framing: the service says no.
    body = assert_problem(
        upload(client, proposal.id, actors.author, picture() + b"\0" * limit),
        413,
        "payload_too_large",
    )
    assert str(limit) in body["detail"]
    # Far over: the body limit stops the request before it is read.
    assert_problem(
        upload(client, proposal.id, actors.author, b"\0" * (limit + 200_000)),
        413,
        "payload_too_large",
    )
    assert count_rows(session, ProposalImage) == 0
    assert stored_files(workdir) == []


def test_five_images_at_most_and_deleting_makes_room(
    client: TestClient, actors: Actors, proposal: Proposal, session: Session, workdir: Path
) -> None:
    ids = []
    for _ in range(5):
        response = upload(client, proposal.id, actors.author, picture())
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    assert_problem(upload(client, proposal.id, actors.author, picture()), 409, "too_many_images")
    assert len(stored_files(workdir)) == 5
    url = f"{API}/proposals/{proposal.id}/images/{ids[0]}"
    assert client.delete(url, headers=actors.author.headers).status_code == 204
    assert_problem(client.get(url), 404, "not_found")
    assert len(stored_files(workdir)) == 4
    assert [i["id"] for i in client.get(f"{API}/proposals/{proposal.id}").json()["images"]] == ids[
        1:
    ]
    assert upload(client, proposal.id, actors.author, picture()).status_code == 201
    # An image is reached only through its own proposal.
    other = make_proposal(session, make_process(session), actors.author.user)
    assert_problem(client.get(f"{API}/proposals/{other.id}/images/{ids[1]}"), 404, "not_found")


def test_after_submission_only_moderators_change_images(
    client: TestClient, actors: Actors, session: Session, workdir: Path
) -> None:
    process = make_process(session, phase=Phase.review)
    proposal = make_proposal(session, process, actors.author.user)
    assert_problem(upload(client, proposal.id, actors.author, picture()), 409, "invalid_phase")
    response = upload(client, proposal.id, actors.moderator, picture())
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    assert_problem(client.delete(url, headers=actors.author.headers), 409, "invalid_phase")
    assert client.delete(url, headers=actors.admin.headers).status_code == 204


def test_a_drafts_images_are_for_the_admin_and_never_stored_by_caches(
    client: TestClient, actors: Actors, session: Session, workdir: Path
) -> None:
    process = make_process(session, phase=Phase.draft)
    proposal = make_proposal(session, process, actors.author.user)
    response = upload(client, proposal.id, actors.admin, picture())
    assert response.status_code == 201, response.text
    served = client.get(response.json()["url"], headers=actors.admin.headers)
    assert served.status_code == 200
    assert served.headers["cache-control"] == "no-store"  # an answer to a token
    assert_problem(client.get(response.json()["url"]), 404, "not_found")


def test_parallel_uploads_never_make_a_sixth(
    base_url: str,
    http: httpx.Client,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
) -> None:
    data = picture()
    codes = all_at_once(
        [lambda: served_upload(http, proposal.id, actors.author, data, base=base_url)] * 8
    )
    assert sorted(codes) == [201] * 5 + [409] * 3
    assert count_rows(session, ProposalImage) == 5
    assert len(stored_files(workdir)) == 5


def test_an_upload_without_a_file_is_a_validation_error(
    client: TestClient, actors: Actors, proposal: Proposal, session: Session, workdir: Path
) -> None:
    url = f"{API}/proposals/{proposal.id}/images"
    for kwargs in ({"data": {"file": "text"}}, {"json": {"file": "x"}}, {}):
        response = client.post(url, headers=actors.author.headers, **kwargs)
        assert_problem(response, 422, "validation_error")
    assert count_rows(session, ProposalImage) == 0
