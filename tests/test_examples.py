"""Static checks of the gallery scripts (they are executed by the docs build, not here)."""

import ast
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").rglob("plot_*.py"))


def _cells(path):
    """The code of each ``# %%`` cell."""
    return path.read_text().split("\n# %%")


def _returns_a_display(node):
    """A bare call whose value sphinx-gallery would print (nilearn displays, axes arrays)."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name.startswith(("plot_", "view_"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_display_repr_at_the_end_of_a_cell(path):
    """A cell ending in ``plot_roi(...)`` shows ``<ZSlicer object at 0x...>`` in the docs."""
    for k, cell in enumerate(_cells(path)):
        body = ast.parse(cell).body
        if body and _returns_a_display(body[-1]):
            pytest.fail(
                f"{path.name}, cell {k}: ends with a bare {ast.unparse(body[-1])[:40]}...; "
                "assign it (_ = ...) or end the cell with plt.show()."
            )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_compare_with_shrinkage_lda(path):
    """Every decoding example shows the strongest classical reference."""
    text = path.read_text()
    if "cross_val_score" in text or "compare_decoders" in text or "decoding_report" in text:
        markers = ("shrinkage_lda", "reference_decoders", "decoding_report", 'shrinkage="auto"')
        assert any(marker in text for marker in markers)
