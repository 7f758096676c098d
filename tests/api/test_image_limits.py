"""Proposal images cost bounded memory and never hold the database (issue 18, item 2).

A 1.6 KB lossless WebP of 6324x6324 pixels once cost 1.3 GB and 3 s per upload, and on
SQLite the upload held the write lock while it was cleaned. Now: the pixel cap is 25 MP,
refused from the header (for WebP before Pillow's decoder allocates the canvas); the stored
image is at most 2048 px on its long side and a JPEG is decoded at a reduced scale; the
cleaning runs outside any transaction, in one of IMAGE_JOBS slots per worker (503 `busy`
beyond); uploads are throttled per account."""

import io
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, JpegImagePlugin, _webp
from sqlmodel import Session

from app.core.errors import Busy, InvalidImage
from app.models.process import Phase
from app.models.proposal import Proposal, ProposalImage
from app.models.throttle import ThrottleEvent
from app.routers import content
from app.services import images
from app.services.images import JobSlots
from tests.api.conftest import Actors
from tests.api.test_proposal_images import GPS_IFD, stored_files, upload
from tests.factories import make_process, make_proposal
from tests.helpers import assert_problem, count_rows, wait_until

DEADLINE = 20  # seconds any awaited event may take before the test fails


def encoded(mode: str, size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal").save(out, format=fmt, **save)
    return out.getvalue()


@pytest.fixture
def proposal(session: Session, actors: Actors) -> Proposal:
    process = make_process(session, phase=Phase.submission)
    return make_proposal(session, process, actors.author.user)


@pytest.fixture
def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size each JPEG is decoded at (after any draft), recorded as it is loaded."""
    sizes: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def recording(self: JpegImagePlugin.JpegImageFile) -> Any:
        if self.tile:  # not yet decoded
            sizes.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", recording)
    return sizes


def test_a_large_photo_is_decoded_reduced_and_stored_at_most_2048_px(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    workdir: Path,
    decoded_sizes: list[tuple[int, int]],
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (53.0, 13.0, 5.0)})
    original = encoded("RGB", (6000, 4000), "JPEG", exif=exif.tobytes())
    response = upload(client, proposal.id, actors.author, original)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (1365, 2048)  # upright, long side 2048
    # Decoded at half its size (3000x2000, the smallest DCT scale not below 2048x1365), not
    # at 24 megapixels.
    assert decoded_sizes == [(3000, 2000)]
    data = client.get(body["url"]).content
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (1365, 2048)
        assert not image.getexif()
    (file,) = stored_files(workdir)
    assert file.read_bytes() == data


@pytest.mark.parametrize(
    ("fmt", "mode", "content_type"),
    [("PNG", "RGBA", "image/png"), ("WEBP", "RGB", "image/webp")],
)
def test_a_large_png_or_webp_is_stored_at_most_2048_px(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    workdir: Path,
    fmt: str,
    mode: str,
    content_type: str,
) -> None:
    original = encoded(mode, (2500, 5000), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    response = upload(client, proposal.id, actors.author, original, content_type=content_type)
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (1024, 2048)
    with Image.open(io.BytesIO(client.get(response.json()["url"]).content)) as image:
        assert (image.format, image.mode, image.size) == (fmt, mode, (1024, 2048))


def test_a_large_image_with_alpha_is_turned_upright_after_it_is_reduced(
    client: TestClient, actors: Actors, proposal: Proposal, workdir: Path
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    original = encoded("RGBA", (5000, 2500), "PNG", exif=exif.tobytes())
    response = upload(client, proposal.id, actors.author, original, content_type="image/png")
    assert response.status_code == 201, response.text
    data = client.get(response.json()["url"]).content
    assert b"PhoneMaker" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert (image.mode, image.size) == ("RGBA", (1024, 2048))
        assert not image.getexif()


def test_a_jpeg_with_more_pictures_keeps_its_first(
    client: TestClient, actors: Actors, proposal: Proposal, workdir: Path
) -> None:
    # MPF, as phones write a gain map or a depth picture after the photo: Pillow says MPO.
    out = io.BytesIO()
    first, second = Image.new("RGB", (3000, 2000), "red"), Image.new("RGB", (300, 200), "blue")
    first.save(out, format="MPO", save_all=True, append_images=[second])
    response = upload(client, proposal.id, actors.author, out.getvalue())
    assert response.status_code == 201, response.text
    served = client.get(response.json()["url"])
    assert served.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(served.content)) as image:
        assert (image.format, image.size) == ("JPEG", (2048, 1365))
        assert getattr(image, "n_frames", 1) == 1
        # The first picture's red, not the second's blue.
        assert image.convert("RGB").getpixel((1000, 600)) == pytest.approx((254, 0, 0), abs=3)


@pytest.fixture
def webp_decoders(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every WebP file Pillow's decoder is made for (making one allocates its canvas)."""
    made: list[bytes] = []
    decoder = _webp.WebPAnimDecoder

    def recording(data: bytes) -> Any:
        made.append(data)
        return decoder(data)

    monkeypatch.setattr(_webp, "WebPAnimDecoder", recording)
    return made


@pytest.mark.parametrize(
    "data",
    [
        # The file: 1,588 bytes, 40 MP, just under the cap of before.
        pytest.param(encoded("RGB", (6324, 6324), "WEBP", lossless=True), id="lossless"),
        pytest.param(encoded("RGBA", (5001, 5000), "WEBP", lossless=True), id="just-over"),
        pytest.param(encoded("RGB", (5001, 5000), "WEBP", quality=1), id="lossy"),
        pytest.param(
            encoded("RGB", (5001, 5000), "WEBP", lossless=True, exif=b"Exif\0\0MM"), id="extended"
        ),
    ],
)
def test_a_webp_over_the_cap_is_refused_before_its_decoder_is_made(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
    webp_decoders: list[bytes],
    data: bytes,
) -> None:
    assert len(data) < 200_000
    body = assert_problem(
        upload(client, proposal.id, actors.author, data, content_type="image/webp"),
        422,
        "invalid_image",
    )
    assert "is more than 25000000" in body["detail"]
    assert webp_decoders == []
    assert count_rows(session, ProposalImage) == 0
    assert stored_files(workdir) == []


@pytest.mark.parametrize(
    ("fmt", "mode"), [("PNG", "RGBA"), ("PNG", "RGB"), ("JPEG", "RGB"), ("JPEG", "CMYK")]
)
def test_png_and_jpeg_over_the_cap_are_refused(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
    fmt: str,
    mode: str,
) -> None:
    # 25,005,000 pixels: 5,000 more than the default IMAGE_MAX_PIXELS.
    data = encoded(mode, (5001, 5000), fmt)
    assert_problem(upload(client, proposal.id, actors.author, data), 422, "invalid_image")
    assert count_rows(session, ProposalImage) == 0


def test_the_largest_phone_photo_is_accepted(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    workdir: Path,
    decoded_sizes: list[tuple[int, int]],
) -> None:
    # 24 MP as an iPhone takes it by default (5712x4284 = 24.5 million pixels).
    response = upload(client, proposal.id, actors.author, encoded("RGB", (5712, 4284), "JPEG"))
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (2048, 1536)
    assert decoded_sizes == [(2856, 2142)]


# --- throttle and job slots -------------------------------------------------------------


def test_uploads_are_throttled_per_account(
    database_url: str, session: Session, actors: Actors, proposal: Proposal, workdir: Path
) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, image_uploads_per_hour=2))
    picture = encoded("RGB", (40, 30), "JPEG")
    other = make_proposal(session, make_process(session), actors.resident.user)
    try:
        with TestClient(app) as client:
            assert upload(client, proposal.id, actors.author, picture).status_code == 201
            # A file that turns out not to be an image was still decoded: it counts.
            refused = upload(client, proposal.id, actors.author, b"not an image")
            assert_problem(refused, 422, "invalid_image")
            response = upload(client, proposal.id, actors.author, picture)
            assert_problem(response, 429, "too_many_attempts")
            assert 3500 <= int(response.headers["retry-after"]) <= 3600
            # Another account's uploads are its own.
            assert upload(client, other.id, actors.resident, picture).status_code == 201
    finally:
        app.state.engine.dispose()
    assert count_rows(session, ProposalImage) == 2
    assert len(stored_files(workdir)) == 2


@pytest.fixture
def slots(app: FastAPI) -> Iterator[JobSlots]:
    """The app's image slots replaced by one slot the test controls."""
    mine = JobSlots(1)
    app.dependency_overrides[content.image_jobs] = lambda: mine
    yield mine
    app.dependency_overrides.pop(content.image_jobs)


def test_no_free_image_slot_is_busy_and_counts_nothing(
    client: TestClient,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
    slots: JobSlots,
) -> None:
    picture = encoded("RGB", (40, 30), "JPEG")
    with slots.held():  # another upload is being cleaned
        response = upload(client, proposal.id, actors.author, picture)
    assert_problem(response, 503, "busy")
    assert response.headers["retry-after"] == "2"
    assert count_rows(session, ProposalImage) == 0
    assert count_rows(session, ThrottleEvent) == 0  # the attempt was given back
    assert stored_files(workdir) == []
    # The slot is free again: the same upload goes through.
    assert upload(client, proposal.id, actors.author, picture).status_code == 201


def test_job_slots_refuse_beyond_their_limit() -> None:
    jobs = JobSlots(2)
    with jobs.held(), jobs.held(), pytest.raises(Busy), jobs.held():
        pass
    with jobs.held(), jobs.held():  # both given back
        pass


# --- no database lock while cleaning ----------------------------------------------------


def test_a_worker_cleans_two_images_at_once_and_answers_busy_beyond(
    base_url: str,
    http: httpx.Client,
    actors: Actors,
    session: Session,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cleaning, release = [], threading.Event()
    clean = images.clean

    def waiting(data: bytes, **limits: Any) -> Any:
        cleaning.append(data)
        release.wait(timeout=60)
        return clean(data, **limits)

    monkeypatch.setattr(images, "clean", waiting)
    picture = encoded("RGB", (40, 30), "JPEG")
    targets = [make_proposal(session, make_process(session), actors.author.user) for _ in "ab"]
    try:
        held = [
            in_background(partial(upload, http, p.id, actors.author, picture, base=base_url))
            for p in targets
        ]
        wait_until(lambda: len(cleaning) == 2, timeout=DEADLINE, what="two uploads cleaning")
        busy = upload(http, targets[0].id, actors.author, picture, base=base_url)
        assert_problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "2"
    finally:
        release.set()
    assert [outcome().status_code for outcome in held] == [201, 201]
    assert len(cleaning) == 2  # the third was never cleaned
    assert count_rows(session, ProposalImage) == 2


@pytest.fixture
def held_cleaning(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """`images.clean` made to wait: (started, release). Released at the end in any case."""
    started, release = threading.Event(), threading.Event()
    clean = images.clean

    def waiting(data: bytes, **limits: Any) -> Any:
        started.set()
        if not release.wait(timeout=60):
            raise InvalidImage("the test never released the cleaning")
        return clean(data, **limits)

    monkeypatch.setattr(images, "clean", waiting)
    yield started, release
    release.set()


def in_background(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """Start `call` in a thread; the returned function waits for its response."""
    result: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()

    def outcome() -> httpx.Response:
        thread.join(timeout=DEADLINE)
        assert result, "the upload never answered"
        return result[0]

    return outcome


def test_other_writes_go_on_while_an_upload_is_cleaned(
    base_url: str,
    http: httpx.Client,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
    held_cleaning: tuple[threading.Event, threading.Event],
) -> None:
    started, release = held_cleaning
    picture = encoded("RGB", (40, 30), "JPEG")
    uploaded = in_background(
        lambda: upload(http, proposal.id, actors.author, picture, base=base_url)
    )
    assert started.wait(timeout=DEADLINE), "the upload never reached its cleaning"
    # A write to the very proposal being uploaded to (its row lock) and, on SQLite, any
    # write at all (the database's one write lock): both answered while the cleaning waits.
    # Before, the upload held both until it was done (SQLite: 500 after 15 s).
    edit = http.patch(
        f"{base_url}/proposals/{proposal.id}",
        json={"title": "A new title"},
        headers=actors.author.headers,
        timeout=10,
    )
    assert edit.status_code == 200, edit.text
    release.set()
    response = uploaded()
    assert response.status_code == 201, response.text
    assert count_rows(session, ProposalImage) == 1


def test_what_changed_while_an_upload_was_cleaned_is_checked_again(
    base_url: str,
    http: httpx.Client,
    actors: Actors,
    proposal: Proposal,
    session: Session,
    workdir: Path,
    held_cleaning: tuple[threading.Event, threading.Event],
) -> None:
    started, release = held_cleaning
    picture = encoded("RGB", (40, 30), "JPEG")
    uploaded = in_background(
        lambda: upload(http, proposal.id, actors.author, picture, base=base_url)
    )
    assert started.wait(timeout=DEADLINE), "the upload never reached its cleaning"
    withdrawn = http.post(
        f"{base_url}/proposals/{proposal.id}/withdraw", headers=actors.author.headers, timeout=10
    )
    assert withdrawn.status_code == 200, withdrawn.text
    release.set()
    assert_problem(uploaded(), 409, "invalid_status")
    assert count_rows(session, ProposalImage) == 0
    assert stored_files(workdir) == []
