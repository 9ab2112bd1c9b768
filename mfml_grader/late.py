"""The course's late policy, as an nbgrader late-submission plugin.

A late submission loses `percent_per_day` percent of its earned score for every started day past
the due date (10 % by default: one second late costs 10 %, 2.5 days late 30 %), and nothing is left
after 10 days. Configured in nbgrader_config.py; the due date is set per assignment with
`nbgrader db assignment add <assignment> --duedate="..."`.
"""

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PercentPerDay(LateSubmissionPlugin):
    percent_per_day = Float(10.0, help="Percent of the earned score lost per started day late.").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if total_seconds_late <= 0:
            return 0.0
        days = math.ceil(total_seconds_late / 86400)
        penalty = min(score, score * self.percent_per_day * days / 100)
        self.log.warning("%s is %d started day(s) late: penalty %.2f of %.2f points", student_id, days, penalty, score)
        return penalty
