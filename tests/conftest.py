import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_terminal_summary(terminalreporter, config):
    """Show how well the grader did (mutants caught and named, variants at full marks)."""
    from test_autograde import validate_table_key

    table = config.stash.get(validate_table_key, None)
    if table:
        terminalreporter.section("grader validation")
        terminalreporter.write_line(table)
