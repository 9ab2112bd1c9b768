"""`ForgetDuplicateGradeCells`: a copied graded cell becomes a plain cell instead of breaking grading.

Students copy cells (to try something out) and the copy keeps the nbgrader metadata. nbgrader's own
DeduplicateIds then leaves metadata that OverwriteCells cannot read with `add_missing_cells`, and
the whole notebook fails. Here the first cell with a grade id keeps it, and later copies lose their
nbgrader metadata entirely: they still run, but are neither graded nor locked.
"""

from nbgrader.preprocessors import NbGraderPreprocessor


class ForgetDuplicateGradeCells(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        seen = set()
        for cell in nb.cells:
            meta = cell.get("metadata", {})
            grade_id = meta.get("nbgrader", {}).get("grade_id") if isinstance(meta.get("nbgrader"), dict) else None
            if "nbgrader" in meta and (grade_id is None or grade_id in seen):
                del meta["nbgrader"]
                self.log.warning("removed the nbgrader metadata of a copied or broken graded cell (%s)", grade_id)
            elif grade_id is not None:
                seen.add(grade_id)
        return nb, resources
