"""``--junitxml FILE``: one testcase per (candidate, threshold), so CI systems show gates as tests.

A failed gate is a ``<failure>`` naming the metric, threshold, value and interval; a candidate that
errored has one ``<error>`` testcase per threshold that applies to it (an error is never a pass).
"""

from __future__ import annotations

import fnmatch
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.core.names import Status
from harness.gate.gates import describe


def write_junit(path: Path, runs: list) -> None:
    """``runs``: the session's suite runs (``suite``, ``results``, ``run_dir``)."""
    root = ET.Element("testsuites", name="harness")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for run in runs:
        cases = []
        for result in run.results.values():
            if result["baseline"]:
                continue
            classname = f"{run.suite.name}.{result['name']}"
            if result["status"] in (Status.ERROR, Status.INTERRUPTED):
                applicable = [
                    t
                    for t in run.suite.thresholds
                    if not t.candidates or any(fnmatch.fnmatchcase(result["name"], p) for p in t.candidates)
                ]
                names = [f"{t.metric} {k}" for t in applicable for k in t.KINDS if getattr(t, k) is not None]
                for name in names or ["run"]:
                    case = ET.Element("testcase", classname=classname, name=name, time="0")
                    ET.SubElement(case, "error", message=result.get("error", "error")).text = result.get(
                        "traceback", ""
                    )
                    cases.append(case)
                continue
            for gate in result["gates"]:
                case = ET.Element(
                    "testcase", classname=classname, name=f"{gate['metric']} {gate['kind']}", time="0"
                )
                if not gate["passed"]:
                    ET.SubElement(case, "failure", message=describe(gate)).text = describe(gate)
                cases.append(case)
        suite_el = ET.SubElement(
            root,
            "testsuite",
            name=run.suite.name,
            tests=str(len(cases)),
            failures=str(sum(c.find("failure") is not None for c in cases)),
            errors=str(sum(c.find("error") is not None for c in cases)),
        )
        suite_el.extend(cases)
        for k in totals:
            totals[k] += int(suite_el.get(k))
    for k, v in totals.items():
        root.set(k, str(v))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
