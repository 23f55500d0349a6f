"""The markers select reliably. Each resource fails a test that uses it without its marker
(needs() in conftest.py); this test lists the tests under each marker (reports/markers.txt)
and checks what can be seen without running them: every marker selects tests, every PostgreSQL
variant of a parametrised test is marked postgres, every test using the
`postgres_url` fixture is marked, and the two lanes of scripts/test.sh split the suite exactly."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import COLLECTED, RESOURCES, ROOT

FIXTURE_MARKERS = {"postgres_url": "postgres"}


def _whole_suite(config) -> bool:
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS:
        return True
    return all(Path(config.invocation_params.dir, arg.split("::")[0]).resolve() == ROOT / "tests"
               for arg in config.args)


def _markers(item) -> set:
    return {name for name in RESOURCES if item.get_closest_marker(name)}


def _postgres_variant(item) -> bool:
    spec = getattr(item, "callspec", None)
    return spec is not None and any(value == "postgres" for value in spec.params.values())


def test_every_marker_selects_its_tests_and_the_lanes_split_the_suite(request):
    config = request.config
    if not _whole_suite(config):
        pytest.skip("lists the whole suite: run `pytest` or `make test-fast` without paths")
    # every collected test, also those -m / -k deselected in this run (conftest.py keeps them)
    items = config.stash[COLLECTED]
    marked = {name: [i.nodeid for i in items if i.get_closest_marker(name)] for name in RESOURCES}
    fast = [i.nodeid for i in items if not _markers(i)]
    slow = [i.nodeid for i in items if _markers(i)]

    lines = [f"{len(items)} tests: {len(fast)} in the fast lane (no marker), {len(slow)} in the slow lane", ""]
    for name, nodeids in marked.items():
        lines += [f"## {name} ({len(nodeids)}): {RESOURCES[name]}", *nodeids, ""]
    lines += [f"## fast lane ({len(fast)}): none of {', '.join(RESOURCES)}", *fast, ""]
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "markers.txt").write_text("\n".join(lines), encoding="utf-8")

    assert all(marked.values()), {name: len(nodeids) for name, nodeids in marked.items()}
    assert sorted(fast + slow) == sorted(i.nodeid for i in items) and not set(fast) & set(slow)
    assert sum(_postgres_variant(i) for i in items) >= 2  # test_agents.py, test_handoff_store.py
    unmarked = [i.nodeid for i in items if _postgres_variant(i) and not i.get_closest_marker("postgres")]
    assert not unmarked, f"mark the postgres param: pytest.param('postgres', marks=pytest.mark.postgres): {unmarked}"
    for fixture, name in FIXTURE_MARKERS.items():
        missing = [i.nodeid for i in items if fixture in getattr(i, "fixturenames", ()) and not i.get_closest_marker(name)]
        assert not missing, f"these use the `{fixture}` fixture without @pytest.mark.{name}: {missing}"

    # scripts/test.sh runs `-m "not (<resources>)"` and `-m "<resources>"`: complementary by
    # construction, as long as <resources> names every marker and nothing else
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    expression = re.search(r'^resources="([^"]+)"$', script, re.M).group(1)
    assert set(expression.split(" or ")) == set(RESOURCES), expression
    assert 'run_pytest fast "not ($resources)"' in script and 'run_pytest slow "$resources"' in script
    registered = {line.split(":")[0] for line in config.getini("markers")}
    assert set(RESOURCES) <= registered, registered
