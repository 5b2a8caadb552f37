"""``hrface detect --crops DIR``: one aligned crop per face (``--crop-template``, ``--crop-size``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..geometry.align import DEFAULT_CROP_SIZES, TEMPLATES
from ..io.image import write_image
from ..io.records import error_text, matrix_value


class CropWriter:
    """Writes ``DIR/GROUP/STEM_K.png`` for face K of an image (K: the track id in a video, else the face's
    index; names: :mod:`.outputs`), and adds its ``align_matrix`` (image → crop, 2×3 nested lists) to the
    face's record."""

    def __init__(self, folder: Path, template: str, size: int | None) -> None:
        self.folder, self.template = folder, template
        self.size = size or DEFAULT_CROP_SIZES[template]

    def write_faces(
        self, image: Any, faces: Sequence[Any], records: list[dict[str, Any]], group: str, stem: str
    ) -> None:
        """Crop and write every face of ``image``; a face whose crop fails gets ``crop_error`` in its record."""
        for index, (face, record) in enumerate(zip(faces, records, strict=True)):
            key = getattr(face, "track_id", index)
            try:
                crop, matrix = face.align(image, size=self.size, template=self.template)
                record["align_matrix"] = matrix_value(matrix)
                write_image(self.folder / group / f"{stem}_{key}.png", crop)
            except Exception as exc:  # one face's crop must not end the batch
                record["crop_error"] = error_text(exc)


def add_crop_arguments(parser: Any) -> None:
    """``--crops DIR``, ``--crop-template``, ``--crop-size``."""
    parser.add_argument("--crops", type=Path, metavar="DIR", help="write one aligned crop per face into DIR")
    parser.add_argument(
        "--crop-template",
        choices=sorted(TEMPLATES),
        default="arcface",
        help="arcface: the 5-point ArcFace template (similarity transform); ffhq: the FFHQ oriented quad "
        "(default arcface)",
    )
    parser.add_argument(
        "--crop-size", type=int, metavar="PX", help="crop side in pixels (default 112 for arcface, 512 for ffhq)"
    )
