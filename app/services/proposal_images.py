"""Images of proposals: upload, serve, delete.

Rules enforced here (precedence: 404, 403, 409, then 413/422):
- anyone who can see the proposal sees its images (a draft process hides them with it);
- its author uploads and deletes while they may edit it (phase `submission`, status
  `submitted`: else 409 `invalid_phase` / `invalid_status`); moderators and admins at any
  time; anyone else 403;
- at most `MAX_IMAGES` per proposal (409 `too_many_images`), counted under the proposal row
  lock (FOR UPDATE, after the process row's KEY SHARE like every proposal change), so two
  uploads at once cannot make a sixth;
- the file is at most IMAGE_MAX_BYTES (413) and is accepted only as app/services/images.py
  cleans it (422 `invalid_image`); only the cleaned bytes are stored;
- the cleaning (a decode and a re-encode, up to a second and hundreds of MB) runs outside
  any transaction: the checks above run first, without locks; then the attempt is counted
  per account (429 `too_many_attempts`, IMAGE_UPLOADS_PER_HOUR), which ends the request's
  transaction (on SQLite its write lock; the connection goes back to the pool); then the
  image is cleaned in one of the worker's IMAGE_JOBS slots (503 `busy` when none is free,
  and the attempt is given back); only then is the proposal row locked and every check
  made again before the row is written. A check that failed first is never cleaned for,
  and a change made meanwhile (a sixth image, a phase change) is still caught under lock;
- the bytes go to the media store before the row is written, and are deleted again when
  writing the row fails, so a row never points at nothing. A transaction that fails at
  commit after that leaves an unreferenced file behind (harmless, never served); deleting
  removes the row, then the file.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from app.core.errors import (
    Busy,
    Forbidden,
    InvalidPhase,
    InvalidStatus,
    NotFound,
    PayloadTooLarge,
    TooManyImages,
)
from app.core.i18n import _t
from app.core.limits import INT32_MAX
from app.models.base import utcnow
from app.models.process import Phase, Process
from app.models.proposal import IMAGE_PATH, ImagePublic, Proposal, ProposalImage, ProposalStatus
from app.models.user import Role, User
from app.services import images, proposals, throttle
from app.services.media import MediaStore
from app.services.permissions import has_role
from app.services.throttle import Guard

MAX_IMAGES = 5


@dataclass(frozen=True)
class ServedImage:
    data: bytes
    content_type: str


def _require_may_change(actor: User, proposal: Proposal, process: Process) -> None:
    if has_role(actor, Role.moderator):
        return
    if proposal.author_id is None or proposal.author_id != actor.id:
        raise Forbidden(_t("Only the author, moderators and admins change a proposal's images."))
    if process.phase != Phase.submission:
        raise InvalidPhase(
            _t(
                "The author changes images in phase submission; the process is in {phase}.",
                phase=process.phase,
            )
        )
    if proposal.status != ProposalStatus.submitted:
        raise InvalidStatus(
            _t(
                "The author changes images while the proposal is submitted; it is {status}.",
                status=proposal.status,
            )
        )


def _public(image: ProposalImage) -> ImagePublic:
    assert image.id is not None
    url = IMAGE_PATH.format(proposal_id=image.proposal_id, image_id=image.id)
    return ImagePublic(id=image.id, url=url, width=image.width, height=image.height)


def _require_room(session: Session, proposal_id: int) -> None:
    count = session.exec(
        select(func.count())
        .select_from(ProposalImage)
        .where(ProposalImage.proposal_id == proposal_id)
    ).one()
    if count >= MAX_IMAGES:
        raise TooManyImages(
            _t("A proposal has at most {max} images; delete one first.", max=MAX_IMAGES)
        )


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    max_side: int


def upload(
    session: Session,
    *,
    actor: User,
    proposal_id: int,
    data: bytes,
    store: MediaStore,
    limits: ImageLimits,
    guard: Guard,
    jobs: images.JobSlots,
    now: datetime | None = None,
) -> ImagePublic:
    # Checked first without locks, so a refused upload costs no cleaning.
    proposal, process = proposals.load(session, proposal_id=proposal_id, viewer=actor)
    _require_may_change(actor, proposal, process)
    _require_room(session, proposal_id)
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            _t("An image is at most {max_bytes} bytes.", max_bytes=limits.max_bytes)
        )
    assert actor.id is not None
    attempt = throttle.reserve(  # ends the request's transaction: no lock while cleaning
        session,
        guard,
        [(guard.bucket("image-upload", str(actor.id)), guard.limits.image_upload)],
        now=now or utcnow(),
        what=_t("image uploads"),
    )
    try:
        with jobs.held():
            clean = images.clean(data, max_pixels=limits.max_pixels, max_side=limits.max_side)
    except Busy:
        throttle.refund_failed(session, guard, attempt)  # nothing was done: not counted
        raise
    # Again under the proposal's row lock: the first checks' answers may have changed, and
    # the rows read then are read afresh (the session would hand back its stale copies).
    session.expire(proposal)
    session.expire(process)
    proposal, process = proposals.load(
        session, proposal_id=proposal_id, viewer=actor, lock="update"
    )
    _require_may_change(actor, proposal, process)
    _require_room(session, proposal_id)
    # A fresh random name per upload: a URL never shows other bytes, so it caches forever.
    key = f"proposals/{proposal_id}/{secrets.token_hex(16)}.{clean.extension}"
    store.put(key, clean.data)
    try:
        image = ProposalImage(
            proposal_id=proposal_id,
            storage_key=key,
            content_type=clean.content_type,
            width=clean.width,
            height=clean.height,
            size_bytes=len(clean.data),
            uploaded_by=actor.id,
        )
        session.add(image)
        session.flush()
    except BaseException:
        store.delete(key)
        raise
    return _public(image)


def _image(session: Session, proposal_id: int, image_id: int) -> ProposalImage:
    image = None
    if 1 <= image_id <= INT32_MAX:
        image = session.exec(
            select(ProposalImage).where(
                ProposalImage.id == image_id, ProposalImage.proposal_id == proposal_id
            )
        ).first()
    if image is None:
        raise NotFound(_t("No image with id {image_id}.", image_id=image_id))
    return image


def serve(
    session: Session, *, viewer: User | None, proposal_id: int, image_id: int, store: MediaStore
) -> ServedImage:
    proposals.load(session, proposal_id=proposal_id, viewer=viewer)
    image = _image(session, proposal_id, image_id)
    data = store.get(image.storage_key)
    if data is None:
        raise NotFound(_t("No image with id {image_id}.", image_id=image_id))
    return ServedImage(data=data, content_type=image.content_type)


def delete(
    session: Session, *, actor: User, proposal_id: int, image_id: int, store: MediaStore
) -> None:
    proposal, process = proposals.load(
        session, proposal_id=proposal_id, viewer=actor, lock="update"
    )
    _require_may_change(actor, proposal, process)
    image = _image(session, proposal_id, image_id)
    session.delete(image)
    session.flush()
    store.delete(image.storage_key)
