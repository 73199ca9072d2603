"""Checks for photos of a patient's skin: only real JPEG or PNG images of a sensible size
are kept (they are health data, stored privately and shown only to the people allowed)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

#: The first bytes of the formats accepted.
PHOTO_TYPES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
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
    if not any(head.startswith(magic) for magic in PHOTO_TYPES):
        raise ValidationError("The photo must be a JPEG or PNG image.")
    return photo
