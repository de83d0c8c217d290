"""Streaming writers that lay SynthCXR out in the official dataset formats, one tree per dataset.

Each writer takes images one at a time (``add``), writes the image file at once (atomically: a temp
file in the same folder, then ``os.replace``) and keeps the label rows in memory; ``close`` writes
the label files, again atomically. Headers, column order, separators, float styles and id formats
copy the real releases (checked against ``../shared/data/real`` by ``tests/test_synth_formats.py``):

- MIMIC-CXR-JPG 2.x: ``files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg`` (8-bit JPEG, quality 95),
  the reports as in ``mimic-cxr-reports.zip`` (``files/pXX/pXXXXXXXX/sXXXXXXXX.txt``), and
  ``mimic-cxr-2.0.0-{metadata,split,chexpert}.csv.gz``.
- NIH ChestX-ray14: ``images/<8-digit patient>_<3-digit follow-up>.png`` (8-bit grey),
  ``Data_Entry_2017_v2020.csv``, ``train_val_list.txt``, ``test_list.txt``, ``BBox_List_2017.csv``
  (its odd header ``Bbox [x,y,w,h],,,`` and the class name ``Infiltrate`` kept).
- RSNA Pneumonia: ``stage_2_train_images/<patientId>.dcm``, ``stage_2_train_labels.csv``
  (``x,y,width,height`` as ``264.0``; one row per box, one empty row for a negative),
  ``stage_2_detailed_class_info.csv`` (one row per labels row).
- SIIM-ACR: ``dicom-images-train/<StudyUID>/<SeriesUID>/<ImageId>.dcm`` and ``train-rle.csv``
  (header ``ImageId, EncodedPixels``, one row per 8-connected component, ``-1`` when empty; see
  :mod:`medslip.rle`).

The RSNA and SIIM DICOMs carry the attribute set of the real competition files: Secondary Capture,
Modality CR, ConversionType WSD, 8-bit MONOCHROME2 with one sample per pixel, JPEG Baseline
transfer syntax (quality 95), ``SeriesDescription`` ``view: PA``, PatientName = PatientID.

Coordinates (boxes, masks) are pixels of the written image: x to the right, y down, origin at
the top-left corner, as in the real files (whose images are 1024 px; SynthCXR's are smaller).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.config import IGNORE
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage

from medslip.atomic import write_bytes_atomic
from medslip.errors import MedslipError
from medslip.rle import encode_siim
from medslip.vocab import CHESTXRAY14_CLASSES, CHEXPERT_CLASSES

FIELD_OF_VIEW_MM = 430.0
"""Detector width the pixel spacing is derived from (spacing = 430 mm / image size)."""

DICOM_JPEG_QUALITY = 95

MIMIC_PREFIX = "mimic-cxr-2.0.0"
MIMIC_CHEXPERT_COLUMNS = tuple(sorted(CHEXPERT_CLASSES))
MIMIC_DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")
_MIMIC_VIEW = {  # ViewPosition -> ViewCodeSequence_CodeMeaning
    "PA": "postero-anterior",
    "AP": "antero-posterior",
    "LATERAL": "lateral",
}
_FRONTAL = ("PA", "AP")
_NIH_BOX_NAME = {"Infiltration": "Infiltrate"}  # BBox_List_2017.csv spells this class differently
_PATIENT_AGE = 0x00101010
_SIIM_UID_ROOT = "1.2.276.0.7230010.3.1"  # + .2 study, .3 series, .4 instance (OFFIS DCMTK root)


def _csv_bytes(header: str, rows: Iterable[Sequence[str]]) -> bytes:
    """A CSV file as the real releases write it: literal header line, ``,``, LF, minimal quoting."""
    buf = io.StringIO()
    buf.write(header + "\n")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def _gzip(data: bytes) -> bytes:
    """Deterministic gzip (no name, mtime 0), so reruns give byte-identical files."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def _grey_image(pixels: np.ndarray, what: str) -> Image.Image:
    """PIL 'L' image of (H, W) uint8 pixels; anything else is a MedslipError naming ``what``."""
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise MedslipError(
            f"{what}: pixels must be (H, W) uint8, got {pixels.shape} {pixels.dtype}"
        )
    return Image.fromarray(pixels, mode="L")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)  # baseline, one component
    return buf.getvalue()


def _check_view(view: str, allowed: Sequence[str], what: str) -> None:
    if view not in allowed:
        raise MedslipError(f"{what}: view {view!r} is not one of {', '.join(allowed)}")


def _check_sex(sex: str, what: str) -> None:
    if sex not in ("M", "F"):
        raise MedslipError(f"{what}: sex {sex!r} is not 'M' or 'F'")


def pixel_spacing_mm(size: int) -> float:
    """Pixel spacing (mm) of a ``size``-pixel-wide image covering the detector, 6 decimals."""
    return round(FIELD_OF_VIEW_MM / size, 6)


# --------------------------------------------------------------------------------------------
# MIMIC-CXR-JPG
# --------------------------------------------------------------------------------------------


def mimic_study_folder(subject_id: int, study_id: int) -> str:
    """``files/p10/p10000032/s50414267``: pXX is the first two digits of the 8-digit subject."""
    return f"files/p{str(subject_id)[:2]}/p{subject_id}/s{study_id}"


def _chexpert_value(value: float | None, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value not in (1.0, 0.0, -1.0):
        raise MedslipError(f"MIMIC chexpert: {key} = {value!r}; expected 1.0, 0.0, -1.0 or NaN")
    return f"{float(value):.1f}"


class MimicCxrJpgWriter:
    """MIMIC-CXR-JPG 2.x tree under ``root`` (plus the reports, laid out as the reports zip)."""

    def __init__(self, root: Path, jpeg_quality: int = 95) -> None:
        self.root = Path(root)
        self.jpeg_quality = jpeg_quality
        self._metadata: list[list[str]] = []
        self._images: list[tuple[str, int, int]] = []  # (dicom_id, study_id, subject_id)
        self._chexpert: dict[tuple[int, int], list[str]] = {}

    def add_study(
        self,
        subject_id: int,
        study_id: int,
        report_text: str,
        chexpert: dict[str, float],
        images: list[tuple[str, np.ndarray, str]],
        study_datetime: datetime,
    ) -> list[str]:
        """Write one study's report and images (dicom_id, (H, W) uint8, ViewPosition).

        Returns the written JPEG paths relative to ``root``.
        """
        what = f"MIMIC study s{study_id}"
        if not (10_000_000 <= subject_id <= 99_999_999 and 10_000_000 <= study_id <= 99_999_999):
            raise MedslipError(f"{what}: subject {subject_id} / study ids must have 8 digits")
        if (subject_id, study_id) in self._chexpert:
            raise MedslipError(f"{what}: study of subject {subject_id} added twice")
        unknown = set(chexpert) - set(MIMIC_CHEXPERT_COLUMNS)
        if unknown:
            raise MedslipError(f"{what}: unknown CheXpert classes {sorted(unknown)}")
        labels = [_chexpert_value(chexpert.get(c), c) for c in MIMIC_CHEXPERT_COLUMNS]
        folder = mimic_study_folder(subject_id, study_id)
        views = {view for _, _, view in images}
        procedure = "CHEST (PORTABLE AP)" if "AP" in views else "CHEST (PA AND LAT)"
        study_date = study_datetime.strftime("%Y%m%d")
        t = study_datetime
        study_time = repr(
            round(t.hour * 10000 + t.minute * 100 + t.second + t.microsecond / 1e6, 3)
        )
        written = []
        for dicom_id, pixels, view in images:
            if not MIMIC_DICOM_ID.match(dicom_id):
                raise MedslipError(f"{what}: dicom_id {dicom_id!r} is not 5 groups of 8 hex digits")
            _check_view(view, tuple(_MIMIC_VIEW), f"{what} image {dicom_id}")
            image = _grey_image(pixels, f"{what} image {dicom_id}")
            rel = f"{folder}/{dicom_id}.jpg"
            write_bytes_atomic(self.root / rel, _jpeg(image, self.jpeg_quality))
            written.append(rel)
            rows, columns = pixels.shape
            self._metadata.append(
                [
                    dicom_id,
                    str(subject_id),
                    str(study_id),
                    procedure,
                    view,
                    str(rows),
                    str(columns),
                    study_date,
                    study_time,
                    procedure,
                    _MIMIC_VIEW[view],
                    "Erect",
                ]
            )
            self._images.append((dicom_id, study_id, subject_id))
        write_bytes_atomic(self.root / f"{folder}.txt", report_text.encode())
        self._chexpert[(subject_id, study_id)] = labels
        return written

    def close(self, split: dict[int, str]) -> None:
        """Write the metadata, split (subject -> train/validate/test) and chexpert tables."""
        missing = {subject for _, _, subject in self._images} - set(split)
        if missing:
            raise MedslipError(f"MIMIC split: no split for subjects {sorted(missing)[:5]}")
        bad = {s for s in split.values()} - {"train", "validate", "test"}
        if bad:
            raise MedslipError(f"MIMIC split: unknown split names {sorted(bad)}")
        order = sorted(range(len(self._images)), key=lambda i: self._images[i][::-1])
        tables = {
            "metadata": (
                "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,"
                "Rows,Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,"
                "ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning",
                [self._metadata[i] for i in order],
            ),
            "split": (
                "dicom_id,study_id,subject_id,split",
                [
                    [dicom, str(study), str(subject), split[subject]]
                    for dicom, study, subject in (self._images[i] for i in order)
                ],
            ),
            "chexpert": (
                ",".join(("subject_id", "study_id", *MIMIC_CHEXPERT_COLUMNS)),
                [[str(s), str(t), *v] for (s, t), v in sorted(self._chexpert.items())],
            ),
        }
        for name, (header, rows) in tables.items():
            data = _gzip(_csv_bytes(header, rows))
            write_bytes_atomic(self.root / f"{MIMIC_PREFIX}-{name}.csv.gz", data)


# --------------------------------------------------------------------------------------------
# NIH ChestX-ray14
# --------------------------------------------------------------------------------------------

NIH_DATA_ENTRY_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
NIH_BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"


class NihCxr14Writer:
    """NIH ChestX-ray14 tree under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._entries: list[list[str]] = []
        self._patients: list[int] = []
        self._boxes: list[list[str]] = []

    def add(
        self,
        patient_id: int,
        follow_up: int,
        pixels: np.ndarray,
        labels: list[str],
        view: str,
        age: int,
        sex: str,
        boxes: list[tuple[str, float, float, float, float]],
    ) -> str:
        """Write ``images/<Image Index>`` and return the Image Index, e.g. ``00000001_000.png``.

        ``labels`` are ChestX-ray14 class names (``[]`` is "No Finding"); ``boxes`` are
        (class, x, y, w, h) in pixels of this image.
        """
        if not (0 < patient_id < 10**8 and 0 <= follow_up < 1000):
            raise MedslipError(f"NIH: patient {patient_id} / follow-up {follow_up} out of range")
        index = f"{patient_id:08d}_{follow_up:03d}.png"
        what = f"NIH image {index}"
        unknown = set(labels) - set(CHESTXRAY14_CLASSES)
        if unknown:
            raise MedslipError(f"{what}: unknown ChestX-ray14 labels {sorted(unknown)}")
        _check_view(view, _FRONTAL, what)
        _check_sex(sex, what)
        image = _grey_image(pixels, what)
        height, width = pixels.shape
        for name, x, y, w, h in boxes:
            if name not in labels:
                raise MedslipError(f"{what}: box class {name!r} is not among its labels {labels}")
            if not (x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height):
                raise MedslipError(f"{what}: box {(x, y, w, h)} outside the {width}x{height} image")
            self._boxes.append(
                [index, _NIH_BOX_NAME.get(name, name), *(f"{float(v):.15g}" for v in (x, y, w, h))]
            )
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        write_bytes_atomic(self.root / "images" / index, buf.getvalue())
        spacing = repr(pixel_spacing_mm(width))
        self._entries.append(
            [
                index,
                "|".join(sorted(labels)) or "No Finding",
                str(follow_up),
                str(patient_id),
                str(int(age)),
                sex,
                view,
                str(width),
                str(height),
                spacing,
                spacing,
            ]
        )
        self._patients.append(patient_id)
        return index

    def close(self, test_patients: set[int]) -> None:
        """Write the label table, the official patient-wise split lists and the box list."""
        order = sorted(range(len(self._entries)), key=lambda i: self._entries[i][0])
        entries = [self._entries[i] for i in order]
        test = [
            e[0] for i, e in zip(order, entries, strict=True) if self._patients[i] in test_patients
        ]
        train_val = [
            e[0]
            for i, e in zip(order, entries, strict=True)
            if self._patients[i] not in test_patients
        ]
        boxes = sorted(self._boxes, key=lambda b: (b[1], b[0]))
        write_bytes_atomic(
            self.root / "Data_Entry_2017_v2020.csv", _csv_bytes(NIH_DATA_ENTRY_HEADER, entries)
        )
        write_bytes_atomic(self.root / "BBox_List_2017.csv", _csv_bytes(NIH_BBOX_HEADER, boxes))
        for name, ids in (("train_val_list.txt", train_val), ("test_list.txt", test)):
            write_bytes_atomic(self.root / name, "".join(f"{i}\n" for i in ids).encode())


# --------------------------------------------------------------------------------------------
# RSNA Pneumonia and SIIM-ACR: DICOM secondary captures
# --------------------------------------------------------------------------------------------


class _SecondaryCaptureWriter:
    """Writes 8-bit MONOCHROME2 JPEG-Baseline DICOMs with the Kaggle competitions' attributes.

    One template dataset is filled in per image (no per-image tree building), then serialised.
    """

    def __init__(self) -> None:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        meta.ImplementationClassUID = "1.2.276.0.7230010.3.0.3.6.0"
        meta.ImplementationVersionName = "OFFIS_DCMTK_360"
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.SOPInstanceUID = ""
        ds.StudyDate = "19010101"
        ds.StudyTime = "000000.00"
        ds.AccessionNumber = ""
        ds.Modality = "CR"
        ds.ConversionType = "WSD"
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = ""
        ds.PatientName = ""
        ds.PatientID = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.PatientAge = ""
        ds.BodyPartExamined = "CHEST"
        ds.ViewPosition = ""
        ds.StudyInstanceUID = ""
        ds.SeriesInstanceUID = ""
        ds.StudyID = ""
        ds.SeriesNumber = "1"
        ds.InstanceNumber = "1"
        ds.PatientOrientation = ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = 0
        ds.Columns = 0
        ds.PixelSpacing = [1, 1]
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = b""
        ds["PixelData"].VR = "OB"
        self._template = ds

    def dicom_bytes(
        self,
        pixels: np.ndarray,
        *,
        patient_id: str,
        view: str,
        age: int,
        sex: str,
        uids: tuple[str, str, str],
        what: str,
    ) -> bytes:
        """Serialised DICOM of (H, W) uint8 ``pixels``; ``uids`` = (study, series, instance)."""
        _check_view(view, _FRONTAL, what)
        _check_sex(sex, what)
        jpeg = _jpeg(_grey_image(pixels, what), DICOM_JPEG_QUALITY)
        ds = self._template
        study, series, instance = uids
        ds.file_meta.MediaStorageSOPInstanceUID = instance
        ds.SOPInstanceUID = instance
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SeriesDescription = f"view: {view}"
        ds.PatientName = patient_id
        ds.PatientID = patient_id
        ds.PatientSex = sex
        # Plain years ("62"), as the competition files have it, though VR AS wants "062Y".
        ds[_PATIENT_AGE] = DataElement(_PATIENT_AGE, "AS", str(int(age)), validation_mode=IGNORE)
        ds.ViewPosition = view
        ds.Rows, ds.Columns = pixels.shape
        spacing = f"{pixel_spacing_mm(pixels.shape[1]):.6g}"
        ds.PixelSpacing = [spacing, spacing]
        ds.PixelData = encapsulate([jpeg])
        ds["PixelData"].is_undefined_length = True
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue()


def _random_uuid(rng: np.random.Generator) -> str:
    """A version-4 UUID string drawn from ``rng`` (the RSNA patientId format)."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _siim_uids(rng: np.random.Generator) -> tuple[str, str, str]:
    """(study, series, instance) UIDs in the SIIM/RSNA style.

    Instance ``1.2.276.0.7230010.3.1.4.8323329.<n>.<seconds>.<micro>``; study and series share
    ``<n>.<seconds>`` with ``.2``/``.3`` in place of ``.4`` and micro - 1 / micro - 2.
    """
    n = int(rng.integers(300, 32768))
    seconds = 1517875000 + int(rng.integers(0, 1000))
    micro = int(rng.integers(100002, 1000000))
    body = f"8323329.{n}.{seconds}"
    return (
        f"{_SIIM_UID_ROOT}.2.{body}.{micro - 1}",
        f"{_SIIM_UID_ROOT}.3.{body}.{micro - 2}",
        f"{_SIIM_UID_ROOT}.4.{body}.{micro}",
    )


RSNA_DETAILED_CLASSES = ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")


class RsnaPneumoniaWriter:
    """RSNA Pneumonia Detection Challenge (stage 2) tree under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dicom = _SecondaryCaptureWriter()
        self._labels: list[list[str]] = []
        self._classes: list[list[str]] = []
        self._ids: set[str] = set()

    def add(
        self,
        pixels: np.ndarray,
        view: str,
        age: int,
        sex: str,
        boxes: list[tuple[float, float, float, float]],
        lung_opacity: bool,
        abnormal_not_opacity: bool,
        rng: np.random.Generator,
    ) -> str:
        """Write ``stage_2_train_images/<patientId>.dcm`` and return the new patientId (a UUID).

        ``boxes`` are (x, y, w, h) pixels of this image, rounded to whole pixels as in the real
        file; they must be given exactly when ``lung_opacity``.
        """
        patient_id = _random_uuid(rng)
        while patient_id in self._ids:
            patient_id = _random_uuid(rng)
        what = f"RSNA image {patient_id}"
        if lung_opacity != bool(boxes) or (lung_opacity and abnormal_not_opacity):
            raise MedslipError(
                f"{what}: lung_opacity={lung_opacity} with {len(boxes)} boxes and "
                f"abnormal_not_opacity={abnormal_not_opacity} is inconsistent"
            )
        height, width = pixels.shape
        label = RSNA_DETAILED_CLASSES[0 if lung_opacity else 1 if abnormal_not_opacity else 2]
        rows = []
        for box in boxes:
            x, y, w, h = (float(round(v)) for v in box)
            if not (x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height):
                raise MedslipError(f"{what}: box {box} outside the {width}x{height} image")
            rows.append([patient_id, *(f"{v:.1f}" for v in (x, y, w, h)), "1"])
        data = self._dicom.dicom_bytes(
            pixels,
            patient_id=patient_id,
            view=view,
            age=age,
            sex=sex,
            uids=_siim_uids(rng),
            what=what,
        )
        write_bytes_atomic(self.root / "stage_2_train_images" / f"{patient_id}.dcm", data)
        self._ids.add(patient_id)
        self._labels.extend(rows or [[patient_id, "", "", "", "", "0"]])
        self._classes.extend([patient_id, label] for _ in range(max(1, len(rows))))
        return patient_id

    def close(self) -> None:
        """Write ``stage_2_train_labels.csv`` and ``stage_2_detailed_class_info.csv``."""
        write_bytes_atomic(
            self.root / "stage_2_train_labels.csv",
            _csv_bytes("patientId,x,y,width,height,Target", self._labels),
        )
        write_bytes_atomic(
            self.root / "stage_2_detailed_class_info.csv",
            _csv_bytes("patientId,class", self._classes),
        )


class SiimAcrWriter:
    """SIIM-ACR Pneumothorax Segmentation (Kaggle 2019) tree under ``root``."""

    RLE_HEADER = "ImageId, EncodedPixels"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dicom = _SecondaryCaptureWriter()
        self._rows: list[list[str]] = []
        self._ids: set[str] = set()
        self.paths: dict[str, str] = {}  # ImageId -> DICOM path relative to root

    def add(
        self,
        pixels: np.ndarray,
        mask: np.ndarray | None,
        view: str,
        age: int,
        sex: str,
        rng: np.random.Generator,
    ) -> str:
        """Write ``dicom-images-train/<StudyUID>/<SeriesUID>/<ImageId>.dcm``; return the ImageId.

        ``mask`` is the (H, W) bool pneumothorax mask of this image, or None for none.
        """
        uids = _siim_uids(rng)
        while uids[2] in self._ids:
            uids = _siim_uids(rng)
        study, series, image_id = uids
        what = f"SIIM image {image_id}"
        if mask is not None and mask.shape != pixels.shape:
            raise MedslipError(f"{what}: mask shape {mask.shape} != image shape {pixels.shape}")
        rles = encode_siim(mask) if mask is not None else ["-1"]
        data = self._dicom.dicom_bytes(
            pixels,
            patient_id=_random_uuid(rng),
            view=view,
            age=age,
            sex=sex,
            uids=uids,
            what=what,
        )
        path = self.root / "dicom-images-train" / study / series / f"{image_id}.dcm"
        write_bytes_atomic(path, data)
        self._ids.add(image_id)
        self.paths[image_id] = str(path.relative_to(self.root))
        self._rows.extend([image_id, rle] for rle in rles)
        return image_id

    def close(self) -> None:
        """Write ``train-rle.csv``."""
        write_bytes_atomic(self.root / "train-rle.csv", _csv_bytes(self.RLE_HEADER, self._rows))
