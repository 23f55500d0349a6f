"""`make audit`'s verdict: clean, vulnerable, documented, or not audited at all."""
from __future__ import annotations

import json

from bot.security.audit_report import main, summarise

REPORT = {"dependencies": [
    {"name": "sanic", "version": "21.12.2", "vulns": [
        {"id": "GHSA-aaaa", "fix_versions": ["22.0"], "aliases": ["CVE-2099-1"]}]},
    {"name": "jieba", "version": "0.42.1", "vulns": []},
]}


def test_an_undocumented_finding_fails(tmp_path):
    report = tmp_path / "audit.json"
    report.write_text(json.dumps(REPORT))
    assert main([str(report), str(tmp_path / "none.yml")]) == 1


def test_a_documented_finding_passes_with_its_reason(tmp_path, capsys):
    report, exceptions = tmp_path / "audit.json", tmp_path / "exceptions.yml"
    report.write_text(json.dumps(REPORT))
    exceptions.write_text("CVE-2099-1: only reachable through the Sanic dev server, which we do not run\n")
    assert main([str(report), str(exceptions)]) == 0
    assert "dev server" in capsys.readouterr().out


def test_packages_that_could_not_be_checked_are_not_a_pass(tmp_path):
    report = tmp_path / "audit.json"
    report.write_text(json.dumps({"dependencies": [{"name": "rasa", "skip_reason": "Dependency not found on PyPI"}]}))
    assert main([str(report), str(tmp_path / "none.yml")]) == 2
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "none.yml")]) == 2
    assert summarise({"dependencies": []}, {})["found"] == []
