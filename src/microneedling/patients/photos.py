"""Checks for photos of a patient's skin: only real JPEG or PNG images of a sensible size
are kept (they are health data, stored privately and shown only to the people allowed)."""

from __future__ import annotations

from typing import IO
from uuid import uuid4

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404

#: The first bytes of the formats accepted.
PHOTO_TYPES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
#: How each format is named and served.
_SERVED = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png")}
PHOTO_MAX_BYTES = 5 * 1024 * 1024


def photo_checked(photo: UploadedFile[bytes] | None) -> UploadedFile[bytes] | None:
    """The upload if it is a JPEG or PNG up to 5 MB (by content, not by name), else
    ValidationError saying which rule it broke."""
    if not photo:
        return None
    if photo.size is not None and photo.size > PHOTO_MAX_BYTES:
        raise ValidationError("The photo is larger than 5 MB.")
    head = photo.read(8)
    photo.seek(0)
    kind = _kind(head)
    if kind is None:
        raise ValidationError("The photo must be a JPEG or PNG image.")
    _decodes(photo)
    # The sender's file name is theirs to choose: "rash.html" would later be served as a web
    # page on the clinic's own site. The stored name says what the bytes are, and no more.
    photo.name = f"{uuid4().hex}.{_SERVED[kind][0]}"
    return photo


def photo_served(stored: FieldFile) -> FileResponse:
    """A stored photo as a response typed by its content (never by its stored name, which
    older uploads took from the sender), shown inline under a neutral name."""
    handle: IO[bytes] = stored.open("rb")
    head = handle.read(8)
    handle.seek(0)
    kind = _kind(head)
    if kind is None:  # not written by photo_checked: nothing to show as an image
        handle.close()
        raise Http404("not a photo")
    extension, content_type = _SERVED[kind]
    return FileResponse(handle, content_type=content_type, filename=f"photo.{extension}")


def _kind(head: bytes) -> str | None:
    """The photo format whose signature ``head`` starts with, if any."""
    return next((kind for magic, kind in PHOTO_TYPES.items() if head.startswith(magic)), None)


#: Larger than any camera's picture: a bigger claim is a decompression bomb.
PHOTO_MAX_PIXELS = 80_000_000


def _decodes(photo: UploadedFile[bytes]) -> None:
    """The bytes really are a whole JPEG or PNG image of a sane size (Pillow decodes it)."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 (only for uploads)

    try:
        with Image.open(photo) as image:
            if image.format not in ("JPEG", "PNG"):
                raise ValidationError("The photo must be a JPEG or PNG image.")
            width, height = image.size
            if width * height > PHOTO_MAX_PIXELS:
                raise ValidationError("The photo has too many pixels.")
            image.load()  # decodes every pixel: a truncated or corrupt file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ValidationError("The photo could not be read as an image.") from None
    finally:
        photo.seek(0)
