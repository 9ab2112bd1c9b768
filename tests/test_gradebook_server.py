"""The gradebook on a real PostgreSQL server (`c.CourseDirectory.db_url = "postgresql://..."`).

A batch of new students, two assignments each, graded by two processes at once into a throwaway
PostgreSQL cluster, gives exactly the scores of the same batch graded into sqlite, and loses
nothing: the coordinator creates the schema and the students before any grader starts, so two
graders never race to create the same student (nbgrader checks, then inserts).
"""

import pytest

import servers
from course_fixture import Course, autograde, batch_scores, submit_batch
from mfml_grader import cli

ASSIGNMENTS = ("ps3_probability", "ps4_information_theory")
STUDENTS = ("perfect", "typical_mistakes", "untouched", "ada", "grace", "alan", "edsger")


def graded_batch(root, db_url=None):
    """{(assignment, student): {function: (score, max)}} of the batch graded in a fresh course copy at `root`."""
    course = submit_batch(root, ASSIGNMENTS, STUDENTS, db_url)
    result = autograde(course, ASSIGNMENTS, "--jobs", "2")
    assert result.returncode == 0 and "NOT GRADED" not in result.stderr, result.stderr[-3000:]
    return batch_scores(course, ASSIGNMENTS, STUDENTS)


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    with servers.postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


def test_postgresql_batch_scores_like_sqlite(postgres_url, tmp_path):
    on_server = graded_batch(tmp_path / "server", postgres_url)
    local = graded_batch(tmp_path / "local")
    assert on_server == local
    for assignment in ASSIGNMENTS:
        perfect, typical, untouched = (sum(score for score, _ in on_server[assignment, s].values()) for s in cli.DEMO_STUDENTS)
        full = sum(top for _, top in on_server[assignment, "perfect"].values())
        assert perfect == full and untouched == 0 and 0 < typical < full, (assignment, perfect, typical, untouched)


def _create_students(url, students, start):
    """What each nbgrader autograde does for its student: look it up, insert it when missing."""
    import time

    from nbgrader.api import Gradebook

    time.sleep(max(0.0, start - time.time()))
    with Gradebook(url) as gradebook:
        for student in students:
            gradebook.update_or_create_student(student)


def test_graders_never_insert_a_student_the_coordinator_created(postgres_url, tmp_path):
    """Eight graders meeting the same new students at the same moment: after the coordinator's
    `prepare_gradebook`, every lookup finds the student and nobody inserts (no failure, no duplicate)."""
    import multiprocessing
    import time

    from nbgrader.api import Gradebook

    from mfml_grader.judge import batch

    course = Course.copy_of_repo(tmp_path / "course")
    with open(course.root / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.CourseDirectory.db_url = {postgres_url!r}\n")
    students = [f"race{i:02d}" for i in range(30)]
    batch.prepare_gradebook(course.root, [(a, s) for a in ASSIGNMENTS for s in students])
    start = time.time() + 2.0
    context = multiprocessing.get_context("spawn")
    graders = [context.Process(target=_create_students, args=(postgres_url, students, start)) for _ in range(8)]
    for grader in graders:
        grader.start()
    for grader in graders:
        grader.join(120)
    assert [grader.exitcode for grader in graders] == [0] * 8
    with Gradebook(postgres_url) as gradebook:
        assert sorted(s.id for s in gradebook.students if s.id.startswith("race")) == students
