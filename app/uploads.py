"""Reading multipart uploads into memory without passing the configured size limit."""

from fastapi import UploadFile

from ingestion.errors import InvalidUpload


async def read_uploads(files: list[UploadFile], budget: int) -> list[tuple[str, bytes]]:
    """Each upload's name and bytes; 413 as soon as their total passes ``budget`` bytes."""
    contents: list[tuple[str, bytes]] = []
    for upload in files:
        data = bytearray()
        while chunk := await upload.read(1024 * 1024):
            data.extend(chunk)
            if len(data) > budget:
                raise InvalidUpload(
                    f"the upload is larger than the {budget} byte limit", status_code=413
                )
        budget -= len(data)
        contents.append((upload.filename or "", bytes(data)))
    return contents
