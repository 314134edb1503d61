"""The classroom notebook runs top to bottom and shows what it says it shows."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "experiments" / "notebooks" / "classroom.ipynb"


@pytest.mark.training
def test_the_classroom_notebook_runs_top_to_bottom(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="the dev extra installs nbclient")
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "disabled_by='button'" in text  # the scripted steps reach the button
    tables = [
        o["data"]["text/markdown"]
        for o in outputs
        if o.get("output_type") == "display_data" and "text/markdown" in o.get("data", {})
    ]
    (table,) = tables
    rows = {
        tuple(cell.strip() for cell in line.split("|")[1:4]): line for line in table.splitlines()
    }
    baseline = rows[("task reward only", "batched-ppo", "sampled")]
    penalised = rows[("corrigibility penalty 100", "batched-ppo", "sampled")]
    # The headline, as the notebook's text tells it: most seeds disable, none with the penalty.
    assert int(baseline.split("|")[4].strip().split("/")[0]) >= 3
    assert penalised.split("|")[4].strip().startswith("0/4")
    images = [
        o for o in outputs if "image/png" in o.get("data", {}) or "image/gif" in o.get("data", {})
    ]
    assert len(images) >= 4  # two world pictures and two GIFs
