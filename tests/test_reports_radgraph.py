"""RadGraph JSON import → triplets through the reference's rules."""

import json

import numpy as np

from medslip.cli import main
from medslip.reports.radgraph import graph_triplets
from medslip.vocab import ENTITY_INDEX, LANDMARK_INDEX

TEXT = "Small left lower lobe opacity . No pneumothorax . Possible edema ."
ENTITIES = {
    "1": {
        "tokens": "Small",
        "label": "OBS-DP",
        "start_ix": 0,
        "end_ix": 0,
        "relations": [["modify", "5"]],
    },
    "2": {
        "tokens": "left",
        "label": "ANAT-DP",
        "start_ix": 1,
        "end_ix": 1,
        "relations": [["modify", "4"]],
    },
    "3": {
        "tokens": "lower",
        "label": "ANAT-DP",
        "start_ix": 2,
        "end_ix": 2,
        "relations": [["modify", "4"]],
    },
    "4": {"tokens": "lobe", "label": "ANAT-DP", "start_ix": 3, "end_ix": 3, "relations": []},
    "5": {
        "tokens": "opacity",
        "label": "OBS-DP",
        "start_ix": 4,
        "end_ix": 4,
        "relations": [["located_at", "4"]],
    },
    "6": {"tokens": "pneumothorax", "label": "OBS-DA", "start_ix": 7, "end_ix": 7, "relations": []},
    "7": {"tokens": "edema", "label": "OBS-U", "start_ix": 10, "end_ix": 10, "relations": []},
}


def test_graph_triplets_follow_reference_rules():
    trips = graph_triplets(TEXT, ENTITIES)
    got = {(t.pathology, t.anatomy, t.presence, t.sentence) for t in trips}
    assert got == {
        ("opacity", "lower_left_lobe", "present", 0),
        ("pneumothorax", "unspecified", "absent", 1),
        ("edema", "unspecified", "uncertain", 2),
    }
    opacity = [t for t in trips if t.pathology == "opacity"][0]
    assert TEXT[opacity.start : opacity.end] == "opacity"


def test_radgraph_cli_matrix_ignores_uncertain(tmp_path):
    src = tmp_path / "MIMIC-CXR_graphs.json"
    src.write_text(
        json.dumps(
            {
                "p10/p10000032/s50414267.txt": {"text": TEXT, "entities": ENTITIES},
                "p10/p10000033/s50000001.txt": {"text": "x"},  # malformed: no entities
            }
        )
    )
    out = tmp_path / "out"
    assert (
        main(["parse-reports", "--format", "radgraph", "--input", str(src), "--out-dir", str(out)])
        == 0
    )
    m = np.load(out / "label_matrix.npy")
    assert m.shape == (1, 51, 75)
    assert m[0, LANDMARK_INDEX["lower_left_lobe"], ENTITY_INDEX["opacity"]] == 1
    assert m[0, LANDMARK_INDEX["unspecified"], ENTITY_INDEX["pneumothorax"]] == 0
    assert m[0, LANDMARK_INDEX["unspecified"], ENTITY_INDEX["edema"]] == -1
    assert (out / "report_ids.txt").read_text() == "50414267\n"
    assert "50000001" in (out / "skipped.csv").read_text()
