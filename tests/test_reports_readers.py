"""Report readers on the real IU X-ray files, and the free-text CSV reader."""

import pytest

from medslip.errors import MedslipError
from medslip.reports import parse_report
from medslip.reports.parse import MAX_REPORT_CHARS
from medslip.reports.readers import Report, Skipped, read_iu_csv, read_iu_xml, read_text_csv


def test_iu_csv_and_xml_agree_on_report_text(real_data):
    iu = real_data / "iu_xray"
    csv_reports = {r.report_id: r for r in read_iu_csv(iu / "indiana_reports.csv")}
    assert len(csv_reports) == 3851
    assert sum(isinstance(r, Skipped) for r in csv_reports.values()) < 40  # no findings/impression
    xml_reports = {}
    for rec in read_iu_xml(iu / "NLMCXR_reports.tgz"):
        xml_reports[rec.report_id] = rec
        if len(xml_reports) == 200:
            break
    shared = [
        k
        for k in xml_reports
        if isinstance(xml_reports[k], Report) and isinstance(csv_reports.get(k), Report)
    ]
    assert len(shared) > 150
    same = sum(
        {(t.pathology, t.anatomy, t.presence) for t in parse_report(xml_reports[k].text)}
        == {(t.pathology, t.anatomy, t.presence) for t in parse_report(csv_reports[k].text)}
        for k in shared
    )
    assert same / len(shared) > 0.95


def test_text_csv_reader_and_missing_column(tmp_path):
    path = tmp_path / "reports.csv"
    path.write_text('id,report\nA,"No pneumothorax."\nB,""\n')
    recs = list(read_text_csv(path, "id", "report"))
    assert isinstance(recs[0], Report) and recs[0].text == "No pneumothorax."
    assert isinstance(recs[1], Skipped) and recs[1].reason == "empty report"
    with pytest.raises(MedslipError, match="missing column"):
        list(read_text_csv(path, "id", "text"))


def test_reports_over_the_parser_limit_are_skipped_with_the_reason(tmp_path):
    path = tmp_path / "reports.csv"
    long_text = "No pneumothorax. " * (MAX_REPORT_CHARS // 17 + 1)
    path.write_text(f'id,text\nA,"{long_text}"\nB,"{long_text[:MAX_REPORT_CHARS]}"\n')
    recs = list(read_text_csv(path, "id"))
    assert isinstance(recs[0], Skipped)
    assert recs[0].reason == f"report longer than {MAX_REPORT_CHARS} characters"
    assert isinstance(recs[1], Report)


def test_iu_xml_rejects_a_non_archive(tmp_path):
    bad = tmp_path / "reports.tgz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(MedslipError, match="reports.tgz"):
        list(read_iu_xml(bad))
