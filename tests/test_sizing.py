"""coursekit.sizing: the plan reproduces the 20-student measurement, grows sensibly with the class, fits what it
promises, generates the table in docs/classroom.md §2, and refuses bad input in one line with exit status 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit import sizing

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "classroom.md"


def test_the_plan_gives_back_the_measured_20_student_figures():
    p = sizing.plan(sizing.MEASURED_STUDENTS)
    assert p.memory_in_use_mb == pytest.approx(sizing.CLASS_TOTAL_MB, abs=0.5)  # 13,112 MB measured
    assert sizing.app_build_seconds(sizing.APP_BUILD_KERNELS, sizing.MEASURED_CORES) == pytest.approx(
        sizing.APP_BUILD_S, abs=0.5)  # 17 kernels on 2 cores: 70 s each
    # the arithmetic's per-student figure is below the median student's (PSS shares pages), and the largest
    # student measured fits the 1 GB guarantee
    assert sizing.STUDENT_MEAN_MB < sizing.STUDENT_APP_MB < sizing.STUDENT_APP_MB_MAX
    assert sizing.STUDENT_APP_MB_MAX < 1024 * sizing.MEMORY_GUARANTEE_GB
    # the measured machine (2 cores, 23 GB) held the class: the plan's one server is at least as large in memory
    # as what was in use, and its guarantee is what the classroom guide advises
    assert p.one_server.memory_gb * 1024 >= sizing.CLASS_TOTAL_MB
    assert p.memory_guaranteed_gb == pytest.approx(20 * 1 + 200 / 1024)
    assert p.one_server == sizing.Machine(4, 24)  # 4 live trainers, one core each; 20.2 GB guaranteed + 2 GB system
    assert p.servers == 1 and p.user_nodes == 1


@pytest.mark.parametrize("students", [40, 100, 300])
def test_every_plan_holds_the_class_it_was_made_for(students):
    p = sizing.plan(students)
    assert p.live_trainers == math.ceil(students * sizing.LIVE_FRACTION)
    # one server: the guarantees fit, with the system's share, and a core for each live trainer
    assert p.one_server.memory_gb >= p.memory_guaranteed_gb + sizing.SYSTEM_RESERVE_GB
    assert p.one_server.cores >= p.live_trainers / sizing.TRAINERS_PER_CORE
    # several servers: together they hold everyone, and each holds its share
    assert p.servers * p.students_per_server >= students
    assert p.students_per_server * sizing.MEMORY_GUARANTEE_GB + sizing.SYSTEM_RESERVE_GB <= p.server.memory_gb
    # Kubernetes: the nodes hold everyone, within what each node can give its pods
    assert p.user_nodes * p.students_per_node >= students > (p.user_nodes - 1) * p.students_per_node
    assert p.students_per_node * sizing.MEMORY_GUARANTEE_GB <= p.node_allocatable_gb
    assert p.students_per_node * p.cpu_guarantee <= p.node_allocatable_cores + 1e-9
    assert p.node_allocatable_gb < p.node.memory_gb and p.node_allocatable_cores < p.node.cores


def test_plans_grow_with_the_class_and_never_shrink():
    plans = [sizing.plan(n) for n in (1, 5, 20, 40, 61, 62, 100, 300, 1000)]
    for small, large in zip(plans, plans[1:]):
        assert large.memory_in_use_mb > small.memory_in_use_mb
        assert large.servers >= small.servers and large.user_nodes >= small.user_nodes
        if small.one_server and large.one_server:
            assert large.one_server.memory_gb >= small.one_server.memory_gb
            assert large.one_server.cores >= small.one_server.cores
    assert plans[4].servers == 1 and plans[5].servers == 2  # 61 students fit a 64 GB server; 62 do not
    assert plans[-1].one_server is None  # 1000 GB of guarantees plus the system: no single machine here


def test_the_node_reservation_is_gke_s_published_one():
    gb, cores = sizing.kubelet_reserved(sizing.Machine(8, 32))
    assert gb == pytest.approx(0.25 * 4 + 0.20 * 4 + 0.10 * 8 + 0.06 * 16 + 100 / 1024)
    assert cores == pytest.approx(0.06 + 0.01 + 0.005 * 2 + 0.0025 * 4)


def test_other_node_sizes_and_live_shares_change_the_plan():
    base = sizing.plan(100)
    bigger = sizing.plan(100, node=(16, 64))
    assert bigger.user_nodes < base.user_nodes and bigger.students_per_node > base.students_per_node
    busier = sizing.plan(100, live_fraction=0.5)
    assert busier.live_trainers == 50 and busier.one_server.cores >= 50 and busier.cpu_guarantee == 0.5
    assert busier.students_per_node < base.students_per_node  # CPU, not memory, now fills the node


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("40", TypeError),
                                        (True, TypeError)])
def test_plan_refuses_a_class_that_is_not_a_whole_positive_number(bad, error):
    with pytest.raises(error, match="students"):
        sizing.plan(bad)


@pytest.mark.parametrize("kw, name", [
    ({"live_fraction": 0}, "live_fraction"), ({"live_fraction": 1.5}, "live_fraction"),
    ({"server": (16, 2)}, "server"), ({"node": (8, 2)}, "node"),
    ({"node": (0, 32)}, "node cores")])
def test_plan_refuses_impossible_settings_naming_them(kw, name):
    with pytest.raises((ValueError, TypeError), match=name):
        sizing.plan(40, **kw)


def test_the_guide_s_sizing_table_is_the_tool_s_output():
    text = GUIDE.read_text()
    assert text.count(sizing.TABLE_BEGIN) == 1 and text.count(sizing.TABLE_END) == 1, \
        f"docs/classroom.md must hold the generated table between {sizing.TABLE_BEGIN!r} and its end marker"
    start = text.index(sizing.TABLE_BEGIN)
    in_guide = text[start:text.index(sizing.TABLE_END) + len(sizing.TABLE_END)]
    assert in_guide == sizing.markdown_table(), "regenerate it: python -m coursekit.sizing --table"
    for n in sizing.TABLE_CLASSES:
        assert f"\n| {n} | " in in_guide
    assert "13,112 MB" in in_guide  # the measurement the table starts from


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "coursekit.sizing", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_main_prints_the_plans_for_40_100_and_300(capsys):
    for n in (40, 100, 300):
        assert sizing.main(["--students", str(n)]) == 0
        out = capsys.readouterr().out
        p = sizing.plan(n)
        assert out.startswith(f"A class of {n} students")
        assert f"one server: {p.one_server}" in out and f"{p.user_nodes} user node" in out
    assert sizing.main(["--students", "300", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["students"] == 300 and data["user_nodes"] == sizing.plan(300).user_nodes
    assert data["one_server"] == {"cores": 64, "memory_gb": 384}


def test_the_command_line_runs_as_a_module():
    run = _cli("--students", "40")
    assert run.returncode == 0 and run.stdout.startswith("A class of 40 students"), run.stderr
    run = _cli("--table")
    assert run.returncode == 0 and run.stdout.strip() == sizing.markdown_table()


@pytest.mark.parametrize("args, argument", [
    (["--students", "0"], "--students"), (["--students", "-4"], "--students"), (["--students", "forty"], "--students"),
    (["--students", "2.5"], "--students"), (["--students", "40", "--live-fraction", "2"], "--live-fraction"),
    (["--students", "40", "--node-memory-gb", "2"], "--node-memory-gb"), ([], "--students"),
])
def test_bad_input_is_one_line_naming_the_argument_with_exit_status_2(args, argument):
    run = _cli(*args)
    assert run.returncode == 2, run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and argument in lines[0] and "Traceback" not in run.stderr, run.stderr
    assert run.stdout == ""
