"""Summarise pip-audit's JSON for `make audit`: each finding fixed, documented or failing.

Exit 0: every locked package checked, no finding without a documented reason
(docs/audit-exceptions.yml). Exit 1: an undocumented finding. Exit 2: some or all packages could
not be checked (the vulnerability service did not answer): an audit that did not happen must not
look like a clean one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import yaml


def summarise(report: Dict, exceptions: Dict[str, str]) -> Dict[str, List[str]]:
    found, documented, skipped = [], [], []
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            skipped.append(f"{dep['name']} {dep.get('version', '?')}")
        for vuln in dep.get("vulns", []):
            line = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {', '.join(vuln.get('fix_versions') or ['-'])})"
            reason = exceptions.get(vuln["id"]) or next((exceptions[a] for a in vuln.get("aliases", []) if a in exceptions), None)
            (documented if reason else found).append(line + (f" - {reason}" if reason else ""))
    return {"found": found, "documented": documented, "skipped": skipped,
            "checked": [d["name"] for d in report.get("dependencies", []) if not d.get("skip_reason")]}


def main(argv: List[str]) -> int:
    report_path, exceptions_path = Path(argv[0]), Path(argv[1])
    if not report_path.exists():
        print("audit: pip-audit produced no report (see its output above): NOT AUDITED")
        return 2
    exceptions = yaml.safe_load(exceptions_path.read_text(encoding="utf-8")) if exceptions_path.exists() else {}
    result = summarise(json.loads(report_path.read_text(encoding="utf-8")), exceptions or {})
    print(f"audit: {len(result['checked'])} packages checked, {len(result['skipped'])} could not be checked, "
          f"{len(result['found'])} undocumented and {len(result['documented'])} documented findings")
    for line in result["found"]:
        print("  VULNERABLE:", line)
    for line in result["documented"]:
        print("  documented:", line)
    if result["skipped"]:
        print(f"  not checked ({len(result['skipped'])}): {', '.join(result['skipped'][:8])}"
              f"{' …' if len(result['skipped']) > 8 else ''}")
        print("  (the vulnerability service did not answer for these; run `make audit` where pypi.org's "
              "per-version JSON API or api.osv.dev (AUDIT_SERVICE=osv) is reachable)")
    if result["found"]:
        return 1
    return 2 if result["skipped"] else 0

