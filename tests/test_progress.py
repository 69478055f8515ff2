"""The progress line of the command-line tools (training, batch jobs)."""

from attribution.presentation.progress import show_progress


def test_a_log_gets_a_line_per_tenth_of_the_work_and_the_last(capsys):
    for done in range(1, 26):
        show_progress(f"{done} of 25", done, 25)
    assert capsys.readouterr().err.splitlines() == ["2 of 25", "4 of 25", "6 of 25", "8 of 25", "10 of 25",
                                                    "12 of 25", "14 of 25", "16 of 25", "18 of 25", "20 of 25",
                                                    "22 of 25", "24 of 25", "25 of 25"]


def test_work_shorter_than_ten_units_logs_every_unit(capsys):
    for done in range(1, 4):
        show_progress(f"step {done}", done, 3)
    assert capsys.readouterr().err.splitlines() == ["step 1", "step 2", "step 3"]
