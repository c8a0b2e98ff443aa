"""Applications (M2, M8, M13): submit → admission → score → limit → price → approved, rejected or
manual review, within the product and channel the customer came through; reviewers work the
manual-review queue; rejected applicants feed secondary marketing."""
