"""The capacity simulation's verdicts, small and fast (no servers): the planned workers keep the
consumer lag bounded, 80% of them let it grow, and the plan sizes against the busiest worker."""

from __future__ import annotations

import math

import pytest

from loadtests.capacity_sim import Assumptions, Case, Measured, assignment, plan, simulate, worst_load

# Inputs of the test's own (the plan's arithmetic is what is under test, not this machine).
MEASURED = Measured(
    api_frames_per_cpu_s=50,
    frames_insert_per_s=500,
    copy_rows_per_s=40_000,
    kafka_records_per_s=4_000,
    db_cores=2,
    kafka_cores=2,
    drain_ratio=0.8,
    gpu_ms_per_frame=1.5,
)
CASE = Case(cameras=1_000, frames_per_camera_s=5)


def _run(workers: int, partitions: int) -> bool:
    result = simulate(
        CASE,
        partitions,
        workers,
        1 / MEASURED.gpu_frames_per_s(Assumptions()),
        batch=16,
        batch_timeout=0.2,
        seconds=20,
    )
    return result.bounded


def test_lag_stays_bounded_at_the_plan_and_grows_below_it() -> None:
    planned = plan(CASE, MEASURED)
    assert planned.worst_worker_load <= Assumptions().gpu_utilisation
    assert _run(planned.workers, planned.partitions)
    assert not _run(math.floor(0.8 * planned.workers), planned.partitions)


def test_the_plan_adds_workers_for_the_busiest_partition_not_the_average() -> None:
    planned = plan(CASE, MEASURED)
    capacity = MEASURED.gpu_frames_per_s(Assumptions())
    by_average = CASE.frames_per_s / (capacity * Assumptions().gpu_utilisation)
    assert planned.workers >= by_average
    # Every worker owns an equal share of the partitions (scaling keeps the split even).
    assert {len(owned) for owned in assignment(planned.partitions, planned.workers)} == {
        planned.partitions // planned.workers
    }
    assert planned.partitions % 3 == 0


@pytest.mark.parametrize("cameras", [100, 1_000, 10_000])
def test_more_cameras_never_need_fewer_resources(cameras: int) -> None:
    one, five = plan(Case(cameras, 1), MEASURED), plan(Case(cameras, 5), MEASURED)
    assert five.workers >= one.workers and five.api_pods >= one.api_pods and five.db_cores >= one.db_cores
    assert worst_load(five.case, five.partitions, five.workers, MEASURED.gpu_frames_per_s(Assumptions())) < 1
