"""What the chart pages tell Plotly about their axes, in one place.

Epochs are whole numbers: an axis of epoch numbers gets a tick on whole
epochs only (never 9.2, 9.4), at most about ``MAX_EPOCH_TICKS`` of them,
spaced 1, 2, 5, 10, 20, 50... epochs apart.
"""

MAX_EPOCH_TICKS = 10


def epoch_step(span: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... epochs that puts at most
    ``MAX_EPOCH_TICKS`` ticks on ``span`` epochs."""
    magnitude = 1
    while True:
        for nice in (1, 2, 5):
            step = nice * magnitude
            if span // step < MAX_EPOCH_TICKS:
                return step
        magnitude *= 10


def epoch_axis(epochs: list[int]) -> dict:
    """Plotly layout for an x axis of epoch numbers."""
    span = max(epochs) - min(epochs) if epochs else 0
    return {
        "title": {"text": "epoch"},
        "tickmode": "linear",
        "tick0": 0,  # ticks on multiples of the step
        "dtick": epoch_step(span),
        "tickformat": "d",
    }
