"""Unit tests of the grading engine's parts: comparison, forbidden APIs, the student adapter."""

import ast
import math
import subprocess
import sys

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course_fixture import REPO
from mfml_grader.compare import difference
from mfml_grader.forbidden import ForbiddenAPIError, defined_methods, find_forbidden, forbid_at_runtime
from mfml_grader.submission_code import SubmissionCode
from mfml_grader.student import InProcessStudent, StudentError, to_plain
from mfml_grader.submissions import answers_from_python

SOFTMAX = ("torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax")


class TestDifference:
    def test_hand_written_attention_in_float32_passes(self):
        q, k, v = (torch.randn(2, 4, 16, 32, generator=torch.Generator().manual_seed(s)) for s in range(3))
        hand = torch.softmax(q @ k.mT / math.sqrt(32), -1) @ v
        assert difference(hand, F.scaled_dot_product_attention(q.double(), k.double(), v.double()), torch.float32) is None

    def test_float64_is_strict(self):
        want = torch.ones(3, dtype=torch.float64)
        assert "max abs error" in difference(want + 1e-6, want)

    def test_names_shape_dtype_index_and_nan(self):
        want = torch.zeros(2, 3)
        assert "shape (3, 2), expected (2, 3)" in difference(torch.zeros(3, 2), want)
        assert "dtype torch.float64, expected torch.float32" in difference(torch.zeros(2, 3, dtype=torch.float64), want)
        got = want.clone()
        got[1, 2] = 0.5
        assert "at index (1, 2)" in difference(got, want)
        got[0, 0] = float("nan")
        assert "nan" in difference(got, want)

    def test_numbers_and_0d_tensors_are_interchangeable(self):
        assert difference(torch.tensor(2.0, dtype=torch.float64), 2.0) is None
        assert difference(2.0, 2.0) is None
        assert "should be 2" in difference(3.0, 2.0)

    def test_tuples_compare_item_by_item(self):
        assert "result[1]" in difference((torch.ones(2), torch.ones(2)), (torch.ones(2), torch.zeros(2)))


class TestFindForbidden:
    def test_resolves_aliases_from_other_cells(self):
        found = find_forbidden("def softmax(x, dim=-1):\n    return F.softmax(x, dim)\n", SOFTMAX, ["import torch.nn.functional as F"])
        assert found == [(2, "torch.nn.functional.softmax")]

    def test_method_call_and_from_import(self):
        assert find_forbidden("def f(x):\n    return x.softmax(-1)\n", SOFTMAX) == [(2, "Tensor.softmax")]
        assert find_forbidden("from torch import softmax\n", SOFTMAX)[0][1] == "torch.softmax"

    def test_allowed_names_are_not_flagged(self):
        code = "def _my_softmax(x):\n    return torch.exp(x - torch.logsumexp(x, -1, keepdim=True))\n"
        assert find_forbidden(code, SOFTMAX) == []

    def test_wildcards(self):
        assert find_forbidden("y = torch.linalg.vector_norm(x)\n", ("torch.linalg.*norm",)) == [(1, "torch.linalg.vector_norm")]


    def test_a_method_of_the_students_own_class_is_not_torchs(self):
        code = "class Layer:\n    def backward(self, d):\n        return d\n\ndef f(layer, d):\n    return layer.backward(d)\n"
        assert find_forbidden(code, ("torch.Tensor.backward",), own_methods=defined_methods([ast.parse(code)])) == []
        assert find_forbidden(code, ("torch.Tensor.backward",)) == [(6, "Tensor.backward")]

    def test_literal_getattr_is_an_attribute(self):
        assert find_forbidden("y = getattr(F, 'softmax')(x)\n", SOFTMAX, ["import torch.nn.functional as F"]) == [(1, "torch.nn.functional.softmax")]


def _code(*cells):
    return SubmissionCode.from_cells([nbformat.v4.new_code_cell(source, metadata=meta) for source, meta in cells])


SOLUTION = {"nbgrader": {"grade_id": "softmax", "solution": True, "locked": False}}
LOCKED = {"nbgrader": {"grade_id": "setup", "locked": True, "solution": False}}


class TestSubmissionCode:
    def test_forbidden_apis_in_a_helper_of_another_cell_count(self):
        code = _code(("import torch.nn.functional as F", LOCKED), ("def helper(x):\n    return F.softmax(x, -1)", {}),
                     ("def softmax(x, dim=-1):\n    return helper(x)", SOLUTION))
        assert code.forbidden_uses("softmax", SOFTMAX) == [(2, "torch.nn.functional.softmax")]

    def test_a_global_of_the_same_name_as_a_local_variable_does_not_count(self):
        code = _code(("out = torch.softmax(torch.zeros(3), -1)", {}),
                     ("def softmax(x, dim=-1):\n    out = x.exp()\n    return out / out.sum(dim, keepdim=True)", SOLUTION))
        assert code.forbidden_uses("softmax", SOFTMAX) == []

    def test_an_experiment_that_the_function_does_not_call_does_not_count(self):
        code = _code(("print(torch.softmax(torch.zeros(3), -1))", {}), ("def softmax(x, dim=-1):\n    return x.exp() / x.exp().sum(dim, keepdim=True)", SOLUTION))
        assert code.forbidden_uses("softmax", SOFTMAX) == []

    @pytest.mark.parametrize("source, what", [
        ("import sys\nt = sys.modules['torch']", "sys.modules"),
        ("y = torch._C._nn.gelu(x)", "torch._C"),
        ("f = torch.ops.aten.softmax", "torch.ops"),
        ("from torch import _C", "torch._C"),
        ("m = __import__('torch')", "__import__"),
        ("f = getattr(F, name)", "getattr with a computed name"),
        ("g = (lambda: 0).__globals__", ".__globals__"),
        ("import mfml_grader.student", "mfml_grader"),
        ("import ctypes", "ctypes"),
        ("with torch._C.DisableTorchFunction():\n    pass", "torch._C.DisableTorchFunction"),
    ])
    def test_reflection_anywhere_in_the_students_cells_is_found(self, source, what):
        found = _code(("import torch.nn.functional as F", LOCKED), (source, {})).reflection
        assert any(what in use for _, _, use in found), found

    def test_the_instructors_locked_cells_and_ordinary_code_are_not_reflection(self):
        code = _code(("import sys\nprint(sys.modules['torch'])", LOCKED), ("%timeit x = 1\ny = getattr(torch, 'float32')\nz = x.__class__", {}))
        assert code.reflection == []


class TestForbidAtRuntime:
    def test_refuses_indirect_calls(self):
        x = torch.randn(3)
        with forbid_at_runtime(SOFTMAX, "softmax"):
            with pytest.raises(ForbiddenAPIError, match="torch.nn.functional.softmax"):
                getattr(F, "soft" + "max")(x, -1)
            with pytest.raises(ForbiddenAPIError):
                x.softmax(-1)
            assert torch.exp(x).sum() > 0
        assert torch.softmax(x, -1).sum().item() == pytest.approx(1.0)


class TestStudentAdapter:
    def test_returns_plain_tensors(self):
        class Sneaky(torch.Tensor):
            def __eq__(self, other):
                return True

        student = InProcessStudent({"f": lambda: torch.zeros(2).as_subclass(Sneaky)})
        result = student.f()
        assert type(result) is torch.Tensor

    def test_refuses_objects_that_are_not_data(self):
        class AlwaysEqual:
            def __eq__(self, other):
                return True

        with pytest.raises(StudentError, match="AlwaysEqual"):
            to_plain(AlwaysEqual())

    def test_reports_missing_and_unimplemented_functions(self):
        def stub(x):
            raise NotImplementedError()

        student = InProcessStudent({"stub": stub})
        with pytest.raises(StudentError, match="not defined"):
            student.missing(1)
        with pytest.raises(StudentError, match="not implemented"):
            student.stub(1)

    def test_substitutes_stand_in_only_during_the_call(self):
        namespace = {"helper": lambda: "student", "f": lambda: namespace["helper"]()}
        student = InProcessStudent(namespace)
        assert student.call("f", substitutes={"helper": "def helper():\n    return 'course'\n"}) == "course"
        assert namespace["helper"]() == "student"


def test_answers_split_at_graded_defs():
    source = "import math\n\ndef helper():\n    return 1\n\ndef f(x):\n    return helper()\n\ndef g(x):\n    return 2\n"
    answers = answers_from_python(source, {"f", "g"})
    assert set(answers) == {"f", "g"}
    assert "def helper" in answers["f"] and "import math" in answers["f"]
    assert answers["g"].strip() == "def g(x):\n    return 2"


def test_forbidden_modules_and_classes_refuse_use_and_come_back():
    import torch.optim

    with forbid_at_runtime(("torch.optim", "torch.autograd.grad", "torch.Tensor.backward"), "adamw_step"):
        with pytest.raises(ForbiddenAPIError, match="torch.optim"):
            torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        x = torch.ones(2, requires_grad=True)
        with pytest.raises(ForbiddenAPIError, match="backward"):
            (x * 2).sum().backward()
        with pytest.raises(ForbiddenAPIError, match="torch.autograd.grad"):
            torch.autograd.grad((x * 2).sum(), x)
    assert torch.optim.AdamW is not None and hasattr(torch.optim, "SGD")
    with forbid_at_runtime(("torch.optim",), "train"):          # only a module refused: no torch function mode slows each call
        assert not torch._C._is_torch_function_mode_enabled()
    with forbid_at_runtime(("torch.softmax",), "attention"):
        assert torch._C._is_torch_function_mode_enabled()


class TestResults:
    """A test cell's result as data: each mistake once, HTML escaped, the same report read back."""

    @staticmethod
    def report():
        from mfml_grader.exercise import CheckFailed, Mistake
        from mfml_grader.results import Report

        unbiased = Mistake("unbiased variance", "divide by C, not C - 1.")
        report = Report("layer_norm", 2.0)
        report.add("worked example")
        report.add("batched float32", CheckFailed("layer_norm(x=float32 (2, 5, 12)): differs <by> 0.1", unbiased))
        report.add("rows float64", CheckFailed("layer_norm(x=float64 (7, 6)): differs by 0.2", unbiased))
        report.add("constant features", CheckFailed("nan at index (1, 0)"))
        return report

    def test_each_mistake_once_with_the_checks_it_explains(self):
        report = self.report()
        text = report.text()
        assert report.points == 0.5 and report.mistakes == {"unbiased variance": ["batched float32", "rows float64"]}
        assert text.count("Likely mistake: unbiased variance. divide by C, not C - 1.") == 1
        assert "explains 2 failing checks: 'batched float32'; 'rows float64'" in text
        assert text.index("nan at index (1, 0)") < text.index("Likely mistake")

    def test_html_escapes_every_message_and_the_bundle_reads_back(self):
        from mfml_grader.results import MIME, read_cell

        report = self.report()
        bundle = report.bundle()
        assert bundle["text/plain"] == "0.5" and "&lt;by&gt;" in bundle["text/html"] and "<by>" not in bundle["text/html"]
        cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("execute_result", data=bundle, execution_count=None),
                                                       nbformat.v4.new_output("error", ename="AssertionError", evalue="visible", traceback=[])])
        cell = nbformat.reads(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])), as_version=4).cells[0]
        result = read_cell(cell)
        assert result.report == report and result.visible_error == "AssertionError: visible"
        assert MIME in cell.outputs[0]["data"]

    def test_nbgrader_reads_the_score_of_the_bundle(self):
        from nbgrader.utils import determine_grade

        cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("execute_result", data=self.report().bundle(), execution_count=None)])
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 2, "grade_id": "test_layer_norm"}
        assert determine_grade(cell) == (0.5, 2.0)


def test_visible_test_dependencies_follow_names_through_cells():
    from mfml_grader.validate import test_cell_dependencies

    def code(source, grade_id=None, solution=False):
        cell = nbformat.v4.new_code_cell(source)
        if grade_id:
            cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": not solution, "locked": not solution}
        return cell

    notebook = nbformat.v4.new_notebook(cells=[
        code("def softmax(x):\n    return x", "softmax", solution=True),
        code("def attention(q):\n    return softmax(q)", "attention", solution=True),
        code("def helper(q):\n    return attention(q)\nx = 1"),
        code("### BEGIN HIDDEN TESTS\ngrade()\n### END HIDDEN TESTS\nassert softmax(x)", "test_softmax"),
        code("y = helper(x)"),
        code("assert y", "test_attention"),
        code("y = 2"),
        code("assert y and softmax(2)", "test_other"),
    ])
    assert test_cell_dependencies(notebook) == {"softmax": {"softmax"}, "attention": {"attention", "softmax"}, "other": {"softmax"}}


def test_catalog_batches_keep_dependent_functions_apart():
    from mfml_grader.catalog import Mutant, batches

    entries = [Mutant(f, "m", "") for f in ("softmax", "attention", "softmax", "l2_norm", "attention")]
    rounds = batches(entries, apart={"softmax": {"attention"}, "attention": {"softmax"}})
    assert all(not {"softmax", "attention"} <= set(batch) for batch in rounds)
    assert len(rounds) == 4 and sum(map(len, rounds)) == 5     # two of each apart: four notebooks at least


def test_every_tool_opens_the_gradebook_nbgrader_is_configured_with(tmp_path, monkeypatch):
    """The one gradebook door reads CourseDirectory.db_url from the course's nbgrader_config.py."""
    from mfml_grader import course
    from mfml_grader.gradebook import db_url, open_gradebook
    from mfml_grader.judge.batch import nbgrader_env

    monkeypatch.setenv("PATH", nbgrader_env()["PATH"])       # a new gradebook runs nbgrader's alembic

    elsewhere = tmp_path / "server" / "grades.db"
    elsewhere.parent.mkdir()
    (tmp_path / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.db_url = 'sqlite:///{elsewhere}'\n")
    assert db_url(tmp_path) == f"sqlite:///{elsewhere}"
    with open_gradebook(tmp_path) as gradebook:
        gradebook.add_assignment("ps0")
        gradebook.add_student("ada")
    assert elsewhere.exists() and not (tmp_path / "gradebook.db").exists()
    assert course.test_cell_scores(tmp_path, "ps0", "ada") == {}


def test_a_grading_process_keeps_one_engine_per_gradebook(tmp_path):
    """share_engines: every Gradebook on one URL reuses one engine (its compiled statements), and still reads what was written."""
    from mfml_grader.judge.batch import nbgrader_env

    script = f"""
from nbgrader.api import Gradebook
from sqlalchemy import event
from mfml_grader.gradebook import share_engines
share_engines()
share_engines()                        # twice: still one layer
first, second = "sqlite:///{tmp_path}/a.db", "sqlite:///{tmp_path}/b.db"
with Gradebook(first) as gradebook:
    gradebook.add_student("ada")
    engine, compiled = gradebook.engine, len(gradebook.engine._compiled_cache)
with Gradebook(first) as gradebook:
    assert gradebook.engine is engine and [s.id for s in gradebook.students] == ["ada"]
    gradebook.add_student("bob")
statements, connections = [], []
event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
event.listen(engine, "connect", lambda *args: connections.append(args))
with Gradebook(first) as gradebook:
    assert sorted(s.id for s in gradebook.students) == ["ada", "bob"]
    assert compiled > 0 and len(engine._compiled_cache) >= compiled
assert len(statements) <= 4, statements   # the tables listed, the course, the students: the schema is not checked again
assert not connections                    # the pooled connection is used again
import os
os.remove("{tmp_path}/a.db")              # deleted beside the grader: a new file, a new engine, nothing written to the old one
with Gradebook(first) as gradebook:
    assert gradebook.engine is not engine and list(gradebook.students) == []
    gradebook.add_student("cy")
with Gradebook(first) as gradebook:
    assert [s.id for s in gradebook.students] == ["cy"]
with Gradebook(second) as gradebook:
    assert gradebook.engine is not engine and list(gradebook.students) == []
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=nbgrader_env(), capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


class TestOneRunner:
    """Grading and pytest run an exercise's checks through mfml_grader.runner, with the same rules."""

    def test_inherited_checks_run_first_and_an_override_keeps_its_place(self):
        from mfml_grader import runner
        from mfml_grader.exercise import Exercise

        class Base(Exercise):
            def test_shared(self, student):
                """base check"""

        class Child(Base):
            function = "f"

            def test_own(self, student):
                """own check"""

            def test_shared(self, student):
                """overridden check"""

        assert [(c.name, c.title) for c in runner.checks(Child)] == [("test_shared", "overridden check"), ("test_own", "own check")]

    def test_pytest_collects_exactly_the_runners_checks(self):
        import subprocess

        from mfml_grader import course, runner

        A = "ps3_probability"
        listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", f"grader_tests/test_{A}.py"],
                                cwd=REPO, capture_output=True, text=True).stdout.split()
        collected = [item.split("::", 1)[1] for item in listed if "::" in item]
        expected = [f"{e.__name__}::{name}" for e in runner.exercises(course.hidden_tests(A, REPO))
                    for name in ("refusal", *(c.name for c in runner.checks(e)))]
        assert collected == expected and len(expected) > 20


def test_a_folder_over_the_entry_cap_is_read_up_to_it_and_leaves_nothing_open(tmp_path):
    """intake.Folder stops at MAX_ENTRIES, says so, and closes the folders it opened but did not read."""
    import os

    from mfml_grader import intake

    for i in range(intake.MAX_ENTRIES + 10):
        (tmp_path / f"d{i:04d}").mkdir()
    before = len(os.listdir("/proc/self/fd"))
    read = intake.Folder(tmp_path)
    assert any("over 1000 files" in reason for _, reason in read.refused)
    assert len(os.listdir("/proc/self/fd")) == before, "descriptors left open"


def test_metadata_check_refuses_what_nbgraders_refuses_after_remembering_what_is_valid():
    """CheckCellMetadata (judge/metadata.py) remembers metadata it found valid; a changed cell is still checked and refused as nbgrader does."""
    import copy

    from nbgrader.preprocessors import CheckCellMetadata as NbgraderCheck

    from mfml_grader import course
    from mfml_grader.judge.metadata import CheckCellMetadata

    released = nbformat.read(course.release_notebook("ps1_linear_algebra", REPO), as_version=4)
    for check in (CheckCellMetadata(), CheckCellMetadata(), NbgraderCheck()):     # the second run answers from memory
        check.preprocess(copy.deepcopy(released), {})
    broken = copy.deepcopy(released)
    graded = next(cell for cell in broken.cells if cell.metadata.get("nbgrader", {}).get("grade"))
    graded.metadata.nbgrader["points"] = "lots"
    refused = []
    for check in (NbgraderCheck(), CheckCellMetadata()):
        with pytest.raises(Exception) as error:
            check.preprocess(copy.deepcopy(broken), {})
        refused.append((type(error.value), str(error.value)))
    assert refused[0] == refused[1]
