"""A round's content beyond text: proposal images and a process's categories (rules in
services/proposal_images.py and services/categories.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, UploadFile, status
from pydantic import BaseModel, Field

from app.core.errors import (
    Busy,
    Forbidden,
    InvalidImage,
    InvalidPhase,
    InvalidStatus,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
    TooManyImages,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.proposal import CategoryCount, ImagePublic
from app.routers.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep, Throttle
from app.services import categories, proposal_images
from app.services.images import JobSlots
from app.services.media import MediaStore

router = APIRouter()

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class ImageUpload(BaseModel):
    """The multipart form of an image upload."""

    file: UploadFile = Field(
        description="JPEG, PNG or WebP, at most 5 MiB and 25 megapixels (the defaults of "
        "IMAGE_MAX_BYTES and IMAGE_MAX_PIXELS); stored at most 2048 pixels on its long side."
    )


def media_store(request: Request) -> MediaStore:
    """The media store of this app (MEDIA_STORE; tests may override this dependency)."""
    store: MediaStore = request.app.state.media_store
    return store


MediaDep = Annotated[MediaStore, Depends(media_store)]


async def image_jobs(request: Request) -> JobSlots:
    """This worker's image-cleaning slots (IMAGE_JOBS; tests may override this dependency)."""
    jobs: JobSlots = request.app.state.image_jobs
    return jobs


ImageJobs = Annotated[JobSlots, Depends(image_jobs)]


@router.post(
    "/proposals/{proposal_id}/images",
    tags=["proposals"],
    status_code=status.HTTP_201_CREATED,
    response_model=ImagePublic,
    responses=problem_responses(
        NotAuthenticated,
        Forbidden,
        NotFound,
        InvalidPhase,
        InvalidStatus,
        TooManyImages,
        PayloadTooLarge,
        TooManyAttempts,
        Busy,
        InvalidImage,
        ValidationFailed,
    ),
    summary="Add an image (JPEG, PNG or WebP; re-encoded without metadata)",
)
def upload_image(
    proposal_id: int,
    form: Annotated[ImageUpload, Form(media_type="multipart/form-data")],
    actor: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: MediaDep,
    guard: Throttle,
    jobs: ImageJobs,
) -> ImagePublic:
    # One byte over the limit is enough to know it is too large.
    data = form.file.file.read(settings.image_max_bytes + 1)
    limits = proposal_images.ImageLimits(
        max_bytes=settings.image_max_bytes,
        max_pixels=settings.image_max_pixels,
        max_side=settings.image_max_side,
    )
    return proposal_images.upload(
        session,
        actor=actor,
        proposal_id=proposal_id,
        data=data,
        store=store,
        limits=limits,
        guard=guard,
        jobs=jobs,
    )


@router.get(
    "/proposals/{proposal_id}/images/{image_id}",
    tags=["proposals"],
    response_class=Response,
    responses={
        200: {
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES}
        },
        **problem_responses(NotFound, ValidationFailed),
    },
    summary="An image's bytes",
)
def get_image(
    proposal_id: int, image_id: int, viewer: OptionalUser, session: SessionDep, store: MediaDep
) -> Response:
    image = proposal_images.serve(
        session, viewer=viewer, proposal_id=proposal_id, image_id=image_id, store=store
    )
    # An image id never names other bytes (a new upload is a new id), so it may be kept for
    # good. (A draft's images answer only an admin's token, and answers to a token are
    # `no-store` whatever this says: app/core/middleware.py.)
    return Response(
        content=image.data,
        media_type=image.content_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.delete(
    "/proposals/{proposal_id}/images/{image_id}",
    tags=["proposals"],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, InvalidPhase, InvalidStatus, ValidationFailed
    ),
    summary="Delete an image",
)
def delete_image(
    proposal_id: int, image_id: int, actor: CurrentUser, session: SessionDep, store: MediaDep
) -> Response:
    proposal_images.delete(
        session, actor=actor, proposal_id=proposal_id, image_id=image_id, store=store
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/processes/{process_id}/categories",
    tags=["processes"],
    response_model=list[CategoryCount],
    responses=problem_responses(NotFound, ValidationFailed),
    summary="A process's categories with their proposal counts",
)
def list_categories(
    process_id: int, viewer: OptionalUser, session: SessionDep
) -> list[CategoryCount]:
    return categories.list_for_process(session, viewer=viewer, process_id=process_id)
