"""The label statistics table: per dataset, split and entity, the images a label says positive,
negative, uncertain or nothing about (MIMIC from the parsed reports as pretraining reads them,
the evaluation datasets from their class labels), and SynthCXR's drawn findings below a token."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medslip.cli import main
from medslip.tables.output import markdown
from medslip.tables.stages import label_statistics
from medslip.vocab import ENTITIES, ENTITY_INDEX, LANDMARK_INDEX, LANDMARKS

MAPS = {"nih_cxr14": {"Effusion": "effusion", "Hernia": "hernia"}}
SOURCES = {"mimic_cxr_jpg": "SynthCXR", "nih_cxr14": "real"}


def _dataset(root, name, rows, splits):
    folder = root / "data" / name
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "manifest.parquet")
    ids = [r["image_id"] for r in rows]
    pd.DataFrame({"image_id": ids, "patient_id": ids, "split": splits}).to_csv(
        folder / "splits.csv", index=False
    )
    return folder


@pytest.fixture
def stages(tmp_path):
    # MIMIC: studies s1 (effusion present + absent elsewhere), s2 (effusion absent), s3
    # (effusion hedged only), s4 (no report row); one image each, s1-s3 train, s4 test.
    rows = [
        {"image_id": f"d{i}", "study_id": f"s{i}", "path": f"files/d{i}.jpg", "labels": "{}"}
        for i in range(1, 5)
    ]
    mimic = _dataset(tmp_path, "mimic_cxr_jpg", rows, ["train", "train", "train", "test"])
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report_ids.txt").write_text("s1\ns2\ns3\n")
    matrix = np.full((3, len(LANDMARKS), len(ENTITIES)), -1, np.int8)
    uncertain = np.zeros(matrix.shape, bool)
    effusion = ENTITY_INDEX["effusion"]
    left, right = LANDMARK_INDEX["left_pleural"], LANDMARK_INDEX["right_pleural"]
    matrix[0, left, effusion], matrix[0, right, effusion] = 1, 0
    matrix[1, left, effusion] = 0
    uncertain[2, left, effusion] = True
    np.save(reports / "label_matrix.npy", matrix)
    np.save(reports / "uncertain_mask.npy", uncertain)
    # SynthCXR truth of the MIMIC tree: a 60-px effusion and a 10-px nodule on d1 (224 px).
    truth = tmp_path / "ground_truth" / "mimic_cxr_jpg"
    truth.mkdir(parents=True)
    pd.DataFrame({"image_id": ["x1"], "path": ["files/d1.jpg"], "size": [224]}).to_parquet(
        truth / "images.parquet"
    )
    pd.DataFrame(
        {
            "image_id": ["x1", "x1"],
            "entity": ["effusion", "nodule"],
            "w": [60.0, 10],
            "h": [40.0, 9],
        }
    ).to_parquet(truth / "findings.parquet")
    labels = [{"Effusion": 1.0, "Hernia": 0.0}, {"Effusion": 0.0, "Hernia": None}, {}]
    rows = [
        {"image_id": f"n{i}", "study_id": "", "path": f"images/n{i}.png", "labels": json.dumps(v)}
        for i, v in enumerate(labels)
    ]
    nih = _dataset(tmp_path, "nih_cxr14", rows, ["train", "train", "val"])
    return [mimic, nih], reports, [truth]


def _row(frame, dataset, split, entity):
    hit = frame[(frame["dataset"] == dataset) & (frame["split"] == split)]
    return hit[hit["entity"] == entity].iloc[0]


def test_mimic_images_carry_their_reports_labels_as_pretraining_reads_them(stages):
    data_dirs, reports, truth = stages
    frame = label_statistics(data_dirs, reports, MAPS, SOURCES, 224, truth).frame
    row = _row(frame, "mimic_cxr_jpg", "train", "effusion")
    # present beats absent; hedged only is uncertain, not unmentioned
    assert (row["images"], row["positive"], row["negative"], row["uncertain"]) == (3, 1, 1, 1)
    assert row["unmentioned"] == 0 and row["source"] == "SynthCXR"
    assert _row(frame, "mimic_cxr_jpg", "test", "effusion")["images"] == 0  # no report row
    # entities no report mentions and no image shows are left out
    assert set(frame.loc[frame["dataset"] == "mimic_cxr_jpg", "entity"]) == {"effusion", "nodule"}


def test_drawn_findings_smaller_than_a_token_are_counted(stages):
    data_dirs, reports, truth = stages
    frame = label_statistics(data_dirs, reports, MAPS, SOURCES, 224, truth).frame
    effusion, nodule = (_row(frame, "mimic_cxr_jpg", "train", e) for e in ("effusion", "nodule"))
    assert (effusion["drawn"], effusion["drawn_below_token"]) == (1, 0)
    assert (nodule["drawn"], nodule["drawn_below_token"]) == (1, 1)
    # the token is the model input's: 16 px of a 64-px input are 56 px of the 224-px image
    coarse = label_statistics(data_dirs, reports, MAPS, SOURCES, 64, truth).frame
    assert _row(coarse, "mimic_cxr_jpg", "train", "effusion")["drawn_below_token"] == 1
    # real data draws nothing: empty, not 0
    assert pd.isna(_row(frame, "nih_cxr14", "train", "effusion")["drawn"])


def test_evaluation_datasets_count_their_class_labels_with_the_scoring_entity(stages):
    data_dirs, reports, truth = stages
    frame = label_statistics(data_dirs, reports, MAPS, SOURCES, 224, truth).frame
    effusion = _row(frame, "nih_cxr14", "train", "effusion")
    assert effusion["class"] == "Effusion"
    assert (effusion["positive"], effusion["negative"], effusion["unmentioned"]) == (1, 1, 0)
    hernia = _row(frame, "nih_cxr14", "train", "hernia")
    assert (hernia["negative"], hernia["unmentioned"]) == (1, 1)
    assert _row(frame, "nih_cxr14", "val", "effusion")["unmentioned"] == 1


def test_cli_writes_the_table_and_its_markdown_twin(stages, tmp_path):
    data_dirs, reports, truth = stages
    out = tmp_path / "tables"
    argv = ["table", "label_statistics", "--sources", json.dumps(SOURCES)]
    argv += ["--csv", str(out / "t.csv"), "--md", str(out / "t.md")]
    argv += ["--data-dirs", *map(str, data_dirs), "--reports-dir", str(reports)]
    argv += ["--entity-maps", json.dumps(MAPS), "--model-size", "224"]
    assert main([*argv, "--truth-dirs", *map(str, truth)]) == 0
    csv = pd.read_csv(out / "t.csv", keep_default_na=False)
    assert list(csv.columns[-6:]) == [
        "positive",
        "negative",
        "uncertain",
        "unmentioned",
        "drawn",
        "drawn_below_token",
    ]
    md = (out / "t.md").read_text()
    assert "<NA>" not in md and "| nih_cxr14 | train | Effusion | effusion | 2 | 1 | 1 |" in md
    assert markdown(label_statistics(data_dirs, reports, {}, {}, 224, truth)).count("nih") == 0


def test_a_synthcxr_tree_with_nothing_drawn_counts_zero(stages, tmp_path):
    data_dirs, reports, truth = stages
    empty = tmp_path / "ground_truth" / "nih_cxr14"
    empty.mkdir()
    pd.DataFrame([]).to_parquet(empty / "findings.parquet")  # what the generator writes then
    written = {"image_id": ["n0.png"], "path": ["images/n0.png"], "size": [224]}
    pd.DataFrame(written).to_parquet(empty / "images.parquet")
    frame = label_statistics(data_dirs, reports, MAPS, SOURCES, 224, [*truth, empty]).frame
    row = _row(frame, "nih_cxr14", "train", "effusion")
    assert (row["drawn"], row["drawn_below_token"]) == (0, 0)
