"""The disentanglement probe: stream features, the probe split, the probe table and its verdict on
synthetic features with known signal, and ``medslip evaluate probe`` end to end on tiny models
saved like pretraining runs over a small hand-made data stage and SynthCXR ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from medslip.cli import main
from medslip.data.shards import ShardWriter
from medslip.evaluate.probe import (
    PREDICTION_COLUMNS,
    Target,
    probe,
    probe_parts,
)
from medslip.model.text_books import save_books
from medslip.rle import encode_siim
from medslip.settings import ProbeSettings
from tests.test_evaluate_command import SIZE, _books, _model, _outputs, _run_dir

SETTINGS = ProbeSettings(fractions=(0.6, 0.2, 0.2), c_grid=(0.01, 0.1, 1.0), min_positives=3)


def test_stream_tokens_are_the_decoder_memories():
    images = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    medslip, medklip = _model("medslip"), _model("medklip")
    with torch.no_grad():
        features = medslip.stream_tokens(images)
        x_p, x_a = medslip._streams(images)
        pathology = medslip.res_l2_pathology(F.relu(medslip.res_l1_pathology(x_p)))
        anatomy = medslip.res_l2_anatomy(F.relu(medslip.res_l1_anatomy(x_a)))
        single = medklip.stream_tokens(images)
    assert tuple(features) == medslip.STREAMS == ("pathology", "anatomy")
    torch.testing.assert_close(features["pathology"], pathology)
    torch.testing.assert_close(features["anatomy"], anatomy)
    assert not torch.allclose(features["pathology"], features["anatomy"])
    assert tuple(single) == medklip.STREAMS == ("pathology",)
    assert single["pathology"].shape == (3, (SIZE // 16) ** 2, 16)
    assert _model("global_clip").STREAMS == ()


def test_a_finding_covers_the_tokens_it_fills_and_always_one():
    """Coverage is read on the grounding's token cells; a lesion smaller than a token still
    covers its most-covered token, a large one every token it fills to COVER."""
    from medslip.evaluate.probe import covered_tokens
    from medslip.rle import encode_siim

    big = np.zeros((64, 64), dtype=bool)
    big[:40, :40] = True  # fills the cells of tokens (0, 0), (0, 1), (1, 0), (1, 1) enough
    small = np.zeros((64, 64), dtype=bool)
    small[50:53, 60:63] = True  # 9 pixels in the cell of token (3, 3)
    sites = pd.DataFrame(
        {
            "row": [0, 1],
            "kind": ["effusion", "nodule"],
            "landmark": ["left_pleural", "left_lower_lung"],
            "mask_rle": [encode_siim(big), encode_siim(small)],
            "size": [64, 64],
        }
    )
    out = covered_tokens(sites, grid=4, size=64, aspect="stretch")
    assert out[out["row"] == 0]["token"].tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    assert out[out["row"] == 1]["token"].tolist() == [15]


def test_probe_parts_split_patients_by_the_fractions():
    patients = np.repeat([f"p{i:03d}" for i in range(50)], 3)
    part = probe_parts(patients, (0.6, 0.2, 0.2), seed=4)
    per_patient = pd.Series(part).groupby(patients).nunique()
    assert (per_patient == 1).all()  # a patient lies in one part
    assert np.bincount(part).tolist() == [90, 30, 30]
    assert (probe_parts(patients, (0.6, 0.2, 0.2), seed=4) == part).all()
    assert (probe_parts(patients, (0.6, 0.2, 0.2), seed=5) != part).any()


def _synthetic(seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Target]]:
    """300 images of 150 patients; stream A carries the presence labels, stream B the
    landmark labels (independent of each other), each in 3 of 12 noisy dimensions."""
    rng = np.random.default_rng(seed)
    n = 300
    frame = pd.DataFrame(
        {"image_id": [f"i{i:03d}" for i in range(n)], "patient_id": np.repeat(np.arange(150), 2)}
    )
    frame["patient_id"] = "p" + frame["patient_id"].astype(str)
    frame["token"] = 0
    presence = (rng.random((n, 3)) < 0.4).astype(float)
    landmark = (rng.random((n, 3)) < 0.4).astype(float)
    a = np.hstack([2 * presence, np.zeros((n, 9))]) + rng.normal(size=(n, 12))
    b = np.hstack([2 * landmark, np.zeros((n, 9))]) + rng.normal(size=(n, 12))
    rows = np.arange(n)
    targets = {
        "presence": Target(rows, ["effusion", "mass", "nodule"], presence),
        "landmark": Target(rows, ["heart_size", "left_pleural", "svc"], landmark),
    }
    return frame, {"a": a, "b": b}, targets


@pytest.mark.parametrize("swapped", [False, True])
def test_each_stream_wins_at_the_target_it_carries(swapped):
    frame, streams, targets = _synthetic()
    p, a = ("b", "a") if swapped else ("a", "b")
    features = {"pathology": streams[p], "anatomy": streams[a]}
    predictions, body = probe(frame, features, targets, SETTINGS, bootstrap=200, seed=7)
    table, diff = body["table"], body["differences"]
    carrier = {"presence": "anatomy" if swapped else "pathology"}
    carrier["landmark"] = "pathology" if swapped else "anatomy"
    for target, winner in carrier.items():
        loser = "pathology" if winner == "anatomy" else "anatomy"
        assert table[winner][target]["auc"] > 0.8 and table[loser][target]["auc"] < 0.65
        assert table[winner][target]["auc_ci"][0] > table[loser][target]["auc_ci"][1]
        assert table[winner][target]["n_columns"] == 3
        assert set(table[winner][target]["columns"]) == set(targets[target].columns)
    expected = "worse" if swapped else "better"
    for target in ("presence", "landmark"):
        lo, hi = diff[target]["auc_difference_ci"]
        assert diff[target]["judgement"] == expected
        assert (hi < 0) if swapped else (lo > 0)
    assert diff["presence"]["own"] == "pathology" and diff["landmark"]["own"] == "anatomy"
    assert f"pathology stream is {expected} than the anatomy stream at finding presence" in (
        body["verdict"].lower()
    )
    assert (
        f"anatomy stream is {expected} than the pathology stream at finding landmark"
        in (body["verdict"])
    )
    assert body["C"]["pathology"]["presence"]["chosen"] in SETTINGS.c_grid
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert len(predictions) == 2 * 2 * 300 * 3  # streams x targets x rows x columns
    assert set(predictions["probe_split"]) == {"train", "val", "test"}
    assert body["counts"]["patients"] == {"train": 90, "val": 30, "test": 30}


def test_no_signal_is_not_distinguishable():
    frame, streams, targets = _synthetic()
    noise = np.random.default_rng(3).normal(size=streams["a"].shape)
    features = {"pathology": noise, "anatomy": noise[:, ::-1].copy()}
    _, body = probe(frame, features, targets, SETTINGS, bootstrap=200, seed=7)
    assert {d["judgement"] for d in body["differences"].values()} == {"not distinguishable"}
    assert "is not distinguishable from" in body["verdict"]


def test_the_probe_is_deterministic_given_the_seed():
    frame, streams, targets = _synthetic()
    features = {"pathology": streams["a"], "anatomy": streams["b"]}
    first = probe(frame, features, targets, SETTINGS, bootstrap=100, seed=11)
    again = probe(frame, features, targets, SETTINGS, bootstrap=100, seed=11)
    pd.testing.assert_frame_equal(first[0], again[0])
    assert json.dumps(first[1]) == json.dumps(again[1])
    other = probe(frame, features, targets, SETTINGS, bootstrap=100, seed=12)
    assert not other[0]["probe_split"].equals(first[0]["probe_split"])
    assert json.dumps(other[1]["table"]) != json.dumps(first[1]["table"])


def test_rare_columns_are_dropped_with_a_note():
    frame, streams, targets = _synthetic()
    rare = targets["presence"].labels.copy()
    rare[:, 1] = 0.0
    rare[:2, 1] = 1.0  # 2 positives in all: below min_positives in some part
    targets["presence"] = Target(targets["presence"].rows, targets["presence"].columns, rare)
    features = {"pathology": streams["a"]}
    _, body = probe(frame, features, targets, SETTINGS, bootstrap=50, seed=7)
    assert body["counts"]["dropped_columns"]["presence"] == ["mass"]
    assert set(body["table"]["pathology"]["presence"]["columns"]) == {"effusion", "nodule"}
    assert body["differences"] == {}
    assert body["verdict"].startswith("Only a pathology stream")
    empty = Target(np.arange(0), [], np.zeros((0, 0)))
    _, body = probe(frame, features, {"presence": empty}, SETTINGS, bootstrap=50, seed=7)
    assert body["table"]["pathology"]["presence"]["n_columns"] == 0
    assert any("nothing to score" in note for note in body["notes"])


N_PATIENTS = 30
KINDS = {"effusion": "left_pleural", "cardiomegaly": "heart_size"}
MASKS = {"effusion": np.zeros((48, 48), dtype=bool), "cardiomegaly": np.zeros((48, 48), bool)}
MASKS["effusion"][30:46, 28:46] = True  # lower right of the image: token (1, 1) of 2 x 2
MASKS["cardiomegaly"][4:40, 4:40] = True  # fills part of every token's cell of 2 x 2


def _write_data(root: Path) -> tuple[Path, Path]:
    """A data-stage directory (splits, one shard, index, summary) and SynthCXR ground truth:
    30 test patients with one or two images (half with effusion at the left pleura, a third
    with cardiomegaly at the heart), 4 train images the probe must ignore, one test image
    quarantined (not in the shards)."""
    data, truth = root / "data", root / "truth"
    (data / "shards").mkdir(parents=True)
    truth.mkdir()
    rng = np.random.default_rng(0)
    ids, patients, split = [], [], []
    for p in range(N_PATIENTS):
        for k in range(1 + p % 2):
            ids.append(f"img{p:02d}_{k}")
            patients.append(f"{p}")
            split.append("test")
    ids += ["train0", "train1", "train2", "train3"]
    patients += ["90", "91", "92", "93"]
    split += ["train"] * 4
    pd.DataFrame({"image_id": ids, "patient_id": patients, "split": split}).to_csv(
        data / "splits.csv", index=False
    )
    kinds = [
        sorted(k for j, k in enumerate(KINDS) if (i + j) % (2 + j) == 0) for i in range(len(ids))
    ]
    pd.DataFrame({"image_id": ids, "kinds": kinds, "view": "PA", "size": 48}).to_parquet(
        truth / "images.parquet"
    )
    findings = [
        (i, k, KINDS[k], encode_siim(MASKS[k]))
        for i, ks in zip(ids, kinds, strict=True)
        for k in ks
    ]
    pd.DataFrame(findings, columns=["image_id", "kind", "landmark", "mask_rle"]).to_parquet(
        truth / "findings.parquet"
    )
    stored = ids[1:]  # img00_0 quarantined
    with ShardWriter(data / "shards" / "shard-00000.lmdb") as writer:
        for image_id in stored:
            writer.add(image_id, rng.integers(0, 256, (48, 48), dtype=np.uint8))
    pd.DataFrame({"image_id": stored}).to_parquet(data / "shards" / "index.parquet")
    summary = {"size": 48, "aspect": "stretch", "shards": [{"file": "shard-00000.lmdb"}]}
    (data / "shards" / "summary.json").write_text(json.dumps(summary))
    return data, truth


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    _write_data(root)
    save_books(_books(), root / "books.safetensors")
    for variant in ("medslip", "medklip", "global_clip", "random_init"):
        _run_dir(root, variant)
    return root


def _evaluate(work: Path, variant: str, out: Path, truth: str | None = "truth") -> int:
    """``medslip evaluate probe`` on the tiny data; ``truth`` relative to ``work`` (None: no
    ``--truth``)."""
    block = {"bootstrap": 30, "batch_size": 7, "probe": {"min_positives": 1}}
    truth_args = [] if truth is None else ["--truth", str(work / truth)]
    return main(
        [
            "evaluate",
            "probe",
            "--config",
            json.dumps({"seed": 3, "evaluate": block}),
            "--run-dir",
            str(work / "models" / variant / "seed0"),
            "--books",
            str(work / "books.safetensors"),
            "--data",
            str(work / "data"),
            "--dataset",
            "mimic_cxr_jpg",
            "--device",
            "cpu",
            "--out",
            str(out),
            *truth_args,
        ]
    )


@pytest.mark.parametrize("variant", ["medslip", "random_init", "medklip"])
def test_probe_command_writes_the_table(work, tmp_path, variant):
    assert _evaluate(work, variant, tmp_path) == 0
    predictions, metrics = _outputs(tmp_path)
    assert metrics["status"] == "ok" and metrics["task"] == "probe"
    assert metrics["dataset"] == "mimic_cxr_jpg" and metrics["variant"] == variant
    streams = ["pathology"] if variant == "medklip" else ["pathology", "anatomy"]
    assert list(metrics["table"]) == streams
    assert any("1 test images are not in the shards" in n for n in metrics["notes"])
    tokens = metrics["counts"]["images"]  # rows: the tokens a finding covers
    truth_kinds = pd.read_parquet(work / "truth" / "images.parquet").set_index("image_id")
    stored = [i for i in truth_kinds.index if i.startswith("img") and i != "img00_0"]
    expected = sum(
        len({3} if kinds.tolist() == ["effusion"] else {0, 1, 2, 3} if len(kinds) else set())
        for kinds in truth_kinds.loc[stored, "kinds"]
    )
    assert sum(tokens["presence"].values()) == sum(tokens["landmark"].values()) == expected
    assert "covers" in metrics["protocol"]["rows"]
    for stream in streams:
        for target, column in (("presence", "effusion"), ("landmark", "left_pleural")):
            entry = metrics["table"][stream][target]
            assert entry["n_columns"] >= 1 and column in entry["columns"]
            assert 0 <= entry["auc"] <= 1 and entry["auc_ci"][0] <= entry["auc_ci"][1]
    assert set(predictions["stream"]) == set(streams)
    assert set(predictions["target"]) == {"presence", "landmark"}
    assert not predictions["image_id"].str.startswith("train").any()
    assert predictions.groupby("patient_id")["probe_split"].nunique().max() == 1
    kinds = truth_kinds["kinds"]
    effusion = predictions[predictions["column"] == "effusion"].drop_duplicates(
        ["image_id", "token"]
    )
    truth = [
        float("effusion" in kinds[i] and t == 3)
        for i, t in zip(effusion["image_id"], effusion["token"], strict=True)
    ]
    assert effusion["label"].tolist() == truth and 0 < sum(truth) < len(truth)
    if variant == "medklip":
        assert metrics["differences"] == {}
    else:
        assert set(metrics["differences"]) == {"presence", "landmark"}
        assert all(d["auc_difference_mdd"] > 0 for d in metrics["differences"].values())
        assert metrics["verdict"].startswith("The pathology stream ")
        assert "detectable" in metrics["verdict"]
    again = tmp_path / "again"
    assert _evaluate(work, variant, again) == 0
    assert _outputs(again)[1] == metrics  # seeded: identical split, fits and intervals


def test_probe_global_clip_is_not_applicable(work, tmp_path):
    assert _evaluate(work, "global_clip", tmp_path) == 0
    predictions, metrics = _outputs(tmp_path)
    assert metrics["status"] == "n/a" and "no pathology or anatomy stream" in metrics["reason"]
    assert "table" not in metrics and predictions.empty


def test_an_empty_test_split_is_scored_as_nothing(work, tmp_path):
    splits = pd.read_csv(work / "data" / "splits.csv", dtype=str)
    try:
        splits.assign(split="train").to_csv(work / "data" / "splits.csv", index=False)
        assert _evaluate(work, "medslip", tmp_path) == 0
    finally:
        splits.to_csv(work / "data" / "splits.csv", index=False)
    predictions, metrics = _outputs(tmp_path)
    assert metrics["status"] == "ok" and predictions.empty
    assert "no test image to probe" in metrics["notes"]
    assert metrics["table"]["pathology"]["presence"]["n_columns"] == 0
    assert metrics["differences"]["presence"]["judgement"] == "undetermined"
    assert "cannot be compared with" in metrics["verdict"]


def test_probe_errors_name_what_is_missing(work, tmp_path, caplog):
    assert _evaluate(work, "medslip", tmp_path, truth=None) == 2
    assert "--truth (the SynthCXR ground truth dir) is required" in caplog.text
    assert _evaluate(work, "medslip", tmp_path, truth=str(tmp_path / "nowhere")) == 2
    assert f"{tmp_path / 'nowhere' / 'images.parquet'}: cannot read" in caplog.text
