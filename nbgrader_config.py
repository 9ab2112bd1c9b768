"""nbgrader configuration of the course (read by every nbgrader command run from this folder)."""

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "math-foundations-ml"

# What students see where a solution was removed.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Hidden test regions (### BEGIN/END HIDDEN TESTS) are stripped from release/ and restored from the
# gradebook at autograde time; they only call into grader_tests/, which is never released.
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Execution limits while grading: seconds per cell, and a kernel that does not answer is retried once.
c.Execute.timeout = 120
c.Execute.startup_timeout = 120
c.Execute.execute_retries = 1

# Only the release notebooks are handed out.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
