"""parse_report: sections, lexicon, landmarks, negation/uncertainty scope."""

import pytest

from medslip.reports import Triplet, parse_report
from medslip.reports.landmarks import landmark_for
from medslip.reports.parse import MAX_REPORT_CHARS
from medslip.reports.sections import report_sections
from medslip.vocab import ENTITIES, LANDMARKS


def _facts(text: str) -> set[tuple[str, str, str]]:
    return {(t.pathology, t.anatomy, t.presence) for t in parse_report(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Heart size is normal.", ("normal", "heart_size", "present")),
        ("The lungs are clear.", ("clear", "lung_volumes", "present")),
        ("Small left pleural effusion.", ("effusion", "left_pleural", "present")),
        ("No pneumothorax.", ("pneumothorax", "unspecified", "absent")),
        ("Opacity in the left lower lobe.", ("opacity", "lower_left_lobe", "present")),
        ("Bibasilar atelectasis.", ("atelectasis", "lung_bases", "present")),
        ("Retrocardiac opacification.", ("opacity", "retrocardiac", "present")),
        ("Enlarged cardiac silhouette.", ("cardiomegaly", "heart_size", "present")),
        ("Possible infectious process.", ("pneumonia", "unspecified", "uncertain")),
        ("Pneumonia cannot be excluded.", ("pneumonia", "unspecified", "uncertain")),
        ("Right pneumothorax has resolved.", ("pneumothorax", "right_lung_unspec", "absent")),
        ("Interval resolution of edema.", ("edema", "unspecified", "absent")),
        ("Effusion is no longer seen.", ("effusion", "unspecified", "absent")),
        ("The heart is not enlarged.", ("enlarge", "heart_size", "absent")),
        ("No focal opacity concerning for pneumonia.", ("pneumonia", "unspecified", "absent")),
        ("Opacity, concerning for pneumonia.", ("pneumonia", "unspecified", "uncertain")),
        (
            "Right lower lobe opacity concerning for pneumonia.",
            ("opacity", "lower_right_lobe", "present"),
        ),  # a link cue hedges only what follows
        ("Interstitial markings suggestive of edema.", ("marking", "interstitium", "present")),
        ("Difficult to exclude a small effusion.", ("effusion", "unspecified", "uncertain")),
        ("Subtle infiltrate difficult to exclude.", ("infiltrate", "unspecified", "uncertain")),
        ("Opacity on the left side.", ("opacity", "left_lung_unspec", "present")),
        ("Opacity on the right side.", ("opacity", "right_lung_unspec", "present")),
        ("Right side pleural effusion.", ("effusion", "right_pleural", "present")),
        ("Catheter tip at the cavoatrial junction.", ("tip", "cavoatrial_junction", "present")),
        ("The cardiac silhouette is large.", ("excluded_obs", "heart_size", "present")),
        ("Right midlung opacity.", ("opacity", "right_mid_lung", "present")),
        ("Left-sided pleural effusion.", ("effusion", "left_pleural", "present")),
        (
            "Calcified granuloma in the right upper lobe.",
            ("tail_abnorm_obs", "upper_right_lobe", "present"),
        ),
    ],
)
def test_single_statements(text, expected):
    assert expected in _facts(text)


def test_negation_scope_ends_at_clause_boundary():
    facts = _facts("No pneumothorax, but there is a small right pleural effusion.")
    assert ("pneumothorax", "unspecified", "absent") in facts
    assert ("effusion", "right_pleural", "present") in facts


def test_negation_covers_a_list_and_each_item_keeps_its_own_anatomy():
    facts = _facts("No focal consolidation, pleural effusion or pneumothorax.")
    assert facts >= {
        ("consolidation", "unspecified", "absent"),
        ("effusion", "pleural_unspec", "absent"),
        ("pneumothorax", "unspecified", "absent"),
    }


def test_post_cue_does_not_negate_a_normal_statement_before_it():
    facts = _facts("The lungs are clear and pneumothorax is not seen.")
    assert ("clear", "lung_volumes", "present") in facts
    assert ("pneumothorax", "unspecified", "absent") in facts


def test_modifiers_are_not_observations_but_standalone_change_words_are():
    assert _facts("Small unchanged left effusion.") == {("effusion", "left_lung_unspec", "present")}
    assert ("excluded_obs", "unspecified", "present") in _facts("Interval improvement.")


def test_linked_diagnosis_and_device_tip_locations():
    facts = _facts("Right lower lobe opacity, likely atelectasis.")
    assert ("atelectasis", "lower_right_lobe", "uncertain") in facts
    facts = _facts("Left-sided pacemaker with leads in the right atrium and right ventricle.")
    assert {f[:2] for f in facts} == {
        ("pacemaker", "right_atrium"),
        ("pacemaker", "right_ventricle"),
        ("lead", "right_atrium"),
        ("lead", "right_ventricle"),
    }
    facts = _facts("Enlarged cardiac silhouette, consistent with cardiomegaly.")
    assert facts == {
        ("enlarge", "heart_size", "present"),
        ("cardiomegaly", "heart_size", "present"),
    }


def test_triplet_fields_sentence_and_span():
    text = "FINDINGS: Heart size is normal. Small left effusion.\nIMPRESSION: Mild edema."
    trips = parse_report(text)
    assert all(isinstance(t, Triplet) for t in trips)
    assert all(t.pathology in ENTITIES and t.anatomy in LANDMARKS for t in trips)
    edema = [t for t in trips if t.pathology == "edema"][0]
    assert text[edema.start : edema.end] == "edema" and edema.sentence == 2
    effusion = [t for t in trips if t.pathology == "effusion"][0]
    assert effusion.sentence == 1 and effusion.anatomy == "left_lung_unspec"


def test_sections_skip_indication_and_fall_back_to_whole_text():
    text = "INDICATION: rule out pneumonia.\nFINDINGS: No effusion.\nIMPRESSION: Normal."
    names = [s.name for s in report_sections(text)]
    assert names == ["FINDINGS", "IMPRESSION"]
    assert ("pneumonia", "unspecified", "present") not in _facts(text)
    assert _facts("Cardiomegaly.") == {("cardiomegaly", "unspecified", "present")}


def test_landmark_rules_in_reference_order():
    assert landmark_for("lobe|left|lower") == "lower_left_lobe"
    assert landmark_for("lingula") == "upper_left_lobe"
    assert landmark_for("left|base") == "left_lower_lung"
    assert landmark_for("perihilar|left|right") == "hilar_unspec"
    assert landmark_for("hilar|left|right") == "other"  # faithful: no rule covers it
    assert landmark_for("heart|border|left") == "heart_border"
    assert landmark_for("knee") == "other"
    assert landmark_for("unspecified") == "unspecified"


@pytest.mark.parametrize(
    "text", ["", "   \n ", "<html><body>&nbsp;</body></html>", "INDICATION: cough.", "\x00\x01"]
)
def test_junk_gives_no_triplets_and_no_error(text):
    assert parse_report(text) == []


def test_huge_report_is_cut_at_the_limit_with_a_warning():
    sentence = "No pneumothorax. "
    with pytest.warns(UserWarning, match=f"only the first {MAX_REPORT_CHARS} are read"):
        trips = parse_report(sentence * 60_000)
    assert len(trips) == MAX_REPORT_CHARS // len(sentence)  # the whole sentences before the cut
    assert all(t.presence == "absent" and t.end <= MAX_REPORT_CHARS for t in trips)


def test_markup_is_ignored_and_spans_index_the_original_text():
    text = "<p><b>FINDINGS:</b> Small&nbsp;right effusion.</p><br/>IMPRESSION: No pneumothorax."
    trips = parse_report(text)
    assert {(t.pathology, t.anatomy, t.presence) for t in trips} == {
        ("effusion", "right_lung_unspec", "present"),
        ("pneumothorax", "unspecified", "absent"),
    }
    assert {text[t.start : t.end] for t in trips} == {"effusion", "pneumothorax"}


def test_mimic_wrapped_lines_stay_in_one_sentence():
    text = (
        "                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n\n"
        " INDICATION:  ___ with pneumonia\n\n FINDINGS: \n\n There is no focal consolidation,\n"
        " effusion, or pneumothorax.  The cardiomediastinal silhouette is normal.\n\n"
        " IMPRESSION: \n\n No acute intrathoracic process.\n"
    )
    trips = parse_report(text)
    got = {(t.pathology, t.anatomy, t.presence, t.sentence) for t in trips}
    assert got == {
        ("consolidation", "unspecified", "absent", 0),
        ("effusion", "unspecified", "absent", 0),
        ("pneumothorax", "unspecified", "absent", 0),
        ("normal", "mediastinal", "present", 1),
        ("process", "other", "absent", 2),  # "intrathoracic" names anatomy no rule covers
    }
