"""`FeedbackStyle`: the feedback page's own CSS, so a student can read every line of it.

nbgrader's feedback template shows code and outputs in `<pre>` blocks that never wrap, so long
messages run off the right edge. Configured in nbgrader_config.py after nbconvert's
CSSHTMLHeaderPreprocessor, whose CSS list the template inlines.
"""

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

CSS = """
div.cell pre, div.output_area pre, div.output_subarea pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: normal; }
div.output_subarea { max-width: 100%; overflow-x: hidden; }
div.output_subarea img { max-width: 100%; height: auto; }
div.mfml-report ul { list-style: none; padding-left: 0.5em; margin: 0.3em 0; }
div.mfml-report li { margin: 0.15em 0; }
div.mfml-report li pre { margin: 0.2em 0 0.4em 3.2em; padding: 0.3em 0.5em; background: #f7f7f7; border: none; }
div.mfml-report li.mfml-pass b { color: #2a7a2a; }
div.mfml-report li.mfml-fail b { color: #b03030; }
div.mfml-report div.mfml-mistake { margin: 0.4em 0; padding: 0.4em 0.6em; background: #fff4e0; border-left: 4px solid #e0a030; }
"""


class FeedbackStyle(Preprocessor):
    """Add the course's CSS (wrapped lines, the hidden-test report's layout) to an HTML export."""

    enabled = Bool(True, help="Whether to add the course's CSS.").tag(config=True)
    css = Unicode(CSS, help="CSS inlined into every feedback page after nbconvert's own.").tag(config=True)

    def preprocess(self, nb, resources):
        resources.setdefault("inlining", {}).setdefault("css", []).append(self.css)
        return nb, resources
